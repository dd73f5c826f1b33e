//! The packet format shared by LCP and every NCP (RFC 1661 §5):
//! `code (1) | identifier (1) | length (2) | data (length - 4)`.
//!
//! The length field, not the buffer, bounds the packet: bytes after it are
//! padding (PPPoE frames padded to the Ethernet minimum carry some) and are
//! ignored, as RFC 1661 §5 requires.

use crate::{Error, Field, Result};

mod field {
    use super::Field;
    pub const CODE: usize = 0;
    pub const IDENTIFIER: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const DATA: usize = 4;
}

/// Size of the control packet header.
pub const HEADER_LEN: usize = field::DATA;

/// Control packet codes (RFC 1661 §5, RFC 1570 for 12 and 13).
/// Codes 8 and up are meaningful for LCP only; NCPs must Code-Reject them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    ConfigureRequest,
    ConfigureAck,
    ConfigureNak,
    ConfigureReject,
    TerminateRequest,
    TerminateAck,
    CodeReject,
    ProtocolReject,
    EchoRequest,
    EchoReply,
    DiscardRequest,
    Identification,
    TimeRemaining,
    Unknown(u8),
}

impl From<u8> for Code {
    fn from(value: u8) -> Self {
        match value {
            1 => Code::ConfigureRequest,
            2 => Code::ConfigureAck,
            3 => Code::ConfigureNak,
            4 => Code::ConfigureReject,
            5 => Code::TerminateRequest,
            6 => Code::TerminateAck,
            7 => Code::CodeReject,
            8 => Code::ProtocolReject,
            9 => Code::EchoRequest,
            10 => Code::EchoReply,
            11 => Code::DiscardRequest,
            12 => Code::Identification,
            13 => Code::TimeRemaining,
            other => Code::Unknown(other),
        }
    }
}

impl From<Code> for u8 {
    fn from(code: Code) -> u8 {
        match code {
            Code::ConfigureRequest => 1,
            Code::ConfigureAck => 2,
            Code::ConfigureNak => 3,
            Code::ConfigureReject => 4,
            Code::TerminateRequest => 5,
            Code::TerminateAck => 6,
            Code::CodeReject => 7,
            Code::ProtocolReject => 8,
            Code::EchoRequest => 9,
            Code::EchoReply => 10,
            Code::DiscardRequest => 11,
            Code::Identification => 12,
            Code::TimeRemaining => 13,
            Code::Unknown(other) => other,
        }
    }
}

impl Code {
    /// The name RFC 1661 gives the code, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Code::ConfigureRequest => "Configure-Request",
            Code::ConfigureAck => "Configure-Ack",
            Code::ConfigureNak => "Configure-Nak",
            Code::ConfigureReject => "Configure-Reject",
            Code::TerminateRequest => "Terminate-Request",
            Code::TerminateAck => "Terminate-Ack",
            Code::CodeReject => "Code-Reject",
            Code::ProtocolReject => "Protocol-Reject",
            Code::EchoRequest => "Echo-Request",
            Code::EchoReply => "Echo-Reply",
            Code::DiscardRequest => "Discard-Request",
            Code::Identification => "Identification",
            Code::TimeRemaining => "Time-Remaining",
            Code::Unknown(_) => "Unknown-Code",
        }
    }
}

/// A read-only or read-write view of a control packet.
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

    /// Wraps a buffer and checks that the header and the length field fit.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the header is present, the length field is at least the header
    /// and no longer than the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let claimed = usize::from(self.length());
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

    pub fn code(&self) -> Code {
        Code::from(self.buffer.as_ref()[field::CODE])
    }

    pub fn identifier(&self) -> u8 {
        self.buffer.as_ref()[field::IDENTIFIER]
    }

    pub fn length(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The data after the header, bounded by the length field.
    pub fn data(&self) -> &'a [u8] {
        let end = usize::from(self.length());
        &self.buffer.as_ref()[field::DATA..end]
    }

    /// The whole packet as the length field bounds it (without padding).
    pub fn as_bytes(&self) -> &'a [u8] {
        &self.buffer.as_ref()[..usize::from(self.length())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_code(&mut self, code: Code) {
        self.buffer.as_mut()[field::CODE] = code.into();
    }

    pub fn set_identifier(&mut self, identifier: u8) {
        self.buffer.as_mut()[field::IDENTIFIER] = identifier;
    }

    pub fn set_length(&mut self, length: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&length.to_be_bytes());
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.length());
        &mut self.buffer.as_mut()[field::DATA..end]
    }
}

