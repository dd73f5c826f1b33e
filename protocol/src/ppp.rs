//! The PPP protocol field (RFC 1661 §2) and the protocol numbers a PPPoE
//! dialer meets.
//!
//! Over PPPoE the field is always sent uncompressed (RFC 2516 §7 forbids PFC),
//! but real peers compress it anyway (see
//! `captures/public/suricata-verify/bug-4810_pppoe-session-http.pcap`), so the
//! receive side accepts the one-byte form: a first byte with its low bit set is
//! a complete protocol number.

use crate::{Error, Result};

/// PPP protocol numbers (IANA "PPP DLL Protocol Numbers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Ipv4,
    Ipv6,
    Lcp,
    Pap,
    Chap,
    Eap,
    Ipcp,
    Ipv6cp,
    Ccp,
    Lqr,
    Unknown(u16),
}

impl From<u16> for Protocol {
    fn from(value: u16) -> Self {
        match value {
            0x0021 => Protocol::Ipv4,
            0x0057 => Protocol::Ipv6,
            0xc021 => Protocol::Lcp,
            0xc023 => Protocol::Pap,
            0xc223 => Protocol::Chap,
            0xc227 => Protocol::Eap,
            0x8021 => Protocol::Ipcp,
            0x8057 => Protocol::Ipv6cp,
            0x80fd => Protocol::Ccp,
            0xc025 => Protocol::Lqr,
            other => Protocol::Unknown(other),
        }
    }
}

impl From<Protocol> for u16 {
    fn from(protocol: Protocol) -> u16 {
        match protocol {
            Protocol::Ipv4 => 0x0021,
            Protocol::Ipv6 => 0x0057,
            Protocol::Lcp => 0xc021,
            Protocol::Pap => 0xc023,
            Protocol::Chap => 0xc223,
            Protocol::Eap => 0xc227,
            Protocol::Ipcp => 0x8021,
            Protocol::Ipv6cp => 0x8057,
            Protocol::Ccp => 0x80fd,
            Protocol::Lqr => 0xc025,
            Protocol::Unknown(other) => other,
        }
    }
}

impl Protocol {
    /// A short name for logs and replay output.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Ipv4 => "IPv4",
            Protocol::Ipv6 => "IPv6",
            Protocol::Lcp => "LCP",
            Protocol::Pap => "PAP",
            Protocol::Chap => "CHAP",
            Protocol::Eap => "EAP",
            Protocol::Ipcp => "IPCP",
            Protocol::Ipv6cp => "IPv6CP",
            Protocol::Ccp => "CCP",
            Protocol::Lqr => "LQR",
            Protocol::Unknown(_) => "unknown",
        }
    }

    /// Network-layer control protocols live in 0x8000..=0xbfff (RFC 1661 §2).
    pub fn is_network_control(self) -> bool {
        (0x8000..=0xbfff).contains(&u16::from(self))
    }
}

/// Reads the protocol field at the start of `bytes`, accepting the compressed
/// one-byte form. Returns the protocol number and the field's length (1 or 2).
pub fn parse_protocol(bytes: &[u8]) -> Result<(u16, usize)> {
    match bytes {
        [] => Err(Error::Truncated),
        [first, ..] if first & 1 == 1 => Ok((u16::from(*first), 1)),
        [_] => Err(Error::Truncated),
        [high, low, ..] => {
            // The last octet of a valid protocol number is odd and the first even.
            if low & 1 == 0 {
                return Err(Error::Malformed);
            }
            Ok((u16::from_be_bytes([*high, *low]), 2))
        }
    }
}

/// Length of the uncompressed protocol field, which is what we send.
pub const PROTOCOL_LEN: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        // LCP as sent in captures/public/zeek/pppoe.pcap.
        assert_eq!(parse_protocol(&[0xc0, 0x21, 0x01]), Ok((0xc021, 2)));
        // IPv4 compressed to one byte in
        // captures/public/suricata-verify/bug-4810_pppoe-session-http.pcap.
        assert_eq!(parse_protocol(&[0x21, 0x45]), Ok((0x0021, 1)));
    }

    #[test]
    fn rejects_short_and_even_fields() {
        assert_eq!(parse_protocol(&[]), Err(Error::Truncated));
        assert_eq!(parse_protocol(&[0xc0]), Err(Error::Truncated));
        assert_eq!(parse_protocol(&[0xc0, 0x20]), Err(Error::Malformed));
    }

    #[test]
    fn numbers_round_trip() {
        for value in [
            0x0021u16, 0x0057, 0xc021, 0xc023, 0xc223, 0x8021, 0x8057, 0x80fd, 0x1234,
        ] {
            assert_eq!(u16::from(Protocol::from(value)), value);
        }
        assert!(Protocol::Ipcp.is_network_control());
        assert!(!Protocol::Lcp.is_network_control());
    }
}
