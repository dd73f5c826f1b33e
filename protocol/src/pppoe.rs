//! The PPPoE header and discovery tags (RFC 2516, RFC 4638 for
//! PPP-Max-Payload, RFC 4937 for the PADM/PADN codes), and the Broadband
//! Forum TR-101 sub-options an intermediate agent puts in a Vendor-Specific tag.
//!
//! `ver (4) | type (4) | code (1) | session id (2) | length (2) | payload (length)`
//!
//! The length field, not the buffer, bounds the payload: Ethernet pads short
//! frames to 60 bytes and the padding is not part of the packet.
//!
//! [`Packet::new_checked`] checks lengths only, so that a view can still show
//! a packet with a foreign version; [`DiscoveryRepr::parse`] (and
//! [`crate::encap::decapsulate`] for session frames) reject version/type other than
//! 1/1 as [`Error::Malformed`].

use std::borrow::Cow;
use std::fmt;

use crate::ethernet::{self, MacAddr, VlanStack};
use crate::{Error, Field, Result};

mod field {
    use super::Field;
    pub const VER_TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const SESSION_ID: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const PAYLOAD: usize = 6;
}

/// Size of the PPPoE header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// The only version and type RFC 2516 defines, packed as on the wire.
pub const VER_TYPE: u8 = 0x11;

/// Size of a tag's type and length fields.
pub const TAG_HEADER_LEN: usize = 4;

/// PPPoE codes (RFC 2516 §5, RFC 4937 for PADM and PADN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    Session,
    Padi,
    Pado,
    Padr,
    Pads,
    Padt,
    Padm,
    Padn,
    Unknown(u8),
}

impl From<u8> for Code {
    fn from(value: u8) -> Self {
        match value {
            0x00 => Code::Session,
            0x09 => Code::Padi,
            0x07 => Code::Pado,
            0x19 => Code::Padr,
            0x65 => Code::Pads,
            0xa7 => Code::Padt,
            0xd3 => Code::Padm,
            0xd4 => Code::Padn,
            other => Code::Unknown(other),
        }
    }
}

impl From<Code> for u8 {
    fn from(code: Code) -> u8 {
        match code {
            Code::Session => 0x00,
            Code::Padi => 0x09,
            Code::Pado => 0x07,
            Code::Padr => 0x19,
            Code::Pads => 0x65,
            Code::Padt => 0xa7,
            Code::Padm => 0xd3,
            Code::Padn => 0xd4,
            Code::Unknown(other) => other,
        }
    }
}

impl Code {
    /// The name the RFCs give the code, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Code::Session => "Session",
            Code::Padi => "PADI",
            Code::Pado => "PADO",
            Code::Padr => "PADR",
            Code::Pads => "PADS",
            Code::Padt => "PADT",
            Code::Padm => "PADM",
            Code::Padn => "PADN",
            Code::Unknown(_) => "Unknown-Code",
        }
    }
}

