//! The test-pattern camera: a moving picture whose frames carry their
//! sequence number and capture time in a machine-readable strip.
//!
//! The strip is three rows of 32 blocks, 16×16 pixels each, at the top
//! left: row 0 holds the sequence number, row 1 the capture time (ms since
//! the Unix epoch, modulo 2³²), row 2 the sequence number inverted as a
//! check. A block is a bit: white is 1, black is 0. Blocks this large
//! survive H.264 at any sensible bitrate, and so do their halves (a sender
//! short of bandwidth halves its pictures; the strip is read at both sizes);
//! the check row rejects a frame that was not decoded cleanly.

use std::time::{SystemTime, UNIX_EPOCH};

use super::I420Frame;

const BLOCK: usize = 16;
const BITS: usize = 32;
/// The smallest frame that holds the strip.
pub const MIN_WIDTH: usize = BLOCK * BITS;
pub const MIN_HEIGHT: usize = BLOCK * 3;

/// What a frame's strip says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub sequence: u32,
    /// Capture time, ms since the Unix epoch, modulo 2³².
    pub captured_ms: u32,
}

impl Stamp {
    /// Milliseconds from capture to `now_ms` (same clock, modulo 2³²).
    pub fn age_ms(&self, now_ms: u32) -> u32 {
        now_ms.wrapping_sub(self.captured_ms)
    }
}

/// Now, as the strip stores it.
pub fn now_ms() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u32)
        .unwrap_or(0)
}

/// Generates frames.
#[derive(Debug)]
pub struct TestPattern {
    width: usize,
    height: usize,
    sequence: u32,
    /// Camera-like content instead of the plain gradient (see [`TestPattern::busy`]).
    texture: Option<Vec<u8>>,
}

impl TestPattern {
    /// A pattern of the given size (at least [`MIN_WIDTH`]×[`MIN_HEIGHT`]).
    pub fn new(width: usize, height: usize) -> TestPattern {
        TestPattern {
            width: width.max(MIN_WIDTH),
            height: height.max(MIN_HEIGHT),
            sequence: 0,
            texture: None,
        }
    }

    /// A pattern with content that costs an encoder what a camera does: a
    /// detailed picture (smooth shapes with a little fixed grain, like a lit
    /// room on a webcam) panning across the frame, with bright discs
    /// crossing it. The plain gradient compresses to almost nothing and
    /// would flatter any encoder; pure noise would starve any codec and is
    /// nothing like a camera.
    pub fn busy(width: usize, height: usize) -> TestPattern {
        let mut pattern = TestPattern::new(width, height);
        let (w, h) = (pattern.width & !1, pattern.height & !1);
        let mut state = 0x2545_f491_u32;
        let texture = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let grain = (xorshift(&mut state) % 9) as f32 - 4.0;
                (110.0
                    + 45.0 * (x / 37.0).sin() * (y / 53.0).cos()
                    + 25.0 * (x / 211.0 + y / 97.0).sin()
                    + grain) as u8
            })
            .collect();
        pattern.texture = Some(texture);
        pattern
    }

    /// The next frame, stamped now.
    pub fn next_frame(&mut self) -> I420Frame {
        let stamp = Stamp {
            sequence: self.sequence,
            captured_ms: now_ms(),
        };
        self.sequence = self.sequence.wrapping_add(1);
        let mut frame = I420Frame::black(self.width, self.height);
        let (w, h) = (frame.width(), frame.height());
        let y = frame.y_mut();
        // A diagonal gradient and a bar that moves one step per frame, so
        // that every frame differs (the encoder cannot skip them) — or the
        // busy picture, panning, with its discs.
        let t = stamp.sequence as usize;
        match &self.texture {
            None => {
                let bar = (t * 8) % w;
                for row in MIN_HEIGHT..h {
                    for col in 0..w {
                        let shade = 40 + ((row + col) * 160 / (w + h)) as u8;
                        let on_bar = col >= bar && col < bar + 24;
                        y[row * w + col] = if on_bar { 235 } else { shade };
                    }
                }
            }
            Some(texture) => {
                // The picture pans left: each row is the texture's row
                // rotated, two copies (a synthetic camera should cost little
                // next to the encoder it feeds).
                let shift = (t * 3) % w;
                for row in MIN_HEIGHT..h {
                    let (line, source) =
                        (&mut y[row * w..row * w + w], &texture[row * w..row * w + w]);
                    line[..w - shift].copy_from_slice(&source[shift..]);
                    line[w - shift..].copy_from_slice(&source[..shift]);
                }
                draw_discs(y, w, h, t);
            }
        }
        write_strip(y, w, stamp);
        frame
    }
}

