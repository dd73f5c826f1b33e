//! TUN offloads: the virtio-net header a TUN opened with IFF_VNET_HDR puts
//! in front of every packet, and the splitting of the kernel's TSO/USO
//! super-packets into MTU-sized IP packets for the session.
//!
//! With offloads on, the kernel hands us one TCP or UDP "super-packet" of up
//! to 64 KiB per read instead of one packet per MSS, with a header saying
//! how to cut it (`gso_size`) and where the partial checksum is; one read
//! then feeds dozens of session frames, which go out in one `sendmmsg`.
//! The other direction merges received segments into GRO super-packets,
//! one TUN write each ([`Coalescer`]).
//!
//! This is the same scheme as wireguard-go's `tun/offload_linux.go` and
//! tun-rs. Both halves are ours: the split's input (the header and packet
//! from the kernel) must be validated field by field, every malformed
//! combination dropped and counted, never panic; and tun-rs's merge
//! allocates per packet, which the data path must not.

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

/// Packets read from the TUN (segments of super-packets with offloads)
/// waiting to go out in `sendmmsg` batches, each in a frame buffer at the
/// data path's headroom; allocated once. Buffers `..used` are taken.
pub struct Segments {
    /// The raw read: virtio-net header and (super-)packet.
    pub raw: Box<[u8]>,
    pub bufs: Vec<Box<[u8]>>,
    /// The IP packet's length in each buffer, at the headroom.
    pub lens: Vec<usize>,
    /// Each buffer's session frame once encapsulated; empty when dropped.
    pub frames: Vec<std::ops::Range<usize>>,
    pub used: usize,
}

impl Segments {
    /// Buffers of `frame_len` bytes each: room for one super-packet's
    /// segments and a batch of reads on top, so that a few reads go out
    /// together. Pages are touched only as reads fill them.
    pub fn new(frame_len: usize) -> Segments {
        let count = MAX_SEGMENTS + crate::packet_socket::MAX_BATCH;
        Segments {
            raw: vec![0; MAX_SUPER_PACKET].into_boxed_slice(),
            bufs: (0..count)
                .map(|_| vec![0; frame_len].into_boxed_slice())
                .collect(),
            lens: vec![0; count],
            frames: vec![0..0; count],
            used: 0,
        }
    }

    /// Buffers still free.
    pub fn room(&self) -> usize {
        self.bufs.len().saturating_sub(self.used)
    }

    /// Where the next TUN read goes: the raw buffer when the TUN has
    /// offloads (the read is split afterwards), else the next free
    /// buffer past `headroom`, so a plain packet needs no copy.
    pub fn read_buffer(&mut self, offloaded: bool, headroom: usize) -> &mut [u8] {
        if offloaded {
            &mut self.raw
        } else {
            match self
                .bufs
                .get_mut(self.used)
                .and_then(|buf| buf.get_mut(headroom..))
            {
                Some(buf) => buf,
                None => &mut self.raw,
            }
        }
    }
}

/// Most packets merged into one GRO super-packet: one receive batch.
pub const MAX_MERGED_SEGMENTS: usize = 64;

/// The largest IP packet a merge grows to (IPv4's total length field).
const MAX_MERGED_LEN: usize = 65_535;

/// Received IP packets merged into one GRO super-packet for one TUN write
/// (the receive side of the offloads, as the kernel's own GRO and
/// wireguard-go's `tun/offload_linux.go` do it): consecutive in-order TCP
/// segments of one flow, or equal-sized UDP datagrams of one flow (a
/// shorter one ends the run), behind a virtio-net header that tells the
/// kernel how they were cut. The buffer is allocated once; its pages are
/// touched only as merges fill them.
///
/// A merged packet reaches the kernel with a partial checksum
/// (CHECKSUM_PARTIAL), which it takes as verified, so every packet's IPv4
/// header and TCP/UDP checksums are verified before it is merged; a packet
/// that fails stays alone, for the kernel to check and drop.
pub struct Coalescer {
    /// [`VNET_HDR_LEN`] bytes of header, then the packet being built.
    buf: Box<[u8]>,
    /// Bytes of the packet held after the header; 0 when empty.
    len: usize,
    run: Run,
    tcp: bool,
    udp: bool,
}

