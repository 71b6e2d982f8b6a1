//! `huddle-peer`'s command line: the flags, and the parsers of the values
//! that are more than a number (sources, outputs, processing, sizes,
//! durations), each failing with an [`ArgError`] that says what was expected.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use huddle_engine::audio::processing::ProcessingSettings;
use huddle_engine::tls::Fingerprint;

/// `--video`: `test-pattern`, `camera`, `camera:N`, `screen` or `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Video {
    TestPattern,
    Camera(Option<u32>),
    /// The screen, shared as the app shares it (`screen` in the room's media).
    Screen,
    None,
}

/// `--audio`: `tone`, `voice`, `wav:PATH`, `mic`, `mic:DEVICE NAME` or `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Audio {
    Tone,
    /// A synthetic speech-like voice (`audio::synthetic::talker`), looped.
    Voice,
    /// A WAV file (16-bit 48 kHz mono), looped: recorded speech.
    Wav(PathBuf),
    Mic(Option<String>),
    None,
}

/// `--screen-sound`: `none`, `system` (the computer's sound; Windows) or
/// `tone:HZ` (a tone standing in for it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ScreenSound {
    None,
    System,
    Tone(f32),
}

/// `--output`: `none`, `speaker`, `speaker:DEVICE NAME` or `wav:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    None,
    Speaker(Option<String>),
    Wav(PathBuf),
}

/// A command-line value that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
enum ArgError {
    #[error("expected test-pattern, camera, camera:N, screen or none")]
    Video,
    #[error("{0:?} is not a camera number")]
    CameraNumber(String),
    #[error("expected tone, voice, wav:PATH, mic, mic:DEVICE or none")]
    Audio,
    #[error("expected none, speaker, speaker:DEVICE or wav:PATH")]
    Output,
    #[error("expected none, system or tone:HZ (20–20000)")]
    ScreenSound,
    #[error("{0:?}: expected all, none, or ec, ns, agc (comma-separated)")]
    Processing(String),
    #[error("{0:?} is not a size like 1280x720 (width 512–3840, height 48–2160)")]
    Size(String),
    #[error("{0:?} is not a duration like 30s or 2m")]
    Duration(String),
}

fn parse_video(text: &str) -> Result<Video, ArgError> {
    match text.split_once(':') {
        _ if text == "test-pattern" => Ok(Video::TestPattern),
        _ if text == "none" => Ok(Video::None),
        _ if text == "camera" => Ok(Video::Camera(None)),
        _ if text == "screen" => Ok(Video::Screen),
        Some(("camera", n)) => n
            .parse()
            .map(|n| Video::Camera(Some(n)))
            .map_err(|_| ArgError::CameraNumber(n.into())),
        _ => Err(ArgError::Video),
    }
}

fn parse_audio(text: &str) -> Result<Audio, ArgError> {
    match text.split_once(':') {
        _ if text == "tone" => Ok(Audio::Tone),
        _ if text == "voice" => Ok(Audio::Voice),
        _ if text == "none" => Ok(Audio::None),
        _ if text == "mic" => Ok(Audio::Mic(None)),
        Some(("mic", name)) => Ok(Audio::Mic(Some(name.into()))),
        Some(("wav", path)) if !path.is_empty() => Ok(Audio::Wav(path.into())),
        _ => Err(ArgError::Audio),
    }
}

fn parse_screen_sound(text: &str) -> Result<ScreenSound, ArgError> {
    match text.split_once(':') {
        _ if text == "none" => Ok(ScreenSound::None),
        _ if text == "system" => Ok(ScreenSound::System),
        Some(("tone", hz)) => hz
            .parse()
            .ok()
            .filter(|hz: &f32| (20.0..=20_000.0).contains(hz))
            .map(ScreenSound::Tone)
            .ok_or(ArgError::ScreenSound),
        _ => Err(ArgError::ScreenSound),
    }
}