/// Four bright discs on their own paths (the busy pattern's foreground).
fn draw_discs(y: &mut [u8], w: usize, h: usize, t: usize) {
    for disc in 0..4 {
        let cx = (t * (4 + disc * 3) + disc * w / 4) % w;
        let swing = (t as f32 / (10.0 + disc as f32)).sin() * (h as f32 / 3.0);
        let cy = (h as f32 / 2.0 + swing) as usize;
        let r = h / 10;
        for row in cy.saturating_sub(r).max(MIN_HEIGHT)..(cy + r).min(h) {
            for col in cx.saturating_sub(r)..(cx + r).min(w) {
                let (dx, dy) = (col as i64 - cx as i64, row as i64 - cy as i64);
                if dx * dx + dy * dy < (r * r) as i64 {
                    y[row * w + col] = 230;
                }
            }
        }
    }
}

fn xorshift(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

fn write_strip(y: &mut [u8], width: usize, stamp: Stamp) {
    let rows = [stamp.sequence, stamp.captured_ms, !stamp.sequence];
    for (r, value) in rows.into_iter().enumerate() {
        for bit in 0..BITS {
            let on = value >> (BITS - 1 - bit) & 1 == 1;
            let level = if on { 235 } else { 16 };
            for dy in 0..BLOCK {
                let start = (r * BLOCK + dy) * width + bit * BLOCK;
                y[start..start + BLOCK].fill(level);
            }
        }
    }
}

/// Reads the strip of a (decoded) frame; `None` when the check row does not
/// match — the frame was not the pattern, or was damaged. A sender short of
/// bandwidth halves its pictures (2×2 averaged, `I420Frame::halved`), which
/// halves the strip's blocks too: the strip is read at full size, then at
/// half size.
pub fn read_stamp(frame: &I420Frame) -> Option<Stamp> {
    [BLOCK, BLOCK / 2]
        .into_iter()
        .find_map(|block| read_strip(frame, block))
}

/// The strip read with blocks `block` pixels wide.
fn read_strip(frame: &I420Frame, block: usize) -> Option<Stamp> {
    let (w, h) = (frame.width(), frame.height());
    if w < block * BITS || h < block * 3 {
        return None;
    }
    // The centre half of each block, away from edges the codec blurs.
    let (inset, side) = (block / 4, block / 2);
    let y = frame.y();
    let mut rows = [0u32; 3];
    for (r, value) in rows.iter_mut().enumerate() {
        for bit in 0..BITS {
            let mut sum = 0u32;
            for dy in inset..inset + side {
                let start = (r * block + dy) * w + bit * block + inset;
                sum += y[start..start + side]
                    .iter()
                    .map(|&p| u32::from(p))
                    .sum::<u32>();
            }
            if sum / (side * side) as u32 > 128 {
                *value |= 1 << (BITS - 1 - bit);
            }
        }
    }
    (rows[2] == !rows[0]).then_some(Stamp {
        sequence: rows[0],
        captured_ms: rows[1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strip_reads_back_and_rejects_other_pictures() {
        let mut pattern = TestPattern::new(640, 360);
        let first = pattern.next_frame();
        let second = pattern.next_frame();
        assert_eq!(read_stamp(&first).map(|s| s.sequence), Some(0));
        assert_eq!(read_stamp(&second).map(|s| s.sequence), Some(1));
        assert!(read_stamp(&first).is_some_and(|s| s.age_ms(now_ms()) < 1000));
        assert_eq!(read_stamp(&I420Frame::black(640, 360)), None);
        assert_ne!(first, second, "frames differ");
        let mut busy = TestPattern::busy(640, 360);
        let frame = busy.next_frame();
        assert_eq!(read_stamp(&frame).map(|s| s.sequence), Some(0));
        assert_eq!(read_stamp(&frame.halved()).map(|s| s.sequence), Some(0));
        assert_eq!(
            read_stamp(&frame.halved().halved()),
            None,
            "a quarter is not read"
        );
        let distinct: std::collections::HashSet<u8> =
            frame.y()[640 * 100..640 * 101].iter().copied().collect();
        assert!(
            distinct.len() > 40,
            "a detailed picture: {} levels",
            distinct.len()
        );
    }
}
