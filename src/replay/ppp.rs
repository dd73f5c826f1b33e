//! PPPoE and PPP frames, described with the protocol crate's parsers and
//! reduced to the [`Fact`]s the session tracker needs. Error messages read
//! header fields through the crate's views only after a parser refused the
//! bytes, to say what exactly was wrong.

use std::fmt;
use std::net::Ipv4Addr;

use portdial_protocol::control::{self, Code};
use portdial_protocol::ethernet::MacAddr;
use portdial_protocol::ipcp::{self, IpcpOption};
use portdial_protocol::ipv6cp::{self, Ipv6cpOption};
use portdial_protocol::lcp::{
    self, chap_algorithm, AuthProtocol, CodeRejectRepr, EchoRepr, LcpOption, ProtocolRejectRepr,
};
use portdial_protocol::options::{OptionIter, RawOption};
use portdial_protocol::pap::{self, Quoted};
use portdial_protocol::ppp::{self, Protocol};
use portdial_protocol::pppoe::{self, tag_type, Tag, TagIter};
use portdial_protocol::{ccp, chap, encap, Error};

use super::ip;
use super::link::{Addresses, Decoded};
use super::session::{Discovery, Event, Fact, SessionFrame};

/// Ethernet frames shorter than this are padded; bytes after the PPPoE
/// payload in a longer frame are a length mismatch.
const ETHERNET_MIN_FRAME: usize = 60;

/// A PPPoE discovery packet (the bytes after the Ethernet header).
pub(crate) fn discovery(
    bytes: &[u8],
    src: MacAddr,
    dst: MacAddr,
    addresses: Addresses,
    out: &mut Decoded,
) -> Option<Event> {
    let packet = match pppoe::Packet::new_checked(bytes) {
        Ok(packet) => packet,
        Err(_) => {
            out.word(format_args!("PPPoE discovery"));
            out.error(pppoe_length_error(bytes));
            return None;
        }
    };
    if packet.check_ver_type().is_err() {
        out.word(format_args!("PPPoE discovery"));
        out.error(format!(
            "PPPoE version/type {}/{}, expected 1/1",
            packet.version(),
            packet.type_()
        ));
        return None;
    }
    let code = packet.code();
    out.word(format_args!(
        "{} sid 0x{:04x}",
        code_name(code),
        packet.session_id()
    ));
    let tags = read_tags(packet.payload(), code, out);
    let repr = pppoe::DiscoveryRepr {
        code,
        session_id: packet.session_id(),
        tags,
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    if code == pppoe::Code::Padt {
        return Some(Event::Session(SessionFrame {
            session_id: Some(packet.session_id()),
            sender: addresses.sender,
            receiver: addresses.receiver,
            fact: Fact::Padt,
            length_mismatch: false,
        }));
    }
    // Addresses from a Linux cooked header are only the sender's.
    let known = |mac: MacAddr| (mac != MacAddr::ZERO).then_some(mac);
    Some(Event::Discovery(Discovery {
        code,
        session_id: packet.session_id(),
        src: known(src),
        dst: addresses.receiver.and(known(dst)),
        host_uniq: repr.host_uniq().map(<[u8]>::to_vec),
        ac_name: repr.ac_name().map(text),
        service_name: repr.service_name().map(text),
    }))
}

fn code_name(code: pppoe::Code) -> String {
    match code {
        pppoe::Code::Unknown(value) => format!("PPPoE code 0x{value:02x}"),
        known => known.name().to_string(),
    }
}

/// Describes the tags and returns those that parsed; an error stops the
/// list, as it does [`TagIter`].
fn read_tags<'a>(payload: &'a [u8], code: pppoe::Code, out: &mut Decoded) -> Vec<Tag<'a>> {
    let mut tags = Vec::new();
    let mut offset = 0usize;
    for tag in TagIter::new(payload) {
        match tag {
            Ok(tag) => {
                out.word(format_args!("{}", TagText(&tag)));
                offset = offset.saturating_add(tag.buffer_len());
                tags.push(tag);
            }
            Err(error) => {
                out.word(format_args!("[bad tag]"));
                let rest = payload.get(offset..).unwrap_or_default();
                out.error(format!(
                    "{} tags: {}",
                    code_name(code),
                    tag_error(rest, offset, error)
                ));
            }
        }
    }
    tags
}

