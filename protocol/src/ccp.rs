//! Compression Control Protocol options (RFC 1962). We never compress, so an
//! option here is only named (for logs and capture replay) and handed back
//! in a Configure-Reject; no option's data is interpreted except for
//! `Display`, which follows pppd's debug log (`<deflate 15>`, `<bsd v1 15>`).

use core::fmt;

use crate::lcp::{write_hex, write_unknown_option};
use crate::options::{push_option, OptionIter, RawOption};
use crate::Result;

/// CCP option type numbers (IANA "PPP CCP Configuration Option Types").
pub mod kind {
    pub const OUI: u8 = 0;
    pub const PREDICTOR_1: u8 = 1;
    pub const PREDICTOR_2: u8 = 2;
    pub const PUDDLE_JUMPER: u8 = 3;
    pub const HP_PPC: u8 = 16;
    pub const STAC_LZS: u8 = 17;
    /// Microsoft Point-to-Point Compression and Encryption (RFC 2118, RFC 3078).
    pub const MPPC: u8 = 18;
    pub const GANDALF_FZA: u8 = 19;
    pub const V42BIS: u8 = 20;
    pub const BSD_COMPRESS: u8 = 21;
    pub const LZS_DCP: u8 = 23;
    /// Magnalink MVRCA (RFC 1975), also used by drafts of Deflate before it
    /// got 26; pppd sends both when it offers Deflate.
    pub const MVRCA: u8 = 24;
    pub const DCE: u8 = 25;
    pub const DEFLATE: u8 = 26;
    pub const V44_LZJH: u8 = 27;
}

/// A name for any CCP option type, for logs.
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        kind::OUI => "OUI",
        kind::PREDICTOR_1 => "Predictor-1",
        kind::PREDICTOR_2 => "Predictor-2",
        kind::PUDDLE_JUMPER => "Puddle-Jumper",
        kind::HP_PPC => "HP-PPC",
        kind::STAC_LZS => "Stac-LZS",
        kind::MPPC => "MPPC/MPPE",
        kind::GANDALF_FZA => "Gandalf-FZA",
        kind::V42BIS => "V.42bis",
        kind::BSD_COMPRESS => "BSD-Compress",
        kind::LZS_DCP => "LZS-DCP",
        kind::MVRCA => "MVRCA/Deflate-draft",
        kind::DCE => "DCE",
        kind::DEFLATE => "Deflate",
        kind::V44_LZJH => "V.44/LZJH",
        _ => "unknown",
    }
}

/// One CCP configuration option, uninterpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CcpOption<'a> {
    pub kind: u8,
    pub data: &'a [u8],
}

impl<'a> CcpOption<'a> {
    /// Every framed option is acceptable: nothing is interpreted. Returns
    /// `Result` to match the other protocols' options.
    pub fn parse(raw: RawOption<'a>) -> Result<CcpOption<'a>> {
        Ok(CcpOption {
            kind: raw.kind,
            data: raw.data,
        })
    }

    /// Iterates the options of a Configure-* packet's data; a framing error
    /// yields `Err` once and ends the iteration.
    pub fn iter(data: &'a [u8]) -> impl Iterator<Item = Result<CcpOption<'a>>> + 'a {
        OptionIter::new(data).map(|raw| raw.and_then(CcpOption::parse))
    }

    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The option's name for logs.
    pub fn name(&self) -> &'static str {
        kind_name(self.kind)
    }

    /// Bytes `push_to` appends, header included.
    pub fn buffer_len(&self) -> usize {
        2 + self.data.len().min(253)
    }

    /// Appends the option to `out`, e.g. into a Configure-Reject.
    pub fn push_to(&self, out: &mut Vec<u8>) {
        push_option(out, self.kind, self.data);
    }
}

/// As pppd's `ccp_printpkt` prints it: Deflate, BSD-Compress, Predictor and
/// MPPE are decoded, their extra bytes and every other option shown in hex.
impl fmt::Display for CcpOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rest = match (self.kind, self.data) {
            (kind::DEFLATE | kind::MVRCA, [window, check, rest @ ..]) => {
                let draft = if self.kind == kind::MVRCA {
                    "(old#)"
                } else {
                    ""
                };
                write!(f, "<deflate{draft} {}", (window >> 4) + 8)?;
                // 8 is the only method RFC 1979 defines, 0 the sequence check.
                if window & 0x0f != 8 {
                    write!(f, " method {}", window & 0x0f)?;
                }
                if *check != 0 {
                    write!(f, " check {check}")?;
                }
                rest
            }
            (kind::BSD_COMPRESS, [bits, rest @ ..]) => {
                write!(f, "<bsd v{} {}", bits >> 5, bits & 0x1f)?;
                rest
            }
            (kind::PREDICTOR_1, rest) => {
                f.write_str("<predictor 1")?;
                rest
            }
            (kind::PREDICTOR_2, rest) => {
                f.write_str("<predictor 2")?;
                rest
            }
            (kind::MPPC, [a, b, c, d, rest @ ..]) => {
                write_mppe(f, [*a, *b, *c, *d])?;
                rest
            }
            (kind, data) => return write_unknown_option(f, kind, data),
        };
        write_hex(f, rest)?;
        f.write_str(">")
    }
}

