//! Password Authentication Protocol packets (RFC 1334 §2.2), carried in the
//! code/identifier/length framing of [`crate::control`].
//!
//! The password must never reach a log: `Debug` and `Display` of an
//! Authenticate-Request print `<hidden>` in its place, as pppd does by
//! default. (The raw bytes are still in the `control::Repr`; do not log that
//! for PAP.)

use core::fmt;

use crate::control::{self, Code};
use crate::{Error, Result};

/// PAP codes (RFC 1334 §2.2).
pub mod code {
    pub const AUTHENTICATE_REQUEST: u8 = 1;
    pub const AUTHENTICATE_ACK: u8 = 2;
    pub const AUTHENTICATE_NAK: u8 = 3;
}

/// The longest field a one-byte length can describe; longer ones are
/// truncated on emit.
const MAX_FIELD: usize = u8::MAX as usize;

/// A PAP packet's data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    AuthenticateRequest {
        peer_id: &'a [u8],
        password: &'a [u8],
    },
    AuthenticateAck {
        message: &'a [u8],
    },
    AuthenticateNak {
        message: &'a [u8],
    },
}

/// Splits a length-prefixed field off the front of `data`; a missing length
/// byte or a field running past the data is `Truncated`.
pub(crate) fn split_field(data: &[u8]) -> Result<(&[u8], &[u8])> {
    let (len, rest) = data.split_first().ok_or(Error::Truncated)?;
    let len = usize::from(*len);
    if len > rest.len() {
        return Err(Error::Truncated);
    }
    Ok(rest.split_at(len))
}

/// Appends a field with its one-byte length, truncated to 255 bytes.
pub(crate) fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    let field = &field[..field.len().min(MAX_FIELD)];
    out.push(field.len() as u8);
    out.extend_from_slice(field);
}

impl<'a> Repr<'a> {
    /// Parses a PAP packet. Codes other than 1..=3 are `Unsupported`; length
    /// bytes that run past the data are `Truncated`. Bytes after the last
    /// field are ignored. An Ack or Nak without even a Msg-Length byte is
    /// read as an empty message, as pppd does, since some servers send one.
    pub fn parse(control: &control::Repr<'a>) -> Result<Repr<'a>> {
        match u8::from(control.code) {
            code::AUTHENTICATE_REQUEST => {
                let (peer_id, rest) = split_field(control.data)?;
                let (password, _) = split_field(rest)?;
                Ok(Repr::AuthenticateRequest { peer_id, password })
            }
            code @ (code::AUTHENTICATE_ACK | code::AUTHENTICATE_NAK) => {
                let message = match control.data {
                    [] => &[][..],
                    data => split_field(data)?.0,
                };
                Ok(if code == code::AUTHENTICATE_ACK {
                    Repr::AuthenticateAck { message }
                } else {
                    Repr::AuthenticateNak { message }
                })
            }
            _ => Err(Error::Unsupported),
        }
    }

    /// The packet's code.
    pub fn code(&self) -> u8 {
        match self {
            Repr::AuthenticateRequest { .. } => code::AUTHENTICATE_REQUEST,
            Repr::AuthenticateAck { .. } => code::AUTHENTICATE_ACK,
            Repr::AuthenticateNak { .. } => code::AUTHENTICATE_NAK,
        }
    }

    /// The name RFC 1334 gives the code, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Repr::AuthenticateRequest { .. } => "Authenticate-Request",
            Repr::AuthenticateAck { .. } => "Authenticate-Ack",
            Repr::AuthenticateNak { .. } => "Authenticate-Nak",
        }
    }

    /// Bytes of data `emit_data` appends (the control header not included).
    pub fn buffer_len(&self) -> usize {
        let field = |bytes: &[u8]| 1 + bytes.len().min(MAX_FIELD);
        match self {
            Repr::AuthenticateRequest { peer_id, password } => field(peer_id) + field(password),
            Repr::AuthenticateAck { message } | Repr::AuthenticateNak { message } => field(message),
        }
    }

    /// Appends the packet's data (after the control header) to `out`.
    pub fn emit_data(&self, out: &mut Vec<u8>) {
        match self {
            Repr::AuthenticateRequest { peer_id, password } => {
                push_field(out, peer_id);
                push_field(out, password);
            }
            Repr::AuthenticateAck { message } | Repr::AuthenticateNak { message } => {
                push_field(out, message)
            }
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

/// Never shows the password.
impl fmt::Debug for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repr::AuthenticateRequest {
                peer_id,
                password: _,
            } => f
                .debug_struct("AuthenticateRequest")
                .field("peer_id", &Quoted(peer_id))
                .field("password", &format_args!("<hidden>"))
                .finish(),
            Repr::AuthenticateAck { message } => f
                .debug_struct("AuthenticateAck")
                .field("message", &Quoted(message))
                .finish(),
            Repr::AuthenticateNak { message } => f
                .debug_struct("AuthenticateNak")
                .field("message", &Quoted(message))
                .finish(),
        }
    }
}

