//! Writes the busy test pattern as a Y4M file, for Chromium's fake camera
//! (`--use-file-for-fake-video-capture`): the media benchmark then has
//! Chromium and the native peer encode the same kind of picture.
//!
//! `cargo run --release -p huddle-engine --example pattern_y4m -- OUT.y4m 1280x720 90`

use std::io::Write;
use std::process::ExitCode;

use huddle_engine::video::pattern::TestPattern;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, size, frames] = args.as_slice() else {
        eprintln!("usage: pattern_y4m OUT.y4m WIDTHxHEIGHT FRAMES");
        return ExitCode::from(2);
    };
    let parsed = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<usize>().ok()?, h.parse::<usize>().ok()?)));
    let (Some((width, height)), Ok(frames)) = (parsed, frames.parse::<u32>()) else {
        eprintln!("pattern_y4m: {size:?} or {frames:?} is not a size or a count");
        return ExitCode::from(2);
    };
    let written = std::fs::File::create(path).and_then(|file| {
        let mut out = std::io::BufWriter::new(file);
        let mut pattern = TestPattern::busy(width, height);
        let first = pattern.next_frame();
        writeln!(
            out,
            "YUV4MPEG2 W{} H{} F30:1 Ip A1:1 C420jpeg",
            first.width(),
            first.height()
        )?;
        out.write_all(b"FRAME\n")?;
        out.write_all(first.as_bytes())?;
        for _ in 1..frames {
            out.write_all(b"FRAME\n")?;
            out.write_all(pattern.next_frame().as_bytes())?;
        }
        out.flush()
    });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pattern_y4m: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}
