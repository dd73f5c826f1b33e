//! Link Control Protocol (RFC 1661): the configuration options LCP negotiates
//! and the data of the LCP-only packets (Echo-Request/Reply, Discard-Request,
//! Protocol-Reject, Code-Reject).
//!
//! Packet framing is [`crate::control`] and option framing is
//! [`crate::options`]; this module only gives the bytes meaning. `Display`
//! prints options the way pppd's debug log does (`<mru 1492>`,
//! `<magic 0x1fccbfb>`), so our logs can be read next to pppd's.

use core::fmt;

use crate::control::{self, Code};
use crate::options::{push_option, OptionIter, RawOption};
use crate::ppp::Protocol;
use crate::{Error, Result};

/// LCP option type numbers (RFC 1661 §6, IANA "PPP LCP Configuration Option Types").
pub mod kind {
    pub const MRU: u8 = 1;
    pub const ACCM: u8 = 2;
    pub const AUTH_PROTOCOL: u8 = 3;
    pub const QUALITY_PROTOCOL: u8 = 4;
    pub const MAGIC_NUMBER: u8 = 5;
    pub const PFC: u8 = 7;
    pub const ACFC: u8 = 8;
}

/// CHAP algorithm numbers carried in the Authentication-Protocol option
/// (RFC 1994 §3, RFC 2433, RFC 2759).
pub mod chap_algorithm {
    pub const MD5: u8 = 5;
    pub const MS_CHAP: u8 = 0x80;
    pub const MS_CHAP_V2: u8 = 0x81;
}

/// The most data one option can carry: its length byte counts the two header bytes.
const MAX_OPTION_DATA: usize = 253;

/// The option data as a fixed-size array, or `Malformed` if the length differs.
pub(crate) fn fixed_data<const N: usize>(data: &[u8]) -> Result<[u8; N]> {
    data.try_into().map_err(|_| Error::Malformed)
}

/// Splits option data that starts with a 16-bit protocol number.
pub(crate) fn split_protocol(data: &[u8]) -> Result<(u16, &[u8])> {
    match data {
        [high, low, rest @ ..] => Ok((u16::from_be_bytes([*high, *low]), rest)),
        _ => Err(Error::Malformed),
    }
}

/// Emitted size of an option whose data is a protocol number and `rest`,
/// matching the truncation of [`push_protocol_option`].
pub(crate) fn protocol_option_len(rest: &[u8]) -> usize {
    2 + (2 + rest.len()).min(MAX_OPTION_DATA)
}

/// Appends an option whose data is a 16-bit protocol number followed by
/// `rest`, truncating `rest` to what the length byte can express.
/// Built on the stack so that emitting allocates only in `out`.
pub(crate) fn push_protocol_option(out: &mut Vec<u8>, kind: u8, protocol: u16, rest: &[u8]) {
    let rest = &rest[..rest.len().min(MAX_OPTION_DATA - 2)];
    let mut data = [0u8; MAX_OPTION_DATA];
    data[..2].copy_from_slice(&protocol.to_be_bytes());
    data[2..2 + rest.len()].copy_from_slice(rest);
    push_option(out, kind, &data[..2 + rest.len()]);
}

/// Writes each byte as pppd does for bytes it does not decode: `" %.2x"`.
pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|byte| write!(f, " {byte:02x}"))
}

/// Writes an option pppd does not decode: all its bytes, header included,
/// as `< 0d 03 06>`.
pub(crate) fn write_unknown_option(
    f: &mut fmt::Formatter<'_>,
    kind: u8,
    data: &[u8],
) -> fmt::Result {
    let len = (data.len() + 2).min(usize::from(u8::MAX)) as u8;
    f.write_str("<")?;
    write_hex(f, &[kind, len])?;
    write_hex(f, data)?;
    f.write_str(">")
}

