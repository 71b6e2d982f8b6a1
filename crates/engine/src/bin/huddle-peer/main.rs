//! `huddle-peer`: a headless Huddle client. Joins a room, takes part in its
//! call — sending a test pattern or a camera, a tone or a microphone, and
//! playing what it hears to a speaker or a WAV file if asked — prints live
//! figures and writes a JSON report (and PNG snapshots) at the end of its
//! `--duration` or when asked to stop (Ctrl-C, SIGTERM); exits non-zero
//! when no media arrived. A tool for bots and for checking a self-hosted
//! server as much as for our tests.
//!
//! Here: the run; `args.rs` the command line, `report.rs` what is counted
//! and reported.

mod args;
mod report;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use huddle_engine::audio::device::list_devices as audio_devices;
use huddle_engine::audio::processing::ProcessingSettings;
use huddle_engine::audio::synthetic::talker;
use huddle_engine::audio::wav::{self, WavError};
use huddle_engine::audio::SAMPLE_RATE;
use huddle_engine::audio::{
    AudioError, AudioSink, AudioSource, Direction, Microphone, SamplesInput, Speaker, SystemSound,
    ToneInput, Volume, WavSink,
};
use huddle_engine::call::{Call, CallEvent, CallOptions, Command};
use huddle_engine::tls::ServerTrust;
use huddle_engine::video::camera::{list_cameras, CameraRequest, CameraSource};
use huddle_engine::video::convert::i420_to_rgb;
use huddle_engine::video::pattern::{now_ms, read_stamp, TestPattern};
use huddle_engine::video::screen::ScreenSource;
use huddle_engine::video::{CaptureError, I420Frame, PatternSource, VideoSource};
use huddle_engine::JoinParams;
use huddle_protocol::{ClientKind, Media, ServerMessage};

use args::{Args, Audio, Output, ScreenSound, Video};
use report::{PeerReport, Received, Report};

/// CPU time this process has used (user + system), from /proc; `None`
/// elsewhere. Linux only: a Windows build run under wine reads a /proc
/// file too, but not its own figures (measured: 20 % of a core reported,
/// 45 % seen from outside).
#[cfg(target_os = "linux")]
fn own_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel's USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

