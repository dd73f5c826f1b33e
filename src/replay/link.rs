//! Link-layer framing: from a capture record to an Ethernet frame or a PPP
//! frame, with who sent it when the link type tells.

use std::fmt::{self, Write as _};

use portdial_protocol::ethernet::{self, ethertype, MacAddr};

use super::capture::UNDESCRIBED_INTERFACE;
use super::session::{Endpoint, Event};
use super::{ip, ppp, RawFrame};

/// Link type numbers (tcpdump.org "LINK-LAYER HEADER TYPES").
mod link_type {
    pub const ETHERNET: u32 = 1;
    pub const PPP: u32 = 9;
    pub const PPP_HDLC: u32 = 50;
    pub const LINUX_SLL: u32 = 113;
    pub const PPP_WITH_DIR: u32 = 204;
    pub const LINUX_SLL2: u32 = 276;
}

/// The link type proper: libpcap's `LT_LINKTYPE`, which drops the FCS
/// length bits some writers put above it.
fn link_type_of(field: u32) -> u32 {
    field & 0x0000_ffff
}

/// Linux cooked header lengths and the packet type meaning "sent by us".
const SLL_HEADER_LEN: usize = 16;
const SLL2_HEADER_LEN: usize = 20;
const SLL_OUTGOING: u16 = 4;
const MAC_LEN: usize = 6;

/// The HDLC address and control bytes of PPP (RFC 1662), and the Cisco
/// HDLC addresses that may take their place on link type 50.
const PPP_ADDRESS: u8 = 0xff;
const PPP_CONTROL: u8 = 0x03;
const CISCO_HDLC_UNICAST: u8 = 0x0f;
const CISCO_HDLC_BROADCAST: u8 = 0x8f;

/// One frame decoded: its text, its errors, and its effect on the sessions.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub text: String,
    pub errors: Vec<String>,
    pub event: Option<Event>,
}

impl Decoded {
    /// Appends a word (space-separated) to the frame's text.
    pub fn word(&mut self, args: fmt::Arguments<'_>) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = self.text.write_fmt(args);
    }

    pub fn error(&mut self, error: String) {
        self.errors.push(error);
    }
}

/// Who sent a frame and to whom, as far as the link layer tells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Addresses {
    pub sender: Option<Endpoint>,
    pub receiver: Option<Endpoint>,
}

impl Addresses {
    fn direction(sent: bool) -> Addresses {
        let (sender, receiver) = if sent {
            (Endpoint::Local, Endpoint::Remote)
        } else {
            (Endpoint::Remote, Endpoint::Local)
        };
        Addresses {
            sender: Some(sender),
            receiver: Some(receiver),
        }
    }
}

pub(crate) fn decode(frame: RawFrame<'_>) -> Decoded {
    let mut out = Decoded::default();
    let data = frame.data;
    // Bytes the capture cut off, for byte counts of frames without a
    // length field of their own.
    let cut = usize::try_from(frame.original_len)
        .unwrap_or(usize::MAX)
        .saturating_sub(data.len());
    match link_type_of(frame.link_type) {
        link_type::ETHERNET => ethernet_frame(data, None, &mut out),
        link_type::PPP => {
            out.word(format_args!("-"));
            ppp_frame(data, Addresses::default(), cut, &mut out);
        }
        link_type::PPP_WITH_DIR => match data.split_first() {
            Some((direction, rest)) => {
                let sent = *direction != 0;
                out.word(format_args!("{}", if sent { "sent" } else { "recv" }));
                ppp_frame(rest, Addresses::direction(sent), cut, &mut out);
            }
            None => out.error("PPP-with-direction frame is empty: no direction byte".into()),
        },
        link_type::PPP_HDLC => hdlc_frame(data, cut, &mut out),
        link_type::LINUX_SLL => linux_cooked(data, false, &mut out),
        link_type::LINUX_SLL2 => linux_cooked(data, true, &mut out),
        UNDESCRIBED_INTERFACE => out.error(
            "pcapng packet names an interface that no Interface Description Block describes".into(),
        ),
        other => out.word(format_args!(
            "link type {other}: not decoded ({} bytes)",
            data.len()
        )),
    }
    out
}

