//! Challenge-Handshake Authentication Protocol packets (RFC 1994 §4), carried
//! in the code/identifier/length framing of [`crate::control`]. Computing
//! the response (MD5 over identifier, secret and challenge) is the PPP
//! crate's business; this module only reads and writes the fields.

use core::fmt;

use crate::control::{self, Code};
use crate::pap::{push_field, split_field, Quoted};
use crate::{Error, Result};

/// CHAP codes (RFC 1994 §4).
pub mod code {
    pub const CHALLENGE: u8 = 1;
    pub const RESPONSE: u8 = 2;
    pub const SUCCESS: u8 = 3;
    pub const FAILURE: u8 = 4;
}

/// A CHAP packet's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    Challenge { value: &'a [u8], name: &'a [u8] },
    Response { value: &'a [u8], name: &'a [u8] },
    Success { message: &'a [u8] },
    Failure { message: &'a [u8] },
}

impl<'a> Repr<'a> {
    /// Parses a CHAP packet. Codes other than 1..=4 are `Unsupported`. A
    /// Challenge or Response needs its Value-Size byte, and a value that
    /// runs past the data is `Truncated`; an empty value parses (judging it
    /// is the authenticator's job). The name is the rest of the data.
    pub fn parse(control: &control::Repr<'a>) -> Result<Repr<'a>> {
        match u8::from(control.code) {
            code::CHALLENGE => {
                let (value, name) = split_field(control.data)?;
                Ok(Repr::Challenge { value, name })
            }
            code::RESPONSE => {
                let (value, name) = split_field(control.data)?;
                Ok(Repr::Response { value, name })
            }
            code::SUCCESS => Ok(Repr::Success {
                message: control.data,
            }),
            code::FAILURE => Ok(Repr::Failure {
                message: control.data,
            }),
            _ => Err(Error::Unsupported),
        }
    }

    /// The packet's code.
    pub fn code(&self) -> u8 {
        match self {
            Repr::Challenge { .. } => code::CHALLENGE,
            Repr::Response { .. } => code::RESPONSE,
            Repr::Success { .. } => code::SUCCESS,
            Repr::Failure { .. } => code::FAILURE,
        }
    }

    /// The name RFC 1994 gives the code, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Repr::Challenge { .. } => "Challenge",
            Repr::Response { .. } => "Response",
            Repr::Success { .. } => "Success",
            Repr::Failure { .. } => "Failure",
        }
    }

    /// Bytes of data `emit_data` appends (the control header not included).
    /// A value longer than 255 bytes is truncated; the whole packet is
    /// bounded by `control::Repr`'s 16-bit length.
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::Challenge { value, name } | Repr::Response { value, name } => {
                1 + value.len().min(usize::from(u8::MAX)) + name.len()
            }
            Repr::Success { message } | Repr::Failure { message } => message.len(),
        }
    }

    /// Appends the packet's data (after the control header) to `out`.
    pub fn emit_data(&self, out: &mut Vec<u8>) {
        match self {
            Repr::Challenge { value, name } | Repr::Response { value, name } => {
                push_field(out, value);
                out.extend_from_slice(name);
            }
            Repr::Success { message } | Repr::Failure { message } => out.extend_from_slice(message),
        }
    }

    /// The whole control packet: code, identifier, length and data.
    pub fn to_packet(&self, identifier: u8) -> Vec<u8> {
        let mut data = Vec::with_capacity(self.buffer_len());
        self.emit_data(&mut data);
        control::Repr {
            code: Code::from(self.code()),
            identifier,
            data: &data,
        }
        .to_vec()
    }
}