/// A name for any LCP option type, including ones this module leaves as
/// [`LcpOption::Unknown`], so that rejected options can be named in logs.
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        0 => "Vendor-Specific",
        kind::MRU => "MRU",
        kind::ACCM => "ACCM",
        kind::AUTH_PROTOCOL => "Authentication-Protocol",
        kind::QUALITY_PROTOCOL => "Quality-Protocol",
        kind::MAGIC_NUMBER => "Magic-Number",
        kind::PFC => "PFC",
        kind::ACFC => "ACFC",
        9 => "FCS-Alternatives",
        10 => "Self-Describing-Padding",
        11 => "Numbered-Mode",
        13 => "Callback",
        15 => "Compound-Frames",
        17 => "MRRU",
        18 => "Short-Sequence-Number-Header",
        19 => "Endpoint-Discriminator",
        21 => "DCE-Identifier",
        22 => "Multi-Link-Plus-Procedure",
        23 => "Link-Discriminator",
        24 => "LCP-Authentication",
        25 => "COBS",
        26 => "Prefix-Elision",
        27 => "Multilink-Header-Format",
        28 => "Internationalization",
        _ => "unknown",
    }
}

/// The protocol the Authentication-Protocol option asks the peer to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthProtocol<'a> {
    Pap,
    Chap {
        algorithm: u8,
    },
    Eap,
    /// Any other protocol, or a known one with data we do not expect.
    Unknown {
        protocol: u16,
        data: &'a [u8],
    },
}

impl<'a> AuthProtocol<'a> {
    /// Parses the option data: protocol number, then protocol-specific data.
    /// PAP and EAP carry no data and CHAP exactly one algorithm byte; other
    /// lengths are `Malformed`.
    pub fn parse(data: &'a [u8]) -> Result<AuthProtocol<'a>> {
        let (protocol, rest) = split_protocol(data)?;
        match (Protocol::from(protocol), rest) {
            (Protocol::Pap, []) => Ok(AuthProtocol::Pap),
            (Protocol::Chap, [algorithm]) => Ok(AuthProtocol::Chap {
                algorithm: *algorithm,
            }),
            (Protocol::Eap, []) => Ok(AuthProtocol::Eap),
            (Protocol::Pap | Protocol::Chap | Protocol::Eap, _) => Err(Error::Malformed),
            (_, data) => Ok(AuthProtocol::Unknown { protocol, data }),
        }
    }

    /// The PPP protocol number of the authentication protocol.
    pub fn protocol(&self) -> u16 {
        match self {
            AuthProtocol::Pap => Protocol::Pap.into(),
            AuthProtocol::Chap { .. } => Protocol::Chap.into(),
            AuthProtocol::Eap => Protocol::Eap.into(),
            AuthProtocol::Unknown { protocol, .. } => *protocol,
        }
    }

    pub fn is_pap(&self) -> bool {
        matches!(self, AuthProtocol::Pap)
    }

    /// CHAP with MD5, the only CHAP variant RFC 1994 defines.
    pub fn is_chap_md5(&self) -> bool {
        matches!(
            self,
            AuthProtocol::Chap {
                algorithm: chap_algorithm::MD5
            }
        )
    }

    /// Bytes of option data (protocol number included), before truncation.
    fn data_len(&self) -> usize {
        match self {
            AuthProtocol::Pap | AuthProtocol::Eap => 2,
            AuthProtocol::Chap { .. } => 3,
            AuthProtocol::Unknown { data, .. } => 2 + data.len(),
        }
    }

    fn push_option_to(&self, out: &mut Vec<u8>) {
        match self {
            AuthProtocol::Chap { algorithm } => {
                push_protocol_option(out, kind::AUTH_PROTOCOL, self.protocol(), &[*algorithm])
            }
            AuthProtocol::Unknown { protocol, data } => {
                push_protocol_option(out, kind::AUTH_PROTOCOL, *protocol, data)
            }
            AuthProtocol::Pap | AuthProtocol::Eap => {
                push_protocol_option(out, kind::AUTH_PROTOCOL, self.protocol(), &[])
            }
        }
    }
}

/// As pppd prints it after `auth `: `pap`, `chap MD5`, `chap MS-v2`, `eap`,
/// or the protocol number in hex followed by any data bytes.
impl fmt::Display for AuthProtocol<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthProtocol::Pap => f.write_str("pap"),
            AuthProtocol::Chap { algorithm } => {
                f.write_str("chap")?;
                match *algorithm {
                    chap_algorithm::MD5 => f.write_str(" MD5"),
                    chap_algorithm::MS_CHAP => f.write_str(" MS"),
                    chap_algorithm::MS_CHAP_V2 => f.write_str(" MS-v2"),
                    other => write_hex(f, &[other]),
                }
            }
            AuthProtocol::Eap => f.write_str("eap"),
            AuthProtocol::Unknown { protocol, data } => {
                write!(f, "{protocol:#x}")?;
                write_hex(f, data)
            }
        }
    }
}