fn tag_error(rest: &[u8], offset: usize, error: Error) -> String {
    match rest {
        [t0, t1, l0, l1, data @ ..] => {
            let tag = u16::from_be_bytes([*t0, *t1]);
            let len = u16::from_be_bytes([*l0, *l1]);
            if error == Error::Truncated {
                format!(
                    "tag {} at byte {offset} claims {len} bytes, {} remain",
                    tag_type_name(tag),
                    data.len()
                )
            } else {
                format!(
                    "tag {} at byte {offset} has {len} bytes, which its type does not allow",
                    tag_type_name(tag)
                )
            }
        }
        _ => format!(
            "tag header at byte {offset} cut short: {} of {} bytes",
            rest.len(),
            pppoe::TAG_HEADER_LEN
        ),
    }
}

/// A tag type's name, for a tag that did not parse.
fn tag_type_name(tag: u16) -> String {
    let name = match tag {
        tag_type::END_OF_LIST => "End-Of-List",
        tag_type::VENDOR_SPECIFIC => "Vendor-Specific",
        tag_type::PPP_MAX_PAYLOAD => "PPP-Max-Payload",
        other => match Tag::parse(other, &[]) {
            Ok(Tag::Unknown { .. }) | Err(_) => return format!("0x{other:04x}"),
            Ok(tag) => tag.name(),
        },
    };
    name.to_string()
}

/// A tag as one word: names and messages quoted, opaque data as its size.
struct TagText<'t, 'a>(&'t Tag<'a>);

impl fmt::Display for TagText<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = self.0;
        match *tag {
            Tag::EndOfList => f.write_str("End-Of-List"),
            Tag::ServiceName(data)
            | Tag::AcName(data)
            | Tag::ServiceNameError(data)
            | Tag::AcSystemError(data)
            | Tag::GenericError(data) => write!(f, "{}={}", tag.name(), Quoted(data)),
            Tag::HostUniq(data) | Tag::AcCookie(data) | Tag::RelaySessionId(data) => {
                write!(f, "{}={}B", tag.name(), data.len())
            }
            Tag::VendorSpecific { vendor_id, data } => {
                write!(f, "Vendor-Specific={vendor_id:#010x}/{}B", data.len())
            }
            Tag::PppMaxPayload(value) => write!(f, "PPP-Max-Payload={value}"),
            Tag::Unknown { tag_type, data } => write!(f, "tag-0x{tag_type:04x}={}B", data.len()),
        }
    }
}

/// Why a PPPoE header did not pass `new_checked`.
fn pppoe_length_error(bytes: &[u8]) -> String {
    if bytes.len() < pppoe::HEADER_LEN {
        return format!(
            "PPPoE header cut short: {} of {} bytes",
            bytes.len(),
            pppoe::HEADER_LEN
        );
    }
    let length = pppoe::Packet::new_unchecked(bytes).length();
    format!(
        "PPPoE length {length} exceeds the {} bytes captured",
        bytes.len() - pppoe::HEADER_LEN
    )
}

/// A PPPoE session frame: the whole Ethernet frame, with the PPPoE header
/// at `pppoe_start`.
pub(crate) fn session(
    frame: &[u8],
    pppoe_start: usize,
    addresses: Addresses,
    out: &mut Decoded,
) -> Option<Event> {
    let decapsulated = match encap::decapsulate(frame) {
        Ok(decapsulated) => decapsulated,
        Err(_) => {
            out.word(format_args!("PPPoE session"));
            out.error(session_error(frame.get(pppoe_start..).unwrap_or_default()));
            return None;
        }
    };
    out.word(format_args!("sid 0x{:04x}", decapsulated.session_id));
    let payload = frame.get(decapsulated.payload.clone()).unwrap_or_default();
    let length_mismatch =
        frame.len() > ETHERNET_MIN_FRAME && decapsulated.payload.end < frame.len();
    if length_mismatch {
        out.word(format_args!(
            "(PPPoE length {} < {} bytes after the PPPoE header)",
            decapsulated.payload.end - pppoe_start - pppoe::HEADER_LEN,
            frame.len() - pppoe_start - pppoe::HEADER_LEN
        ));
    }
    let fact = describe(decapsulated.protocol, payload, payload.len() as u64, out);
    Some(Event::Session(SessionFrame {
        session_id: Some(decapsulated.session_id),
        sender: addresses.sender,
        receiver: addresses.receiver,
        fact,
        length_mismatch,
    }))
}