/// A parsed control packet: code, identifier and the raw data (options for the
/// Configure-* codes, the rejected packet for Code-Reject, and so on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub code: Code,
    pub identifier: u8,
    pub data: &'a [u8],
}

impl<'a> Repr<'a> {
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>> {
        packet.check_len()?;
        Ok(Repr {
            code: packet.code(),
            identifier: packet.identifier(),
            data: packet.data(),
        })
    }

    /// Parses untrusted bytes in one step.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Repr<'a>> {
        Repr::parse(&Packet::new_checked(bytes)?)
    }

    /// Bytes needed to emit this packet. Data longer than the 16-bit length
    /// field allows is truncated on emit.
    pub fn buffer_len(&self) -> usize {
        (HEADER_LEN + self.data.len()).min(usize::from(u16::MAX))
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let len = self.buffer_len();
        packet.set_code(self.code);
        packet.set_identifier(self.identifier);
        packet.set_length(len as u16);
        packet
            .data_mut()
            .copy_from_slice(&self.data[..len - HEADER_LEN]);
    }

    /// Emits into a new vector of exactly `buffer_len()` bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut bytes = vec![0; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // LCP Configure-Request from the AC in captures/public/zeek/pppoe.pcap
    // (frame 6): MRU 1492, Authentication-Protocol PAP, Magic-Number 0x01fccbfb.
    static CONF_REQ: [u8; 18] = [
        0x01, 0x01, 0x00, 0x12, 0x01, 0x04, 0x05, 0xd4, 0x03, 0x04, 0xc0, 0x23, 0x05, 0x06, 0x01,
        0xfc, 0xcb, 0xfb,
    ];

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&CONF_REQ[..]).unwrap();
        assert_eq!(packet.code(), Code::ConfigureRequest);
        assert_eq!(packet.identifier(), 1);
        assert_eq!(packet.length(), 18);
        assert_eq!(packet.data(), &CONF_REQ[4..]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 18];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_code(Code::ConfigureRequest);
        packet.set_identifier(1);
        packet.set_length(18);
        packet.data_mut().copy_from_slice(&CONF_REQ[4..]);
        assert_eq!(bytes, CONF_REQ);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let repr = Repr::parse_bytes(&CONF_REQ).unwrap();
        assert_eq!(repr.code, Code::ConfigureRequest);
        assert_eq!(repr.to_vec(), CONF_REQ);
    }

    #[test]
    fn padding_after_length_is_ignored() {
        let mut padded = CONF_REQ.to_vec();
        padded.extend_from_slice(&[0; 10]);
        let repr = Repr::parse_bytes(&padded).unwrap();
        assert_eq!(repr.data, &CONF_REQ[4..]);
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert_eq!(Repr::parse_bytes(&CONF_REQ[..3]), Err(Error::Truncated));
        let mut short = CONF_REQ;
        short[3] = 3;
        assert_eq!(Repr::parse_bytes(&short), Err(Error::Malformed));
        let mut long = CONF_REQ;
        long[3] = 19;
        assert_eq!(Repr::parse_bytes(&long), Err(Error::Truncated));
    }

    #[test]
    fn codes_round_trip() {
        for value in 0..=255u8 {
            assert_eq!(u8::from(Code::from(value)), value);
        }
    }
}
