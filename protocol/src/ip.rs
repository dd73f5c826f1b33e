//! The IP, TCP, UDP and ICMP fields the data path reads, and [`inspect`], the
//! one call it makes per packet.
//!
//! These are our own minimal views rather than a general IP stack: the data
//! path accounts every packet to its local (protocol, port), so reading a
//! flow must cost a handful of bounds checks, allocate nothing and never
//! panic after `new_checked`. Checksums, the pseudo-header and the RFC 1624
//! incremental update live in [`checksum`] only.

use crate::{Error, Result};
use std::net::IpAddr;

pub use tcp::TcpFlags;

pub mod checksum;
mod fast;
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
    /// TCP window field as sent (unscaled), 0 otherwise.
    pub window: u16,
    /// Where the TCP or UDP data starts, counted from the start of the IP
    /// packet, so `ip_packet[payload_offset..][..payload_len]` is the data;
    /// 0 for other protocols, later fragments and `quoted`.
    pub payload_offset: u16,
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
// Always inlined, with its fast path: see `fast` for why.
#[inline(always)]
pub fn inspect(ip_packet: &[u8]) -> Result<FlowInfo> {
    match fast::plain(ip_packet) {
        Some(flow) => Ok(flow),
        None => inspect_general(ip_packet),
    }
}

/// [`inspect`] for every packet, the plain ones included.
fn inspect_general(ip_packet: &[u8]) -> Result<FlowInfo> {
    match ip_packet.first().map(|byte| byte >> 4) {
        None => Err(Error::Truncated),
        Some(4) => inspect_v4(ip_packet),
        Some(6) => inspect_v6(ip_packet),
        Some(_) => Err(Error::Malformed),
    }
}