/// As pppd's debug log prints it (`AuthReq user="cisco" password=<hidden>`,
/// `AuthAck "Login ok"`), without the identifier, which `control::Repr` holds.
impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repr::AuthenticateRequest {
                peer_id,
                password: _,
            } => {
                write!(f, "AuthReq user={} password=<hidden>", Quoted(peer_id))
            }
            Repr::AuthenticateAck { message } => write!(f, "AuthAck {}", Quoted(message)),
            Repr::AuthenticateNak { message } => write!(f, "AuthNak {}", Quoted(message)),
        }
    }
}

/// Bytes from the peer shown as pppd's `print_string` shows them: in double
/// quotes, printable ASCII as is (with `\` and `"` escaped), `\n`, `\r`,
/// `\t`, and any other byte as three octal digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Quoted<'a>(pub &'a [u8]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &byte in self.0 {
            match byte {
                b'\\' | b'"' => write!(f, "\\{}", char::from(byte))?,
                b' '..=b'~' => write!(f, "{}", char::from(byte))?,
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                b'\t' => f.write_str("\\t")?,
                other => write!(f, "\\{other:03o}")?,
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Debug for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // captures/public/zeek/pppoe.pcap (without padding): frame 11, the
    // client's Authenticate-Request with peer-id "cisco", password "cisco";
    static AUTH_REQ: [u8; 16] = [
        0x01, 0x01, 0x00, 0x10, 0x05, 0x63, 0x69, 0x73, 0x63, 0x6f, 0x05, 0x63, 0x69, 0x73, 0x63,
        0x6f,
    ];
    // frame 12, the AC's Authenticate-Ack with an empty message.
    static AUTH_ACK: [u8; 5] = [0x02, 0x01, 0x00, 0x05, 0x00];

    fn parse(packet: &[u8]) -> Result<Repr<'_>> {
        Repr::parse(&control::Repr::parse_bytes(packet)?)
    }

    #[test]
    fn authenticate_request_from_zeek() {
        let repr = parse(&AUTH_REQ).unwrap();
        assert_eq!(
            repr,
            Repr::AuthenticateRequest {
                peer_id: b"cisco",
                password: b"cisco"
            }
        );
        assert_eq!(repr.buffer_len(), AUTH_REQ.len() - 4);
        assert_eq!(repr.to_packet(1), AUTH_REQ);
        assert_eq!(repr.to_string(), "AuthReq user=\"cisco\" password=<hidden>");
    }

    #[test]
    fn authenticate_ack_from_zeek() {
        let repr = parse(&AUTH_ACK).unwrap();
        assert_eq!(repr, Repr::AuthenticateAck { message: b"" });
        assert_eq!(repr.to_packet(1), AUTH_ACK);
        assert_eq!(repr.to_string(), "AuthAck \"\"");
    }

    #[test]
    fn password_is_never_printed() {
        // Built, not captured: the zeek request's peer-id with a distinct password.
        let repr = Repr::AuthenticateRequest {
            peer_id: b"cisco",
            password: b"hunter2",
        };
        let packet = repr.to_packet(9);
        let parsed_back = parse(&packet).unwrap();
        assert_eq!(parsed_back, repr);
        for shown in [
            format!("{repr}"),
            format!("{repr:?}"),
            format!("{repr:#?}"),
            format!("{parsed_back:?}"),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("<hidden>"), "{shown}");
            assert!(shown.contains("cisco"), "{shown}");
        }
        assert_eq!(
            format!("{repr:?}"),
            "AuthenticateRequest { peer_id: \"cisco\", password: <hidden> }"
        );
    }

    #[test]
    fn nak_and_missing_message_length() {
        // Built, not captured: a Nak as RFC 1334 §2.2.2 describes it.
        let nak = Repr::AuthenticateNak {
            message: b"Login incorrect",
        };
        let packet = nak.to_packet(3);
        assert_eq!(packet[..5], [0x03, 0x03, 0x00, 0x14, 15]);
        assert_eq!(parse(&packet).unwrap(), nak);
        assert_eq!(nak.to_string(), "AuthNak \"Login incorrect\"");
        // An Ack with no Msg-Length byte at all reads as an empty message.
        assert_eq!(
            parse(&[0x02, 0x07, 0x00, 0x04]).unwrap(),
            Repr::AuthenticateAck { message: b"" }
        );
    }

    #[test]
    fn overrunning_lengths_are_truncated() {
        let mut long_peer = AUTH_REQ;
        long_peer[4] = 12;
        assert_eq!(parse(&long_peer), Err(Error::Truncated));
        let mut long_password = AUTH_REQ;
        long_password[10] = 6;
        assert_eq!(parse(&long_password), Err(Error::Truncated));
        // The zeek request cut before its Passwd-Length byte, and with no data.
        let no_password_length = [0x01, 0x01, 0x00, 0x0a, 0x05, b'c', b'i', b's', b'c', b'o'];
        assert_eq!(parse(&no_password_length), Err(Error::Truncated));
        assert_eq!(parse(&[0x01, 0x01, 0x00, 0x04]), Err(Error::Truncated));
        assert_eq!(
            parse(&[0x02, 0x01, 0x00, 0x05, 0x01]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn other_codes_are_unsupported() {
        assert_eq!(parse(&[0x04, 0x01, 0x00, 0x04]), Err(Error::Unsupported));
        assert_eq!(parse(&[0x00, 0x01, 0x00, 0x04]), Err(Error::Unsupported));
    }

    #[test]
    fn quoting_matches_pppd() {
        assert_eq!(
            Quoted(b"a\"b\\c\n\r\t\x01\xff").to_string(),
            "\"a\\\"b\\\\c\\n\\r\\t\\001\\377\""
        );
    }

    #[test]
    fn long_fields_are_truncated_on_emit() {
        let long = [b'x'; 300];
        let repr = Repr::AuthenticateRequest {
            peer_id: &long,
            password: b"pw",
        };
        let packet = repr.to_packet(1);
        assert_eq!(packet.len(), 4 + repr.buffer_len());
        assert_eq!(
            parse(&packet).unwrap(),
            Repr::AuthenticateRequest {
                peer_id: &long[..255],
                password: b"pw"
            }
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(code in 0u8..5, identifier in any::<u8>(),
                                       data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let control = control::Repr { code: Code::from(code), identifier, data: &data };
            if let Ok(repr) = Repr::parse(&control) {
                let _ = (repr.to_string(), format!("{repr:?}"));
                let packet = repr.to_packet(identifier);
                prop_assert_eq!(packet.len(), 4 + repr.buffer_len());
                prop_assert_eq!(parse(&packet), Ok(repr));
            }
        }
    }
}
