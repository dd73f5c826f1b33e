//! The IP, TCP, UDP and ICMP fields the data path reads, and [`inspect`], the
//! one call it makes per packet.

pub mod checksum;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

#[cfg(test)]
mod fixtures;

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers") the data
/// path tells apart; the views return the raw `u8`.
pub mod protocol {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6_ROUTING: u8 = 43;
    pub const IPV6_FRAGMENT: u8 = 44;
    pub const ICMPV6: u8 = 58;
    pub const IPV6_NO_NEXT_HEADER: u8 = 59;
    pub const IPV6_DESTINATION_OPTIONS: u8 = 60;
}

use crate::{Error, Result};
use std::net::IpAddr;
pub use tcp::TcpFlags;

/// Whether a packet is an IP fragment, and which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fragment {
    /// A whole datagram.
    #[default]
    None,
    /// The first fragment: it holds the transport header, so ports are read.
    First,
    /// A later fragment: it holds no transport header and has no ports.
    Later,
}

/// What the data path needs to account one packet to its flow.
///
/// For an ICMP or ICMPv6 error that quotes a TCP or UDP header, the flow
/// fields (`protocol`, `src`, `dst`, ports, `seq`) describe the *quoted*
/// packet and `quoted` is set, so the error is accounted to that port;
/// `total_len`, `icmp_type` and `icmp_code` still describe the error itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowInfo {
    /// 4 or 6.
    pub ip_version: u8,
    /// Upper-layer protocol (see [`protocol`]), after IPv6 extension headers.
    pub protocol: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TCP or UDP ports; for ICMP echo request and reply both hold the echo
    /// identifier (the query's "port", as NAT treats it, RFC 5508 §3.1);
    /// 0 for other protocols and for [`Fragment::Later`].
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP only; empty otherwise (and for a quoted TCP header).
    pub tcp_flags: TcpFlags,
    /// TCP sequence number (also for a quoted TCP header), 0 otherwise.
    pub seq: u32,
    /// TCP acknowledgement number, 0 otherwise.
    pub ack: u32,
    /// Bytes after the transport header in this packet: TCP and UDP data
    /// (0 for a pure ACK), ICMP data after its 8-byte header, the whole IP
    /// payload for other protocols and later fragments. 0 when `quoted`.
    pub payload_len: u16,
    /// Length of the IP packet as its header gives it (padding excluded).
    pub total_len: u32,
    pub fragment: Fragment,
    /// The flow fields come from the packet an ICMP error quotes.
    pub quoted: bool,
    /// ICMP or ICMPv6 type and code of the packet, when it is one (also
    /// when `quoted`); 0 otherwise.
    pub icmp_type: u8,
    pub icmp_code: u8,
}

/// Reads the flow of one IP packet (IPv4 or IPv6, told apart by the version
/// nibble). `ip_packet` may carry link padding after the packet.
///
/// Costs a few bounds checks plus at most [`ipv6::MAX_EXTENSION_HEADERS`]
/// steps; allocates nothing and verifies no checksum. Errors: the IP header,
/// or the TCP/UDP/ICMP header of a packet that is not a later fragment, is
/// truncated or malformed.
pub fn inspect(ip_packet: &[u8]) -> Result<FlowInfo> {
    match ip_packet.first().map(|byte| byte >> 4) {
        None => Err(Error::Truncated),
        Some(4) => inspect_v4(ip_packet),
        Some(6) => inspect_v6(ip_packet),
        Some(_) => Err(Error::Malformed),
    }
}

fn inspect_v4(bytes: &[u8]) -> Result<FlowInfo> {
    let ip = ipv4::Packet::new_checked(bytes)?;
    let fragment = match (ip.is_fragment(), ip.frag_offset()) {
        (false, _) => Fragment::None,
        (true, 0) => Fragment::First,
        (true, _) => Fragment::Later,
    };
    let mut flow = FlowInfo::new(
        4,
        ip.protocol(),
        ip.src_addr().into(),
        ip.dst_addr().into(),
        u32::from(ip.total_len()),
        fragment,
    );
    read_transport(&mut flow, ip.payload())?;
    Ok(flow)
}