/// Why `decapsulate` refused a session frame whose Ethernet header parsed.
fn session_error(bytes: &[u8]) -> String {
    if bytes.len() < pppoe::HEADER_LEN {
        return pppoe_length_error(bytes);
    }
    let packet = pppoe::Packet::new_unchecked(bytes);
    if packet.check_ver_type().is_err() {
        return format!(
            "PPPoE version/type {}/{}, expected 1/1",
            packet.version(),
            packet.type_()
        );
    }
    if packet.code() != pppoe::Code::Session {
        return format!(
            "PPPoE session frame with code 0x{:02x}, expected 0",
            u8::from(packet.code())
        );
    }
    if packet.check_len().is_err() {
        return pppoe_length_error(bytes);
    }
    protocol_error(packet.payload())
}

fn protocol_error(bytes: &[u8]) -> String {
    match bytes {
        [] => "PPP frame has no protocol field".into(),
        [high] => format!("PPP protocol field cut short after 0x{high:02x}"),
        [high, low, ..] => format!(
            "PPP protocol field 0x{high:02x}{low:02x} is invalid (its last byte must be odd)"
        ),
    }
}

/// PPP without PPPoE, from the protocol field on. `cut` is how many bytes
/// of the frame the capture left out, counted into data bytes.
pub(crate) fn raw_ppp(
    bytes: &[u8],
    session_id: Option<u16>,
    addresses: Addresses,
    cut: usize,
    out: &mut Decoded,
) -> Option<Event> {
    let (protocol, protocol_len) = match ppp::parse_protocol(bytes) {
        Ok(parsed) => parsed,
        Err(_) => {
            out.word(format_args!("PPP"));
            out.error(protocol_error(bytes));
            return None;
        }
    };
    let payload = bytes.get(protocol_len..).unwrap_or_default();
    let wire_len = payload.len().saturating_add(cut) as u64;
    let fact = describe(protocol, payload, wire_len, out);
    Some(Event::Session(SessionFrame {
        session_id,
        sender: addresses.sender,
        receiver: addresses.receiver,
        fact,
        length_mismatch: false,
    }))
}

/// Describes a PPP payload and says what it means for the session.
/// `wire_len` is the payload's length on the wire, for data byte counts.
fn describe(protocol: u16, payload: &[u8], wire_len: u64, out: &mut Decoded) -> Fact {
    let known = Protocol::from(protocol);
    match known {
        Protocol::Lcp | Protocol::Ipcp | Protocol::Ipv6cp | Protocol::Ccp => {
            control_packet(known, payload, out)
        }
        Protocol::Pap => pap_packet(payload, out),
        Protocol::Chap => chap_packet(payload, out),
        Protocol::Ipv4 => Fact::Data {
            bytes: wire_len,
            opens_tcp: ip::describe_ipv4(payload, out),
        },
        Protocol::Ipv6 => Fact::Data {
            bytes: wire_len,
            opens_tcp: ip::describe_ipv6(payload, out),
        },
        Protocol::Eap | Protocol::Lqr => {
            out.word(format_args!("{} {} bytes", known.name(), payload.len()));
            Fact::Other
        }
        Protocol::Unknown(number) => {
            out.word(format_args!(
                "PPP protocol 0x{number:04x}, {} bytes",
                payload.len()
            ));
            Fact::Other
        }
    }
}

/// Parses the code/identifier/length framing; on failure says why.
fn parse_control<'a>(
    name: &str,
    payload: &'a [u8],
    out: &mut Decoded,
) -> Option<control::Repr<'a>> {
    match control::Repr::parse_bytes(payload) {
        Ok(repr) => Some(repr),
        Err(_) => {
            out.word(format_args!("{name}"));
            out.error(control_error(name, payload));
            None
        }
    }
}

fn control_error(name: &str, bytes: &[u8]) -> String {
    if bytes.len() < control::HEADER_LEN {
        return format!(
            "{name} packet cut short: {} of {} header bytes",
            bytes.len(),
            control::HEADER_LEN
        );
    }
    let packet = control::Packet::new_unchecked(bytes);
    let length = packet.length();
    let code = u8::from(packet.code());
    if usize::from(length) < control::HEADER_LEN {
        format!("{name} code {code} length {length} is shorter than its 4-byte header")
    } else {
        format!(
            "{name} code {code} length {length} exceeds the {} bytes captured",
            bytes.len()
        )
    }
}

fn control_code_name(code: Code) -> String {
    match code {
        Code::Unknown(value) => format!("code-{value}"),
        known => known.name().to_string(),
    }
}