/// A read-only or read-write view of a PPPoE packet (discovery or session).
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

    /// Wraps a buffer and checks that the header and the payload the length
    /// field claims fit. Version and type are not checked here (see the
    /// module documentation).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the header is present and the length field does not overrun
    /// the buffer. Bytes after the claimed payload are allowed (padding).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if HEADER_LEN + usize::from(self.length()) > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Ensures version and type are both 1, the only values RFC 2516 defines.
    pub fn check_ver_type(&self) -> Result<()> {
        if self.buffer.as_ref()[field::VER_TYPE] != VER_TYPE {
            return Err(Error::Malformed);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    pub fn type_(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    pub fn code(&self) -> Code {
        Code::from(self.buffer.as_ref()[field::CODE])
    }

    pub fn session_id(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::SESSION_ID];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The payload length the header claims.
    pub fn length(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn payload_end(&self) -> usize {
        HEADER_LEN + usize::from(self.length())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload, bounded by the length field (Ethernet padding excluded).
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD..self.payload_end()]
    }

    /// The whole packet as the length field bounds it.
    pub fn as_bytes(&self) -> &'a [u8] {
        &self.buffer.as_ref()[..self.payload_end()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_version(&mut self, version: u8) {
        let byte = &mut self.buffer.as_mut()[field::VER_TYPE];
        *byte = (*byte & 0x0f) | (version << 4);
    }

    pub fn set_type(&mut self, type_: u8) {
        let byte = &mut self.buffer.as_mut()[field::VER_TYPE];
        *byte = (*byte & 0xf0) | (type_ & 0x0f);
    }

    pub fn set_code(&mut self, code: Code) {
        self.buffer.as_mut()[field::CODE] = code.into();
    }

    pub fn set_session_id(&mut self, session_id: u16) {
        self.buffer.as_mut()[field::SESSION_ID].copy_from_slice(&session_id.to_be_bytes());
    }

    pub fn set_length(&mut self, length: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&length.to_be_bytes());
    }

    /// The payload as the length field bounds it.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.payload_end();
        &mut self.buffer.as_mut()[field::PAYLOAD..end]
    }
}

/// Discovery tag types (RFC 2516 appendix A, RFC 4638, IANA "PPPoE TAG Values").
pub mod tag_type {
    pub const END_OF_LIST: u16 = 0x0000;
    pub const SERVICE_NAME: u16 = 0x0101;
    pub const AC_NAME: u16 = 0x0102;
    pub const HOST_UNIQ: u16 = 0x0103;
    pub const AC_COOKIE: u16 = 0x0104;
    pub const VENDOR_SPECIFIC: u16 = 0x0105;
    pub const RELAY_SESSION_ID: u16 = 0x0110;
    pub const PPP_MAX_PAYLOAD: u16 = 0x0120;
    pub const SERVICE_NAME_ERROR: u16 = 0x0201;
    pub const AC_SYSTEM_ERROR: u16 = 0x0202;
    pub const GENERIC_ERROR: u16 = 0x0203;
}

/// The most data a tag can carry: its length field is 16 bits.
const MAX_TAG_DATA: usize = u16::MAX as usize;

/// One discovery tag. Text tags (names, error messages) are raw bytes: RFC
/// 2516 says UTF-8, but peers send whatever they like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tag<'a> {
    EndOfList,
    ServiceName(&'a [u8]),
    AcName(&'a [u8]),
    HostUniq(&'a [u8]),
    AcCookie(&'a [u8]),
    /// `data` excludes the 4-byte vendor id.
    VendorSpecific {
        vendor_id: u32,
        data: &'a [u8],
    },
    RelaySessionId(&'a [u8]),
    PppMaxPayload(u16),
    ServiceNameError(&'a [u8]),
    AcSystemError(&'a [u8]),
    GenericError(&'a [u8]),
    Unknown {
        tag_type: u16,
        data: &'a [u8],
    },
}

impl<'a> Tag<'a> {
    /// Gives a tag's data its meaning. End-Of-List must be empty,
    /// PPP-Max-Payload exactly 2 bytes and Vendor-Specific at least 4
    /// (the vendor id); otherwise Malformed.
    pub fn parse(tag_type: u16, data: &'a [u8]) -> Result<Tag<'a>> {
        Ok(match tag_type {
            tag_type::END_OF_LIST if data.is_empty() => Tag::EndOfList,
            tag_type::END_OF_LIST => return Err(Error::Malformed),
            tag_type::SERVICE_NAME => Tag::ServiceName(data),
            tag_type::AC_NAME => Tag::AcName(data),
            tag_type::HOST_UNIQ => Tag::HostUniq(data),
            tag_type::AC_COOKIE => Tag::AcCookie(data),
            tag_type::VENDOR_SPECIFIC => match data {
                [a, b, c, d, rest @ ..] => Tag::VendorSpecific {
                    vendor_id: u32::from_be_bytes([*a, *b, *c, *d]),
                    data: rest,
                },
                _ => return Err(Error::Malformed),
            },
            tag_type::RELAY_SESSION_ID => Tag::RelaySessionId(data),
            tag_type::PPP_MAX_PAYLOAD => match data {
                [high, low] => Tag::PppMaxPayload(u16::from_be_bytes([*high, *low])),
                _ => return Err(Error::Malformed),
            },
            tag_type::SERVICE_NAME_ERROR => Tag::ServiceNameError(data),
            tag_type::AC_SYSTEM_ERROR => Tag::AcSystemError(data),
            tag_type::GENERIC_ERROR => Tag::GenericError(data),
            other => Tag::Unknown {
                tag_type: other,
                data,
            },
        })
    }

    pub fn tag_type(&self) -> u16 {
        match self {
            Tag::EndOfList => tag_type::END_OF_LIST,
            Tag::ServiceName(_) => tag_type::SERVICE_NAME,
            Tag::AcName(_) => tag_type::AC_NAME,
            Tag::HostUniq(_) => tag_type::HOST_UNIQ,
            Tag::AcCookie(_) => tag_type::AC_COOKIE,
            Tag::VendorSpecific { .. } => tag_type::VENDOR_SPECIFIC,
            Tag::RelaySessionId(_) => tag_type::RELAY_SESSION_ID,
            Tag::PppMaxPayload(_) => tag_type::PPP_MAX_PAYLOAD,
            Tag::ServiceNameError(_) => tag_type::SERVICE_NAME_ERROR,
            Tag::AcSystemError(_) => tag_type::AC_SYSTEM_ERROR,
            Tag::GenericError(_) => tag_type::GENERIC_ERROR,
            Tag::Unknown { tag_type, .. } => *tag_type,
        }
    }

    /// The name RFC 2516 gives the tag, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Tag::EndOfList => "End-Of-List",
            Tag::ServiceName(_) => "Service-Name",
            Tag::AcName(_) => "AC-Name",
            Tag::HostUniq(_) => "Host-Uniq",
            Tag::AcCookie(_) => "AC-Cookie",
            Tag::VendorSpecific { .. } => "Vendor-Specific",
            Tag::RelaySessionId(_) => "Relay-Session-Id",
            Tag::PppMaxPayload(_) => "PPP-Max-Payload",
            Tag::ServiceNameError(_) => "Service-Name-Error",
            Tag::AcSystemError(_) => "AC-System-Error",
            Tag::GenericError(_) => "Generic-Error",
            Tag::Unknown { .. } => "Unknown-Tag",
        }
    }

    /// The data part as two slices (a prefix that only Vendor-Specific and
    /// PPP-Max-Payload have, then the rest), before truncation to 65535 bytes.
    fn data_parts(&self) -> ([u8; 4], usize, &'a [u8]) {
        match *self {
            Tag::EndOfList => ([0; 4], 0, &[]),
            Tag::VendorSpecific { vendor_id, data } => (vendor_id.to_be_bytes(), 4, data),
            Tag::PppMaxPayload(value) => {
                let [high, low] = value.to_be_bytes();
                ([high, low, 0, 0], 2, &[])
            }
            Tag::ServiceName(data)
            | Tag::AcName(data)
            | Tag::HostUniq(data)
            | Tag::AcCookie(data)
            | Tag::RelaySessionId(data)
            | Tag::ServiceNameError(data)
            | Tag::AcSystemError(data)
            | Tag::GenericError(data)
            | Tag::Unknown { data, .. } => ([0; 4], 0, data),
        }
    }

    /// Length of the data as emitted: data beyond what the 16-bit length
    /// field can express is dropped.
    fn data_len(&self) -> usize {
        let (_, prefix_len, rest) = self.data_parts();
        (prefix_len + rest.len()).min(MAX_TAG_DATA)
    }

    /// Bytes the tag occupies on the wire, type and length included.
    pub fn buffer_len(&self) -> usize {
        TAG_HEADER_LEN + self.data_len()
    }

    /// Writes the tag at the start of `buf` and returns its length.
    /// Panics if `buf` is shorter than [`Tag::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let (prefix, prefix_len, rest) = self.data_parts();
        let data_len = self.data_len();
        let out = &mut buf[..TAG_HEADER_LEN + data_len];
        out[0..2].copy_from_slice(&self.tag_type().to_be_bytes());
        out[2..4].copy_from_slice(&(data_len as u16).to_be_bytes());
        out[4..4 + prefix_len].copy_from_slice(&prefix[..prefix_len]);
        out[4 + prefix_len..].copy_from_slice(&rest[..data_len - prefix_len]);
        out.len()
    }

    /// Appends the tag to `out`.
    pub fn push_to(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.buffer_len(), 0);
        self.emit(&mut out[start..]);
    }
}

/// Iterates the tags of a discovery payload. Yields `Err` once for a tag
/// header or length that overruns the payload (Truncated) or a tag whose data
/// does not fit its type (Malformed), then stops. End-Of-List is yielded and
/// ends the iteration: RFC 2516 says tags after it are ignored.
#[derive(Debug, Clone)]
pub struct TagIter<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> TagIter<'a> {
    pub fn new(payload: &'a [u8]) -> TagIter<'a> {
        TagIter {
            rest: payload,
            done: false,
        }
    }
}

impl<'a> Iterator for TagIter<'a> {
    type Item = Result<Tag<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let item = match self.rest {
            [t0, t1, l0, l1, body @ ..] => {
                let len = usize::from(u16::from_be_bytes([*l0, *l1]));
                match (body.get(..len), body.get(len..)) {
                    (Some(data), Some(rest)) => {
                        self.rest = rest;
                        Tag::parse(u16::from_be_bytes([*t0, *t1]), data)
                    }
                    _ => Err(Error::Truncated),
                }
            }
            _ => Err(Error::Truncated),
        };
        self.done = !matches!(item, Ok(tag) if tag != Tag::EndOfList);
        Some(item)
    }
}

/// Which error tag a discovery packet carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscoveryErrorKind {
    /// Service-Name-Error: the requested service cannot be provided.
    ServiceName,
    /// AC-System-Error: the access concentrator had an internal error.
    AcSystem,
    /// Generic-Error: anything else (often a PADT's reason).
    Generic,
}

/// An error tag and its message (usually text, possibly empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DiscoveryError<'a> {
    pub kind: DiscoveryErrorKind,
    pub data: &'a [u8],
}

impl<'a> DiscoveryError<'a> {
    /// The message as text, with invalid UTF-8 replaced.
    pub fn message(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.data)
    }

    /// The tag's name, for logs.
    pub fn name(&self) -> &'static str {
        match self.kind {
            DiscoveryErrorKind::ServiceName => "Service-Name-Error",
            DiscoveryErrorKind::AcSystem => "AC-System-Error",
            DiscoveryErrorKind::Generic => "Generic-Error",
        }
    }
}

