//! The PAP and CHAP sessions recorded against the real rp-pppoe server
//! (captures/lab/, made by `PORTDIAL_RECORD=1 cargo test --test lab record`)
//! replayed offline through the sans-IO machine: fed the server's frames at
//! their captured times, with the seed and options the recording used, the
//! machine must send exactly the frames the real daemon sent. A change in
//! behaviour against the real server shows here without the lab.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use portdial::config::{DialArgs, DialConfig};
use portdial_ppp::session::{Phase, Session, SessionEvent};
use portdial_protocol::ethernet::{self, MacAddr};

/// Must match `RECORDING_ARGS` in tests/lab.rs.
const RECORDING_ARGS: &[&str] = &[
    "--user",
    "portdial",
    "--password",
    "portdial-secret",
    "--usepeerdns",
    "--seed",
    "5eed",
    "--lcp-echo-interval",
    "20",
];
const CLIENT_MAC: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, 0x02]);

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    dial: DialArgs,
}

struct Frame {
    at: Duration,
    bytes: Vec<u8>,
}

fn read_capture(path: &Path) -> Vec<Frame> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = pcap_file::pcap::PcapReader::new(file).unwrap();
    let mut frames = Vec::new();
    let mut first = None;
    while let Some(packet) = reader.next_packet() {
        let packet = packet.unwrap();
        let start = *first.get_or_insert(packet.timestamp);
        frames.push(Frame {
            at: packet.timestamp - start,
            bytes: packet.data.into_owned(),
        });
    }
    frames
}

fn is_lcp_terminate_request(frame: &[u8]) -> bool {
    // Ethernet(14) + PPPoE(6) + protocol c021 + code 5.
    frame.len() > 22
        && frame[12..14] == [0x88, 0x64]
        && frame[20..22] == [0xc0, 0x21]
        && frame[22] == 5
}

/// Whether a session frame carries IP (0x0021 IPv4, 0x0057 IPv6): from the
/// client that is the kernel's traffic through the TUN (an IPv6 Router
/// Solicitation once the link-local address is up), not the machine's.
fn is_ip_data(frame: &[u8]) -> bool {
    frame.len() > 22
        && frame[12..14] == [0x88, 0x64]
        && matches!(frame[20..22], [0x00, 0x21] | [0x00, 0x57])
}

/// Replays one recording; returns the session's events.
fn replay(path: &Path) -> Vec<SessionEvent> {
    let mut args = vec!["portdial", "--iface", "eth0"];
    args.extend_from_slice(RECORDING_ARGS);
    let config = DialConfig::resolve(&Wrapper::parse_from(args).dial).unwrap();
    let mut session = Session::new(config.session_config(CLIENT_MAC), config.seed.unwrap());
    let start = Instant::now();
    let frames = read_capture(path);
    assert!(frames.len() > 20, "{}: too short", path.display());
    session.open(start);
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let drain = |session: &mut Session, sent: &mut Vec<Vec<u8>>, events: &mut Vec<SessionEvent>| {
        while let Some(frame) = session.poll_transmit() {
            sent.push(frame);
        }
        while let Some(event) = session.poll_event() {
            events.push(event);
        }
    };
    drain(&mut session, &mut sent, &mut events);
    let mut compared = 0;
    for (index, frame) in frames.iter().enumerate() {
        let now = start + frame.at;
        // Fire the timers that were due before this frame.
        while let Some(deadline) = session.poll_timeout() {
            if deadline > now {
                break;
            }
            session.handle_timeout(deadline);
            drain(&mut session, &mut sent, &mut events);
        }
        let (eth, _) = ethernet::Repr::parse(&frame.bytes).unwrap();
        if eth.src == CLIENT_MAC && is_ip_data(&frame.bytes) {
            continue;
        }
        if eth.src == CLIENT_MAC {
            // The daemon closed the session on SIGTERM at this point.
            if compared == sent.len() && is_lcp_terminate_request(&frame.bytes) {
                session.close(now, "User request");
                drain(&mut session, &mut sent, &mut events);
            }
            let ours = sent.get(compared).unwrap_or_else(|| {
                panic!(
                    "frame {}: the daemon sent a frame the machine did not: {:02x?}",
                    index + 1,
                    frame.bytes
                )
            });
            // Captures mask PAP passwords (unless --capture-secrets): mask ours alike.
            let mut ours = ours.clone();
            portdial::capture::redact_pap_password(&mut ours);
            assert_eq!(
                ours,
                frame.bytes,
                "frame {} differs from what the machine sent",
                index + 1
            );
            compared += 1;
        } else {
            session.handle_frame(now, &frame.bytes);
            drain(&mut session, &mut sent, &mut events);
        }
    }
    assert_eq!(
        compared,
        sent.len(),
        "the machine sent frames the daemon did not"
    );
    assert_eq!(session.phase(), Phase::Dead);
    events
}

fn check(auth: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("captures/lab/{auth}.pcap"));
    let events = replay(&path);
    let ipv4 = events.iter().find_map(|event| match event {
        SessionEvent::Ipv4Up(info) => Some(info.clone()),
        _ => None,
    });
    let ipv4 = ipv4.expect("IPv4 came up");
    // IPv4 first: IPv6CP started only once IPCP had opened, and then came up.
    let ipv4_at = events
        .iter()
        .position(|e| matches!(e, SessionEvent::Ipv4Up(_)));
    let ipv6_at = events
        .iter()
        .position(|e| matches!(e, SessionEvent::Ipv6Up(_)));
    assert!(ipv6_at.is_some(), "IPv6 came up");
    assert!(ipv4_at < ipv6_at, "IPv4 before IPv6: {events:?}");
    assert_eq!(ipv4.peer.unwrap().to_string(), "192.0.2.1");
    assert_eq!(ipv4.dns.len(), 2);
    assert!(events
        .iter()
        .any(|e| matches!(e, SessionEvent::Authenticated { .. })));
    assert!(events.iter().any(|e| matches!(e, SessionEvent::Down(_))));
}

#[test]
fn recorded_pap_session_replays_exactly() {
    check("pap");
}

#[test]
fn recorded_chap_session_replays_exactly() {
    check("chap");
}
