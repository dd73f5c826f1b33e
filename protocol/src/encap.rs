//! PPPoE session frames on the data path, built and taken apart in place.
//!
//! `Ethernet (14) | VLAN tags (4 each, 0..=2) | PPPoE (6) | PPP protocol (2) | payload`
//!
//! Both directions work on the caller's buffer: [`SessionEncap::encapsulate`]
//! writes the headers into headroom the caller left before the payload, and
//! [`decapsulate`] returns where the payload is. Neither allocates, and
//! neither looks further into the frame than the headers.

use core::ops::Range;

use crate::ethernet::{self, ethertype, MacAddr, VlanStack};
use crate::ppp::{self, PROTOCOL_LEN};
use crate::pppoe::{self, Code};
use crate::{Error, Result};

/// Headers of an untagged session frame: Ethernet, PPPoE, PPP protocol.
pub const SESSION_HEADER_LEN: usize = ethernet::HEADER_LEN + pppoe::HEADER_LEN + PROTOCOL_LEN;

/// Headers of a session frame with the most VLAN tags we handle: the
/// headroom that fits every [`SessionEncap`].
pub const MAX_SESSION_HEADER_LEN: usize =
    SESSION_HEADER_LEN + VlanStack::MAX * ethernet::VLAN_TAG_LEN;

/// What every frame of one PPPoE session carries, fixed when the session
/// is established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionEncap {
    /// The access concentrator's MAC address.
    pub dst: MacAddr,
    /// Our MAC address.
    pub src: MacAddr,
    pub vlans: VlanStack,
    pub session_id: u16,
}

impl SessionEncap {
    /// Headroom `encapsulate` needs before the payload.
    pub fn header_len(&self) -> usize {
        SESSION_HEADER_LEN + self.vlans.wire_len()
    }

    /// Writes the Ethernet (and VLAN), PPPoE and PPP protocol headers into
    /// `buf` right before the `payload_len` bytes at `payload_start`, and
    /// returns the range of the whole frame in `buf`. The protocol field is
    /// always sent uncompressed (RFC 2516 §7).
    ///
    /// Errors, without touching `buf`: Truncated if the headroom is smaller
    /// than [`SessionEncap::header_len`] or the payload overruns `buf`;
    /// Malformed if the payload is too long for the PPPoE length field.
    pub fn encapsulate(
        &self,
        buf: &mut [u8],
        payload_start: usize,
        payload_len: usize,
        protocol: u16,
    ) -> Result<Range<usize>> {
        let header_len = self.header_len();
        let frame_start = payload_start
            .checked_sub(header_len)
            .ok_or(Error::Truncated)?;
        let frame_end = payload_start
            .checked_add(payload_len)
            .ok_or(Error::Truncated)?;
        if frame_end > buf.len() {
            return Err(Error::Truncated);
        }
        let pppoe_len = payload_len
            .checked_add(PROTOCOL_LEN)
            .and_then(|len| u16::try_from(len).ok())
            .ok_or(Error::Malformed)?;

        let header = &mut buf[frame_start..payload_start];
        let (ethernet_header, session_header) =
            header.split_at_mut(header_len - pppoe::HEADER_LEN - PROTOCOL_LEN);
        let ethernet = ethernet::Repr {
            dst: self.dst,
            src: self.src,
            vlans: self.vlans,
            ethertype: ethertype::PPPOE_SESSION,
        };
        ethernet.emit(ethernet_header);
        let [sid_high, sid_low] = self.session_id.to_be_bytes();
        let [len_high, len_low] = pppoe_len.to_be_bytes();
        let [proto_high, proto_low] = protocol.to_be_bytes();
        session_header.copy_from_slice(&[
            pppoe::VER_TYPE,
            Code::Session.into(),
            sid_high,
            sid_low,
            len_high,
            len_low,
            proto_high,
            proto_low,
        ]);
        Ok(frame_start..frame_end)
    }

