//! IP Control Protocol options (RFC 1332, and RFC 1877 for the name-server
//! options). Packet framing is [`crate::control`], option framing
//! [`crate::options`]. `Display` follows pppd's debug log
//! (`<addr 192.0.2.10>`, `<ms-dns1 192.0.2.53>`, `<compress VJ 0f 01>`).

use core::fmt;
use std::net::Ipv4Addr;

use crate::lcp::{
    fixed_data, protocol_option_len, push_protocol_option, split_protocol, write_hex,
    write_unknown_option,
};
use crate::options::{push_option, OptionIter, RawOption};
use crate::Result;

/// IPCP option type numbers (IANA "PPP IPCP Configuration Option Types").
pub mod kind {
    pub const IP_ADDRESSES: u8 = 1;
    pub const IP_COMPRESSION_PROTOCOL: u8 = 2;
    pub const IP_ADDRESS: u8 = 3;
    pub const PRIMARY_DNS: u8 = 129;
    pub const PRIMARY_NBNS: u8 = 130;
    pub const SECONDARY_DNS: u8 = 131;
    pub const SECONDARY_NBNS: u8 = 132;
}

/// Compression protocols named in the IP-Compression-Protocol option.
pub mod compression {
    /// Van Jacobson TCP/IP header compression (RFC 1332 §3.2).
    pub const VJ: u16 = 0x002d;
    /// The number some old implementations sent for VJ; pppd calls it old-VJ.
    pub const VJ_OLD: u16 = 0x0037;
    /// IP Header Compression (RFC 3544).
    pub const IPHC: u16 = 0x0061;
}

/// A name for any IPCP option type, for logs.
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        kind::IP_ADDRESSES => "IP-Addresses",
        kind::IP_COMPRESSION_PROTOCOL => "IP-Compression-Protocol",
        kind::IP_ADDRESS => "IP-Address",
        4 => "Mobile-IPv4",
        kind::PRIMARY_DNS => "Primary-DNS",
        kind::PRIMARY_NBNS => "Primary-NBNS",
        kind::SECONDARY_DNS => "Secondary-DNS",
        kind::SECONDARY_NBNS => "Secondary-NBNS",
        _ => "unknown",
    }
}

/// One IPCP configuration option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpcpOption<'a> {
    /// Deprecated by RFC 1332 (RFC 1172's form); parsed so it can be named
    /// and rejected, never requested.
    IpAddresses {
        source: Ipv4Addr,
        destination: Ipv4Addr,
    },
    IpCompressionProtocol {
        protocol: u16,
        data: &'a [u8],
    },
    IpAddress(Ipv4Addr),
    PrimaryDns(Ipv4Addr),
    PrimaryNbns(Ipv4Addr),
    SecondaryDns(Ipv4Addr),
    SecondaryNbns(Ipv4Addr),
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

impl<'a> IpcpOption<'a> {
    /// Gives a raw option its IPCP meaning. A known option with a length its
    /// RFC does not allow is `Malformed`: the caller should Configure-Reject
    /// it (its type is `raw.kind`).
    pub fn parse(raw: RawOption<'a>) -> Result<IpcpOption<'a>> {
        let address = |data| fixed_data::<4>(data).map(Ipv4Addr::from);
        let data = raw.data;
        Ok(match raw.kind {
            kind::IP_ADDRESSES => {
                let [a, b, c, d, e, f, g, h] = fixed_data::<8>(data)?;
                IpcpOption::IpAddresses {
                    source: Ipv4Addr::new(a, b, c, d),
                    destination: Ipv4Addr::new(e, f, g, h),
                }
            }
            kind::IP_COMPRESSION_PROTOCOL => {
                let (protocol, data) = split_protocol(data)?;
                IpcpOption::IpCompressionProtocol { protocol, data }
            }
            kind::IP_ADDRESS => IpcpOption::IpAddress(address(data)?),
            kind::PRIMARY_DNS => IpcpOption::PrimaryDns(address(data)?),
            kind::PRIMARY_NBNS => IpcpOption::PrimaryNbns(address(data)?),
            kind::SECONDARY_DNS => IpcpOption::SecondaryDns(address(data)?),
            kind::SECONDARY_NBNS => IpcpOption::SecondaryNbns(address(data)?),
            kind => IpcpOption::Unknown { kind, data },
        })
    }

    /// Iterates and parses the options of a Configure-* packet's data.
    /// Framing errors end the iteration; a framed but malformed option
    /// yields `Err` and iteration goes on (see [`crate::lcp::LcpOption::iter`]).
    pub fn iter(data: &'a [u8]) -> impl Iterator<Item = Result<IpcpOption<'a>>> + 'a {
        OptionIter::new(data).map(|raw| raw.and_then(IpcpOption::parse))
    }

    /// The option type number.
    pub fn kind(&self) -> u8 {
        match self {
            IpcpOption::IpAddresses { .. } => kind::IP_ADDRESSES,
            IpcpOption::IpCompressionProtocol { .. } => kind::IP_COMPRESSION_PROTOCOL,
            IpcpOption::IpAddress(_) => kind::IP_ADDRESS,
            IpcpOption::PrimaryDns(_) => kind::PRIMARY_DNS,
            IpcpOption::PrimaryNbns(_) => kind::PRIMARY_NBNS,
            IpcpOption::SecondaryDns(_) => kind::SECONDARY_DNS,
            IpcpOption::SecondaryNbns(_) => kind::SECONDARY_NBNS,
            IpcpOption::Unknown { kind, .. } => *kind,
        }
    }

    /// The option's name for logs.
    pub fn name(&self) -> &'static str {
        kind_name(self.kind())
    }

