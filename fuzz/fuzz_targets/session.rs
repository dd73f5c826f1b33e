//! portdial_ppp::session::Session fed a sequence of frames split from the
//! input, with a fixed seed, interleaved with handle_timeout at increasing
//! virtual times.
//!
//! Input: one mode byte, then chunks `kind | len | bytes`.
//! * mode & 3 is how far a small scripted access concentrator (built here,
//!   with the packets of ppp/tests/sim/ac_packets.rs) drives the session
//!   before the fuzzed frames: 0 just opened (discovery), 1 PPPoE session
//!   0x0011 established (LCP), 2 LCP opened and authenticated (network
//!   phase), 3 IPCP and IPv6CP up (running). (mode >> 2) % 3 picks the
//!   AC's authentication: none, PAP or CHAP; mode & 0x40 turns adaptive
//!   echo on.
//! * kind & 3 says what the bytes are: 0 a whole Ethernet frame; 1 a PPP
//!   packet (two protocol bytes, then the packet) in a valid Ethernet +
//!   PPPoE session header for session 0x0011 from the AC 00:00:5e:00:53:01
//!   to us 00:00:5e:00:53:02; 2 a PPPoE discovery packet behind the AC's
//!   Ethernet header; 3 no frame: the session's own next timer fires.
//!   kind & 4 multiplies len by 8 (longer frames); kind >> 4 is how many
//!   quarter seconds pass before the chunk.
//!
//! Checked beyond "no panic": every frame the session sends is well-formed
//! and from our address; the event queue ends in the phase it reports;
//! stats add up; a fired timer never leaves a deadline at or before now
//! (a caller's timer loop would spin); data payload ranges lie in the
//! frame; and a close at the end brings the session down in bounded time.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use portdial_ppp::auth::Secret;
use portdial_ppp::session::{EchoConfig, Phase, Received, Session, SessionConfig, SessionEvent};
use portdial_protocol::control::{self, Code};
use portdial_protocol::encap::{self, SessionEncap};
use portdial_protocol::ethernet::{self, VlanStack};
use portdial_protocol::ipcp::IpcpOption;
use portdial_protocol::ipv6cp::Ipv6cpOption;
use portdial_protocol::ppp::Protocol;
use portdial_protocol::pppoe::{Code as PppoeCode, DiscoveryRepr, Tag};
use portdial_protocol::{chap, pap};

#[path = "../../ppp/tests/sim/ac_packets.rs"]
mod ac_packets;
use ac_packets::*;

const SESSION_ID: u16 = 0x0011;
const AC_MAGIC: u32 = 0x1a2b_3c4d;
const SEED: [u8; 32] = [0x5e; 32];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, chunks)) = data.split_first() else {
        return;
    };
    let auth = match (mode >> 2) % 3 {
        0 => AcAuth::None,
        1 => AcAuth::Pap,
        _ => AcAuth::Chap,
    };
    let config = SessionConfig {
        our_mac: CLIENT_MAC,
        ipv6: true,
        echo: EchoConfig {
            adaptive: mode & 0x40 != 0,
            ..EchoConfig::default()
        },
        credentials: portdial_ppp::auth::Credentials {
            user: "alice".into(),
            password: Secret::new("wonderland"),
        },
        ..SessionConfig::default()
    };
    let mut harness = Harness {
        session: Session::new(config, SEED),
        now: Instant::now(),
        frames_fed: 0,
        phase_seen: Phase::Dead,
    };
    harness.session.open(harness.now);
    harness.drain_events();

    let mut ac = MiniAc::new(mode & 3, auth);
    ac.run(&mut harness);

    let mut rest = chunks;
    while let [kind, tail @ ..] = rest {
        let (len, tail) = match tail {
            [len, tail @ ..] => (usize::from(*len), tail),
            [] => (tail.len(), tail),
        };
        let len = if kind & 4 != 0 { len * 8 } else { len };
        let (body, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;

        harness.advance(Duration::from_millis(250 * u64::from(kind >> 4)));
        match kind & 3 {
            0 => harness.feed(body),
            1 => {
                let (protocol, packet) = match body {
                    [high, low, packet @ ..] => (u16::from_be_bytes([*high, *low]), packet),
                    _ => (Protocol::Lcp.into(), body),
                };
                harness.feed(&session_frame(protocol, packet));
            }
            2 => harness.feed(&discovery_frame_raw(body)),
            _ => harness.fire_next_timer(),
        }
    }

    // A close always ends the session within a bounded number of timers
    // (LCP's Max-Terminate retransmissions at most).
    harness.session.close(harness.now, "fuzz done");
    harness.check_output();
    for _ in 0..16 {
        if harness.session.phase() == Phase::Dead {
            break;
        }
        harness.fire_next_timer();
    }
    assert_eq!(
        harness.session.phase(),
        Phase::Dead,
        "close did not end the session"
    );
});

