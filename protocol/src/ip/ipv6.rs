//! The IPv6 header (RFC 8200) and the walk over the extension headers that
//! stand between it and the transport header.
//!
//! The payload length field, not the buffer, bounds the packet: bytes after
//! it are link padding. Jumbograms (payload length 0 with a Jumbo Payload
//! option) cannot cross a PPP link and are read as empty payloads.

use super::protocol;
use crate::{Error, Field, Result};
use std::net::Ipv6Addr;

mod field {
    use super::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Size of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Most extension headers [`Packet::upper_layer`] walks before giving up.
/// Real traffic carries one or two; the bound keeps the per-packet cost fixed.
pub const MAX_EXTENSION_HEADERS: usize = 4;

/// Size of the Fragment extension header (RFC 8200 §4.5).
const FRAGMENT_HEADER_LEN: usize = 8;

/// Where the upper-layer header of a packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol number (6, 17, 58, ...; 59 for none).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// The packet carries a Fragment header.
    pub fragment: bool,
    /// The packet is a fragment other than the first: it holds no
    /// upper-layer header, `offset` is where its fragment data starts and
    /// callers must not look for ports there.
    pub non_first_fragment: bool,
}

/// A read-only or read-write view of an IPv6 packet.
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

    /// Wraps a buffer and checks version and payload length.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Like [`Packet::new_checked`] but lets the payload length exceed the
    /// buffer: for a packet quoted in an ICMPv6 error, whose tail is cut off.
    pub fn new_checked_header(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_header_len()?;
        Ok(packet)
    }

    /// Ensures the fixed header is present and the version is 6.
    pub fn check_header_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::Malformed);
        }
        Ok(())
    }

    /// [`Packet::check_header_len`], and the payload length within the buffer.
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        if HEADER_LEN + usize::from(self.payload_len()) > self.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn first_word(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VER_TC_FLOW];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    pub fn version(&self) -> u8 {
        (self.first_word() >> 28) as u8
    }

    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> 20) as u8
    }

    pub fn flow_label(&self) -> u32 {
        self.first_word() & 0x000f_ffff
    }

    pub fn payload_len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::PAYLOAD_LEN];
        u16::from_be_bytes([b[0], b[1]])
    }

    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src_addr(&self) -> Ipv6Addr {
        read_addr(self.buffer.as_ref(), field::SRC_ADDR)
    }

    pub fn dst_addr(&self) -> Ipv6Addr {
        read_addr(self.buffer.as_ref(), field::DST_ADDR)
    }

    /// Header plus payload length, which may exceed `u16`.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// End of the packet: the payload length, or the buffer's end for a view
    /// made with [`Packet::new_checked_header`].
    fn end(&self) -> usize {
        self.total_len().min(self.buffer.as_ref().len())
    }

    /// Skips Hop-by-Hop, Routing, Destination Options and Fragment headers,
    /// at most [`MAX_EXTENSION_HEADERS`] of them, to the upper-layer header.
    ///
    /// A header that overruns the packet is `Truncated`; a chain longer than
    /// the bound is `Unsupported`. Other protocols (AH, ESP, No Next Header,
    /// ...) end the walk and are reported as the upper layer.
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        let bytes = &self.buffer.as_ref()[..self.end()];
        let mut next = self.next_header();
        let mut offset = HEADER_LEN;
        let mut fragment = false;
        for _ in 0..MAX_EXTENSION_HEADERS {
            let is_fragment_header = next == protocol::IPV6_FRAGMENT;
            let header_len = match next {
                protocol::HOP_BY_HOP
                | protocol::IPV6_ROUTING
                | protocol::IPV6_DESTINATION_OPTIONS => {
                    // Hdr Ext Len counts 8-byte units beyond the first.
                    let units = *bytes.get(offset + 1).ok_or(Error::Truncated)?;
                    (usize::from(units) + 1) * 8
                }
                protocol::IPV6_FRAGMENT => FRAGMENT_HEADER_LEN,
                _ => {
                    return Ok(UpperLayer {
                        protocol: next,
                        offset,
                        fragment,
                        non_first_fragment: false,
                    });
                }
            };
            let header = bytes
                .get(offset..offset + header_len)
                .ok_or(Error::Truncated)?;
            next = header[0];
            offset += header_len;
            if is_fragment_header {
                fragment = true;
                // Fragment Offset is the high 13 bits of bytes 2..4.
                if u16::from_be_bytes([header[2], header[3]]) & 0xfff8 != 0 {
                    return Ok(UpperLayer {
                        protocol: next,
                        offset,
                        fragment,
                        non_first_fragment: true,
                    });
                }
            }
        }
        // The bound is spent: accept what follows only if it is not yet
        // another extension header.
        match next {
            protocol::HOP_BY_HOP
            | protocol::IPV6_ROUTING
            | protocol::IPV6_DESTINATION_OPTIONS
            | protocol::IPV6_FRAGMENT => Err(Error::Unsupported),
            _ => Ok(UpperLayer {
                protocol: next,
                offset,
                fragment,
                non_first_fragment: false,
            }),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload (extension headers included), bounded by the payload length.
    pub fn payload(&self) -> &'a [u8] {
        let end = self.end();
        &self.buffer.as_ref()[HEADER_LEN..end]
    }

    /// The whole packet as the payload length bounds it.
    pub fn as_bytes(&self) -> &'a [u8] {
        let end = self.end();
        &self.buffer.as_ref()[..end]
    }
}
impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 6 with the given traffic class and flow label.
    pub fn set_version_class_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let word = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&word.to_be_bytes());
    }

    pub fn set_payload_len(&mut self, payload_len: u16) {
        self.buffer.as_mut()[field::PAYLOAD_LEN].copy_from_slice(&payload_len.to_be_bytes());
    }

    pub fn set_next_header(&mut self, next_header: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = next_header;
    }

    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.end();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