/// What the held packet is and what may still join it.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    candidate: Candidate,
    segments: usize,
    /// TCP: the sequence number the next segment must carry.
    next_seq: u32,
    /// A shorter segment or a PSH ended the run.
    closed: bool,
    /// The first packet's checksums were verified (needed only once a
    /// second packet joins it).
    verified: bool,
}

/// A packet that could be merged, as parsed once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Candidate {
    tcp: bool,
    ipv6: bool,
    /// IP header length; the transport header starts here.
    ip_len: usize,
    /// IP + transport headers.
    headers_len: usize,
    payload_len: usize,
    seq: u32,
    psh: bool,
}

const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;

impl Candidate {
    /// A packet worth merging: IPv4 without options or fragments, or IPv6
    /// with TCP/UDP right after its header; lengths consistent; TCP with
    /// ACK (and maybe PSH) only and data; UDP with data. `None` otherwise.
    fn of(packet: &[u8], tcp_allowed: bool, udp_allowed: bool) -> Option<Candidate> {
        if packet.len() > MAX_MERGED_LEN {
            return None;
        }
        let (ipv6, ip_len, protocol) = match packet.first()? >> 4 {
            4 => {
                let header = packet.get(..20)?;
                let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
                let fragment = header[6] & 0x3f != 0 || header[7] != 0;
                if header[0] != 0x45 || total != packet.len() || fragment {
                    return None;
                }
                (false, 20, header[9])
            }
            6 => {
                let header = packet.get(..40)?;
                let payload = usize::from(u16::from_be_bytes([header[4], header[5]]));
                if payload + 40 != packet.len() {
                    return None;
                }
                (true, 40, header[6])
            }
            _ => return None,
        };
        let transport = packet.get(ip_len..)?;
        let (tcp, transport_len, seq, psh) = match protocol {
            6 if tcp_allowed => {
                let header = transport.get(..20)?;
                let data_offset = usize::from(header[12] >> 4) * 4;
                let flags = header[13];
                if data_offset < 20 || flags & !TCP_PSH != TCP_ACK {
                    return None;
                }
                let seq = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
                (true, data_offset, seq, flags & TCP_PSH != 0)
            }
            17 if udp_allowed => {
                let header = transport.get(..8)?;
                let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
                if length != transport.len() {
                    return None;
                }
                (false, 8, 0, false)
            }
            _ => return None,
        };
        let headers_len = ip_len + transport_len;
        let payload_len = packet
            .len()
            .checked_sub(headers_len)
            .filter(|&len| len > 0)?;
        Some(Candidate {
            tcp,
            ipv6,
            ip_len,
            headers_len,
            payload_len,
            seq,
            psh,
        })
    }

    fn protocol(&self) -> u8 {
        if self.tcp {
            6
        } else {
            17
        }
    }
}

/// Whether two candidates' headers (`head` as held, `packet` new) belong to
/// one flow and may share one set of headers: what the kernel's GRO
/// compares (addresses, ports, TOS/traffic class, TTL/hop limit, DF; for
/// TCP the acknowledgement, window, flags apart from PSH, and options).
fn same_flow(head: &[u8], packet: &[u8], candidate: &Candidate) -> bool {
    let ip_same = if candidate.ipv6 {
        // Version, traffic class and flow label; next header, hop limit,
        // addresses.
        head.get(..4) == packet.get(..4) && head.get(6..40) == packet.get(6..40)
    } else {
        // Version/IHL, TOS; DF and the reserved bit; TTL, protocol;
        // addresses.
        head.get(..2) == packet.get(..2)
            && head.get(6).map(|b| b >> 5) == packet.get(6).map(|b| b >> 5)
            && head.get(8..10) == packet.get(8..10)
            && head.get(12..20) == packet.get(12..20)
    };
    let at = candidate.ip_len;
    let ports_same = head.get(at..at + 4) == packet.get(at..at + 4);
    if !(ip_same && ports_same) {
        return false;
    }
    if !candidate.tcp {
        return true;
    }
    let (Some(ours), Some(theirs)) = (
        head.get(at..candidate.headers_len),
        packet.get(at..candidate.headers_len),
    ) else {
        return false;
    };
    // Acknowledgement, data offset, window; urgent pointer and options.
    ours[8..13] == theirs[8..13]
        && (ours[13] | TCP_PSH) == (theirs[13] | TCP_PSH)
        && ours[14..16] == theirs[14..16]
        && ours[18..] == theirs[18..]
}

