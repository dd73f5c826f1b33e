//! Data frames: addresses, transport and ports. [`ip::inspect`], the data
//! path's own per-packet call, reads ordinary packets; the IP views
//! describe what it refuses (a total length beyond the bytes carried, a
//! header cut short) or reports as a quoted flow (ICMP errors), whose outer
//! addresses it does not return. Nothing here is an error of the frame: the
//! data path forwards what the peer sends, so odd IP headers are described,
//! not judged.

use portdial_protocol::ip::{self, icmp, ipv4, ipv6, protocol, tcp, udp, Fragment};
use portdial_protocol::Error;

use super::link::Decoded;

/// Describes a packet `ip::inspect` reads fully; `None` leaves it to the
/// views. Returns whether it opens a TCP connection (SYN without ACK).
fn describe_flow(bytes: &[u8], version: u8, out: &mut Decoded) -> Option<bool> {
    let flow = ip::inspect(bytes).ok()?;
    if flow.ip_version != version || flow.quoted {
        return None;
    }
    out.word(format_args!("IPv{version} {} > {}", flow.src, flow.dst));
    if flow.fragment == Fragment::Later {
        out.word(format_args!("fragment"));
        return Some(false);
    }
    match flow.protocol {
        protocol::TCP => {
            let flags = flow.tcp_flags;
            out.word(format_args!(
                "TCP {} > {} [{flags}] len {}",
                flow.src_port, flow.dst_port, flow.payload_len
            ));
            Some(flags.contains(tcp::TcpFlags::SYN) && !flags.contains(tcp::TcpFlags::ACK))
        }
        protocol::UDP => {
            out.word(format_args!(
                "UDP {} > {} len {}",
                flow.src_port, flow.dst_port, flow.payload_len
            ));
            Some(false)
        }
        protocol::ICMP | protocol::ICMPV6 => {
            let name = if version == 6 { "ICMPv6" } else { "ICMP" };
            out.word(format_args!(
                "{name} type {} code {}",
                flow.icmp_type, flow.icmp_code
            ));
            Some(false)
        }
        _ => None,
    }
}

/// Describes an IPv4 packet; returns whether it opens a TCP connection
/// (SYN without ACK).
pub(crate) fn describe_ipv4(bytes: &[u8], out: &mut Decoded) -> bool {
    let mut flow_text = Decoded::default();
    if let Some(opens_tcp) = describe_flow(bytes, 4, &mut flow_text) {
        out.word(format_args!("{}", flow_text.text));
        return opens_tcp;
    }
    let (packet, cut_short) = match ipv4::Packet::new_checked(bytes) {
        Ok(packet) => (packet, false),
        Err(Error::Truncated) => match ipv4::Packet::new_checked_header(bytes) {
            Ok(packet) => (packet, true),
            Err(_) => {
                out.word(format_args!(
                    "IPv4 {} bytes (header cut short)",
                    bytes.len()
                ));
                return false;
            }
        },
        Err(_) => {
            out.word(format_args!("IPv4 {} bytes (bad header)", bytes.len()));
            return false;
        }
    };
    out.word(format_args!(
        "IPv4 {} > {}",
        packet.src_addr(),
        packet.dst_addr()
    ));
    let opens_tcp = if packet.frag_offset() != 0 {
        out.word(format_args!("fragment"));
        false
    } else {
        transport(packet.protocol(), packet.payload(), false, out)
    };
    if cut_short {
        out.word(format_args!(
            "(IPv4 total length {} exceeds the {} bytes carried)",
            packet.total_len(),
            bytes.len()
        ));
    }
    opens_tcp
}

/// Describes an IPv6 packet; returns whether it opens a TCP connection.
pub(crate) fn describe_ipv6(bytes: &[u8], out: &mut Decoded) -> bool {
    let mut flow_text = Decoded::default();
    if let Some(opens_tcp) = describe_flow(bytes, 6, &mut flow_text) {
        out.word(format_args!("{}", flow_text.text));
        return opens_tcp;
    }
    let (packet, cut_short) = match ipv6::Packet::new_checked(bytes) {
        Ok(packet) => (packet, false),
        Err(Error::Truncated) => match ipv6::Packet::new_checked_header(bytes) {
            Ok(packet) => (packet, true),
            Err(_) => {
                out.word(format_args!(
                    "IPv6 {} bytes (header cut short)",
                    bytes.len()
                ));
                return false;
            }
        },
        Err(_) => {
            out.word(format_args!("IPv6 {} bytes (bad header)", bytes.len()));
            return false;
        }
    };
    out.word(format_args!(
        "IPv6 {} > {}",
        packet.src_addr(),
        packet.dst_addr()
    ));
    let opens_tcp = match packet.upper_layer() {
        Ok(upper) if upper.non_first_fragment => {
            out.word(format_args!("fragment"));
            false
        }
        Ok(upper) => {
            let payload = packet.as_bytes().get(upper.offset..).unwrap_or_default();
            transport(upper.protocol, payload, true, out)
        }
        Err(_) => {
            out.word(format_args!("(extension headers unreadable)"));
            false
        }
    };
    if cut_short {
        out.word(format_args!(
            "(IPv6 length {} exceeds the {} bytes carried)",
            packet.total_len(),
            bytes.len()
        ));
    }
    opens_tcp
}

fn transport(number: u8, payload: &[u8], v6: bool, out: &mut Decoded) -> bool {
    match number {
        protocol::TCP => match tcp::Packet::new_checked(payload) {
            Ok(segment) => {
                let flags = segment.flags();
                out.word(format_args!(
                    "TCP {} > {} [{flags}] len {}",
                    segment.src_port(),
                    segment.dst_port(),
                    segment.payload().len()
                ));
                flags.contains(tcp::TcpFlags::SYN) && !flags.contains(tcp::TcpFlags::ACK)
            }
            Err(_) => {
                out.word(format_args!("TCP (cut short)"));
                false
            }
        },
        protocol::UDP => {
            match udp::Packet::new_checked(payload) {
                Ok(datagram) => out.word(format_args!(
                    "UDP {} > {} len {}",
                    datagram.src_port(),
                    datagram.dst_port(),
                    datagram.payload().len()
                )),
                Err(_) => out.word(format_args!("UDP (cut short)")),
            }
            false
        }
        protocol::ICMP | protocol::ICMPV6 => {
            let name = if v6 { "ICMPv6" } else { "ICMP" };
            match icmp::Packet::new_checked(payload) {
                Ok(message) => out.word(format_args!(
                    "{name} type {} code {}",
                    message.msg_type(),
                    message.code()
                )),
                Err(_) => out.word(format_args!("{name} (cut short)")),
            }
            false
        }
        protocol::IPV6_NO_NEXT_HEADER => {
            out.word(format_args!("no next header"));
            false
        }
        other => {
            out.word(format_args!("IP protocol {other}, {} bytes", payload.len()));
            false
        }
    }
}