/// One LCP configuration option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LcpOption<'a> {
    Mru(u16),
    Accm(u32),
    AuthProtocol(AuthProtocol<'a>),
    QualityProtocol {
        protocol: u16,
        data: &'a [u8],
    },
    /// RFC 1661 §6.4 forbids zero; that is the negotiator's call (Nak), so
    /// it parses here.
    MagicNumber(u32),
    Pfc,
    Acfc,
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

impl<'a> LcpOption<'a> {
    /// Gives a raw option its LCP meaning. A known option with a length its
    /// RFC does not allow is `Malformed`: the caller should Configure-Reject
    /// it (its type is `raw.kind`).
    pub fn parse(raw: RawOption<'a>) -> Result<LcpOption<'a>> {
        let data = raw.data;
        Ok(match raw.kind {
            kind::MRU => LcpOption::Mru(u16::from_be_bytes(fixed_data(data)?)),
            kind::ACCM => LcpOption::Accm(u32::from_be_bytes(fixed_data(data)?)),
            kind::AUTH_PROTOCOL => LcpOption::AuthProtocol(AuthProtocol::parse(data)?),
            kind::QUALITY_PROTOCOL => {
                let (protocol, data) = split_protocol(data)?;
                LcpOption::QualityProtocol { protocol, data }
            }
            kind::MAGIC_NUMBER => LcpOption::MagicNumber(u32::from_be_bytes(fixed_data(data)?)),
            kind::PFC => {
                fixed_data::<0>(data)?;
                LcpOption::Pfc
            }
            kind::ACFC => {
                fixed_data::<0>(data)?;
                LcpOption::Acfc
            }
            kind => LcpOption::Unknown { kind, data },
        })
    }

    /// Iterates and parses the options of a Configure-* packet's data.
    /// Framing errors end the iteration (see [`OptionIter`]); an option that
    /// is framed correctly but malformed yields `Err` and iteration goes on.
    /// To Configure-Reject malformed options, iterate [`OptionIter`] and
    /// call [`LcpOption::parse`] on each raw option instead.
    pub fn iter(data: &'a [u8]) -> impl Iterator<Item = Result<LcpOption<'a>>> + 'a {
        OptionIter::new(data).map(|raw| raw.and_then(LcpOption::parse))
    }

    /// The option type number.
    pub fn kind(&self) -> u8 {
        match self {
            LcpOption::Mru(_) => kind::MRU,
            LcpOption::Accm(_) => kind::ACCM,
            LcpOption::AuthProtocol(_) => kind::AUTH_PROTOCOL,
            LcpOption::QualityProtocol { .. } => kind::QUALITY_PROTOCOL,
            LcpOption::MagicNumber(_) => kind::MAGIC_NUMBER,
            LcpOption::Pfc => kind::PFC,
            LcpOption::Acfc => kind::ACFC,
            LcpOption::Unknown { kind, .. } => *kind,
        }
    }

    /// The option's name for logs.
    pub fn name(&self) -> &'static str {
        kind_name(self.kind())
    }

    /// Bytes `push_to` appends, header included.
    pub fn buffer_len(&self) -> usize {
        match self {
            LcpOption::Mru(_) => 4,
            LcpOption::Accm(_) | LcpOption::MagicNumber(_) => 6,
            LcpOption::Pfc | LcpOption::Acfc => 2,
            LcpOption::AuthProtocol(auth) => 2 + auth.data_len().min(MAX_OPTION_DATA),
            LcpOption::QualityProtocol { data, .. } => protocol_option_len(data),
            LcpOption::Unknown { data, .. } => 2 + data.len().min(MAX_OPTION_DATA),
        }
    }

    /// Appends the option to `out`; data beyond what the length byte can
    /// express is truncated.
    pub fn push_to(&self, out: &mut Vec<u8>) {
        match self {
            LcpOption::Mru(mru) => push_option(out, kind::MRU, &mru.to_be_bytes()),
            LcpOption::Accm(accm) => push_option(out, kind::ACCM, &accm.to_be_bytes()),
            LcpOption::AuthProtocol(auth) => auth.push_option_to(out),
            LcpOption::QualityProtocol { protocol, data } => {
                push_protocol_option(out, kind::QUALITY_PROTOCOL, *protocol, data)
            }
            LcpOption::MagicNumber(magic) => {
                push_option(out, kind::MAGIC_NUMBER, &magic.to_be_bytes())
            }
            LcpOption::Pfc => push_option(out, kind::PFC, &[]),
            LcpOption::Acfc => push_option(out, kind::ACFC, &[]),
            LcpOption::Unknown { kind, data } => push_option(out, *kind, data),
        }
    }
}

/// As pppd's debug log prints it, e.g. `<mru 1492>`, `<auth chap MD5>`,
/// `<magic 0x1fccbfb>` (pppd's `%x`, no zero padding), `< 11 04 05 dc>`
/// for an option it does not decode.
impl fmt::Display for LcpOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LcpOption::Mru(mru) => write!(f, "<mru {mru}>"),
            LcpOption::Accm(accm) => write!(f, "<asyncmap {accm:#x}>"),
            LcpOption::AuthProtocol(auth) => write!(f, "<auth {auth}>"),
            LcpOption::QualityProtocol { protocol, data } => {
                if Protocol::from(*protocol) == Protocol::Lqr {
                    f.write_str("<quality lqr")?;
                } else {
                    write!(f, "<quality {protocol:#x}")?;
                }
                write_hex(f, data)?;
                f.write_str(">")
            }
            LcpOption::MagicNumber(magic) => write!(f, "<magic {magic:#x}>"),
            LcpOption::Pfc => f.write_str("<pcomp>"),
            LcpOption::Acfc => f.write_str("<accomp>"),
            LcpOption::Unknown { kind, data } => write_unknown_option(f, *kind, data),
        }
    }
}

