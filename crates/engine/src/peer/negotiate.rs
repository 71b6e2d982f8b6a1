//! Negotiation of a link by the protocol's perfect-negotiation rules
//! (polite = greater id), in two halves:
//!
//! - [`Negotiator`], a plain state machine: an input (a remote signal, the
//!   connection asking for negotiation, an ICE restart, the clock), what the
//!   connection's signaling state is and the time go in; the [`Step`]s to
//!   take come out. It never touches the connection nor reads a clock, so
//!   every rule is unit-tested below.
//! - [`negotiate`], the link's task: takes the inputs one at a time, asks
//!   the negotiator, and carries the steps out on the `PeerConnection`,
//!   stopping at the first that fails.
//!
//! Over 600 lines with its tests (240 of them, one per rule): the rules
//! and their tests read side by side.

use std::sync::Arc;
use std::time::Instant;

use huddle_protocol::signal::{IceCandidate, SdpKind, SessionDescription};
use huddle_protocol::SignalData;
use tokio::sync::{mpsc, watch};
use tracing::debug;
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCSdpType, RTCSessionDescription,
};

use super::{Input, PeerError, PeerEvent, OFFER_RESEND, OFFER_RESENDS, RESTART_AFTER_DISCONNECTED};

/// The connection's signaling state, as far as negotiation cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Observed {
    /// No description of either side is pending.
    pub stable: bool,
    /// A remote description has been agreed (the connection has a current
    /// one).
    pub agreed: bool,
    /// Our offer is pending (no answer applied yet).
    pub offering: bool,
}

/// One thing to do to the connection, in the order given.
#[derive(Debug, PartialEq)]
pub(super) enum Step {
    /// Gather anew (new ICE credentials) before the next offer.
    RestartIce,
    /// Create an offer, make it the local description and send it.
    Offer,
    /// Roll back our own pending offer (we are polite and offers crossed).
    Rollback,
    /// Apply the remote description; report success with
    /// [`Negotiator::remote_applied`].
    SetRemote(SessionDescription),
    /// Create an answer, make it the local description and send it.
    Answer,
    /// Send the current local description again: our pending offer, with
    /// the candidates gathered since (their own signals may have been lost
    /// along with it), or the answer to an offer that came twice.
    SendLocal,
    /// Add a remote candidate. Its failure is an error only if `required`:
    /// candidates of an offer we ignored may well not apply.
    AddCandidate {
        candidate: IceCandidate,
        required: bool,
    },
}

/// The perfect-negotiation state of one link.
#[derive(Debug)]
pub(super) struct Negotiator {
    polite: bool,
    /// The last remote offer collided with ours and we (impolite) ignored it.
    ignoring_offer: bool,
    /// The later joiner offers first; the other side waits for that offer
    /// even if its own connection asks to negotiate, until it has applied a
    /// remote description.
    may_offer: bool,
    last_restart: Option<Instant>,
    /// When our pending offer last went, and how often it may still go
    /// again.
    sent_offer: Option<SentOffer>,
    /// The last remote offer applied, less its candidate lines: the same
    /// again (perhaps with more candidates) is a repeat.
    last_remote_offer: Option<String>,
}

#[derive(Debug)]
struct SentOffer {
    at: Instant,
    resends_left: u32,
}

impl Negotiator {
    pub fn new(polite: bool, initiator: bool) -> Self {
        Self {
            polite,
            ignoring_offer: false,
            may_offer: initiator,
            last_restart: None,
            sent_offer: None,
            last_remote_offer: None,
        }
    }

    /// Whether an offer of ours waits for its answer (the clock matters).
    pub fn awaits_answer(&self) -> bool {
        self.sent_offer.is_some()
    }

    /// Our offer went out at `now`.
    pub fn offer_sent(&mut self, now: Instant) {
        self.sent_offer = Some(SentOffer {
            at: now,
            resends_left: OFFER_RESENDS,
        });
    }