/// LCP and the NCPs.
fn control_packet(protocol: Protocol, payload: &[u8], out: &mut Decoded) -> Fact {
    let name = protocol.name();
    let Some(repr) = parse_control(name, payload, out) else {
        return Fact::Other;
    };
    let code_name = control_code_name(repr.code);
    out.word(format_args!("{name} {code_name} id={}", repr.identifier));
    let context = format!("{name} {code_name}");
    match repr.code {
        Code::ConfigureRequest
        | Code::ConfigureAck
        | Code::ConfigureNak
        | Code::ConfigureReject => configure(protocol, repr.code, repr.data, &context, out),
        Code::TerminateRequest | Code::TerminateAck => {
            if !repr.data.is_empty() {
                out.word(format_args!("{}", Quoted(repr.data)));
            }
            if protocol == Protocol::Lcp && repr.code == Code::TerminateRequest {
                Fact::LcpTerminateRequest
            } else {
                Fact::Other
            }
        }
        Code::EchoRequest | Code::EchoReply | Code::DiscardRequest if protocol == Protocol::Lcp => {
            match EchoRepr::parse(repr.data) {
                Ok(echo) => out.word(format_args!("{echo}")),
                Err(_) => out.error(format!(
                    "{context} data cut short: {} of 4 magic-number bytes",
                    repr.data.len()
                )),
            }
            Fact::Other
        }
        Code::ProtocolReject if protocol == Protocol::Lcp => {
            match ProtocolRejectRepr::parse(repr.data) {
                Ok(reject) => out.word(format_args!("{reject}")),
                Err(_) => out.error(format!(
                    "{context} data cut short: {} of 2 protocol bytes",
                    repr.data.len()
                )),
            }
            Fact::Other
        }
        Code::CodeReject => {
            if let Ok(reject) = CodeRejectRepr::parse(repr.data) {
                match reject.rejected_code() {
                    Some(code) => out.word(format_args!("rejects code {}", u8::from(code))),
                    None => out.word(format_args!("(empty)")),
                }
            }
            Fact::Other
        }
        _ => {
            out.word(format_args!("{} data bytes", repr.data.len()));
            Fact::Other
        }
    }
}

/// Configure-Request/Ack/Nak/Reject: options, and the facts they carry.
fn configure(
    protocol: Protocol,
    code: Code,
    data: &[u8],
    context: &str,
    out: &mut Decoded,
) -> Fact {
    match protocol {
        Protocol::Lcp => {
            let options = options(data, LcpOption::parse, lcp::kind_name, context, out);
            match code {
                Code::ConfigureRequest => Fact::LcpRequest {
                    asks_auth: options
                        .iter()
                        .any(|option| matches!(option, LcpOption::AuthProtocol(_))),
                },
                Code::ConfigureAck => Fact::LcpAck {
                    mru: options.iter().find_map(|option| match option {
                        LcpOption::Mru(mru) => Some(*mru),
                        _ => None,
                    }),
                    auth: options.iter().find_map(|option| match option {
                        LcpOption::AuthProtocol(auth) => Some(auth_name(auth)),
                        _ => None,
                    }),
                },
                _ => Fact::Other,
            }
        }
        Protocol::Ipcp => {
            let options = options(data, IpcpOption::parse, ipcp::kind_name, context, out);
            let address = options.iter().find_map(|option| match option {
                IpcpOption::IpAddress(address) => Some(*address),
                _ => None,
            });
            let dns: Vec<Ipv4Addr> = options
                .iter()
                .filter_map(|option| match option {
                    IpcpOption::PrimaryDns(address) | IpcpOption::SecondaryDns(address) => {
                        Some(*address)
                    }
                    _ => None,
                })
                .collect();
            match code {
                Code::ConfigureRequest => Fact::IpcpRequest {
                    asks_address: address == Some(Ipv4Addr::UNSPECIFIED),
                    asks_dns: !dns.is_empty(),
                },
                Code::ConfigureNak => Fact::IpcpNak {
                    offers_address: address.is_some_and(|address| !address.is_unspecified()),
                },
                Code::ConfigureAck => Fact::IpcpAck { address, dns },
                _ => Fact::Other,
            }
        }
        Protocol::Ipv6cp => {
            let options = options(data, Ipv6cpOption::parse, ipv6cp::kind_name, context, out);
            match code {
                Code::ConfigureAck => Fact::Ipv6cpAck {
                    interface_id: options.iter().find_map(|option| match option {
                        Ipv6cpOption::InterfaceIdentifier(id) => Some(*id),
                        _ => None,
                    }),
                },
                _ => Fact::Other,
            }
        }
        _ => {
            options(data, ccp::CcpOption::parse, ccp::kind_name, context, out);
            Fact::Other
        }
    }
}

