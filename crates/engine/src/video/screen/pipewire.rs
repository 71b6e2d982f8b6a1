//! A screen the desktop portal granted, read from its PipeWire stream.
//!
//! The stream is a PipeWire node the compositor fills; this connects to it
//! through the connection the portal opened (`portal.rs`), offers the packed
//! RGB formats the converter reads, in shared memory (no DMA-BUF modifiers
//! are offered, so compositors fall back to memory this process can map),
//! and turns the newest buffer into an I420 picture as it arrives. Compositors send
//! a picture only when the screen changes, so a grab returns the latest
//! picture again when no new one came. Everything here lives on the capture
//! thread: the PipeWire loop is turned by each grab, never by a thread of its
//! own.

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pipewire as pw;
use pw::spa;
use pw::spa::param::video::VideoFormat;
use pw::spa::pod::Pod;

use super::{scale_for, Grab};
use crate::video::convert::{packed_to_i420, Packed};
use crate::video::source::CaptureError;
use crate::video::I420Frame;

/// How long the first picture may take after the stream is connected.
const FIRST_PICTURE: Duration = Duration::from_secs(5);

/// The formats offered, most common first (GNOME and KDE send BGRx).
const FORMATS: [VideoFormat; 8] = [
    VideoFormat::BGRx,
    VideoFormat::BGRA,
    VideoFormat::RGBx,
    VideoFormat::RGBA,
    VideoFormat::xRGB,
    VideoFormat::ARGB,
    VideoFormat::xBGR,
    VideoFormat::ABGR,
];

/// Where red, green and blue sit in a pixel of `format`, and its size;
/// `None` for a format not offered.
pub(crate) fn layout(format: VideoFormat, width: usize, stride: usize) -> Option<Packed> {
    let rgb = match format {
        VideoFormat::BGRx | VideoFormat::BGRA => [2, 1, 0],
        VideoFormat::RGBx | VideoFormat::RGBA => [0, 1, 2],
        VideoFormat::xRGB | VideoFormat::ARGB => [1, 2, 3],
        VideoFormat::xBGR | VideoFormat::ABGR => [3, 2, 1],
        _ => return None,
    };
    Some(Packed {
        bytes_per_pixel: 4,
        rgb,
        stride: if stride == 0 { width * 4 } else { stride },
    })
}

/// The picture in one PipeWire buffer: `memory` is the buffer's mapped
/// memory, its chunk says where the picture starts (`offset`), how many bytes
/// it fills (`size`) and how far apart its rows are (`stride`; 0: packed).
pub(crate) fn picture(
    memory: &[u8],
    (offset, size, stride): (usize, usize, usize),
    format: VideoFormat,
    (width, height): (usize, usize),
) -> Result<I420Frame, CaptureError> {
    let bad = |what: &str| CaptureError::Stopped(format!("a PipeWire screen buffer {what}"));
    let layout = layout(format, width, stride).ok_or_else(|| bad("in a format not offered"))?;
    let end = offset
        .checked_add(size)
        .ok_or_else(|| bad("out of range"))?;
    let data = memory
        .get(offset..end)
        .ok_or_else(|| bad("larger than its memory"))?;
    packed_to_i420(data, width, height, layout, scale_for(width))
        .ok_or_else(|| bad(&format!("too short for {width}x{height}")))
}

/// What the stream's callbacks leave for the next grab.
#[derive(Default)]
struct Latest {
    /// The negotiated format and size.
    format: Option<(VideoFormat, usize, usize)>,
    picture: Option<I420Frame>,
    /// Why the stream cannot go on.
    failed: Option<String>,
}

/// A granted screen's PipeWire stream (dropped in reverse order: the
/// listener and stream before the connection and its loop).
pub(super) struct Screen {
    latest: Rc<RefCell<Latest>>,
    _listener: pw::stream::StreamListener<Rc<RefCell<Latest>>>,
    _stream: pw::stream::Stream,
    _core: pw::core::Core,
    _context: pw::context::Context,
    main_loop: pw::main_loop::MainLoop,
}

fn failed(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Screen(format!("PipeWire: {e}"))
}

