//! `portdial replay`: decodes a capture file through our own parsers
//! (`portdial_protocol`) and tells what happened in each PPPoE session.
//!
//! [`decode`] is pure: bytes in, [`Report`] out. It never panics, whatever
//! the bytes; a frame it cannot decode becomes an entry of
//! [`Report::errors`] and decoding goes on with the next frame.
//!
//! # Input
//!
//! Classic pcap (micro- or nanosecond, either byte order) and pcapng, told
//! apart by their magic number. Link types (the low 16 bits of the pcap
//! header's field, as libpcap's `LT_LINKTYPE` reads it: fuzzed files set FCS
//! bits above them, e.g. `0x30000032`):
//!
//! * 1 Ethernet: PPPoE discovery (0x8863) and session (0x8864) frames, up to
//!   two VLAN tags, and EtherType 0x880b (raw PPP over Ethernet, no PPPoE).
//!   Frames with any other EtherType are counted and shown but belong to no
//!   session; PPPoE nested deeper (e.g. inside a UDP lawful-intercept tunnel,
//!   as in `tcpdump/bcm-li.pcap`) is not looked for.
//! * 9 PPP and 204 PPP with direction (one byte: 0 received, else sent),
//!   both with an optional `ff 03` address/control;
//! * 50 PPP in HDLC framing (`ff 03`, or no address/control at all; Cisco
//!   HDLC frames, address 0x0f/0x8f, are counted but not decoded);
//! * 113 Linux cooked (SLL) and 276 SLL2, carrying PPPoE or 0x880b.
//!
//! The header's snapshot length is not enforced: records longer than it (or
//! than their original length) are decoded as they are.
//!
//! # Sessions
//!
//! A session is keyed by (PPPoE session id, AC MAC, client MAC). A PADS
//! always opens a new session; a session frame or PADT joins the most recent
//! session with its id whose MAC addresses it matches, or else the most
//! recent one with its id that shares one address with it (real captures
//! taken at a mirror port carry rewritten addresses, as
//! `zeek/pppoe-over-qinq.pcap` does), or else opens a session of its own.
//! PPP without PPPoE (link types 9, 50, 204, EtherType 0x880b) forms
//! sessions with a `null` session id; without addresses or a direction
//! byte, all of it is one session. A frame joins a session once its PPP
//! protocol field is read; frames whose PPPoE header is bad join none.
//!
//! PADI, PADO and PADR are held until a PADS and attached to the session it
//! opens when their Host-Uniq matches the PADS's, or, without Host-Uniq,
//! when their client and AC addresses do. Discovery that no PADS concludes
//! (a lone PADI, as in `tcpdump/pppoe.pcap`) opens no session; the text
//! output lists it.
//!
//! Which side is the access concentrator is decided by the strongest
//! evidence seen, strongest first:
//! 1. discovery: the sender of PADO and PADS is the AC, of PADI and PADR
//!    the client;
//! 2. authentication: the AC sends the LCP Configure-Request asking for an
//!    Authentication-Protocol, PAP Authenticate-Ack/Nak and CHAP
//!    Challenge/Success/Failure; the client sends PAP Authenticate-Request
//!    and CHAP Response;
//! 3. addressing: the AC sends an IPCP Configure-Nak carrying a non-zero
//!    IP-Address; the client sends an IPCP Configure-Request for 0.0.0.0 or
//!    for DNS servers;
//! 4. a guess for data-only sessions: the client is the side that sent the
//!    first TCP SYN (subscribers open connections), or else the side that
//!    sent the session's first frame. The text output says when roles are
//!    guessed.
//!
//! # Summary fields
//!
//! An acknowledged request is read from the Configure-Ack, whose options
//! RFC 1661 requires to be the request's, byte for byte; the last Ack in
//! each direction counts.
//! * `mru`: the MRU option of the client's acknowledged LCP request (the
//!   Ack sent by the AC); `null` if that request carried none (the RFC 1661
//!   default of 1500 then applies) or none was acknowledged;
//! * `auth`: the Authentication-Protocol of the AC's acknowledged LCP
//!   request (`pap`, `chap-md5`, `mschap`, `mschap-v2`, `eap`, or the
//!   protocol number as `0x....`); `none` when LCP completed (an Ack in each
//!   direction) without one; `null` otherwise;
//! * `auth_result`: the last PAP Authenticate-Ack/Nak or CHAP
//!   Success/Failure;
//! * `local_ip`, `dns`: the IP-Address and DNS options of the client's
//!   acknowledged IPCP request; `peer_ip`: the IP-Address of the AC's;
//! * `ipv6_interface_id`: the Interface-Identifier of the client's
//!   acknowledged IPv6CP request, as `xxxx:xxxx:xxxx:xxxx`;
//! * `terminated_by`: the first of a PADT or an LCP Terminate-Request;
//! * `data_packets`, `data_bytes`: PPP frames carrying IPv4 or IPv6 and
//!   their PPP payload bytes (after the protocol field, bounded by the PPPoE
//!   length; for raw PPP, the original length of a frame cut by the snapshot
//!   length counts).
//!
//! Without sides (raw PPP with neither addresses nor direction), who acked
//! what is unknown, so the fields that depend on it stay `null`.
//!
//! # Errors
//!
//! `errors` lists each frame that could not be decoded (a header cut short,
//! a length field overrunning the bytes captured, an option list that
//! overruns its packet — whatever parsed before the fault is still shown)
//! with the frame's number; `malformed` counts those frames. A PPPoE length
//! shorter than the Ethernet payload is not an error (the PPPoE length
//! wins, as RFC 2516 says); the text output notes it.
//!
//! Problems of the file itself are errors of [`decode`] ([`CaptureError`])
//! when nothing can be read: an empty file, an unknown magic number, a
//! header cut short. A file cut in the middle of a record (a capture that
//! was still being written) is not: the frames before the cut are decoded
//! and the cut is reported in `errors`, numbered as the frame that would
//! have come next, and not counted in `frames` or `malformed`.