/// The `auth` value of the summary for an Authentication-Protocol option.
fn auth_name(auth: &AuthProtocol<'_>) -> String {
    match auth {
        AuthProtocol::Pap => "pap".into(),
        AuthProtocol::Chap {
            algorithm: chap_algorithm::MD5,
        } => "chap-md5".into(),
        AuthProtocol::Chap {
            algorithm: chap_algorithm::MS_CHAP,
        } => "mschap".into(),
        AuthProtocol::Chap {
            algorithm: chap_algorithm::MS_CHAP_V2,
        } => "mschap-v2".into(),
        AuthProtocol::Chap { algorithm } => format!("chap-0x{algorithm:02x}"),
        AuthProtocol::Eap => "eap".into(),
        AuthProtocol::Unknown { protocol, .. } => format!("0x{protocol:04x}"),
    }
}

/// Describes an option list pppd-style and returns the options that
/// parsed. A malformed option or an overrunning list is an error of the
/// frame; what parsed before it is still shown.
fn options<'a, T: fmt::Display>(
    data: &'a [u8],
    parse: fn(RawOption<'a>) -> portdial_protocol::Result<T>,
    kind_name: fn(u8) -> &'static str,
    context: &str,
    out: &mut Decoded,
) -> Vec<T> {
    let mut parsed = Vec::new();
    let mut offset = 0usize;
    for raw in OptionIter::new(data) {
        match raw {
            Ok(raw) => {
                offset = offset.saturating_add(raw.buffer_len());
                match parse(raw) {
                    Ok(option) => {
                        out.word(format_args!("{}", capped(option.to_string())));
                        parsed.push(option);
                    }
                    Err(_) => {
                        out.word(format_args!("<{} ?>", kind_name(raw.kind)));
                        out.error(format!(
                            "{context}: {} with {} data bytes is malformed",
                            option_label(raw.kind, kind_name),
                            raw.data.len()
                        ));
                    }
                }
            }
            Err(_) => {
                out.word(format_args!("[bad option list]"));
                let rest = data.get(offset..).unwrap_or_default();
                out.error(format!(
                    "{context}: {}",
                    option_list_error(rest, offset, kind_name)
                ));
            }
        }
    }
    parsed
}

fn option_list_error(rest: &[u8], offset: usize, kind_name: fn(u8) -> &'static str) -> String {
    match rest {
        [kind, len, ..] if *len < 2 => format!(
            "{} at byte {offset} has length {len}, below 2",
            option_label(*kind, kind_name)
        ),
        [kind, len, ..] => format!(
            "{} at byte {offset} claims {len} bytes, {} remain",
            option_label(*kind, kind_name),
            rest.len()
        ),
        _ => format!("option list ends with a lone byte at byte {offset}"),
    }
}

/// `option MRU (1)`, or `option 230` for a type without a name.
fn option_label(kind: u8, kind_name: fn(u8) -> &'static str) -> String {
    match kind_name(kind) {
        "unknown" => format!("option {kind}"),
        name => format!("option {name} ({kind})"),
    }
}

/// Longest option text shown; fuzzed options carry hundreds of bytes.
const MAX_OPTION_TEXT: usize = 72;

/// Cuts an option's text to [`MAX_OPTION_TEXT`] characters.
fn capped(text: String) -> String {
    if text.chars().count() <= MAX_OPTION_TEXT {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_OPTION_TEXT).collect();
    cut.push_str(" ...>");
    cut
}

fn pap_packet(payload: &[u8], out: &mut Decoded) -> Fact {
    let Some(repr) = parse_control("PAP", payload, out) else {
        return Fact::Other;
    };
    match pap::Repr::parse(&repr) {
        // Display hides the password.
        Ok(pap) => {
            out.word(format_args!("PAP id={} {pap}", repr.identifier));
            match pap {
                pap::Repr::AuthenticateRequest { .. } => Fact::PapRequest,
                pap::Repr::AuthenticateAck { .. } => Fact::PapAck,
                pap::Repr::AuthenticateNak { .. } => Fact::PapNak,
            }
        }
        Err(Error::Unsupported) => {
            out.word(format_args!(
                "PAP code {} id={}",
                u8::from(repr.code),
                repr.identifier
            ));
            Fact::Other
        }
        Err(_) => {
            out.word(format_args!(
                "PAP code {} id={}",
                u8::from(repr.code),
                repr.identifier
            ));
            out.error(format!(
                "PAP code {}: a length-prefixed field runs past the packet",
                u8::from(repr.code)
            ));
            Fact::Other
        }
    }
}