#[cfg(not(target_os = "linux"))]
fn own_cpu() -> Option<Duration> {
    None
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("huddle-peer: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

/// A device could not be opened.
#[derive(Debug, thiserror::Error)]
enum MediaError {
    #[error("video: {0}")]
    Video(#[from] CaptureError),
    #[error("audio: {0}")]
    Audio(#[from] AudioError),
    #[error("audio: {0}")]
    Wav(#[from] WavError),
}

/// Opens what `args` ask for, before joining: a missing device is an
/// error the user sees at once, not a call without media.
fn open_media(args: &Args) -> Result<CallOptions, MediaError> {
    let video: Option<Box<dyn VideoSource>> = match &args.video {
        Video::TestPattern => {
            let (w, h) = args.size;
            let pattern = match args.content.as_str() {
                "busy" => TestPattern::busy(w, h),
                _ => TestPattern::new(w, h),
            };
            Some(Box::new(PatternSource::with_pattern(pattern, args.fps)))
        }
        Video::Camera(index) => Some(Box::new(CameraSource::open(CameraRequest {
            index: *index,
            width: args.size.0 as u32,
            height: args.size.1 as u32,
            fps: args.fps,
        })?)),
        Video::Screen => Some(Box::new(ScreenSource::open()?)),
        Video::None => None,
    };
    let audio: Option<Box<dyn AudioSource>> = match &args.audio {
        Audio::Tone => Some(Box::new(ToneInput::new(args.tone_hz))),
        Audio::Voice => Some(Box::new(SamplesInput::new(talker(20.0, 7)))),
        Audio::Wav(path) => Some(Box::new(SamplesInput::new(wav::read(path)?))),
        Audio::Mic(name) => Some(Box::new(Microphone::open(name.as_deref())?)),
        Audio::None => None,
    };
    let output: Option<Box<dyn AudioSink>> = match &args.output {
        Output::None => None,
        Output::Speaker(name) => Some(Box::new(Speaker::open(name.as_deref())?)),
        Output::Wav(path) => Some(Box::new(WavSink::create(path)?)),
    };
    Ok(CallOptions {
        video,
        audio,
        output,
        udp_addrs: args.udp.clone(),
        bitrate_bps: args.kbps.saturating_mul(1000),
        relay_only: args.relay_only,
        volume: Volume::default(),
        // A microphone gets what a browser gives getUserMedia audio; the
        // tone is no microphone (and noise suppression takes a steady tone
        // for noise: measured −19 dB after a second).
        processing: match args.audio {
            Audio::Mic(_) if !args.unprocessed => args.processing,
            _ => ProcessingSettings::OFF,
        },
    })
}

fn list_devices() -> ExitCode {
    match list_cameras() {
        Ok(cameras) if cameras.is_empty() => println!("cameras: none"),
        Ok(cameras) => {
            println!("cameras:");
            for c in cameras {
                println!("  camera:{}  {}", c.index, c.name);
            }
        }
        Err(e) => println!("cameras: {e}"),
    }
    for (label, direction, prefix) in [
        ("microphones", Direction::Input, "mic"),
        ("speakers", Direction::Output, "speaker"),
    ] {
        let devices = audio_devices(direction);
        if devices.is_empty() {
            println!("{label}: none");
            continue;
        }
        println!("{label}:");
        for d in devices {
            let default = if d.is_default { "  (default)" } else { "" };
            println!("  {prefix}:{}  {}{default}", d.id, d.name);
        }
    }
    ExitCode::SUCCESS
}

async fn run(args: Args) -> ExitCode {
    if args.list_devices {
        return list_devices();
    }
    // Opening a device blocks; nothing else runs yet.
    let options = match open_media(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("huddle-peer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let params = JoinParams {
        room: args.room.clone(),
        name: args.name.clone(),
        password: args.password.clone(),
        token: args.token.clone(),
        trust: args
            .server_fingerprint
            .map_or(ServerTrust::System, ServerTrust::Pinned),
        client: ClientKind::Bot,
        media: Media {
            audio: options.audio.is_some(),
            video: options.video.is_some() && args.video != Video::Screen,
            screen: args.video == Video::Screen,
        },
    };
    let mut call = Call::start(args.server.clone(), params, options);
    // The screen's sound: a share goes on without it if it cannot be had.
    let sound: Option<Box<dyn AudioSource>> = match args.screen_sound {
        ScreenSound::None => None,
        ScreenSound::Tone(hz) => Some(Box::new(ToneInput::new(hz))),
        ScreenSound::System => match SystemSound::open() {
            Ok(sound) => Some(Box::new(sound)),
            Err(e) => {
                eprintln!("huddle-peer: no sound with the video: {e}");
                None
            }
        },
    };
    if sound.is_some() {
        call.command(Command::ShareSound(sound));
    }
    let started = Instant::now();
    let cpu_at_start = own_cpu();
    let mut call_joined_at: Option<Instant> = None;
    let deadline = tokio::time::Instant::now() + args.duration;
    let mut received: BTreeMap<String, Received> = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut me = None;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut ticks = 0u64;
    let mut stopped = None;
    let asked = asked_to_stop();
    tokio::pin!(asked);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = &mut asked => break,
            _ = ticker.tick() => {
                ticks += 1;
                if ticks % 2 == 0 {
                    print_live(&received, started);
                }
                call.command(Command::Stats);
            }
            event = call.next_event() => match event {
                Some(CallEvent::Message(ServerMessage::Joined { self_peer, room, resumed, .. })) => {
                    eprintln!("huddle-peer: joined {} as {} ({})", room.name, self_peer.name, self_peer.id);
                    for p in &room.peers {
                        names.insert(p.id.clone(), p.name.clone());
                    }
                    me = Some(self_peer.id);
                    // A resumed membership is still in the call (the engine
                    // joins a new one again itself).
                    if !resumed {
                        call.command(Command::JoinCall);
                    }
                    call_joined_at.get_or_insert_with(Instant::now);
                }
                Some(CallEvent::Message(ServerMessage::PeerJoined { peer } | ServerMessage::PeerUpdated { peer })) => {
                    names.insert(peer.id, peer.name);
                }
                Some(CallEvent::Message(ServerMessage::PeerLeft { id, .. })) => {
                    // Its pictures end here; the gap after them is not a freeze.
                    tracing::debug!(%id, at_s = started.elapsed().as_secs_f64(), "a member left");
                    if let Some(entry) = received.get_mut(&id) {
                        entry.left = Some(started.elapsed());
                    }
                }
                Some(CallEvent::Video { from, frame }) => {
                    let entry = received.entry(from.clone()).or_default();
                    entry.name = names.get(&from).cloned().unwrap_or_default();
                    entry.frames += 1;
                    entry.left = None;
                    let gap = entry.arrivals.last().map(|t| started.elapsed() - t);
                    entry.arrivals.record(started.elapsed());
                    if entry.first_frame.is_none() {
                        entry.first_frame = call_joined_at.map(|t| t.elapsed());
                        if let Some(dir) = &args.snapshot {
                            save_snapshot(dir, &entry.name, &from, "first", &frame);
                        }
                    }
                    entry.width = frame.width();
                    entry.height = frame.height();
                    if let Some(stamp) = read_stamp(&frame) {
                        // What a long wait for a picture was: pictures missing
                        // (a sequence jump) or this one late (its age).
                        if gap.is_some_and(|g| g > Duration::from_millis(150)) {
                            tracing::debug!(
                                from = %entry.name,
                                gap_ms = gap.map_or(0, |g| g.as_millis()),
                                skipped = entry.last_sequence.map_or(0, |l| stamp.sequence.wrapping_sub(l).wrapping_sub(1)),
                                age_ms = stamp.age_ms(now_ms()),
                                "a long wait for a picture"
                            );
                        }
                        entry.stamped += 1;
                        entry.first_sequence.get_or_insert(stamp.sequence);
                        entry.last_sequence = Some(stamp.sequence);
                        entry.latencies_ms.push(stamp.age_ms(now_ms()));
                    }
                    entry.last_frame = Some(frame);
                }
                Some(CallEvent::Audio { from, samples }) => {
                    let entry = received.entry(from.clone()).or_default();
                    entry.name = names.get(&from).cloned().unwrap_or_default();
                    entry.audio_samples += samples.len() as u64;
                    entry.audio_tail.extend(samples);
                    let excess = entry.audio_tail.len().saturating_sub(SAMPLE_RATE as usize);
                    entry.audio_tail.drain(..excess);
                }
                Some(CallEvent::Stats { peer, stats }) => {
                    let entry = received.entry(peer.clone()).or_default();
                    entry.name = names.get(&peer).cloned().unwrap_or_default();
                    let kbps = |b: Option<f64>| b.map_or(-1.0, |b| (b / 100.0).round() / 10.0);
                    entry.timeline.push([
                        (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                        kbps(stats.bitrate_in_bps),
                        kbps(stats.target_bitrate_bps),
                        stats.rtt_ms.unwrap_or(-1.0),
                        kbps(stats.bitrate_out_bps),
                        kbps(stats.wire_bitrate_out_bps),
                        kbps(stats.encoder_bitrate_bps.map(f64::from)),
                    ]);
                    entry.stats = Some(stats);
                }
                Some(CallEvent::VideoFailed(e)) => eprintln!("huddle-peer: video stopped: {e}"),
                Some(CallEvent::ScreenFailed(e)) => eprintln!("huddle-peer: screen sharing stopped: {e}"),
                Some(CallEvent::AudioInFailed(e)) => eprintln!("huddle-peer: audio stopped: {e}"),
                Some(CallEvent::ScreenSoundFailed(e)) => eprintln!("huddle-peer: the sound with the video stopped: {e}"),
                Some(CallEvent::AudioOutFailed(e)) => eprintln!("huddle-peer: playback stopped: {e}"),
                Some(CallEvent::Stopped(reason)) => {
                    stopped = Some(format!("{reason:?}"));
                    break;
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    call.command(Command::Leave);
    if let Some(dir) = &args.snapshot {
        for (id, r) in &received {
            if let Some(frame) = &r.last_frame {
                save_snapshot(dir, &r.name, id, "last", frame);
            }
        }
    }
    let elapsed = started.elapsed();
    let seconds = elapsed.as_secs_f64();
    let judged = args.measure.map_or(elapsed, |m| m.min(elapsed));
    let cpu_percent = own_cpu()
        .zip(cpu_at_start)
        .map(|(end, start)| 100.0 * (end - start).as_secs_f64() / seconds);
    let report = Report {
        room: &args.room,
        id: me,
        seconds,
        cpu_percent_of_one_core: cpu_percent,
        stopped,
        peers: received
            .iter_mut()
            .map(|(id, r)| (id.clone(), PeerReport::of(r, judged)))
            .collect(),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    if let Some(path) = &args.report {
        if let Err(e) = std::fs::write(path, serde_json::to_string(&report).unwrap_or_default()) {
            eprintln!("huddle-peer: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if received
        .values()
        .any(|r| r.frames > 0 || r.audio_samples > 0)
    {
        ExitCode::SUCCESS
    } else {
        eprintln!("huddle-peer: no media arrived");
        ExitCode::from(2)
    }
}

fn print_live(received: &BTreeMap<String, Received>, started: Instant) {
    if received.is_empty() {
        return;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let line: Vec<String> = received
        .iter()
        .map(|(id, r)| {
            let figures = r.stats.as_ref().map_or(String::new(), |s| {
                format!(
                    ", {:.0} fps, in {:.0} kbit/s, rtt {:.1} ms, target {:.0} kbit/s",
                    s.fps_in.unwrap_or(0.0),
                    s.bitrate_in_bps.unwrap_or(0.0) / 1000.0,
                    s.rtt_ms.unwrap_or(0.0),
                    s.target_bitrate_bps.unwrap_or(0.0) / 1000.0,
                )
            });
            format!(
                "{} ({id}): {} frames {}x{}{figures}",
                r.name, r.frames, r.width, r.height
            )
        })
        .collect();
    eprintln!("huddle-peer: {elapsed:.0}s  {}", line.join("  |  "));
}

/// Writes a picture as `DIR/NAME-ID-WHICH.png`; a failure is reported, not fatal.
fn save_snapshot(dir: &Path, name: &str, id: &str, which: &str, frame: &I420Frame) {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let path = dir.join(format!("{}-{}-{which}.png", safe(name), safe(id)));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::File::create(&path))
        .map_err(|e| e.to_string())
        .and_then(|file| {
            let mut encoder = png::Encoder::new(
                std::io::BufWriter::new(file),
                frame.width() as u32,
                frame.height() as u32,
            );
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
            writer
                .write_image_data(&i420_to_rgb(frame))
                .map_err(|e| e.to_string())
        });
    if let Err(e) = written {
        eprintln!("huddle-peer: cannot save {}: {e}", path.display());
    }
}

/// Resolves when the process is asked to stop (Ctrl-C; SIGTERM too where
/// there are signals): the run then ends as at its `--duration`, with its
/// report, so a script may end a peer whenever its measurement is done.
async fn asked_to_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = terminate.recv() => return,
                Ok(()) = tokio::signal::ctrl_c() => return,
            }
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