fn parse_output(text: &str) -> Result<Output, ArgError> {
    match text.split_once(':') {
        _ if text == "none" => Ok(Output::None),
        _ if text == "speaker" => Ok(Output::Speaker(None)),
        Some(("speaker", name)) => Ok(Output::Speaker(Some(name.into()))),
        Some(("wav", path)) if !path.is_empty() => Ok(Output::Wav(path.into())),
        _ => Err(ArgError::Output),
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "huddle-peer",
    version,
    about = "A headless Huddle peer: joins a room's call and reports what it receives"
)]
pub(crate) struct Args {
    /// Signaling URL, e.g. ws://localhost:8443/ws.
    #[arg(long, required_unless_present = "list_devices", default_value = "")]
    pub(crate) server: String,
    /// Room to join.
    #[arg(long, required_unless_present = "list_devices", default_value = "")]
    pub(crate) room: String,
    /// Display name.
    #[arg(long, default_value = "huddle-peer")]
    pub(crate) name: String,
    /// Room password, if the room has one.
    #[arg(long)]
    pub(crate) password: Option<String>,
    /// Server access token, if the server needs one.
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// On `wss://`, trust exactly the certificate with this SHA-256
    /// fingerprint (a room hosted from the app) instead of the system's
    /// certificate authorities.
    #[arg(long, value_name = "SHA256")]
    pub(crate) server_fingerprint: Option<Fingerprint>,
    /// What to send as video: test-pattern, camera, camera:N, screen, none.
    #[arg(long, default_value = "test-pattern", value_parser = parse_video)]
    pub(crate) video: Video,
    /// What to send as audio: tone, voice, wav:PATH, mic, mic:DEVICE, none.
    #[arg(long, default_value = "tone", value_parser = parse_audio)]
    pub(crate) audio: Audio,
    /// Sound sent with the video (as a shared screen's, also while there
    /// is no microphone): none, system (the computer's sound but ours;
    /// Windows 10 2004+), tone:HZ.
    #[arg(long, default_value = "none", value_parser = parse_screen_sound)]
    pub(crate) screen_sound: ScreenSound,
    /// Where to play the call's audio: none, speaker, speaker:DEVICE, wav:PATH.
    #[arg(long, default_value = "none", value_parser = parse_output)]
    pub(crate) output: Output,
    /// Save each member's first and last decoded picture as PNG here.
    #[arg(long)]
    pub(crate) snapshot: Option<PathBuf>,
    /// List cameras and sound devices, and exit.
    #[arg(long)]
    pub(crate) list_devices: bool,
    /// Frequency of the tone, in Hz.
    #[arg(long, default_value_t = 440.0)]
    pub(crate) tone_hz: f32,
    /// How long to stay: `30s`, `2m`, or seconds.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Judge the pictures (fps per second, freezes) over this first part of
    /// the run only; the default is all of it. The network lab stays a
    /// second longer than it measures, so that a member who started a
    /// little earlier and leaves a little earlier is not taken for frozen.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) measure: Option<Duration>,
    /// Write a JSON report here.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
    /// Video size, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x360", value_parser = parse_size)]
    pub(crate) size: (usize, usize),
    /// Test-pattern content: `plain` (a gradient, nearly free to encode) or
    /// `busy` (a panning texture with grain, as costly as a camera).
    #[arg(long, default_value = "plain", value_parser = ["plain", "busy"])]
    pub(crate) content: String,
    /// Video frame rate.
    #[arg(long, default_value_t = 30)]
    pub(crate) fps: u32,
    /// Video bitrate, kbit/s.
    #[arg(long, default_value_t = 1000)]
    pub(crate) kbps: u32,
    /// Send and receive media only through the server's TURN relay.
    #[arg(long)]
    pub(crate) relay_only: bool,
    /// Local address for media, as often as wanted (by default every
    /// interface of either family: `0.0.0.0:0` and `[::]:0`).
    #[arg(long, default_values = huddle_engine::call::ANY_ADDRESS)]
    pub(crate) udp: Vec<String>,
    /// Send a microphone as it is: no echo cancellation, noise suppression
    /// or gain control (the acoustic loop's unprocessed baseline); the same
    /// as `--processing none`.
    #[arg(long)]
    pub(crate) unprocessed: bool,
    /// The processing of a microphone: `all` (as the app's defaults),
    /// `none`, or a comma-separated choice of `ec` (echo cancellation),
    /// `ns` (noise suppression) and `agc` (gain control).
    #[arg(long, default_value = "all", value_parser = parse_processing)]
    pub(crate) processing: ProcessingSettings,
}