struct Harness {
    session: Session,
    now: Instant,
    frames_fed: u64,
    phase_seen: Phase,
}

impl Harness {
    fn advance(&mut self, by: Duration) {
        if by.is_zero() {
            return;
        }
        self.now += by;
        self.session.handle_timeout(self.now);
        self.check_timer_moved_on();
        self.check_output();
    }

    fn fire_next_timer(&mut self) {
        let Some(deadline) = self.session.poll_timeout() else {
            return;
        };
        self.now = self.now.max(deadline);
        self.session.handle_timeout(self.now);
        self.check_timer_moved_on();
        self.check_output();
    }

    fn check_timer_moved_on(&self) {
        if let Some(next) = self.session.poll_timeout() {
            assert!(
                next > self.now,
                "a timer at or before now survived handle_timeout (phase {})",
                self.session.phase()
            );
        }
    }

    fn feed(&mut self, frame: &[u8]) {
        let received = self.session.handle_frame(self.now, frame);
        self.frames_fed += 1;
        if let Received::Data { payload, .. } = &received {
            assert!(payload.start <= payload.end && payload.end <= frame.len());
            let decap = encap::decapsulate(frame).expect("data came from a session frame");
            assert_eq!(&decap.payload, payload);
        }
        let stats = self.session.stats();
        assert_eq!(stats.frames_received, self.frames_fed);
        assert!(stats.malformed + stats.dropped <= stats.frames_received);
        self.check_output();
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            if let SessionEvent::Phase(phase) = event {
                self.phase_seen = phase;
            }
            if let SessionEvent::Down(cause) = &event {
                let _ = (cause.to_string(), cause.is_auth_failure());
            }
        }
        assert_eq!(
            self.phase_seen,
            self.session.phase(),
            "phase events out of step"
        );
        let _ = self.session.phase().as_str();
    }

    /// Drains what the session sends and checks each frame.
    fn check_output(&mut self) -> Vec<Vec<u8>> {
        self.drain_events();
        let mut sent = Vec::new();
        while let Some(frame) = self.session.poll_transmit() {
            check_sent_frame(&self.session, &frame);
            sent.push(frame);
        }
        sent
    }
}

fn check_sent_frame(session: &Session, frame: &[u8]) {
    let (eth, offset) = ethernet::Repr::parse(frame).expect("we send valid Ethernet");
    assert_eq!(eth.src, CLIENT_MAC, "we send from our own address");
    match eth.ethertype {
        ethernet::ethertype::PPPOE_DISCOVERY => {
            let repr = DiscoveryRepr::parse_bytes(&frame[offset..]).expect("we send valid PPPoE");
            assert!(matches!(
                repr.code,
                PppoeCode::Padi | PppoeCode::Padr | PppoeCode::Padt
            ));
        }
        ethernet::ethertype::PPPOE_SESSION => {
            let decap = encap::decapsulate(frame).expect("we send valid session frames");
            assert_eq!(decap.payload.end, frame.len(), "no padding on what we send");
            if let Some(encap) = session.encap() {
                assert_eq!(decap.session_id, encap.session_id);
            }
            let payload = &frame[decap.payload.clone()];
            let control_protocol = matches!(
                Protocol::from(decap.protocol),
                Protocol::Lcp | Protocol::Ipcp | Protocol::Ipv6cp | Protocol::Pap | Protocol::Chap
            );
            if control_protocol {
                let packet = control::Repr::parse_bytes(payload).expect("we send valid control");
                assert_eq!(packet.data.len() + control::HEADER_LEN, payload.len());
            }
        }
        other => panic!("we sent EtherType {other:#06x}"),
    }
}

