//! Reading records out of pcap and pcapng files with the `pcap-file`
//! parsers, on a slice held in memory.
//!
//! The raw record parsers are used rather than the validating ones: those
//! reject a record whose original length exceeds the header's snapshot
//! length, which fuzzed and truncated captures (`tcpdump/mlppp-oobr.pcap`,
//! `tcpdump/heapoverflow-ppp_hdlc_if_print.pcap`) carry and tcpdump reads.

use pcap_file::pcap::{PcapHeader, PcapParser};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{PcapError, TsResolution};

use super::{CaptureError, FrameSink, RawFrame};

const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x4d, 0x3c, 0xb2, 0xa1],
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const PCAP_HEADER_LEN: usize = 24;
const PCAP_RECORD_HEADER_LEN: usize = 16;
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Feeds every record of `capture` to `decoder`.
pub(crate) fn read(capture: &[u8], decoder: &mut impl FrameSink) -> Result<(), CaptureError> {
    let magic = match capture.get(..4) {
        Some(magic) => magic,
        None if capture.is_empty() => return Err(CaptureError::Empty),
        None => {
            return Err(CaptureError::NotACapture {
                magic: capture.to_vec(),
            })
        }
    };
    if PCAP_MAGICS.iter().any(|known| known == magic) {
        read_pcap(capture, decoder)
    } else if magic == PCAPNG_MAGIC {
        read_pcapng(capture, decoder)
    } else {
        Err(CaptureError::NotACapture {
            magic: magic.to_vec(),
        })
    }
}

fn read_pcap(capture: &[u8], decoder: &mut impl FrameSink) -> Result<(), CaptureError> {
    let (mut rest, parser) = PcapParser::new(capture).map_err(|error| match error {
        PcapError::IncompleteBuffer => CaptureError::TruncatedHeader {
            format: "pcap",
            len: capture.len(),
        },
        other => CaptureError::InvalidHeader {
            format: "pcap",
            reason: other.to_string(),
        },
    })?;
    let header: PcapHeader = parser.header();
    let link_type = u32::from(header.datalink);
    let frac_to_nanos: i128 = match header.ts_resolution {
        TsResolution::MicroSecond => 1_000,
        TsResolution::NanoSecond => 1,
    };
    let mut offset = PCAP_HEADER_LEN;
    while !rest.is_empty() {
        match parser.next_raw_packet(rest) {
            Ok((remaining, record)) => {
                let timestamp_ns = i128::from(record.ts_sec) * NANOS_PER_SECOND
                    + i128::from(record.ts_frac) * frac_to_nanos;
                decoder.push_frame(RawFrame {
                    link_type,
                    timestamp_ns: Some(timestamp_ns),
                    original_len: record.orig_len,
                    data: &record.data,
                });
                offset = offset.saturating_add(rest.len() - remaining.len());
                rest = remaining;
            }
            Err(_) => {
                decoder.push_file_error(cut_record_message(rest, offset, &header));
                break;
            }
        }
    }
    Ok(())
}

/// Describes the record the file ends in the middle of.
fn cut_record_message(rest: &[u8], offset: usize, header: &PcapHeader) -> String {
    let claimed = rest
        .get(8..12)
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .map(|bytes| match header.endianness {
            pcap_file::Endianness::Big => u32::from_be_bytes(bytes),
            pcap_file::Endianness::Little => u32::from_le_bytes(bytes),
        });
    match (claimed, rest.len().checked_sub(PCAP_RECORD_HEADER_LEN)) {
        (Some(claimed), Some(present)) => format!(
            "capture file ends inside a record at byte {offset}: the record claims {claimed} \
             bytes, {present} are present"
        ),
        _ => format!(
            "capture file ends inside a record header at byte {offset}: {} of {} bytes",
            rest.len(),
            PCAP_RECORD_HEADER_LEN
        ),
    }
}

/// What the records of one pcapng interface need: its link type and how
/// long a timestamp unit is.
struct Interface {
    link_type: u32,
    resolution: Resolution,
}

/// A pcapng timestamp unit (`if_tsresol`): 10^-n or 2^-n seconds.
#[derive(Clone, Copy)]
enum Resolution {
    Decimal(u8),
    Binary(u8),
}

impl Resolution {
    /// pcapng's default is microseconds.
    const DEFAULT: Resolution = Resolution::Decimal(6);

    fn from_option(value: u8) -> Resolution {
        if value & 0x80 == 0 {
            Resolution::Decimal(value)
        } else {
            Resolution::Binary(value & 0x7f)
        }
    }

