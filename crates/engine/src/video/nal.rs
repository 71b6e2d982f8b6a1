//! What an H.264 RTP payload (RFC 6184) says about the picture it belongs
//! to, read from its NAL unit headers: whether it begins a keyframe.
//!
//! A payload is one NAL unit, an aggregate (STAP-A: several whole units)
//! or a fragment of one (FU-A); the type is the low 5 bits of a unit's
//! first byte, and a fragment carries its unit's type in its second byte.

/// A slice of a picture that is not IDR.
pub(crate) const SLICE: u8 = 1;
pub(crate) const IDR: u8 = 5;
const SPS: u8 = 7;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

fn nal_type(byte: u8) -> u8 {
    byte & 0x1F
}

/// Whether the payload's first NAL unit, alone or first in an aggregate,
/// is a sequence parameter set — what every keyframe of ours (and
/// Chromium's) starts with.
pub fn begins_with_sps(payload: &[u8]) -> bool {
    match payload {
        [first, ..] if first & 0x80 != 0 => false,
        [first, ..] if nal_type(*first) == SPS => true,
        // A STAP-A: its header, then each unit's 16-bit size and the unit.
        [first, _, _, inner, ..] if nal_type(*first) == STAP_A => nal_type(*inner) == SPS,
        _ => false,
    }
}

/// Whether a picture whose first packet carries `payload` is a keyframe:
/// it starts with a sequence parameter set, or with an IDR slice (whole,
/// aggregated or the first fragment of one) for a sender that sent its
/// parameter sets apart.
pub fn starts_keyframe(payload: &[u8]) -> bool {
    if begins_with_sps(payload) {
        return true;
    }
    match payload {
        [first, ..] if first & 0x80 != 0 => false,
        [first, ..] if nal_type(*first) == IDR => true,
        [first, _, _, inner, ..] if nal_type(*first) == STAP_A => nal_type(*inner) == IDR,
        [first, fu, ..] if nal_type(*first) == FU_A => fu & 0x80 != 0 && nal_type(*fu) == IDR,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframes_are_told_from_other_pictures() {
        let sps = [0x67, 0x42, 0xC0];
        let stap_sps = [0x78, 0x00, 0x03, 0x67, 0x42, 0xC0];
        let idr = [0x65, 0x88];
        let idr_start = [0x7C, 0x85, 0x88];
        let idr_middle = [0x7C, 0x05, 0x88];
        let slice = [0x41, 0x9A];
        let slice_start = [0x5C, 0x81, 0x9A];
        for key in [&sps[..], &stap_sps, &idr, &idr_start] {
            assert!(starts_keyframe(key), "{key:02x?}");
        }
        for other in [&idr_middle[..], &slice, &slice_start, &[], &[0xE7]] {
            assert!(!starts_keyframe(other), "{other:02x?}");
        }
        assert!(begins_with_sps(&sps) && begins_with_sps(&stap_sps));
        assert!(!begins_with_sps(&idr) && !begins_with_sps(&idr_start));
    }
}