/// A PPP packet in the AC's session header.
fn session_frame(protocol: u16, packet: &[u8]) -> Vec<u8> {
    SessionEncap {
        dst: CLIENT_MAC,
        src: AC_MAC,
        vlans: VlanStack::default(),
        session_id: SESSION_ID,
    }
    .to_frame(protocol, packet)
    .expect("fuzz chunks are far below the PPPoE length limit")
}

/// Arbitrary bytes as the PPPoE part of a discovery frame from the AC.
fn discovery_frame_raw(pppoe_bytes: &[u8]) -> Vec<u8> {
    let eth = ethernet::Repr {
        dst: CLIENT_MAC,
        src: AC_MAC,
        vlans: VlanStack::default(),
        ethertype: ethernet::ethertype::PPPOE_DISCOVERY,
    };
    let mut frame = vec![0; eth.buffer_len()];
    eth.emit(&mut frame);
    frame.extend_from_slice(pppoe_bytes);
    frame
}

fn discovery_frame(repr: &DiscoveryRepr<'_>) -> Vec<u8> {
    repr.to_frame(CLIENT_MAC, AC_MAC, VlanStack::default())
}

fn control_frame(protocol: Protocol, code: Code, identifier: u8, data: &[u8]) -> Vec<u8> {
    let packet = control::Repr {
        code,
        identifier,
        data,
    }
    .to_vec();
    session_frame(protocol.into(), &packet)
}

/// The access concentrator's side of a dial-up, as far as `depth` asks:
/// 1 answers discovery, 2 also LCP and authentication, 3 also IPCP and
/// IPv6CP. Written from the message sequence of pppoe-server + pppd.
struct MiniAc {
    depth: u8,
    auth: AcAuth,
    lcp_acked_by_client: bool,
    lcp_acked_by_us: bool,
    challenge_sent: bool,
    ncp_requests_sent: bool,
}

impl MiniAc {
    fn new(depth: u8, auth: AcAuth) -> MiniAc {
        MiniAc {
            depth,
            auth,
            lcp_acked_by_client: false,
            lcp_acked_by_us: false,
            challenge_sent: false,
            ncp_requests_sent: false,
        }
    }

    fn target(&self) -> Phase {
        match self.depth {
            0 => Phase::Discovery,
            1 => Phase::Establish,
            2 => Phase::Network,
            _ => Phase::Running,
        }
    }

    /// Exchanges frames until the session reaches the target phase (IPv6 up
    /// too, at depth 3) or nothing more happens.
    fn run(&mut self, harness: &mut Harness) {
        let mut pending = harness.check_output();
        let mut ipv6_up = false;
        for _ in 0..64 {
            let reached = harness.session.phase() == self.target() && (self.depth < 3 || ipv6_up);
            if reached || pending.is_empty() {
                break;
            }
            let mut replies = Vec::new();
            for frame in &pending {
                self.answer(frame, &mut replies);
            }
            pending.clear();
            for reply in replies {
                harness.session.handle_frame(harness.now, &reply);
                harness.frames_fed += 1;
                while let Some(event) = harness.session.poll_event() {
                    if let SessionEvent::Phase(phase) = event {
                        harness.phase_seen = phase;
                    }
                    ipv6_up |= matches!(event, SessionEvent::Ipv6Up(_));
                }
                while let Some(frame) = harness.session.poll_transmit() {
                    check_sent_frame(&harness.session, &frame);
                    pending.push(frame);
                }
            }
        }
        harness.drain_events();
    }

    fn answer(&mut self, frame: &[u8], out: &mut Vec<Vec<u8>>) {
        let Ok((eth, offset)) = ethernet::Repr::parse(frame) else {
            return;
        };
        match eth.ethertype {
            ethernet::ethertype::PPPOE_DISCOVERY if self.depth >= 1 => {
                let Some(bytes) = frame.get(offset..) else {
                    return;
                };
                if let Ok(repr) = DiscoveryRepr::parse_bytes(bytes) {
                    self.answer_discovery(&repr, out);
                }
            }
            ethernet::ethertype::PPPOE_SESSION if self.depth >= 2 => {
                let Ok(decap) = encap::decapsulate(frame) else {
                    return;
                };
                let Some(payload) = frame.get(decap.payload.clone()) else {
                    return;
                };
                let Ok(packet) = control::Repr::parse_bytes(payload) else {
                    return;
                };
                self.answer_ppp(Protocol::from(decap.protocol), &packet, out);
            }
            _ => {}
        }
    }

