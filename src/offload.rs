//! TUN offloads: the virtio-net header a TUN opened with IFF_VNET_HDR puts
//! in front of every packet, and the splitting of the kernel's TSO/USO
//! super-packets into MTU-sized IP packets for the session.
//!
//! With offloads on, the kernel hands us one TCP or UDP "super-packet" of up
//! to 64 KiB per read instead of one packet per MSS, with a header saying
//! how to cut it (`gso_size`) and where the partial checksum is; one read
//! then feeds dozens of session frames, which go out in one `sendmmsg`.
//! The other direction, coalescing received segments into GRO super-packets
//! for one TUN write, is tun-rs's `send_multiple` (see [`Coalescer`]).
//!
//! This is the same scheme as wireguard-go's `tun/offload_linux.go` and
//! tun-rs; the split is ours because its input (the header and packet from
//! the kernel) must be validated field by field, and every malformed
//! combination must be dropped and counted, never panic.

use portdial_protocol::ip::checksum;

/// `struct virtio_net_hdr` (include/uapi/linux/virtio_net.h) without
/// `num_buffers`: the size a TUN uses unless told otherwise (TUNSETVNETHDRSZ).
pub const VNET_HDR_LEN: usize = 10;

/// The largest super-packet the kernel hands over (an IP packet is at most
/// 64 KiB), plus its header: the read buffer's size.
pub const MAX_SUPER_PACKET: usize = VNET_HDR_LEN + 65_535;

/// Most segments one super-packet may be split into: 64 KiB cut at the
/// smallest MSS worth having (536) is 123.
pub const MAX_SEGMENTS: usize = 128;

/// `virtio_net_hdr.flags`: the checksum at `csum_start + csum_offset` holds
/// only the pseudo-header sum; we must complete it.
pub const F_NEEDS_CSUM: u8 = 1;

/// `virtio_net_hdr.gso_type` values.
pub mod gso {
    pub const NONE: u8 = 0;
    pub const TCPV4: u8 = 1;
    pub const TCPV6: u8 = 4;
    pub const UDP_L4: u8 = 5;
    /// Flag bit: the TCP super-packet carries ECN CWR on its first segment.
    pub const ECN: u8 = 0x80;
}

