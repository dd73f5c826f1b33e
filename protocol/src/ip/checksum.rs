//! The internet checksum (RFC 1071) and its incremental update (RFC 1624):
//! the one place the IPv4 header, TCP, UDP and ICMP checksums are computed.
//!
//! Sums here are 16-bit one's complement sums, folded but not complemented;
//! a checksum field holds the complement of the sum ([`finish`]), and a
//! region whose sum folds to `0xffff` verifies.

use std::net::IpAddr;

/// Folds a wide accumulator into a 16-bit one's complement sum.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// One's complement sum of `bytes` as big-endian 16-bit words; an odd last
/// byte is padded with a zero, as RFC 1071 does.
pub fn data(bytes: &[u8]) -> u16 {
    // The sum commutes with byte swapping (RFC 1071 §2(B)): add the bytes
    // as native-endian 32-bit halves of 8-byte words, fold, and swap once
    // at the end. Half the work of big-endian 16-bit words, and it
    // vectorizes; checksums of whole packets are on the offload data path
    // (perf). A u64 accumulator of u32s cannot overflow below 16 GiB.
    let mut sum: u64 = 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let value = u64::from_ne_bytes(word);
        sum += (value >> 32) + (value & 0xffff_ffff);
    }
    let mut pairs = chunks.remainder().chunks_exact(2);
    for pair in &mut pairs {
        sum += u64::from(u16::from_ne_bytes([pair[0], pair[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    u16::from_be(fold(sum))
}

/// Adds 16-bit one's complement sums.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&sum| u64::from(sum)).sum())
}

/// The value a checksum field holds for a region summing to `sum`.
pub fn finish(sum: u16) -> u16 {
    !sum
}

/// Sum of the pseudo-header that TCP, UDP and ICMPv6 checksums cover:
/// RFC 793 §3.1 for IPv4 (`src | dst | 0 | protocol | length16`) and
/// RFC 8200 §8.1 for IPv6 (`src | dst | length32 | 0 0 0 | next header`).
/// Both reduce to the same sum of address words, protocol and length, so one
/// function serves either family.
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: u8, length: u32) -> u16 {
    let length = u64::from(length >> 16) + u64::from(length & 0xffff);
    fold(u64::from(address(src)) + u64::from(address(dst)) + u64::from(protocol) + length)
}

fn address(address: &IpAddr) -> u16 {
    match address {
        IpAddr::V4(v4) => data(&v4.octets()),
        IpAddr::V6(v6) => data(&v6.octets()),
    }
}

/// RFC 1624 eqn. 3: the new checksum field after a 16-bit word covered by
/// `checksum` changes from `old` to `new`: `HC' = ~(~HC + ~m + m')`.
pub fn update(checksum: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!checksum) + u64::from(!old) + u64::from(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    // RFC 1071 §3 worked example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
    #[test]
    fn rfc1071_example() {
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
        // The same bytes split at an even boundary combine to the same sum.
        assert_eq!(
            combine(&[
                data(&[0x00, 0x01, 0xf2, 0x03]),
                data(&[0xf4, 0xf5, 0xf6, 0xf7])
            ]),
            0xddf2
        );
    }

    #[test]
    fn odd_length_is_zero_padded() {
        assert_eq!(data(&[0x12]), 0x1200);
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(data(&[]), 0);
    }

    #[test]
    fn long_input_matches_word_by_word_sum() {
        let bytes: Vec<u8> = (0..1001u32).map(|i| (i * 37 + 11) as u8).collect();
        let mut sum: u64 = 0;
        for pair in bytes.chunks(2) {
            sum += u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
        assert_eq!(data(&bytes), fold(sum));
    }

    #[test]
    fn pseudo_header_matches_explicit_layout() {
        let (s4, d4) = (
            Ipv4Addr::new(10, 100, 0, 0),
            Ipv4Addr::new(142, 250, 179, 131),
        );
        let mut layout = Vec::new();
        layout.extend_from_slice(&s4.octets());
        layout.extend_from_slice(&d4.octets());
        layout.extend_from_slice(&[0, 6, 0, 40]);
        assert_eq!(pseudo_header(&s4.into(), &d4.into(), 6, 40), data(&layout));

        let s6: Ipv6Addr = "fe80::ce05:eff:fe88:0".parse().unwrap();
        let d6: Ipv6Addr = "ff02::1:2".parse().unwrap();
        let mut layout = Vec::new();
        layout.extend_from_slice(&s6.octets());
        layout.extend_from_slice(&d6.octets());
        layout.extend_from_slice(&70_000u32.to_be_bytes());
        layout.extend_from_slice(&[0, 0, 0, 17]);
        assert_eq!(
            pseudo_header(&s6.into(), &d6.into(), 17, 70_000),
            data(&layout)
        );
    }

    #[test]
    fn incremental_update_matches_recomputation() {
        let mut bytes = [0x45u8, 0x00, 0x00, 0x3c, 0x12, 0x34, 0x05, 0xb4, 0xab, 0xcd];
        let checksum = finish(data(&bytes));
        bytes[6..8].copy_from_slice(&1400u16.to_be_bytes());
        assert_eq!(update(checksum, 0x05b4, 1400), finish(data(&bytes)));
    }
}