/// The IPv4 header (when there is one) and the TCP/UDP checksum of
/// `packet` verify.
fn checksums_valid(packet: &[u8], candidate: &Candidate) -> bool {
    if !candidate.ipv6 && checksum::data(packet.get(..20).unwrap_or_default()) != 0xffff {
        return false;
    }
    let Some(transport) = packet.get(candidate.ip_len..) else {
        return false;
    };
    let pseudo = pseudo_header_sum(
        packet,
        candidate.ipv6,
        candidate.protocol(),
        transport.len(),
    );
    checksum::combine(&[pseudo, checksum::data(transport)]) == 0xffff
}

impl Coalescer {
    /// A coalescer for a TUN with these offloads: TCP segments merge only
    /// with `tcp` (TSO), UDP datagrams only with `udp` (USO).
    pub fn new(tcp: bool, udp: bool) -> Coalescer {
        Coalescer {
            buf: vec![0; VNET_HDR_LEN + MAX_MERGED_LEN].into_boxed_slice(),
            len: 0,
            run: Run::default(),
            tcp,
            udp,
        }
    }

    /// Takes `packet` into the held super-packet, or starts one with it
    /// when none is held. False when it cannot: write
    /// [`finish`](Self::finish)'s packet first and offer it again; a packet
    /// refused by an empty coalescer is not mergeable (ICMP, a SYN, a bad
    /// checksum...): write it alone, with a zero header.
    pub fn push(&mut self, packet: &[u8]) -> bool {
        let Some(candidate) = Candidate::of(packet, self.tcp, self.udp) else {
            return false;
        };
        if self.len == 0 {
            let Some(slot) = self.buf.get_mut(VNET_HDR_LEN..VNET_HDR_LEN + packet.len()) else {
                return false;
            };
            slot.copy_from_slice(packet);
            self.len = packet.len();
            self.run = Run {
                candidate,
                segments: 1,
                next_seq: candidate.seq.wrapping_add(candidate.payload_len as u32),
                closed: candidate.psh,
                verified: false,
            };
            return true;
        }
        let run = self.run;
        let head = run.candidate;
        let fits = !run.closed
            && run.segments < MAX_MERGED_SEGMENTS
            && candidate.tcp == head.tcp
            && candidate.ipv6 == head.ipv6
            && candidate.headers_len == head.headers_len
            && candidate.payload_len <= head.payload_len
            && (!head.tcp || candidate.seq == run.next_seq)
            && self.len + candidate.payload_len <= MAX_MERGED_LEN;
        if !fits {
            return false;
        }
        let end = VNET_HDR_LEN + self.len;
        let Some(held) = self.buf.get(VNET_HDR_LEN..end) else {
            return false;
        };
        if !same_flow(held, packet, &candidate)
            || !(run.verified || checksums_valid(held, &head))
            || !checksums_valid(packet, &candidate)
        {
            return false;
        }
        let (Some(slot), Some(payload)) = (
            self.buf.get_mut(end..end + candidate.payload_len),
            packet.get(candidate.headers_len..),
        ) else {
            return false;
        };
        slot.copy_from_slice(payload);
        self.len += candidate.payload_len;
        if candidate.psh {
            // PSH belongs on the last segment, which the merged one now ends with.
            if let Some(flags) = self.buf.get_mut(VNET_HDR_LEN + head.ip_len + 13) {
                *flags |= TCP_PSH;
            }
        }
        self.run = Run {
            segments: run.segments + 1,
            next_seq: run.next_seq.wrapping_add(candidate.payload_len as u32),
            closed: candidate.psh || candidate.payload_len < head.payload_len,
            verified: true,
            ..run
        };
        true
    }