/// Data of Echo-Request, Echo-Reply and Discard-Request (RFC 1661 §5.8, §5.9):
/// the sender's magic number, then anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoRepr<'a> {
    pub magic: u32,
    pub data: &'a [u8],
}

impl<'a> EchoRepr<'a> {
    /// Parses the control packet's data; shorter than the magic number is
    /// `Truncated`.
    pub fn parse(data: &'a [u8]) -> Result<EchoRepr<'a>> {
        match data {
            [a, b, c, d, rest @ ..] => Ok(EchoRepr {
                magic: u32::from_be_bytes([*a, *b, *c, *d]),
                data: rest,
            }),
            _ => Err(Error::Truncated),
        }
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    pub fn push_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.magic.to_be_bytes());
        out.extend_from_slice(self.data);
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.push_to(&mut out);
        out
    }

    /// The whole control packet: `code` is Echo-Request, Echo-Reply or
    /// Discard-Request.
    pub fn to_packet(&self, code: Code, identifier: u8) -> Vec<u8> {
        let data = self.to_vec();
        control::Repr {
            code,
            identifier,
            data: &data,
        }
        .to_vec()
    }
}

/// `magic=0x1fccbfb` then up to 32 data bytes, as pppd prints it.
impl fmt::Display for EchoRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magic={:#x}", self.magic)?;
        write_bytes_capped(f, self.data)
    }
}

/// pppd prints at most 32 trailing bytes of a packet, then ` ...`.
fn write_bytes_capped(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    const SHOWN: usize = 32;
    write_hex(f, &bytes[..bytes.len().min(SHOWN)])?;
    if bytes.len() > SHOWN {
        f.write_str(" ...")?;
    }
    Ok(())
}

