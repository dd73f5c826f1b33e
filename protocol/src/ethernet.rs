//! Ethernet II framing with up to two VLAN tags (IEEE 802.1Q, 802.1ad QinQ).
//!
//! `dst (6) | src (6) | [tpid (2) | tci (2)]{0,2} | ethertype (2) | payload`.
//!
//! Access networks commonly put PPPoE inside one or two VLAN tags (an S-tag
//! per access node and a C-tag per line), so [`Repr::parse`] walks the tags
//! and reports where the payload starts. More than two tags is not something
//! a dialer meets and is reported as [`Error::Unsupported`].

use core::fmt;
use core::str::FromStr;

use crate::{Error, Field, Result};

mod field {
    use super::Field;
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// Size of an untagged Ethernet header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// Size of one VLAN tag (TPID and TCI).
pub const VLAN_TAG_LEN: usize = 4;

/// EtherType values a PPPoE dialer meets.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    /// IEEE 802.1Q customer tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service tag.
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard service tag still used by some access equipment.
    pub const QINQ_LEGACY: u16 = 0x9100;
    pub const PPPOE_DISCOVERY: u16 = 0x8863;
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// Raw PPP over Ethernet (RFC 7042), seen in some test captures.
    pub const PPP: u16 = 0x880b;

    /// Whether `value` introduces a VLAN tag rather than a payload.
    pub const fn is_vlan_tpid(value: u16) -> bool {
        matches!(value, VLAN | QINQ | QINQ_LEGACY)
    }
}

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Reads an address from the first six bytes of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<MacAddr> {
        match bytes.get(..6) {
            Some(&[a, b, c, d, e, f]) => Ok(MacAddr([a, b, c, d, e, f])),
            _ => Err(Error::Truncated),
        }
    }

    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    pub fn is_broadcast(&self) -> bool {
        *self == MacAddr::BROADCAST
    }

    /// The I/G bit: set for group (multicast and broadcast) addresses.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseMacAddrError;

impl fmt::Display for ParseMacAddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid MAC address: expected six hex octets separated by ':' or '-'")
    }
}

impl std::error::Error for ParseMacAddrError {}

impl FromStr for MacAddr {
    type Err = ParseMacAddrError;

    /// Accepts `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff` (one separator
    /// throughout, one or two hex digits per octet, either case).
    fn from_str(s: &str) -> core::result::Result<MacAddr, ParseMacAddrError> {
        let separator = if s.contains(':') { ':' } else { '-' };
        let mut octets = [0u8; 6];
        let mut groups = s.split(separator);
        for octet in &mut octets {
            let group = groups.next().ok_or(ParseMacAddrError)?;
            let well_formed =
                matches!(group.len(), 1 | 2) && group.bytes().all(|byte| byte.is_ascii_hexdigit());
            if !well_formed {
                return Err(ParseMacAddrError);
            }
            *octet = u8::from_str_radix(group, 16).map_err(|_| ParseMacAddrError)?;
        }
        if groups.next().is_some() {
            return Err(ParseMacAddrError);
        }
        Ok(MacAddr(octets))
    }
}

/// One VLAN tag: the TPID that introduced it and the tag control information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanTag {
    pub tpid: u16,
    pub tci: u16,
}

impl VlanTag {
    /// A tag with priority 0, DEI clear and the low 12 bits of `vid`.
    pub const fn new(tpid: u16, vid: u16) -> VlanTag {
        VlanTag {
            tpid,
            tci: vid & 0x0fff,
        }
    }

    /// VLAN identifier (12 bits).
    pub const fn vid(&self) -> u16 {
        self.tci & 0x0fff
    }

    /// Priority code point (3 bits).
    pub const fn pcp(&self) -> u8 {
        (self.tci >> 13) as u8
    }

    /// Drop eligible indicator.
    pub const fn dei(&self) -> bool {
        self.tci & 0x1000 != 0
    }
}

/// Up to two VLAN tags, outermost first. Fixed-size so that frames can be
/// described on the data path without allocating.
#[derive(Clone, Copy, Default)]
pub struct VlanStack {
    tags: [VlanTag; VlanStack::MAX],
    len: u8,
}

impl VlanStack {
    /// The most tags a stack holds.
    pub const MAX: usize = 2;