/// An Ethernet frame, header included. `addresses` overrides the header's
/// MAC addresses for frames rebuilt from a Linux cooked header, which has
/// no destination.
fn ethernet_frame(frame: &[u8], addresses: Option<Addresses>, out: &mut Decoded) {
    let (header, payload_start) = match ethernet::Repr::parse(frame) {
        Ok(parsed) => parsed,
        Err(error) => {
            out.error(ethernet_error(frame, error));
            return;
        }
    };
    let addresses = match addresses {
        Some(addresses) => addresses,
        None => {
            out.word(format_args!("{} > {}", header.src, header.dst));
            Addresses {
                sender: Some(Endpoint::Mac(header.src)),
                receiver: Some(Endpoint::Mac(header.dst)),
            }
        }
    };
    if !header.vlans.is_empty() {
        let vids: Vec<String> = header
            .vlans
            .iter()
            .map(|tag| tag.vid().to_string())
            .collect();
        out.word(format_args!("vlan {}", vids.join(".")));
    }
    let payload = frame.get(payload_start..).unwrap_or_default();
    match header.ethertype {
        ethertype::PPPOE_DISCOVERY => {
            out.event = ppp::discovery(payload, header.src, header.dst, addresses, out)
        }
        ethertype::PPPOE_SESSION => out.event = ppp::session(frame, payload_start, addresses, out),
        ethertype::PPP => {
            out.word(format_args!("PPP/Ethernet"));
            out.event = ppp::raw_ppp(strip_address_control(payload), None, addresses, 0, out);
        }
        ethertype::IPV4 => {
            ip::describe_ipv4(payload, out);
        }
        ethertype::IPV6 => {
            ip::describe_ipv6(payload, out);
        }
        other => out.word(format_args!(
            "ethertype 0x{other:04x}, not PPPoE ({} bytes)",
            frame.len()
        )),
    }
}

fn ethernet_error(frame: &[u8], error: portdial_protocol::Error) -> String {
    if frame.len() < ethernet::HEADER_LEN {
        format!(
            "Ethernet frame of {} bytes is shorter than its {}-byte header",
            frame.len(),
            ethernet::HEADER_LEN
        )
    } else if error == portdial_protocol::Error::Unsupported {
        "Ethernet frame has more than two VLAN tags".into()
    } else {
        "Ethernet frame ends inside a VLAN tag".into()
    }
}

/// Drops the optional `ff 03` address and control of RFC 1662 framing.
fn strip_address_control(bytes: &[u8]) -> &[u8] {
    match bytes {
        [PPP_ADDRESS, PPP_CONTROL, rest @ ..] => rest,
        other => other,
    }
}

/// Link types 9 and 204 (after the direction byte): PPP with or without
/// address and control.
fn ppp_frame(bytes: &[u8], addresses: Addresses, cut: usize, out: &mut Decoded) {
    out.event = ppp::raw_ppp(strip_address_control(bytes), None, addresses, cut, out);
}

/// Link type 50: PPP in HDLC-like framing, or Cisco HDLC.
fn hdlc_frame(bytes: &[u8], cut: usize, out: &mut Decoded) {
    out.word(format_args!("-"));
    match bytes {
        [PPP_ADDRESS, control, rest @ ..] => {
            if *control != PPP_CONTROL {
                // tcpdump and tshark read on; so do we, and say so.
                out.word(format_args!("(HDLC control 0x{control:02x}, not 0x03)"));
            }
            out.event = ppp::raw_ppp(rest, None, Addresses::default(), cut, out);
        }
        [CISCO_HDLC_UNICAST | CISCO_HDLC_BROADCAST, _, high, low, ..] => out.word(format_args!(
            "Cisco HDLC protocol 0x{:04x}: not decoded ({} bytes)",
            u16::from_be_bytes([*high, *low]),
            bytes.len()
        )),
        [CISCO_HDLC_UNICAST | CISCO_HDLC_BROADCAST, ..] => out.error(format!(
            "Cisco HDLC header cut short: {} of 4 bytes",
            bytes.len()
        )),
        [PPP_ADDRESS] => out.error("PPP HDLC frame ends after its address byte".into()),
        // Address and control compressed away (RFC 1662 §3.2).
        other => out.event = ppp::raw_ppp(other, None, Addresses::default(), cut, out),
    }
}

