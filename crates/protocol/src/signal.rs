//! The WebRTC negotiation payload that `signal` carries between two peers.
//!
//! The server does not interpret it beyond checking its shape and bounds, but
//! it is typed so that a malformed offer is refused at the sender instead of
//! failing inside the recipient's WebRTC stack.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use ts_rs::TS;

/// `data` of a `signal` message: a session description or an ICE candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(untagged)]
pub enum SignalData {
    /// `{"sdp": {...}}`: an offer, answer or rollback.
    Sdp {
        /// The description.
        sdp: SessionDescription,
    },
    /// `{"candidate": {...}}`, or `{"candidate": null}` for end of candidates.
    Candidate {
        /// The candidate; `None` marks the end of candidates.
        candidate: Option<IceCandidate>,
    },
}

/// `RTCSessionDescriptionInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SessionDescription {
    /// Offer, answer or rollback.
    #[serde(rename = "type")]
    pub kind: SdpKind,
    /// The SDP text; empty for a rollback.
    #[serde(default)]
    pub sdp: String,
}

/// The `type` of a session description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SdpKind {
    /// An offer.
    Offer,
    /// An answer.
    Answer,
    /// A provisional answer (browsers may produce it).
    Pranswer,
    /// Undo the pending offer (perfect negotiation).
    Rollback,
}

/// `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// The `candidate:` line.
    pub candidate: String,
    /// The media stream identification tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub sdp_mid: Option<String>,
    /// Index of the m-line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub sdp_m_line_index: Option<u16>,
    /// ICE ufrag the candidate belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub username_fragment: Option<String>,
}

// Written by hand rather than `#[serde(untagged)]`: untagged buffers the whole
// payload (an SDP is kilobytes) and then guesses; here the key decides, and
// `"candidate": null` stays distinct from a missing `candidate`.
impl<'de> Deserialize<'de> for SignalData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DataVisitor;

        impl<'de> Visitor<'de> for DataVisitor {
            type Value = SignalData;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with `sdp` or `candidate`")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SignalData, A::Error> {
                let mut found: Option<SignalData> = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let value = match key.as_ref() {
                        "sdp" => SignalData::Sdp {
                            sdp: map.next_value()?,
                        },
                        "candidate" => SignalData::Candidate {
                            candidate: map.next_value()?,
                        },
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if found.is_some() {
                        return Err(de::Error::custom(
                            "`data` must hold only one of `sdp` and `candidate`",
                        ));
                    }
                    found = Some(value);
                }
                found.ok_or_else(|| de::Error::custom("`data` needs `sdp` or `candidate`"))
            }
        }

        deserializer.deserialize_map(DataVisitor)
    }
}
