//! `--capture FILE.pcap`: every Ethernet frame the dialer sends or receives,
//! in a classic pcap file (link type Ethernet, snaplen 65535, microsecond
//! timestamps) that tshark and tcpdump read. Both directions go into one file;
//! the Ethernet source address tells them apart.
//!
//! Frames are buffered and written out by [`Capture::flush`], which the data
//! path calls after each batch of frames (and `Drop` calls at the end), so the
//! file is complete up to the last batch even when the daemon is killed.
//!
//! PAP sends the password in clear, so by default the copy written here has
//! the password of every PAP Authenticate-Request replaced by `*` bytes of
//! the same length (`--capture-secrets` keeps it). CHAP responses are hashes
//! and are kept.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use portdial_protocol::control;
use portdial_protocol::encap;
use portdial_protocol::pap;
use portdial_protocol::ppp::Protocol;

/// The largest frame part kept; longer frames are cut (pcap's snaplen).
pub const SNAPLEN: u32 = 65535;

/// The file, shared between the pcap writer (which owns its writer and has
/// no way to flush it) and [`Capture::flush`].
#[derive(Clone)]
struct SharedFile(Arc<Mutex<BufWriter<File>>>);

impl SharedFile {
    fn with<T>(&self, f: impl FnOnce(&mut BufWriter<File>) -> T) -> T {
        let mut file = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut file)
    }
}

impl Write for SharedFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.with(|file| file.write(bytes))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.with(|file| file.flush())
    }
}

#[derive(Debug)]
pub struct CaptureError {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "capture file {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for CaptureError {}

/// An open capture file.
pub struct Capture {
    path: PathBuf,
    file: SharedFile,
    writer: PcapWriter<SharedFile>,
    redact_pap: bool,
    /// A copy of the frame being redacted, reused.
    scratch: Vec<u8>,
    frames: u64,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("path", &self.path)
            .field("redact_pap", &self.redact_pap)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// Creates (or truncates) the file, mode 0600 since it holds the
    /// session's traffic, and writes the pcap header. PAP passwords are
    /// redacted unless [`Capture::set_redact_pap`] says otherwise.
    pub fn create(path: &Path) -> Result<Capture, CaptureError> {
        let error = |reason: String| CaptureError {
            path: path.to_owned(),
            reason,
        };
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| error(source.to_string()))?;
        let file = SharedFile(Arc::new(Mutex::new(BufWriter::new(file))));
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(file.clone(), header)
            .map_err(|source| error(pcap_reason(source)))?;
        let mut capture = Capture {
            path: path.to_owned(),
            file,
            writer,
            redact_pap: true,
            scratch: Vec::new(),
            frames: 0,
        };
        // The header alone already makes a valid, empty capture.
        capture.flush()?;
        Ok(capture)
    }