/// The virtio-net header, read from its 10 bytes. Fields are in the host's
/// byte order: a TUN uses native endianness unless TUNSETVNETLE/BE says
/// otherwise, and we never say otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHeader {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHeader {
    /// Reads the header at the start of `bytes`, or `None` when too short.
    pub fn parse(bytes: &[u8]) -> Option<VnetHeader> {
        let bytes = bytes.get(..VNET_HDR_LEN)?;
        let word = |at: usize| u16::from_ne_bytes([bytes[at], bytes[at + 1]]);
        Some(VnetHeader {
            flags: bytes[0],
            gso_type: bytes[1],
            hdr_len: word(2),
            gso_size: word(4),
            csum_start: word(6),
            csum_offset: word(8),
        })
    }

    /// Writes the header into the first [`VNET_HDR_LEN`] bytes of `out`;
    /// `None` when `out` is shorter.
    pub fn emit(&self, out: &mut [u8]) -> Option<()> {
        let out = out.get_mut(..VNET_HDR_LEN)?;
        out[0] = self.flags;
        out[1] = self.gso_type;
        out[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        out[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        out[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        out[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        Some(())
    }
}

/// Why a packet read from an offloading TUN was dropped. Flat and
/// payload-free: the data path counts these, it does not branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("shorter than its virtio-net header")]
    NoHeader,
    #[error("the IP or transport header is truncated or malformed")]
    BadPacket,
    #[error("the checksum location lies outside the packet")]
    BadChecksumLocation,
    #[error("unsupported gso_type")]
    UnsupportedGso,
    #[error("gso_type does not match the packet's IP version or protocol")]
    GsoMismatch,
    #[error("gso_size is zero")]
    ZeroGsoSize,
    #[error("more segments than buffers")]
    TooManySegments,
    #[error("a segment does not fit the MTU or its buffer")]
    SegmentTooLong,
}

/// Splits what one read from an offloading TUN returned (`raw`: virtio-net
/// header, then the IP packet) into IP packets of at most `max_len` bytes,
/// packet `i` written at `out[i][offset..offset + lens[i]]` (the offset is
/// the data path's headroom for the session header). Returns how many.
///
/// A packet without GSO is copied whole, its checksum completed when the
/// kernel left it partial. A TSO/USO super-packet becomes `gso_size`-sized
/// segments with the headers of the original, each with its own IP length
/// and header checksum, IPv4 id (incremented per segment, as the kernel's
/// own segmentation does), TCP sequence number, UDP length and full
/// TCP/UDP checksum; FIN and PSH stay on the last segment only, CWR on the
/// first only. `raw` is used as scratch.
pub fn split<B: AsMut<[u8]>>(
    raw: &mut [u8],
    out: &mut [B],
    lens: &mut [usize],
    offset: usize,
    max_len: usize,
) -> Result<usize, SplitError> {
    let header = VnetHeader::parse(raw).ok_or(SplitError::NoHeader)?;
    let packet = raw.get_mut(VNET_HDR_LEN..).ok_or(SplitError::NoHeader)?;
    if header.gso_type == gso::NONE {
        if header.flags & F_NEEDS_CSUM != 0 {
            complete_checksum(packet, header.csum_start, header.csum_offset)?;
        }
        let (Some(buf), Some(len)) = (out.first_mut(), lens.first_mut()) else {
            return Err(SplitError::TooManySegments);
        };
        let end = offset.checked_add(packet.len());
        let slot = end
            .filter(|_| packet.len() <= max_len)
            .and_then(|end| buf.as_mut().get_mut(offset..end))
            .ok_or(SplitError::SegmentTooLong)?;
        slot.copy_from_slice(packet);
        *len = packet.len();
        return Ok(1);
    }
    let shape = Shape::of(&header, packet)?;
    let payload_len = packet.len() - shape.headers_len;
    let mss = usize::from(header.gso_size);
    if mss == 0 {
        return Err(SplitError::ZeroGsoSize);
    }
    let count = payload_len.div_ceil(mss).max(1);
    if count > out.len().min(lens.len()) {
        return Err(SplitError::TooManySegments);
    }
    if shape.headers_len.saturating_add(mss.min(payload_len)) > max_len {
        return Err(SplitError::SegmentTooLong);
    }
    let (headers, payload) = packet.split_at(shape.headers_len);
    for (index, (buf, len)) in out.iter_mut().zip(lens.iter_mut()).take(count).enumerate() {
        let start = index * mss;
        let chunk = payload
            .get(start..payload_len.min(start + mss))
            .unwrap_or_default();
        let segment_len = shape.headers_len + chunk.len();
        let segment = buf
            .as_mut()
            .get_mut(offset..offset.saturating_add(segment_len))
            .filter(|segment| segment.len() == segment_len)
            .ok_or(SplitError::SegmentTooLong)?;
        segment[..shape.headers_len].copy_from_slice(headers);
        segment[shape.headers_len..].copy_from_slice(chunk);
        shape.fix_segment(segment, index, start, index + 1 == count);
        *len = segment_len;
    }
    Ok(count)
}

/// Where things are in a super-packet, validated once for all segments.
#[derive(Debug, Clone, Copy)]
struct Shape {
    ipv6: bool,
    tcp: bool,
    /// Offset of the TCP/UDP header (the kernel's `csum_start`).
    transport: usize,
    /// IP + extension + transport headers: what every segment repeats.
    headers_len: usize,
}

impl Shape {
    fn of(header: &VnetHeader, packet: &[u8]) -> Result<Shape, SplitError> {
        let version = packet.first().ok_or(SplitError::BadPacket)? >> 4;
        let (ipv6, tcp) = match header.gso_type & !gso::ECN {
            gso::TCPV4 => (false, true),
            gso::TCPV6 => (true, true),
            gso::UDP_L4 => (version == 6, false),
            _ => return Err(SplitError::UnsupportedGso),
        };
        let transport = usize::from(header.csum_start);
        match (ipv6, version) {
            (false, 4) => {
                let ihl = usize::from(packet[0] & 0x0f) * 4;
                let protocol = *packet.get(9).ok_or(SplitError::BadPacket)?;
                // Options are fine, fragments are not; the transport header
                // follows the IPv4 header directly.
                if ihl < 20 || transport != ihl || protocol != if tcp { 6 } else { 17 } {
                    return Err(SplitError::GsoMismatch);
                }
            }
            // Extension headers may sit between; csum_start says where the
            // transport header begins and the payload length covers them.
            (true, 6) if transport >= 40 => {}
            _ => return Err(SplitError::GsoMismatch),
        }
        let transport_len = if tcp {
            let data_offset = *packet.get(transport + 12).ok_or(SplitError::BadPacket)? >> 4;
            usize::from(data_offset) * 4
        } else {
            8
        };
        if transport_len < if tcp { 20 } else { 8 } {
            return Err(SplitError::BadPacket);
        }
        // The checksum field must be where TCP or UDP keeps it.
        let expected_offset = if tcp { 16 } else { 6 };
        if usize::from(header.csum_offset) != expected_offset {
            return Err(SplitError::BadChecksumLocation);
        }
        // hdr_len from the kernel may cover the whole packet on the forwarding
        // path, so the transport header's own length is what counts.
        let headers_len = transport + transport_len;
        if headers_len > packet.len() {
            return Err(SplitError::BadPacket);
        }
        Ok(Shape {
            ipv6,
            tcp,
            transport,
            headers_len,
        })
    }

    /// Rewrites the copied headers of segment `index` (payload at byte
    /// `payload_start` of the original payload) into a packet of its own.
    fn fix_segment(&self, segment: &mut [u8], index: usize, payload_start: usize, last: bool) {
        let len = segment.len();
        let transport_len = len - self.transport;
        if self.ipv6 {
            // Fits: every segment is shorter than the 64 KiB original.
            segment[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        } else {
            segment[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            let id = u16::from_be_bytes([segment[4], segment[5]]).wrapping_add(index as u16);
            segment[4..6].copy_from_slice(&id.to_be_bytes());
            segment[10..12].fill(0);
            let sum = checksum::finish(checksum::data(&segment[..self.transport]));
            segment[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        let transport = self.transport;
        let checksum_at = if self.tcp {
            let tcp = &mut segment[transport..];
            let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]])
                .wrapping_add(payload_start as u32);
            tcp[4..8].copy_from_slice(&seq.to_be_bytes());
            const FIN: u8 = 0x01;
            const PSH: u8 = 0x08;
            const CWR: u8 = 0x80;
            if !last {
                tcp[13] &= !(FIN | PSH);
            }
            if index > 0 {
                tcp[13] &= !CWR;
            }
            transport + 16
        } else {
            let udp = &mut segment[transport..];
            udp[4..6].copy_from_slice(&(transport_len as u16).to_be_bytes());
            transport + 6
        };
        segment[checksum_at..checksum_at + 2].fill(0);
        let pseudo = pseudo_header_sum(
            segment,
            self.ipv6,
            if self.tcp { 6 } else { 17 },
            transport_len,
        );
        let sum = checksum::combine(&[pseudo, checksum::data(&segment[transport..])]);
        let mut field = checksum::finish(sum);
        if !self.tcp && field == 0 {
            // UDP sends a computed zero as all ones (RFC 768).
            field = 0xffff;
        }
        segment[checksum_at..checksum_at + 2].copy_from_slice(&field.to_be_bytes());
    }
}

/// The pseudo-header sum of the IP packet in `segment` (addresses at their
/// fixed places) for a transport part of `length` bytes.
fn pseudo_header_sum(segment: &[u8], ipv6: bool, protocol: u8, length: usize) -> u16 {
    let addresses = if ipv6 {
        &segment[8..40]
    } else {
        &segment[12..20]
    };
    let length = length as u32;
    checksum::combine(&[
        checksum::data(addresses),
        u16::from(protocol),
        (length >> 16) as u16,
        length as u16,
    ])
}

/// VIRTIO_NET_HDR_F_NEEDS_CSUM on a packet without GSO: the field at
/// `start + offset` holds the pseudo-header sum; the sum from `start` to the
/// end, complemented, is the checksum.
fn complete_checksum(packet: &mut [u8], start: u16, offset: u16) -> Result<(), SplitError> {
    let start = usize::from(start);
    let at = start + usize::from(offset);
    if at.checked_add(2).is_none_or(|end| end > packet.len()) || start > packet.len() {
        return Err(SplitError::BadChecksumLocation);
    }
    let field = checksum::finish(checksum::data(&packet[start..]));
    packet[at..at + 2].copy_from_slice(&field.to_be_bytes());
    Ok(())
}

/// Segments of one read from the TUN, each in a frame buffer at the data
/// path's headroom; allocated once.
pub struct Segments {
    /// The raw read: virtio-net header and (super-)packet.
    pub raw: Box<[u8]>,
    pub bufs: Vec<Box<[u8]>>,
    pub lens: [usize; MAX_SEGMENTS],
    pub count: usize,
}

impl Segments {
    /// Buffers of `frame_len` bytes each.
    pub fn new(frame_len: usize) -> Segments {
        Segments {
            raw: vec![0; MAX_SUPER_PACKET].into_boxed_slice(),
            bufs: (0..MAX_SEGMENTS)
                .map(|_| vec![0; frame_len].into_boxed_slice())
                .collect(),
            lens: [0; MAX_SEGMENTS],
            count: 0,
        }
    }
}

impl Segments {
    /// Where the next TUN read goes: the raw buffer when the TUN has
    /// offloads (the read is split afterwards), else the first segment's
    /// buffer past `headroom`, so a plain packet needs no copy.
    pub fn read_buffer(&mut self, offloaded: bool, headroom: usize) -> &mut [u8] {
        if offloaded {
            &mut self.raw
        } else {
            match self
                .bufs
                .first_mut()
                .and_then(|buf| buf.get_mut(headroom..))
            {
                Some(buf) => buf,
                None => &mut self.raw,
            }
        }
    }
}

/// Received IP packets gathered for one coalescing write to the TUN: each
/// packet sits after [`VNET_HDR_LEN`] bytes of room for the header tun-rs
/// writes in front of it. Buffers are allocated once; the first packet of a
/// flow grows within its buffer to hold the ones merged into it.
pub struct Coalescer {
    pub(crate) table: tun_rs::GROTable,
    pub(crate) bufs: Vec<Vec<u8>>,
    pub(crate) count: usize,
}

/// Packets gathered before a coalescing write; one recvmmsg batch.
pub const COALESCE_BATCH: usize = 64;

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer {
            table: tun_rs::GROTable::new(),
            bufs: (0..COALESCE_BATCH)
                // tun-rs merges into a buffer only within its capacity (it
                // never reallocates): room for a whole 64 KiB packet. Pages
                // are touched only as merges fill them.
                .map(|_| Vec::with_capacity(2 * VNET_HDR_LEN + 65_535))
                .collect(),
            count: 0,
        }
    }
}

impl Coalescer {
    /// Queues a copy of `packet`; false (nothing queued) when the batch is
    /// full (write it first) or the packet is empty: tun-rs refuses a whole
    /// batch holding an empty packet.
    pub fn push(&mut self, packet: &[u8]) -> bool {
        let Some(buf) = self.bufs.get_mut(self.count) else {
            return false;
        };
        if packet.is_empty() {
            return false;
        }
        buf.clear();
        buf.resize(VNET_HDR_LEN, 0);
        buf.extend_from_slice(packet);
        self.count += 1;
        true
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Forgets the queued packets.
    pub fn clear(&mut self) {
        self.count = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn is_full(&self) -> bool {
        self.count == self.bufs.len()
    }
}

/// Checks written independently of `portdial_protocol::ip::checksum`, 16
/// bits at a time, for the tests here and the namespace test in `tun`.
#[cfg(test)]
pub(crate) mod verify {
    /// A region with a valid checksum in it sums to 0xffff.
    pub fn verify_sum(parts: &[&[u8]]) -> u16 {
        let mut sum: u32 = 0;
        for part in parts {
            for pair in part.chunks(2) {
                let word = (u32::from(pair[0]) << 8) | u32::from(*pair.get(1).unwrap_or(&0));
                sum += word;
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    pub fn transport_checksum_ok(
        packet: &[u8],
        ipv6: bool,
        protocol: u8,
        transport: usize,
    ) -> bool {
        let l4 = &packet[transport..];
        let len = (l4.len() as u32).to_be_bytes();
        let addresses = if ipv6 {
            &packet[8..40]
        } else {
            &packet[12..20]
        };
        verify_sum(&[addresses, &[0, protocol], &len, l4]) == 0xffff
    }

    pub fn ipv4_header_ok(packet: &[u8]) -> bool {
        let ihl = usize::from(packet[0] & 0xf) * 4;
        verify_sum(&[&packet[..ihl]]) == 0xffff
    }
}

#[cfg(test)]
mod tests {
    use super::verify::*;
    use super::*;
    use proptest::prelude::*;

    const OFFSET: usize = 30;

    /// A TSO super-packet as the kernel writes it to an offloading TUN:
    /// IPv4 192.0.2.10:40000 -> 198.51.100.7:5001, TCP with the timestamp
    /// option (32-byte header), flags ACK|PSH|FIN, `payload` bytes, total
    /// length set, checksum field holding the pseudo-header sum.
    fn tso_v4(payload: &[u8], mss: u16, flags: u8) -> Vec<u8> {
        let total = 20 + 32 + payload.len();
        let mut packet = vec![
            0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 10, 198, 51, 100, 7,
        ];
        packet[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let mut tcp = vec![
            0x9c, 0x40, 0x13, 0x89, 0xff, 0xff, 0xff, 0x00, 0, 0, 0, 1, 0x80, flags, 0x01, 0xf5, 0,
            0, 0, 0, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2,
        ];
        tcp.extend_from_slice(payload);
        packet.extend_from_slice(&tcp);
        let header = VnetHeader {
            flags: F_NEEDS_CSUM,
            gso_type: gso::TCPV4,
            hdr_len: 52,
            gso_size: mss,
            csum_start: 20,
            csum_offset: 16,
        };
        with_header(header, packet)
    }

    fn with_header(header: VnetHeader, packet: Vec<u8>) -> Vec<u8> {
        let mut raw = vec![0; VNET_HDR_LEN];
        header.emit(&mut raw).unwrap();
        raw.extend_from_slice(&packet);
        raw
    }

    fn udp_v6(payload: &[u8], segment: u16) -> Vec<u8> {
        let udp_len = 8 + payload.len();
        let mut packet = vec![0x60, 0, 0, 0];
        packet.extend_from_slice(&(udp_len as u16).to_be_bytes());
        packet.extend_from_slice(&[17, 64]);
        packet.extend_from_slice(&[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ]);
        packet.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        packet.extend_from_slice(&[0x1f, 0x90, 0x00, 0x35]);
        packet.extend_from_slice(&(udp_len as u16).to_be_bytes());
        packet.extend_from_slice(&[0xab, 0xcd]);
        packet.extend_from_slice(payload);
        let header = VnetHeader {
            flags: F_NEEDS_CSUM,
            gso_type: gso::UDP_L4,
            hdr_len: 48,
            gso_size: segment,
            csum_start: 40,
            csum_offset: 6,
        };
        with_header(header, packet)
    }

    fn buffers() -> (Vec<Vec<u8>>, Vec<usize>) {
        (vec![vec![0; 2048]; MAX_SEGMENTS], vec![0; MAX_SEGMENTS])
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn header_round_trips() {
        let header = VnetHeader {
            flags: 1,
            gso_type: gso::TCPV6 | gso::ECN,
            hdr_len: 74,
            gso_size: 1440,
            csum_start: 40,
            csum_offset: 16,
        };
        let mut bytes = [0u8; VNET_HDR_LEN];
        header.emit(&mut bytes).unwrap();
        assert_eq!(VnetHeader::parse(&bytes), Some(header));
        assert_eq!(VnetHeader::parse(&bytes[..9]), None);
        assert_eq!(header.emit(&mut [0u8; 9]), None);
    }

    #[test]
    fn tso_v4_splits_into_mss_sized_segments() {
        // 1448 * 3 + 1001: an odd last segment.
        let payload = pattern(1448 * 3 + 1001);
        let mut raw = tso_v4(&payload, 1448, 0x19);
        let (mut out, mut lens) = buffers();
        let count = split(&mut raw, &mut out, &mut lens, OFFSET, 1500).unwrap();
        assert_eq!(count, 4);
        let mut rebuilt = Vec::new();
        for (index, (buf, &len)) in out.iter().zip(&lens).take(count).enumerate() {
            let segment = &buf[OFFSET..OFFSET + len];
            let last = index == 3;
            assert_eq!(len, 52 + if last { 1001 } else { 1448 });
            assert_eq!(u16::from_be_bytes([segment[2], segment[3]]) as usize, len);
            assert_eq!(
                u16::from_be_bytes([segment[4], segment[5]]),
                0x1234 + index as u16
            );
            assert!(ipv4_header_ok(segment), "segment {index}");
            assert!(
                transport_checksum_ok(segment, false, 6, 20),
                "segment {index}"
            );
            let seq = u32::from_be_bytes(segment[24..28].try_into().unwrap());
            // Wraps past 2^32 after the first segment.
            assert_eq!(seq, 0xffff_ff00u32.wrapping_add(1448 * index as u32));
            // ACK always; PSH and FIN on the last only.
            assert_eq!(segment[33], if last { 0x19 } else { 0x10 });
            rebuilt.extend_from_slice(&segment[52..]);
        }
        assert_eq!(rebuilt, payload);
    }

    #[test]
    fn cwr_stays_on_the_first_segment_only() {
        let mut raw = tso_v4(&pattern(3000), 1448, 0x90);
        raw[1] |= gso::ECN;
        let (mut out, mut lens) = buffers();
        assert_eq!(split(&mut raw, &mut out, &mut lens, 0, 1500), Ok(3));
        let flags: Vec<u8> = out.iter().take(3).map(|buf| buf[33]).collect();
        assert_eq!(flags, [0x90, 0x10, 0x10]);
    }

    #[test]
    fn uso_v6_splits_into_datagrams() {
        let payload = pattern(1200 * 2 + 7);
        let mut raw = udp_v6(&payload, 1200);
        let (mut out, mut lens) = buffers();
        let count = split(&mut raw, &mut out, &mut lens, OFFSET, 1492).unwrap();
        assert_eq!(count, 3);
        for (index, (buf, &len)) in out.iter().zip(&lens).take(count).enumerate() {
            let segment = &buf[OFFSET..OFFSET + len];
            let datagram = if index == 2 { 7 } else { 1200 };
            assert_eq!(len, 48 + datagram);
            assert_eq!(
                u16::from_be_bytes([segment[4], segment[5]]) as usize,
                8 + datagram
            );
            assert_eq!(
                u16::from_be_bytes([segment[44], segment[45]]) as usize,
                8 + datagram
            );
            assert!(transport_checksum_ok(segment, true, 17, 40));
            assert_eq!(
                &segment[48..],
                &payload[index * 1200..index * 1200 + datagram]
            );
        }
    }

    #[test]
    fn a_packet_without_gso_gets_its_checksum_completed() {
        // One UDP/IPv6 datagram, checksum partial: exactly what the kernel
        // leaves with TUN_F_CSUM.
        let mut raw = udp_v6(b"hello", 1200);
        let partial = {
            let packet = &raw[VNET_HDR_LEN..];
            let length = (13u32).to_be_bytes();
            !checksum::finish(checksum::combine(&[
                checksum::data(&packet[8..40]),
                17,
                checksum::data(&length),
            ]))
        };
        raw[1] = gso::NONE;
        raw[VNET_HDR_LEN + 46..VNET_HDR_LEN + 48].copy_from_slice(&partial.to_be_bytes());
        let (mut out, mut lens) = buffers();
        assert_eq!(split(&mut raw, &mut out, &mut lens, OFFSET, 1492), Ok(1));
        let packet = out[0][OFFSET..OFFSET + lens[0]].to_vec();
        assert_eq!(packet.len(), 53);
        assert!(transport_checksum_ok(&packet, true, 17, 40));
        // Without the flag the packet is copied untouched.
        let mut plain = with_header(VnetHeader::default(), packet.clone());
        assert_eq!(split(&mut plain, &mut out, &mut lens, 0, 1492), Ok(1));
        assert_eq!(&out[0][..lens[0]], &packet[..]);
    }

    #[test]
    fn a_header_only_super_packet_is_one_segment() {
        let mut raw = tso_v4(&[], 1448, 0x11);
        let (mut out, mut lens) = buffers();
        assert_eq!(split(&mut raw, &mut out, &mut lens, 0, 1500), Ok(1));
        assert_eq!(lens[0], 52);
        assert!(transport_checksum_ok(&out[0][..52], false, 6, 20));
    }

    #[test]
    fn bad_input_is_refused() {
        let (mut out, mut lens) = buffers();
        let good = tso_v4(&pattern(4000), 1448, 0x10);
        let cases: Vec<(Vec<u8>, SplitError)> = vec![
            (good[..5].to_vec(), SplitError::NoHeader),
            (
                {
                    let mut raw = good.clone();
                    raw[4] = 0;
                    raw[5] = 0;
                    raw
                },
                SplitError::ZeroGsoSize,
            ),
            (
                {
                    let mut raw = good.clone();
                    raw[1] = gso::TCPV6;
                    raw
                },
                SplitError::GsoMismatch,
            ),
            (
                {
                    let mut raw = good.clone();
                    raw[1] = 3; // legacy UFO
                    raw
                },
                SplitError::UnsupportedGso,
            ),
            (good[..VNET_HDR_LEN + 40].to_vec(), SplitError::BadPacket),
            (
                {
                    let mut raw = good.clone();
                    raw[8] = 3; // csum_offset
                    raw
                },
                SplitError::BadChecksumLocation,
            ),
        ];
        for (mut raw, error) in cases {
            assert_eq!(split(&mut raw, &mut out, &mut lens, 0, 1500), Err(error));
        }
        // MTU and buffer count bound the segments.
        let mut raw = good.clone();
        assert_eq!(
            split(&mut raw, &mut out, &mut lens, 0, 1400),
            Err(SplitError::SegmentTooLong)
        );
        let mut raw = good.clone();
        assert_eq!(
            split(&mut raw, &mut out[..2], &mut lens, 0, 1500),
            Err(SplitError::TooManySegments)
        );
        let mut raw = good;
        assert_eq!(
            split(&mut raw, &mut out, &mut lens, 700, 1500),
            Err(SplitError::SegmentTooLong)
        );
    }

    #[test]
    fn coalescer_queues_up_to_its_batch() {
        let mut coalescer = Coalescer::default();
        assert!(coalescer.is_empty());
        for _ in 0..COALESCE_BATCH {
            assert!(coalescer.push(b"packet"));
        }
        assert!(coalescer.is_full());
        assert!(!coalescer.push(b"one more"));
        assert_eq!(coalescer.len(), COALESCE_BATCH);
        assert_eq!(&coalescer.bufs[3][VNET_HDR_LEN..], b"packet");
    }

    /// Coalesces `segments` the way [`crate::tun::Tun::try_send_coalesced`]
    /// does (tun-rs's GRO; `apply_gro` is the step `send_multiple` runs
    /// before its writes) and returns each buffer: a merged head carries a
    /// GSO header, a packet merged into another is left as it was.
    fn coalesce(segments: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut coalescer = Coalescer::default();
        for segment in segments {
            assert_eq!(coalescer.push(segment), !segment.is_empty());
        }
        let count = coalescer.len();
        coalescer
            .table
            .apply_gro(&mut coalescer.bufs[..count], VNET_HDR_LEN, true)
            .expect("gro");
        coalescer.bufs[..count].to_vec()
    }

    fn split_all(raw: &mut [u8]) -> Vec<Vec<u8>> {
        let (mut out, mut lens) = buffers();
        let count = split(raw, &mut out, &mut lens, 0, 1500).expect("split");
        out.iter()
            .zip(&lens)
            .take(count)
            .map(|(buf, &len)| buf[..len].to_vec())
            .collect()
    }

    #[test]
    fn split_then_coalesce_round_trips() {
        for (mut raw, gso_type) in [
            (tso_v4(&pattern(1448 * 5 + 333), 1448, 0x18), gso::TCPV4),
            (udp_v6(&pattern(1200 * 4), 1200), gso::UDP_L4),
        ] {
            let segments = split_all(&mut raw.clone());
            let merged = coalesce(&segments);
            let head = VnetHeader::parse(&merged[0]).unwrap();
            assert_eq!(head.gso_type, gso_type);
            // The merged packet splits into the very same segments.
            let mut again = merged[0].clone();
            assert_eq!(split_all(&mut again), segments);
            let _ = &mut raw;
        }
    }

    #[test]
    fn other_flows_and_flags_are_not_merged() {
        let segments = split_all(&mut tso_v4(&pattern(1448 * 3), 1448, 0x18));
        // A SYN between them and a gap in the sequence break the run.
        let mut syn = segments[0].clone();
        syn[33] = 0x02;
        let merged = coalesce(&[segments[0].clone(), syn, segments[2].clone()]);
        assert!(merged
            .iter()
            .all(|buf| VnetHeader::parse(buf).unwrap().gso_type == gso::NONE));
    }

    proptest! {
        #[test]
        fn coalescing_never_panics_on_arbitrary_packets(
            packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..1600), 1..20),
            first_bytes in proptest::collection::vec(prop_oneof![Just(0x45u8), Just(0x60u8), any::<u8>()], 20),
            protocol in prop_oneof![Just(6u8), Just(17u8)],
        ) {
            let packets: Vec<Vec<u8>> = packets
                .into_iter()
                .zip(first_bytes)
                .map(|(mut packet, first)| {
                    if let Some(byte) = packet.first_mut() { *byte = first; }
                    if let Some(byte) = packet.get_mut(9) { *byte = protocol; }
                    if let Some(byte) = packet.get_mut(6) { *byte = protocol; }
                    packet
                })
                .collect();
            let _ = coalesce(&packets);
        }

        #[test]
        fn split_never_panics_on_arbitrary_input(
            header in proptest::array::uniform10(any::<u8>()),
            packet in proptest::collection::vec(any::<u8>(), 0..3000),
            offset in 0usize..64,
            max_len in 0usize..2100,
        ) {
            let mut raw = header.to_vec();
            raw.extend_from_slice(&packet);
            let (mut out, mut lens) = buffers();
            if let Ok(count) = split(&mut raw, &mut out, &mut lens, offset, max_len) {
                prop_assert!((1..=MAX_SEGMENTS).contains(&count));
                prop_assert!(lens.iter().take(count).all(|&len| len <= max_len));
            }
        }

        #[test]
        fn split_never_panics_on_plausible_super_packets(
            payload_len in 0usize..9000,
            mss in 0u16..2000,
            flags in any::<u8>(),
            gso_type in prop_oneof![Just(gso::TCPV4), Just(gso::TCPV6), Just(gso::UDP_L4), Just(gso::NONE)],
            data_offset in any::<u8>(),
            csum_start in 0u16..80,
            truncate in 0usize..60,
        ) {
            let mut raw = tso_v4(&pattern(payload_len), mss, flags);
            raw[1] = gso_type;
            raw[6..8].copy_from_slice(&csum_start.to_ne_bytes());
            raw[VNET_HDR_LEN + 32] = data_offset;
            raw.truncate(raw.len().saturating_sub(truncate));
            let (mut out, mut lens) = buffers();
            if let Ok(count) = split(&mut raw, &mut out, &mut lens, OFFSET, 1500) {
                prop_assert!(lens.iter().take(count).all(|&len| len <= 1500));
            }
        }

        #[test]
        fn valid_tso_segments_always_verify(
            payload_len in 1usize..20000,
            mss in 536u16..1448,
        ) {
            let payload = pattern(payload_len);
            let mut raw = tso_v4(&payload, mss, 0x18);
            let (mut out, mut lens) = buffers();
            let count = split(&mut raw, &mut out, &mut lens, 0, 1500).unwrap();
            prop_assert_eq!(count, payload_len.div_ceil(usize::from(mss)));
            let mut rebuilt = Vec::new();
            for (buf, &len) in out.iter().zip(&lens).take(count) {
                let segment = &buf[..len];
                prop_assert!(ipv4_header_ok(segment));
                prop_assert!(transport_checksum_ok(segment, false, 6, 20));
                rebuilt.extend_from_slice(&segment[52..]);
            }
            prop_assert_eq!(rebuilt, payload);
        }
    }
}