    /// The address of the single-address options, for policies that treat
    /// them alike.
    pub fn address(&self) -> Option<Ipv4Addr> {
        match self {
            IpcpOption::IpAddress(address)
            | IpcpOption::PrimaryDns(address)
            | IpcpOption::PrimaryNbns(address)
            | IpcpOption::SecondaryDns(address)
            | IpcpOption::SecondaryNbns(address) => Some(*address),
            IpcpOption::IpAddresses { .. }
            | IpcpOption::IpCompressionProtocol { .. }
            | IpcpOption::Unknown { .. } => None,
        }
    }

    /// Bytes `push_to` appends, header included.
    pub fn buffer_len(&self) -> usize {
        match self {
            IpcpOption::IpAddresses { .. } => 10,
            IpcpOption::IpCompressionProtocol { data, .. } => protocol_option_len(data),
            IpcpOption::Unknown { data, .. } => 2 + data.len().min(253),
            IpcpOption::IpAddress(_)
            | IpcpOption::PrimaryDns(_)
            | IpcpOption::PrimaryNbns(_)
            | IpcpOption::SecondaryDns(_)
            | IpcpOption::SecondaryNbns(_) => 6,
        }
    }

    /// Appends the option to `out`; data beyond what the length byte can
    /// express is truncated.
    pub fn push_to(&self, out: &mut Vec<u8>) {
        match self {
            IpcpOption::IpAddresses {
                source,
                destination,
            } => {
                let mut data = [0u8; 8];
                data[..4].copy_from_slice(&source.octets());
                data[4..].copy_from_slice(&destination.octets());
                push_option(out, kind::IP_ADDRESSES, &data);
            }
            IpcpOption::IpCompressionProtocol { protocol, data } => {
                push_protocol_option(out, kind::IP_COMPRESSION_PROTOCOL, *protocol, data)
            }
            IpcpOption::Unknown { kind, data } => push_option(out, *kind, data),
            IpcpOption::IpAddress(address)
            | IpcpOption::PrimaryDns(address)
            | IpcpOption::PrimaryNbns(address)
            | IpcpOption::SecondaryDns(address)
            | IpcpOption::SecondaryNbns(address) => {
                push_option(out, self.kind(), &address.octets())
            }
        }
    }
}

