//! The option format shared by LCP and the NCPs (RFC 1661 §6):
//! `type (1) | length (2..=255, counting these two bytes) | data`.

use crate::{Error, Result};

/// One option as it appears on the wire, before a protocol gives it meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    pub kind: u8,
    pub data: &'a [u8],
}

impl<'a> RawOption<'a> {
    /// The option's bytes as they would be emitted.
    pub fn buffer_len(&self) -> usize {
        2 + self.data.len()
    }

    /// Appends the option to `out`. Data longer than 253 bytes cannot be
    /// expressed and is truncated.
    pub fn push_to(&self, out: &mut Vec<u8>) {
        push_option(out, self.kind, self.data);
    }
}

/// Appends one option to `out`, truncating data beyond the 253 bytes the
/// one-byte length allows.
pub fn push_option(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    let data = &data[..data.len().min(253)];
    out.push(kind);
    out.push((data.len() + 2) as u8);
    out.extend_from_slice(data);
}

/// Iterates the options of a Configure-* packet. Yields `Err` once for an
/// option whose length is below 2 or overruns the data, then stops.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> OptionIter<'a> {
    pub fn new(data: &'a [u8]) -> OptionIter<'a> {
        OptionIter {
            rest: data,
            failed: false,
        }
    }

    /// Checks the whole list at once: every option well-formed.
    pub fn validate(data: &'a [u8]) -> Result<()> {
        OptionIter::new(data).try_for_each(|option| option.map(|_| ()))
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<RawOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 2 {
            self.failed = true;
            return Some(Err(Error::Truncated));
        }
        let kind = self.rest[0];
        let len = usize::from(self.rest[1]);
        if len < 2 {
            self.failed = true;
            return Some(Err(Error::Malformed));
        }
        if len > self.rest.len() {
            self.failed = true;
            return Some(Err(Error::Truncated));
        }
        let data = &self.rest[2..len];
        self.rest = &self.rest[len..];
        Some(Ok(RawOption { kind, data }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Options of the AC's LCP Configure-Request in captures/public/zeek/pppoe.pcap
    // (frame 6): MRU 1492, Authentication-Protocol PAP, Magic-Number.
    static OPTIONS: [u8; 14] = [
        0x01, 0x04, 0x05, 0xd4, 0x03, 0x04, 0xc0, 0x23, 0x05, 0x06, 0x01, 0xfc, 0xcb, 0xfb,
    ];

    #[test]
    fn iterates_options() {
        let options: Vec<_> = OptionIter::new(&OPTIONS).collect::<Result<_>>().unwrap();
        assert_eq!(
            options,
            vec![
                RawOption {
                    kind: 1,
                    data: &[0x05, 0xd4]
                },
                RawOption {
                    kind: 3,
                    data: &[0xc0, 0x23]
                },
                RawOption {
                    kind: 5,
                    data: &[0x01, 0xfc, 0xcb, 0xfb]
                },
            ]
        );
    }

    #[test]
    fn emits_what_it_parses() {
        let mut out = Vec::new();
        for option in OptionIter::new(&OPTIONS) {
            option.unwrap().push_to(&mut out);
        }
        assert_eq!(out, OPTIONS);
    }

    #[test]
    fn bad_lengths_stop_iteration_with_one_error() {
        // Lengths 0 and 1 are malformed; 255 overruns; a lone type byte is truncated.
        for bad in [&[1u8, 0][..], &[1, 1], &[1, 255, 0], &[1]] {
            let items: Vec<_> = OptionIter::new(bad).collect();
            assert_eq!(items.len(), 1, "{bad:?}");
            assert!(items[0].is_err());
            assert!(OptionIter::validate(bad).is_err());
        }
    }
}
