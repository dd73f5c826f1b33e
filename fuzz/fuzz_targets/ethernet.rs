//! ethernet::Repr::parse on arbitrary bytes: the header it reads emits back
//! byte for byte, and the view's getters agree with it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portdial_protocol::ethernet::{self, Frame, MacAddr, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok((repr, offset)) = Repr::parse(data) else {
        return;
    };
    assert_eq!(offset, repr.header_len());
    assert!(offset <= data.len());
    assert!(repr.vlans.len() <= 2);
    assert!(!ethernet::ethertype::is_vlan_tpid(repr.ethertype));

    // Emit writes exactly the header that was parsed (tags keep their raw
    // TPID and TCI), and parsing that again gives the same Repr.
    let mut emitted = vec![0u8; repr.buffer_len()];
    repr.emit(&mut emitted);
    assert_eq!(&emitted[..], &data[..offset]);
    assert_eq!(Repr::parse(&emitted), Ok((repr, offset)));

    let frame = Frame::new_checked(data).expect("parse succeeded, so the view must");
    assert_eq!(frame.dst_addr(), repr.dst);
    assert_eq!(frame.src_addr(), repr.src);
    assert_eq!(frame.payload().len(), data.len() - ethernet::HEADER_LEN);
    match repr.vlans.iter().next() {
        Some(outer) => assert_eq!(frame.ethertype(), outer.tpid),
        None => assert_eq!(frame.ethertype(), repr.ethertype),
    }
    for tag in &repr.vlans {
        assert!(ethernet::ethertype::is_vlan_tpid(tag.tpid));
        assert_eq!(tag.vid(), tag.tci & 0x0fff);
        assert!(tag.pcp() < 8);
        let _ = tag.dei();
    }

    // MAC text round trip, and the address classes are consistent.
    for mac in [repr.dst, repr.src] {
        assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
        assert_eq!(MacAddr::from_bytes(mac.as_bytes()), Ok(mac));
        assert_eq!(mac.is_unicast(), !mac.is_multicast());
        if mac.is_broadcast() {
            assert!(mac.is_multicast());
        }
    }
});