fn inspect_v6(bytes: &[u8]) -> Result<FlowInfo> {
    let ip = ipv6::Packet::new_checked(bytes)?;
    let upper = ip.upper_layer()?;
    let fragment = match (upper.fragment, upper.non_first_fragment) {
        (false, _) => Fragment::None,
        (true, false) => Fragment::First,
        (true, true) => Fragment::Later,
    };
    let mut flow = FlowInfo::new(
        6,
        upper.protocol,
        ip.src_addr().into(),
        ip.dst_addr().into(),
        u32::try_from(ip.total_len()).unwrap_or(u32::MAX),
        fragment,
    );
    let segment = ip.as_bytes().get(upper.offset..).ok_or(Error::Truncated)?;
    read_transport(&mut flow, segment)?;
    Ok(flow)
}

impl FlowInfo {
    fn new(
        ip_version: u8,
        protocol: u8,
        src: IpAddr,
        dst: IpAddr,
        total_len: u32,
        fragment: Fragment,
    ) -> FlowInfo {
        FlowInfo {
            ip_version,
            protocol,
            src,
            dst,
            src_port: 0,
            dst_port: 0,
            tcp_flags: TcpFlags::EMPTY,
            seq: 0,
            ack: 0,
            payload_len: 0,
            total_len,
            fragment,
            quoted: false,
            icmp_type: 0,
            icmp_code: 0,
        }
    }
}

/// Lengths here come from slices of a packet whose length field is 16 bits.
fn len_u16(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

/// Fills ports, TCP fields, ICMP fields and `payload_len` from the bytes
/// after the IP header(s).
fn read_transport(flow: &mut FlowInfo, segment: &[u8]) -> Result<()> {
    if flow.fragment == Fragment::Later {
        flow.payload_len = len_u16(segment.len());
        return Ok(());
    }
    let icmp_protocol = if flow.ip_version == 4 {
        protocol::ICMP
    } else {
        protocol::ICMPV6
    };
    match flow.protocol {
        protocol::TCP => {
            let tcp = tcp::Packet::new_checked(segment)?;
            flow.src_port = tcp.src_port();
            flow.dst_port = tcp.dst_port();
            flow.tcp_flags = tcp.flags();
            flow.seq = tcp.seq_number();
            flow.ack = tcp.ack_number();
            flow.payload_len = len_u16(tcp.payload().len());
        }
        protocol::UDP if flow.fragment == Fragment::First => {
            // The length field counts the whole datagram, most of which is
            // in later fragments: read the header without checking it.
            if segment.len() < udp::HEADER_LEN {
                return Err(Error::Truncated);
            }
            let udp = udp::Packet::new_unchecked(segment);
            flow.src_port = udp.src_port();
            flow.dst_port = udp.dst_port();
            flow.payload_len = len_u16(segment.len() - udp::HEADER_LEN);
        }
        protocol::UDP => {
            let udp = udp::Packet::new_checked(segment)?;
            flow.src_port = udp.src_port();
            flow.dst_port = udp.dst_port();
            flow.payload_len = len_u16(udp.payload().len());
        }
        number if number == icmp_protocol => read_icmp(flow, segment)?,
        _ => flow.payload_len = len_u16(segment.len()),
    }
    Ok(())
}

fn read_icmp(flow: &mut FlowInfo, segment: &[u8]) -> Result<()> {
    let icmp = icmp::Packet::new_checked(segment)?;
    let msg_type = icmp.msg_type();
    flow.icmp_type = msg_type;
    flow.icmp_code = icmp.code();
    flow.payload_len = len_u16(icmp.data().len());
    let (is_echo, quoted) = if flow.ip_version == 4 {
        (icmp::v4::is_echo(msg_type), icmp.quoted_v4())
    } else {
        (icmp::v6::is_echo(msg_type), icmp.quoted_v6())
    };
    if is_echo {
        flow.src_port = icmp.echo_ident();
        flow.dst_port = flow.src_port;
        return Ok(());
    }
    // An error whose quote is unreadable or carries no ports is still an
    // ICMP packet: account it as one rather than fail.
    if let Ok(quoted) = quoted {
        if let Some((src_port, dst_port)) = quoted.ports() {
            flow.protocol = quoted.protocol;
            flow.src = quoted.src;
            flow.dst = quoted.dst;
            flow.src_port = src_port;
            flow.dst_port = dst_port;
            flow.seq = quoted.tcp_seq().unwrap_or(0);
            flow.payload_len = 0;
            flow.quoted = true;
        }
    }
    Ok(())
}
