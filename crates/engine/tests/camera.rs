//! The camera: with none, a clear error from the engine and from
//! `huddle-peer`; with one, pictures. (CI machines have none.)

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use huddle_engine::video::camera::{list_cameras, CameraRequest, CameraSource};
use huddle_engine::video::{CaptureError, VideoSource};

#[tokio::test]
async fn a_camera_delivers_pictures_or_its_absence_is_a_clear_error() {
    let cameras = list_cameras().unwrap();
    let opened = tokio::task::spawn_blocking(|| CameraSource::open(CameraRequest::default()))
        .await
        .unwrap();
    if cameras.is_empty() {
        let error = opened.unwrap_err();
        assert!(matches!(error, CaptureError::NoCamera(_)), "{error:?}");
        assert!(error.to_string().starts_with("no camera found"), "{error}");
    } else {
        let mut camera = opened.unwrap();
        let frame = tokio::time::timeout(Duration::from_secs(10), camera.next_frame())
            .await
            .expect("a picture within 10 s")
            .unwrap();
        assert!(frame.width() >= 2 && frame.height() >= 2);
    }
    let missing = CameraSource::open(CameraRequest {
        index: Some(99),
        ..CameraRequest::default()
    })
    .unwrap_err();
    assert!(
        matches!(missing, CaptureError::NoSuchCamera { index: 99, .. }),
        "{missing:?}"
    );
}

#[test]
fn huddle_peer_without_a_camera_says_so_and_fails() {
    if !list_cameras().unwrap().is_empty() {
        return; // a machine with a camera: nothing to show here
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_huddle-peer"))
        .args([
            "--server",
            "ws://127.0.0.1:9/ws",
            "--room",
            "r",
            "--video",
            "camera",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("video: no camera found"), "{stderr}");
}