    /// Our pending offer, again, if `due` says so.
    fn resend(&mut self, observed: Observed, now: Instant, due: bool) -> Vec<Step> {
        match &mut self.sent_offer {
            Some(sent) if observed.offering && due && sent.resends_left > 0 => {
                sent.at = now;
                sent.resends_left -= 1;
                vec![Step::SendLocal]
            }
            _ => Vec::new(),
        }
    }

    /// What to do about `input`, given the connection's state at `now`.
    pub fn handle(&mut self, input: Input, observed: Observed, now: Instant) -> Vec<Step> {
        match input {
            Input::NegotiationNeeded => {
                // Tracks never change after the start yet, so once a
                // description has been agreed there is nothing to
                // renegotiate; a late `negotiationneeded` from the driver
                // (see `connect`) must not start a second round.
                if !self.may_offer || observed.agreed || !observed.stable {
                    return Vec::new();
                }
                vec![Step::Offer]
            }
            Input::RestartIce => {
                // Only an agreed connection restarts, one restart at a
                // time; if both sides restart at once, perfect
                // negotiation settles the collision like any other.
                let recent = self
                    .last_restart
                    .is_some_and(|t| now.saturating_duration_since(t) < RESTART_AFTER_DISCONNECTED);
                if !observed.agreed || recent || !observed.stable {
                    return Vec::new();
                }
                self.last_restart = Some(now);
                vec![Step::RestartIce, Step::Offer]
            }
            Input::Tick => {
                let due = self
                    .sent_offer
                    .as_ref()
                    .is_some_and(|sent| now.saturating_duration_since(sent.at) >= OFFER_RESEND);
                self.resend(observed, now, due)
            }
            Input::Resync => self.resend(observed, now, true),
            Input::Remote(SignalData::Sdp { sdp: description })
                if description.kind == SdpKind::Answer && !observed.offering =>
            {
                // The answer to an offer sent twice, already applied.
                Vec::new()
            }
            Input::Remote(SignalData::Sdp { sdp: description })
                if description.kind == SdpKind::Offer
                    && self.last_remote_offer.as_deref()
                        == Some(without_candidates(&description.sdp).as_str()) =>
            {
                // A repeat (our answer may have been lost): the answer again.
                if observed.stable {
                    vec![Step::SendLocal]
                } else {
                    Vec::new()
                }
            }
            Input::Remote(SignalData::Sdp { sdp: description }) => {
                let is_offer = description.kind == SdpKind::Offer;
                let collision = is_offer && !observed.stable;
                self.ignoring_offer = !self.polite && collision;
                if self.ignoring_offer {
                    return Vec::new();
                }
                let mut steps = Vec::with_capacity(3);
                if collision {
                    steps.push(Step::Rollback);
                }
                steps.push(Step::SetRemote(description));
                if is_offer {
                    steps.push(Step::Answer);
                }
                steps
            }
            Input::Remote(SignalData::Candidate {
                candidate: Some(candidate),
            }) => vec![Step::AddCandidate {
                candidate,
                required: !self.ignoring_offer,
            }],
            Input::Remote(SignalData::Candidate { candidate: None }) => Vec::new(),
        }
    }

    /// A remote description was applied: from now on this side may offer;
    /// no offer of ours waits any more (an answer came, or theirs took its
    /// place); an offer is remembered.
    pub fn remote_applied(&mut self, description: &SessionDescription) {
        self.may_offer = true;
        self.sent_offer = None;
        if description.kind == SdpKind::Offer {
            self.last_remote_offer = Some(without_candidates(&description.sdp));
        }
    }
}