    pub const fn new() -> VlanStack {
        VlanStack {
            tags: [VlanTag { tpid: 0, tci: 0 }; VlanStack::MAX],
            len: 0,
        }
    }

    /// Builds a stack from outermost-first tags; more than two is Unsupported.
    pub fn from_slice(tags: &[VlanTag]) -> Result<VlanStack> {
        let mut stack = VlanStack::new();
        for tag in tags {
            stack.push(*tag)?;
        }
        Ok(stack)
    }

    /// Adds an inner tag; a third tag is Unsupported.
    pub fn push(&mut self, tag: VlanTag) -> Result<()> {
        let slot = self
            .tags
            .get_mut(usize::from(self.len))
            .ok_or(Error::Unsupported)?;
        *slot = tag;
        self.len += 1;
        Ok(())
    }

    pub fn as_slice(&self) -> &[VlanTag] {
        // `len` never exceeds MAX: `push` is the only writer.
        &self.tags[..usize::from(self.len)]
    }

    pub fn iter(&self) -> core::slice::Iter<'_, VlanTag> {
        self.as_slice().iter()
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the tags occupy on the wire.
    pub fn wire_len(&self) -> usize {
        self.len() * VLAN_TAG_LEN
    }
}

// Equality and hashing look at the tags in use only, not at stale slots.
impl PartialEq for VlanStack {
    fn eq(&self, other: &VlanStack) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for VlanStack {}

impl core::hash::Hash for VlanStack {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl fmt::Debug for VlanStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'s> IntoIterator for &'s VlanStack {
    type Item = &'s VlanTag;
    type IntoIter = core::slice::Iter<'s, VlanTag>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A read-only or read-write view of an Ethernet header. It sees the outer
/// EtherType only (which is a TPID when the frame is tagged); use [`Repr`]
/// to walk VLAN tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checks; getters may panic on short buffers.
    /// Use [`Frame::new_checked`] for untrusted bytes.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer and checks that the untagged header fits.
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Frame::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
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

    pub fn dst_addr(&self) -> MacAddr {
        read_mac(&self.buffer.as_ref()[field::DESTINATION])
    }

