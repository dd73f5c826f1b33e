//! The TCP header (RFC 9293 §3.1), its checksum, and MSS clamping.
//!
//! TCP has no length field: the segment is the IP payload, so callers hand
//! the view exactly that slice.

use super::{checksum, protocol};
use crate::{Error, Field, Result};
use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign};
use std::net::IpAddr;

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
    pub const OPTIONS: usize = 20;
}

/// Size of the header without options.
pub const HEADER_LEN: usize = field::OPTIONS;
/// Largest header: a data offset of 15 words.
pub const MAX_HEADER_LEN: usize = 60;

/// TCP option kinds (IANA "TCP Option Kind Numbers") read here.
pub mod option {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
}

/// The eight TCP control bits, as in the header's flags byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);
    pub const EMPTY: TcpFlags = TcpFlags(0);

    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }
}

impl BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & other.0)
    }
}

/// One letter per set flag in bit order (`F S R P A U E C`), as scapy prints
/// them: SYN+ACK is "SA", FIN+PSH+ACK is "FPA", no flags is "".
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, letter) in b"FSRPAUEC".iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                fmt::Write::write_char(f, char::from(*letter))?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self})")
    }
}

/// A read-only or read-write view of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checks; getters may panic on short buffers.
    /// Use [`Packet::new_checked`] for untrusted bytes.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a segment and checks that its header, options included, fits.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the fixed header is present and the data offset is at least
    /// 5 words and within the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// Header length in bytes (data offset × 4), options included.
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    pub fn window_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn urgent_at(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// The Maximum Segment Size option, if present and well-formed. A
    /// malformed option list ends the search.
    pub fn mss(&self) -> Option<u16> {
        let bytes = self.buffer.as_ref();
        let at = find_mss(&bytes[HEADER_LEN..usize::from(self.header_len())])?;
        let value = bytes.get(HEADER_LEN + at..HEADER_LEN + at + 2)?;
        Some(u16::from_be_bytes([value[0], value[1]]))
    }

    /// Whether the checksum over the pseudo-header and the whole segment is
    /// valid.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        segment_sum(self.buffer.as_ref(), src, dst) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    pub fn options(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    pub fn set_seq_number(&mut self, seq: u32) {
        self.buffer.as_mut()[field::SEQ_NUM].copy_from_slice(&seq.to_be_bytes());
    }

    pub fn set_ack_number(&mut self, ack: u32) {
        self.buffer.as_mut()[field::ACK_NUM].copy_from_slice(&ack.to_be_bytes());
    }

    /// Sets the data offset from a header length in bytes (a multiple of 4);
    /// the reserved bits are cleared.
    pub fn set_header_len(&mut self, header_len: u8) {
        self.buffer.as_mut()[field::DATA_OFFSET] = ((header_len / 4) & 0x0f) << 4;
    }

    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.bits();
    }

    pub fn set_window_len(&mut self, window: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, window);
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    pub fn set_urgent_at(&mut self, urgent: u16) {
        write_u16(self.buffer.as_mut(), field::URGENT, urgent);
    }

    /// Computes the checksum over the pseudo-header and the whole segment.
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let sum = segment_sum(self.buffer.as_ref(), src, dst);
        self.set_checksum(checksum::finish(sum));
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.header_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = usize::from(self.header_len());
        &mut self.buffer.as_mut()[start..]
    }
}

fn segment_sum(segment: &[u8], src: &IpAddr, dst: &IpAddr) -> u16 {
    // An IP payload never exceeds u32; saturate rather than wrap if a caller
    // passes something absurd.
    let length = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    checksum::combine(&[
        checksum::pseudo_header(src, dst, protocol::TCP, length),
        checksum::data(segment),
    ])
}

/// Offset within `options` of the MSS option's 2-byte value, if a
/// well-formed MSS option (kind 2, length 4) is there.
fn find_mss(options: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(&kind) = options.get(at) {
        match kind {
            option::END => return None,
            option::NOP => at += 1,
            _ => {
                let len = usize::from(*options.get(at + 1)?);
                if len < 2 || at + len > options.len() {
                    return None;
                }
                if kind == option::MSS {
                    return (len == 4).then_some(at + 2);
                }
                at += len;
            }
        }
    }
    None
}