    /// The held packet, ready for one TUN write (virtio-net header
    /// included), and the coalescer emptied; `None` when nothing is held.
    /// A lone packet gets a zero header and goes as it came; a merged one
    /// gets its lengths and IPv4 header checksum fixed, the pseudo-header
    /// sum in its checksum field and a GSO header saying how to cut it.
    pub fn finish(&mut self) -> Option<&[u8]> {
        let len = std::mem::take(&mut self.len);
        let run = self.run;
        let whole = self.buf.get_mut(..VNET_HDR_LEN + len).filter(|_| len > 0)?;
        let (header, packet) = whole.split_at_mut(VNET_HDR_LEN);
        if run.segments < 2 {
            header.fill(0);
            return Some(whole);
        }
        let head = run.candidate;
        // Both fit in 16 bits: a merge never grows past MAX_MERGED_LEN.
        let transport_len = len - head.ip_len;
        if head.ipv6 {
            packet[4..6].copy_from_slice(&(transport_len as u16).to_be_bytes());
        } else {
            packet[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            packet[10..12].fill(0);
            let sum = checksum::finish(checksum::data(&packet[..20]));
            packet[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        let checksum_offset: u16 = if head.tcp { 16 } else { 6 };
        if !head.tcp {
            let at = head.ip_len + 4;
            packet[at..at + 2].copy_from_slice(&(transport_len as u16).to_be_bytes());
        }
        let at = head.ip_len + usize::from(checksum_offset);
        let pseudo = pseudo_header_sum(packet, head.ipv6, head.protocol(), transport_len);
        packet[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
        let gso_type = match (head.tcp, head.ipv6) {
            (true, false) => gso::TCPV4,
            (true, true) => gso::TCPV6,
            (false, _) => gso::UDP_L4,
        };
        VnetHeader {
            flags: F_NEEDS_CSUM,
            gso_type,
            hdr_len: head.headers_len as u16,
            gso_size: head.payload_len as u16,
            csum_start: head.ip_len as u16,
            csum_offset: checksum_offset,
        }
        .emit(header)?;
        Some(whole)
    }

    /// How many packets the held super-packet holds (0: none held).
    pub fn segments(&self) -> usize {
        if self.len == 0 {
            0
        } else {
            self.run.segments
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
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

    /// Coalesces `packets` the way the daemon does (offer each; when
    /// refused, write what is held and offer again; when still refused,
    /// write it alone with a zero header) and returns every write.
    fn coalesce(packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut coalescer = Coalescer::new(true, true);
        let mut writes = Vec::new();
        for packet in packets {
            if coalescer.push(packet) {
                continue;
            }
            writes.extend(coalescer.finish().map(<[u8]>::to_vec));
            if !coalescer.push(packet) {
                let mut alone = vec![0; VNET_HDR_LEN];
                alone.extend_from_slice(packet);
                writes.push(alone);
            }
        }
        writes.extend(coalescer.finish().map(<[u8]>::to_vec));
        assert!(coalescer.is_empty());
        writes
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
        for (raw, gso_type, ipv6, protocol, transport) in [
            (
                tso_v4(&pattern(1448 * 5 + 333), 1448, 0x18),
                gso::TCPV4,
                false,
                6,
                20,
            ),
            (
                udp_v6(&pattern(1200 * 4 + 7), 1200),
                gso::UDP_L4,
                true,
                17,
                40,
            ),
        ] {
            let segments = split_all(&mut raw.clone());
            let merged = coalesce(&segments);
            assert_eq!(merged.len(), 1);
            let header = VnetHeader::parse(&merged[0]).unwrap();
            assert_eq!(header.gso_type, gso_type);
            assert_eq!(header.flags, F_NEEDS_CSUM);
            assert_eq!(usize::from(header.csum_start), transport);
            // The checksum field holds the pseudo-header sum: adding the
            // transport bytes' sum and complementing gives a valid packet.
            let mut whole = merged[0][VNET_HDR_LEN..].to_vec();
            let at = transport + usize::from(header.csum_offset);
            let sum = checksum::data(&whole[transport..]);
            whole[at..at + 2].copy_from_slice(&checksum::finish(sum).to_be_bytes());
            assert!(transport_checksum_ok(&whole, ipv6, protocol, transport));
            if !ipv6 {
                assert!(ipv4_header_ok(&whole));
            }
            // And it splits into the very same segments.
            let mut again = merged[0].clone();
            assert_eq!(split_all(&mut again), segments);
        }
    }

    #[test]
    fn a_lone_packet_goes_as_it_came() {
        let segments = split_all(&mut tso_v4(&pattern(100), 1448, 0x18));
        let writes = coalesce(&segments);
        assert_eq!(writes.len(), 1);
        assert_eq!(&writes[0][..VNET_HDR_LEN], &[0; VNET_HDR_LEN]);
        assert_eq!(&writes[0][VNET_HDR_LEN..], &segments[0][..]);
    }

    #[test]
    fn other_flows_flags_gaps_and_bad_checksums_are_not_merged() {
        let segments = split_all(&mut tso_v4(&pattern(1448 * 4), 1448, 0x10));
        let is_gso = |write: &Vec<u8>| VnetHeader::parse(write).unwrap().gso_type != gso::NONE;
        // A SYN between them breaks the run and goes alone.
        let mut syn = segments[1].clone();
        syn[33] = 0x02;
        let writes = coalesce(&[segments[0].clone(), syn, segments[2].clone()]);
        assert_eq!(writes.len(), 3);
        assert!(!writes.iter().any(is_gso));
        // A gap in the sequence.
        let writes = coalesce(&[segments[0].clone(), segments[2].clone()]);
        assert_eq!(writes.len(), 2);
        // A corrupted payload is neither merged nor merged into.
        let mut corrupt = segments[1].clone();
        corrupt[100] ^= 0xff;
        let writes = coalesce(&[segments[0].clone(), corrupt.clone(), segments[2].clone()]);
        assert_eq!(writes.len(), 3);
        assert!(!writes.iter().any(is_gso));
        assert_eq!(&writes[1][VNET_HDR_LEN..], &corrupt[..]);
        // Another destination port, another window.
        let mut other_port = segments[1].clone();
        other_port[23] ^= 1;
        let mut other_window = segments[1].clone();
        other_window[35] ^= 1;
        for other in [other_port, other_window] {
            assert_eq!(coalesce(&[segments[0].clone(), other]).len(), 2);
        }
        // Segments 0..4 in order merge into one.
        let writes = coalesce(&segments);
        assert_eq!(writes.len(), 1);
        assert!(is_gso(&writes[0]));
    }

    #[test]
    fn a_short_datagram_ends_a_udp_run_and_runs_are_bounded() {
        let datagrams = split_all(&mut udp_v6(&pattern(1200 * 2 + 7), 1200));
        // 1200, 1200, 7 merge; nothing follows the short one.
        let mut packets = datagrams.clone();
        packets.push(datagrams[0].clone());
        let writes = coalesce(&packets);
        assert_eq!(writes.len(), 2);
        // A longer datagram never follows a shorter one.
        let writes = coalesce(&[datagrams[2].clone(), datagrams[0].clone()]);
        assert_eq!(writes.len(), 2);
        // At most MAX_MERGED_SEGMENTS per write.
        let small = split_all(&mut udp_v6(&pattern(16 * 100), 16));
        let writes = coalesce(&small);
        assert_eq!(small.len(), 100);
        assert_eq!(writes.len(), 2);
        let mut rebuilt = Vec::new();
        for write in &writes {
            rebuilt.extend(split_all(&mut write.clone()));
        }
        assert_eq!(rebuilt, small);
    }

    #[test]
    fn udp_merges_only_with_uso_and_tcp_only_with_tso() {
        let datagrams = split_all(&mut udp_v6(&pattern(2400), 1200));
        let segments = split_all(&mut tso_v4(&pattern(2896), 1448, 0x10));
        let mut tcp_only = Coalescer::new(true, false);
        assert!(!tcp_only.push(&datagrams[0]));
        assert!(tcp_only.push(&segments[0]) && tcp_only.push(&segments[1]));
        assert_eq!(tcp_only.segments(), 2);
        let mut udp_only = Coalescer::new(false, true);
        assert!(!udp_only.push(&segments[0]));
        assert!(udp_only.push(&datagrams[0]) && udp_only.push(&datagrams[1]));
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
