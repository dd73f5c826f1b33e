//! ICMP (RFC 792) and ICMPv6 (RFC 4443): type, code, checksum, and the
//! packet an error message quotes.
//!
//! Both share the layout `type (1) | code (1) | checksum (2) | rest of
//! header (4) | data`, so one view serves both; the version decides which
//! types are errors and whether the checksum covers a pseudo-header. ICMP
//! has no length field: the message is the whole IP payload.

use super::{checksum, ipv4, ipv6, protocol};
use crate::{Error, Field, Result};
use std::net::IpAddr;

mod field {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const REST_OF_HEADER: Field = 4..8;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ: Field = 6..8;
    pub const DATA: usize = 8;
}

/// Size of the header, rest-of-header word included.
pub const HEADER_LEN: usize = field::DATA;

/// ICMPv4 message types (IANA "ICMP Type Numbers").
pub mod v4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;

    /// Error messages, which quote the offending packet's IP header and at
    /// least 8 bytes of what followed it.
    pub const fn is_error(msg_type: u8) -> bool {
        matches!(
            msg_type,
            DEST_UNREACHABLE | SOURCE_QUENCH | TIME_EXCEEDED | PARAM_PROBLEM
        )
    }

    pub const fn is_echo(msg_type: u8) -> bool {
        matches!(msg_type, ECHO_REQUEST | ECHO_REPLY)
    }
}

/// ICMPv6 message types (IANA "ICMPv6 Type Numbers").
pub mod v6 {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const MLDV2_REPORT: u8 = 143;

    /// Error messages (types 0..=127 are errors, RFC 4443 §2.1; these four
    /// are the ones defined), which quote as much of the offending packet as
    /// fits.
    pub const fn is_error(msg_type: u8) -> bool {
        matches!(
            msg_type,
            DEST_UNREACHABLE | PACKET_TOO_BIG | TIME_EXCEEDED | PARAM_PROBLEM
        )
    }

    pub const fn is_echo(msg_type: u8) -> bool {
        matches!(msg_type, ECHO_REQUEST | ECHO_REPLY)
    }
}

/// The packet an ICMP error quotes, as far as it was quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The quoted packet's upper-layer protocol.
    pub protocol: u8,
    /// The quoted IP header, IPv6 extension headers included.
    pub header: &'a [u8],
    /// What was quoted of the transport header and beyond: RFC 792 promises
    /// 8 bytes, enough for TCP or UDP ports and TCP's sequence number.
    pub transport: &'a [u8],
    /// The quoted packet was a fragment other than the first, so
    /// `transport` is fragment data, not a header.
    pub non_first_fragment: bool,
}

