//! Arbitrary bytes into the whole session machine, in every phase: it never
//! panics, answers each frame with a bounded number of frames, and its queues
//! stay bounded.

mod sim;

use std::time::Duration;

use portdial_ppp::auth::{Credentials, Secret};
use portdial_ppp::session::{Session, SessionConfig};
use portdial_protocol::encap::SessionEncap;
use portdial_protocol::ethernet::VlanStack;
use proptest::prelude::*;
use sim::*;

fn config() -> SessionConfig {
    SessionConfig {
        our_mac: CLIENT_MAC,
        credentials: Credentials {
            user: "alice".into(),
            password: Secret::new("wonderland"),
        },
        ipv6: true,
        ..SessionConfig::default()
    }
}

/// A pair driven up to the point where `steps` frames have crossed the wire,
/// so the fuzzed frames land in every phase from discovery to running.
fn pair_at(steps: usize, chap: bool) -> Pair {
    let ac = AcConfig {
        auth: if chap { AcAuth::Chap } else { AcAuth::Pap },
        ..AcConfig::default()
    };
    let mut pair = Pair::new(Session::new(config(), [3; 32]), vec![SimAc::new(ac)]);
    let now = pair.now;
    pair.client.open(now);
    pair.drive_until(Duration::from_secs(30), |p| p.wire.len() >= steps);
    pair
}

/// Feeds one frame and drains what it produced; returns how many frames went out.
fn feed(pair: &mut Pair, frame: &[u8]) -> usize {
    let now = pair.now;
    pair.client.handle_frame(now, frame);
    let mut sent = 0;
    while pair.client.poll_transmit().is_some() {
        sent += 1;
    }
    while pair.client.poll_event().is_some() {}
    sent
}

fn session_frame(pair: &Pair, protocol: u16, payload: &[u8]) -> Vec<u8> {
    let encap = SessionEncap {
        dst: CLIENT_MAC,
        src: AC_MAC,
        vlans: VlanStack::default(),
        session_id: pair.acs[0].session_id().unwrap_or(0x11),
    };
    encap.to_frame(protocol, payload).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_frames_never_panic(steps in 0usize..40, chap: bool, frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..8)) {
        let mut pair = pair_at(steps, chap);
        for frame in &frames {
            prop_assert!(feed(&mut pair, frame) <= 4);
        }
        // Time still moves it on without panicking.
        let deadline = pair.now + Duration::from_secs(120);
        while let Some(next) = pair.client.poll_timeout() {
            if next > deadline { break; }
            pair.now = next;
            let now = pair.now;
            pair.client.handle_timeout(now);
            while pair.client.poll_transmit().is_some() {}
            while pair.client.poll_event().is_some() {}
        }
    }

    #[test]
    fn arbitrary_control_packets_on_our_session_never_panic(
        steps in 4usize..40,
        chap: bool,
        protocol in prop::sample::select(vec![0xc021u16, 0xc023, 0xc223, 0x8021, 0x8057, 0x80fd, 0x0021, 0x0057, 0x4021]),
        code in 0u8..16,
        identifier: u8,
        body in prop::collection::vec(any::<u8>(), 0..80),
        length_delta in -4i32..4,
    ) {
        let mut pair = pair_at(steps, chap);
        // A control packet whose length field may lie by a few bytes.
        let length = (4 + body.len() as i32 + length_delta).clamp(0, u16::MAX as i32) as u16;
        let mut packet = vec![code, identifier];
        packet.extend_from_slice(&length.to_be_bytes());
        packet.extend_from_slice(&body);
        let frame = session_frame(&pair, protocol, &packet);
        prop_assert!(feed(&mut pair, &frame) <= 4);
        pair.drive_for(Duration::from_secs(10));
    }

    #[test]
    fn arbitrary_discovery_frames_never_panic(steps in 0usize..10, code: u8, session_id: u16, tags in prop::collection::vec(any::<u8>(), 0..120)) {
        let mut pair = pair_at(steps, false);
        let mut frame = vec![];
        frame.extend_from_slice(CLIENT_MAC.as_bytes());
        frame.extend_from_slice(AC_MAC.as_bytes());
        frame.extend_from_slice(&[0x88, 0x63, 0x11, code]);
        frame.extend_from_slice(&session_id.to_be_bytes());
        frame.extend_from_slice(&(tags.len() as u16).to_be_bytes());
        frame.extend_from_slice(&tags);
        prop_assert!(feed(&mut pair, &frame) <= 4);
    }
}

#[test]
fn a_flood_of_garbage_leaves_the_session_up() {
    let mut pair = pair_at(usize::MAX, false);
    assert!(pair.is_up());
    let mut seed = 0x1234_5678u32;
    for _ in 0..100_000 {
        // xorshift: cheap deterministic garbage, half of it on our session.
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let len = (seed % 120) as usize;
        let body: Vec<u8> = (0..len).map(|i| (seed >> (i % 24)) as u8).collect();
        let frame = if seed & 1 == 0 {
            session_frame(&pair, 0xc021, &body)
        } else {
            body
        };
        feed(&mut pair, &frame);
    }
    pair.drive_for(Duration::from_secs(60));
    assert_eq!(
        pair.client.phase(),
        portdial_ppp::session::Phase::Running,
        "{:?}",
        pair.client.stats()
    );
    assert!(pair.client.stats().malformed > 0);
}