impl Screen {
    /// Connects to node `node` through `remote`, the PipeWire connection
    /// the portal opened.
    pub(super) fn open(remote: OwnedFd, node: u32) -> Result<Screen, CaptureError> {
        pw::init();
        let main_loop = pw::main_loop::MainLoop::new(None).map_err(failed)?;
        let context = pw::context::Context::new(&main_loop).map_err(failed)?;
        let core = context.connect_fd(remote, None).map_err(failed)?;
        let stream = pw::stream::Stream::new(
            &core,
            "huddle-screen",
            pw::properties::properties! {
                *pw::keys::MEDIA_TYPE => "Video",
                *pw::keys::MEDIA_CATEGORY => "Capture",
                *pw::keys::MEDIA_ROLE => "Screen",
            },
        )
        .map_err(failed)?;
        let latest = Rc::new(RefCell::new(Latest::default()));
        let listener = stream
            .add_local_listener_with_user_data(latest.clone())
            .state_changed(|_, latest, old, state| {
                tracing::debug!(?old, ?state, "PipeWire screen stream");
                let why = match state {
                    pw::stream::StreamState::Error(e) => e,
                    pw::stream::StreamState::Unconnected => "the screen cast ended".into(),
                    _ => return,
                };
                latest.borrow_mut().failed = Some(why);
            })
            .param_changed(|_, latest, id, param| {
                let Some(param) = param else { return };
                if id != spa::param::ParamType::Format.as_raw() {
                    return;
                }
                let mut info = spa::param::video::VideoInfoRaw::new();
                if info.parse(param).is_ok() {
                    let size = info.size();
                    latest.borrow_mut().format =
                        Some((info.format(), size.width as usize, size.height as usize));
                }
            })
            .process(|stream, latest| {
                // Only the newest picture matters: older buffers go back
                // to the compositor unread (dropped, they are requeued).
                let mut newest = None;
                while let Some(buffer) = stream.dequeue_buffer() {
                    newest = Some(buffer);
                }
                let Some(mut buffer) = newest else {
                    return;
                };
                let Some((format, width, height)) = latest.borrow().format else {
                    return;
                };
                let Some(data) = buffer.datas_mut().first_mut() else {
                    return;
                };
                let chunk = data.chunk();
                let place = (
                    chunk.offset() as usize,
                    chunk.size() as usize,
                    chunk.stride().max(0) as usize,
                );
                if place.1 == 0 {
                    return; // a buffer with only cursor metadata: nothing new
                }
                let Some(memory) = data.data() else {
                    latest.borrow_mut().failed =
                        Some("the screen's buffers cannot be mapped (DMA-BUF only?)".into());
                    return;
                };
                match picture(memory, place, format, (width, height)) {
                    Ok(frame) => latest.borrow_mut().picture = Some(frame),
                    Err(e) => latest.borrow_mut().failed = Some(e.to_string()),
                }
            })
            .register()
            .map_err(failed)?;
        let params = format_params().map_err(failed)?;
        let mut params = [Pod::from_bytes(&params).ok_or_else(|| failed("bad format pod"))?];
        stream
            .connect(
                spa::utils::Direction::Input,
                Some(node),
                pw::stream::StreamFlags::AUTOCONNECT | pw::stream::StreamFlags::MAP_BUFFERS,
                &mut params,
            )
            .map_err(failed)?;
        Ok(Screen {
            latest,
            _listener: listener,
            _stream: stream,
            _core: core,
            _context: context,
            main_loop,
        })
    }
}

/// The formats offered, as an `EnumFormat` pod.
fn format_params() -> Result<Vec<u8>, spa::pod::serialize::GenError> {
    use spa::param::format::{FormatProperties, MediaSubtype, MediaType};
    use spa::utils::{Choice, ChoiceEnum, ChoiceFlags, Fraction, Id, Rectangle};
    let id = |raw: u32| spa::pod::Value::Id(Id(raw));
    // An enumeration lists its default first, then every alternative.
    let formats = spa::pod::Value::Choice(spa::pod::ChoiceValue::Id(Choice(
        ChoiceFlags::empty(),
        ChoiceEnum::Enum {
            default: Id(FORMATS[0].as_raw()),
            alternatives: FORMATS.iter().map(|f| Id(f.as_raw())).collect(),
        },
    )));
    let size = |width, height| Rectangle { width, height };
    let sizes = spa::pod::Value::Choice(spa::pod::ChoiceValue::Rectangle(Choice(
        ChoiceFlags::empty(),
        ChoiceEnum::Range {
            default: size(1920, 1080),
            min: size(1, 1),
            max: size(8192, 8192),
        },
    )));
    let rate = |num| Fraction { num, denom: 1 };
    let rates = spa::pod::Value::Choice(spa::pod::ChoiceValue::Fraction(Choice(
        ChoiceFlags::empty(),
        ChoiceEnum::Range {
            default: rate(super::SCREEN_FPS),
            min: rate(0),
            max: rate(60),
        },
    )));
    let property = |key: FormatProperties, value| spa::pod::Property {
        key: key.as_raw(),
        flags: spa::pod::PropertyFlags::empty(),
        value,
    };
    let object = spa::pod::Object {
        type_: spa::utils::SpaTypes::ObjectParamFormat.as_raw(),
        id: spa::param::ParamType::EnumFormat.as_raw(),
        properties: vec![
            property(FormatProperties::MediaType, id(MediaType::Video.as_raw())),
            property(
                FormatProperties::MediaSubtype,
                id(MediaSubtype::Raw.as_raw()),
            ),
            property(FormatProperties::VideoFormat, formats),
            property(FormatProperties::VideoSize, sizes),
            property(FormatProperties::VideoFramerate, rates),
        ],
    };
    let (bytes, _) = spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &spa::pod::Value::Object(object),
    )?;
    Ok(bytes.into_inner())
}

