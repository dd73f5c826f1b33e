//! The IPv4 header (RFC 791).
//!
//! The total length field, not the buffer, bounds the packet: bytes after it
//! are link padding (PPPoE frames padded to the Ethernet minimum carry some).

use super::checksum;
use crate::{Error, Field, Rest, Result};
use std::net::Ipv4Addr;

mod field {
    use super::{Field, Rest};
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
    pub const OPTIONS: Rest = 20..;
}

/// Size of the header without options.
pub const HEADER_LEN: usize = field::OPTIONS.start;

const DONT_FRAGMENT: u16 = 0x4000;
const MORE_FRAGMENTS: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A read-only or read-write view of an IPv4 packet.
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

    /// Wraps a buffer and checks version, header length and total length.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Like [`Packet::new_checked`] but lets the total length exceed the
    /// buffer: for a packet quoted in an ICMP error, whose tail is cut off.
    /// The header itself must be whole; [`Packet::payload`] then ends at the
    /// buffer.
    pub fn new_checked_header(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_header_len()?;
        Ok(packet)
    }

    /// Ensures the fixed header is present, the version is 4, the header
    /// length is at least 20 and within the buffer, and the total length
    /// covers the header.
    pub fn check_header_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::Malformed);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        if usize::from(self.total_len()) < header_len {
            return Err(Error::Malformed);
        }
        Ok(())
    }

    /// [`Packet::check_header_len`], and the total length within the buffer.
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        if usize::from(self.total_len()) > self.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), options included.
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    fn flags_and_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLG_OFF)
    }

    pub fn dont_fragment(&self) -> bool {
        self.flags_and_offset() & DONT_FRAGMENT != 0
    }

    pub fn more_fragments(&self) -> bool {
        self.flags_and_offset() & MORE_FRAGMENTS != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.flags_and_offset() & OFFSET_MASK) << 3
    }

    /// True for any fragment, the first one included.
    pub fn is_fragment(&self) -> bool {
        self.flags_and_offset() & (MORE_FRAGMENTS | OFFSET_MASK) != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The payload's protocol number (see [`super::protocol`]).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        read_addr(self.buffer.as_ref(), field::SRC_ADDR)
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        read_addr(self.buffer.as_ref(), field::DST_ADDR)
    }

    /// Whether the header checksum is valid.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(&self.buffer.as_ref()[..usize::from(self.header_len())]) == 0xffff
    }

    /// End of the payload: the total length, or the buffer's end for a view
    /// made with [`Packet::new_checked_header`].
    fn end(&self) -> usize {
        usize::from(self.total_len()).min(self.buffer.as_ref().len())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    pub fn options(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// The payload, bounded by the total length (link padding excluded).
    pub fn payload(&self) -> &'a [u8] {
        let end = self.end();
        &self.buffer.as_ref()[usize::from(self.header_len())..end]
    }

    /// The whole packet as the total length bounds it.
    pub fn as_bytes(&self) -> &'a [u8] {
        let end = self.end();
        &self.buffer.as_ref()[..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    pub fn set_version_and_header_len(&mut self, header_len: u8) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) & 0x0f);
    }

    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 0x03);
    }

    pub fn set_total_len(&mut self, total_len: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, total_len);
    }

    pub fn set_ident(&mut self, ident: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, ident);
    }

    /// Sets the flags and the fragment offset in bytes (rounded down to 8).
    pub fn set_fragment(&mut self, dont_fragment: bool, more_fragments: bool, offset: u16) {
        let mut value = (offset >> 3) & OFFSET_MASK;
        if dont_fragment {
            value |= DONT_FRAGMENT;
        }
        if more_fragments {
            value |= MORE_FRAGMENTS;
        }
        write_u16(self.buffer.as_mut(), field::FLG_OFF, value);
    }

    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes the header checksum and writes it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::data(&self.buffer.as_ref()[..usize::from(self.header_len())]);
        self.set_checksum(checksum::finish(sum));
    }

    /// Decrements the TTL, updating the checksum incrementally (RFC 1624).
    /// Returns the new TTL; a TTL already 0 stays 0.
    pub fn decrement_ttl(&mut self) -> u8 {
        let old_word = read_u16(self.buffer.as_ref(), field::TTL..field::PROTOCOL + 1);
        let ttl = self.ttl().saturating_sub(1);
        self.set_ttl(ttl);
        let new_word = read_u16(self.buffer.as_ref(), field::TTL..field::PROTOCOL + 1);
        let updated = checksum::update(self.checksum(), old_word, new_word);
        self.set_checksum(updated);
        ttl
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (usize::from(self.header_len()), self.end());
        &mut self.buffer.as_mut()[start..end]
    }
}

fn read_u16(bytes: &[u8], range: Field) -> u16 {
    let b = &bytes[range];
    u16::from_be_bytes([b[0], b[1]])
}

fn write_u16(bytes: &mut [u8], range: Field, value: u16) {
    bytes[range].copy_from_slice(&value.to_be_bytes());
}