/// The negotiation task: inputs one at a time, perfect negotiation.
pub(super) async fn negotiate(
    pc: Arc<dyn PeerConnection>,
    mut negotiator: Negotiator,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    events: mpsc::UnboundedSender<PeerEvent>,
    mut closed: watch::Receiver<bool>,
) {
    // A quarter of the resend interval: an offer goes again within
    // 500–625 ms, not up to twice the interval.
    let mut clock = tokio::time::interval(OFFER_RESEND / 4);
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The task holds the connection, and the connection's handler holds
        // this task's input: only the close signal can end it.
        let input = tokio::select! {
            input = inputs.recv() => match input {
                Some(input) => input,
                None => return,
            },
            _ = clock.tick() => {
                if !negotiator.awaits_answer() {
                    continue;
                }
                Input::Tick
            }
            _ = closed.wait_for(|c| *c) => return,
        };
        let observed = observe(pc.as_ref()).await;
        let steps = negotiator.handle(input, observed, Instant::now());
        for step in steps {
            if let Err(e) = take(pc.as_ref(), &mut negotiator, step, &events).await {
                debug!(error = %e, "negotiation step failed");
                break;
            }
        }
    }
}

async fn observe(pc: &dyn PeerConnection) -> Observed {
    let pending_local = pc.pending_local_description().await;
    Observed {
        offering: pending_local
            .as_ref()
            .is_some_and(|d| d.sdp_type == RTCSdpType::Offer),
        stable: pending_local.is_none() && pc.pending_remote_description().await.is_none(),
        agreed: pc.current_remote_description().await.is_some(),
    }
}

/// Carries one step out on the connection.
async fn take(
    pc: &dyn PeerConnection,
    negotiator: &mut Negotiator,
    step: Step,
    events: &mpsc::UnboundedSender<PeerEvent>,
) -> Result<(), PeerError> {
    match step {
        Step::RestartIce => {
            debug!("restarting ICE");
            pc.restart_ice().await?;
        }
        Step::Offer => {
            let offer = pc.create_offer(None).await?;
            pc.set_local_description(offer).await?;
            if send_local(pc, events).await {
                negotiator.offer_sent(Instant::now());
            }
        }
        Step::Rollback => pc.set_local_description(rollback()).await?,
        Step::SetRemote(description) => {
            pc.set_remote_description(to_rtc(description.clone())?)
                .await?;
            negotiator.remote_applied(&description);
        }
        Step::Answer => {
            let answer = pc.create_answer(None).await?;
            pc.set_local_description(answer).await?;
            send_local(pc, events).await;
        }
        Step::SendLocal => {
            debug!("local description sent again");
            send_local(pc, events).await;
        }
        Step::AddCandidate {
            candidate,
            required,
        } => {
            let init = RTCIceCandidateInit {
                candidate: candidate.candidate,
                sdp_mid: candidate.sdp_mid,
                sdp_mline_index: candidate.sdp_m_line_index,
                username_fragment: candidate.username_fragment,
                ..Default::default()
            };
            if let Err(e) = pc.add_ice_candidate(init).await {
                if required {
                    return Err(e.into());
                }
            }
        }
    }
    Ok(())
}

/// Sends the local description; whether it was an offer.
async fn send_local(pc: &dyn PeerConnection, events: &mpsc::UnboundedSender<PeerEvent>) -> bool {
    let Some(local) = pc.local_description().await else {
        return false;
    };
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
    kind == SdpKind::Offer
}