impl Quoted<'_> {
    /// Source and destination port of a quoted TCP or UDP header.
    pub fn ports(&self) -> Option<(u16, u16)> {
        if self.non_first_fragment || !matches!(self.protocol, protocol::TCP | protocol::UDP) {
            return None;
        }
        match self.transport {
            [s0, s1, d0, d1, ..] => Some((
                u16::from_be_bytes([*s0, *s1]),
                u16::from_be_bytes([*d0, *d1]),
            )),
            _ => None,
        }
    }

    /// The sequence number of a quoted TCP header.
    pub fn tcp_seq(&self) -> Option<u32> {
        if self.non_first_fragment || self.protocol != protocol::TCP {
            return None;
        }
        let b = self.transport.get(4..8)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A read-only or read-write view of an ICMP or ICMPv6 message.
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

    /// Wraps a buffer and checks that the 8-byte header is present.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The type-specific second word (unused, MTU, pointer, or echo
    /// identifier and sequence).
    pub fn rest_of_header(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::REST_OF_HEADER];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The identifier of an echo request or reply.
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// The sequence number of an echo request or reply.
    pub fn echo_seq(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ)
    }

    /// Whether an ICMPv4 checksum (over the message alone) is valid.
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }

    /// Whether an ICMPv6 checksum (over pseudo-header and message) is valid.
    pub fn verify_checksum_v6(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        self.sum_v6(src, dst) == 0xffff
    }

    fn sum_v6(&self, src: &IpAddr, dst: &IpAddr) -> u16 {
        let bytes = self.buffer.as_ref();
        let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        checksum::combine(&[
            checksum::pseudo_header(src, dst, protocol::ICMPV6, length),
            checksum::data(bytes),
        ])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Everything after the 8-byte header.
    pub fn data(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// The IPv4 packet an ICMPv4 error quotes. `Unsupported` if this is not
    /// an error message; the quoted header's own errors otherwise.
    pub fn quoted_v4(&self) -> Result<Quoted<'a>> {
        if !v4::is_error(self.msg_type()) {
            return Err(Error::Unsupported);
        }
        let data = self.data();
        let ip = ipv4::Packet::new_checked_header(data)?;
        let header_len = usize::from(ip.header_len());
        Ok(Quoted {
            src: ip.src_addr().into(),
            dst: ip.dst_addr().into(),
            protocol: ip.protocol(),
            header: &data[..header_len],
            transport: ip.payload(),
            non_first_fragment: ip.frag_offset() != 0,
        })
    }

    /// The IPv6 packet an ICMPv6 error quotes. `Unsupported` if this is not
    /// an error message; the quoted header's own errors otherwise.
    pub fn quoted_v6(&self) -> Result<Quoted<'a>> {
        if !v6::is_error(self.msg_type()) {
            return Err(Error::Unsupported);
        }
        let data = self.data();
        let ip = ipv6::Packet::new_checked_header(data)?;
        let upper = ip.upper_layer()?;
        let end = ip.as_bytes().len();
        Ok(Quoted {
            src: ip.src_addr().into(),
            dst: ip.dst_addr().into(),
            protocol: upper.protocol,
            header: &data[..upper.offset],
            transport: &data[upper.offset..end],
            non_first_fragment: upper.non_first_fragment,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_msg_type(&mut self, msg_type: u8) {
        self.buffer.as_mut()[field::TYPE] = msg_type;
    }

    pub fn set_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }

    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_rest_of_header(&mut self, value: u32) {
        self.buffer.as_mut()[field::REST_OF_HEADER].copy_from_slice(&value.to_be_bytes());
    }

    pub fn fill_checksum_v4(&mut self) {
        self.set_checksum(0);
        let sum = checksum::data(self.buffer.as_ref());
        self.set_checksum(checksum::finish(sum));
    }

    pub fn fill_checksum_v6(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let sum = self.sum_v6(src, dst);
        self.set_checksum(checksum::finish(sum));
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }
}

fn read_u16(bytes: &[u8], range: Field) -> u16 {
    let b = &bytes[range];
    u16::from_be_bytes([b[0], b[1]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip::fixtures::{BCM_DNS_REPLY, DHCPV6_SOLICIT, HTTP_SYN, MLD_REPORT, PING6_REQUEST};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v6_addrs(ip: &[u8]) -> (IpAddr, IpAddr) {
        let packet = ipv6::Packet::new_checked(ip).unwrap();
        (packet.src_addr().into(), packet.dst_addr().into())
    }

    #[test]
    fn deconstruct_echo_request() {
        let (src, dst) = v6_addrs(&PING6_REQUEST);
        let packet = Packet::new_checked(&PING6_REQUEST[40..]).unwrap();
        assert_eq!(packet.msg_type(), v6::ECHO_REQUEST);
        assert_eq!(packet.code(), 0);
        assert_eq!(packet.checksum(), 0xda44);
        assert_eq!(packet.echo_ident(), 0x1f97);
        assert_eq!(packet.echo_seq(), 0);
        assert_eq!(packet.rest_of_header(), 0x1f97_0000);
        assert_eq!(packet.data(), &PING6_REQUEST[48..]);
        assert!(packet.verify_checksum_v6(&src, &dst));
        // Swapping the addresses keeps the sum; another address does not.
        assert!(packet.verify_checksum_v6(&dst, &src));
        assert!(!packet.verify_checksum_v6(&src, &src));
        assert_eq!(packet.quoted_v6(), Err(Error::Unsupported));
    }

    #[test]
    fn mld_report_behind_hop_by_hop_verifies() {
        let (src, dst) = v6_addrs(&MLD_REPORT);
        let packet = Packet::new_checked(&MLD_REPORT[48..]).unwrap();
        assert_eq!(packet.msg_type(), v6::MLDV2_REPORT);
        assert!(packet.verify_checksum_v6(&src, &dst));
    }

    /// An ICMP error quoting the first `quote` bytes of `original`; built
    /// here (no capture has an ICMP error) around captured packets.
    pub(crate) fn icmp_error(msg_type: u8, code: u8, original: &[u8], quote: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_LEN];
        bytes.extend_from_slice(&original[..quote]);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_msg_type(msg_type);
        packet.set_code(code);
        packet.set_rest_of_header(0);
        bytes
    }

    #[test]
    fn construct_and_quote_v4_port_unreachable() {
        // 9.182.64.0 answers the DNS reply of bcm-li.pcap frame 4 with port
        // unreachable, quoting IP header + 8 bytes as RFC 792 requires.
        let mut bytes = icmp_error(v4::DEST_UNREACHABLE, 3, &BCM_DNS_REPLY, 28);
        Packet::new_unchecked(&mut bytes[..]).fill_checksum_v4();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum_v4());
        let quoted = packet.quoted_v4().unwrap();
        assert_eq!(quoted.src, IpAddr::from(Ipv4Addr::new(217, 89, 31, 49)));
        assert_eq!(quoted.dst, IpAddr::from(Ipv4Addr::new(9, 182, 64, 0)));
        assert_eq!(quoted.protocol, protocol::UDP);
        assert_eq!(quoted.header, &BCM_DNS_REPLY[..20]);
        assert_eq!(quoted.transport, &BCM_DNS_REPLY[20..28]);
        assert_eq!(quoted.ports(), Some((53, 36264)));
        assert_eq!(quoted.tcp_seq(), None);
        assert!(packet.quoted_v6().is_err());
    }

    #[test]
    fn quoted_tcp_gives_ports_and_sequence() {
        let bytes = icmp_error(v4::TIME_EXCEEDED, 0, &HTTP_SYN, 28);
        let quoted = Packet::new_checked(&bytes[..])
            .unwrap()
            .quoted_v4()
            .unwrap();
        assert_eq!(quoted.ports(), Some((57013, 80)));
        assert_eq!(quoted.tcp_seq(), Some(0xd4bd7654));
        // A quote cut inside the transport header yields no ports.
        let bytes = icmp_error(v4::TIME_EXCEEDED, 0, &HTTP_SYN, 23);
        let quoted = Packet::new_checked(&bytes[..])
            .unwrap()
            .quoted_v4()
            .unwrap();
        assert_eq!(quoted.ports(), None);
        // A quote cut inside the IP header is an error.
        let bytes = icmp_error(v4::TIME_EXCEEDED, 0, &HTTP_SYN, 19);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.quoted_v4(), Err(Error::Truncated));
    }

    #[test]
    fn construct_and_quote_v6_packet_too_big() {
        let (src, dst) = v6_addrs(&DHCPV6_SOLICIT);
        let mut bytes = icmp_error(v6::PACKET_TOO_BIG, 0, &DHCPV6_SOLICIT, 60);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_rest_of_header(1280);
        // Sent by the router back to the Solicit's source.
        packet.fill_checksum_v6(&dst, &src);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum_v6(&dst, &src));
        assert_eq!(packet.rest_of_header(), 1280);
        let quoted = packet.quoted_v6().unwrap();
        assert_eq!(quoted.src, src);
        assert_eq!(quoted.dst, dst);
        assert_eq!(quoted.protocol, protocol::UDP);
        assert_eq!(quoted.header.len(), 40);
        assert_eq!(quoted.transport, &DHCPV6_SOLICIT[40..60]);
        assert_eq!(quoted.ports(), Some((546, 547)));
        assert!(packet.quoted_v4().is_err());
    }

    #[test]
    fn quoted_v6_walks_extension_headers() {
        // The MLD report quoted whole: the walk skips its Hop-by-Hop header.
        let bytes = icmp_error(v6::PARAM_PROBLEM, 1, &MLD_REPORT, MLD_REPORT.len());
        let quoted = Packet::new_checked(&bytes[..])
            .unwrap()
            .quoted_v6()
            .unwrap();
        assert_eq!(quoted.protocol, protocol::ICMPV6);
        assert_eq!(quoted.header.len(), 48);
        assert_eq!(quoted.ports(), None);
        let unspecified: IpAddr = Ipv6Addr::UNSPECIFIED.into();
        assert_ne!(quoted.src, unspecified);
    }

    #[test]
    fn error_types() {
        for t in [3, 4, 11, 12] {
            assert!(v4::is_error(t));
        }
        for t in [0, 5, 8, 13] {
            assert!(!v4::is_error(t));
        }
        for t in [1, 2, 3, 4] {
            assert!(v6::is_error(t));
        }
        for t in [0, 128, 129, 133, 143] {
            assert!(!v6::is_error(t));
        }
    }

    #[test]
    fn short_messages_are_errors() {
        assert_eq!(
            Packet::new_checked(&PING6_REQUEST[40..47]).err(),
            Some(Error::Truncated)
        );
        assert!(Packet::new_checked(&PING6_REQUEST[40..48]).is_ok());
    }
}