    pub fn src_addr(&self) -> MacAddr {
        read_mac(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The EtherType at bytes 12..14 (a TPID if the frame is tagged).
    pub fn ethertype(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        u16::from_be_bytes([b[0], b[1]])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// Everything after the outer EtherType.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    pub fn set_ethertype(&mut self, value: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&value.to_be_bytes());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

fn read_mac(bytes: &[u8]) -> MacAddr {
    let mut addr = [0u8; 6];
    addr.copy_from_slice(bytes);
    MacAddr(addr)
}

fn read_u16(bytes: &[u8], at: usize) -> Result<u16> {
    match bytes.get(at..at.checked_add(2).ok_or(Error::Truncated)?) {
        Some(&[high, low]) => Ok(u16::from_be_bytes([high, low])),
        _ => Err(Error::Truncated),
    }
}

/// A parsed Ethernet header: addresses, VLAN tags (outermost first) and the
/// inner EtherType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub vlans: VlanStack,
    pub ethertype: u16,
}

impl Repr {
    /// Parses the header of untrusted bytes, walking 802.1Q (0x8100) and
    /// 802.1ad (0x88a8, or the older 0x9100) tags. Returns the header and
    /// the offset of the payload. A third tag is Unsupported.
    pub fn parse(bytes: &[u8]) -> Result<(Repr, usize)> {
        let frame = Frame::new_checked(bytes)?;
        let mut vlans = VlanStack::new();
        let mut at = field::ETHERTYPE.start;
        let mut ethertype = frame.ethertype();
        while ethertype::is_vlan_tpid(ethertype) {
            let tci = read_u16(bytes, at + 2)?;
            vlans.push(VlanTag {
                tpid: ethertype,
                tci,
            })?;
            at += VLAN_TAG_LEN;
            ethertype = read_u16(bytes, at)?;
        }
        let repr = Repr {
            dst: frame.dst_addr(),
            src: frame.src_addr(),
            vlans,
            ethertype,
        };
        Ok((repr, at + 2))
    }

    /// Header length including the VLAN tags.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.vlans.wire_len()
    }

    /// Bytes `emit` writes (the header only; the payload is the caller's).
    pub fn buffer_len(&self) -> usize {
        self.header_len()
    }

    /// Writes the header, tags included, at the start of `buf`.
    /// Panics if `buf` is shorter than [`Repr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        let header = &mut buf[..self.header_len()];
        header[field::DESTINATION].copy_from_slice(&self.dst.0);
        header[field::SOURCE].copy_from_slice(&self.src.0);
        let mut at = field::ETHERTYPE.start;
        for tag in &self.vlans {
            header[at..at + 2].copy_from_slice(&tag.tpid.to_be_bytes());
            header[at + 2..at + 4].copy_from_slice(&tag.tci.to_be_bytes());
            at += VLAN_TAG_LEN;
        }
        header[at..at + 2].copy_from_slice(&self.ethertype.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(hex_text: &str) -> Vec<u8> {
        hex::decode(hex_text).unwrap()
    }

    // captures/public/zeek/pppoe.pcap frame 1: the PADI, untagged, to broadcast.
    const PADI_FRAME: &str = "ffffffffffffcc050e880000886311090000000c0101000001030004641385180000\
        0000000000000000000000000000000000000000000000000000";

    // captures/public/zeek/pppoe-over-qinq.pcap frame 3 (first 32 bytes):
    // two 0x8100 tags, VIDs 3704 and 2474, then PPPoE session.
    const QINQ_FRAME: &str = "00000000000100000000000081000e78810009aa886411000f07002a00214500";

    #[test]
    fn mac_display_and_parse() {
        let mac = MacAddr([0xcc, 0x05, 0x0e, 0x88, 0x00, 0x00]);
        assert_eq!(mac.to_string(), "cc:05:0e:88:00:00");
        assert_eq!(format!("{mac:?}"), "cc:05:0e:88:00:00");
        assert_eq!("cc:05:0e:88:00:00".parse(), Ok(mac));
        assert_eq!("CC-05-0E-88-00-00".parse(), Ok(mac));
        assert_eq!("cc:5:e:88:0:0".parse(), Ok(mac));
        for bad in [
            "",
            "cc:05:0e:88:00",
            "cc:05:0e:88:00:00:11",
            "cc:05-0e:88:00:00",
            "cc:05:0e:88:00:0g",
            "cc:005:0e:88:00:00",
            "cc:+5:0e:88:00:00",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(ParseMacAddrError), "{bad}");
        }
    }

    #[test]
    fn mac_classes() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        let ipv6_mcast = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
        assert!(ipv6_mcast.is_multicast() && !ipv6_mcast.is_broadcast());
        let unicast = MacAddr([0xca, 0x01, 0x0e, 0x88, 0x00, 0x06]);
        assert!(unicast.is_unicast() && !unicast.is_multicast());
        assert_eq!(unicast.as_bytes(), &[0xca, 0x01, 0x0e, 0x88, 0x00, 0x06]);
        assert_eq!(MacAddr::from_bytes(&[1, 2, 3, 4, 5]), Err(Error::Truncated));
    }

    #[test]
    fn deconstruct_untagged() {
        let frame_bytes = bytes(PADI_FRAME);
        let frame = Frame::new_checked(&frame_bytes[..]).unwrap();
        assert_eq!(frame.dst_addr(), MacAddr::BROADCAST);
        assert_eq!(frame.src_addr(), "cc:05:0e:88:00:00".parse().unwrap());
        assert_eq!(frame.ethertype(), ethertype::PPPOE_DISCOVERY);
        assert_eq!(frame.payload()[..2], [0x11, 0x09]);

        let (repr, offset) = Repr::parse(&frame_bytes).unwrap();
        assert_eq!(offset, 14);
        assert!(repr.vlans.is_empty());
        assert_eq!(repr.ethertype, ethertype::PPPOE_DISCOVERY);
        assert_eq!(repr.header_len(), 14);
    }

    #[test]
    fn deconstruct_qinq() {
        let frame_bytes = bytes(QINQ_FRAME);
        let (repr, offset) = Repr::parse(&frame_bytes).unwrap();
        assert_eq!(offset, 22);
        assert_eq!(repr.dst, MacAddr([0, 0, 0, 0, 0, 1]));
        assert_eq!(repr.src, MacAddr([0; 6]));
        assert_eq!(repr.ethertype, ethertype::PPPOE_SESSION);
        assert_eq!(repr.vlans.len(), 2);
        let vids: Vec<u16> = repr.vlans.iter().map(VlanTag::vid).collect();
        assert_eq!(vids, [3704, 2474]);
        assert!(repr.vlans.iter().all(|tag| tag.tpid == ethertype::VLAN));
        assert!(repr.vlans.iter().all(|tag| tag.pcp() == 0 && !tag.dei()));
        assert_eq!(repr.header_len(), 22);
    }

    #[test]
    fn construct_and_emit_round_trip() {
        for fixture in [PADI_FRAME, QINQ_FRAME] {
            let frame_bytes = bytes(fixture);
            let (repr, offset) = Repr::parse(&frame_bytes).unwrap();
            let mut out = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut out);
            assert_eq!(out, frame_bytes[..offset]);
        }

        let mut out = [0u8; 14];
        let mut frame = Frame::new_unchecked(&mut out[..]);
        frame.set_dst_addr(MacAddr::BROADCAST);
        frame.set_src_addr(MacAddr([0xcc, 0x05, 0x0e, 0x88, 0x00, 0x00]));
        frame.set_ethertype(ethertype::PPPOE_DISCOVERY);
        assert_eq!(out[..], bytes(PADI_FRAME)[..14]);
    }

