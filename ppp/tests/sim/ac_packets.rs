//! What a well-behaved access concentrator says, shared by the three ACs the
//! tests emulate: the simulated one of the sans-IO tests (ppp/tests/sim), the
//! one on a real veth (tests/common/ac.rs) and the fuzz target's
//! (fuzz/fuzz_targets/session.rs), which include this file by `#[path]`.
//!
//! Built on portdial-protocol only, apart from the client's code in
//! portdial-ppp, so that a misreading of an RFC there is not copied here.
//! Frames themselves are built by `DiscoveryRepr::to_frame` and
//! `SessionEncap::to_frame`.

#![allow(dead_code)]

use std::net::Ipv4Addr;

use portdial_protocol::control::Code;
use portdial_protocol::ethernet::MacAddr;
use portdial_protocol::ipcp::IpcpOption;
use portdial_protocol::lcp::{AuthProtocol, EchoRepr, LcpOption, ProtocolRejectRepr};
use portdial_protocol::pppoe::{DiscoveryRepr, Tag};
use portdial_protocol::{chap, pap};

/// Documentation MACs (RFC 7042 §2.1.2).
pub const CLIENT_MAC: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, 0x02]);
pub const AC_MAC: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
pub const AC_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
pub const DNS: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 53), Ipv4Addr::new(192, 0, 2, 54)];
/// The credentials the AC accepts.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "wonderland";
/// The AC's IPv6CP Interface-Identifier (modified EUI-64 of AC_MAC).
pub const AC_INTERFACE_ID: [u8; 8] = [0x02, 0, 0x5e, 0xff, 0xfe, 0, 0x53, 0x01];

/// The authentication the AC asks for in its LCP Configure-Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcAuth {
    None,
    Pap,
    Chap,
}

/// The options of the AC's LCP Configure-Request, as pppd sends them: MRU,
/// authentication protocol (CHAP with MD5), magic number.
pub fn lcp_request_options(mru: u16, auth: AcAuth, magic: u32) -> Vec<u8> {
    let mut options = Vec::new();
    LcpOption::Mru(mru).push_to(&mut options);
    match auth {
        AcAuth::None => {}
        AcAuth::Pap => LcpOption::AuthProtocol(AuthProtocol::Pap).push_to(&mut options),
        AcAuth::Chap => {
            LcpOption::AuthProtocol(AuthProtocol::Chap { algorithm: 5 }).push_to(&mut options)
        }
    }
    LcpOption::MagicNumber(magic).push_to(&mut options);
    options
}

/// The AC's answer to the client's IPCP Configure-Request `request`: a Nak
/// of the options it wants otherwise (the address it assigns, its DNS
/// servers), in the order asked, or else an Ack of the request.
pub fn ipcp_answer(request: &[u8], assign: Ipv4Addr) -> (Code, Vec<u8>) {
    let mut nak = Vec::new();
    for option in IpcpOption::iter(request).flatten() {
        match option {
            IpcpOption::IpAddress(address) if address != assign => {
                IpcpOption::IpAddress(assign).push_to(&mut nak)
            }
            IpcpOption::PrimaryDns(address) if address != DNS[0] => {
                IpcpOption::PrimaryDns(DNS[0]).push_to(&mut nak)
            }
            IpcpOption::SecondaryDns(address) if address != DNS[1] => {
                IpcpOption::SecondaryDns(DNS[1]).push_to(&mut nak)
            }
            _ => {}
        }
    }
    if nak.is_empty() {
        (Code::ConfigureAck, request.to_vec())
    } else {
        (Code::ConfigureNak, nak)
    }
}

/// The data of an Echo-Reply to an Echo-Request carrying `request`: the
/// AC's magic number and the request's data (none if it had no magic).
pub fn echo_reply_data(request: &[u8], magic: u32) -> Vec<u8> {
    let data = EchoRepr::parse(request).map_or(&[][..], |echo| echo.data);
    let mut reply = Vec::new();
    EchoRepr { magic, data }.push_to(&mut reply);
    reply
}

/// The data of an LCP Protocol-Reject of `information` sent as `protocol`.
pub fn protocol_reject_data(protocol: u16, information: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    ProtocolRejectRepr {
        protocol,
        information,
    }
    .push_to(&mut data);
    data
}

/// The AC's answer to an Authenticate-Request: Ack or Nak, as pppd words them.
pub fn pap_answer(ok: bool, identifier: u8) -> Vec<u8> {
    let repr = if ok {
        pap::Repr::AuthenticateAck {
            message: b"Login ok",
        }
    } else {
        pap::Repr::AuthenticateNak {
            message: b"Login incorrect",
        }
    };
    repr.to_packet(identifier)
}

/// The AC's answer to a CHAP Response: Success or Failure.
pub fn chap_answer(ok: bool, identifier: u8) -> Vec<u8> {
    let repr = if ok {
        chap::Repr::Success {
            message: b"Access granted",
        }
    } else {
        chap::Repr::Failure {
            message: b"Access denied",
        }
    };
    repr.to_packet(identifier)
}

/// The tags every answer to `request` carries: the Service-Name asked for
/// (any: empty) and the Host-Uniq echoed (RFC 2516 §5).
pub fn answer_tags<'a>(request: &DiscoveryRepr<'a>) -> Vec<Tag<'a>> {
    let mut tags = vec![Tag::ServiceName(request.service_name().unwrap_or(b""))];
    if let Some(uniq) = request.host_uniq() {
        tags.push(Tag::HostUniq(uniq));
    }
    tags
}