/// A description without its candidate lines (which grow as ICE gathers).
fn without_candidates(sdp: &str) -> String {
    sdp.lines()
        .filter(|line| !line.starts_with("a=candidate:") && *line != "a=end-of-candidates")
        .collect::<Vec<_>>()
        .join("\n")
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const STABLE: Observed = Observed {
        stable: true,
        agreed: false,
        offering: false,
    };
    const AGREED: Observed = Observed {
        stable: true,
        agreed: true,
        offering: false,
    };
    const OFFERING: Observed = Observed {
        stable: false,
        agreed: false,
        offering: true,
    };

    fn description(kind: SdpKind) -> SessionDescription {
        SessionDescription {
            kind,
            sdp: "v=0".into(),
        }
    }

    fn remote(kind: SdpKind) -> Input {
        Input::Remote(SignalData::Sdp {
            sdp: description(kind),
        })
    }

    fn candidate() -> Input {
        Input::Remote(SignalData::Candidate {
            candidate: Some(IceCandidate {
                candidate: "candidate:1 1 udp 1 10.0.0.1 9 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: None,
            }),
        })
    }

    fn required(steps: &[Step]) -> bool {
        match steps {
            [Step::AddCandidate { required, .. }] => *required,
            other => panic!("expected one candidate, got {other:?}"),
        }
    }

    #[test]
    fn the_initiator_offers_once_while_nothing_is_agreed() {
        let now = Instant::now();
        let mut n = Negotiator::new(false, true);
        assert_eq!(
            n.handle(Input::NegotiationNeeded, STABLE, now),
            [Step::Offer]
        );
        // Its offer is pending: a second request does nothing.
        assert!(n.handle(Input::NegotiationNeeded, OFFERING, now).is_empty());
        // Agreed: nothing to renegotiate.
        assert!(n.handle(Input::NegotiationNeeded, AGREED, now).is_empty());
    }

    #[test]
    fn the_other_side_waits_for_the_first_offer() {
        let now = Instant::now();
        let mut n = Negotiator::new(true, false);
        assert!(n.handle(Input::NegotiationNeeded, STABLE, now).is_empty());
        assert_eq!(
            n.handle(remote(SdpKind::Offer), STABLE, now),
            [Step::SetRemote(description(SdpKind::Offer)), Step::Answer]
        );
        // Not yet applied: still waiting.
        assert!(n.handle(Input::NegotiationNeeded, STABLE, now).is_empty());
        n.remote_applied(&description(SdpKind::Offer));
        assert_eq!(
            n.handle(Input::NegotiationNeeded, STABLE, now),
            [Step::Offer]
        );
    }

    #[test]
    fn an_answer_is_applied_and_not_answered() {
        let mut n = Negotiator::new(false, true);
        assert_eq!(
            n.handle(remote(SdpKind::Answer), OFFERING, Instant::now()),
            [Step::SetRemote(description(SdpKind::Answer))]
        );
    }

    #[test]
    fn crossing_offers_the_impolite_side_ignores_theirs_and_its_candidates() {
        let now = Instant::now();
        let mut n = Negotiator::new(false, true);
        assert!(n.handle(remote(SdpKind::Offer), OFFERING, now).is_empty());
        assert!(!required(&n.handle(candidate(), OFFERING, now)));
        // The next offer, with no collision, is taken and its candidates count.
        assert_eq!(
            n.handle(remote(SdpKind::Offer), STABLE, now),
            [Step::SetRemote(description(SdpKind::Offer)), Step::Answer]
        );
        assert!(required(&n.handle(candidate(), OFFERING, now)));
    }

    #[test]
    fn crossing_offers_the_polite_side_rolls_back_and_answers() {
        let now = Instant::now();
        let mut n = Negotiator::new(true, true);
        assert_eq!(
            n.handle(remote(SdpKind::Offer), OFFERING, now),
            [
                Step::Rollback,
                Step::SetRemote(description(SdpKind::Offer)),
                Step::Answer
            ]
        );
        assert!(required(&n.handle(candidate(), OFFERING, now)));
    }

    #[test]
    fn an_end_of_candidates_does_nothing() {
        let mut n = Negotiator::new(true, false);
        let end = Input::Remote(SignalData::Candidate { candidate: None });
        assert!(n.handle(end, STABLE, Instant::now()).is_empty());
    }

    #[test]
    fn ice_restarts_only_when_agreed_and_stable_and_not_too_often() {
        let start = Instant::now();
        let mut n = Negotiator::new(false, true);
        assert!(n.handle(Input::RestartIce, STABLE, start).is_empty());
        assert!(n
            .handle(
                Input::RestartIce,
                Observed {
                    stable: false,
                    agreed: true,
                    offering: true,
                },
                start
            )
            .is_empty());
        assert_eq!(
            n.handle(Input::RestartIce, AGREED, start),
            [Step::RestartIce, Step::Offer]
        );
        let soon = start + RESTART_AFTER_DISCONNECTED - Duration::from_millis(1);
        assert!(n.handle(Input::RestartIce, AGREED, soon).is_empty());
        let later = start + RESTART_AFTER_DISCONNECTED;
        assert_eq!(
            n.handle(Input::RestartIce, AGREED, later),
            [Step::RestartIce, Step::Offer]
        );
    }

    fn sent() -> Vec<Step> {
        vec![Step::SendLocal]
    }

    #[test]
    fn an_unanswered_offer_goes_again_every_half_second_until_answered() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut n = Negotiator::new(false, true);
        assert!(!n.awaits_answer());
        n.offer_sent(start);
        assert!(n.awaits_answer());
        assert_eq!(OFFER_RESEND, Duration::from_millis(500));
        assert!(n.handle(Input::Tick, OFFERING, at(499)).is_empty());
        assert_eq!(n.handle(Input::Tick, OFFERING, at(500)), sent());
        assert!(n.handle(Input::Tick, OFFERING, at(750)).is_empty());
        assert_eq!(n.handle(Input::Tick, OFFERING, at(1000)), sent());
        // Answered: the wait is over.
        n.remote_applied(&description(SdpKind::Answer));
        assert!(!n.awaits_answer());
        // As it is when their offer takes the place of ours (polite).
        n.offer_sent(start);
        n.remote_applied(&description(SdpKind::Offer));
        assert!(!n.awaits_answer());
        assert!(n.handle(Input::Tick, AGREED, at(5000)).is_empty());
    }

    #[test]
    fn an_offer_goes_again_for_thirty_seconds_at_most() {
        let start = Instant::now();
        let mut n = Negotiator::new(false, true);
        n.offer_sent(start);
        let resent = (1..=80)
            .filter(|k| {
                !n.handle(Input::Tick, OFFERING, start + OFFER_RESEND * *k)
                    .is_empty()
            })
            .count();
        assert_eq!(resent, OFFER_RESENDS as usize);
        assert_eq!(OFFER_RESEND * OFFER_RESENDS, Duration::from_secs(30));
    }

    #[test]
    fn a_new_signaling_socket_sends_a_pending_offer_at_once() {
        let now = Instant::now();
        let mut n = Negotiator::new(false, true);
        assert!(n.handle(Input::Resync, STABLE, now).is_empty());
        n.offer_sent(now);
        assert_eq!(n.handle(Input::Resync, OFFERING, now), sent());
        // Rolled back (the connection no longer offers): nothing to send.
        assert!(n.handle(Input::Resync, STABLE, now).is_empty());
    }

    #[test]
    fn a_repeated_offer_is_answered_again_and_a_repeated_answer_dropped() {
        let now = Instant::now();
        let mut n = Negotiator::new(true, false);
        let offer = description(SdpKind::Offer);
        assert_eq!(
            n.handle(remote(SdpKind::Offer), STABLE, now),
            [Step::SetRemote(offer.clone()), Step::Answer]
        );
        n.remote_applied(&offer);
        assert_eq!(
            n.handle(remote(SdpKind::Offer), AGREED, now),
            [Step::SendLocal]
        );
        // Mid-negotiation of our own, a repeat is not answered.
        assert!(n.handle(remote(SdpKind::Offer), OFFERING, now).is_empty());
        // An answer while no offer of ours waits is a repeat.
        assert!(n.handle(remote(SdpKind::Answer), AGREED, now).is_empty());
        // The same offer with a candidate more is still a repeat.
        let more = Input::Remote(SignalData::Sdp {
            sdp: SessionDescription {
                kind: SdpKind::Offer,
                sdp: "v=0\r\na=candidate:1 1 udp 1 192.0.2.1 9 typ host\r\n".into(),
            },
        });
        assert_eq!(n.handle(more, AGREED, now), [Step::SendLocal]);
    }
}