impl Grab for Screen {
    fn grab(&mut self) -> Result<I420Frame, CaptureError> {
        let deadline = Instant::now() + FIRST_PICTURE;
        loop {
            // Whatever the stream has for us now; while no picture has come
            // yet, waiting for one (up to `FIRST_PICTURE`).
            let waiting = self.latest.borrow().picture.is_none();
            let wait = if waiting {
                Duration::from_millis(50)
            } else {
                Duration::ZERO
            };
            self.main_loop.loop_().iterate(wait);
            let latest = self.latest.borrow();
            if let Some(why) = &latest.failed {
                return Err(CaptureError::Stopped(why.clone()));
            }
            if let Some(picture) = &latest.picture {
                return Ok(picture.clone());
            }
            if Instant::now() >= deadline {
                return Err(CaptureError::Screen(
                    "the screen cast sent no picture within 5 s".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::video::convert::i420_to_rgb;

    /// A `width`×`height` buffer in `format`, every pixel `rgb`, each row
    /// `stride` bytes, starting `offset` bytes into the memory.
    fn buffer(
        format: VideoFormat,
        (r, g, b): (u8, u8, u8),
        offset: usize,
        stride: usize,
        height: usize,
    ) -> Vec<u8> {
        let pixel: [u8; 4] = match format {
            VideoFormat::BGRx => [b, g, r, 0],
            VideoFormat::RGBA => [r, g, b, 255],
            VideoFormat::xRGB => [0, r, g, b],
            VideoFormat::ABGR => [255, b, g, r],
            _ => unreachable!(),
        };
        let mut memory = vec![0xEE; offset + stride * height + 64];
        for row in 0..height {
            for col in 0..(stride / 4).min(16) {
                let at = offset + row * stride + col * 4;
                memory[at..at + 4].copy_from_slice(&pixel);
            }
        }
        memory
    }

    #[test]
    fn every_offered_format_is_read_with_its_offset_and_stride() {
        // 16×8 pixels in rows of 80 bytes (16 pixels of padding), 32 bytes in.
        let (w, h, stride, offset) = (16, 8, 80, 32);
        let orange = (240, 120, 20);
        for format in [
            VideoFormat::BGRx,
            VideoFormat::RGBA,
            VideoFormat::xRGB,
            VideoFormat::ABGR,
        ] {
            let memory = buffer(format, orange, offset, stride, h);
            let frame = picture(&memory, (offset, stride * h, stride), format, (w, h)).unwrap();
            assert_eq!((frame.width(), frame.height()), (w, h));
            let rgb = i420_to_rgb(&frame);
            let (r, g, b) = (i32::from(rgb[0]), i32::from(rgb[1]), i32::from(rgb[2]));
            assert!(
                (r - 240).abs() < 8 && (g - 120).abs() < 8 && (b - 20).abs() < 8,
                "{format:?}: {r},{g},{b}"
            );
        }
    }

    #[test]
    fn a_buffer_short_of_its_picture_or_in_another_format_is_refused() {
        let memory = buffer(VideoFormat::BGRx, (1, 2, 3), 0, 64, 8);
        assert!(picture(&memory, (0, 64 * 4, 64), VideoFormat::BGRx, (16, 8)).is_err());
        assert!(picture(&memory, (600, 64 * 8, 64), VideoFormat::BGRx, (16, 8)).is_err());
        assert!(picture(&memory, (0, 64 * 8, 64), VideoFormat::I420, (16, 8)).is_err());
        assert!(picture(&memory, (usize::MAX, 2, 64), VideoFormat::BGRx, (16, 8)).is_err());
    }

    #[test]
    fn a_packed_buffer_says_stride_zero() {
        let memory = buffer(VideoFormat::BGRx, (9, 9, 9), 0, 64, 8);
        assert!(picture(&memory, (0, 64 * 8, 0), VideoFormat::BGRx, (16, 8)).is_ok());
    }

    #[test]
    fn the_offered_formats_all_have_a_layout() {
        for format in FORMATS {
            assert!(layout(format, 10, 0).is_some(), "{format:?}");
        }
        assert!(format_params().is_ok_and(|p| Pod::from_bytes(&p).is_some()));
    }
}
