//! The video pipeline: captures, encodes each picture once per encoding of
//! the [`Plan`], and sends each member its encoding's pictures — all of
//! them smaller or fewer while the encoders overuse the CPU ([`CpuLoad`]);
//! tells the call task what its pictures are worth ([`Report::Ceiling`]),
//! so that the plan does not split links above it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use huddle_protocol::PeerId;
use tokio::sync::mpsc;
use tracing::debug;

use super::cpu::{CpuLoad, CHECK_EVERY};
use super::encoding::{Encoding, KeyframeNeeds, Skipped};
use super::plan::Plan;
use super::{next_or_never, snapshot_named, Control, Links, Report};
use crate::congestion::{size_ceiling_bps, start_bps};
use crate::video::VideoSource;

/// What the task keeps per member.
#[derive(Debug, Default)]
struct Member {
    keyframe: KeyframeNeeds,
    /// When its last picture was captured: its RTP clock advances by the
    /// time since (not a nominal period, which pictures skipped by rate
    /// control or the frame-rate cap would leave behind real time; nor
    /// since its encoding's last picture: a member moved between encodings
    /// had its last picture from the other).
    last_sent: Option<Instant>,
}

/// Captures and sends video to every link, at the start a call wanting at
/// most `bitrate_bps` is given (`congestion::start_bps`) until the call
/// task sends a [`Plan`]; while `preview` is set, also reports each
/// picture as captured (the self view). A shared screen, while there is
/// one, is sent instead of the source, and whether the source is enabled
/// does not hold it back.
pub async fn video(
    mut source: Option<Box<dyn VideoSource>>,
    bitrate_bps: u32,
    links: Links,
    preview: Arc<AtomicBool>,
    mut controls: mpsc::UnboundedReceiver<Control<dyn VideoSource>>,
    reports: mpsc::UnboundedSender<Report>,
) {
    let mut enabled = true;
    let mut screen: Option<Box<dyn VideoSource>> = None;
    let start = start_bps(bitrate_bps);
    let mut plan = Plan::single(start);
    let mut encodings = vec![Encoding::new(start)];
    let mut members: HashMap<PeerId, Member> = HashMap::new();
    let mut cpu = CpuLoad::new(Instant::now());
    let mut last_usage_log = Instant::now();
    // What the pictures are worth, as last told to the call task.
    let mut ceiling: Option<u32> = None;
    loop {
        let frame = tokio::select! {
            control = controls.recv() => {
                match control {
                    None => return,
                    // While a screen is shared, what the camera does
                    // changes nothing that is sent.
                    Some(Control::Source(new)) => {
                        // A new source may have another frame rate.
                        if screen.is_none() {
                            encodings.iter_mut().for_each(Encoding::reset);
                        }
                        source = new;
                    }
                    Some(Control::Enabled(on)) => {
                        enabled = on;
                        // Receivers resume from a keyframe.
                        if screen.is_none() {
                            encodings.iter_mut().for_each(Encoding::keyframe_now);
                        }
                    }
                    Some(Control::Plan(new)) => {
                        follow(&plan, &new, &mut encodings, &mut members);
                        plan = new;
                    }
                    Some(Control::KeyframeNow(peer)) => {
                        members.entry(peer).or_default().keyframe.now = true;
                    }
                    Some(Control::KeyframeRequest(peer)) => {
                        members.entry(peer).or_default().keyframe.requested = true;
                    }
                    Some(Control::Screen(new)) => {
                        // Another picture size and frame rate, from a keyframe.
                        encodings.iter_mut().for_each(Encoding::reset);
                        screen = new;
                    }
                }
                continue;
            }
            frame = next_or_never(screen.as_mut().or(source.as_mut()).map(|s| s.next_frame())) => frame,
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) if screen.is_some() => {
                screen = None;
                encodings.iter_mut().for_each(Encoding::reset);
                let _ = reports.send(Report::ScreenFailed(e));
                continue;
            }
            Err(e) => {
                source = None;
                let _ = reports.send(Report::VideoSourceFailed(e));
                continue;
            }
        };
        let sending = enabled || screen.is_some();
        if sending && preview.load(Ordering::Relaxed) {
            let _ = reports.send(Report::Preview(frame.clone()));
        }
        let targets = snapshot_named(&links);
        members.retain(|peer, _| targets.iter().any(|(p, _)| p == peer));
        if !sending {
            continue;
        }
        let worth = size_ceiling_bps(frame.width(), frame.height());
        if ceiling != Some(worth) {
            ceiling = Some(worth);
            let _ = reports.send(Report::Ceiling(worth));
        }
        let fps = screen.as_ref().or(source.as_ref()).map_or(30, |s| s.fps());
        let captured = Instant::now();
        for (index, encoding) in encodings.iter_mut().enumerate() {
            // Nothing is encoded before a member can receive it: the first
            // picture a member gets is the keyframe made when it connected.
            let to: Vec<_> = targets
                .iter()
                .filter(|(peer, link)| link.sends_media() && plan.encoding_of(peer) == index)
                .collect();
            if to.is_empty() {
                // An encoding no one gets costs nothing.
                if index > 0 {
                    encoding.reset();
                }
                continue;
            }
            for (peer, _) in &to {
                members.entry(peer.clone()).or_default();
            }
            let needs = members
                .iter_mut()
                .filter(|(peer, _)| to.iter().any(|(p, _)| p == *peer))
                .map(|(_, member)| &mut member.keyframe);
            let picture = match encoding
                .encode(&frame, fps, captured, needs, screen.is_some(), cpu.level())
                .await
            {
                Ok(picture) => picture,
                Err(Skipped::Nothing) => continue,
                Err(Skipped::NoEncoder) => {
                    source = None;
                    break;
                }
            };
            for (peer, link) in to {
                // Made above, before encoding.
                let Some(member) = members.get_mut(peer) else {
                    continue;
                };
                let duration = member
                    .last_sent
                    .map_or(picture.period, |t| captured.duration_since(t));
                member.last_sent = Some(captured);
                if let Err(e) = link.send_video(picture.unit.clone(), duration).await {
                    debug!(error = %e, "sending video failed");
                }
            }
        }
        // The encoders' CPU: all encodings of this picture together.
        let spent: std::time::Duration = encodings.iter_mut().map(Encoding::take_spent).sum();
        if !spent.is_zero() {
            cpu.note(captured, spent);
        }
        // The usage is summed over its window only when it is judged or logged.
        if let Some(level) = cpu.check(Instant::now()) {
            debug!(?level, "video follows the CPU");
        }
        if last_usage_log.elapsed() >= CHECK_EVERY {
            last_usage_log = Instant::now();
            debug!(usage = ?cpu.usage(), level = ?cpu.level(), "the encoders' CPU");
        }
    }
}

/// Moves the encodings to a new plan: bitrates set, encodings added or let
/// go, and every member now on another encoding starts it from a keyframe.
fn follow(
    old: &Plan,
    new: &Plan,
    encodings: &mut Vec<Encoding>,
    members: &mut HashMap<PeerId, Member>,
) {
    encodings.truncate(new.bitrates.len());
    for (index, &bps) in new.bitrates.iter().enumerate() {
        match encodings.get_mut(index) {
            Some(encoding) => encoding.set_bitrate(bps),
            None => encodings.push(Encoding::new(bps)),
        }
    }
    for peer in old.placed.keys().chain(new.placed.keys()) {
        if old.encoding_of(peer) != new.encoding_of(peer) {
            members.entry(peer.clone()).or_default().keyframe.now = true;
        }
    }
    if new.bitrates.len() != old.bitrates.len() {
        debug!(bitrates = ?new.bitrates, "video encodings");
    }
}
