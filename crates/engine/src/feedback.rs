//! Keyframe requests for the application.
//!
//! webrtc-rs hands inbound RTCP to its interceptors and stops it at the end
//! of the chain unless an interceptor marks a packet for the application. A
//! sender must see the receiver's PLI and FIR to answer with a keyframe, so
//! this interceptor, last in the chain, keeps exactly those and marks them.

use rtc::interceptor::{Attribute, Packet, Slot, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;

use crate::tap::{Tap, Tapped};

/// Where it sits: after every interceptor that reads RTCP (reports, NACK,
/// congestion control), so they have all seen the whole of it.
pub const SLOT: usize = 14_000;

/// Whether an RTCP packet asks for a keyframe.
pub fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Passes PLI and FIR on to the application; other inbound RTCP ends here.
#[derive(Debug, Default)]
pub struct KeyframeRequests;

impl KeyframeRequests {
    pub fn interceptor() -> Tapped<KeyframeRequests> {
        Tapped::new(KeyframeRequests)
    }

    pub fn slot() -> Slot {
        Slot::from(SLOT)
    }
}

impl Tap for KeyframeRequests {
    fn read(&mut self, mut message: TaggedPacket) -> Option<TaggedPacket> {
        if let Packet::Rtcp(packets) = &message.message.packet {
            let requests: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| is_keyframe_request(p.as_ref()))
                .cloned()
                .collect();
            if requests.is_empty() {
                return None;
            }
            message.message.packet = Packet::Rtcp(requests);
            message.message.add(Attribute::DeliverToApplication);
        }
        Some(message)
    }
}