/// Data of a Protocol-Reject (RFC 1661 §5.7): the rejected protocol number,
/// then a copy of the rejected packet's information field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolRejectRepr<'a> {
    pub protocol: u16,
    pub information: &'a [u8],
}

impl<'a> ProtocolRejectRepr<'a> {
    pub fn parse(data: &'a [u8]) -> Result<ProtocolRejectRepr<'a>> {
        match data {
            [high, low, information @ ..] => Ok(ProtocolRejectRepr {
                protocol: u16::from_be_bytes([*high, *low]),
                information,
            }),
            _ => Err(Error::Truncated),
        }
    }

    /// The rejected protocol, for dispatch (e.g. stop IPv6CP).
    pub fn rejected_protocol(&self) -> Protocol {
        Protocol::from(self.protocol)
    }

    pub fn buffer_len(&self) -> usize {
        2 + self.information.len()
    }

    pub fn push_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.protocol.to_be_bytes());
        out.extend_from_slice(self.information);
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.push_to(&mut out);
        out
    }

    /// The whole LCP Protocol-Reject packet.
    pub fn to_packet(&self, identifier: u8) -> Vec<u8> {
        let data = self.to_vec();
        control::Repr {
            code: Code::ProtocolReject,
            identifier,
            data: &data,
        }
        .to_vec()
    }
}

/// `proto=0x8057 (IPv6CP)` then up to 32 bytes of the rejected information.
impl fmt::Display for ProtocolRejectRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "proto={:#x} ({})",
            self.protocol,
            self.rejected_protocol().name()
        )?;
        write_bytes_capped(f, self.information)
    }
}

/// Data of a Code-Reject (RFC 1661 §5.6): a copy of the rejected packet,
/// header included, possibly truncated to fit the peer's MRU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRejectRepr<'a> {
    pub rejected: &'a [u8],
}