mod capture;
mod ip;
mod link;
pub mod ports;
mod ppp;
mod session;
mod text;

use std::io::Read;

use serde::Serialize;

pub use text::write_text;

/// Why a file could not be read as a capture at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("the file is empty, not a capture")]
    Empty,
    #[error("not a capture file: magic number {magic:02x?} is neither pcap nor pcapng")]
    NotACapture { magic: Vec<u8> },
    #[error("{format} file header cut short: {len} bytes")]
    TruncatedHeader { format: &'static str, len: usize },
    #[error("invalid {format} file header: {reason}")]
    InvalidHeader {
        format: &'static str,
        reason: String,
    },
    #[error("cannot read the capture: {0}")]
    Io(#[from] std::io::Error),
}

/// Everything replay found in a capture. Serializes to the `--json` output.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Records read from the file.
    pub frames: u64,
    /// Frames with at least one entry in `errors`.
    pub malformed: u64,
    pub sessions: Vec<SessionSummary>,
    pub errors: Vec<FrameError>,
    /// One line per frame, for the text output.
    #[serde(skip)]
    pub lines: Vec<FrameLine>,
    /// Discovery frames that no PADS concluded, described, for the text
    /// output.
    #[serde(skip)]
    pub unconcluded_discovery: Vec<String>,
    /// The entries of `errors` about the file rather than a frame.
    #[serde(skip)]
    pub file_errors: Vec<FrameError>,
}

/// What one session negotiated and carried; see the module documentation
/// for the exact meaning of each field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    pub session_id: Option<u16>,
    pub ac_mac: Option<String>,
    pub client_mac: Option<String>,
    pub ac_name: Option<String>,
    pub service_name: Option<String>,
    pub auth: Option<String>,
    pub auth_result: Option<String>,
    pub mru: Option<u16>,
    pub local_ip: Option<String>,
    pub peer_ip: Option<String>,
    pub dns: Vec<String>,
    pub ipv6_interface_id: Option<String>,
    pub terminated_by: Option<String>,
    pub data_packets: u64,
    pub data_bytes: u64,
    /// Remarks for the text output (how roles were decided, the AC's MRU,
    /// length mismatches, ...).
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// A frame that could not be decoded, or a fault of the file (then `frame`
/// is the number the next frame would have had).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FrameError {
    pub frame: u64,
    pub error: String,
}