fn parse_processing(text: &str) -> Result<ProcessingSettings, ArgError> {
    match text {
        "all" => return Ok(ProcessingSettings::default()),
        "none" => return Ok(ProcessingSettings::OFF),
        _ => {}
    }
    let mut chosen = ProcessingSettings::OFF;
    for part in text.split(',') {
        match part {
            "ec" => chosen.echo_cancellation = true,
            "ns" => chosen.noise_suppression = true,
            "agc" => chosen.gain_control = true,
            _ => return Err(ArgError::Processing(part.into())),
        }
    }
    Ok(chosen)
}

fn parse_size(text: &str) -> Result<(usize, usize), ArgError> {
    text.split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .filter(|&(w, h): &(usize, usize)| (512..=3840).contains(&w) && (48..=2160).contains(&h))
        .ok_or_else(|| ArgError::Size(text.into()))
}

fn parse_duration(text: &str) -> Result<Duration, ArgError> {
    let (number, unit) = match text.strip_suffix('s') {
        Some(n) => (n, 1),
        None => match text.strip_suffix('m') {
            Some(n) => (n, 60),
            None => (text, 1),
        },
    };
    number
        .parse::<u64>()
        .map(|n| Duration::from_secs(n * unit))
        .map_err(|_| ArgError::Duration(text.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screen_sound_is_none_system_or_a_tone() {
        assert_eq!(parse_screen_sound("none"), Ok(ScreenSound::None));
        assert_eq!(parse_screen_sound("system"), Ok(ScreenSound::System));
        assert_eq!(
            parse_screen_sound("tone:1000"),
            Ok(ScreenSound::Tone(1000.0))
        );
        for bad in ["tone", "tone:", "tone:5", "tone:loud", "music"] {
            assert_eq!(parse_screen_sound(bad), Err(ArgError::ScreenSound), "{bad}");
        }
    }

    #[test]
    fn processing_is_all_none_or_a_choice() {
        assert_eq!(parse_processing("all"), Ok(ProcessingSettings::default()));
        assert_eq!(parse_processing("none"), Ok(ProcessingSettings::OFF));
        let ns = ProcessingSettings {
            noise_suppression: true,
            ..ProcessingSettings::OFF
        };
        assert_eq!(parse_processing("ns"), Ok(ns));
        let ec_agc = ProcessingSettings {
            echo_cancellation: true,
            gain_control: true,
            ..ProcessingSettings::OFF
        };
        assert_eq!(parse_processing("ec,agc"), Ok(ec_agc));
        assert_eq!(
            parse_processing("ns,loud"),
            Err(ArgError::Processing("loud".into()))
        );
        assert!(parse_processing("").is_err());
    }

    #[test]
    fn bad_values_name_what_was_expected() {
        assert_eq!(parse_video("screen"), Ok(Video::Screen));
        assert_eq!(parse_video("screens"), Err(ArgError::Video));
        assert_eq!(
            parse_video("camera:x"),
            Err(ArgError::CameraNumber("x".into()))
        );
        assert_eq!(parse_audio("loud"), Err(ArgError::Audio));
        assert_eq!(parse_audio("wav:"), Err(ArgError::Audio));
        assert_eq!(
            parse_audio("wav:/tmp/talk.wav"),
            Ok(Audio::Wav("/tmp/talk.wav".into()))
        );
        assert_eq!(parse_output("wav:"), Err(ArgError::Output));
        assert_eq!(parse_size("100x100"), Err(ArgError::Size("100x100".into())));
        assert_eq!(
            parse_duration("soon"),
            Err(ArgError::Duration("soon".into()))
        );
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    }
}