fn chap_packet(payload: &[u8], out: &mut Decoded) -> Fact {
    let Some(repr) = parse_control("CHAP", payload, out) else {
        return Fact::Other;
    };
    match chap::Repr::parse(&repr) {
        Ok(chap) => {
            out.word(format_args!("CHAP id={} {chap}", repr.identifier));
            match chap {
                chap::Repr::Challenge { .. } => Fact::ChapChallenge,
                chap::Repr::Response { .. } => Fact::ChapResponse,
                chap::Repr::Success { .. } => Fact::ChapSuccess,
                chap::Repr::Failure { .. } => Fact::ChapFailure,
            }
        }
        Err(Error::Unsupported) => {
            out.word(format_args!(
                "CHAP code {} id={}",
                u8::from(repr.code),
                repr.identifier
            ));
            Fact::Other
        }
        Err(_) => {
            out.word(format_args!(
                "CHAP code {} id={}",
                u8::from(repr.code),
                repr.identifier
            ));
            out.error(format!(
                "CHAP code {}: the value runs past the packet",
                u8::from(repr.code)
            ));
            Fact::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(hex_text: &str) -> Vec<u8> {
        hex::decode(hex_text).unwrap()
    }

    #[test]
    fn lcp_request_is_shown_pppd_style() {
        // captures/public/zeek/pppoe.pcap frame 6: the AC's LCP
        // Configure-Request (MRU 1492, PAP, magic 0x01fccbfb).
        let payload = bytes(
            "01010012010405d40304c0230506 01fccbfb"
                .replace(' ', "")
                .as_str(),
        );
        let mut out = Decoded::default();
        let fact = describe(0xc021, &payload, payload.len() as u64, &mut out);
        assert_eq!(fact, Fact::LcpRequest { asks_auth: true });
        assert_eq!(
            out.text,
            "LCP Configure-Request id=1 <mru 1492> <auth pap> <magic 0x1fccbfb>"
        );
        assert!(out.errors.is_empty());
    }

    #[test]
    fn pap_password_is_hidden() {
        // captures/public/zeek/pppoe.pcap frame 11: PAP Authenticate-Request
        // for "cisco" with password "cisco".
        let payload = bytes(
            "010100100563697363 6f05636973636f"
                .replace(' ', "")
                .as_str(),
        );
        let mut out = Decoded::default();
        assert_eq!(describe(0xc023, &payload, 16, &mut out), Fact::PapRequest);
        assert_eq!(
            out.text,
            "PAP id=1 AuthReq user=\"cisco\" password=<hidden>"
        );
    }

    #[test]
    fn overrunning_options_are_errors_after_what_parsed() {
        // Built, not captured (no capture has a well-framed packet whose
        // option list overruns it): an LCP Configure-Request of 10 bytes
        // holding MRU 1400 and then option 26 claiming 5 bytes of the 2 left.
        let payload = bytes("0101000a01040578 1a05".replace(' ', "").as_str());
        let mut out = Decoded::default();
        describe(0xc021, &payload, 0, &mut out);
        assert_eq!(
            out.text,
            "LCP Configure-Request id=1 <mru 1400> [bad option list]"
        );
        assert_eq!(
            out.errors,
            vec![
                "LCP Configure-Request: option Prefix-Elision (26) at byte 4 claims 5 bytes, \
                 2 remain"
            ]
        );
    }

    #[test]
    fn control_length_overrun_is_an_error() {
        // captures/public/tcpdump/ppp_ccp_config_deflate_option_asan.pcap
        // frame 1, after the EtherType: CCP Configure-Request, length 15,
        // 7 bytes captured.
        let payload = bytes("01df000f1805ff");
        let mut out = Decoded::default();
        describe(0x80fd, &payload, 7, &mut out);
        assert_eq!(
            out.errors,
            vec!["CCP code 1 length 15 exceeds the 7 bytes captured"]
        );
    }
}