/// Lowers the MSS option of a SYN (or SYN+ACK) segment to `max_mss`, as
/// rp-pppoe's `-m` and iptables' TCPMSS do so that hosts behind the link do
/// not send segments too big for the PPPoE MTU. The checksum is updated
/// incrementally (RFC 1624), so the IP addresses are not needed.
///
/// Returns true if the segment was changed. A segment that is not a SYN, has
/// no MSS option or a malformed header, or already asks for `max_mss` or less
/// is left alone.
pub fn clamp_mss(tcp: &mut [u8], max_mss: u16) -> bool {
    let Ok(packet) = Packet::new_checked(&*tcp) else {
        return false;
    };
    if !packet.flags().contains(TcpFlags::SYN) {
        return false;
    }
    let Some(at) = find_mss(packet.options()) else {
        return false;
    };
    let start = HEADER_LEN + at;
    let Some(value) = tcp.get(start..start + 2) else {
        return false;
    };
    if u16::from_be_bytes([value[0], value[1]]) <= max_mss {
        return false;
    }
    // The checksum sums 16-bit words from the segment's start, and an MSS
    // value after an odd number of option bytes straddles two of them:
    // update every aligned word the new bytes touch.
    let first_word = start & !1;
    let last_word = (start + 1) & !1;
    let old = [word_at(tcp, first_word), word_at(tcp, last_word)];
    tcp[start..start + 2].copy_from_slice(&max_mss.to_be_bytes());
    let new = [word_at(tcp, first_word), word_at(tcp, last_word)];
    let mut sum = read_u16(tcp, field::CHECKSUM);
    sum = checksum::update(sum, old[0], new[0]);
    if last_word != first_word {
        sum = checksum::update(sum, old[1], new[1]);
    }
    write_u16(tcp, field::CHECKSUM, sum);
    true
}

/// The 16-bit word at an even offset, zero-padded past the end as the
/// checksum pads an odd-length segment.
fn word_at(bytes: &[u8], at: usize) -> u16 {
    let high = bytes.get(at).copied().unwrap_or(0);
    let low = bytes.get(at + 1).copied().unwrap_or(0);
    u16::from_be_bytes([high, low])
}

fn read_u16(bytes: &[u8], range: Field) -> u16 {
    let b = &bytes[range];
    u16::from_be_bytes([b[0], b[1]])
}