    /// Whether PAP passwords are masked (default: yes).
    pub fn set_redact_pap(&mut self, redact: bool) {
        self.redact_pap = redact;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Buffers one Ethernet frame taken or sent at `timestamp`; call
    /// [`Capture::flush`] after a batch.
    pub fn write(&mut self, frame: &[u8], timestamp: SystemTime) -> Result<(), CaptureError> {
        let since_epoch = timestamp
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let kept_len = frame.len().min(SNAPLEN as usize);
        let kept = frame.get(..kept_len).unwrap_or(frame);
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let data = if self.redact_pap && is_pap_request(kept) {
            self.scratch.clear();
            self.scratch.extend_from_slice(kept);
            redact_pap_password(&mut self.scratch);
            &self.scratch[..]
        } else {
            kept
        };
        self.writer
            .write_packet(&PcapPacket::new(since_epoch, orig_len, data))
            .map_err(|source| CaptureError {
                path: self.path.clone(),
                reason: pcap_reason(source),
            })?;
        self.frames += 1;
        Ok(())
    }

    /// Writes the buffered frames to the file.
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        self.file
            .with(|file| file.flush())
            .map_err(|source| CaptureError {
                path: self.path.clone(),
                reason: source.to_string(),
            })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

fn pcap_reason(error: PcapError) -> String {
    match error {
        PcapError::IoError(source) => source.to_string(),
        other => other.to_string(),
    }
}

/// Where a PAP Authenticate-Request's data is in `frame`, if it is one.
fn pap_request_data(frame: &[u8]) -> Option<std::ops::Range<usize>> {
    let session = encap::decapsulate(frame).ok()?;
    if Protocol::from(session.protocol) != Protocol::Pap {
        return None;
    }
    let payload = frame.get(session.payload.clone())?;
    let (&code, _) = payload.split_first()?;
    if code != pap::code::AUTHENTICATE_REQUEST {
        return None;
    }
    let data_start = session.payload.start.checked_add(control::HEADER_LEN)?;
    // A request cut short or with a bad length still gets masked: the data
    // runs to the end of the PPPoE payload.
    let data_end = match control::Packet::new_checked(payload) {
        Ok(packet) => session
            .payload
            .start
            .checked_add(usize::from(packet.length()))?,
        Err(_) => session.payload.end,
    };
    (data_start <= data_end).then_some(data_start..data_end)
}

fn is_pap_request(frame: &[u8]) -> bool {
    pap_request_data(frame).is_some()
}

/// Replaces the password of a PAP Authenticate-Request in an Ethernet frame
/// with `*` bytes of the same length; returns whether the frame was one. A
/// request too malformed to find the password in has everything after the
/// Peer-ID masked instead (or all its data, if even the Peer-ID is cut).
pub fn redact_pap_password(frame: &mut [u8]) -> bool {
    let Some(data_range) = pap_request_data(frame) else {
        return false;
    };
    let Some(data) = frame.get_mut(data_range) else {
        return false;
    };
    // Data: Peer-ID-Length, Peer-ID, Passwd-Length, Password (RFC 1334 §2.2.1).
    let password_field = data
        .first()
        .and_then(|&peer_id_len| usize::from(peer_id_len).checked_add(1))
        .filter(|&start| start < data.len());
    match password_field {
        Some(start) => {
            if let Some(field) = data.get_mut(start..) {
                mask_password_field(field);
            }
        }
        None => {
            if let Some(rest) = data.get_mut(1..) {
                rest.fill(b'*');
            }
        }
    }
    true
}

/// Masks a length-prefixed password field: the bytes its length covers (as
/// far as they go), keeping the length byte so the packet still parses.
fn mask_password_field(field: &mut [u8]) {
    let Some((len, rest)) = field.split_first_mut() else {
        return;
    };
    let covered = usize::from(*len).min(rest.len());
    if let Some(password) = rest.get_mut(..covered) {
        password.fill(b'*');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;
    use std::fs;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("portdial-capture-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn bytes(hex_text: &str) -> Vec<u8> {
        hex::decode(hex_text).unwrap()
    }

    // captures/public/zeek/pppoe.pcap frame 11: PAP Authenticate-Request from
    // the client cc:05:0e:88:00:00, Peer-ID "cisco", Password "cisco", padded
    // to 60 bytes.
    const PAP_REQUEST: &str = "ca010e880006cc050e8800008864110000110012c0230101001005636973636f\
        05636973636f00000000000000000000000000000000000000000000";

    // Same capture, frame 12: the AC's Authenticate-Ack with an empty message.
    const PAP_ACK: &str = "cc050e880000ca010e8800068864110000110007c023020100050000000000000000\
        0000000000000000000000000000000000000000000000000000";

    fn read_back(path: &Path) -> (PcapHeader, Vec<(Duration, u32, Vec<u8>)>) {
        let mut reader = PcapReader::new(File::open(path).unwrap()).unwrap();
        let header = reader.header();
        let mut packets = Vec::new();
        while let Some(packet) = reader.next_packet() {
            let packet = packet.unwrap();
            packets.push((packet.timestamp, packet.orig_len, packet.data.into_owned()));
        }
        (header, packets)
    }

    #[test]
    fn fixtures_are_sixty_bytes() {
        assert_eq!(bytes(PAP_REQUEST).len(), 60);
        assert_eq!(bytes(PAP_ACK).len(), 60);
    }

    #[test]
    fn writes_a_readable_capture_with_the_password_masked() {
        let dir = temp_dir("masked");
        let path = dir.join("out.pcap");
        let request_time = UNIX_EPOCH + Duration::new(1_284_385_409, 341_560_000);
        let ack_time = UNIX_EPOCH + Duration::new(1_284_385_410, 484_560_789);
        let mut capture = Capture::create(&path).unwrap();
        capture.write(&bytes(PAP_REQUEST), request_time).unwrap();
        capture.write(&bytes(PAP_ACK), ack_time).unwrap();
        capture.flush().unwrap();
        assert_eq!(capture.frames(), 2);

        // Readable while the capture is still open (the daemon may be killed).
        let (header, packets) = read_back(&path);
        assert_eq!(header.datalink, DataLink::ETHERNET);
        assert_eq!(header.snaplen, SNAPLEN);
        assert_eq!(header.ts_resolution, TsResolution::MicroSecond);
        assert_eq!(packets.len(), 2);

        let mut expected = bytes(PAP_REQUEST);
        // Ethernet 0..14, PPPoE 14..20, protocol 20..22, PAP header 22..26,
        // Peer-ID-Length 26, Peer-ID 27..32, Passwd-Length 32, Password 33..38.
        assert_eq!(&expected[33..38], b"cisco");
        expected[33..38].copy_from_slice(b"*****");
        assert_eq!(packets[0].2, expected);
        assert_eq!(&packets[0].2[27..32], b"cisco");
        assert_eq!(packets[0].0, Duration::new(1_284_385_409, 341_560_000));
        assert_eq!(packets[0].1, 60);

        // Other frames are written as they are; time is cut to microseconds.
        assert_eq!(packets[1].2, bytes(PAP_ACK));
        assert_eq!(packets[1].0, Duration::new(1_284_385_410, 484_560_000));
        drop(capture);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn capture_secrets_keeps_the_password() {
        let dir = temp_dir("secrets");
        let path = dir.join("out.pcap");
        let mut capture = Capture::create(&path).unwrap();
        capture.set_redact_pap(false);
        capture
            .write(&bytes(PAP_REQUEST), SystemTime::now())
            .unwrap();
        drop(capture);
        let (_, packets) = read_back(&path);
        assert_eq!(packets[0].2, bytes(PAP_REQUEST));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn empty_capture_is_valid_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("empty");
        let path = dir.join("out.pcap");
        let capture = Capture::create(&path).unwrap();
        let (_, packets) = read_back(&path);
        assert!(packets.is_empty());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(capture);
        let error = Capture::create(&dir.join("no/such/dir.pcap")).unwrap_err();
        assert!(error.to_string().contains("no/such/dir.pcap"), "{error}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn malformed_requests_are_masked_too() {
        // Built from frame 11: the Password-Length claims 9 bytes, past the
        // PAP length (the packet is malformed), so all after the Peer-ID goes.
        let mut frame = bytes(PAP_REQUEST);
        frame[32] = 9;
        assert!(redact_pap_password(&mut frame));
        assert_eq!(&frame[27..32], b"cisco");
        assert_eq!(frame[32], 9);
        assert_eq!(&frame[33..38], b"*****");
        // Padding after the PAP packet is not touched.
        assert_eq!(frame[38], 0);

        // Peer-ID-Length running past the data: the whole data is masked.
        let mut frame = bytes(PAP_REQUEST);
        frame[26] = 200;
        assert!(redact_pap_password(&mut frame));
        assert!(frame[27..38].iter().all(|&byte| byte == b'*'));
        assert_eq!(frame[38], 0);
    }

    #[test]
    fn other_frames_are_not_pap_requests() {
        let mut ack = bytes(PAP_ACK);
        assert!(!redact_pap_password(&mut ack));
        assert_eq!(ack, bytes(PAP_ACK));
        for len in 0..60 {
            let mut cut = bytes(PAP_REQUEST);
            cut.truncate(len);
            let _ = redact_pap_password(&mut cut);
        }
    }
}
