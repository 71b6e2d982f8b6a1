//! `huddle-peer`: a headless Huddle client. Joins a room, takes part in its
//! call — sending a test pattern or a camera, a tone or a microphone, and
//! playing what it hears to a speaker or a WAV file if asked — prints live
//! figures and writes a JSON report (and PNG snapshots); exits non-zero
//! when no media arrived. A tool for bots and for checking a self-hosted
//! server as much as for our tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use huddle_engine::audio::device::list_devices as audio_devices;
use huddle_engine::audio::processing::ProcessingSettings;
use huddle_engine::audio::synthetic::talker;
use huddle_engine::audio::tone::dominant_frequency;
use huddle_engine::audio::SAMPLE_RATE;
use huddle_engine::audio::{
    AudioError, AudioSink, AudioSource, Direction, Microphone, SamplesInput, Speaker, ToneInput,
    WavSink,
};
use huddle_engine::call::{Call, CallEvent, CallOptions, Command};
use huddle_engine::quality::FrameLog;
use huddle_engine::stats::LinkStats;
use huddle_engine::tls::{Fingerprint, ServerTrust};
use huddle_engine::video::camera::{list_cameras, CameraRequest, CameraSource};
use huddle_engine::video::convert::i420_to_rgb;
use huddle_engine::video::pattern::{now_ms, read_stamp, TestPattern};
use huddle_engine::video::{CaptureError, I420Frame, PatternSource, VideoSource};
use huddle_engine::JoinParams;
use huddle_protocol::{ClientKind, Media, PeerId, ServerMessage};
use serde::Serialize;

/// `--video`: `test-pattern`, `camera`, `camera:N` or `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Video {
    TestPattern,
    Camera(Option<u32>),
    None,
}

/// `--audio`: `tone`, `voice`, `mic`, `mic:DEVICE NAME` or `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Audio {
    Tone,
    /// A synthetic speech-like voice (`audio::synthetic::talker`), looped.
    Voice,
    Mic(Option<String>),
    None,
}

/// `--output`: `none`, `speaker`, `speaker:DEVICE NAME` or `wav:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    None,
    Speaker(Option<String>),
    Wav(PathBuf),
}