/// As pppd's debug log prints it. pppd names both NBNS options `ms-wins`.
impl fmt::Display for IpcpOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpcpOption::IpAddresses {
                source,
                destination,
            } => {
                write!(f, "<addrs {source} {destination}>")
            }
            IpcpOption::IpCompressionProtocol { protocol, data } => {
                match *protocol {
                    compression::VJ => f.write_str("<compress VJ")?,
                    compression::VJ_OLD => f.write_str("<compress old-VJ")?,
                    other => write!(f, "<compress {other:#x}")?,
                }
                write_hex(f, data)?;
                f.write_str(">")
            }
            IpcpOption::IpAddress(address) => write!(f, "<addr {address}>"),
            IpcpOption::PrimaryDns(address) => write!(f, "<ms-dns1 {address}>"),
            IpcpOption::SecondaryDns(address) => write!(f, "<ms-dns2 {address}>"),
            IpcpOption::PrimaryNbns(address) | IpcpOption::SecondaryNbns(address) => {
                write!(f, "<ms-wins {address}>")
            }
            IpcpOption::Unknown { kind, data } => write_unknown_option(f, *kind, data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{self, Code};
    use crate::Error;
    use proptest::prelude::*;

    // From captures/public/zeek/pppoe.pcap (control packets without padding):
    // frame 13, the AC's Configure-Request for 10.0.0.1;
    static AC_CONF_REQ: [u8; 10] = [0x01, 0x01, 0x00, 0x0a, 0x03, 0x06, 0x0a, 0x00, 0x00, 0x01];
    // frame 15, the client's Configure-Request for 0.0.0.0;
    static CLIENT_CONF_REQ: [u8; 10] = [0x01, 0x01, 0x00, 0x0a, 0x03, 0x06, 0x00, 0x00, 0x00, 0x00];
    // frame 19, the AC's Configure-Nak offering 10.0.2.16;
    static CONF_NAK: [u8; 10] = [0x03, 0x01, 0x00, 0x0a, 0x03, 0x06, 0x0a, 0x00, 0x02, 0x10];
    // frame 27, the AC's Configure-Ack of it.
    static CONF_ACK: [u8; 10] = [0x02, 0x02, 0x00, 0x0a, 0x03, 0x06, 0x0a, 0x00, 0x02, 0x10];

    // From captures/public/suricata-verify/pppoe_input.pcap:
    // frame 26, Configure-Request with VJ compression and 192.168.1.1;
    static VJ_CONF_REQ: [u8; 16] = [
        0x01, 0x01, 0x00, 0x10, 0x02, 0x06, 0x00, 0x2d, 0x0f, 0x01, 0x03, 0x06, 0xc0, 0xa8, 0x01,
        0x01,
    ];
    // frame 33, the Configure-Reject of the VJ option.
    static CONF_REJ: [u8; 10] = [0x04, 0x01, 0x00, 0x0a, 0x02, 0x06, 0x00, 0x2d, 0x0f, 0x01];

    fn options(packet: &[u8]) -> Vec<IpcpOption<'_>> {
        let control = control::Repr::parse_bytes(packet).unwrap();
        IpcpOption::iter(control.data)
            .collect::<Result<_>>()
            .unwrap()
    }

    fn emit_all(options: &[IpcpOption<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for option in options {
            option.push_to(&mut out);
        }
        out
    }

    #[test]
    fn address_negotiation_from_zeek() {
        assert_eq!(
            options(&AC_CONF_REQ),
            [IpcpOption::IpAddress(Ipv4Addr::new(10, 0, 0, 1))]
        );
        assert_eq!(
            options(&CLIENT_CONF_REQ),
            [IpcpOption::IpAddress(Ipv4Addr::UNSPECIFIED)]
        );
        let nak = options(&CONF_NAK);
        assert_eq!(nak, [IpcpOption::IpAddress(Ipv4Addr::new(10, 0, 2, 16))]);
        assert_eq!(nak[0].to_string(), "<addr 10.0.2.16>");
        assert_eq!(nak[0].address(), Some(Ipv4Addr::new(10, 0, 2, 16)));
        assert_eq!(options(&CONF_ACK), nak);

        // The client's next request (frame 21) repeats the Nak'd option.
        let mut request = Vec::new();
        nak[0].push_to(&mut request);
        let built = control::Repr {
            code: Code::ConfigureRequest,
            identifier: 2,
            data: &request,
        };
        assert_eq!(built.to_vec()[4..], CONF_NAK[4..]);
    }

    #[test]
    fn compression_reject_from_suricata() {
        let request = options(&VJ_CONF_REQ);
        assert_eq!(
            request,
            [
                IpcpOption::IpCompressionProtocol {
                    protocol: compression::VJ,
                    data: &[0x0f, 0x01]
                },
                IpcpOption::IpAddress(Ipv4Addr::new(192, 168, 1, 1)),
            ]
        );
        assert_eq!(emit_all(&request), VJ_CONF_REQ[4..]);

        let control = control::Repr::parse_bytes(&CONF_REJ).unwrap();
        assert_eq!(control.code, Code::ConfigureReject);
        let rejected = options(&CONF_REJ);
        assert_eq!(rejected, request[..1]);
        assert_eq!(rejected[0].to_string(), "<compress VJ 0f 01>");
        assert_eq!(rejected[0].name(), "IP-Compression-Protocol");
    }

    #[test]
    fn invalid_lengths_from_tcpdump_error_without_panic() {
        // captures/public/tcpdump/ppp-invalid-lengths.pcap: one raw-PPP frame
        // (link type 9, no address/control bytes) holding a fuzzed IPCP
        // Configure-Nak of 8451 bytes: an IPHC option, options of type 0 and
        // 255 and of length 255, and finally a type-230 option overrunning
        // the data.
        static PCAP: &[u8] = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../captures/public/tcpdump/ppp-invalid-lengths.pcap"
        ));
        let caplen = u32::from_le_bytes(PCAP[32..36].try_into().unwrap()) as usize;
        let frame = &PCAP[40..40 + caplen];
        assert_eq!(frame[..2], [0x80, 0x21]);
        let control = control::Repr::parse_bytes(&frame[2..]).unwrap();
        assert_eq!(control.code, Code::ConfigureNak);
        assert_eq!(control.data.len(), 8447);

        let items: Vec<_> = IpcpOption::iter(control.data).collect();
        let (last, parsed) = items.split_last().unwrap();
        assert_eq!(*last, Err(Error::Truncated));
        let parsed: Vec<_> = parsed.iter().map(|item| item.unwrap()).collect();
        assert!(matches!(
            parsed[0],
            IpcpOption::IpCompressionProtocol { protocol: compression::IPHC, data } if data.len() == 214
        ));
        assert!(parsed.contains(&IpcpOption::Unknown {
            kind: 0,
            data: &[0x12, 0x12]
        }));
        assert!(parsed.iter().any(|o| o.kind() == 255));
        assert!(parsed.iter().any(|o| o.buffer_len() == 255));
        for option in &parsed {
            let _ = option.to_string();
        }
    }

    #[test]
    fn display_like_pppd() {
        let dns = Ipv4Addr::new(192, 0, 2, 53);
        let cases: [(IpcpOption<'_>, &str); 7] = [
            (
                IpcpOption::IpAddresses {
                    source: Ipv4Addr::new(192, 0, 2, 1),
                    destination: Ipv4Addr::new(192, 0, 2, 2),
                },
                "<addrs 192.0.2.1 192.0.2.2>",
            ),
            (IpcpOption::PrimaryDns(dns), "<ms-dns1 192.0.2.53>"),
            (IpcpOption::SecondaryDns(dns), "<ms-dns2 192.0.2.53>"),
            (IpcpOption::PrimaryNbns(dns), "<ms-wins 192.0.2.53>"),
            (
                IpcpOption::IpCompressionProtocol {
                    protocol: 0x0037,
                    data: &[],
                },
                "<compress old-VJ>",
            ),
            (
                IpcpOption::IpCompressionProtocol {
                    protocol: 0x0061,
                    data: &[1],
                },
                "<compress 0x61 01>",
            ),
            (
                IpcpOption::Unknown {
                    kind: 4,
                    data: &[1],
                },
                "< 04 03 01>",
            ),
        ];
        for (option, shown) in cases {
            assert_eq!(option.to_string(), shown);
        }
    }

    #[test]
    fn wrong_lengths_of_known_options_are_malformed() {
        let bad: [(u8, &[u8]); 6] = [
            (kind::IP_ADDRESSES, &[0; 4]),
            (kind::IP_COMPRESSION_PROTOCOL, &[0x00]),
            (kind::IP_ADDRESS, &[10, 0, 0]),
            (kind::IP_ADDRESS, &[10, 0, 0, 1, 0]),
            (kind::PRIMARY_DNS, &[]),
            (kind::SECONDARY_NBNS, &[0; 8]),
        ];
        for (kind, data) in bad {
            assert_eq!(
                IpcpOption::parse(RawOption { kind, data }),
                Err(Error::Malformed)
            );
        }
    }

    #[test]
    fn every_option_round_trips() {
        let address = Ipv4Addr::new(192, 0, 2, 10);
        let all = [
            IpcpOption::IpAddresses {
                source: address,
                destination: Ipv4Addr::new(192, 0, 2, 1),
            },
            IpcpOption::IpCompressionProtocol {
                protocol: compression::VJ,
                data: &[0x0f, 0x01],
            },
            IpcpOption::IpAddress(address),
            IpcpOption::PrimaryDns(address),
            IpcpOption::PrimaryNbns(address),
            IpcpOption::SecondaryDns(address),
            IpcpOption::SecondaryNbns(address),
            IpcpOption::Unknown {
                kind: 4,
                data: &[1, 2, 3],
            },
        ];
        for option in all {
            let mut out = Vec::new();
            option.push_to(&mut out);
            assert_eq!(out.len(), option.buffer_len(), "{option}");
            let raw = OptionIter::new(&out).next().unwrap().unwrap();
            assert_eq!(IpcpOption::parse(raw), Ok(option));
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for option in IpcpOption::iter(&bytes).flatten() {
                let _ = option.to_string();
                let mut out = Vec::new();
                option.push_to(&mut out);
                prop_assert_eq!(out.len(), option.buffer_len());
                let raw = OptionIter::new(&out).next().unwrap().unwrap();
                prop_assert_eq!(IpcpOption::parse(raw), Ok(option));
            }
        }

        #[test]
        fn arbitrary_option_data_never_panics(kind in any::<u8>(),
                                              data in proptest::collection::vec(any::<u8>(), 0..254)) {
            if let Ok(option) = IpcpOption::parse(RawOption { kind, data: &data }) {
                let mut out = Vec::new();
                option.push_to(&mut out);
                prop_assert_eq!(&out[2..], &data[..]);
            }
        }
    }
}