/// One frame as the text output shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameLine {
    pub number: u64,
    /// Nanoseconds since the first frame (negative if the capture goes back
    /// in time); `None` when the format has no timestamp (pcapng simple
    /// packet blocks).
    pub relative_ns: Option<i128>,
    pub text: String,
    pub errors: Vec<String>,
}

/// One record of a capture file, as [`Decoder::push_frame`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    /// The link type as the file gives it (FCS bits above the low 16 are
    /// allowed and ignored).
    pub link_type: u32,
    /// Nanoseconds since the Unix epoch, if the format has a timestamp.
    pub timestamp_ns: Option<i128>,
    /// The frame's length on the wire, which may exceed `data`.
    pub original_len: u32,
    pub data: &'a [u8],
}

/// Whatever consumes a capture's records: the [`Decoder`], or the port
/// accounting of `replay --ports`.
pub trait FrameSink {
    fn push_frame(&mut self, frame: RawFrame<'_>);
    fn push_file_error(&mut self, error: String);
}

impl FrameSink for Decoder {
    fn push_frame(&mut self, frame: RawFrame<'_>) {
        Decoder::push_frame(self, frame)
    }

    fn push_file_error(&mut self, error: String) {
        Decoder::push_file_error(self, error)
    }
}

/// Feeds every record of a capture file to `sink`.
pub fn read_frames(capture: &[u8], sink: &mut impl FrameSink) -> Result<(), CaptureError> {
    capture::read(capture, sink)
}

/// Decodes frames one by one and keeps track of the sessions they belong
/// to. [`decode`] drives it from a capture file; tests drive it directly.
#[derive(Debug, Default)]
pub struct Decoder {
    report: Report,
    first_timestamp: Option<i128>,
    tracker: session::Tracker,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decodes one frame: appends its line, its errors, and its effect on
    /// the sessions.
    pub fn push_frame(&mut self, frame: RawFrame<'_>) {
        self.report.frames += 1;
        let number = self.report.frames;
        let relative_ns = frame.timestamp_ns.map(|timestamp| {
            let first = *self.first_timestamp.get_or_insert(timestamp);
            timestamp.saturating_sub(first)
        });
        let decoded = link::decode(frame);
        if let Some(event) = decoded.event {
            self.tracker.apply(number, event);
        }
        if !decoded.errors.is_empty() {
            self.report.malformed += 1;
            self.report
                .errors
                .extend(decoded.errors.iter().map(|error| FrameError {
                    frame: number,
                    error: error.clone(),
                }));
        }
        self.report.lines.push(FrameLine {
            number,
            relative_ns,
            text: decoded.text,
            errors: decoded.errors,
        });
    }

    /// Records a fault of the file itself (e.g. a record cut short).
    pub fn push_file_error(&mut self, error: String) {
        let error = FrameError {
            frame: self.report.frames.saturating_add(1),
            error,
        };
        tracing::warn!(frame = error.frame, "{}", error.error);
        self.report.errors.push(error.clone());
        self.report.file_errors.push(error);
    }

    /// Ends decoding and summarizes the sessions.
    pub fn finish(self) -> Report {
        let mut report = self.report;
        let (sessions, unconcluded) = self.tracker.finish();
        report.sessions = sessions;
        report.unconcluded_discovery = unconcluded;
        report
    }
}

/// Decodes a whole capture file held in memory.
pub fn decode(capture: &[u8]) -> Result<Report, CaptureError> {
    let mut decoder = Decoder::new();
    capture::read(capture, &mut decoder)?;
    Ok(decoder.finish())
}

/// Reads a capture to its end, then [`decode`]s it.
pub fn decode_reader(mut reader: impl Read) -> Result<Report, CaptureError> {
    let mut capture = Vec::new();
    reader.read_to_end(&mut capture)?;
    decode(&capture)
}