/// A command-line value that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
enum ArgError {
    #[error("expected test-pattern, camera, camera:N or none")]
    Video,
    #[error("{0:?} is not a camera number")]
    CameraNumber(String),
    #[error("expected tone, voice, mic, mic:DEVICE or none")]
    Audio,
    #[error("expected none, speaker, speaker:DEVICE or wav:PATH")]
    Output,
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
        _ => Err(ArgError::Audio),
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
struct Args {
    /// Signaling URL, e.g. ws://localhost:8443/ws.
    #[arg(long, required_unless_present = "list_devices", default_value = "")]
    server: String,
    /// Room to join.
    #[arg(long, required_unless_present = "list_devices", default_value = "")]
    room: String,
    /// Display name.
    #[arg(long, default_value = "huddle-peer")]
    name: String,
    /// Room password, if the room has one.
    #[arg(long)]
    password: Option<String>,
    /// Server access token, if the server needs one.
    #[arg(long)]
    token: Option<String>,
    /// On `wss://`, trust exactly the certificate with this SHA-256
    /// fingerprint (a room hosted from the app) instead of the system's
    /// certificate authorities.
    #[arg(long, value_name = "SHA256")]
    server_fingerprint: Option<Fingerprint>,
    /// What to send as video: test-pattern, camera, camera:N, none.
    #[arg(long, default_value = "test-pattern", value_parser = parse_video)]
    video: Video,
    /// What to send as audio: tone, voice, mic, mic:DEVICE, none.
    #[arg(long, default_value = "tone", value_parser = parse_audio)]
    audio: Audio,
    /// Where to play the call's audio: none, speaker, speaker:DEVICE, wav:PATH.
    #[arg(long, default_value = "none", value_parser = parse_output)]
    output: Output,
    /// Save each member's first and last decoded picture as PNG here.
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// List cameras and sound devices, and exit.
    #[arg(long)]
    list_devices: bool,
    /// Frequency of the tone, in Hz.
    #[arg(long, default_value_t = 440.0)]
    tone_hz: f32,
    /// How long to stay: `30s`, `2m`, or seconds.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Write a JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Video size, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x360", value_parser = parse_size)]
    size: (usize, usize),
    /// Test-pattern content: `plain` (a gradient, nearly free to encode) or
    /// `busy` (a panning texture with grain, as costly as a camera).
    #[arg(long, default_value = "plain", value_parser = ["plain", "busy"])]
    content: String,
    /// Video frame rate.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Video bitrate, kbit/s.
    #[arg(long, default_value_t = 1000)]
    kbps: u32,
    /// Send and receive media only through the server's TURN relay.
    #[arg(long)]
    relay_only: bool,
    /// Local address for media, as often as wanted (by default every
    /// interface of either family: `0.0.0.0:0` and `[::]:0`).
    #[arg(long, default_values = huddle_engine::call::ANY_ADDRESS)]
    udp: Vec<String>,
    /// Send a microphone as it is: no echo cancellation, noise suppression
    /// or gain control (the acoustic loop's unprocessed baseline); the same
    /// as `--processing none`.
    #[arg(long)]
    unprocessed: bool,
    /// The processing of a microphone: `all` (as the app's defaults),
    /// `none`, or a comma-separated choice of `ec` (echo cancellation),
    /// `ns` (noise suppression) and `agc` (gain control).
    #[arg(long, default_value = "all", value_parser = parse_processing)]
    processing: ProcessingSettings,
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

/// What arrived from one member.
#[derive(Debug, Default)]
struct Received {
    name: String,
    frames: u64,
    stamped: u64,
    first_sequence: Option<u32>,
    last_sequence: Option<u32>,
    latencies_ms: Vec<u32>,
    width: usize,
    height: usize,
    /// The last second of audio, for its dominant frequency.
    audio_tail: std::collections::VecDeque<i16>,
    audio_samples: u64,
    /// From sending `call_join` to this member's first decoded picture.
    first_frame: Option<Duration>,
    /// The connection's latest figures.
    stats: Option<LinkStats>,
    /// The latest picture, kept only for `--snapshot`.
    last_frame: Option<I420Frame>,
    /// When each picture arrived (since the start), for freezes and fps.
    arrivals: FrameLog,
    /// `[seconds, kbit/s in, target kbit/s, rtt ms, media kbit/s out, kbit/s
    /// out on the wire, the encoder's kbit/s]` at each stats reading (-1:
    /// not known).
    timeline: Vec<[f64; 7]>,
}

impl Received {
    fn lost(&self) -> u64 {
        match (self.first_sequence, self.last_sequence) {
            (Some(first), Some(last)) => {
                u64::from(last.wrapping_sub(first)) + 1
                    - self.stamped.min(u64::from(last.wrapping_sub(first)) + 1)
            }
            _ => 0,
        }
    }