    fn answer_discovery(&mut self, repr: &DiscoveryRepr<'_>, out: &mut Vec<Vec<u8>>) {
        let mut tags = answer_tags(repr);
        match repr.code {
            PppoeCode::Padi => {
                tags.push(Tag::AcName(b"fuzz-ac"));
                tags.push(Tag::AcCookie(b"cookie-1234"));
                out.push(discovery_frame(&DiscoveryRepr {
                    code: PppoeCode::Pado,
                    session_id: 0,
                    tags,
                }));
            }
            PppoeCode::Padr => {
                out.push(discovery_frame(&DiscoveryRepr {
                    code: PppoeCode::Pads,
                    session_id: SESSION_ID,
                    tags,
                }));
                if self.depth >= 2 {
                    out.push(self.lcp_request());
                }
            }
            _ => {}
        }
    }

    fn lcp_request(&self) -> Vec<u8> {
        let options = lcp_request_options(1492, self.auth, AC_MAGIC);
        control_frame(Protocol::Lcp, Code::ConfigureRequest, 1, &options)
    }

    fn answer_ppp(
        &mut self,
        protocol: Protocol,
        packet: &control::Repr<'_>,
        out: &mut Vec<Vec<u8>>,
    ) {
        let id = packet.identifier;
        match (protocol, packet.code) {
            (Protocol::Lcp, Code::ConfigureRequest) => {
                out.push(control_frame(protocol, Code::ConfigureAck, id, packet.data));
                self.lcp_acked_by_us = true;
                self.maybe_challenge(out);
            }
            (Protocol::Lcp, Code::ConfigureAck) => {
                self.lcp_acked_by_client = true;
                self.maybe_challenge(out);
            }
            (Protocol::Lcp, Code::EchoRequest) => {
                let data = echo_reply_data(packet.data, AC_MAGIC);
                out.push(control_frame(protocol, Code::EchoReply, id, &data));
            }
            (Protocol::Pap, _) => {
                if let Ok(pap::Repr::AuthenticateRequest { .. }) = pap::Repr::parse(packet) {
                    out.push(session_frame(Protocol::Pap.into(), &pap_answer(true, id)));
                }
            }
            (Protocol::Chap, _) => {
                if let Ok(chap::Repr::Response { .. }) = chap::Repr::parse(packet) {
                    out.push(session_frame(Protocol::Chap.into(), &chap_answer(true, id)));
                }
            }
            (Protocol::Ipcp, Code::ConfigureRequest) if self.depth >= 3 => {
                self.send_ncp_requests(out);
                let (code, data) = ipcp_answer(packet.data, CLIENT_IP);
                out.push(control_frame(protocol, code, id, &data));
            }
            (Protocol::Ipv6cp, Code::ConfigureRequest) if self.depth >= 3 => {
                self.send_ncp_requests(out);
                out.push(control_frame(protocol, Code::ConfigureAck, id, packet.data));
            }
            _ => {}
        }
    }

    fn maybe_challenge(&mut self, out: &mut Vec<Vec<u8>>) {
        if self.auth == AcAuth::Chap
            && self.lcp_acked_by_us
            && self.lcp_acked_by_client
            && !self.challenge_sent
        {
            self.challenge_sent = true;
            let challenge = chap::Repr::Challenge {
                value: &[0x42; 16],
                name: b"fuzz-ac",
            };
            out.push(session_frame(
                Protocol::Chap.into(),
                &challenge.to_packet(0x41),
            ));
        }
    }

    fn send_ncp_requests(&mut self, out: &mut Vec<Vec<u8>>) {
        if self.ncp_requests_sent {
            return;
        }
        self.ncp_requests_sent = true;
        let mut ipcp = Vec::new();
        IpcpOption::IpAddress(AC_IP).push_to(&mut ipcp);
        out.push(control_frame(
            Protocol::Ipcp,
            Code::ConfigureRequest,
            1,
            &ipcp,
        ));
        let mut ipv6cp = Vec::new();
        Ipv6cpOption::InterfaceIdentifier(AC_INTERFACE_ID).push_to(&mut ipv6cp);
        out.push(control_frame(
            Protocol::Ipv6cp,
            Code::ConfigureRequest,
            1,
            &ipv6cp,
        ));
    }
}