/// Linux cooked captures (SLL, SLL2): the EtherType and the sender's
/// address, no destination. PPPoE and 0x880b frames are rebuilt as Ethernet
/// frames (destination unknown, shown as such) so that one path decodes
/// them.
fn linux_cooked(bytes: &[u8], version2: bool, out: &mut Decoded) {
    let header_len = if version2 {
        SLL2_HEADER_LEN
    } else {
        SLL_HEADER_LEN
    };
    let Some(header) = bytes.get(..header_len) else {
        out.error(format!(
            "Linux cooked header cut short: {} of {header_len} bytes",
            bytes.len()
        ));
        return;
    };
    let field = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    // SLL: type(2) arphrd(2) addr len(2) addr(8) protocol(2).
    // SLL2: protocol(2) reserved(2) ifindex(4) arphrd(2) type(1) addr len(1) addr(8).
    let (packet_type, address_len, address, protocol) = if version2 {
        (
            u16::from(header[10]),
            usize::from(header[11]),
            &header[12..20],
            field(0),
        )
    } else {
        (field(0), usize::from(field(4)), &header[6..14], field(14))
    };
    let sender = if address_len == MAC_LEN {
        MacAddr::from_bytes(address).ok()
    } else {
        None
    };
    let outgoing = packet_type == SLL_OUTGOING;
    out.word(format_args!("{}", if outgoing { "out" } else { "in" }));
    if let Some(sender) = sender {
        out.word(format_args!("{sender} >"));
    }
    let payload = &bytes[header_len..];
    match protocol {
        ethertype::PPPOE_DISCOVERY | ethertype::PPPOE_SESSION | ethertype::PPP => {
            let mut rebuilt = Vec::with_capacity(ethernet::HEADER_LEN + payload.len());
            rebuilt.extend_from_slice(&MacAddr::ZERO.0);
            rebuilt.extend_from_slice(&sender.unwrap_or(MacAddr::ZERO).0);
            rebuilt.extend_from_slice(&protocol.to_be_bytes());
            rebuilt.extend_from_slice(payload);
            let addresses = Addresses {
                sender: sender.map(Endpoint::Mac),
                receiver: None,
            };
            ethernet_frame(&rebuilt, Some(addresses), out);
        }
        ethertype::IPV4 => {
            ip::describe_ipv4(payload, out);
        }
        ethertype::IPV6 => {
            ip::describe_ipv6(payload, out);
        }
        other => out.word(format_args!(
            "protocol 0x{other:04x}, not PPPoE ({} bytes)",
            bytes.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(link_type: u32, data: &[u8]) -> RawFrame<'_> {
        RawFrame {
            link_type,
            timestamp_ns: None,
            original_len: data.len() as u32,
            data,
        }
    }

    #[test]
    fn fcs_bits_above_the_link_type_are_ignored() {
        assert_eq!(link_type_of(0x3000_0032), link_type::PPP_HDLC);
        assert_eq!(link_type_of(0x3000_0009), link_type::PPP);
    }

    #[test]
    fn short_link_headers_are_errors() {
        for (link_type, data) in [
            (link_type::ETHERNET, &[0u8; 13][..]),
            (link_type::PPP_WITH_DIR, &[]),
            (link_type::LINUX_SLL, &[0; 15]),
            (link_type::LINUX_SLL2, &[0; 19]),
            (link_type::PPP_HDLC, &[0x0f, 0x00, 0x08]),
        ] {
            let decoded = decode(frame(link_type, data));
            assert_eq!(decoded.errors.len(), 1, "link type {link_type}");
            assert!(decoded.event.is_none());
        }
    }

    #[test]
    fn linux_cooked_pppoe_is_decoded() {
        // Built, not captured: an SLL header (outgoing, ARPHRD_ETHER, MAC
        // cc:05:0e:88:00:00) before the PADI of captures/public/zeek/pppoe.pcap
        // frame 1 (PPPoE header and Host-Uniq tag).
        let mut data = hex::decode("000400010006cc050e8800000000").unwrap();
        data.extend_from_slice(&[0x88, 0x63]);
        data.extend_from_slice(&hex::decode("11090000000c010100000103000464138518").unwrap());
        let decoded = decode(frame(link_type::LINUX_SLL, &data));
        assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
        assert!(decoded.text.contains("PADI"), "{}", decoded.text);
        assert!(decoded.text.starts_with("out cc:05:0e:88:00:00 >"));
    }
}
