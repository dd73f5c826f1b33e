//! The bytes the load roles send: IPv4/UDP and TCP packets, PPPoE session
//! frames around them, and async-HDLC (RFC 1662) framing for rp-pppoe's pty.
//! Built with portdial-protocol's Reprs, so there is one encoder per format.

use std::net::{IpAddr, Ipv4Addr};

use portdial_protocol::encap::SessionEncap;
use portdial_protocol::ethernet::{MacAddr, VlanStack};
use portdial_protocol::ip::{ipv4, tcp, udp, TcpFlags};

/// Ethernet (14) + PPPoE (6) + PPP protocol (2): what the null forwarder
/// prepends and strips.
pub const SESSION_HEADER: usize = 22;
/// IPv4 (20) + UDP (8) headers in front of every UDP payload.
pub const IP_UDP_HEADER: usize = 28;
/// PPP protocol number of IPv4.
const PPP_IPV4: u16 = 0x0021;

/// The payload bytes: printable, so HDLC escaping does not inflate them.
fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// An IPv4 packet `src:src_port → dst:dst_port` carrying a UDP payload of
/// `size` bytes.
pub fn udp_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    size: usize,
) -> Vec<u8> {
    let data = payload(size);
    let datagram = udp::Repr {
        src_port,
        dst_port,
        payload: &data,
    }
    .to_vec(&IpAddr::V4(src), &IpAddr::V4(dst));
    with_ipv4_header(src, dst, 17, &datagram)
}

/// An IPv4 TCP segment with `flags` and no payload (the 100k-port spray).
pub fn tcp_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    flags: TcpFlags,
) -> Vec<u8> {
    let repr = tcp::Repr {
        src_port,
        dst_port,
        seq_number: 1,
        ack_number: 0,
        flags,
        window_len: 65535,
        urgent_at: 0,
        options: &[],
        payload: &[],
    };
    let mut segment = vec![0; repr.buffer_len()];
    repr.emit(
        &mut tcp::Packet::new_unchecked(&mut segment[..]),
        &IpAddr::V4(src),
        &IpAddr::V4(dst),
    );
    with_ipv4_header(src, dst, 6, &segment)
}

fn with_ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, body: &[u8]) -> Vec<u8> {
    let repr = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        ttl: 64,
        payload_len: body.len(),
    };
    let mut packet = vec![0; ipv4::HEADER_LEN + body.len()];
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut packet[..]));
    packet[ipv4::HEADER_LEN..].copy_from_slice(body);
    packet
}

/// A PPPoE session frame `src → dst` carrying the IPv4 packet `ip`.
pub fn session_frame(src: MacAddr, dst: MacAddr, session_id: u16, ip: &[u8]) -> Vec<u8> {
    let encap = SessionEncap {
        dst,
        src,
        vlans: VlanStack::new(),
        session_id,
    };
    let mut frame = vec![0; SESSION_HEADER + ip.len()];
    frame[SESSION_HEADER..].copy_from_slice(ip);
    // Cannot fail: the headroom is exactly the header and the payload fits.
    let _ = encap.encapsulate(&mut frame, SESSION_HEADER, ip.len(), PPP_IPV4);
    frame
}

/// Async-HDLC flag and escape bytes (RFC 1662 §4.2).
const FLAG: u8 = 0x7e;
const ESCAPE: u8 = 0x7d;

/// One PPP frame as pppd writes it to `pppoe` over a pty: flag, address
/// and control (FF 03), protocol 0x0021, the IP packet, an FCS, flag; every
/// control character, flag and escape byte escaped. rp-pppoe does not check
/// the FCS, so two zero bytes stand for it (escaped, as pppd would).
pub fn hdlc_frame(ip: &[u8]) -> Vec<u8> {
    let mut raw = vec![0xff, 0x03];
    raw.extend_from_slice(&PPP_IPV4.to_be_bytes());
    raw.extend_from_slice(ip);
    raw.extend_from_slice(&[0, 0]);
    let mut out = Vec::with_capacity(raw.len() * 2 + 2);
    out.push(FLAG);
    for byte in raw {
        if byte < 0x20 || byte == FLAG || byte == ESCAPE {
            out.extend_from_slice(&[ESCAPE, byte ^ 0x20]);
        } else {
            out.push(byte);
        }
    }
    out.push(FLAG);
    out
}

/// Counts HDLC frames in a byte stream read in pieces: a frame is the bytes
/// between two flags; its length is counted after unescaping.
#[derive(Debug, Default)]
pub struct HdlcCounter {
    /// Unescaped bytes of the frame being read.
    current: usize,
    /// Frames of exactly the expected length.
    pub frames: u64,
    /// Frames of any other length (LCP, a cut frame).
    pub other: u64,
}

impl HdlcCounter {
    pub fn feed(&mut self, bytes: &[u8], expected_len: usize) {
        for &byte in bytes {
            match byte {
                FLAG => {
                    if self.current == expected_len {
                        self.frames += 1;
                    } else if self.current > 0 {
                        self.other += 1;
                    }
                    self.current = 0;
                }
                ESCAPE => {}
                _ => self.current += 1,
            }
        }
    }
}

/// Unescaped length of an HDLC frame around an IP packet of `ip_len`
/// bytes: address, control, protocol, packet, FCS.
pub fn hdlc_unescaped_len(ip_len: usize) -> usize {
    2 + 2 + ip_len + 2
}

/// Checks the encoders against each other once at startup (a harness-less
/// bench runs no #[test]s): a frame has the 22-byte header, and an HDLC frame
/// fed in two pieces counts as one.
pub fn self_check() -> Result<(), String> {
    let ip = udp_packet(
        Ipv4Addr::new(198, 51, 100, 2),
        Ipv4Addr::new(198, 51, 100, 1),
        4000,
        9,
        64,
    );
    let framed = hdlc_frame(&ip);
    let mut counter = HdlcCounter::default();
    counter.feed(&framed[..10], hdlc_unescaped_len(ip.len()));
    counter.feed(&framed[10..], hdlc_unescaped_len(ip.len()));
    if framed[..4] != [0x7e, 0xff, 0x7d, 0x23] || (counter.frames, counter.other) != (1, 0) {
        return Err(format!("HDLC framing broken: {:02x?}", &framed[..8]));
    }
    let frame = session_frame(
        MacAddr([0, 0, 0x5e, 0, 0x53, 1]),
        MacAddr([0, 0, 0x5e, 0, 0x53, 2]),
        7,
        &ip,
    );
    if frame.len() != SESSION_HEADER + IP_UDP_HEADER + 64
        || frame[12..22] != [0x88, 0x64, 0x11, 0, 0, 7, 0, 94, 0, 0x21]
    {
        return Err(format!("session frame broken: {:02x?}", &frame[..22]));
    }
    Ok(())
}