/// pppd's MPPE summary (RFC 3078 §2.1 bits): `mppe +H -M +S -L -D -C`,
/// then ` +U (xx xx xx xx)` if bits outside the RFC are set.
fn write_mppe(f: &mut fmt::Formatter<'_>, bits: [u8; 4]) -> fmt::Result {
    const H: u8 = 0x01; // in the first byte: stateless
    const M: u8 = 0x80;
    const S: u8 = 0x40;
    const L: u8 = 0x20;
    const D: u8 = 0x10;
    const C: u8 = 0x01;
    let sign = |set: bool| if set { '+' } else { '-' };
    let [first, second, third, last] = bits;
    write!(
        f,
        "<mppe {}H {}M {}S {}L {}D {}C",
        sign(first & H != 0),
        sign(last & M != 0),
        sign(last & S != 0),
        sign(last & L != 0),
        sign(last & D != 0),
        sign(last & C != 0),
    )?;
    let unknown = first & !H != 0 || second != 0 || third != 0 || last & !(M | S | L | D | C) != 0;
    if unknown {
        write!(f, " +U ({first:02x} {second:02x} {third:02x} {last:02x})")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{self, Code};
    use crate::Error;
    use proptest::prelude::*;

    // captures/public/suricata-verify/pppoe_input.pcap (without padding):
    // frame 25, the client's Configure-Request offering Deflate 15 under
    // both numbers and BSD-Compress v1 15;
    static CONF_REQ: [u8; 15] = [
        0x01, 0x01, 0x00, 0x0f, 0x1a, 0x04, 0x78, 0x00, 0x18, 0x04, 0x78, 0x00, 0x15, 0x03, 0x2f,
    ];
    // frame 31, the AC's Configure-Reject of all three;
    static CONF_REJ: [u8; 15] = [
        0x04, 0x01, 0x00, 0x0f, 0x1a, 0x04, 0x78, 0x00, 0x18, 0x04, 0x78, 0x00, 0x15, 0x03, 0x2f,
    ];
    // frame 29, the AC's empty Configure-Request.
    static EMPTY_CONF_REQ: [u8; 4] = [0x01, 0x01, 0x00, 0x04];

    #[test]
    fn names_and_rejects_the_offered_options() {
        let control = control::Repr::parse_bytes(&CONF_REQ).unwrap();
        let offered: Vec<_> = CcpOption::iter(control.data)
            .collect::<Result<_>>()
            .unwrap();
        let names: Vec<_> = offered.iter().map(|o| o.name()).collect();
        assert_eq!(names, ["Deflate", "MVRCA/Deflate-draft", "BSD-Compress"]);
        let shown: Vec<_> = offered.iter().map(|o| o.to_string()).collect();
        assert_eq!(shown, ["<deflate 15>", "<deflate(old#) 15>", "<bsd v1 15>"]);

        // Rejecting everything reproduces the AC's Configure-Reject.
        let mut data = Vec::new();
        for option in &offered {
            option.push_to(&mut data);
        }
        let reject = control::Repr {
            code: Code::ConfigureReject,
            identifier: 1,
            data: &data,
        };
        assert_eq!(reject.to_vec(), CONF_REJ);

        let empty = control::Repr::parse_bytes(&EMPTY_CONF_REQ).unwrap();
        assert_eq!(CcpOption::iter(empty.data).count(), 0);
    }

    #[test]
    fn truncated_deflate_from_tcpdump() {
        // captures/public/tcpdump/ppp_ccp_config_deflate_option_asan.pcap,
        // the only frame after its Ethernet header and PPP protocol field:
        // a CCP Configure-Request claiming 15 bytes with 7 present, whose
        // Deflate-draft option claims 5 bytes with 3 present.
        let packet = [0x01, 0xdf, 0x00, 0x0f, 0x18, 0x05, 0xff];
        assert_eq!(control::Repr::parse_bytes(&packet), Err(Error::Truncated));
        let items: Vec<_> = CcpOption::iter(&packet[4..]).collect();
        assert_eq!(items, [Err(Error::Truncated)]);
    }

    #[test]
    fn display_like_pppd() {
        let cases: [(CcpOption<'_>, &str); 7] = [
            (
                CcpOption {
                    kind: 26,
                    data: &[0x79, 0x01],
                },
                "<deflate 15 method 9 check 1>",
            ),
            (CcpOption { kind: 1, data: &[] }, "<predictor 1>"),
            (CcpOption { kind: 2, data: &[] }, "<predictor 2>"),
            (
                CcpOption {
                    kind: 18,
                    data: &[0x01, 0, 0, 0x40],
                },
                "<mppe +H -M +S -L -D -C>",
            ),
            (
                CcpOption {
                    kind: 18,
                    data: &[0x03, 0, 0, 0x21],
                },
                "<mppe +H -M -S +L -D +C +U (03 00 00 21)>",
            ),
            (
                CcpOption {
                    kind: 17,
                    data: &[0, 1, 4],
                },
                "< 11 05 00 01 04>",
            ),
            (
                CcpOption {
                    kind: 26,
                    data: &[0x78],
                },
                "< 1a 03 78>",
            ),
        ];
        for (option, shown) in cases {
            assert_eq!(option.to_string(), shown);
        }
        assert_eq!(
            CcpOption {
                kind: 18,
                data: &[]
            }
            .name(),
            "MPPC/MPPE"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for option in CcpOption::iter(&bytes).flatten() {
                let _ = option.to_string();
                let mut out = Vec::new();
                option.push_to(&mut out);
                prop_assert_eq!(out.len(), option.buffer_len());
                let raw = OptionIter::new(&out).next().unwrap().unwrap();
                prop_assert_eq!(CcpOption::parse(raw), Ok(option));
            }
        }
    }
}