impl fmt::Display for DiscoveryError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.data.is_empty() {
            f.write_str(self.name())
        } else {
            write!(f, "{}: {}", self.name(), self.message().escape_debug())
        }
    }
}

/// The most payload a PPPoE length field can describe.
const MAX_PAYLOAD: usize = u16::MAX as usize;

/// A parsed discovery packet (PADI, PADO, PADR, PADS, PADT, ...). Tags keep
/// their order; duplicates are kept too, and the accessors return the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryRepr<'a> {
    pub code: Code,
    pub session_id: u16,
    pub tags: Vec<Tag<'a>>,
}

impl<'a> DiscoveryRepr<'a> {
    /// Parses a checked packet: version/type must be 1/1 (else Malformed)
    /// and every tag well-formed. Any code is accepted, so that the caller
    /// decides what an unexpected one means.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<DiscoveryRepr<'a>> {
        packet.check_len()?;
        packet.check_ver_type()?;
        Ok(DiscoveryRepr {
            code: packet.code(),
            session_id: packet.session_id(),
            tags: TagIter::new(packet.payload()).collect::<Result<_>>()?,
        })
    }

    /// Parses untrusted bytes (the PPPoE header and payload, without the
    /// Ethernet header) in one step.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<DiscoveryRepr<'a>> {
        DiscoveryRepr::parse(&Packet::new_checked(bytes)?)
    }

    /// How many leading tags fit in the 16-bit payload length, and their
    /// total length. Tags beyond are not emitted.
    fn emitted_tags(&self) -> (usize, usize) {
        let mut payload_len = 0usize;
        for (count, tag) in self.tags.iter().enumerate() {
            let next = payload_len + tag.buffer_len();
            if next > MAX_PAYLOAD {
                return (count, payload_len);
            }
            payload_len = next;
        }
        (self.tags.len(), payload_len)
    }

    /// Bytes needed to emit this packet (header and tags).
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.emitted_tags().1
    }

    /// Writes the packet. Panics if the buffer is shorter than
    /// [`DiscoveryRepr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let (count, payload_len) = self.emitted_tags();
        packet.set_version(1);
        packet.set_type(1);
        packet.set_code(self.code);
        packet.set_session_id(self.session_id);
        packet.set_length(payload_len as u16);
        let payload = packet.payload_mut();
        let mut at = 0;
        for tag in &self.tags[..count] {
            at += tag.emit(&mut payload[at..]);
        }
    }

    /// Emits into a new vector of exactly `buffer_len()` bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut bytes = vec![0; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        bytes
    }

    /// The whole Ethernet frame carrying this packet from `src` to `dst`.
    pub fn to_frame(&self, dst: MacAddr, src: MacAddr, vlans: VlanStack) -> Vec<u8> {
        let ethernet = ethernet::Repr {
            dst,
            src,
            vlans,
            ethertype: ethernet::ethertype::PPPOE_DISCOVERY,
        };
        let header_len = ethernet.buffer_len();
        let mut frame = vec![0; header_len + self.buffer_len()];
        ethernet.emit(&mut frame);
        self.emit(&mut Packet::new_unchecked(&mut frame[header_len..]));
        frame
    }

    fn find<R>(&self, pick: impl Fn(&Tag<'a>) -> Option<R>) -> Option<R> {
        self.tags.iter().find_map(pick)
    }

    pub fn service_name(&self) -> Option<&'a [u8]> {
        self.find(|tag| match tag {
            Tag::ServiceName(data) => Some(*data),
            _ => None,
        })
    }

    pub fn ac_name(&self) -> Option<&'a [u8]> {
        self.find(|tag| match tag {
            Tag::AcName(data) => Some(*data),
            _ => None,
        })
    }

    pub fn host_uniq(&self) -> Option<&'a [u8]> {
        self.find(|tag| match tag {
            Tag::HostUniq(data) => Some(*data),
            _ => None,
        })
    }

    pub fn ac_cookie(&self) -> Option<&'a [u8]> {
        self.find(|tag| match tag {
            Tag::AcCookie(data) => Some(*data),
            _ => None,
        })
    }

    pub fn relay_session_id(&self) -> Option<&'a [u8]> {
        self.find(|tag| match tag {
            Tag::RelaySessionId(data) => Some(*data),
            _ => None,
        })
    }

    pub fn ppp_max_payload(&self) -> Option<u16> {
        self.find(|tag| match tag {
            Tag::PppMaxPayload(value) => Some(*value),
            _ => None,
        })
    }

    /// Every Vendor-Specific tag as (vendor id, data after the id).
    pub fn vendor_specific(&self) -> impl Iterator<Item = (u32, &'a [u8])> + '_ {
        self.tags.iter().filter_map(|tag| match tag {
            Tag::VendorSpecific { vendor_id, data } => Some((*vendor_id, *data)),
            _ => None,
        })
    }

    /// The first error tag, if any.
    pub fn error(&self) -> Option<DiscoveryError<'a>> {
        self.find(|tag| {
            let (kind, data) = match tag {
                Tag::ServiceNameError(data) => (DiscoveryErrorKind::ServiceName, data),
                Tag::AcSystemError(data) => (DiscoveryErrorKind::AcSystem, data),
                Tag::GenericError(data) => (DiscoveryErrorKind::Generic, data),
                _ => return None,
            };
            Some(DiscoveryError { kind, data })
        })
    }
}

