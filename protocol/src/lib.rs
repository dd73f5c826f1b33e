//! Wire formats a PPPoE dialer meets, in the style of smoltcp's `wire` module.
//!
//! Every format has a zero-copy view (`Packet<T: AsRef<[u8]>>` or similar) whose
//! `new_checked` is the only entry point for untrusted bytes, and a plain `Repr`
//! value with `parse`, `emit` and `buffer_len`. The contract, written once here:
//!
//! * after `new_checked` succeeds, no getter and no `Repr::parse` panics, whatever
//!   the bytes are;
//! * `Repr::emit` never panics on a buffer of at least `buffer_len()` bytes.
//!
//! This crate does no I/O, reads no clock and draws no random numbers.

#![forbid(unsafe_code)]

pub mod ccp;
pub mod chap;
pub mod control;
pub mod encap;
pub mod ethernet;
pub mod ip;
pub mod ipcp;
pub mod ipv6cp;
pub mod lcp;
pub mod options;
pub mod pap;
pub mod ppp;
pub mod pppoe;

use core::fmt;

/// Why bytes could not be parsed. Flat and payload-free: it is returned on the
/// per-packet path, and callers count it rather than print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than a header or than a length field claims.
    Truncated,
    /// A field holds a value the format does not allow (bad version, length
    /// shorter than the header, option length below 2, ...).
    Malformed,
    /// A well-formed value this crate does not handle (e.g. an unexpected
    /// EtherType where a PPPoE frame was required).
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated",
            Error::Malformed => "malformed",
            Error::Unsupported => "unsupported",
        })
    }
}

impl std::error::Error for Error {}

pub type Result<T> = core::result::Result<T, Error>;

/// A byte range of a header field.
pub(crate) type Field = core::ops::Range<usize>;
/// The rest of a packet from a given offset.
pub(crate) type Rest = core::ops::RangeFrom<usize>;