fn read_addr(bytes: &[u8], range: Field) -> Ipv4Addr {
    let b = &bytes[range];
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// The IPv4 header fields a sender chooses, without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub payload_len: usize,
}

impl Repr {
    /// Parses a checked, unfragmented packet; options are skipped.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.is_fragment() {
            return Err(Error::Unsupported);
        }
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            ttl: packet.ttl(),
            payload_len: packet.payload().len(),
        })
    }

    /// Header bytes emitted (no options).
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header with Don't Fragment set, identification 0 (RFC 6864
    /// allows it for atomic datagrams) and a filled checksum. A payload too
    /// long for the 16-bit total length is recorded as the maximum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let total = HEADER_LEN
            .saturating_add(self.payload_len)
            .min(usize::from(u16::MAX));
        packet.set_version_and_header_len(HEADER_LEN as u8);
        packet.set_dscp_ecn(0, 0);
        packet.set_total_len(total as u16);
        packet.set_ident(0);
        packet.set_fragment(true, false, 0);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ip::fixtures::HTTP_SYN as SYN;

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.total_len(), 60);
        assert_eq!(packet.ident(), 0);
        assert!(packet.dont_fragment());
        assert!(!packet.more_fragments());
        assert!(!packet.is_fragment());
        assert_eq!(packet.frag_offset(), 0);
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), 6);
        assert_eq!(packet.checksum(), 0xedda);
        assert!(packet.verify_checksum());
        assert_eq!(packet.src_addr(), Ipv4Addr::new(10, 100, 0, 0));
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(142, 250, 179, 131));
        assert!(packet.options().is_empty());
        assert_eq!(packet.payload(), &SYN[20..]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 60];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_version_and_header_len(20);
        packet.set_dscp_ecn(0, 0);
        packet.set_total_len(60);
        packet.set_ident(0);
        packet.set_fragment(true, false, 0);
        packet.set_ttl(64);
        packet.set_protocol(6);
        packet.set_src_addr(Ipv4Addr::new(10, 100, 0, 0));
        packet.set_dst_addr(Ipv4Addr::new(142, 250, 179, 131));
        packet.fill_checksum();
        packet.payload_mut().copy_from_slice(&SYN[20..]);
        assert_eq!(bytes, SYN);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let repr = Repr::parse(&Packet::new_checked(&SYN[..]).unwrap()).unwrap();
        assert_eq!(repr.payload_len, 40);
        let mut bytes = SYN;
        bytes[..20].fill(0);
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, SYN);
    }

    #[test]
    fn decrement_ttl_keeps_checksum_valid() {
        let mut bytes = SYN;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        assert_eq!(packet.decrement_ttl(), 63);
        assert!(packet.verify_checksum());
    }

    #[test]
    fn padding_after_total_length_is_excluded() {
        let mut padded = SYN.to_vec();
        padded.extend_from_slice(&[0; 6]);
        let packet = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload(), &SYN[20..]);
        assert_eq!(packet.as_bytes(), &SYN[..]);
    }

    #[test]
    fn fragments_are_recognised() {
        let mut bytes = SYN;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_fragment(false, true, 0);
        assert!(packet.is_fragment() && packet.more_fragments());
        assert_eq!(packet.frag_offset(), 0);
        packet.set_fragment(false, false, 1480);
        assert!(packet.is_fragment() && !packet.more_fragments());
        assert_eq!(packet.frag_offset(), 1480);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bytes[..])),
            Err(Error::Unsupported)
        );
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert_eq!(
            Packet::new_checked(&SYN[..19]).err(),
            Some(Error::Truncated)
        );
        // Total length 60 but only 59 bytes present.
        assert_eq!(
            Packet::new_checked(&SYN[..59]).err(),
            Some(Error::Truncated)
        );
        // ... which a quoted header tolerates, cutting the payload short.
        let quoted = Packet::new_checked_header(&SYN[..28]).unwrap();
        assert_eq!(quoted.payload(), &SYN[20..28]);
        let mut bad = SYN;
        bad[0] = 0x44; // IHL 16 bytes
        assert_eq!(Packet::new_checked(&bad[..]).err(), Some(Error::Malformed));
        // IHL 60 bytes: fits this buffer but exceeds a total length of 40.
        bad[0] = 0x4f;
        bad[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&bad[..]).err(), Some(Error::Malformed));
        assert_eq!(
            Packet::new_checked(&bad[..40]).err(),
            Some(Error::Truncated)
        );
        bad = SYN;
        bad[0] = 0x65;
        assert_eq!(Packet::new_checked(&bad[..]).err(), Some(Error::Malformed));
        bad = SYN;
        bad[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&bad[..]).err(), Some(Error::Malformed));
    }

    #[test]
    fn bogus_total_length_from_fuzzed_capture_is_truncated() {
        use crate::ip::fixtures::FUZZED_DNS;
        assert_eq!(
            Packet::new_checked(&FUZZED_DNS[..]).err(),
            Some(Error::Truncated)
        );
    }
}