/// IANA enterprise number of the Broadband Forum (formerly DSL Forum), the
/// vendor id of TR-101 access-loop tags.
pub const BBF_VENDOR_ID: u32 = 0x0000_0de9;

/// The rate sub-options of a TR-101 tag (values in kbit/s), RFC 4679 §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKind {
    MinimumUpstream,
    MinimumDownstream,
    AttainableUpstream,
    AttainableDownstream,
    MaximumUpstream,
    MaximumDownstream,
    MinimumLowPowerUpstream,
    MinimumLowPowerDownstream,
}

impl RateKind {
    fn from_kind(kind: u8) -> Option<RateKind> {
        Some(match kind {
            0x83 => RateKind::MinimumUpstream,
            0x84 => RateKind::MinimumDownstream,
            0x85 => RateKind::AttainableUpstream,
            0x86 => RateKind::AttainableDownstream,
            0x87 => RateKind::MaximumUpstream,
            0x88 => RateKind::MaximumDownstream,
            0x89 => RateKind::MinimumLowPowerUpstream,
            0x8a => RateKind::MinimumLowPowerDownstream,
            _ => return None,
        })
    }

    pub fn kind(self) -> u8 {
        match self {
            RateKind::MinimumUpstream => 0x83,
            RateKind::MinimumDownstream => 0x84,
            RateKind::AttainableUpstream => 0x85,
            RateKind::AttainableDownstream => 0x86,
            RateKind::MaximumUpstream => 0x87,
            RateKind::MaximumDownstream => 0x88,
            RateKind::MinimumLowPowerUpstream => 0x89,
            RateKind::MinimumLowPowerDownstream => 0x8a,
        }
    }
}

/// The interleaving-delay sub-options of a TR-101 tag (values in ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DelayKind {
    MaximumUpstream,
    ActualUpstream,
    MaximumDownstream,
    ActualDownstream,
}

impl DelayKind {
    fn from_kind(kind: u8) -> Option<DelayKind> {
        Some(match kind {
            0x8b => DelayKind::MaximumUpstream,
            0x8c => DelayKind::ActualUpstream,
            0x8d => DelayKind::MaximumDownstream,
            0x8e => DelayKind::ActualDownstream,
            _ => return None,
        })
    }

    pub fn kind(self) -> u8 {
        match self {
            DelayKind::MaximumUpstream => 0x8b,
            DelayKind::ActualUpstream => 0x8c,
            DelayKind::MaximumDownstream => 0x8d,
            DelayKind::ActualDownstream => 0x8e,
        }
    }
}

