//! The camera as a [`VideoSource`], through `nokhwa` (V4L2 on Linux, Media
//! Foundation on Windows, AVFoundation on macOS).
//!
//! Capture blocks, so a camera lives on a thread of its own that converts
//! each picture to I420 and hands it over through a two-slot channel: a
//! slow encoder drops pictures rather than building up delay. Dropping the
//! source stops the thread and releases the camera.

use std::time::Duration;

use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};
use tokio::sync::mpsc;
use tracing::debug;

use super::convert::{nv12_to_i420, rgb_to_i420, yuyv_to_i420};
use super::source::{CaptureError, VideoSource};
use super::I420Frame;

/// A camera the system knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    pub index: u32,
    pub name: String,
}

/// The cameras present now; an empty list when there are none.
pub fn list_cameras() -> Result<Vec<CameraInfo>, CaptureError> {
    let cameras = nokhwa::query(ApiBackend::Auto)?;
    Ok(cameras
        .into_iter()
        .enumerate()
        .map(|(n, info)| CameraInfo {
            index: match info.index() {
                CameraIndex::Index(i) => *i,
                CameraIndex::String(_) => n as u32,
            },
            name: info.human_name(),
        })
        .collect())
}

/// What to ask the camera for; it delivers the closest it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraRequest {
    /// Which camera (`None`: the first one).
    pub index: Option<u32>,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl Default for CameraRequest {
    fn default() -> Self {
        CameraRequest {
            index: None,
            width: 1280,
            height: 720,
            fps: 30,
        }
    }
}

/// A running camera.
#[derive(Debug)]
pub struct CameraSource {
    name: String,
    fps: u32,
    frames: mpsc::Receiver<Result<I420Frame, CaptureError>>,
}

impl CameraSource {
    /// Opens a camera and starts capturing. Blocks while the device opens
    /// (call it off the async threads).
    pub fn open(request: CameraRequest) -> Result<CameraSource, CaptureError> {
        let cameras = list_cameras()?;
        let chosen = match request.index {
            None => cameras.first(),
            Some(index) => cameras.iter().find(|c| c.index == index),
        };
        let Some(chosen) = chosen.cloned() else {
            return Err(match request.index {
                None => CaptureError::NoCamera(no_camera_hint()),
                Some(index) => CaptureError::NoSuchCamera {
                    index,
                    count: cameras.len(),
                },
            });
        };
        let (opened_tx, opened_rx) = std::sync::mpsc::sync_channel(1);
        let (frames_tx, frames) = mpsc::channel(2);
        let index = chosen.index;
        std::thread::Builder::new()
            .name(format!("camera-{index}"))
            .spawn(move || capture(index, request, opened_tx, frames_tx))?;
        let fps = opened_rx.recv().map_err(|_| CaptureError::ThreadEnded)??;
        Ok(CameraSource {
            name: chosen.name,
            fps,
            frames,
        })
    }

    /// The camera's name, as the system gives it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait::async_trait]
impl VideoSource for CameraSource {
    fn fps(&self) -> u32 {
        self.fps
    }

    async fn next_frame(&mut self) -> Result<I420Frame, CaptureError> {
        match self.frames.recv().await {
            Some(frame) => frame,
            None => Err(CaptureError::ThreadEnded),
        }
    }
}

fn no_camera_hint() -> String {
    if cfg!(target_os = "linux") {
        " (no /dev/video* device can capture)".into()
    } else {
        String::new()
    }
}

/// The capture thread: opens the camera, reports how that went, then
/// delivers pictures until the source is dropped.
fn capture(
    index: u32,
    request: CameraRequest,
    opened: std::sync::mpsc::SyncSender<Result<u32, CaptureError>>,
    frames: mpsc::Sender<Result<I420Frame, CaptureError>>,
) {
    let wanted = CameraFormat::new(
        Resolution::new(request.width, request.height),
        FrameFormat::MJPEG,
        request.fps,
    );
    let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(wanted));
    let mut camera = match nokhwa::Camera::new(CameraIndex::Index(index), format) {
        Ok(camera) => camera,
        Err(e) => {
            let _ = opened.send(Err(CaptureError::Open(e)));
            return;
        }
    };
    if let Err(e) = camera.open_stream() {
        let _ = opened.send(Err(CaptureError::Open(e)));
        return;
    }
    let fps = camera.frame_rate().clamp(1, 60);
    if opened.send(Ok(fps)).is_err() {
        return;
    }
    loop {
        let picture = match camera.frame() {
            Ok(buffer) => to_i420(&buffer),
            Err(e) => Err(CaptureError::Stopped(e.to_string())),
        };
        let failed = picture.is_err();
        match frames.try_send(picture) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        }
        if failed {
            // A camera that errs once usually errs again: not in a hot loop.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    if let Err(e) = camera.stop_stream() {
        debug!(error = %e, "stopping the camera");
    }
}

fn to_i420(buffer: &nokhwa::Buffer) -> Result<I420Frame, CaptureError> {
    let resolution = buffer.resolution();
    let (w, h) = (resolution.width() as usize, resolution.height() as usize);
    let data = buffer.buffer();
    let converted = match buffer.source_frame_format() {
        FrameFormat::YUYV => yuyv_to_i420(data, w, h),
        FrameFormat::NV12 => nv12_to_i420(data, w, h),
        _ => {
            let rgb = buffer
                .decode_image::<RgbFormat>()
                .map_err(|e| CaptureError::Stopped(e.to_string()))?;
            rgb_to_i420(rgb.as_raw(), w, h)
        }
    };
    converted.ok_or_else(|| CaptureError::Stopped(format!("a short {w}x{h} picture")))
}
