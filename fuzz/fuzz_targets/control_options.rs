//! control::Repr::parse_bytes on arbitrary bytes, then the packet's data
//! read as LCP, IPCP, IPv6CP and CCP options and as the LCP packets whose
//! data is not options. Every option that parses emits back to its raw
//! bytes and formats without panicking.
#![no_main]

use std::fmt::Write;

use libfuzzer_sys::fuzz_target;
use portdial_protocol::ccp::CcpOption;
use portdial_protocol::control::{self, Code, Packet, Repr};
use portdial_protocol::ipcp::IpcpOption;
use portdial_protocol::ipv6cp::Ipv6cpOption;
use portdial_protocol::lcp::{CodeRejectRepr, EchoRepr, LcpOption, ProtocolRejectRepr};
use portdial_protocol::options::{OptionIter, RawOption};
use portdial_protocol::Result;

fuzz_target!(|data: &[u8]| {
    // Options are also read from the raw input, so that option lists in the
    // corpus reach the parsers without a valid control header.
    check_options(data);

    let Ok(repr) = Repr::parse_bytes(data) else {
        return;
    };
    let packet = Packet::new_checked(data).expect("parse succeeded, so the view must");
    let length = usize::from(packet.length());
    assert_eq!(repr.code, packet.code());
    assert_eq!(repr.identifier, packet.identifier());
    assert_eq!(repr.data.len() + control::HEADER_LEN, length);
    assert_eq!(packet.as_bytes(), &data[..length]);
    let _ = repr.code.name();
    assert_eq!(Code::from(u8::from(repr.code)), repr.code);

    // parse -> emit -> parse: the packet comes back byte for byte, padding
    // after the length field dropped.
    let emitted = repr.to_vec();
    assert_eq!(emitted.len(), repr.buffer_len());
    assert_eq!(&emitted[..], &data[..length]);
    assert_eq!(Repr::parse_bytes(&emitted), Ok(repr));

    check_options(repr.data);
    match repr.code {
        Code::EchoRequest | Code::EchoReply | Code::DiscardRequest => {
            if let Ok(echo) = EchoRepr::parse(repr.data) {
                let _ = echo.to_string();
                assert_eq!(echo.to_vec(), repr.data);
                assert_eq!(echo.buffer_len(), repr.data.len());
                let packet = echo.to_packet(repr.code, repr.identifier);
                assert_eq!(&packet[..], &data[..length]);
            }
        }
        Code::ProtocolReject => {
            if let Ok(reject) = ProtocolRejectRepr::parse(repr.data) {
                let _ = (reject.to_string(), reject.rejected_protocol().name());
                assert_eq!(reject.to_vec(), repr.data);
                assert_eq!(&reject.to_packet(repr.identifier)[..], &data[..length]);
            }
        }
        Code::CodeReject => {
            let reject = CodeRejectRepr::parse(repr.data).expect("any bytes are a Code-Reject");
            let _ = (reject.rejected_code(), reject.rejected_identifier());
            assert_eq!(reject.to_vec(), repr.data);
            assert_eq!(&reject.to_packet(repr.identifier)[..], &data[..length]);
        }
        _ => {}
    }
});

/// The raw option's bytes as they were on the wire.
fn raw_bytes(raw: &RawOption<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    raw.push_to(&mut out);
    assert_eq!(out.len(), raw.buffer_len());
    out
}

macro_rules! check_option_type {
    ($raws:expr, $data:expr, $text:expr, $ty:ident) => {{
        for raw in $raws {
            let Ok(option) = $ty::parse(*raw) else {
                continue;
            };
            assert_eq!(option.kind(), raw.kind, stringify!($ty));
            let _ = option.name();
            $text.clear();
            write!($text, "{option}").expect("formatting into a String does not fail");
            let mut out = Vec::new();
            option.push_to(&mut out);
            assert_eq!(out.len(), option.buffer_len(), stringify!($ty));
            assert_eq!(
                out,
                raw_bytes(raw),
                "{} does not round-trip",
                stringify!($ty)
            );
        }
        // The typed iterator sees the same options, in order, and stops on
        // the same framing error.
        let typed: Vec<Result<$ty>> = $ty::iter($data).collect();
        assert_eq!(typed.len(), OptionIter::new($data).count());
    }};
}

fn check_options(data: &[u8]) {
    let items: Vec<Result<RawOption>> = OptionIter::new(data).collect();
    let errors = items.iter().filter(|item| item.is_err()).count();
    assert!(errors <= 1);
    if errors == 1 {
        assert!(
            items.last().is_some_and(|item| item.is_err()),
            "error not last"
        );
    }
    assert_eq!(OptionIter::validate(data).is_ok(), errors == 0);
    let raws: Vec<RawOption> = items.into_iter().filter_map(|item| item.ok()).collect();
    if errors == 0 {
        let joined: Vec<u8> = raws.iter().flat_map(raw_bytes).collect();
        assert_eq!(joined, data);
    }
    // One buffer for every option's text: formatting is most of the work.
    let mut text = String::new();
    check_option_type!(&raws, data, text, LcpOption);
    check_option_type!(&raws, data, text, IpcpOption);
    check_option_type!(&raws, data, text, Ipv6cpOption);
    check_option_type!(&raws, data, text, CcpOption);
}