    #[test]
    fn tag_fields() {
        let tag = VlanTag {
            tpid: ethertype::QINQ,
            tci: 0xb00a,
        };
        assert_eq!((tag.pcp(), tag.dei(), tag.vid()), (5, true, 10));
        assert_eq!(VlanTag::new(ethertype::VLAN, 0xf123).vid(), 0x123);
    }

    #[test]
    fn stack_holds_two() {
        let mut stack = VlanStack::new();
        assert!(stack.push(VlanTag::new(ethertype::QINQ, 10)).is_ok());
        assert!(stack.push(VlanTag::new(ethertype::VLAN, 20)).is_ok());
        assert_eq!(
            stack.push(VlanTag::new(ethertype::VLAN, 30)),
            Err(Error::Unsupported)
        );
        assert_eq!(stack.len(), 2);
        assert_eq!(stack, VlanStack::from_slice(stack.as_slice()).unwrap());
        assert_ne!(stack, VlanStack::new());
    }

    #[test]
    fn bad_frames() {
        let qinq = bytes(QINQ_FRAME);
        assert_eq!(Repr::parse(&qinq[..13]), Err(Error::Truncated));
        // Cut inside the first tag, before the inner EtherType, inside the second tag.
        for cut in [15, 17, 19, 21] {
            assert_eq!(Repr::parse(&qinq[..cut]), Err(Error::Truncated), "{cut}");
        }
        // A third tag (built: the inner EtherType of the QinQ frame replaced by 0x88a8).
        let mut triple = qinq.clone();
        triple[20..22].copy_from_slice(&ethertype::QINQ.to_be_bytes());
        assert_eq!(Repr::parse(&triple), Err(Error::Unsupported));
        // 0x9100 counts as a tag too.
        let mut legacy = qinq;
        legacy[12..14].copy_from_slice(&ethertype::QINQ_LEGACY.to_be_bytes());
        assert_eq!(
            Repr::parse(&legacy).unwrap().0.vlans.as_slice()[0].tpid,
            0x9100
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok((repr, offset)) = Repr::parse(&data) {
                prop_assert!(offset <= data.len());
                prop_assert_eq!(offset, repr.header_len());
            }
        }

        #[test]
        fn emit_then_parse(
            dst in any::<[u8; 6]>(),
            src in any::<[u8; 6]>(),
            tags in proptest::collection::vec((prop_oneof![Just(0x8100u16), Just(0x88a8), Just(0x9100)], any::<u16>()), 0..=2),
            ethertype in any::<u16>().prop_filter("not a TPID", |t| !ethertype::is_vlan_tpid(*t)),
        ) {
            let tags: Vec<VlanTag> = tags.into_iter().map(|(tpid, tci)| VlanTag { tpid, tci }).collect();
            let repr = Repr { dst: MacAddr(dst), src: MacAddr(src), vlans: VlanStack::from_slice(&tags).unwrap(), ethertype };
            let mut out = vec![0; repr.buffer_len()];
            repr.emit(&mut out);
            prop_assert_eq!(Repr::parse(&out), Ok((repr, repr.header_len())));
            let text = repr.src.to_string();
            prop_assert_eq!(text.parse::<MacAddr>(), Ok(repr.src));
        }
    }
}
