//! IPv6 Control Protocol options (RFC 5072). Packet framing is
//! [`crate::control`], option framing [`crate::options`]. `Display` follows
//! pppd's debug log (`<addr fe80::c801:0eff:fe88:0008>`).

use core::fmt;
use std::net::Ipv6Addr;

use crate::lcp::{
    fixed_data, protocol_option_len, push_protocol_option, split_protocol, write_hex,
    write_unknown_option,
};
use crate::options::{push_option, OptionIter, RawOption};
use crate::Result;

/// IPv6CP option type numbers (RFC 5072 §4).
pub mod kind {
    pub const INTERFACE_IDENTIFIER: u8 = 1;
    pub const IPV6_COMPRESSION_PROTOCOL: u8 = 2;
}

/// A name for any IPv6CP option type, for logs.
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        kind::INTERFACE_IDENTIFIER => "Interface-Identifier",
        kind::IPV6_COMPRESSION_PROTOCOL => "IPv6-Compression-Protocol",
        _ => "unknown",
    }
}

/// The link-local address an interface identifier gives: fe80::/64 + id
/// (RFC 5072 §5).
pub fn link_local(id: [u8; 8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets[..2].copy_from_slice(&[0xfe, 0x80]);
    octets[8..].copy_from_slice(&id);
    Ipv6Addr::from(octets)
}

/// One IPv6CP configuration option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv6cpOption<'a> {
    /// An all-zero identifier asks the peer to Nak with one for us
    /// (RFC 5072 §4.1); that is policy, so it parses here.
    InterfaceIdentifier([u8; 8]),
    Ipv6CompressionProtocol {
        protocol: u16,
        data: &'a [u8],
    },
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

impl<'a> Ipv6cpOption<'a> {
    /// Gives a raw option its IPv6CP meaning. A known option with a length
    /// its RFC does not allow is `Malformed`: the caller should
    /// Configure-Reject it (its type is `raw.kind`).
    pub fn parse(raw: RawOption<'a>) -> Result<Ipv6cpOption<'a>> {
        Ok(match raw.kind {
            kind::INTERFACE_IDENTIFIER => Ipv6cpOption::InterfaceIdentifier(fixed_data(raw.data)?),
            kind::IPV6_COMPRESSION_PROTOCOL => {
                let (protocol, data) = split_protocol(raw.data)?;
                Ipv6cpOption::Ipv6CompressionProtocol { protocol, data }
            }
            kind => Ipv6cpOption::Unknown {
                kind,
                data: raw.data,
            },
        })
    }

    /// Iterates and parses the options of a Configure-* packet's data.
    /// Framing errors end the iteration; a framed but malformed option
    /// yields `Err` and iteration goes on (see [`crate::lcp::LcpOption::iter`]).
    pub fn iter(data: &'a [u8]) -> impl Iterator<Item = Result<Ipv6cpOption<'a>>> + 'a {
        OptionIter::new(data).map(|raw| raw.and_then(Ipv6cpOption::parse))
    }

    /// The option type number.
    pub fn kind(&self) -> u8 {
        match self {
            Ipv6cpOption::InterfaceIdentifier(_) => kind::INTERFACE_IDENTIFIER,
            Ipv6cpOption::Ipv6CompressionProtocol { .. } => kind::IPV6_COMPRESSION_PROTOCOL,
            Ipv6cpOption::Unknown { kind, .. } => *kind,
        }
    }

    /// The option's name for logs.
    pub fn name(&self) -> &'static str {
        kind_name(self.kind())
    }

    /// Bytes `push_to` appends, header included.
    pub fn buffer_len(&self) -> usize {
        match self {
            Ipv6cpOption::InterfaceIdentifier(_) => 10,
            Ipv6cpOption::Ipv6CompressionProtocol { data, .. } => protocol_option_len(data),
            Ipv6cpOption::Unknown { data, .. } => 2 + data.len().min(253),
        }
    }

    /// Appends the option to `out`; data beyond what the length byte can
    /// express is truncated.
    pub fn push_to(&self, out: &mut Vec<u8>) {
        match self {
            Ipv6cpOption::InterfaceIdentifier(id) => {
                push_option(out, kind::INTERFACE_IDENTIFIER, id)
            }
            Ipv6cpOption::Ipv6CompressionProtocol { protocol, data } => {
                push_protocol_option(out, kind::IPV6_COMPRESSION_PROTOCOL, *protocol, data)
            }
            Ipv6cpOption::Unknown { kind, data } => push_option(out, *kind, data),
        }
    }
}

/// As pppd's debug log prints it: the identifier as the link-local address
/// it makes, each group zero-padded to four digits (pppd's `llv6_ntoa`).
impl fmt::Display for Ipv6cpOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ipv6cpOption::InterfaceIdentifier(id) => {
                f.write_str("<addr fe80::")?;
                for (index, pair) in id.chunks(2).enumerate() {
                    if index > 0 {
                        f.write_str(":")?;
                    }
                    pair.iter().try_for_each(|byte| write!(f, "{byte:02x}"))?;
                }
                f.write_str(">")
            }
            Ipv6cpOption::Ipv6CompressionProtocol { protocol, data } => {
                write!(f, "<compress {protocol:#x}")?;
                write_hex(f, data)?;
                f.write_str(">")
            }
            Ipv6cpOption::Unknown { kind, data } => write_unknown_option(f, *kind, data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{self, Code};
    use crate::Error;
    use proptest::prelude::*;

    // The AC's Configure-Request, captures/public/zeek/pppoe.pcap frame 14
    // (without padding).
    static AC_CONF_REQ: [u8; 14] = [
        0x01, 0x01, 0x00, 0x0e, 0x01, 0x0a, 0xc8, 0x01, 0x0e, 0xff, 0xfe, 0x88, 0x00, 0x08,
    ];
    // The client's Configure-Ack of it, zeek/pppoe.pcap frame 18.
    static CONF_ACK: [u8; 14] = [
        0x02, 0x01, 0x00, 0x0e, 0x01, 0x0a, 0xc8, 0x01, 0x0e, 0xff, 0xfe, 0x88, 0x00, 0x08,
    ];
    // The Configure-Request a peer without IPv6 Protocol-Rejected,
    // captures/public/suricata-verify/pppoe_input.pcap frame 27.
    static SURICATA_CONF_REQ: [u8; 14] = [
        0x01, 0x01, 0x00, 0x0e, 0x01, 0x0a, 0xed, 0x17, 0x00, 0xa2, 0x1b, 0xaf, 0x22, 0x9e,
    ];

    fn options(packet: &[u8]) -> Vec<Ipv6cpOption<'_>> {
        let control = control::Repr::parse_bytes(packet).unwrap();
        Ipv6cpOption::iter(control.data)
            .collect::<Result<_>>()
            .unwrap()
    }

    #[test]
    fn interface_identifier_from_zeek() {
        let id = [0xc8, 0x01, 0x0e, 0xff, 0xfe, 0x88, 0x00, 0x08];
        let parsed = options(&AC_CONF_REQ);
        assert_eq!(parsed, [Ipv6cpOption::InterfaceIdentifier(id)]);
        assert_eq!(parsed[0].to_string(), "<addr fe80::c801:0eff:fe88:0008>");
        assert_eq!(
            link_local(id),
            "fe80::c801:eff:fe88:8".parse::<Ipv6Addr>().unwrap()
        );

        assert_eq!(
            control::Repr::parse_bytes(&CONF_ACK).unwrap().code,
            Code::ConfigureAck
        );
        let mut data = Vec::new();
        parsed[0].push_to(&mut data);
        let ack = control::Repr {
            code: Code::ConfigureAck,
            identifier: 1,
            data: &data,
        };
        assert_eq!(ack.to_vec(), CONF_ACK);
    }

    #[test]
    fn interface_identifier_from_suricata() {
        let parsed = options(&SURICATA_CONF_REQ);
        assert_eq!(
            parsed,
            [Ipv6cpOption::InterfaceIdentifier([
                0xed, 0x17, 0x00, 0xa2, 0x1b, 0xaf, 0x22, 0x9e
            ])]
        );
        assert_eq!(parsed[0].name(), "Interface-Identifier");
    }

    #[test]
    fn wrong_lengths_are_malformed() {
        let bad: [(u8, &[u8]); 3] = [
            (kind::INTERFACE_IDENTIFIER, &[0; 7]),
            (kind::INTERFACE_IDENTIFIER, &[0; 9]),
            (kind::IPV6_COMPRESSION_PROTOCOL, &[0x00]),
        ];
        for (kind, data) in bad {
            assert_eq!(
                Ipv6cpOption::parse(RawOption { kind, data }),
                Err(Error::Malformed)
            );
        }
    }

    #[test]
    fn every_option_round_trips() {
        let all = [
            Ipv6cpOption::InterfaceIdentifier([0, 0, 0, 0, 0, 0, 0, 1]),
            Ipv6cpOption::Ipv6CompressionProtocol {
                protocol: 0x0061,
                data: &[0, 15],
            },
            Ipv6cpOption::Unknown {
                kind: 3,
                data: &[7],
            },
        ];
        let shown = [
            "<addr fe80::0000:0000:0000:0001>",
            "<compress 0x61 00 0f>",
            "< 03 03 07>",
        ];
        for (option, shown) in all.into_iter().zip(shown) {
            assert_eq!(option.to_string(), shown);
            let mut out = Vec::new();
            option.push_to(&mut out);
            assert_eq!(out.len(), option.buffer_len());
            let raw = OptionIter::new(&out).next().unwrap().unwrap();
            assert_eq!(Ipv6cpOption::parse(raw), Ok(option));
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for option in Ipv6cpOption::iter(&bytes).flatten() {
                let _ = option.to_string();
                let mut out = Vec::new();
                option.push_to(&mut out);
                prop_assert_eq!(out.len(), option.buffer_len());
                let raw = OptionIter::new(&out).next().unwrap().unwrap();
                prop_assert_eq!(Ipv6cpOption::parse(raw), Ok(option));
            }
        }

        #[test]
        fn arbitrary_option_data_never_panics(kind in any::<u8>(),
                                              data in proptest::collection::vec(any::<u8>(), 0..254)) {
            if let Ok(option) = Ipv6cpOption::parse(RawOption { kind, data: &data }) {
                let mut out = Vec::new();
                option.push_to(&mut out);
                prop_assert_eq!(&out[2..], &data[..]);
            }
        }
    }
}
