//! encap::decapsulate on arbitrary Ethernet frames, and the encapsulate
//! round trip: the headers a frame decapsulates to, written again around
//! its payload, give back the same frame (and decapsulate the same).
//! Inputs that do not decapsulate drive encapsulate with arbitrary
//! headroom and lengths instead.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portdial_protocol::encap::{self, decapsulate, SessionEncap};
use portdial_protocol::ethernet::{self, MacAddr, VlanStack, VlanTag};
use portdial_protocol::{ppp, pppoe, Error};

fuzz_target!(|data: &[u8]| {
    match decapsulate(data) {
        Ok(decap) => round_trip(data, decap),
        Err(_) => arbitrary_encapsulate(data),
    }
});

fn round_trip(data: &[u8], decap: encap::Decapsulated) {
    let payload = decap.payload.clone();
    assert!(payload.start <= payload.end && payload.end <= data.len());
    // A protocol number's last octet is odd, in either form of the field.
    assert_eq!(decap.protocol & 1, 1);
    // The protocol field is compressed to one byte when its first octet is
    // odd (RFC 1661 §6.5), which is how decapsulate reads it.
    let field_start = frame_header_len(&decap);
    let protocol_len = if data[field_start] & 1 == 1 { 1 } else { 2 };
    assert_eq!(payload.start, field_start + protocol_len);

    let session = SessionEncap {
        dst: decap.dst,
        src: decap.src,
        vlans: decap.vlans,
        session_id: decap.session_id,
    };
    let header_len = session.header_len();
    assert_eq!(header_len, frame_header_len(&decap) + ppp::PROTOCOL_LEN);
    let payload_bytes = &data[payload.clone()];
    let mut buf = vec![0u8; header_len + payload_bytes.len()];
    buf[header_len..].copy_from_slice(payload_bytes);
    let range = session
        .encapsulate(&mut buf, header_len, payload_bytes.len(), decap.protocol)
        .expect("a payload that came from a frame fits a frame");
    assert_eq!(range, 0..buf.len());

    let again = decapsulate(&buf).expect("an encapsulated frame decapsulates");
    assert_eq!(again.dst, decap.dst);
    assert_eq!(again.src, decap.src);
    assert_eq!(again.vlans, decap.vlans);
    assert_eq!(again.session_id, decap.session_id);
    assert_eq!(again.protocol, decap.protocol);
    assert_eq!(&buf[again.payload.clone()], payload_bytes);
    if protocol_len == 2 {
        // Nothing was compressed: the frame comes back byte for byte,
        // Ethernet padding after the PPPoE length excepted.
        assert_eq!(&buf[..], &data[..payload.end]);
    }
}

/// Ethernet (with tags) plus PPPoE header length of a decapsulated frame.
fn frame_header_len(decap: &encap::Decapsulated) -> usize {
    ethernet::HEADER_LEN + decap.vlans.wire_len() + pppoe::HEADER_LEN
}

fn arbitrary_encapsulate(data: &[u8]) {
    let [flags, a, b, c, d, p0, p1, s0, s1, rest @ ..] = data else {
        return;
    };
    let mut vlans = VlanStack::new();
    for vid in 0..(flags & 3).min(2) {
        vlans
            .push(VlanTag::new(
                ethernet::ethertype::VLAN,
                u16::from(vid) + 100,
            ))
            .unwrap();
    }
    let session = SessionEncap {
        dst: MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]),
        src: MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, 0x02]),
        vlans,
        session_id: u16::from_be_bytes([*s0, *s1]),
    };
    let payload_start = usize::from(u16::from_be_bytes([*a, *b])) % 256;
    let payload_len = usize::from(u16::from_be_bytes([*c, *d]));
    let protocol = u16::from_be_bytes([*p0, *p1]);
    let buf_len = rest.len() + usize::from(flags >> 2) * 1024;
    let mut buf = rest.to_vec();
    buf.resize(buf_len, 0);
    let before = buf.clone();
    match session.encapsulate(&mut buf, payload_start, payload_len, protocol) {
        Ok(range) => {
            assert!(payload_start >= session.header_len());
            assert_eq!(
                range,
                payload_start - session.header_len()..payload_start + payload_len
            );
            assert!(range.end <= buf.len());
            // Only the header bytes changed.
            assert_eq!(&buf[..range.start], &before[..range.start]);
            assert_eq!(&buf[payload_start..], &before[payload_start..]);
            let frame = &buf[range];
            if protocol & 0x0101 == 0x0001 {
                let decap = decapsulate(frame).expect("valid protocol decapsulates");
                assert_eq!(decap.protocol, protocol);
                assert_eq!(decap.session_id, session.session_id);
                assert_eq!(decap.payload.len(), payload_len);
            }
        }
        Err(error) => {
            assert_eq!(buf, before, "a failed encapsulate wrote to the buffer");
            let fits =
                payload_start >= session.header_len() && payload_start + payload_len <= buf.len();
            if fits {
                assert_eq!(error, Error::Malformed);
                assert!(payload_len + 2 > usize::from(u16::MAX));
            } else {
                assert_eq!(error, Error::Truncated);
            }
        }
    }
}
