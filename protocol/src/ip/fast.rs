//! The common case of [`super::inspect`], read at fixed offsets: a whole
//! IPv4 packet without options, or an IPv6 packet without extension
//! headers, carrying TCP or UDP. Anything else (options, extension headers,
//! fragments, ICMP, a length that does not add up) returns `None` and takes
//! the general path, so both always agree (a property test checks it on
//! arbitrary packets). The general path's per-field re-checks of the views
//! were most of the data path's parsing time (perf). Always inlined: the
//! `FlowInfo` is then built where the caller reads it; returned through
//! memory, its narrow stores read back with wide loads failed store
//! forwarding and cost more than the parsing (perf).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{len_u16, protocol, FlowInfo, Fragment, TcpFlags};

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const TCP_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;

/// Version 4, header length 5 words: no options.
const IPV4_NO_OPTIONS: u8 = 0x45;
/// More-fragments flag and fragment offset of the IPv4 flags word.
const IPV4_FRAGMENT_BITS: u16 = 0x3fff;

/// The flow of a plain TCP/UDP packet, or `None` for the general path.
#[inline(always)]
pub(super) fn plain(bytes: &[u8]) -> Option<FlowInfo> {
    match *bytes.first()? {
        IPV4_NO_OPTIONS => plain_v4(bytes),
        first if first >> 4 == 6 => plain_v6(bytes),
        _ => None,
    }
}

fn be16(bytes: [u8; 2]) -> u16 {
    u16::from_be_bytes(bytes)
}

#[inline(always)]
fn plain_v4(bytes: &[u8]) -> Option<FlowInfo> {
    let header: &[u8; IPV4_HEADER_LEN] = bytes.first_chunk()?;
    if be16([header[6], header[7]]) & IPV4_FRAGMENT_BITS != 0 {
        return None;
    }
    let total = be16([header[2], header[3]]);
    let segment = bytes.get(IPV4_HEADER_LEN..usize::from(total))?;
    let address =
        |at: usize| Ipv4Addr::new(header[at], header[at + 1], header[at + 2], header[at + 3]);
    let flow = FlowInfo::new(
        4,
        header[9],
        IpAddr::V4(address(12)),
        IpAddr::V4(address(16)),
        u32::from(total),
        Fragment::None,
    );
    transport(flow, segment, IPV4_HEADER_LEN)
}

#[inline(always)]
fn plain_v6(bytes: &[u8]) -> Option<FlowInfo> {
    let header: &[u8; IPV6_HEADER_LEN] = bytes.first_chunk()?;
    let next = header[6];
    if next != protocol::TCP && next != protocol::UDP {
        return None;
    }
    let total = IPV6_HEADER_LEN + usize::from(be16([header[4], header[5]]));
    let segment = bytes.get(IPV6_HEADER_LEN..total)?;
    let address = |at: usize| {
        let octets: &[u8; 16] = header.get(at..at + 16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(*octets)))
    };
    let flow = FlowInfo::new(
        6,
        next,
        address(8)?,
        address(24)?,
        u32::try_from(total).ok()?,
        Fragment::None,
    );
    transport(flow, segment, IPV6_HEADER_LEN)
}

/// Ports, TCP fields and where the data is, from the bytes after the IP
/// header, which starts `segment_offset` bytes into the packet.
#[inline(always)]
fn transport(mut flow: FlowInfo, segment: &[u8], segment_offset: usize) -> Option<FlowInfo> {
    match flow.protocol {
        protocol::TCP => {
            let header: &[u8; TCP_HEADER_LEN] = segment.first_chunk()?;
            let header_len = usize::from(header[12] >> 4) * 4;
            if header_len < TCP_HEADER_LEN {
                return None;
            }
            let payload_len = segment.len().checked_sub(header_len)?;
            flow.src_port = be16([header[0], header[1]]);
            flow.dst_port = be16([header[2], header[3]]);
            flow.seq = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
            flow.ack = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
            flow.tcp_flags = TcpFlags(header[13]);
            flow.window = be16([header[14], header[15]]);
            flow.payload_len = len_u16(payload_len);
            flow.payload_offset = len_u16(segment_offset + header_len);
        }
        protocol::UDP => {
            let header: &[u8; UDP_HEADER_LEN] = segment.first_chunk()?;
            let datagram_len = usize::from(be16([header[4], header[5]]));
            if datagram_len < UDP_HEADER_LEN || datagram_len > segment.len() {
                return None;
            }
            flow.src_port = be16([header[0], header[1]]);
            flow.dst_port = be16([header[2], header[3]]);
            flow.payload_len = len_u16(datagram_len - UDP_HEADER_LEN);
            flow.payload_offset = len_u16(segment_offset + UDP_HEADER_LEN);
        }
        _ => return None,
    }
    Some(flow)
}
