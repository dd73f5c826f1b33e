//! pppoe::DiscoveryRepr::parse_bytes, TagIter and the TR-101 sub-option
//! iterator on arbitrary bytes (a PPPoE header and payload, no Ethernet).
//! Whatever parses emits back to the same bytes and parses again the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portdial_protocol::pppoe::{self, bbf_sub_options, DiscoveryRepr, Packet, Tag, TagIter};

fuzz_target!(|data: &[u8]| {
    // The iterators take any bytes; the header is skipped when present so
    // that corpus packets exercise them too.
    let payload = data.get(pppoe::HEADER_LEN..).unwrap_or(data);
    check_tags(payload);
    check_bbf(data);

    if let Ok(packet) = Packet::new_checked(data) {
        let _ = (packet.version(), packet.type_(), packet.code().name());
        let _ = packet.session_id();
        assert_eq!(packet.payload().len(), usize::from(packet.length()));
        assert_eq!(
            packet.as_bytes().len(),
            pppoe::HEADER_LEN + packet.payload().len()
        );
        check_tags(packet.payload());
    }

    let Ok(repr) = DiscoveryRepr::parse_bytes(data) else {
        return;
    };
    let packet = Packet::new_checked(data).expect("parse succeeded, so the view must");
    // Well-formed tags re-emit byte for byte: the length field bounds the
    // payload, and End-of-List stops the iteration.
    let emitted = repr.to_vec();
    assert_eq!(emitted.len(), repr.buffer_len());
    let consumed: usize = repr.tags.iter().map(Tag::buffer_len).sum();
    assert_eq!(emitted.len(), pppoe::HEADER_LEN + consumed);
    assert_eq!(&emitted[pppoe::HEADER_LEN..], &packet.payload()[..consumed]);
    assert_eq!(&emitted[..2], &data[..2]);
    assert_eq!(&emitted[2..4], &data[2..4]);
    assert_eq!(DiscoveryRepr::parse_bytes(&emitted).as_ref(), Ok(&repr));

    // Accessors never panic and agree with the tag list.
    let _ = (repr.service_name(), repr.ac_name(), repr.host_uniq());
    let _ = (
        repr.ac_cookie(),
        repr.relay_session_id(),
        repr.ppp_max_payload(),
    );
    for (vendor_id, data) in repr.vendor_specific() {
        if vendor_id == pppoe::BBF_VENDOR_ID {
            check_bbf(data);
        }
    }
    if let Some(error) = repr.error() {
        let _ = (error.name(), error.message(), error.to_string());
    }
    for tag in &repr.tags {
        let _ = tag.name();
        let mut out = Vec::new();
        tag.push_to(&mut out);
        assert_eq!(out.len(), tag.buffer_len());
        let reparsed: Vec<_> = TagIter::new(&out).collect();
        assert_eq!(reparsed, vec![Ok(*tag)]);
    }
});

fn check_tags(payload: &[u8]) {
    let mut errors = 0;
    for item in TagIter::new(payload) {
        match item {
            Ok(tag) => {
                assert_eq!(errors, 0, "TagIter yielded a tag after an error");
                let mut out = Vec::new();
                tag.push_to(&mut out);
                assert_eq!(
                    TagIter::new(&out).next(),
                    Some(Ok(tag)),
                    "tag does not round-trip"
                );
            }
            Err(_) => errors += 1,
        }
    }
    assert!(errors <= 1, "TagIter yielded more than one error");
}

fn check_bbf(data: &[u8]) {
    let mut errors = 0;
    for item in bbf_sub_options(data) {
        match item {
            Ok(option) => {
                assert_eq!(errors, 0, "BbfIter yielded an option after an error");
                let mut out = Vec::new();
                option.push_to(&mut out);
                assert_eq!(out.first(), Some(&option.kind()));
                assert_eq!(
                    bbf_sub_options(&out).next(),
                    Some(Ok(option)),
                    "sub-option does not round-trip"
                );
            }
            Err(_) => errors += 1,
        }
    }
    assert!(errors <= 1, "BbfIter yielded more than one error");
}