    /// Converts a count of units to nanoseconds; saturates rather than
    /// overflow on absurd resolutions.
    fn to_nanos(self, units: u64) -> i128 {
        let units = i128::from(units);
        match self {
            Resolution::Decimal(exponent) if exponent <= 9 => {
                units.saturating_mul(10i128.pow(9 - u32::from(exponent)))
            }
            Resolution::Decimal(exponent) => 10i128
                .checked_pow(u32::from(exponent) - 9)
                .map_or(0, |divisor| units / divisor),
            Resolution::Binary(exponent) => {
                let scaled = units.saturating_mul(NANOS_PER_SECOND);
                scaled.checked_shr(u32::from(exponent)).unwrap_or(0)
            }
        }
    }
}

fn read_pcapng(capture: &[u8], decoder: &mut impl FrameSink) -> Result<(), CaptureError> {
    let (mut rest, mut parser) = PcapNgParser::new(capture).map_err(|error| match error {
        PcapError::IncompleteBuffer => CaptureError::TruncatedHeader {
            format: "pcapng",
            len: capture.len(),
        },
        other => CaptureError::InvalidHeader {
            format: "pcapng",
            reason: other.to_string(),
        },
    })?;
    let mut offset = capture.len() - rest.len();
    while !rest.is_empty() {
        let (remaining, block) = match parser.next_block(rest) {
            Ok(parsed) => parsed,
            Err(error) => {
                // A block whose frame is sound but whose body is not can be
                // skipped; anything else ends the file.
                let message = format!("pcapng block at byte {offset} unreadable: {error}");
                decoder.push_file_error(message);
                match parser.next_raw_block(rest) {
                    Ok((remaining, _)) => {
                        offset = offset.saturating_add(rest.len() - remaining.len());
                        rest = remaining;
                        continue;
                    }
                    Err(_) => break,
                }
            }
        };
        offset = offset.saturating_add(rest.len() - remaining.len());
        rest = remaining;
        let (interface_id, timestamp_units, original_len, data) = match &block {
            Block::EnhancedPacket(packet) => (
                packet.interface_id,
                // pcap-file 2.0 stores the raw count as nanoseconds whatever
                // the interface's resolution; it is converted below.
                Some(u64::try_from(packet.timestamp.as_nanos()).unwrap_or(u64::MAX)),
                packet.original_len,
                &packet.data[..],
            ),
            Block::SimplePacket(packet) => (0, None, packet.original_len, &packet.data[..]),
            Block::Packet(packet) => (
                u32::from(packet.interface_id),
                Some(packet.timestamp),
                packet.original_len,
                &packet.data[..],
            ),
            _ => continue,
        };
        match interface(&parser, interface_id) {
            Some(interface) => decoder.push_frame(RawFrame {
                link_type: interface.link_type,
                timestamp_ns: timestamp_units.map(|units| interface.resolution.to_nanos(units)),
                original_len,
                data,
            }),
            None => {
                // Still a frame: count it, with the reason it cannot be read.
                decoder.push_frame(RawFrame {
                    link_type: UNDESCRIBED_INTERFACE,
                    timestamp_ns: None,
                    original_len,
                    data,
                });
            }
        }
    }
    Ok(())
}

/// A link type no file uses (the reserved top of the 16-bit range), given
/// to packets that name an interface no block describes.
pub(crate) const UNDESCRIBED_INTERFACE: u32 = 0xffff;

fn interface(parser: &PcapNgParser, interface_id: u32) -> Option<Interface> {
    let description = parser
        .interfaces()
        .get(usize::try_from(interface_id).ok()?)?;
    let resolution = description
        .options
        .iter()
        .find_map(|option| match option {
            InterfaceDescriptionOption::IfTsResol(value) => Some(Resolution::from_option(*value)),
            _ => None,
        })
        .unwrap_or(Resolution::DEFAULT);
    Some(Interface {
        link_type: u32::from(description.linktype),
        resolution,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_convert_to_nanoseconds() {
        assert_eq!(Resolution::DEFAULT.to_nanos(1_500_000), 1_500_000_000);
        assert_eq!(Resolution::Decimal(9).to_nanos(7), 7);
        assert_eq!(Resolution::Decimal(12).to_nanos(7_000), 7);
        assert_eq!(Resolution::Binary(10).to_nanos(1024), 1_000_000_000);
        assert_eq!(Resolution::Decimal(127).to_nanos(u64::MAX), 0);
        assert_eq!(Resolution::Binary(127).to_nanos(u64::MAX), 0);
    }
}