    fn latency(&self, percentile: f64) -> Option<u32> {
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_unstable();
        let index = ((percentile / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted.get(index.clamp(1, sorted.len().max(1)) - 1).copied()
    }
}

/// What `huddle-peer` prints at the end, as JSON.
#[derive(Debug, Serialize)]
struct Report<'a> {
    room: &'a str,
    id: Option<PeerId>,
    seconds: f64,
    cpu_percent_of_one_core: Option<f64>,
    /// Why the call stopped, when it stopped before `--duration`.
    stopped: Option<String>,
    /// By member id.
    peers: BTreeMap<String, PeerReport>,
}

/// What arrived from one member, in the report.
#[derive(Debug, Serialize)]
struct PeerReport {
    name: String,
    frames: u64,
    stamped_frames: u64,
    lost_frames: u64,
    width: usize,
    height: usize,
    latency_ms_p50: Option<u32>,
    latency_ms_max: Option<u32>,
    freezes: FreezeReport,
    fps_per_second: Vec<u32>,
    timeline: Vec<[f64; 7]>,
    first_frame_ms: Option<u64>,
    rtt_ms: Option<f64>,
    bitrate_in_bps: Option<f64>,
    bitrate_out_bps: Option<f64>,
    target_bitrate_bps: Option<f64>,
    encoder_bitrate_bps: Option<u32>,
    fps_in: Option<f64>,
    frames_dropped: Option<u64>,
    codecs: Option<Vec<String>>,
    candidate_type: Option<String>,
    jitter_s: Option<f64>,
    packets_lost: Option<i64>,
    audio_ms: u64,
    audio_dominant_hz: Option<f32>,
    audio_delay_ms: Option<f64>,
    audio_concealed_share: Option<f64>,
    audio_fec_ms: Option<u64>,
    audio_underruns: Option<u64>,
}

/// A stream's freezes, in the report.
#[derive(Debug, Serialize)]
struct FreezeReport {
    count: u32,
    total_ms: u64,
    longest_ms: u64,
}

impl PeerReport {
    fn of(r: &mut Received, elapsed: Duration) -> PeerReport {
        let freezes = r.arrivals.freezes(elapsed);
        let stats = r.stats.as_ref();
        let playout = stats.and_then(|s| s.playout);
        PeerReport {
            name: r.name.clone(),
            frames: r.frames,
            stamped_frames: r.stamped,
            lost_frames: r.lost(),
            width: r.width,
            height: r.height,
            latency_ms_p50: r.latency(50.0),
            latency_ms_max: r.latency(100.0),
            freezes: FreezeReport {
                count: freezes.count,
                total_ms: freezes.total.as_millis() as u64,
                longest_ms: freezes.longest.as_millis() as u64,
            },
            fps_per_second: r.arrivals.per_second(elapsed),
            timeline: r.timeline.clone(),
            first_frame_ms: r.first_frame.map(|d| d.as_millis() as u64),
            rtt_ms: stats.and_then(|s| s.rtt_ms),
            bitrate_in_bps: stats.and_then(|s| s.bitrate_in_bps),
            bitrate_out_bps: stats.and_then(|s| s.bitrate_out_bps),
            target_bitrate_bps: stats.and_then(|s| s.target_bitrate_bps),
            encoder_bitrate_bps: stats.and_then(|s| s.encoder_bitrate_bps),
            fps_in: stats.and_then(|s| s.fps_in),
            frames_dropped: stats.map(|s| s.frames_dropped),
            codecs: stats.map(|s| s.codecs.clone()),
            candidate_type: stats.and_then(|s| s.candidate_type.clone()),
            jitter_s: stats.and_then(|s| s.jitter_s),
            packets_lost: stats.map(|s| s.packets_lost),
            audio_ms: r.audio_samples * 1000 / u64::from(SAMPLE_RATE),
            audio_dominant_hz: dominant_frequency(r.audio_tail.make_contiguous()),
            audio_delay_ms: playout.map(|p| p.mean_delay_ms()),
            audio_concealed_share: playout.map(|p| p.concealed_share()),
            audio_fec_ms: playout.map(|p| p.recovered * 1000 / u64::from(SAMPLE_RATE)),
            audio_underruns: playout.map(|p| p.underruns),
        }
    }
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
        Video::None => None,
    };
    let audio: Option<Box<dyn AudioSource>> = match &args.audio {
        Audio::Tone => Some(Box::new(ToneInput::new(args.tone_hz))),
        Audio::Voice => Some(Box::new(SamplesInput::new(talker(20.0, 7)))),
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
            video: options.video.is_some(),
            screen: false,
        },
    };
    let mut call = Call::start(args.server.clone(), params, options);
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
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
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
                Some(CallEvent::Video { from, frame }) => {
                    let entry = received.entry(from.clone()).or_default();
                    entry.name = names.get(&from).cloned().unwrap_or_default();
                    entry.frames += 1;
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
                    if args.snapshot.is_some() {
                        entry.last_frame = Some(frame.clone());
                    }
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
            .map(|(id, r)| (id.clone(), PeerReport::of(r, elapsed)))
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            parse_video("camera:x"),
            Err(ArgError::CameraNumber("x".into()))
        );
        assert_eq!(parse_audio("loud"), Err(ArgError::Audio));
        assert_eq!(parse_output("wav:"), Err(ArgError::Output));
        assert_eq!(parse_size("100x100"), Err(ArgError::Size("100x100".into())));
        assert_eq!(
            parse_duration("soon"),
            Err(ArgError::Duration("soon".into()))
        );
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    }
}