/// Clamps the MSS option of a TCP SYN inside an IPv4 or IPv6 packet to
/// `max_mss`, in place, fixing the TCP checksum (what rp-pppoe's `-m` does so
/// that hosts behind the link never send segments the PPPoE MTU cannot carry).
/// Returns whether the packet changed. Fragments and non-TCP packets are left
/// alone.
pub fn clamp_mss_in_packet(ip_packet: &mut [u8], max_mss: u16) -> bool {
    // Every packet going up passes here, and only SYNs are ever changed:
    // a plain TCP header that is not a SYN, or a plain header of another
    // protocol, is left at a glance instead of parsed a second time (the port
    // accounting has already parsed it).
    if !could_be_tcp_syn(ip_packet) {
        return false;
    }
    let tcp_range = match ip_packet.first().map(|byte| byte >> 4) {
        Some(4) => {
            let Ok(ip) = ipv4::Packet::new_checked(&*ip_packet) else {
                return false;
            };
            if ip.protocol() != protocol::TCP || ip.frag_offset() != 0 {
                return false;
            }
            usize::from(ip.header_len())..usize::from(ip.total_len())
        }
        Some(6) => {
            let Ok(ip) = ipv6::Packet::new_checked(&*ip_packet) else {
                return false;
            };
            let Ok(upper) = ip.upper_layer() else {
                return false;
            };
            if upper.protocol != protocol::TCP || upper.non_first_fragment {
                return false;
            }
            upper.offset..ip.total_len()
        }
        _ => return false,
    };
    match ip_packet.get_mut(tcp_range) {
        Some(tcp) => tcp::clamp_mss(tcp, max_mss),
        None => false,
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
    read_transport(&mut flow, ip.payload(), usize::from(ip.header_len()))?;
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
    read_transport(&mut flow, segment, upper.offset)?;
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
            window: 0,
            payload_offset: 0,
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

/// Fills ports, TCP fields, ICMP fields, `payload_len` and `payload_offset`
/// from the bytes after the IP header(s), which start at `segment_offset`.
fn read_transport(flow: &mut FlowInfo, segment: &[u8], segment_offset: usize) -> Result<()> {
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
            flow.window = tcp.window_len();
            flow.payload_len = len_u16(tcp.payload().len());
            flow.payload_offset =
                len_u16(segment_offset.saturating_add(usize::from(tcp.header_len())));
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
            flow.payload_offset = len_u16(segment_offset.saturating_add(udp::HEADER_LEN));
        }
        protocol::UDP => {
            let udp = udp::Packet::new_checked(segment)?;
            flow.src_port = udp.src_port();
            flow.dst_port = udp.dst_port();
            flow.payload_len = len_u16(udp.payload().len());
            flow.payload_offset = len_u16(segment_offset.saturating_add(udp::HEADER_LEN));
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

/// False only when the packet surely carries no TCP SYN: a plain IPv4
/// header (no options) or a plain IPv6 header (no extension headers) whose
/// protocol is not TCP, or whose TCP flags lack SYN. Anything else (options,
/// extension headers, short packets) is for the full parse to judge.
fn could_be_tcp_syn(ip_packet: &[u8]) -> bool {
    let (protocol, tcp_start) = match ip_packet.first() {
        Some(0x45) => (ip_packet.get(9), 20),
        Some(byte) if byte >> 4 == 6 => (ip_packet.get(6), 40),
        _ => return true,
    };
    let syn = tcp::TcpFlags::SYN.0;
    match protocol {
        Some(&protocol::TCP) => ip_packet
            .get(tcp_start + 13)
            .is_none_or(|flags| flags & syn != 0),
        Some(&protocol::UDP) | Some(&protocol::ICMP) | Some(&protocol::ICMPV6) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixtures::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        Ipv4Addr::new(a, b, c, d).into()
    }

    fn v6(text: &str) -> IpAddr {
        text.parse::<Ipv6Addr>().unwrap().into()
    }

    #[test]
    fn clamp_mss_in_ipv4_packet() {
        // A real SYN (MSS 1460) from bug-4810_pppoe-session-http.pcap.
        let mut packet = fixtures::HTTP_SYN;
        let before = tcp::Packet::new_checked(&packet[20..]).unwrap().mss();
        assert!(before.unwrap() > 1412);
        assert!(clamp_mss_in_packet(&mut packet, 1412));
        let tcp = tcp::Packet::new_checked(&packet[20..]).unwrap();
        assert_eq!(tcp.mss(), Some(1412));
        let ip = ipv4::Packet::new_checked(&packet[..]).unwrap();
        let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
        assert!(tcp.verify_checksum(&src, &dst));
        // Already small enough, and not a SYN: unchanged.
        assert!(!clamp_mss_in_packet(&mut packet, 1452));
        let mut ack = fixtures::HTTP_ACK;
        assert!(!clamp_mss_in_packet(&mut ack, 536));
        assert_eq!(ack, fixtures::HTTP_ACK);
        // Garbage never panics.
        assert!(!clamp_mss_in_packet(&mut [0x45, 0, 0], 536));
    }

    #[test]
    fn the_glance_before_clamping_never_skips_a_syn() {
        // Every flags byte on a real SYN: the quick look turns a packet away
        // only when the full path (tcp::clamp_mss) would refuse it too.
        for flags in 0..=255u8 {
            let mut packet = fixtures::HTTP_SYN;
            packet[20 + 13] = flags;
            let syn = flags & tcp::TcpFlags::SYN.0 != 0;
            assert_eq!(could_be_tcp_syn(&packet), syn, "flags {flags:#04x}");
            let mut reference = packet;
            assert_eq!(
                tcp::clamp_mss(&mut reference[20..], 536),
                clamp_mss_in_packet(&mut packet, 536),
                "flags {flags:#04x}"
            );
        }
        // UDP and ICMP are turned away at a glance; IPv4 options and short
        // packets go to the full parse.
        let mut udp = fixtures::HTTP_SYN;
        udp[9] = protocol::UDP;
        assert!(!could_be_tcp_syn(&udp));
        assert!(could_be_tcp_syn(&[0x46, 0, 0]));
        assert!(could_be_tcp_syn(&[0x45]));
    }

    #[test]
    fn flow_info_is_small() {
        assert!(core::mem::size_of::<FlowInfo>() <= 64);
    }

    #[test]
    fn tcp_over_ipv4() {
        let syn = inspect(&HTTP_SYN).unwrap();
        assert_eq!(
            syn,
            FlowInfo {
                ip_version: 4,
                protocol: protocol::TCP,
                src: v4(10, 100, 0, 0),
                dst: v4(142, 250, 179, 131),
                src_port: 57013,
                dst_port: 80,
                tcp_flags: TcpFlags::SYN,
                seq: 0xd4bd7654,
                ack: 0,
                window: 65228,
                payload_offset: 60,
                payload_len: 0,
                total_len: 60,
                fragment: Fragment::None,
                quoted: false,
                icmp_type: 0,
                icmp_code: 0,
            }
        );
        let ack = inspect(&HTTP_ACK).unwrap();
        assert_eq!(ack.tcp_flags, TcpFlags::ACK);
        assert_eq!(ack.payload_len, 0);
        let get = inspect(&HTTP_GET).unwrap();
        assert_eq!(get.tcp_flags.to_string(), "PA");
        assert_eq!((get.seq, get.ack), (0xd4bd7655, 0x502bc8dd));
        assert_eq!(get.payload_len, 77);
        assert_eq!(get.total_len, 129);
        // tshark: frame 4 has window 514 and 32 bytes of TCP header.
        assert_eq!(get.window, 514);
        assert_eq!(get.payload_offset, 52);
        let offset = usize::from(get.payload_offset);
        assert!(HTTP_GET[offset..].starts_with(b"GET / HTTP/1.1"));
    }

    #[test]
    fn tcp_over_ipv4_in_qinq() {
        let hello = inspect(&QINQ_CLIENT_HELLO).unwrap();
        assert_eq!((hello.src, hello.dst), (v4(1, 1, 1, 1), v4(2, 2, 2, 2)));
        assert_eq!((hello.src_port, hello.dst_port), (20394, 443));
        assert_eq!(hello.payload_len, 517);
        let syn = inspect(&QINQ_SYN).unwrap();
        assert_eq!(syn.tcp_flags, TcpFlags::SYN);
    }

    #[test]
    fn ip_length_beyond_pppoe_length_is_truncated() {
        // Whole frame: the 6 bytes the IP length claims beyond the PPPoE
        // length are there and read as payload.
        let ack = inspect(&QINQ_PADDED_ACK).unwrap();
        assert_eq!((ack.src_port, ack.dst_port), (443, 20394));
        assert_eq!(ack.total_len, 46);
        assert_eq!(ack.payload_len, 6);
        // Bounded by the PPPoE length (40 IP bytes), the packet is short.
        assert_eq!(inspect(&QINQ_PADDED_ACK[..40]), Err(Error::Truncated));
    }

    #[test]
    fn udp_dns_over_ipv4_nested_in_bcm_li() {
        let dns = inspect(&BCM_DNS_REPLY).unwrap();
        assert_eq!(dns.protocol, protocol::UDP);
        assert_eq!((dns.src, dns.dst), (v4(217, 89, 31, 49), v4(9, 182, 64, 0)));
        assert_eq!((dns.src_port, dns.dst_port), (53, 36264));
        assert_eq!(dns.payload_len, 115);
        assert_eq!(dns.payload_offset, 28);
        assert_eq!(dns.tcp_flags, TcpFlags::EMPTY);
        let syn_ack = inspect(&BCM_SYN_ACK).unwrap();
        assert_eq!(syn_ack.tcp_flags.to_string(), "SA");
    }

    #[test]
    fn ipv6_udp_and_icmpv6() {
        let dhcp = inspect(&DHCPV6_SOLICIT).unwrap();
        assert_eq!(dhcp.ip_version, 6);
        assert_eq!(dhcp.protocol, protocol::UDP);
        assert_eq!(dhcp.src, v6("fe80::ce05:eff:fe88:0"));
        assert_eq!(dhcp.dst, v6("ff02::1:2"));
        assert_eq!((dhcp.src_port, dhcp.dst_port), (546, 547));
        assert_eq!(dhcp.payload_len, 50);
        assert_eq!(dhcp.payload_offset, 48);
        assert_eq!(dhcp.window, 0);
        assert_eq!(dhcp.total_len, 98);

        let mld = inspect(&MLD_REPORT).unwrap();
        assert_eq!(mld.protocol, protocol::ICMPV6);
        assert_eq!(mld.icmp_type, icmp::v6::MLDV2_REPORT);
        assert_eq!((mld.src_port, mld.dst_port), (0, 0));
        assert_eq!(mld.payload_len, 76 - 48 - 8);

        let ping = inspect(&PING6_REQUEST).unwrap();
        assert_eq!(ping.icmp_type, icmp::v6::ECHO_REQUEST);
        assert_eq!((ping.src_port, ping.dst_port), (0x1f97, 0x1f97));
        assert!(!ping.quoted);
    }

    /// Verifies the IP header checksum (IPv4) and the transport checksum of
    /// a whole, unfragmented packet.
    fn checksums_valid(bytes: &[u8]) -> bool {
        let flow = inspect(bytes).unwrap();
        let (header_ok, segment) = if flow.ip_version == 4 {
            let ip = ipv4::Packet::new_checked(bytes).unwrap();
            (ip.verify_checksum(), ip.payload())
        } else {
            let ip = ipv6::Packet::new_checked(bytes).unwrap();
            let offset = ip.upper_layer().unwrap().offset;
            (true, &ip.as_bytes()[offset..])
        };
        let (src, dst) = (&flow.src, &flow.dst);
        header_ok
            && match flow.protocol {
                protocol::TCP => tcp::Packet::new_checked(segment)
                    .unwrap()
                    .verify_checksum(src, dst),
                protocol::UDP => udp::Packet::new_checked(segment)
                    .unwrap()
                    .verify_checksum(src, dst),
                protocol::ICMPV6 => icmp::Packet::new_checked(segment)
                    .unwrap()
                    .verify_checksum_v6(src, dst),
                _ => false,
            }
    }

    #[test]
    fn captured_checksums_validate() {
        for bytes in [
            &HTTP_SYN[..],
            &HTTP_GET,
            &HTTP_ACK,
            &QINQ_SYN,
            &QINQ_CLIENT_HELLO,
            &QINQ_PADDED_ACK,
            &BCM_DNS_REPLY,
            &BCM_SYN_ACK,
            &DHCPV6_SOLICIT,
            &MLD_REPORT,
            &PING6_REQUEST,
        ] {
            assert!(checksums_valid(bytes), "{:02x?}", &bytes[..20]);
        }
        let mut corrupted = HTTP_GET;
        corrupted[60] ^= 0x01;
        assert!(!checksums_valid(&corrupted));
    }

    #[test]
    fn fuzzed_capture_is_an_error() {
        assert_eq!(inspect(&FUZZED_DNS), Err(Error::Truncated));
    }

    #[test]
    fn link_padding_is_ignored() {
        let mut padded = HTTP_ACK.to_vec();
        padded.extend_from_slice(&[0; 8]);
        assert_eq!(inspect(&padded), inspect(&HTTP_ACK));
    }

    /// Wraps `payload` in an IPv4 header (built here, not captured).
    fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
        let repr = ipv4::Repr {
            src_addr: src,
            dst_addr: dst,
            protocol,
            ttl: 64,
            payload_len: payload.len(),
        };
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut ipv4::Packet::new_unchecked(&mut bytes[..]));
        bytes.extend_from_slice(payload);
        bytes
    }

    /// An ICMPv4 error quoting the first `quote` bytes of `original`.
    fn icmpv4_error(msg_type: u8, original: &[u8], quote: usize) -> Vec<u8> {
        let mut message = vec![msg_type, 0, 0, 0, 0, 0, 0, 0];
        message.extend_from_slice(&original[..quote]);
        icmp::Packet::new_unchecked(&mut message[..]).fill_checksum_v4();
        let router = Ipv4Addr::new(192, 0, 2, 1);
        let original_src = ipv4::Packet::new_unchecked(original).src_addr();
        ipv4_packet(router, original_src, protocol::ICMP, &message)
    }

    #[test]
    fn icmpv4_error_is_accounted_to_the_quoted_flow() {
        // The SYN of bug-4810 frame 1 expires on the way: Time Exceeded.
        let error = icmpv4_error(icmp::v4::TIME_EXCEEDED, &HTTP_SYN, 28);
        let flow = inspect(&error).unwrap();
        assert!(flow.quoted);
        assert_eq!(flow.protocol, protocol::TCP);
        assert_eq!(
            (flow.src, flow.dst),
            (v4(10, 100, 0, 0), v4(142, 250, 179, 131))
        );
        assert_eq!((flow.src_port, flow.dst_port), (57013, 80));
        assert_eq!(flow.seq, 0xd4bd7654);
        assert_eq!(flow.icmp_type, icmp::v4::TIME_EXCEEDED);
        assert_eq!(flow.total_len, 20 + 8 + 28);
        assert_eq!(flow.payload_len, 0);
        assert_eq!((flow.payload_offset, flow.window), (0, 0));

        // Port unreachable for the DNS reply of bcm-li frame 4.
        let error = icmpv4_error(icmp::v4::DEST_UNREACHABLE, &BCM_DNS_REPLY, 28);
        let flow = inspect(&error).unwrap();
        assert!(flow.quoted);
        assert_eq!(flow.protocol, protocol::UDP);
        assert_eq!((flow.src_port, flow.dst_port), (53, 36264));
    }

    #[test]
    fn icmp_error_without_ports_is_plain_icmp() {
        // The quote stops inside the TCP header: no ports to account to.
        let error = icmpv4_error(icmp::v4::DEST_UNREACHABLE, &HTTP_SYN, 22);
        let flow = inspect(&error).unwrap();
        assert!(!flow.quoted);
        assert_eq!(flow.protocol, protocol::ICMP);
        assert_eq!(flow.icmp_type, icmp::v4::DEST_UNREACHABLE);
        assert_eq!((flow.src_port, flow.dst_port), (0, 0));
        // An IPv6 packet quoted in ICMPv4 is not a quote we read.
        let error = icmpv4_error(icmp::v4::DEST_UNREACHABLE, &DHCPV6_SOLICIT, 48);
        assert!(!inspect(&error).unwrap().quoted);
    }

    #[test]
    fn icmpv6_error_is_accounted_to_the_quoted_flow() {
        // A router answers the DHCPv6 Solicit with Packet Too Big (built
        // here around the captured Solicit).
        let router: Ipv6Addr = "fe80::1".parse().unwrap();
        let host: Ipv6Addr = "fe80::ce05:eff:fe88:0".parse().unwrap();
        let mut message = vec![icmp::v6::PACKET_TOO_BIG, 0, 0, 0, 0, 0, 0x05, 0x00];
        message.extend_from_slice(&DHCPV6_SOLICIT);
        icmp::Packet::new_unchecked(&mut message[..])
            .fill_checksum_v6(&router.into(), &host.into());
        let repr = ipv6::Repr {
            src_addr: router,
            dst_addr: host,
            next_header: protocol::ICMPV6,
            hop_limit: 255,
            payload_len: message.len(),
        };
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut ipv6::Packet::new_unchecked(&mut bytes[..]));
        bytes.extend_from_slice(&message);
        let flow = inspect(&bytes).unwrap();
        assert!(flow.quoted);
        assert_eq!(flow.protocol, protocol::UDP);
        assert_eq!(
            (flow.src, flow.dst),
            (v6("fe80::ce05:eff:fe88:0"), v6("ff02::1:2"))
        );
        assert_eq!((flow.src_port, flow.dst_port), (546, 547));
        assert_eq!(flow.icmp_type, icmp::v6::PACKET_TOO_BIG);
        assert_eq!(flow.total_len, 40 + 8 + 98);
    }

    #[test]
    fn ipv4_fragments() {
        // First fragment: the DNS reply cut after 40 payload bytes, MF set
        // (built here from the captured reply).
        let mut first = BCM_DNS_REPLY[..60].to_vec();
        let mut packet = ipv4::Packet::new_unchecked(&mut first[..]);
        packet.set_total_len(60);
        packet.set_fragment(false, true, 0);
        let flow = inspect(&first).unwrap();
        assert_eq!(flow.fragment, Fragment::First);
        assert_eq!((flow.src_port, flow.dst_port), (53, 36264));
        assert_eq!(flow.payload_len, 32);
        // A later fragment has no ports.
        let mut later = BCM_DNS_REPLY.to_vec();
        ipv4::Packet::new_unchecked(&mut later[..]).set_fragment(false, false, 1480);
        let flow = inspect(&later).unwrap();
        assert_eq!(flow.fragment, Fragment::Later);
        assert_eq!(flow.protocol, protocol::UDP);
        assert_eq!((flow.src_port, flow.dst_port), (0, 0));
        assert_eq!(flow.payload_len, 123);
    }

    #[test]
    fn ipv6_later_fragment_has_no_ports() {
        // The Solicit with a Fragment header (offset 8 units) inserted.
        let mut bytes = DHCPV6_SOLICIT[..40].to_vec();
        bytes[6] = protocol::IPV6_FRAGMENT;
        bytes.extend_from_slice(&[protocol::UDP, 0, 0x00, 0x40, 0, 0, 0, 7]);
        bytes.extend_from_slice(&DHCPV6_SOLICIT[40..]);
        bytes[4..6].copy_from_slice(&(58u16 + 8).to_be_bytes());
        let flow = inspect(&bytes).unwrap();
        assert_eq!(flow.fragment, Fragment::Later);
        assert_eq!(flow.protocol, protocol::UDP);
        assert_eq!((flow.src_port, flow.dst_port), (0, 0));
        assert_eq!(flow.payload_len, 58);
    }

    #[test]
    fn other_protocols_have_no_ports() {
        let gre = ipv4_packet(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
            47,
            &[0; 12],
        );
        let flow = inspect(&gre).unwrap();
        assert_eq!(flow.protocol, 47);
        assert_eq!((flow.src_port, flow.dst_port, flow.payload_len), (0, 0, 12));
    }

    #[test]
    fn bad_packets_are_errors() {
        assert_eq!(inspect(&[]), Err(Error::Truncated));
        assert_eq!(inspect(&[0x55; 40]), Err(Error::Malformed));
        // A TCP header cut short inside a whole IPv4 packet.
        let mut short = HTTP_SYN[..36].to_vec();
        short[2..4].copy_from_slice(&36u16.to_be_bytes());
        assert_eq!(inspect(&short), Err(Error::Truncated));
        // A UDP length beyond the IP payload.
        let mut long = DHCPV6_SOLICIT;
        long[44..46].copy_from_slice(&59u16.to_be_bytes());
        assert_eq!(inspect(&long), Err(Error::Truncated));
    }

    mod properties {
        use super::super::*;
        use super::fixtures::*;
        use proptest::prelude::*;

        fn all_fixtures() -> Vec<&'static [u8]> {
            vec![
                &HTTP_SYN[..],
                &HTTP_GET,
                &HTTP_ACK,
                &QINQ_SYN,
                &QINQ_CLIENT_HELLO,
                &QINQ_PADDED_ACK,
                &BCM_DNS_REPLY,
                &BCM_SYN_ACK,
                &DHCPV6_SOLICIT,
                &MLD_REPORT,
                &PING6_REQUEST,
                &FUZZED_DNS,
            ]
        }

        /// Calls every checked constructor and every getter on `bytes`.
        fn touch_everything(bytes: &[u8]) {
            let any: IpAddr = [192, 0, 2, 1].into();
            if let Ok(flow) = inspect(bytes) {
                // The TCP/UDP data it locates is within the packet.
                let end = usize::from(flow.payload_offset) + usize::from(flow.payload_len);
                assert!(flow.payload_offset == 0 || end <= bytes.len());
            }
            for make in [ipv4::Packet::new_checked, ipv4::Packet::new_checked_header] {
                if let Ok(p) = make(bytes) {
                    let _ = (
                        p.version(),
                        p.header_len(),
                        p.dscp(),
                        p.ecn(),
                        p.total_len(),
                    );
                    let _ = (
                        p.ident(),
                        p.dont_fragment(),
                        p.more_fragments(),
                        p.frag_offset(),
                    );
                    let _ = (
                        p.is_fragment(),
                        p.ttl(),
                        p.protocol(),
                        p.checksum(),
                        p.src_addr(),
                    );
                    let _ = (
                        p.dst_addr(),
                        p.verify_checksum(),
                        p.options(),
                        p.payload(),
                        p.as_bytes(),
                    );
                    let _ = ipv4::Repr::parse(&p);
                }
            }
            for make in [ipv6::Packet::new_checked, ipv6::Packet::new_checked_header] {
                if let Ok(p) = make(bytes) {
                    let _ = (
                        p.version(),
                        p.traffic_class(),
                        p.flow_label(),
                        p.payload_len(),
                    );
                    let _ = (p.next_header(), p.hop_limit(), p.src_addr(), p.dst_addr());
                    let _ = (p.total_len(), p.upper_layer(), p.payload(), p.as_bytes());
                    let _ = ipv6::Repr::parse(&p);
                }
            }
            if let Ok(p) = tcp::Packet::new_checked(bytes) {
                let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number());
                let _ = (
                    p.header_len(),
                    p.flags().to_string(),
                    p.window_len(),
                    p.checksum(),
                );
                let _ = (p.urgent_at(), p.mss(), p.verify_checksum(&any, &any));
                let _ = (p.options(), p.payload(), tcp::Repr::parse(&p, &any, &any));
            }
            if let Ok(p) = udp::Packet::new_checked(bytes) {
                let _ = (
                    p.src_port(),
                    p.dst_port(),
                    p.len(),
                    p.checksum(),
                    p.payload(),
                );
                let _ = (
                    p.verify_checksum(&any, &any),
                    udp::Repr::parse(&p, &any, &any),
                );
            }
            if let Ok(p) = icmp::Packet::new_checked(bytes) {
                let _ = (p.msg_type(), p.code(), p.checksum(), p.rest_of_header());
                let _ = (
                    p.echo_ident(),
                    p.echo_seq(),
                    p.verify_checksum_v4(),
                    p.data(),
                );
                let _ = (
                    p.verify_checksum_v6(&any, &any),
                    p.quoted_v4(),
                    p.quoted_v6(),
                );
                for quoted in [p.quoted_v4(), p.quoted_v6()].into_iter().flatten() {
                    let _ = (quoted.ports(), quoted.tcp_seq());
                }
            }
            let mut copy = bytes.to_vec();
            let _ = tcp::clamp_mss(&mut copy, 1400);
        }

        #[test]
        fn the_fast_path_takes_plain_tcp_and_udp_only() {
            for plain in [&HTTP_SYN[..], &HTTP_GET, &HTTP_ACK, &DHCPV6_SOLICIT] {
                assert!(fast::plain(plain).is_some());
                assert_eq!(fast::plain(plain).map(Ok), Some(inspect_general(plain)));
            }
            // ICMPv6 behind a hop-by-hop header; a fragment.
            assert_eq!(fast::plain(&MLD_REPORT), None);
            let mut fragment = HTTP_GET;
            fragment[6] |= 0x20;
            assert_eq!(fast::plain(&fragment), None);
        }

        /// An IPv4 (no options) or IPv6 (no extension headers) header in
        /// front of `segment`, lengths as given.
        fn plain_packet(v6: bool, next: u8, length: u16, segment: &[u8]) -> Vec<u8> {
            let mut bytes = if v6 {
                let mut header = DHCPV6_SOLICIT[..40].to_vec();
                header[4..6].copy_from_slice(&length.to_be_bytes());
                header[6] = next;
                header
            } else {
                let mut header = HTTP_SYN[..20].to_vec();
                header[2..4].copy_from_slice(&length.to_be_bytes());
                header[9] = next;
                header
            };
            bytes.extend_from_slice(segment);
            bytes
        }

        proptest! {
            /// The fast path agrees with the general one on everything:
            /// random bytes, mutated captures, and plain TCP/UDP headers
            /// with arbitrary fields and lengths.
            #[test]
            fn the_fast_path_agrees_with_the_general_one(
                random in proptest::collection::vec(any::<u8>(), 0..100),
                index in 0usize..12,
                edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..6),
                cut in any::<u16>(),
                v6 in any::<bool>(),
                next in prop_oneof![Just(protocol::TCP), Just(protocol::UDP), any::<u8>()],
                length_slack in -4i32..4,
                mut segment in proptest::collection::vec(any::<u8>(), 0..64),
                padding in 0usize..3,
                transport_slack in -2i32..2,
                tcp_words in 4u8..16,
            ) {
                // Transport lengths near the right ones, so that the fast
                // path accepts many of these and rejects some.
                if next == protocol::UDP && segment.len() >= 8 {
                    let claimed = (segment.len() as i32 + transport_slack).max(0) as u16;
                    segment[4..6].copy_from_slice(&claimed.to_be_bytes());
                }
                if next == protocol::TCP && segment.len() >= 20 {
                    segment[12] = tcp_words << 4 | (segment[12] & 0x0f);
                }
                let mut mutated = all_fixtures()[index].to_vec();
                for (at, value) in edits {
                    let at = usize::from(at) % mutated.len();
                    mutated[at] = value;
                }
                mutated.truncate(usize::from(cut) % (mutated.len() + 1));
                let header_len = if v6 { 0 } else { 20 };
                let length = (segment.len() as i32 + header_len + length_slack).max(0) as u16;
                let mut built = plain_packet(v6, next, length, &segment);
                built.extend(std::iter::repeat_n(0, padding));
                for bytes in [&random, &mutated, &built] {
                    prop_assert_eq!(inspect(bytes), inspect_general(bytes));
                }
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
                touch_everything(&bytes);
            }

            #[test]
            fn mutated_captures_never_panic(
                index in 0usize..12,
                edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
                cut in any::<u16>(),
            ) {
                let mut bytes = all_fixtures()[index].to_vec();
                for (at, value) in edits {
                    let at = usize::from(at) % bytes.len();
                    bytes[at] = value;
                }
                bytes.truncate(usize::from(cut) % (bytes.len() + 1));
                touch_everything(&bytes);
                // The transport header alone, as a caller would hand it.
                if bytes.len() > 20 {
                    touch_everything(&bytes[20..]);
                }
                if bytes.len() > 40 {
                    touch_everything(&bytes[40..]);
                }
            }

            #[test]
            fn icmp_errors_with_arbitrary_quotes_never_panic(
                version6 in any::<bool>(),
                msg_type in prop_oneof![Just(1u8), Just(2), Just(3), Just(4), Just(11), Just(12)],
                first in prop_oneof![Just(0x45u8), Just(0x46), Just(0x60), any::<u8>()],
                quote in proptest::collection::vec(any::<u8>(), 0..120),
            ) {
                let mut message = vec![msg_type, 0, 0, 0, 0, 0, 0, 0, first];
                message.extend_from_slice(&quote);
                let mut bytes = if version6 {
                    let mut header = DHCPV6_SOLICIT[..40].to_vec();
                    header[6] = protocol::ICMPV6;
                    header[4..6].copy_from_slice(&(message.len() as u16).to_be_bytes());
                    header
                } else {
                    let mut header = HTTP_SYN[..20].to_vec();
                    header[9] = protocol::ICMP;
                    header[2..4].copy_from_slice(&(message.len() as u16 + 20).to_be_bytes());
                    header
                };
                bytes.extend_from_slice(&message);
                let flow = inspect(&bytes).unwrap();
                if flow.quoted {
                    prop_assert!(matches!(flow.protocol, protocol::TCP | protocol::UDP));
                }
                touch_everything(&message);
            }

            #[test]
            fn clamp_mss_matches_full_recomputation(
                nops in 0usize..4,
                mss in any::<u16>(),
                max in any::<u16>(),
                payload in proptest::collection::vec(any::<u8>(), 0..9),
                seq in any::<u32>(),
            ) {
                // SYNs built here with the MSS option at every alignment and
                // odd and even segment lengths.
                let (src, dst): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
                let mut options = vec![tcp::option::NOP; nops];
                options.extend_from_slice(&[tcp::option::MSS, 4]);
                options.extend_from_slice(&mss.to_be_bytes());
                let repr = tcp::Repr {
                    src_port: 1024,
                    dst_port: 80,
                    seq_number: seq,
                    ack_number: 0,
                    flags: TcpFlags::SYN,
                    window_len: 8192,
                    urgent_at: 0,
                    options: &options,
                    payload: &payload,
                };
                let mut segment = repr.to_vec(&src, &dst);
                let changed = tcp::clamp_mss(&mut segment, max);
                prop_assert_eq!(changed, mss > max);
                let packet = tcp::Packet::new_checked(&segment[..]).unwrap();
                prop_assert_eq!(packet.mss(), Some(mss.min(max)));
                prop_assert!(packet.verify_checksum(&src, &dst));
                let mut recomputed = segment.clone();
                tcp::Packet::new_unchecked(&mut recomputed[..]).fill_checksum(&src, &dst);
                prop_assert_eq!(recomputed, segment);
            }
        }
    }
}