/// As pppd's debug log prints it, without the identifier:
/// `Challenge <1011…1f>, name = "bras"`, `Success "Welcome"`.
impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repr::Challenge { value, name } | Repr::Response { value, name } => {
                write!(f, "{} <", self.name())?;
                value.iter().try_for_each(|byte| write!(f, "{byte:02x}"))?;
                write!(f, ">, name = {}", Quoted(name))
            }
            Repr::Success { message } | Repr::Failure { message } => {
                write!(f, "{} {}", self.name(), Quoted(message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // No public capture has CHAP, so these are built per RFC 1994 §4.1 (the
    // lab will record real ones): identifier 0x2a, a 16-byte challenge
    // 10..1f from "bras", and the response of "alice" with secret "secret",
    // MD5(0x2a || "secret" || challenge) computed with Python's hashlib.
    static CHALLENGE: [u8; 25] = [
        0x01, 0x2a, 0x00, 0x19, 0x10, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
        0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x62, 0x72, 0x61, 0x73,
    ];
    static RESPONSE: [u8; 26] = [
        0x02, 0x2a, 0x00, 0x1a, 0x10, 0x9a, 0x1a, 0xad, 0x37, 0x26, 0x14, 0x4f, 0x55, 0x83, 0x75,
        0xcb, 0x6a, 0x5d, 0x66, 0x88, 0xe2, 0x61, 0x6c, 0x69, 0x63, 0x65,
    ];

    fn parse(packet: &[u8]) -> Result<Repr<'_>> {
        Repr::parse(&control::Repr::parse_bytes(packet)?)
    }

    #[test]
    fn challenge_and_response() {
        let challenge = parse(&CHALLENGE).unwrap();
        assert_eq!(
            challenge,
            Repr::Challenge {
                value: &CHALLENGE[5..21],
                name: b"bras"
            }
        );
        assert_eq!(challenge.to_packet(0x2a), CHALLENGE);
        assert_eq!(
            challenge.to_string(),
            "Challenge <101112131415161718191a1b1c1d1e1f>, name = \"bras\""
        );

        let response = parse(&RESPONSE).unwrap();
        assert_eq!(
            response,
            Repr::Response {
                value: &RESPONSE[5..21],
                name: b"alice"
            }
        );
        assert_eq!(response.buffer_len(), RESPONSE.len() - 4);
        assert_eq!(response.to_packet(0x2a), RESPONSE);
    }

    #[test]
    fn success_and_failure() {
        // Built per RFC 1994 §4.2: the message is all the remaining data.
        let success = Repr::Success {
            message: b"Welcome",
        };
        let packet = success.to_packet(0x2a);
        assert_eq!(packet[..4], [0x03, 0x2a, 0x00, 0x0b]);
        assert_eq!(parse(&packet).unwrap(), success);
        assert_eq!(success.to_string(), "Success \"Welcome\"");

        let failure = Repr::Failure { message: b"" };
        assert_eq!(failure.to_packet(1), [0x04, 0x01, 0x00, 0x04]);
        assert_eq!(parse(&[0x04, 0x01, 0x00, 0x04]).unwrap(), failure);
        assert_eq!(failure.to_string(), "Failure \"\"");
    }

    #[test]
    fn value_size_is_checked() {
        // An empty value with no name is legal to parse.
        assert_eq!(
            parse(&[0x01, 0x01, 0x00, 0x05, 0x00]).unwrap(),
            Repr::Challenge {
                value: b"",
                name: b""
            }
        );
        // A Value-Size running past the data, or missing, is Truncated.
        let mut long_value = CHALLENGE;
        long_value[4] = 0x16;
        assert_eq!(parse(&long_value), Err(Error::Truncated));
        assert_eq!(parse(&[0x02, 0x01, 0x00, 0x04]), Err(Error::Truncated));
        // The value may take all the data, leaving an empty name.
        let mut no_name = CHALLENGE;
        no_name[4] = 0x14;
        assert_eq!(
            parse(&no_name).unwrap(),
            Repr::Challenge {
                value: &CHALLENGE[5..],
                name: b""
            }
        );
    }

    #[test]
    fn other_codes_are_unsupported() {
        assert_eq!(parse(&[0x05, 0x01, 0x00, 0x04]), Err(Error::Unsupported));
        assert_eq!(parse(&[0x00, 0x01, 0x00, 0x04]), Err(Error::Unsupported));
    }

    #[test]
    fn long_values_are_truncated_on_emit() {
        let long = [7u8; 300];
        let repr = Repr::Response {
            value: &long,
            name: b"n",
        };
        let packet = repr.to_packet(1);
        assert_eq!(packet.len(), 4 + repr.buffer_len());
        assert_eq!(
            parse(&packet).unwrap(),
            Repr::Response {
                value: &long[..255],
                name: b"n"
            }
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(code in 0u8..6, identifier in any::<u8>(),
                                       data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let control = control::Repr { code: Code::from(code), identifier, data: &data };
            if let Ok(repr) = Repr::parse(&control) {
                let _ = repr.to_string();
                let packet = repr.to_packet(identifier);
                prop_assert_eq!(packet.len(), 4 + repr.buffer_len());
                prop_assert_eq!(&packet[4..], &data[..]);
                prop_assert_eq!(parse(&packet), Ok(repr));
            }
        }
    }
}
