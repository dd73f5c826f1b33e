//! The UDP header (RFC 768) and its checksum.
//!
//! The length field, not the buffer, bounds the datagram.

use super::{checksum, protocol};
use crate::{Error, Field, Result};
use std::net::IpAddr;

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Size of the header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A read-only or read-write view of a UDP datagram.
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

    /// Wraps a buffer and checks the length field.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the header is present and the length field covers the header
    /// and fits the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let claimed = usize::from(self.len());
        if claimed < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if claimed > len {
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

    /// The length field: header plus payload.
    #[allow(clippy::len_without_is_empty)] // A datagram is never empty.
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Whether the checksum is valid. A zero checksum means "none" over
    /// IPv4 and passes; over IPv6 it is forbidden (RFC 8200 §8.1) and fails.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4();
        }
        self.sum(src, dst) == 0xffff
    }

    fn sum(&self, src: &IpAddr, dst: &IpAddr) -> u16 {
        let length = self.len();
        checksum::combine(&[
            checksum::pseudo_header(src, dst, protocol::UDP, u32::from(length)),
            checksum::data(&self.buffer.as_ref()[..usize::from(length)]),
        ])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload, bounded by the length field.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    pub fn set_len(&mut self, length: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, length);
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Computes and writes the checksum; a computed 0 is sent as 0xffff,
    /// since 0 means "no checksum" (RFC 768).
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let value = checksum::finish(self.sum(src, dst));
        self.set_checksum(if value == 0 { 0xffff } else { value });
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

fn read_u16(bytes: &[u8], range: Field) -> u16 {
    let b = &bytes[range];
    u16::from_be_bytes([b[0], b[1]])
}

fn write_u16(bytes: &mut [u8], range: Field, value: u16) {
    bytes[range].copy_from_slice(&value.to_be_bytes());
}

/// A UDP datagram's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a checked datagram and verifies its checksum.
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
            payload: packet.payload(),
        })
    }

    /// Bytes needed; a payload too long for the length field is truncated
    /// on emit.
    pub fn buffer_len(&self) -> usize {
        (HEADER_LEN + self.payload.len()).min(usize::from(u16::MAX))
    }

    /// Writes the datagram and fills the checksum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) {
        let len = self.buffer_len();
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len as u16);
        packet
            .payload_mut()
            .copy_from_slice(&self.payload[..len - HEADER_LEN]);
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
    use crate::ip::fixtures::{BCM_DNS_REPLY, DHCPV6_SOLICIT};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn dhcpv6() -> (&'static [u8], IpAddr, IpAddr) {
        let src: Ipv6Addr = "fe80::ce05:eff:fe88:0".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1:2".parse().unwrap();
        (&DHCPV6_SOLICIT[40..], src.into(), dst.into())
    }

    fn dns() -> (&'static [u8], IpAddr, IpAddr) {
        let src = Ipv4Addr::new(217, 89, 31, 49);
        let dst = Ipv4Addr::new(9, 182, 64, 0);
        (&BCM_DNS_REPLY[20..], src.into(), dst.into())
    }

    #[test]
    fn deconstruct() {
        let (bytes, src, dst) = dhcpv6();
        let packet = Packet::new_checked(bytes).unwrap();
        assert_eq!(packet.src_port(), 546);
        assert_eq!(packet.dst_port(), 547);
        assert_eq!(packet.len(), 58);
        assert_eq!(packet.checksum(), 0x1a67);
        assert_eq!(packet.payload(), &bytes[8..]);
        assert!(packet.verify_checksum(&src, &dst));

        let (bytes, src, dst) = dns();
        let packet = Packet::new_checked(bytes).unwrap();
        assert_eq!((packet.src_port(), packet.dst_port()), (53, 36264));
        assert_eq!(packet.len(), 123);
        assert!(packet.verify_checksum(&src, &dst));
        assert!(!packet.verify_checksum(&dst, &dst));
    }

    #[test]
    fn construct() {
        let (bytes, src, dst) = dhcpv6();
        let mut built = vec![0xa5u8; bytes.len()];
        let mut packet = Packet::new_unchecked(&mut built[..]);
        packet.set_src_port(546);
        packet.set_dst_port(547);
        packet.set_len(58);
        packet.payload_mut().copy_from_slice(&bytes[8..]);
        packet.fill_checksum(&src, &dst);
        assert_eq!(built, bytes);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        for (bytes, src, dst) in [dhcpv6(), dns()] {
            let repr = Repr::parse(&Packet::new_checked(bytes).unwrap(), &src, &dst).unwrap();
            assert_eq!(repr.to_vec(&src, &dst), bytes);
        }
    }

    #[test]
    fn zero_checksum_means_none_over_ipv4_only() {
        let (bytes, src, dst) = dns();
        let mut v4 = bytes.to_vec();
        Packet::new_unchecked(&mut v4[..]).set_checksum(0);
        assert!(Packet::new_checked(&v4[..])
            .unwrap()
            .verify_checksum(&src, &dst));
        let (bytes, src, dst) = dhcpv6();
        let mut v6 = bytes.to_vec();
        Packet::new_unchecked(&mut v6[..]).set_checksum(0);
        assert!(!Packet::new_checked(&v6[..])
            .unwrap()
            .verify_checksum(&src, &dst));
    }

    #[test]
    fn padding_after_length_is_excluded() {
        let (bytes, src, dst) = dhcpv6();
        let mut padded = bytes.to_vec();
        padded.extend_from_slice(&[0xee; 5]);
        let packet = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload(), &bytes[8..]);
        assert!(packet.verify_checksum(&src, &dst));
    }

    #[test]
    fn bad_lengths_are_errors() {
        let (bytes, ..) = dhcpv6();
        assert_eq!(
            Packet::new_checked(&bytes[..7]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&bytes[..57]).err(),
            Some(Error::Truncated)
        );
        let mut short = bytes.to_vec();
        short[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&short[..]).err(),
            Some(Error::Malformed)
        );
    }
}
