//! The negotiation task of a link: remote signals and the connection's
//! requests for negotiation, one at a time, by the protocol's
//! perfect-negotiation rules (polite = greater id).

use std::sync::Arc;
use std::time::Instant;

use huddle_protocol::signal::{SdpKind, SessionDescription};
use huddle_protocol::SignalData;
use tokio::sync::{mpsc, watch};
use tracing::debug;
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCSdpType, RTCSessionDescription,
};

use super::{Input, PeerError, PeerEvent, RESTART_AFTER_DISCONNECTED};

/// The negotiation task: inputs one at a time, perfect negotiation.
pub(super) async fn negotiate(
    pc: Arc<dyn PeerConnection>,
    polite: bool,
    initiator: bool,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    events: mpsc::UnboundedSender<PeerEvent>,
    mut closed: watch::Receiver<bool>,
) {
    let mut ignoring_offer = false;
    // The later joiner offers first; the other side waits for that offer
    // even if its own connection asks to negotiate.
    let mut may_offer = initiator;
    let mut last_restart: Option<Instant> = None;
    loop {
        // The task holds the connection, and the connection's handler holds
        // this task's input: only the close signal can end it.
        let input = tokio::select! {
            input = inputs.recv() => match input {
                Some(input) => input,
                None => return,
            },
            _ = closed.wait_for(|c| *c) => return,
        };
        let result: Result<(), PeerError> = async {
            match input {
                Input::NegotiationNeeded => {
                    // Tracks never change after the start yet, so once a
                    // description has been agreed there is nothing to
                    // renegotiate; a late `negotiationneeded` from the driver
                    // (see `connect`) must not start a second round.
                    let agreed = pc.current_remote_description().await.is_some();
                    if !may_offer || agreed || !stable(pc.as_ref()).await {
                        return Ok(());
                    }
                    let offer = pc.create_offer(None).await?;
                    pc.set_local_description(offer).await?;
                    send_local(pc.as_ref(), &events).await;
                }
                Input::RestartIce => {
                    // Only an agreed connection restarts, one restart at a
                    // time; if both sides restart at once, perfect
                    // negotiation settles the collision like any other.
                    let agreed = pc.current_remote_description().await.is_some();
                    let recent = last_restart
                        .is_some_and(|t: Instant| t.elapsed() < RESTART_AFTER_DISCONNECTED);
                    if !agreed || recent || !stable(pc.as_ref()).await {
                        return Ok(());
                    }
                    last_restart = Some(Instant::now());
                    debug!("restarting ICE");
                    pc.restart_ice().await?;
                    let offer = pc.create_offer(None).await?;
                    pc.set_local_description(offer).await?;
                    send_local(pc.as_ref(), &events).await;
                }
                Input::Remote(SignalData::Sdp { sdp: description }) => {
                    let collision =
                        description.kind == SdpKind::Offer && !stable(pc.as_ref()).await;
                    ignoring_offer = !polite && collision;
                    if ignoring_offer {
                        return Ok(());
                    }
                    if collision {
                        pc.set_local_description(rollback()).await?;
                    }
                    let is_offer = description.kind == SdpKind::Offer;
                    pc.set_remote_description(to_rtc(description)?).await?;
                    may_offer = true;
                    if is_offer {
                        let answer = pc.create_answer(None).await?;
                        pc.set_local_description(answer).await?;
                        send_local(pc.as_ref(), &events).await;
                    }
                }
                Input::Remote(SignalData::Candidate {
                    candidate: Some(candidate),
                }) => {
                    let init = RTCIceCandidateInit {
                        candidate: candidate.candidate,
                        sdp_mid: candidate.sdp_mid,
                        sdp_mline_index: candidate.sdp_m_line_index,
                        username_fragment: candidate.username_fragment,
                        ..Default::default()
                    };
                    if let Err(e) = pc.add_ice_candidate(init).await {
                        if !ignoring_offer {
                            return Err(e.into());
                        }
                    }
                }
                Input::Remote(SignalData::Candidate { candidate: None }) => {}
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            debug!(error = %e, "negotiation step failed");
        }
    }
}

async fn stable(pc: &dyn PeerConnection) -> bool {
    pc.pending_local_description().await.is_none()
        && pc.pending_remote_description().await.is_none()
}

async fn send_local(pc: &dyn PeerConnection, events: &mpsc::UnboundedSender<PeerEvent>) {
    if let Some(local) = pc.local_description().await {
        tracing::trace!(sdp = %local.sdp, "local description");
        let kind = match local.sdp_type {
            RTCSdpType::Offer => SdpKind::Offer,
            RTCSdpType::Pranswer => SdpKind::Pranswer,
            _ => SdpKind::Answer,
        };
        let _ = events.send(PeerEvent::Signal(SignalData::Sdp {
            sdp: SessionDescription {
                kind,
                sdp: local.sdp,
            },
        }));
    }
}

/// A rollback description (its private fields have no constructor).
pub(super) fn rollback() -> RTCSessionDescription {
    let mut description = RTCSessionDescription::default();
    description.sdp_type = RTCSdpType::Rollback;
    description
}

pub(super) fn to_rtc(description: SessionDescription) -> Result<RTCSessionDescription, PeerError> {
    Ok(match description.kind {
        SdpKind::Offer => RTCSessionDescription::offer(description.sdp)?,
        SdpKind::Answer => RTCSessionDescription::answer(description.sdp)?,
        SdpKind::Pranswer => RTCSessionDescription::pranswer(description.sdp)?,
        SdpKind::Rollback => rollback(),
    })
}