fn read_addr(bytes: &[u8], range: Field) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&bytes[range]);
    Ipv6Addr::from(octets)
}

/// The fixed IPv6 header fields a sender chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    pub next_header: u8,
    pub hop_limit: u8,
    pub payload_len: usize,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            payload_len: usize::from(packet.payload_len()),
        })
    }

    /// Header bytes emitted.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header with traffic class and flow label 0. A payload
    /// too long for the 16-bit field is recorded as the maximum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_version_class_flow(0, 0);
        packet.set_payload_len(self.payload_len.min(usize::from(u16::MAX)) as u16);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ip::fixtures::{DHCPV6_SOLICIT, MLD_REPORT};

    fn addr(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&DHCPV6_SOLICIT[..]).unwrap();
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.traffic_class(), 0xe0);
        assert_eq!(packet.flow_label(), 0);
        assert_eq!(packet.payload_len(), 58);
        assert_eq!(packet.next_header(), protocol::UDP);
        assert_eq!(packet.hop_limit(), 255);
        assert_eq!(packet.src_addr(), addr("fe80::ce05:eff:fe88:0"));
        assert_eq!(packet.dst_addr(), addr("ff02::1:2"));
        assert_eq!(packet.total_len(), 98);
        assert_eq!(packet.payload(), &DHCPV6_SOLICIT[40..]);
        let upper = packet.upper_layer().unwrap();
        assert_eq!(
            upper,
            UpperLayer {
                protocol: 17,
                offset: 40,
                fragment: false,
                non_first_fragment: false
            }
        );
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 98];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_version_class_flow(0xe0, 0);
        packet.set_payload_len(58);
        packet.set_next_header(17);
        packet.set_hop_limit(255);
        packet.set_src_addr(addr("fe80::ce05:eff:fe88:0"));
        packet.set_dst_addr(addr("ff02::1:2"));
        packet.payload_mut().copy_from_slice(&DHCPV6_SOLICIT[40..]);
        assert_eq!(bytes, DHCPV6_SOLICIT);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let packet = Packet::new_checked(&MLD_REPORT[..]).unwrap();
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.next_header, protocol::HOP_BY_HOP);
        assert_eq!(repr.payload_len, 36);
        let mut bytes = MLD_REPORT;
        bytes[..40].fill(0);
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        // Emit writes traffic class 0; the capture has 0xe0.
        bytes[0..2].copy_from_slice(&[0x6e, 0x00]);
        assert_eq!(bytes, MLD_REPORT);
    }

    #[test]
    fn hop_by_hop_is_skipped() {
        let packet = Packet::new_checked(&MLD_REPORT[..]).unwrap();
        let upper = packet.upper_layer().unwrap();
        assert_eq!(
            upper,
            UpperLayer {
                protocol: 58,
                offset: 48,
                fragment: false,
                non_first_fragment: false
            }
        );
    }

    /// Prepends the given extension headers (built here, no capture has
    /// them) to the UDP datagram of `DHCPV6_SOLICIT`.
    fn with_extensions(headers: &[(u8, &[u8])]) -> Vec<u8> {
        let mut bytes = DHCPV6_SOLICIT[..40].to_vec();
        let udp = &DHCPV6_SOLICIT[40..];
        bytes[6] = headers.first().map_or(17, |h| h.0);
        for (i, (_, body)) in headers.iter().enumerate() {
            let next = headers.get(i + 1).map_or(17, |h| h.0);
            bytes.push(next);
            bytes.extend_from_slice(body);
        }
        bytes.extend_from_slice(udp);
        let payload_len = (bytes.len() - 40) as u16;
        bytes[4..6].copy_from_slice(&payload_len.to_be_bytes());
        bytes
    }

    #[test]
    fn extension_chain_is_walked() {
        // Hop-by-Hop (8 bytes, Hdr Ext Len 0, PadN), Destination Options
        // (16 bytes, Hdr Ext Len 1), Routing type 0 segments-left 0 (8 bytes).
        let hop: &[u8] = &[0, 1, 4, 0, 0, 0, 0];
        let dst: &[u8] = &[1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let rt: &[u8] = &[0, 0, 0, 0, 0, 0, 0];
        let bytes = with_extensions(&[(0, hop), (60, dst), (43, rt)]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let upper = packet.upper_layer().unwrap();
        assert_eq!(upper.protocol, 17);
        assert_eq!(upper.offset, 40 + 8 + 16 + 8);
        assert_eq!(
            &bytes[upper.offset..upper.offset + 4],
            &[0x02, 0x22, 0x02, 0x23]
        );
    }

    #[test]
    fn fragments_are_reported() {
        // First fragment (offset 0, M set): the UDP header follows.
        let first = with_extensions(&[(44, &[0, 0x00, 0x01, 0, 0, 0, 1])]);
        let upper = Packet::new_checked(&first[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(
            upper,
            UpperLayer {
                protocol: 17,
                offset: 48,
                fragment: true,
                non_first_fragment: false
            }
        );
        // Offset 1448 bytes = 181 units: data, not a header, follows.
        let later = with_extensions(&[(44, &[0, 0x05, 0xa8, 0, 0, 0, 1])]);
        let upper = Packet::new_checked(&later[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(
            upper,
            UpperLayer {
                protocol: 17,
                offset: 48,
                fragment: true,
                non_first_fragment: true
            }
        );
    }

    #[test]
    fn long_or_broken_chains_are_errors() {
        let hop: &[u8] = &[0, 1, 4, 0, 0, 0, 0];
        let chain: Vec<(u8, &[u8])> = vec![(0, hop), (60, hop), (60, hop), (60, hop)];
        let ok = with_extensions(&chain);
        assert_eq!(
            Packet::new_checked(&ok[..])
                .unwrap()
                .upper_layer()
                .unwrap()
                .offset,
            72
        );
        let mut too_long = chain.clone();
        too_long.push((60, hop));
        let bytes = with_extensions(&too_long);
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap().upper_layer(),
            Err(Error::Unsupported)
        );
        // A Destination Options header claiming 2048 bytes overruns the packet.
        let mut bytes = with_extensions(&[(60, hop)]);
        bytes[41] = 255;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap().upper_layer(),
            Err(Error::Truncated)
        );
        // An extension header cut off right after the fixed header.
        let mut bytes = DHCPV6_SOLICIT[..40].to_vec();
        bytes[4..6].copy_from_slice(&[0, 0]);
        bytes[6] = 0;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap().upper_layer(),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert_eq!(
            Packet::new_checked(&DHCPV6_SOLICIT[..39]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&DHCPV6_SOLICIT[..97]).err(),
            Some(Error::Truncated)
        );
        let quoted = Packet::new_checked_header(&DHCPV6_SOLICIT[..48]).unwrap();
        assert_eq!(quoted.payload(), &DHCPV6_SOLICIT[40..48]);
        assert_eq!(quoted.upper_layer().unwrap().offset, 40);
        let mut bad = DHCPV6_SOLICIT;
        bad[0] = 0x4e;
        assert_eq!(Packet::new_checked(&bad[..]).err(), Some(Error::Malformed));
    }
}