impl<'a> CodeRejectRepr<'a> {
    /// Any bytes are a valid (possibly truncated) rejected packet.
    pub fn parse(data: &'a [u8]) -> Result<CodeRejectRepr<'a>> {
        Ok(CodeRejectRepr { rejected: data })
    }

    /// The code the peer did not understand, if the copy has one.
    pub fn rejected_code(&self) -> Option<Code> {
        self.rejected.first().map(|code| Code::from(*code))
    }

    /// The identifier of the rejected packet, if the copy has one.
    pub fn rejected_identifier(&self) -> Option<u8> {
        self.rejected.get(1).copied()
    }

    pub fn buffer_len(&self) -> usize {
        self.rejected.len()
    }

    pub fn push_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.rejected);
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.rejected.to_vec()
    }

    /// The whole Code-Reject packet, for LCP or any NCP.
    pub fn to_packet(&self, identifier: u8) -> Vec<u8> {
        control::Repr {
            code: Code::CodeReject,
            identifier,
            data: self.rejected,
        }
        .to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // AC's LCP Configure-Request, captures/public/zeek/pppoe.pcap frame 6
    // (control packet without the Ethernet padding).
    static AC_CONF_REQ: [u8; 18] = [
        0x01, 0x01, 0x00, 0x12, 0x01, 0x04, 0x05, 0xd4, 0x03, 0x04, 0xc0, 0x23, 0x05, 0x06, 0x01,
        0xfc, 0xcb, 0xfb,
    ];
    // Client's Configure-Nak of that MRU, zeek/pppoe.pcap frame 8.
    static CONF_NAK: [u8; 8] = [0x03, 0x01, 0x00, 0x08, 0x01, 0x04, 0x05, 0xdc];
    // Echo-Request and Echo-Reply, zeek/pppoe.pcap frames 28 and 29.
    static ECHO_REQ: [u8; 12] = [
        0x09, 0x01, 0x00, 0x0c, 0x05, 0xfc, 0xd4, 0x59, 0x01, 0xfc, 0xcb, 0xfb,
    ];
    static ECHO_REPLY: [u8; 12] = [
        0x0a, 0x01, 0x00, 0x0c, 0x01, 0xfc, 0xcb, 0xfb, 0x01, 0xfc, 0xcb, 0xfb,
    ];
    // Echo-Request with no data after the magic number,
    // suricata-verify/pppoe_input.pcap frame 22.
    static ECHO_REQ_BARE: [u8; 8] = [0x09, 0x00, 0x00, 0x08, 0x2c, 0xa7, 0x9d, 0xe8];
    // Protocol-Reject of an IPv6CP Configure-Request (Interface-Identifier),
    // suricata-verify/pppoe_input.pcap frame 35.
    static PROT_REJ: [u8; 20] = [
        0x08, 0x02, 0x00, 0x14, 0x80, 0x57, 0x01, 0x01, 0x00, 0x0e, 0x01, 0x0a, 0xed, 0x17, 0x00,
        0xa2, 0x1b, 0xaf, 0x22, 0x9e,
    ];
    // Terminate-Request "User request", suricata-verify/pppoe_input.pcap frame 6.
    static TERM_REQ: [u8; 16] = [
        0x05, 0x02, 0x00, 0x10, 0x55, 0x73, 0x65, 0x72, 0x20, 0x72, 0x65, 0x71, 0x75, 0x65, 0x73,
        0x74,
    ];

    fn options(packet: &[u8]) -> Vec<LcpOption<'_>> {
        let control = control::Repr::parse_bytes(packet).unwrap();
        LcpOption::iter(control.data)
            .collect::<Result<_>>()
            .unwrap()
    }

    fn emit_all(options: &[LcpOption<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for option in options {
            option.push_to(&mut out);
        }
        out
    }

    #[test]
    fn parses_configure_request() {
        let parsed = options(&AC_CONF_REQ);
        assert_eq!(
            parsed,
            vec![
                LcpOption::Mru(1492),
                LcpOption::AuthProtocol(AuthProtocol::Pap),
                LcpOption::MagicNumber(0x01fc_cbfb),
            ]
        );
        assert!(matches!(parsed[1], LcpOption::AuthProtocol(auth) if auth.is_pap()));
        let shown: Vec<String> = parsed.iter().map(|o| o.to_string()).collect();
        assert_eq!(shown, ["<mru 1492>", "<auth pap>", "<magic 0x1fccbfb>"]);
        assert_eq!(emit_all(&parsed), AC_CONF_REQ[4..]);
    }

    #[test]
    fn parses_configure_nak() {
        let control = control::Repr::parse_bytes(&CONF_NAK).unwrap();
        assert_eq!(control.code, Code::ConfigureNak);
        assert_eq!(options(&CONF_NAK), vec![LcpOption::Mru(1500)]);
    }

    #[test]
    fn echo_request_and_reply() {
        let request = control::Repr::parse_bytes(&ECHO_REQ).unwrap();
        let echo = EchoRepr::parse(request.data).unwrap();
        assert_eq!(
            echo,
            EchoRepr {
                magic: 0x05fc_d459,
                data: &[0x01, 0xfc, 0xcb, 0xfb]
            }
        );
        assert_eq!(echo.to_string(), "magic=0x5fcd459 01 fc cb fb");
        assert_eq!(echo.to_packet(Code::EchoRequest, 1), ECHO_REQ);

        let reply = control::Repr::parse_bytes(&ECHO_REPLY).unwrap();
        assert_eq!(reply.code, Code::EchoReply);
        let echo = EchoRepr::parse(reply.data).unwrap();
        assert_eq!(echo.magic, 0x01fc_cbfb);
        assert_eq!(echo.to_vec(), ECHO_REPLY[4..]);

        let bare = control::Repr::parse_bytes(&ECHO_REQ_BARE).unwrap();
        let echo = EchoRepr::parse(bare.data).unwrap();
        assert_eq!(
            echo,
            EchoRepr {
                magic: 0x2ca7_9de8,
                data: &[]
            }
        );
        assert_eq!(echo.to_packet(Code::EchoRequest, 0), ECHO_REQ_BARE);
    }

    #[test]
    fn echo_shorter_than_magic_is_truncated() {
        assert_eq!(EchoRepr::parse(&ECHO_REQ_BARE[4..7]), Err(Error::Truncated));
        assert_eq!(EchoRepr::parse(&[]), Err(Error::Truncated));
    }

    #[test]
    fn protocol_reject_of_ipv6cp() {
        let control = control::Repr::parse_bytes(&PROT_REJ).unwrap();
        assert_eq!(control.code, Code::ProtocolReject);
        let reject = ProtocolRejectRepr::parse(control.data).unwrap();
        assert_eq!(reject.rejected_protocol(), Protocol::Ipv6cp);
        // The rejected information is itself an IPv6CP Configure-Request.
        let inner = control::Repr::parse_bytes(reject.information).unwrap();
        assert_eq!(inner.code, Code::ConfigureRequest);
        assert_eq!(reject.to_packet(2), PROT_REJ);
        assert!(reject
            .to_string()
            .starts_with("proto=0x8057 (IPv6CP) 01 01 00 0e"));
        assert_eq!(ProtocolRejectRepr::parse(&[0x80]), Err(Error::Truncated));
    }

    #[test]
    fn code_reject_carries_the_packet() {
        // Built, not captured: a Code-Reject of the Terminate-Request above.
        let reject = CodeRejectRepr::parse(&TERM_REQ).unwrap();
        assert_eq!(reject.rejected_code(), Some(Code::TerminateRequest));
        assert_eq!(reject.rejected_identifier(), Some(2));
        let packet = reject.to_packet(7);
        let control = control::Repr::parse_bytes(&packet).unwrap();
        assert_eq!(control.code, Code::CodeReject);
        assert_eq!(control.data, TERM_REQ);
        assert_eq!(CodeRejectRepr::parse(&[]).unwrap().rejected_code(), None);
    }

    #[test]
    fn terminate_request_data_is_opaque() {
        let control = control::Repr::parse_bytes(&TERM_REQ).unwrap();
        assert_eq!(control.code, Code::TerminateRequest);
        assert_eq!(control.data, b"User request");
    }

    #[test]
    fn display_like_pppd() {
        let cases: [(LcpOption<'_>, &str); 11] = [
            (LcpOption::Accm(0), "<asyncmap 0x0>"),
            (
                LcpOption::AuthProtocol(AuthProtocol::Chap { algorithm: 5 }),
                "<auth chap MD5>",
            ),
            (
                LcpOption::AuthProtocol(AuthProtocol::Chap { algorithm: 0x80 }),
                "<auth chap MS>",
            ),
            (
                LcpOption::AuthProtocol(AuthProtocol::Chap { algorithm: 0x81 }),
                "<auth chap MS-v2>",
            ),
            (
                LcpOption::AuthProtocol(AuthProtocol::Chap { algorithm: 7 }),
                "<auth chap 07>",
            ),
            (LcpOption::AuthProtocol(AuthProtocol::Eap), "<auth eap>"),
            (
                LcpOption::AuthProtocol(AuthProtocol::Unknown {
                    protocol: 0xc281,
                    data: &[1],
                }),
                "<auth 0xc281 01>",
            ),
            (
                LcpOption::QualityProtocol {
                    protocol: 0xc025,
                    data: &[0, 0, 0x27, 0x10],
                },
                "<quality lqr 00 00 27 10>",
            ),
            (LcpOption::Pfc, "<pcomp>"),
            (LcpOption::Acfc, "<accomp>"),
            (
                LcpOption::Unknown {
                    kind: 17,
                    data: &[0x05, 0xdc],
                },
                "< 11 04 05 dc>",
            ),
        ];
        for (option, shown) in cases {
            assert_eq!(option.to_string(), shown);
        }
        assert_eq!(
            LcpOption::Unknown {
                kind: 17,
                data: &[]
            }
            .name(),
            "MRRU"
        );
        assert!(AuthProtocol::Chap { algorithm: 5 }.is_chap_md5());
        assert!(!AuthProtocol::Chap { algorithm: 0x81 }.is_chap_md5());
    }

    #[test]
    fn wrong_lengths_of_known_options_are_malformed() {
        let bad: [(u8, &[u8]); 10] = [
            (kind::MRU, &[0x05]),
            (kind::MRU, &[0x05, 0xd4, 0x00]),
            (kind::ACCM, &[0, 0, 0]),
            (kind::AUTH_PROTOCOL, &[0xc0]),
            (kind::AUTH_PROTOCOL, &[0xc0, 0x23, 0x00]),
            (kind::AUTH_PROTOCOL, &[0xc2, 0x23]),
            (kind::AUTH_PROTOCOL, &[0xc2, 0x23, 0x05, 0x00]),
            (kind::QUALITY_PROTOCOL, &[0xc0]),
            (kind::MAGIC_NUMBER, &[1, 2, 3]),
            (kind::PFC, &[0]),
        ];
        for (kind, data) in bad {
            assert_eq!(
                LcpOption::parse(RawOption { kind, data }),
                Err(Error::Malformed)
            );
        }
        // Iteration goes on past a malformed option that is framed correctly.
        let items: Vec<_> = LcpOption::iter(&[1, 3, 5, 7, 2]).collect();
        assert_eq!(items, vec![Err(Error::Malformed), Ok(LcpOption::Pfc)]);
    }

    #[test]
    fn every_option_round_trips() {
        let all = [
            LcpOption::Mru(1492),
            LcpOption::Accm(0x000a_0000),
            LcpOption::AuthProtocol(AuthProtocol::Pap),
            LcpOption::AuthProtocol(AuthProtocol::Chap { algorithm: 5 }),
            LcpOption::AuthProtocol(AuthProtocol::Eap),
            LcpOption::AuthProtocol(AuthProtocol::Unknown {
                protocol: 0xc281,
                data: &[9, 9],
            }),
            LcpOption::QualityProtocol {
                protocol: 0xc025,
                data: &[0, 0, 0x27, 0x10],
            },
            LcpOption::MagicNumber(0x01fc_cbfb),
            LcpOption::Pfc,
            LcpOption::Acfc,
            LcpOption::Unknown {
                kind: 19,
                data: &[1, 2, 3],
            },
        ];
        for option in all {
            let mut out = Vec::new();
            option.push_to(&mut out);
            assert_eq!(out.len(), option.buffer_len(), "{option}");
            let raw = OptionIter::new(&out).next().unwrap().unwrap();
            assert_eq!(LcpOption::parse(raw), Ok(option));
        }
    }

    #[test]
    fn oversized_data_is_truncated_consistently() {
        let long = [0xaa; 300];
        let option = LcpOption::QualityProtocol {
            protocol: 0x1234,
            data: &long,
        };
        let mut out = Vec::new();
        option.push_to(&mut out);
        assert_eq!(out.len(), 255);
        assert_eq!(option.buffer_len(), 255);
        let unknown = LcpOption::Unknown {
            kind: 99,
            data: &long,
        };
        assert_eq!(unknown.buffer_len(), 255);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for option in LcpOption::iter(&bytes).flatten() {
                let _ = option.to_string();
                // Whatever parses re-parses from its own emission.
                let mut out = Vec::new();
                option.push_to(&mut out);
                prop_assert_eq!(out.len(), option.buffer_len());
                let raw = OptionIter::new(&out).next().unwrap().unwrap();
                prop_assert_eq!(LcpOption::parse(raw), Ok(option));
            }
            let _ = EchoRepr::parse(&bytes).map(|e| e.to_string());
            let _ = ProtocolRejectRepr::parse(&bytes).map(|r| r.to_string());
            let _ = CodeRejectRepr::parse(&bytes).map(|r| r.rejected_code());
        }

        #[test]
        fn arbitrary_option_data_never_panics(kind in any::<u8>(),
                                              data in proptest::collection::vec(any::<u8>(), 0..254)) {
            if let Ok(option) = LcpOption::parse(RawOption { kind, data: &data }) {
                let mut out = Vec::new();
                option.push_to(&mut out);
                prop_assert_eq!(&out[2..], &data[..]);
            }
        }
    }
}