/// One sub-option of a Broadband Forum TR-101 Vendor-Specific tag
/// (`kind (1) | length (1, value only) | value`), as RFC 4679 §4 lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BbfSubOption<'a> {
    AgentCircuitId(&'a [u8]),
    AgentRemoteId(&'a [u8]),
    ActualDataRateUpstream(u32),
    ActualDataRateDownstream(u32),
    Rate {
        kind: RateKind,
        kbps: u32,
    },
    InterleavingDelay {
        kind: DelayKind,
        ms: u32,
    },
    /// Data link (0 ATM AAL5, 1 Ethernet) and two encapsulation octets.
    AccessLoopEncapsulation {
        data_link: u8,
        encaps1: u8,
        encaps2: u8,
    },
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

impl<'a> BbfSubOption<'a> {
    /// Gives a sub-option's value its meaning; rates and delays must be 4
    /// bytes and the access-loop encapsulation 3, else Malformed.
    pub fn parse(kind: u8, data: &'a [u8]) -> Result<BbfSubOption<'a>> {
        let as_u32 = || match data {
            [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => Err(Error::Malformed),
        };
        Ok(match kind {
            0x01 => BbfSubOption::AgentCircuitId(data),
            0x02 => BbfSubOption::AgentRemoteId(data),
            0x81 => BbfSubOption::ActualDataRateUpstream(as_u32()?),
            0x82 => BbfSubOption::ActualDataRateDownstream(as_u32()?),
            0x90 => match data {
                [data_link, encaps1, encaps2] => BbfSubOption::AccessLoopEncapsulation {
                    data_link: *data_link,
                    encaps1: *encaps1,
                    encaps2: *encaps2,
                },
                _ => return Err(Error::Malformed),
            },
            other => {
                if let Some(kind) = RateKind::from_kind(other) {
                    BbfSubOption::Rate {
                        kind,
                        kbps: as_u32()?,
                    }
                } else if let Some(kind) = DelayKind::from_kind(other) {
                    BbfSubOption::InterleavingDelay {
                        kind,
                        ms: as_u32()?,
                    }
                } else {
                    BbfSubOption::Unknown { kind: other, data }
                }
            }
        })
    }

    pub fn kind(&self) -> u8 {
        match self {
            BbfSubOption::AgentCircuitId(_) => 0x01,
            BbfSubOption::AgentRemoteId(_) => 0x02,
            BbfSubOption::ActualDataRateUpstream(_) => 0x81,
            BbfSubOption::ActualDataRateDownstream(_) => 0x82,
            BbfSubOption::Rate { kind, .. } => kind.kind(),
            BbfSubOption::InterleavingDelay { kind, .. } => kind.kind(),
            BbfSubOption::AccessLoopEncapsulation { .. } => 0x90,
            BbfSubOption::Unknown { kind, .. } => *kind,
        }
    }

    /// Appends the sub-option to `out`. Values longer than the one-byte
    /// length allows (255) are truncated.
    pub fn push_to(&self, out: &mut Vec<u8>) {
        let number;
        let value: &[u8] = match self {
            BbfSubOption::AgentCircuitId(data)
            | BbfSubOption::AgentRemoteId(data)
            | BbfSubOption::Unknown { data, .. } => data,
            BbfSubOption::ActualDataRateUpstream(value)
            | BbfSubOption::ActualDataRateDownstream(value)
            | BbfSubOption::Rate { kbps: value, .. }
            | BbfSubOption::InterleavingDelay { ms: value, .. } => {
                number = value.to_be_bytes();
                &number
            }
            BbfSubOption::AccessLoopEncapsulation {
                data_link,
                encaps1,
                encaps2,
            } => {
                number = [*data_link, *encaps1, *encaps2, 0];
                &number[..3]
            }
        };
        let value = &value[..value.len().min(usize::from(u8::MAX))];
        out.push(self.kind());
        out.push(value.len() as u8);
        out.extend_from_slice(value);
    }
}

/// Iterates the sub-options of a TR-101 Vendor-Specific tag's data (after
/// the vendor id). Yields `Err` once for a sub-option that overruns the data
/// (Truncated) or has a value of the wrong size (Malformed), then stops.
pub fn bbf_sub_options(data: &[u8]) -> BbfIter<'_> {
    BbfIter {
        rest: data,
        done: false,
    }
}

#[derive(Debug, Clone)]
pub struct BbfIter<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Iterator for BbfIter<'a> {
    type Item = Result<BbfSubOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let item = match self.rest {
            [kind, len, body @ ..] => {
                let len = usize::from(*len);
                match (body.get(..len), body.get(len..)) {
                    (Some(value), Some(rest)) => {
                        self.rest = rest;
                        BbfSubOption::parse(*kind, value)
                    }
                    _ => Err(Error::Truncated),
                }
            }
            _ => Err(Error::Truncated),
        };
        self.done = item.is_err();
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(hex_text: &str) -> Vec<u8> {
        hex::decode(hex_text).unwrap()
    }

    // Fixtures are the PPPoE part (Ethernet header stripped) of real frames;
    // trailing zeros are the Ethernet padding of the captured frame.

    // captures/public/zeek/pppoe.pcap frame 1: PADI, Service-Name "", Host-Uniq.
    const ZEEK_PADI: &str = "11090000000c01010000010300046413851800000000000000000000000000000000\
        000000000000000000000000";
    // Frame 2: PADO, Service-Name "", Host-Uniq, AC-Name "BRAS", AC-Cookie.
    const ZEEK_PADO: &str = "1107000000280101000001030004641385180102000442524153010400103d0f0587\
        062484f2df32b9ddfd77bd5b";
    // Frame 3: PADR, same tags as the PADO.
    const ZEEK_PADR: &str = "1119000000280101000001030004641385180102000442524153010400103d0f0587\
        062484f2df32b9ddfd77bd5b";
    // Frame 4: PADS assigning session 0x0011, same tags.
    const ZEEK_PADS: &str = "1165001100280101000001030004641385180102000442524153010400103d0f0587\
        062484f2df32b9ddfd77bd5b";
    // captures/public/tcpdump/pppoe.pcap frame 1: PADI with Service-Name "",
    // PPP-Max-Payload 1500, Host-Uniq (unpadded outgoing frame).
    const TCPDUMP_PADI: &str = "110900000012010100000120000205dc0103000416372c16";
    // captures/public/suricata-verify/pppoe_input.pcap frame 9: PADT with
    // Host-Uniq, Generic-Error "pppd terminated", AC-Cookie (unpadded).
    const SURICATA_PADT: &str = "11a70001003301030004000017610203000f70707064207465726d696e617465\
        6401040014afb0dfbe9a018fc9fa8ce5c41f47a97b1c522b00";
    // Same capture, frame 10: PADT with only Generic-Error "Received PADT".
    const SURICATA_PADT_2: &str = "11a7000100110203000d52656365697665642050414454";

    const COOKIE: [u8; 16] = [
        0x3d, 0x0f, 0x05, 0x87, 0x06, 0x24, 0x84, 0xf2, 0xdf, 0x32, 0xb9, 0xdd, 0xfd, 0x77, 0xbd,
        0x5b,
    ];

    #[test]
    fn deconstruct() {
        let padi = bytes(ZEEK_PADI);
        let packet = Packet::new_checked(&padi[..]).unwrap();
        assert_eq!((packet.version(), packet.type_()), (1, 1));
        assert_eq!(packet.code(), Code::Padi);
        assert_eq!(packet.session_id(), 0);
        assert_eq!(packet.length(), 12);
        // The payload stops at the length field, before the Ethernet padding.
        assert_eq!(packet.payload(), &padi[6..18]);
        assert_eq!(packet.as_bytes(), &padi[..18]);
    }

    #[test]
    fn construct() {
        let pads = bytes(ZEEK_PADS);
        let mut out = vec![0xa5; pads.len()];
        let mut packet = Packet::new_unchecked(&mut out[..]);
        packet.set_version(1);
        packet.set_type(1);
        packet.set_code(Code::Pads);
        packet.set_session_id(0x0011);
        packet.set_length(0x28);
        packet.payload_mut().copy_from_slice(&pads[6..]);
        assert_eq!(out, pads);
    }

    #[test]
    fn zeek_discovery_exchange() {
        let padi_bytes = bytes(ZEEK_PADI);
        let padi = DiscoveryRepr::parse_bytes(&padi_bytes).unwrap();
        assert_eq!(padi.code, Code::Padi);
        assert_eq!(
            padi.tags,
            [
                Tag::ServiceName(b""),
                Tag::HostUniq(&[0x64, 0x13, 0x85, 0x18])
            ]
        );
        assert_eq!(padi.service_name(), Some(&b""[..]));
        assert_eq!(padi.ac_name(), None);

        for (fixture, code, session_id) in [
            (ZEEK_PADO, Code::Pado, 0),
            (ZEEK_PADR, Code::Padr, 0),
            (ZEEK_PADS, Code::Pads, 0x0011),
        ] {
            let packet = bytes(fixture);
            let repr = DiscoveryRepr::parse_bytes(&packet).unwrap();
            assert_eq!(repr.code, code);
            assert_eq!(repr.session_id, session_id);
            assert_eq!(repr.host_uniq(), Some(&[0x64, 0x13, 0x85, 0x18][..]));
            assert_eq!(repr.ac_name(), Some(&b"BRAS"[..]));
            assert_eq!(repr.ac_cookie(), Some(&COOKIE[..]));
            assert_eq!(repr.error(), None);
            assert_eq!(repr.to_vec(), packet);
        }
    }

    #[test]
    fn parse_and_emit_round_trip_drops_padding() {
        let padi = bytes(ZEEK_PADI);
        let repr = DiscoveryRepr::parse_bytes(&padi).unwrap();
        assert_eq!(repr.buffer_len(), 18);
        assert_eq!(repr.to_vec(), padi[..18]);
    }

    #[test]
    fn ppp_max_payload() {
        let packet = bytes(TCPDUMP_PADI);
        let repr = DiscoveryRepr::parse_bytes(&packet).unwrap();
        assert_eq!(repr.ppp_max_payload(), Some(1500));
        assert_eq!(repr.tags[1], Tag::PppMaxPayload(1500));
        assert_eq!(repr.tags[1].name(), "PPP-Max-Payload");
        assert_eq!(repr.host_uniq(), Some(&[0x16, 0x37, 0x2c, 0x16][..]));
        assert_eq!(repr.to_vec(), packet);
    }

    #[test]
    fn to_frame_puts_the_packet_behind_an_ethernet_header() {
        let packet = bytes(TCPDUMP_PADI);
        let repr = DiscoveryRepr::parse_bytes(&packet).unwrap();
        let src = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, 0x02]);
        let frame = repr.to_frame(MacAddr::BROADCAST, src, VlanStack::default());
        assert_eq!(frame[..6], [0xff; 6]);
        assert_eq!(frame[6..12], src.0);
        assert_eq!(frame[12..14], [0x88, 0x63]);
        assert_eq!(frame[14..], packet);
        let (eth, offset) = ethernet::Repr::parse(&frame).unwrap();
        assert_eq!((eth.dst, eth.src), (MacAddr::BROADCAST, src));
        assert_eq!(DiscoveryRepr::parse_bytes(&frame[offset..]).unwrap(), repr);
    }

    #[test]
    fn padt_generic_error() {
        let packet = bytes(SURICATA_PADT);
        let repr = DiscoveryRepr::parse_bytes(&packet).unwrap();
        assert_eq!(repr.code, Code::Padt);
        assert_eq!(repr.session_id, 1);
        let error = repr.error().unwrap();
        assert_eq!(error.kind, DiscoveryErrorKind::Generic);
        assert_eq!(error.message(), "pppd terminated");
        assert_eq!(error.to_string(), "Generic-Error: pppd terminated");
        assert_eq!(repr.to_vec(), packet);

        let packet = bytes(SURICATA_PADT_2);
        let repr = DiscoveryRepr::parse_bytes(&packet).unwrap();
        assert_eq!(repr.error().unwrap().message(), "Received PADT");
        assert_eq!(repr.to_vec(), packet);
    }

    #[test]
    fn error_kinds_and_lossy_message() {
        // Built, not captured: an AC-System-Error with invalid UTF-8.
        let repr = DiscoveryRepr {
            code: Code::Pads,
            session_id: 0,
            tags: vec![Tag::AcSystemError(b"full\xff")],
        };
        let error = repr.error().unwrap();
        assert_eq!(error.kind, DiscoveryErrorKind::AcSystem);
        assert_eq!(error.message(), "full\u{fffd}");
        let empty = DiscoveryError {
            kind: DiscoveryErrorKind::ServiceName,
            data: b"",
        };
        assert_eq!(empty.to_string(), "Service-Name-Error");
    }

    #[test]
    fn end_of_list_stops_iteration() {
        // Built: Host-Uniq, End-Of-List, then an AC-Name that must be ignored.
        let payload = [1, 3, 0, 1, 0xaa, 0, 0, 0, 0, 1, 2, 0, 1, b'x'];
        let tags: Vec<_> = TagIter::new(&payload).collect();
        assert_eq!(tags, [Ok(Tag::HostUniq(&[0xaa])), Ok(Tag::EndOfList)]);
        // An End-Of-List with data is malformed.
        let bad: Vec<_> = TagIter::new(&[0, 0, 0, 1, 9, 1, 1, 0, 0]).collect();
        assert_eq!(bad, [Err(Error::Malformed)]);
    }

    #[test]
    fn bad_tags() {
        // Built: a tag claiming 16 bytes with 2 present, then a lone byte.
        for bad in [&[1u8, 3, 0, 16, 1, 2][..], &[1, 1, 0], &[1, 1, 0, 0, 7]] {
            let items: Vec<_> = TagIter::new(bad).collect();
            assert_eq!(items.last(), Some(&Err(Error::Truncated)), "{bad:?}");
            assert_eq!(items.iter().filter(|item| item.is_err()).count(), 1);
        }
        assert_eq!(
            Tag::parse(tag_type::PPP_MAX_PAYLOAD, &[5]),
            Err(Error::Malformed)
        );
        assert_eq!(
            Tag::parse(tag_type::PPP_MAX_PAYLOAD, &[5, 0xdc, 0]),
            Err(Error::Malformed)
        );
        assert_eq!(
            Tag::parse(tag_type::VENDOR_SPECIFIC, &[0, 0, 0x0d]),
            Err(Error::Malformed)
        );
        assert_eq!(
            Tag::parse(tag_type::VENDOR_SPECIFIC, &[0, 0, 0x0d, 0xe9]),
            Ok(Tag::VendorSpecific {
                vendor_id: BBF_VENDOR_ID,
                data: &[]
            })
        );
        assert_eq!(
            Tag::parse(0x7777, &[1]),
            Ok(Tag::Unknown {
                tag_type: 0x7777,
                data: &[1]
            })
        );
    }

    #[test]
    fn bad_packets() {
        let pado = bytes(ZEEK_PADO);
        // Truncated header.
        assert_eq!(
            DiscoveryRepr::parse_bytes(&pado[..5]),
            Err(Error::Truncated)
        );
        // Length beyond the buffer.
        assert_eq!(
            DiscoveryRepr::parse_bytes(&pado[..pado.len() - 1]),
            Err(Error::Truncated)
        );
        // A tag overrunning the payload: the length field cut inside the AC-Cookie.
        let mut short = pado.clone();
        short[5] = 0x27;
        assert_eq!(DiscoveryRepr::parse_bytes(&short), Err(Error::Truncated));
        // Version 2 and type 2 are malformed, though the view still shows them.
        for ver_type in [0x21, 0x12] {
            let mut foreign = pado.clone();
            foreign[0] = ver_type;
            let packet = Packet::new_checked(&foreign[..]).unwrap();
            assert_eq!(packet.check_ver_type(), Err(Error::Malformed));
            assert_eq!(DiscoveryRepr::parse(&packet), Err(Error::Malformed));
        }
    }

    #[test]
    fn codes_round_trip() {
        for value in 0..=255u8 {
            assert_eq!(u8::from(Code::from(value)), value);
        }
        assert_eq!(Code::from(0xd3).name(), "PADM");
        assert_eq!(Code::from(0x65).name(), "PADS");
    }

    #[test]
    fn oversized_tags_are_truncated_on_emit() {
        let big = vec![7u8; 70_000];
        let tag = Tag::HostUniq(&big);
        assert_eq!(tag.buffer_len(), 4 + 65_535);
        let repr = DiscoveryRepr {
            code: Code::Padi,
            session_id: 0,
            tags: vec![Tag::ServiceName(b""), tag, Tag::AcName(b"dropped")],
        };
        // Only the Service-Name fits in the 16-bit payload length with it.
        let out = repr.to_vec();
        assert_eq!(out.len(), 6 + 4);
        assert_eq!(
            DiscoveryRepr::parse_bytes(&out).unwrap().tags,
            [Tag::ServiceName(b"")]
        );
    }

    // TR-101 sub-options: no capture has them, so this Vendor-Specific data is
    // built by hand from the RFC 4679 §4 layout: circuit id "eth 1/1/1:100",
    // remote id "cpe-42", actual rates 1022/16240 kbit/s, attainable up 1023,
    // maximum interleaving delay up 16 ms, access loop Ethernet/untagged/PPPoA-LLC,
    // and an unknown 0xfe with one byte.
    fn bbf_data() -> Vec<u8> {
        let mut data = vec![0x01, 13];
        data.extend_from_slice(b"eth 1/1/1:100");
        data.extend_from_slice(&[0x02, 6]);
        data.extend_from_slice(b"cpe-42");
        data.extend_from_slice(&[0x81, 4, 0, 0, 0x03, 0xfe]);
        data.extend_from_slice(&[0x82, 4, 0, 0, 0x3f, 0x70]);
        data.extend_from_slice(&[0x85, 4, 0, 0, 0x03, 0xff]);
        data.extend_from_slice(&[0x8b, 4, 0, 0, 0, 16]);
        data.extend_from_slice(&[0x90, 3, 1, 0, 1]);
        data.extend_from_slice(&[0xfe, 1, 9]);
        data
    }

    #[test]
    fn bbf_sub_options_parse() {
        let data = bbf_data();
        let options: Vec<_> = bbf_sub_options(&data).collect::<Result<_>>().unwrap();
        assert_eq!(
            options,
            [
                BbfSubOption::AgentCircuitId(b"eth 1/1/1:100"),
                BbfSubOption::AgentRemoteId(b"cpe-42"),
                BbfSubOption::ActualDataRateUpstream(1022),
                BbfSubOption::ActualDataRateDownstream(16240),
                BbfSubOption::Rate {
                    kind: RateKind::AttainableUpstream,
                    kbps: 1023
                },
                BbfSubOption::InterleavingDelay {
                    kind: DelayKind::MaximumUpstream,
                    ms: 16
                },
                BbfSubOption::AccessLoopEncapsulation {
                    data_link: 1,
                    encaps1: 0,
                    encaps2: 1
                },
                BbfSubOption::Unknown {
                    kind: 0xfe,
                    data: &[9]
                },
            ]
        );
        let mut out = Vec::new();
        for option in &options {
            option.push_to(&mut out);
        }
        assert_eq!(out, data);
    }

    #[test]
    fn bbf_inside_a_discovery_packet() {
        // Built: a PADI as an intermediate agent would forward it.
        let data = bbf_data();
        let repr = DiscoveryRepr {
            code: Code::Padi,
            session_id: 0,
            tags: vec![
                Tag::ServiceName(b""),
                Tag::VendorSpecific {
                    vendor_id: BBF_VENDOR_ID,
                    data: &data,
                },
            ],
        };
        let packet = repr.to_vec();
        let parsed = DiscoveryRepr::parse_bytes(&packet).unwrap();
        assert_eq!(parsed, repr);
        let (vendor_id, data) = parsed.vendor_specific().next().unwrap();
        assert_eq!(vendor_id, BBF_VENDOR_ID);
        let remote = bbf_sub_options(data).find_map(|option| match option {
            Ok(BbfSubOption::AgentRemoteId(id)) => Some(id),
            _ => None,
        });
        assert_eq!(remote, Some(&b"cpe-42"[..]));
    }

    #[test]
    fn bbf_bad_sub_options() {
        for (bad, error) in [
            (&[0x81u8, 3, 0, 0, 1][..], Error::Malformed),
            (&[0x8c, 5, 0, 0, 0, 0, 1], Error::Malformed),
            (&[0x90, 2, 1, 0], Error::Malformed),
            (&[0x01, 5, b'a'], Error::Truncated),
            (&[0x01], Error::Truncated),
        ] {
            let items: Vec<_> = bbf_sub_options(bad).collect();
            assert_eq!(items, [Err(error)], "{bad:?}");
        }
    }

    fn arb_data() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..24)
    }

    // Owned tag descriptions, turned into borrowed `Tag`s inside the test.
    #[derive(Debug, Clone)]
    enum OwnedTag {
        Data(u16, Vec<u8>),
        Vendor(u32, Vec<u8>),
        MaxPayload(u16),
        Unknown(u16, Vec<u8>),
    }

    fn arb_tag() -> impl Strategy<Value = OwnedTag> {
        let data_types = prop_oneof![
            Just(tag_type::SERVICE_NAME),
            Just(tag_type::AC_NAME),
            Just(tag_type::HOST_UNIQ),
            Just(tag_type::AC_COOKIE),
            Just(tag_type::RELAY_SESSION_ID),
            Just(tag_type::SERVICE_NAME_ERROR),
            Just(tag_type::AC_SYSTEM_ERROR),
            Just(tag_type::GENERIC_ERROR),
        ];
        let known = [
            0x0000, 0x0101, 0x0102, 0x0103, 0x0104, 0x0105, 0x0110, 0x0120, 0x0201, 0x0202, 0x0203,
        ];
        prop_oneof![
            (data_types, arb_data()).prop_map(|(kind, data)| OwnedTag::Data(kind, data)),
            (any::<u32>(), arb_data()).prop_map(|(id, data)| OwnedTag::Vendor(id, data)),
            any::<u16>().prop_map(OwnedTag::MaxPayload),
            (
                any::<u16>().prop_filter("unknown type", move |t| !known.contains(t)),
                arb_data()
            )
                .prop_map(|(kind, data)| OwnedTag::Unknown(kind, data)),
        ]
    }

    fn borrow(tag: &OwnedTag) -> Tag<'_> {
        match tag {
            OwnedTag::Data(kind, data) => Tag::parse(*kind, data).unwrap(),
            OwnedTag::Vendor(vendor_id, data) => Tag::VendorSpecific {
                vendor_id: *vendor_id,
                data,
            },
            OwnedTag::MaxPayload(value) => Tag::PppMaxPayload(*value),
            OwnedTag::Unknown(tag_type, data) => Tag::Unknown {
                tag_type: *tag_type,
                data,
            },
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = TagIter::new(&data).count();
            let _ = bbf_sub_options(&data).count();
            if let Ok(repr) = DiscoveryRepr::parse_bytes(&data) {
                let _ = repr.error();
                prop_assert!(repr.buffer_len() <= data.len());
            }
            if let Ok(packet) = Packet::new_checked(&data[..]) {
                let _ = (packet.version(), packet.type_(), packet.code(), packet.session_id());
                prop_assert!(packet.payload().len() == usize::from(packet.length()));
            }
        }

        #[test]
        fn discovery_round_trip(
            code in any::<u8>(),
            session_id in any::<u16>(),
            owned in proptest::collection::vec(arb_tag(), 0..8),
            with_end in any::<bool>(),
        ) {
            let mut tags: Vec<Tag<'_>> = owned.iter().map(borrow).collect();
            if with_end {
                tags.push(Tag::EndOfList);
            }
            let repr = DiscoveryRepr { code: Code::from(code), session_id, tags };
            let bytes = repr.to_vec();
            prop_assert_eq!(bytes.len(), repr.buffer_len());
            prop_assert_eq!(DiscoveryRepr::parse_bytes(&bytes), Ok(repr));
        }

        #[test]
        fn bbf_round_trip(
            kind in prop_oneof![0x80u8..=0x91, any::<u8>()],
            data in proptest::collection::vec(any::<u8>(), 0..6),
        ) {
            if let Ok(option) = BbfSubOption::parse(kind, &data) {
                let mut out = Vec::new();
                option.push_to(&mut out);
                prop_assert_eq!(out.len(), data.len() + 2);
                prop_assert_eq!(bbf_sub_options(&out).collect::<Vec<_>>(), vec![Ok(option)]);
            }
        }
    }
}