    /// A new frame carrying `payload` as `protocol`, for packets built apart
    /// from the data path's buffers (control packets, test peers).
    ///
    /// Errors: Malformed if the payload is too long for the PPPoE length field.
    pub fn to_frame(&self, protocol: u16, payload: &[u8]) -> Result<Vec<u8>> {
        let header_len = self.header_len();
        let mut frame = vec![0; header_len.saturating_add(payload.len())];
        frame[header_len..].copy_from_slice(payload);
        self.encapsulate(&mut frame, header_len, payload.len(), protocol)?;
        Ok(frame)
    }
}

/// Where a received session frame's payload is, and what it carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decapsulated {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub vlans: VlanStack,
    pub session_id: u16,
    /// The PPP protocol number (from a one- or two-byte field).
    pub protocol: u16,
    /// The PPP payload within the frame, bounded by the PPPoE length field
    /// (Ethernet padding after it is excluded).
    pub payload: Range<usize>,
}

/// Takes a received Ethernet frame apart as a PPPoE session frame.
///
/// Errors: Unsupported if the (inner) EtherType is not PPPoE session or
/// there are more than two VLAN tags; Malformed if version/type is not 1/1,
/// the code is not 0 or the protocol field is invalid; Truncated if a header
/// is cut short or the PPPoE length exceeds the bytes present.
pub fn decapsulate(frame: &[u8]) -> Result<Decapsulated> {
    let (ethernet, pppoe_start) = ethernet::Repr::parse(frame)?;
    if ethernet.ethertype != ethertype::PPPOE_SESSION {
        return Err(Error::Unsupported);
    }
    let session = frame.get(pppoe_start..).ok_or(Error::Truncated)?;
    let packet = match session {
        [pppoe::VER_TYPE, 0, _, _, _, _, ..] => pppoe::Packet::new_checked(session)?,
        [_, _, _, _, _, _, ..] => return Err(Error::Malformed),
        _ => return Err(Error::Truncated),
    };
    let (protocol, protocol_len) = ppp::parse_protocol(packet.payload())?;
    let payload_start = pppoe_start + pppoe::HEADER_LEN + protocol_len;
    let payload_end = pppoe_start + pppoe::HEADER_LEN + usize::from(packet.length());
    Ok(Decapsulated {
        dst: ethernet.dst,
        src: ethernet.src,
        vlans: ethernet.vlans,
        session_id: packet.session_id(),
        protocol,
        payload: payload_start..payload_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ethernet::VlanTag;
    use proptest::prelude::*;

    fn bytes(hex_text: &str) -> Vec<u8> {
        hex::decode(hex_text).unwrap()
    }

    // captures/public/zeek/pppoe.pcap frame 30: session 0x0011, IPv6 (an
    // ICMPv6 MLD report), untagged, 98 bytes with no padding.
    const ZEEK_IPV6: &str = "cc050e880000ca010e880006886411000011004e00576e00000000240001fe8000\
        0000000000c8010efffe880008ff0200000000000000000000000000163a000502000001008f009a770000\
        000104000000ff020000000000000000000000000002";

    // captures/public/zeek/pppoe.pcap frame 5: LCP Configure-Request (PPPoE
    // length 12) padded to the 60-byte Ethernet minimum.
    const ZEEK_LCP_PADDED: &str = "ca010e880006cc050e880000886411000011000cc0210101000a050605fcd4\
        5900000000000000000000000000000000000000000000000000000000";

    // captures/public/zeek/pppoe-over-qinq.pcap frame 3: two 0x8100 tags (VIDs
    // 3704, 2474), session 0x0f07, IPv4 TCP ACK; PPPoE length matches the frame.
    const QINQ_ACK: &str = "00000000000100000000000081000e78810009aa886411000f07002a002145000028\
        000040003f0635cb01010101020202024faa01bbd7a84156fc90a2ff501010008fda0000";

    // Same capture, frame 19: PPPoE length 42 but 48 bytes follow the PPPoE
    // header (the IPv4 header claims 46); the PPPoE length wins.
    const QINQ_SHORT_LENGTH: &str = "bcd17717750d00000000000081000e78810009aa886411000f07002a0021\
        4500002e1c464000ef06697e020202020101010101bb4faafc90b007d7a844995010086287270000000000\
        000000";

    // captures/public/suricata-verify/bug-4810_pppoe-session-http.pcap frame 3:
    // session 0x002d with the protocol field compressed to one byte (0x21).
    const SURICATA_PFC: &str = "000c2939f3c3000c29208ea188641100002d0035214500003400004000400\
        6ede20a6400008efab383deb50050d4bd7655502bc8dd80100202e87c00000101080acbae9275e1c6bc4f";

    fn qinq_vlans() -> VlanStack {
        VlanStack::from_slice(&[
            VlanTag::new(ethertype::VLAN, 3704),
            VlanTag::new(ethertype::VLAN, 2474),
        ])
        .unwrap()
    }

    #[test]
    fn decapsulates_untagged_ipv6() {
        let frame = bytes(ZEEK_IPV6);
        let d = decapsulate(&frame).unwrap();
        assert_eq!(d.dst, "cc:05:0e:88:00:00".parse().unwrap());
        assert_eq!(d.src, "ca:01:0e:88:00:06".parse().unwrap());
        assert!(d.vlans.is_empty());
        assert_eq!(d.session_id, 0x0011);
        assert_eq!(d.protocol, 0x0057);
        assert_eq!(d.payload, 22..98);
        assert_eq!(frame[d.payload.start] >> 4, 6);
    }

    #[test]
    fn decapsulates_qinq() {
        let frame = bytes(QINQ_ACK);
        let d = decapsulate(&frame).unwrap();
        assert_eq!(d.vlans, qinq_vlans());
        assert_eq!(d.session_id, 0x0f07);
        assert_eq!(d.protocol, 0x0021);
        assert_eq!(d.payload, 30..70);
    }

    #[test]
    fn payload_follows_pppoe_length() {
        let frame = bytes(QINQ_SHORT_LENGTH);
        assert_eq!(frame.len(), 76);
        let d = decapsulate(&frame).unwrap();
        // 42 bytes of PPPoE payload = 2 of protocol + 40 of IPv4.
        assert_eq!(d.payload, 30..70);
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        let frame = bytes(ZEEK_LCP_PADDED);
        assert_eq!(frame.len(), 60);
        let d = decapsulate(&frame).unwrap();
        assert_eq!(d.protocol, 0xc021);
        assert_eq!(d.payload, 22..32);
        assert_eq!(
            frame[d.payload.clone()],
            [1, 1, 0, 10, 5, 6, 5, 0xfc, 0xd4, 0x59]
        );
    }

    #[test]
    fn accepts_compressed_protocol_field() {
        let frame = bytes(SURICATA_PFC);
        let d = decapsulate(&frame).unwrap();
        assert_eq!(d.session_id, 0x002d);
        assert_eq!(d.protocol, 0x0021);
        assert_eq!(d.payload, 21..73);
        assert_eq!(frame[21], 0x45);
    }

    /// Re-encapsulates the payload of a real frame with the frame's own
    /// parameters and expects the frame back, byte for byte.
    fn rebuild(frame: &[u8]) -> Vec<u8> {
        let d = decapsulate(frame).unwrap();
        let encap = SessionEncap {
            dst: d.dst,
            src: d.src,
            vlans: d.vlans,
            session_id: d.session_id,
        };
        let headroom = MAX_SESSION_HEADER_LEN + 3;
        let payload = &frame[d.payload.clone()];
        let mut buf = vec![0xa5; headroom + payload.len() + 5];
        buf[headroom..headroom + payload.len()].copy_from_slice(payload);
        let range = encap
            .encapsulate(&mut buf, headroom, payload.len(), d.protocol)
            .unwrap();
        assert_eq!(range.len(), encap.header_len() + payload.len());
        buf[range].to_vec()
    }

    #[test]
    fn encapsulate_rebuilds_captured_frames() {
        for fixture in [ZEEK_IPV6, QINQ_ACK] {
            let frame = bytes(fixture);
            assert_eq!(rebuild(&frame), frame);
        }
        // Padding is dropped and the compressed protocol field is sent in full.
        let padded = bytes(ZEEK_LCP_PADDED);
        assert_eq!(rebuild(&padded), padded[..32]);
        let pfc = bytes(SURICATA_PFC);
        let rebuilt = rebuild(&pfc);
        assert_eq!(rebuilt[..18], pfc[..18]);
        assert_eq!(rebuilt[18..22], [0x00, 0x36, 0x00, 0x21]);
        assert_eq!(rebuilt[22..], pfc[21..]);
    }

    #[test]
    fn round_trip() {
        let encap = SessionEncap {
            dst: MacAddr([2, 0, 0, 0, 0, 1]),
            src: MacAddr([2, 0, 0, 0, 0, 2]),
            vlans: qinq_vlans(),
            session_id: 0x1234,
        };
        assert_eq!(encap.header_len(), 30);
        let mut buf = [0u8; 64];
        buf[40..44].copy_from_slice(&[0x45, 0, 0, 4]);
        let range = encap.encapsulate(&mut buf, 40, 4, 0x0021).unwrap();
        assert_eq!(range, 10..44);
        let d = decapsulate(&buf[range.clone()]).unwrap();
        assert_eq!(
            (d.session_id, d.protocol, d.vlans),
            (0x1234, 0x0021, qinq_vlans())
        );
        assert_eq!(buf[range][d.payload], [0x45, 0, 0, 4]);
    }

    #[test]
    fn to_frame_builds_captured_frames() {
        for fixture in [ZEEK_IPV6, QINQ_ACK] {
            let frame = bytes(fixture);
            let d = decapsulate(&frame).unwrap();
            let encap = SessionEncap {
                dst: d.dst,
                src: d.src,
                vlans: d.vlans,
                session_id: d.session_id,
            };
            let built = encap.to_frame(d.protocol, &frame[d.payload]).unwrap();
            assert_eq!(built, frame);
        }
        let encap = SessionEncap {
            dst: MacAddr([2, 0, 0, 0, 0, 1]),
            src: MacAddr([2, 0, 0, 0, 0, 2]),
            vlans: VlanStack::default(),
            session_id: 1,
        };
        assert_eq!(encap.to_frame(0x21, &[0; 65_534]), Err(Error::Malformed));
    }

    #[test]
    fn encapsulate_errors() {
        let encap = SessionEncap {
            dst: MacAddr::BROADCAST,
            src: MacAddr::ZERO,
            vlans: VlanStack::new(),
            session_id: 1,
        };
        let mut buf = vec![0u8; 70_000];
        // Headroom one byte short.
        assert_eq!(
            encap.encapsulate(&mut buf, 21, 10, 0x21),
            Err(Error::Truncated)
        );
        // Payload overrunning the buffer, including by overflow.
        assert_eq!(
            encap.encapsulate(&mut buf, 22, 70_000, 0x21),
            Err(Error::Truncated)
        );
        assert_eq!(
            encap.encapsulate(&mut buf, 22, usize::MAX, 0x21),
            Err(Error::Truncated)
        );
        assert_eq!(
            encap.encapsulate(&mut buf, usize::MAX, 1, 0x21),
            Err(Error::Truncated)
        );
        // Longest payload the length field allows, and one more.
        assert!(encap.encapsulate(&mut buf, 22, 65_533, 0x21).is_ok());
        assert_eq!(
            encap.encapsulate(&mut buf, 22, 65_534, 0x21),
            Err(Error::Malformed)
        );
        assert_eq!(SESSION_HEADER_LEN, 22);
        assert_eq!(MAX_SESSION_HEADER_LEN, 30);
    }

    #[test]
    fn decapsulate_errors() {
        let ipv6 = bytes(ZEEK_IPV6);
        let qinq = bytes(QINQ_ACK);
        // captures/public/zeek/pppoe.pcap frame 1, a PADI: discovery, not session.
        let padi = bytes("ffffffffffffcc050e880000886311090000000c01010000010300046413851800");
        assert_eq!(decapsulate(&padi), Err(Error::Unsupported));

        let with = |at: usize, value: &[u8]| {
            let mut frame = ipv6.clone();
            frame[at..at + value.len()].copy_from_slice(value);
            frame
        };
        // The cases below are the IPv6 frame with one field changed.
        let cases: [(Vec<u8>, Error); 9] = [
            (with(12, &[0x08, 0x00]), Error::Unsupported), // IPv4 EtherType
            (with(14, &[0x21]), Error::Malformed),         // version 2
            (with(14, &[0x12]), Error::Malformed),         // type 2
            (with(15, &[0x65]), Error::Malformed),         // PADS code
            (with(18, &[0x00, 0x4f]), Error::Truncated),   // length one beyond the frame
            (with(18, &[0x00, 0x00]), Error::Truncated),   // no room for a protocol field
            (with(18, &[0x00, 0x01]), Error::Truncated),   // half a protocol field
            (with(20, &[0x00, 0x56]), Error::Malformed),   // even protocol number
            (ipv6[..19].to_vec(), Error::Truncated),       // PPPoE header cut short
        ];
        for (frame, error) in cases {
            assert_eq!(
                decapsulate(&frame),
                Err(error),
                "{}",
                hex::encode(&frame[..22])
            );
        }
        assert_eq!(decapsulate(&ipv6[..13]), Err(Error::Truncated));
        assert_eq!(decapsulate(&qinq[..25]), Err(Error::Truncated));
        // A third VLAN tag.
        let mut triple = qinq.clone();
        triple[20..22].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(decapsulate(&triple), Err(Error::Unsupported));
    }

    fn arb_protocol() -> impl Strategy<Value = u16> {
        // Valid protocol numbers: first octet even, last octet odd.
        (any::<u8>(), any::<u8>())
            .prop_map(|(high, low)| u16::from_be_bytes([high & 0xfe, low | 1]))
    }

    proptest! {
        #[test]
        fn decapsulate_never_panics(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(d) = decapsulate(&data) {
                prop_assert!(d.payload.start <= d.payload.end && d.payload.end <= data.len());
            }
        }

        // Random bytes behind a valid session header reach the deeper checks.
        #[test]
        fn decapsulate_never_panics_behind_a_header(tail in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut frame = bytes(QINQ_ACK)[..26].to_vec();
            frame.extend_from_slice(&tail);
            if let Ok(d) = decapsulate(&frame) {
                prop_assert!(d.payload.end <= frame.len());
            }
        }

        #[test]
        fn encapsulate_then_decapsulate(
            dst in any::<[u8; 6]>(),
            src in any::<[u8; 6]>(),
            vids in proptest::collection::vec(any::<u16>(), 0..=2),
            session_id in any::<u16>(),
            protocol in arb_protocol(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            headroom in 0usize..40,
            tail in 0usize..8,
        ) {
            let tags: Vec<VlanTag> = vids.iter().map(|vid| VlanTag::new(ethertype::QINQ, *vid)).collect();
            let encap = SessionEncap { dst: MacAddr(dst), src: MacAddr(src), vlans: VlanStack::from_slice(&tags).unwrap(), session_id };
            let mut buf = vec![0u8; headroom + payload.len() + tail];
            buf[headroom..headroom + payload.len()].copy_from_slice(&payload);
            match encap.encapsulate(&mut buf, headroom, payload.len(), protocol) {
                Ok(range) => {
                    prop_assert!(headroom >= encap.header_len());
                    let frame = &buf[range];
                    let d = decapsulate(frame).unwrap();
                    prop_assert_eq!((d.dst, d.src, d.vlans, d.session_id, d.protocol), (encap.dst, encap.src, encap.vlans, session_id, protocol));
                    prop_assert_eq!(&frame[d.payload], &payload[..]);
                }
                Err(error) => {
                    prop_assert_eq!(error, Error::Truncated);
                    prop_assert!(headroom < encap.header_len());
                }
            }
        }

        #[test]
        fn encapsulate_never_panics(start in any::<usize>(), len in any::<usize>(), size in 0usize..64) {
            let encap = SessionEncap { dst: MacAddr::BROADCAST, src: MacAddr::ZERO, vlans: VlanStack::new(), session_id: 7 };
            let mut buf = vec![0u8; size];
            let _ = encap.encapsulate(&mut buf, start % 80, len % 80, 0x21);
            let _ = encap.encapsulate(&mut buf, start, len, 0x21);
        }
    }
}