fn read_u32(bytes: &[u8], range: Field) -> u32 {
    let b = &bytes[range];
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn write_u16(bytes: &mut [u8], range: Field, value: u16) {
    bytes[range].copy_from_slice(&value.to_be_bytes());
}

/// A TCP segment's fields, options kept raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: u32,
    pub ack_number: u32,
    pub flags: TcpFlags,
    pub window_len: u16,
    pub urgent_at: u16,
    /// Options as on the wire; emit pads them with End-of-Options to a
    /// multiple of 4 and drops what exceeds the 40 bytes a header can hold.
    pub options: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a checked segment and verifies its checksum.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) -> Result<Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::Malformed);
        }
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_at: packet.urgent_at(),
            options: packet.options(),
            payload: packet.payload(),
        })
    }

    fn options_len(&self) -> usize {
        self.options.len().min(MAX_HEADER_LEN - HEADER_LEN)
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len().div_ceil(4) * 4
    }

    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment into the first `buffer_len()` bytes of the buffer
    /// and fills the checksum over them (TCP has no length field: the
    /// caller's IP header says where the segment ends).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) {
        let len = self.buffer_len();
        let packet = &mut Packet::new_unchecked(&mut packet.buffer.as_mut()[..len]);
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len(self.header_len() as u8);
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_urgent_at(self.urgent_at);
        let options_len = self.options_len();
        let options = packet.options_mut();
        options[..options_len].copy_from_slice(&self.options[..options_len]);
        options[options_len..].fill(option::END);
        packet.payload_mut().copy_from_slice(self.payload);
        packet.fill_checksum(src, dst);
    }

    /// Emits into a new vector of exactly `buffer_len()` bytes.
    pub fn to_vec(&self, src: &IpAddr, dst: &IpAddr) -> Vec<u8> {
        let mut bytes = vec![0; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut bytes[..]), src, dst);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip::fixtures::{BCM_SYN_ACK, HTTP_ACK, HTTP_GET, HTTP_SYN, QINQ_SYN};
    use std::net::Ipv4Addr;

    /// The TCP segment of an IPv4 fixture (all have a 20-byte IP header and
    /// no padding) and its addresses.
    fn segment(ip: &[u8]) -> (&[u8], IpAddr, IpAddr) {
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]).into();
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]).into();
        (&ip[20..], src, dst)
    }

    #[test]
    fn deconstruct() {
        let (bytes, src, dst) = segment(&HTTP_SYN);
        let packet = Packet::new_checked(bytes).unwrap();
        assert_eq!(packet.src_port(), 57013);
        assert_eq!(packet.dst_port(), 80);
        assert_eq!(packet.seq_number(), 0xd4bd7654);
        assert_eq!(packet.ack_number(), 0);
        assert_eq!(packet.header_len(), 40);
        assert_eq!(packet.flags(), TcpFlags::SYN);
        assert_eq!(packet.window_len(), 65228);
        assert_eq!(packet.checksum(), 0x742f);
        assert_eq!(packet.urgent_at(), 0);
        assert_eq!(packet.mss(), Some(1452));
        assert_eq!(packet.options().len(), 20);
        assert!(packet.payload().is_empty());
        assert!(packet.verify_checksum(&src, &dst));
        assert!(!packet.verify_checksum(&dst, &IpAddr::from([10, 100, 0, 1])));
    }

    #[test]
    fn deconstruct_data_segment() {
        let (bytes, src, dst) = segment(&HTTP_GET);
        let packet = Packet::new_checked(bytes).unwrap();
        assert_eq!(packet.flags(), TcpFlags::PSH | TcpFlags::ACK);
        assert_eq!(packet.flags().to_string(), "PA");
        assert_eq!(packet.header_len(), 32);
        assert_eq!(packet.mss(), None);
        assert!(packet.payload().starts_with(b"GET / HTTP/1.1\r\n"));
        assert_eq!(packet.payload().len(), 77);
        assert!(packet.verify_checksum(&src, &dst));
    }

    #[test]
    fn captured_checksums_verify() {
        for ip in [&HTTP_SYN[..], &HTTP_GET, &HTTP_ACK, &QINQ_SYN, &BCM_SYN_ACK] {
            let (bytes, src, dst) = segment(ip);
            assert!(Packet::new_checked(bytes)
                .unwrap()
                .verify_checksum(&src, &dst));
        }
    }

    #[test]
    fn construct() {
        let (bytes, src, dst) = segment(&HTTP_SYN);
        let mut built = [0xa5u8; 40];
        let mut packet = Packet::new_unchecked(&mut built[..]);
        packet.set_src_port(57013);
        packet.set_dst_port(80);
        packet.set_seq_number(0xd4bd7654);
        packet.set_ack_number(0);
        packet.set_header_len(40);
        packet.set_flags(TcpFlags::SYN);
        packet.set_window_len(65228);
        packet.set_urgent_at(0);
        packet.options_mut().copy_from_slice(&bytes[20..40]);
        packet.fill_checksum(&src, &dst);
        assert_eq!(&built[..], bytes);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        for ip in [&HTTP_SYN[..], &HTTP_GET, &BCM_SYN_ACK] {
            let (bytes, src, dst) = segment(ip);
            let repr = Repr::parse(&Packet::new_checked(bytes).unwrap(), &src, &dst).unwrap();
            assert_eq!(repr.buffer_len(), bytes.len());
            assert_eq!(repr.to_vec(&src, &dst), bytes);
        }
        let (bytes, src, _) = segment(&HTTP_SYN);
        let packet = Packet::new_checked(bytes).unwrap();
        assert_eq!(Repr::parse(&packet, &src, &src), Err(Error::Malformed));
    }

    #[test]
    fn options_are_padded_on_emit() {
        let repr = Repr {
            src_port: 1,
            dst_port: 2,
            seq_number: 3,
            ack_number: 0,
            flags: TcpFlags::SYN,
            window_len: 1024,
            urgent_at: 0,
            options: &[option::MSS, 4, 0x05, 0xb4, option::NOP, option::NOP],
            payload: &[],
        };
        let (src, dst) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let bytes = repr.to_vec(&src, &dst);
        assert_eq!(bytes.len(), 28);
        assert_eq!(&bytes[20..], &[2, 4, 0x05, 0xb4, 1, 1, 0, 0]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.mss(), Some(1460));
        assert!(packet.verify_checksum(&src, &dst));
    }

    #[test]
    fn emit_into_a_larger_buffer() {
        let (bytes, src, dst) = segment(&HTTP_GET);
        let repr = Repr::parse(&Packet::new_checked(bytes).unwrap(), &src, &dst).unwrap();
        let mut larger = vec![0xeeu8; bytes.len() + 7];
        repr.emit(&mut Packet::new_unchecked(&mut larger[..]), &src, &dst);
        assert_eq!(&larger[..bytes.len()], bytes);
        assert_eq!(&larger[bytes.len()..], &[0xee; 7]);
    }

    #[test]
    fn flags_display_like_scapy() {
        assert_eq!((TcpFlags::SYN | TcpFlags::ACK).to_string(), "SA");
        assert_eq!(
            (TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK).to_string(),
            "FPA"
        );
        assert_eq!(TcpFlags(0xff).to_string(), "FSRPAUEC");
        assert_eq!(TcpFlags::EMPTY.to_string(), "");
        assert_eq!(format!("{:?}", TcpFlags::RST), "TcpFlags(R)");
        assert!((TcpFlags::SYN | TcpFlags::ACK).contains(TcpFlags::SYN));
        assert!(!TcpFlags::ACK.contains(TcpFlags::SYN | TcpFlags::ACK));
    }

    /// Clamps, then checks the incremental checksum against a full one.
    fn clamp_and_compare(segment: &mut [u8], src: &IpAddr, dst: &IpAddr, max: u16) -> bool {
        let changed = clamp_mss(segment, max);
        let incremental = Packet::new_unchecked(&*segment).checksum();
        let mut recomputed = segment.to_vec();
        Packet::new_unchecked(&mut recomputed[..]).fill_checksum(src, dst);
        assert_eq!(
            incremental,
            Packet::new_unchecked(&recomputed[..]).checksum()
        );
        changed
    }

    #[test]
    fn clamp_mss_on_captured_syns() {
        // SYN with MSS 1452, SYN+ACK with 1460, SYN with 1440.
        for (ip, mss) in [
            (&HTTP_SYN[..], 1452),
            (&BCM_SYN_ACK, 1460),
            (&QINQ_SYN, 1440),
        ] {
            let (bytes, src, dst) = segment(ip);
            let mut tcp = bytes.to_vec();
            assert!(clamp_and_compare(&mut tcp, &src, &dst, 1400));
            let packet = Packet::new_checked(&tcp[..]).unwrap();
            assert_eq!(packet.mss(), Some(1400));
            assert!(packet.verify_checksum(&src, &dst));
            // Only the two MSS bytes and the checksum changed.
            let changed: Vec<usize> = (0..tcp.len()).filter(|&i| tcp[i] != bytes[i]).collect();
            assert!(
                changed.iter().all(|i| [16, 17, 22, 23].contains(i)),
                "{changed:?}"
            );
            // At or above the current value: nothing to do.
            let mut tcp = bytes.to_vec();
            assert!(!clamp_mss(&mut tcp, mss));
            assert!(!clamp_mss(&mut tcp, 9000));
            assert_eq!(tcp, bytes);
        }
    }

    #[test]
    fn clamp_mss_on_built_syn_1460() {
        // Built here, not captured: a SYN whose MSS 1460 sits after one NOP,
        // so its value straddles two checksum words.
        let (src, dst) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let repr = Repr {
            src_port: 40000,
            dst_port: 443,
            seq_number: 0x01020304,
            ack_number: 0,
            flags: TcpFlags::SYN,
            window_len: 64240,
            urgent_at: 0,
            options: &[
                option::NOP,
                option::MSS,
                4,
                0x05,
                0xb4,
                option::NOP,
                option::NOP,
                option::NOP,
            ],
            payload: &[],
        };
        for max in [1452u16, 1400, 0, 1459, 536] {
            let mut tcp = repr.to_vec(&src, &dst);
            assert!(clamp_and_compare(&mut tcp, &src, &dst, max));
            assert_eq!(Packet::new_checked(&tcp[..]).unwrap().mss(), Some(max));
        }
        // Aligned, as most stacks send it.
        let aligned = Repr {
            options: &[option::MSS, 4, 0x05, 0xb4],
            ..repr
        };
        let mut tcp = aligned.to_vec(&src, &dst);
        assert!(clamp_and_compare(&mut tcp, &src, &dst, 1452));
    }

    #[test]
    fn clamp_mss_leaves_other_segments_alone() {
        let (bytes, ..) = segment(&HTTP_GET);
        let mut tcp = bytes.to_vec();
        assert!(!clamp_mss(&mut tcp, 100));
        assert_eq!(tcp, bytes);
        // A SYN whose MSS option has the wrong length, overruns the header,
        // or is replaced by another kind, is not touched.
        let (bytes, ..) = segment(&HTTP_SYN);
        for (at, value) in [(21, 5), (21, 0), (21, 200), (20, 30)] {
            let mut tcp = bytes.to_vec();
            tcp[at] = value;
            let before = tcp.clone();
            assert!(!clamp_mss(&mut tcp, 100));
            assert_eq!(tcp, before);
        }
        assert!(!clamp_mss(&mut [], 100));
        assert!(!clamp_mss(&mut tcp_with_data_offset(15), 100));
    }

    fn tcp_with_data_offset(words: u8) -> Vec<u8> {
        let (bytes, ..) = segment(&HTTP_SYN);
        let mut tcp = bytes.to_vec();
        tcp[12] = words << 4;
        tcp
    }

    #[test]
    fn bad_lengths_are_errors() {
        let (bytes, ..) = segment(&HTTP_SYN);
        assert_eq!(
            Packet::new_checked(&bytes[..19]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&bytes[..39]).err(),
            Some(Error::Truncated)
        );
        let short = tcp_with_data_offset(4);
        assert_eq!(
            Packet::new_checked(&short[..]).err(),
            Some(Error::Malformed)
        );
        let long = tcp_with_data_offset(11);
        assert_eq!(Packet::new_checked(&long[..]).err(), Some(Error::Truncated));
    }
}
