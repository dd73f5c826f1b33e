//! Whole dial-ups against a simulated access concentrator in virtual time:
//! each scenario reads like the RFC's own examples and runs in microseconds.

mod sim;

use std::cell::Cell;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::Duration;

use portdial_ppp::auth::{AuthMethod, Credentials, Secret};
use portdial_ppp::discovery::{DiscoveryConfig, DiscoveryError};
use portdial_ppp::fsm::State as FsmState;
use portdial_ppp::session::{DownCause, EchoConfig, Phase, Session, SessionConfig, SessionEvent};
use portdial_protocol::control::{self, Code};
use portdial_protocol::ethernet::MacAddr;
use portdial_protocol::ppp::Protocol;
use portdial_protocol::pppoe::Tag;
use sim::*;

const SEED: [u8; 32] = [7; 32];

fn config() -> SessionConfig {
    let mut config = SessionConfig {
        our_mac: CLIENT_MAC,
        credentials: Credentials {
            user: "alice".into(),
            password: Secret::new("wonderland"),
        },
        ipv6: true,
        ..SessionConfig::default()
    };
    config.ipcp.request_dns = true;
    config.echo = EchoConfig {
        interval: Some(Duration::from_secs(10)),
        failure: 3,
        adaptive: false,
    };
    config
}

fn pair(config: SessionConfig, acs: Vec<AcConfig>) -> Pair {
    let mut pair = Pair::new(
        Session::new(config, SEED),
        acs.into_iter().map(SimAc::new).collect(),
    );
    let now = pair.now;
    pair.client.open(now);
    pair
}

fn up_within(pair: &mut Pair, limit: Duration) -> bool {
    pair.drive_until(limit, |p| p.is_up())
}

fn ipv4_up(pair: &Pair) -> portdial_ppp::session::Ipv4Info {
    match pair.first(|e| matches!(e, SessionEvent::Ipv4Up(_))) {
        Some((_, SessionEvent::Ipv4Up(info))) => info,
        _ => panic!("IPv4 never came up; events: {:#?}", pair.events),
    }
}

fn down_cause(pair: &Pair) -> DownCause {
    match pair.first(|e| matches!(e, SessionEvent::Down(_))) {
        Some((_, SessionEvent::Down(cause))) => cause,
        _ => panic!("the session never went down; events: {:#?}", pair.events),
    }
}

#[test]
fn clean_pap_session() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    let info = ipv4_up(&pair);
    assert_eq!(info.local, CLIENT_IP);
    assert_eq!(info.peer, Some(AC_IP));
    assert_eq!(info.dns, DNS.to_vec());
    assert_eq!(info.mtu, 1492);
    let ac = &pair.acs[0];
    assert_eq!(
        ac.log.padr_cookie.as_deref(),
        Some(&b"cookie-1234"[..]),
        "the AC-Cookie is echoed in PADR"
    );
    assert_eq!(
        ac.log.pap_requests,
        vec![("alice".to_string(), "wonderland".to_string())]
    );
    assert!(pair.saw(|e| matches!(
        e,
        SessionEvent::Authenticated {
            method: AuthMethod::Pap,
            ..
        }
    )));
    assert!(pair.saw(|e| matches!(e, SessionEvent::Ipv6Up(_))));
    assert_eq!(pair.client.phase(), Phase::Running);
    // With no loss nothing waits on a timer: the whole dial-up takes no virtual time.
    assert_eq!(
        pair.first(|e| matches!(e, SessionEvent::Ipv4Up(_)))
            .unwrap()
            .0,
        Duration::ZERO
    );
    // The phases came in RFC 1661 order.
    let phases: Vec<Phase> = pair
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            SessionEvent::Phase(p) => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(
        phases,
        [
            Phase::Discovery,
            Phase::Establish,
            Phase::Authenticate,
            Phase::Network,
            Phase::Running
        ]
    );
}

#[test]
fn clean_chap_session() {
    let mut pair = pair(
        config(),
        vec![AcConfig {
            auth: AcAuth::Chap,
            ..AcConfig::default()
        }],
    );
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    assert!(pair.saw(|e| matches!(
        e,
        SessionEvent::Authenticated {
            method: AuthMethod::ChapMd5,
            ..
        }
    )));
    assert_eq!(pair.acs[0].log.chap_responses, 1);
    assert!(pair.acs[0].log.pap_requests.is_empty());
    // A re-challenge while up is answered and the link stays up.
    pair.acs[0].send_challenge();
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(pair.acs[0].log.chap_responses, 2);
    assert_eq!(pair.client.phase(), Phase::Running);
}

#[test]
fn chap_asked_but_only_pap_allowed_naks_to_pap() {
    let mut config = config();
    config.lcp.allow_chap = false;
    let mut pair = pair(
        config,
        vec![AcConfig {
            auth: AcAuth::Chap,
            ..AcConfig::default()
        }],
    );
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    assert!(pair.saw(|e| matches!(
        e,
        SessionEvent::Authenticated {
            method: AuthMethod::Pap,
            ..
        }
    )));
    assert_eq!(pair.acs[0].log.chap_responses, 0);
}

#[test]
fn wrong_password_fails_with_the_servers_message() {
    let mut config = config();
    config.credentials.password = Secret::new("guess");
    let mut pair = pair(config, vec![AcConfig::default()]);
    pair.drive_until(Duration::from_secs(30), |p| {
        p.saw(|e| matches!(e, SessionEvent::Down(_)))
    });
    match down_cause(&pair) {
        DownCause::AuthFailed {
            method: AuthMethod::Pap,
            message,
        } => assert_eq!(message, "Login incorrect"),
        other => panic!("unexpected cause {other:?}"),
    }
    assert!(down_cause(&pair).is_auth_failure());
    // One attempt, a Terminate-Request, and a PADT: no retry storm.
    assert_eq!(pair.acs[0].log.pap_requests.len(), 1);
    assert_eq!(pair.acs[0].log.lcp_terminate_requests, 1);
    assert_eq!(pair.acs[0].log.padt, 1);
    assert_eq!(pair.client.phase(), Phase::Dead);
}

#[test]
fn wrong_chap_secret_fails() {
    let mut config = config();
    config.credentials.password = Secret::new("guess");
    let mut pair = pair(
        config,
        vec![AcConfig {
            auth: AcAuth::Chap,
            ..AcConfig::default()
        }],
    );
    pair.drive_until(Duration::from_secs(30), |p| {
        p.saw(|e| matches!(e, SessionEvent::Down(_)))
    });
    match down_cause(&pair) {
        DownCause::AuthFailed {
            method: AuthMethod::ChapMd5,
            message,
        } => assert_eq!(message, "Access denied"),
        other => panic!("unexpected cause {other:?}"),
    }
}

#[test]
fn lost_pado_is_retried_with_doubling_timeout() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    let mut dropped = 0;
    pair.loss = Some(Box::new(move |direction, frame: &[u8]| {
        // Lose the first two PADOs (discovery code 0x07 at offset 15).
        if direction == Direction::ToClient
            && frame[12..14] == [0x88, 0x63]
            && frame[15] == 0x07
            && dropped < 2
        {
            dropped += 1;
            return true;
        }
        false
    }));
    assert!(up_within(&mut pair, Duration::from_secs(60)));
    assert_eq!(pair.acs[0].log.padi, 3);
    // PADIs at 0 s, 5 s and 5 + 10 s.
    let up_at = pair
        .first(|e| matches!(e, SessionEvent::Ipv4Up(_)))
        .unwrap()
        .0;
    assert_eq!(up_at, Duration::from_secs(15));
}

#[test]
fn lost_pads_is_retried() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    let mut dropped = false;
    pair.loss = Some(Box::new(move |direction, frame: &[u8]| {
        if direction == Direction::ToClient
            && frame[12..14] == [0x88, 0x63]
            && frame[15] == 0x65
            && !dropped
        {
            dropped = true;
            return true;
        }
        false
    }));
    assert!(up_within(&mut pair, Duration::from_secs(60)));
    assert_eq!(pair.acs[0].log.padr, 2);
}

#[test]
fn no_ac_answers() {
    let mut pair = pair(
        config(),
        vec![AcConfig {
            services: vec!["other".into()],
            ..AcConfig::default()
        }],
    );
    let mut config = config();
    config.discovery.service_name = "internet".into();
    let mut pair2 = self::pair(
        config,
        vec![AcConfig {
            services: vec!["other".into()],
            ..AcConfig::default()
        }],
    );
    pair2.drive_until(Duration::from_secs(120), |p| {
        p.saw(|e| matches!(e, SessionEvent::Down(_)))
    });
    assert_eq!(
        down_cause(&pair2),
        DownCause::Discovery(DiscoveryError::NoOffer {
            attempts: 3,
            offers: 0
        })
    );
    // 5 + 10 + 20 s of waiting.
    assert_eq!(
        pair2
            .first(|e| matches!(e, SessionEvent::Down(_)))
            .unwrap()
            .0,
        Duration::from_secs(35)
    );
    // Any service: the same AC is fine.
    assert!(up_within(&mut pair, Duration::from_secs(10)));
}

#[test]
fn first_of_two_offers_wins() {
    let second = AcConfig {
        mac: MacAddr([0, 0, 0x5e, 0, 0x53, 0x03]),
        name: "second".into(),
        session_id: 0x22,
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![AcConfig::default(), second]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    let established = pair.client.established().unwrap();
    assert_eq!(established.ac_mac, AC_MAC);
    assert_eq!(established.ac_name.as_deref(), Some("sim-ac"));
    assert_eq!(pair.acs[1].log.padr, 0, "the second AC is never asked");
    assert_eq!(pair.client.discovery().offers().len(), 2);
}

#[test]
fn ac_selected_by_name() {
    let second = AcConfig {
        mac: MacAddr([0, 0, 0x5e, 0, 0x53, 0x03]),
        name: "second".into(),
        session_id: 0x22,
        ..AcConfig::default()
    };
    let mut config = config();
    config.discovery.ac_name = Some("second".into());
    let mut pair = pair(config, vec![AcConfig::default(), second]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    assert_eq!(pair.client.established().unwrap().session_id, 0x22);
    assert_eq!(pair.acs[0].log.padr, 0);
}

#[test]
fn service_selected_by_name() {
    let video = AcConfig {
        mac: MacAddr([0, 0, 0x5e, 0, 0x53, 0x03]),
        services: vec!["video".into()],
        session_id: 0x33,
        ..AcConfig::default()
    };
    let internet = AcConfig {
        services: vec!["internet".into()],
        ..AcConfig::default()
    };
    let mut config = config();
    config.discovery = DiscoveryConfig {
        service_name: "video".into(),
        ..DiscoveryConfig::default()
    };
    let mut pair = pair(config, vec![internet, video]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    assert_eq!(pair.client.established().unwrap().session_id, 0x33);
}

#[test]
fn pads_service_name_error_is_a_typed_failure() {
    let ac = AcConfig {
        pads_error: Some((0x0201, "no such service".into())),
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![ac]);
    pair.drive_until(Duration::from_secs(30), |p| {
        p.saw(|e| matches!(e, SessionEvent::Down(_)))
    });
    assert_eq!(
        down_cause(&pair),
        DownCause::Discovery(DiscoveryError::ServiceNameError {
            ac_mac: AC_MAC,
            message: "no such service".into()
        })
    );
    assert_eq!(pair.acs[0].log.padr, 1, "no retry after a refusal");
}

#[test]
fn pads_ac_system_error_and_generic_error() {
    for (tag, expect_system) in [(0x0202u16, true), (0x0203, false)] {
        let ac = AcConfig {
            pads_error: Some((tag, "busy".into())),
            ..AcConfig::default()
        };
        let mut pair = pair(config(), vec![ac]);
        pair.drive_until(Duration::from_secs(30), |p| {
            p.saw(|e| matches!(e, SessionEvent::Down(_)))
        });
        match down_cause(&pair) {
            DownCause::Discovery(DiscoveryError::AcSystemError { message, .. })
                if expect_system =>
            {
                assert_eq!(message, "busy")
            }
            DownCause::Discovery(DiscoveryError::GenericError { message, .. })
                if !expect_system =>
            {
                assert_eq!(message, "busy")
            }
            other => panic!("tag {tag:#x}: unexpected {other:?}"),
        }
    }
}

#[test]
fn nak_loop_is_bounded() {
    // The AC Naks our MRU with a value we cannot take (64 < 128), forever.
    let ac = AcConfig {
        nak_mru_forever: Some(64),
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![ac]);
    pair.drive_until(Duration::from_secs(120), |p| {
        p.saw(|e| matches!(e, SessionEvent::Down(_)))
    });
    match down_cause(&pair) {
        DownCause::Negotiation {
            protocol: "LCP",
            reason,
        } => assert!(!reason.is_empty()),
        other => panic!("unexpected cause {other:?}"),
    }
    assert!(
        pair.acs[0].log.lcp_naks_sent <= 20,
        "naks: {}",
        pair.acs[0].log.lcp_naks_sent
    );
}

#[test]
fn configure_reject_of_everything_still_converges() {
    // The AC rejects MRU and Magic-Number: we ask for nothing and the link comes up
    // without loopback detection, as RFC 1661 allows.
    let ac = AcConfig {
        reject_everything: true,
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![ac]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
}

#[test]
fn late_peer_gets_our_request_at_once() {
    // pppd starts ~1.3 s after PADS and drops our first Configure-Request; its own
    // request then prompts an immediate retransmission, not a 3 s wait.
    let ac = AcConfig {
        ignore_first_lcp_requests: 1,
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![ac]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    let up_at = pair
        .first(|e| matches!(e, SessionEvent::Ipv4Up(_)))
        .unwrap()
        .0;
    assert!(up_at < Duration::from_secs(3), "up after {up_at:?}");
}

#[test]
fn peer_terminate_ends_the_session() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    pair.acs[0].send_terminate();
    pair.drive_until(Duration::from_secs(30), |p| {
        p.saw(|e| matches!(e, SessionEvent::Down(_)))
    });
    assert!(
        matches!(down_cause(&pair), DownCause::PeerTerminated { .. }),
        "{:?}",
        down_cause(&pair)
    );
    assert!(pair.saw(|e| matches!(e, SessionEvent::Ipv4Down)));
    assert_eq!(pair.client.phase(), Phase::Dead);
    // The client answers with a PADT once LCP is finished.
    assert_eq!(pair.acs[0].log.padt, 1);
}

#[test]
fn padt_from_the_ac_ends_the_session_and_others_are_ignored() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    let session_id = pair.acs[0].session_id().unwrap();
    // A PADT from another MAC, and one for another session: both ignored.
    pair.acs[0].send_padt(session_id, MacAddr([0, 0, 0x5e, 0, 0x53, 0x09]));
    pair.acs[0].send_padt(session_id.wrapping_add(1), AC_MAC);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(pair.client.phase(), Phase::Running);
    assert_eq!(pair.client.discovery().stats().ignored, 2);
    pair.acs[0].send_padt(session_id, AC_MAC);
    pair.drive_for(Duration::from_secs(1));
    match down_cause(&pair) {
        DownCause::Padt { message } => {
            assert_eq!(message.as_deref(), Some("sim-ac: administratively closed"))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn echo_failure_is_detected() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    let up_at = pair.elapsed();
    pair.acs[0].silent = true;
    pair.drive_until(Duration::from_secs(120), |p| {
        p.saw(|e| matches!(e, SessionEvent::Down(_)))
    });
    assert_eq!(down_cause(&pair), DownCause::EchoTimeout { unanswered: 3 });
    // Three requests 10 s apart, then one more interval: 40 s.
    let down_at = pair
        .first(|e| matches!(e, SessionEvent::Down(_)))
        .unwrap()
        .0;
    assert_eq!(down_at - up_at, Duration::from_secs(40));
}

#[test]
fn answered_echo_keeps_the_link() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    pair.drive_for(Duration::from_secs(300));
    assert_eq!(pair.client.phase(), Phase::Running);
    assert!(pair.acs[0].log.echo_requests >= 29);
}

#[test]
fn adaptive_echo_counts_traffic_as_life() {
    let mut config = config();
    config.echo.adaptive = true;
    let mut pair = pair(
        config,
        vec![AcConfig {
            answer_echo: false,
            ..AcConfig::default()
        }],
    );
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    // The AC never answers echoes but sends data every second (a saturated
    // downlink whose replies are lost): with adaptive echo the link stays up.
    for _ in 0..120 {
        let ipv4 = [
            0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 10,
        ];
        pair.acs[0].send_ppp(Protocol::Ipv4, &ipv4);
        pair.drive_for(Duration::from_secs(1));
    }
    assert_eq!(pair.client.phase(), Phase::Running);
    assert_eq!(
        pair.acs[0].log.echo_requests, 0,
        "no echo needed while data flows"
    );
    // When the data stops, the echo failure is found.
    pair.drive_until(Duration::from_secs(120), |p| {
        p.saw(|e| matches!(e, SessionEvent::Down(_)))
    });
    assert!(matches!(down_cause(&pair), DownCause::EchoTimeout { .. }));
}

#[test]
fn non_adaptive_echo_fails_despite_traffic() {
    let mut pair = pair(
        config(),
        vec![AcConfig {
            answer_echo: false,
            ..AcConfig::default()
        }],
    );
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    for _ in 0..60 {
        let ipv4 = [
            0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 10,
        ];
        pair.acs[0].send_ppp(Protocol::Ipv4, &ipv4);
        pair.drive_for(Duration::from_secs(1));
    }
    assert!(matches!(down_cause(&pair), DownCause::EchoTimeout { .. }));
}

#[test]
fn looped_back_line_is_detected() {
    let ac = AcConfig {
        reflect_lcp: true,
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![ac]);
    pair.drive_until(Duration::from_secs(120), |p| {
        p.saw(|e| matches!(e, SessionEvent::Down(_)))
    });
    assert_eq!(down_cause(&pair), DownCause::Loopback);
}

#[test]
fn ipv6cp_protocol_reject_leaves_ipv4_running() {
    let ac = AcConfig {
        ipv6: false,
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![ac]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    pair.drive_for(Duration::from_secs(5));
    // The AC Protocol-Rejected our IPv6CP: that layer stops, IPv4 carries on.
    assert!(!pair.saw(|e| matches!(e, SessionEvent::Ipv6Up(_))));
    assert_eq!(pair.client.phase(), Phase::Running);
    let ipv6cp = pair.client.ipv6cp().unwrap();
    assert!(matches!(
        ipv6cp.state(),
        portdial_ppp::fsm::State::Stopped | portdial_ppp::fsm::State::Closed
    ));
}

#[test]
fn ipv6cp_from_the_peer_is_protocol_rejected_when_disabled() {
    let mut config = config();
    config.ipv6 = false;
    let mut pair = pair(config, vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(pair.client.stats().protocol_rejects_sent, 1);
    assert!(!pair.saw(|e| matches!(e, SessionEvent::Ipv6Up(_))));
}

#[test]
fn unknown_protocol_is_protocol_rejected() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    let before = pair.client.stats().protocol_rejects_sent;
    // CCP Configure-Request (we do not run CCP).
    pair.acs[0].send_ppp(Protocol::Ccp, &[1, 1, 0, 4]);
    pair.acs[0].send_ppp(Protocol::Unknown(0x4021), &[1, 2, 3]);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(pair.client.stats().protocol_rejects_sent, before + 2);
    assert_eq!(pair.client.phase(), Phase::Running);
}

#[test]
fn unknown_lcp_code_is_code_rejected() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    pair.acs[0].send_ppp(Protocol::Lcp, &[0x42, 9, 0, 6, 0xde, 0xad]);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(pair.acs[0].log.code_rejects, 1);
    assert_eq!(pair.client.phase(), Phase::Running);
}

#[test]
fn clean_close_sends_terminate_then_padt() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    let now = pair.now;
    pair.client.close(now, "User request");
    pair.drive_until(Duration::from_secs(10), |p| {
        p.saw(|e| matches!(e, SessionEvent::Down(_)))
    });
    assert_eq!(
        down_cause(&pair),
        DownCause::LocalClose {
            reason: "User request".into()
        }
    );
    assert_eq!(pair.acs[0].log.lcp_terminate_requests, 1);
    assert_eq!(pair.acs[0].log.padt, 1);
    // The PADT is the last frame the client sent.
    let (_, direction, frame) = pair
        .wire
        .iter()
        .rev()
        .find(|(_, d, _)| *d == Direction::ToAc)
        .unwrap();
    assert_eq!(*direction, Direction::ToAc);
    assert_eq!(frame[12..14], [0x88, 0x63]);
    assert_eq!(frame[15], 0xa7);
    assert_eq!(pair.client.phase(), Phase::Dead);
}

#[test]
fn redial_after_down_works() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    let session_id = pair.acs[0].session_id().unwrap();
    pair.acs[0].send_padt(session_id, AC_MAC);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(pair.client.phase(), Phase::Dead);
    pair.events.clear();
    let now = pair.now;
    pair.client.open(now);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
}

#[test]
fn same_seed_same_wire() {
    let run = || {
        let mut pair = pair(
            config(),
            vec![AcConfig {
                auth: AcAuth::Chap,
                ..AcConfig::default()
            }],
        );
        pair.drive_for(Duration::from_secs(60));
        pair.wire
            .iter()
            .map(|(t, d, f)| (*t, *d, f.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn rfc4638_larger_mru_only_when_confirmed() {
    let mut config = config();
    config.discovery.ppp_max_payload = Some(1500);
    config.lcp.mru = 1500;
    // The sim AC does not echo PPP-Max-Payload: the client stays at 1492.
    let mut pair = pair(config, vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    assert_eq!(ipv4_up(&pair).mtu, 1492);
    let _ = Tag::PppMaxPayload(1500);
}

// ---- RFC 4638, MRU Naks, informational LCP codes, NCP failures, PAP loss ----

fn down_within(pair: &mut Pair, limit: Duration) -> DownCause {
    pair.drive_until(limit, |p| p.saw(|e| matches!(e, SessionEvent::Down(_))));
    down_cause(pair)
}

/// The distinct MRUs the client asked in LCP, in order (the client's early
/// retransmission when the AC's first request crosses ours repeats one).
fn asked_mrus(pair: &Pair) -> Vec<u16> {
    let mut mrus = pair.acs[0].log.client_mrus.clone();
    mrus.dedup();
    mrus
}

/// Whether a frame is a PPPoE session frame carrying `protocol` (no VLAN tags).
fn carries(frame: &[u8], protocol: Protocol) -> bool {
    frame.get(12..14) == Some(&[0x88, 0x64][..])
        && frame.get(20..22) == Some(&u16::from(protocol).to_be_bytes()[..])
}

#[test]
fn rfc4638_confirmed_raises_the_mru_and_the_mtu_to_1500() {
    let mut config = config();
    config.discovery.ppp_max_payload = Some(1500);
    config.lcp.mru = 1500;
    let ac = AcConfig {
        echo_ppp_max_payload: true,
        mru: 1500,
        ..AcConfig::default()
    };
    let mut pair = pair(config, vec![ac]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    let log = &pair.acs[0].log;
    assert_eq!(log.padr_ppp_max_payload, Some(1500));
    assert_eq!(
        pair.client.established().unwrap().ppp_max_payload,
        Some(1500)
    );
    assert_eq!(asked_mrus(&pair), [1500], "we asked MRU 1500 in LCP");
    assert_eq!(pair.client.lcp().policy().negotiated().our_mru, Some(1500));
    assert_eq!(ipv4_up(&pair).mtu, 1500);
    assert_eq!(pair.client.mtu(), 1500);
    match pair.first(|e| matches!(e, SessionEvent::Ipv6Up(_))) {
        Some((_, SessionEvent::Ipv6Up(info))) => assert_eq!(info.mtu, 1500),
        _ => panic!("IPv6 never came up"),
    }
}

#[test]
fn rfc4638_confirmed_but_the_peers_mru_still_bounds_the_mtu() {
    let mut config = config();
    config.discovery.ppp_max_payload = Some(1500);
    config.lcp.mru = 1500;
    // The AC confirms baby jumbo frames but its PPP still asks for 1492.
    let ac = AcConfig {
        echo_ppp_max_payload: true,
        ..AcConfig::default()
    };
    let mut pair = pair(config, vec![ac]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    assert_eq!(asked_mrus(&pair), [1500]);
    assert_eq!(ipv4_up(&pair).mtu, 1492);
}

#[test]
fn rfc4638_not_asked_leaves_the_link_at_1492() {
    // The AC would confirm, but we never asked: LCP stays at 1492 whatever lcp.mru says.
    let mut config = config();
    config.lcp.mru = 1500;
    let ac = AcConfig {
        echo_ppp_max_payload: true,
        mru: 1500,
        ..AcConfig::default()
    };
    let mut pair = pair(config, vec![ac]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    assert_eq!(pair.acs[0].log.padr_ppp_max_payload, None);
    assert_eq!(asked_mrus(&pair), [1492]);
    assert_eq!(ipv4_up(&pair).mtu, 1492);
}

#[test]
fn an_mru_nak_we_can_take_converges_on_it() {
    let ac = AcConfig {
        nak_mru_until: Some(1400),
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![ac]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    assert_eq!(asked_mrus(&pair), [1492, 1400]);
    assert_eq!(pair.client.lcp().policy().negotiated().our_mru, Some(1400));
    // What we may send is the peer's MRU, untouched by what we receive.
    assert_eq!(ipv4_up(&pair).mtu, 1492);
}

#[test]
fn an_mru_nak_repeated_after_we_complied_stops_as_not_converging() {
    // The AC Naks 1400 even when we ask 1400: we take it once, then the same
    // request would go out again and again, and LCP gives up.
    let ac = AcConfig {
        nak_mru_forever: Some(1400),
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![ac]);
    let cause = down_within(&mut pair, Duration::from_secs(120));
    match &cause {
        DownCause::Negotiation {
            protocol: "LCP",
            reason,
        } => assert!(reason.contains("not converging"), "{reason}"),
        other => panic!("unexpected cause {other:?}"),
    }
    assert_eq!(asked_mrus(&pair), [1492, 1400]);
    let naks = pair.acs[0].log.lcp_naks_sent;
    assert!(naks <= 10, "naks: {naks}");
    assert!(!pair.is_up());
}

#[test]
fn discard_request_identification_and_time_remaining_are_ignored() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    let magic = AcConfig::default().magic.to_be_bytes();
    let with_magic = |text: &[u8]| [&magic[..], text].concat();
    let sent_before = pair.wire.len();
    let dropped_before = pair.client.stats().dropped;
    for (code, data) in [
        (Code::DiscardRequest, with_magic(b"padding")),
        (Code::Identification, with_magic(b"sim-ac 1.0")),
        // Time-Remaining: magic, seconds remaining, message.
        (
            Code::TimeRemaining,
            [&magic[..], &3600u32.to_be_bytes(), b"one hour"].concat(),
        ),
    ] {
        let packet = control::Repr {
            code,
            identifier: 0x31,
            data: &data,
        }
        .to_vec();
        pair.acs[0].send_ppp(Protocol::Lcp, &packet);
    }
    pair.drive_for(Duration::from_secs(1));
    // Nothing answered, nothing Code-Rejected, nothing counted as dropped.
    let answers = pair.wire[sent_before..]
        .iter()
        .filter(|(_, direction, _)| *direction == Direction::ToAc)
        .count();
    assert_eq!(answers, 0);
    assert_eq!(pair.acs[0].log.code_rejects, 0);
    assert_eq!(pair.client.stats().dropped, dropped_before);
    // The link stays up, echoes and all.
    pair.drive_for(Duration::from_secs(60));
    assert_eq!(pair.client.phase(), Phase::Running);
    assert_eq!(pair.client.lcp().state(), FsmState::Opened);
    assert!(!pair.saw(|e| matches!(e, SessionEvent::Down(_))));
}

#[test]
fn ipcp_protocol_rejected_while_ipv6_is_up_leaves_ipv6_running() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    assert!(pair.saw(|e| matches!(e, SessionEvent::Ipv6Up(_))));
    // The AC stops running IPCP (it quotes one of our IPCP packets).
    pair.acs[0].send_protocol_reject(Protocol::Ipcp, &[0x01, 0x05, 0x00, 0x04]);
    pair.drive_for(Duration::from_secs(30));
    assert!(pair.saw(|e| matches!(e, SessionEvent::Ipv4Down)));
    assert!(!pair.saw(|e| matches!(e, SessionEvent::Ipv6Down)));
    assert!(!pair.saw(|e| matches!(e, SessionEvent::Down(_))));
    assert_eq!(pair.client.phase(), Phase::Running);
    assert!(matches!(
        pair.client.ipcp().state(),
        FsmState::Stopped | FsmState::Closed
    ));
    assert_eq!(pair.client.ipv6cp().unwrap().state(), FsmState::Opened);
    // IPv4 data is no longer accepted, IPv6 still is.
    let ipv4 = [
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 10,
    ];
    let ipv6 = [0x60, 0, 0, 0, 0, 0, 59, 64];
    let dropped_before = pair.client.stats().dropped;
    pair.acs[0].send_ppp(Protocol::Ipv4, &ipv4);
    pair.acs[0].send_ppp(Protocol::Ipv6, &ipv6);
    pair.exchange();
    assert_eq!(pair.client.stats().dropped, dropped_before + 1);
}

#[test]
fn ipcp_protocol_rejected_without_ipv6_ends_the_session() {
    let mut config = config();
    config.ipv6 = false;
    let mut pair = pair(config, vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    pair.acs[0].send_protocol_reject(Protocol::Ipcp, &[0x01, 0x05, 0x00, 0x04]);
    match down_within(&mut pair, Duration::from_secs(30)) {
        DownCause::Negotiation {
            protocol: "IPCP", ..
        } => {}
        other => panic!("unexpected cause {other:?}"),
    }
    assert_eq!(pair.client.phase(), Phase::Dead);
}

#[test]
fn a_broadcast_address_from_ipcp_leaves_the_session_ipv6_only() {
    let ac = AcConfig {
        assign: Ipv4Addr::BROADCAST,
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![ac]);
    pair.drive_for(Duration::from_secs(30));
    assert!(!pair.is_up(), "IPv4 must not come up with 255.255.255.255");
    assert!(pair.saw(|e| matches!(e, SessionEvent::Ipv6Up(_))));
    assert!(!pair.saw(|e| matches!(e, SessionEvent::Down(_))));
    assert_eq!(pair.client.phase(), Phase::Running);
    let failure = pair.client.ipcp().failure().expect("IPCP says why");
    assert!(failure.contains("255.255.255.255"), "{failure}");
}

#[test]
fn a_broadcast_address_from_ipcp_without_ipv6_fails_naming_it() {
    let mut config = config();
    config.ipv6 = false;
    let ac = AcConfig {
        assign: Ipv4Addr::BROADCAST,
        ..AcConfig::default()
    };
    let mut pair = pair(config, vec![ac]);
    match down_within(&mut pair, Duration::from_secs(60)) {
        DownCause::Negotiation {
            protocol: "IPCP",
            reason,
        } => assert!(reason.contains("255.255.255.255"), "{reason}"),
        other => panic!("unexpected cause {other:?}"),
    }
    assert!(!pair.is_up());
    // LCP was closed politely and the PADT sent.
    assert_eq!(pair.acs[0].log.lcp_terminate_requests, 1);
    assert_eq!(pair.acs[0].log.padt, 1);
}

#[test]
fn a_lost_pap_request_is_retransmitted() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    // The identifier of the lost request (the PPP payload starts at byte 22:
    // code, then identifier).
    let lost = Rc::new(Cell::new(None));
    let lost_in_loss = Rc::clone(&lost);
    pair.loss = Some(Box::new(move |direction, frame: &[u8]| {
        if direction == Direction::ToAc
            && carries(frame, Protocol::Pap)
            && lost_in_loss.get().is_none()
        {
            lost_in_loss.set(frame.get(23).copied());
            return true;
        }
        false
    }));
    assert!(up_within(&mut pair, Duration::from_secs(30)));
    // The AC saw only the retransmission, sent after the 3 s restart interval.
    assert_eq!(pair.acs[0].log.pap_requests.len(), 1);
    let up_at = pair
        .first(|e| matches!(e, SessionEvent::Ipv4Up(_)))
        .unwrap()
        .0;
    assert_eq!(up_at, Duration::from_secs(3));
    let retransmitted: Vec<(Duration, u8)> = pair
        .wire
        .iter()
        .filter(|(_, d, f)| *d == Direction::ToAc && carries(f, Protocol::Pap))
        .map(|(at, _, f)| (*at, f[23]))
        .collect();
    let lost = lost.get().expect("a PAP request was lost");
    assert_eq!(
        retransmitted,
        [(Duration::from_secs(3), lost.wrapping_add(1))],
        "one retransmission, with the next identifier"
    );
}

#[test]
fn rfc4638_does_not_carry_over_to_a_redial_without_confirmation() {
    let mut config = config();
    config.discovery.ppp_max_payload = Some(1500);
    config.lcp.mru = 1500;
    let ac = AcConfig {
        echo_ppp_max_payload: true,
        mru: 1500,
        ..AcConfig::default()
    };
    let mut pair = pair(config, vec![ac]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    assert_eq!(ipv4_up(&pair).mtu, 1500);
    // The next AC (after a PADT) does not confirm PPP-Max-Payload.
    let session_id = pair.acs[0].session_id().unwrap();
    pair.acs[0].send_padt(session_id, AC_MAC);
    pair.drive_for(Duration::from_secs(1));
    pair.acs[0].config.echo_ppp_max_payload = false;
    pair.events.clear();
    let now = pair.now;
    pair.client.open(now);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    assert_eq!(
        ipv4_up(&pair).mtu,
        1492,
        "the second session's link carries 1492"
    );
    assert_eq!(pair.client.lcp().policy().negotiated().our_mru, Some(1492));
}

#[test]
fn an_echo_reply_with_our_own_magic_is_ignored_not_a_loopback() {
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(up_within(&mut pair, Duration::from_secs(10)));
    let magic = pair.acs[0].log.client_magic.unwrap();
    let mut data = Vec::new();
    portdial_protocol::lcp::EchoRepr { magic, data: &[] }.push_to(&mut data);
    let reply = portdial_protocol::control::Repr {
        code: portdial_protocol::control::Code::EchoReply,
        identifier: 9,
        data: &data,
    }
    .to_vec();
    pair.acs[0].send_ppp(Protocol::Lcp, &reply);
    pair.drive_for(Duration::from_secs(5));
    assert_eq!(pair.client.phase(), Phase::Running);
    assert!(!pair.saw(|e| matches!(e, SessionEvent::Down(_))));
}

/// The frames on the simulated wire that carry `protocol`, with their
/// direction and control code, in order.
fn control_frames(pair: &Pair, protocol: Protocol) -> Vec<(usize, Direction, Code, u8)> {
    pair.wire
        .iter()
        .enumerate()
        .filter(|(_, (_, _, frame))| carries(frame, protocol))
        .filter_map(|(index, (_, direction, frame))| {
            let packet = control::Repr::parse_bytes(&frame[22..]).ok()?;
            Some((index, *direction, packet.code, packet.identifier))
        })
        .collect()
}

fn ipv6_up_at(pair: &Pair) -> Duration {
    pair.first(|e| matches!(e, SessionEvent::Ipv6Up(_)))
        .unwrap_or_else(|| panic!("IPv6 never came up; events: {:#?}", pair.events))
        .0
}

#[test]
fn ipv6cp_waits_for_ipcp_and_then_answers_the_peers_waiting_request() {
    // As pppd, the AC sends its IPCP and IPv6CP Configure-Requests together.
    // IPv4 comes first: our IPv6CP request waits until IPCP has opened; the
    // AC's IPv6CP request is kept and answered then, without waiting for its
    // retransmission.
    let mut pair = pair(config(), vec![AcConfig::default()]);
    assert!(pair.drive_until(Duration::from_secs(10), |p| p
        .saw(|e| matches!(e, SessionEvent::Ipv6Up(_)))));
    let ipcp = control_frames(&pair, Protocol::Ipcp);
    let ipv6cp = control_frames(&pair, Protocol::Ipv6cp);
    let ipcp_open = ipcp
        .iter()
        .filter(|(_, _, code, _)| *code == Code::ConfigureAck)
        .map(|(index, ..)| *index)
        .max()
        .expect("IPCP Acks both ways");
    assert_eq!(
        ipcp.iter()
            .filter(|(_, _, code, _)| *code == Code::ConfigureAck)
            .count(),
        2
    );
    // The AC asked for IPv6CP before IPCP was open ...
    let (ac_request, _, _, ac_identifier) = ipv6cp[0];
    assert_eq!(
        (ipv6cp[0].1, ipv6cp[0].2),
        (Direction::ToClient, Code::ConfigureRequest)
    );
    assert!(ac_request < ipcp_open);
    // ... and heard nothing on IPv6CP from us until then: then our request,
    // then the Ack of its (only) request.
    let ours: Vec<_> = ipv6cp
        .iter()
        .filter(|(_, direction, ..)| *direction == Direction::ToAc)
        .collect();
    assert!(
        ours[0].0 > ipcp_open,
        "IPv6CP before IPCP opened: {ipv6cp:?}"
    );
    assert_eq!(ours[0].2, Code::ConfigureRequest);
    assert_eq!((ours[1].2, ours[1].3), (Code::ConfigureAck, ac_identifier));
    assert_eq!(
        ipv6cp
            .iter()
            .filter(|(_, d, code, _)| *d == Direction::ToClient && *code == Code::ConfigureRequest)
            .count(),
        1,
        "the AC had to retransmit: {ipv6cp:?}"
    );
    // IPv4 first, IPv6 in the same instant (the simulated wire takes no time).
    let ipv4_at = pair
        .first(|e| matches!(e, SessionEvent::Ipv4Up(_)))
        .unwrap()
        .0;
    assert_eq!(ipv6_up_at(&pair), ipv4_at);
    let up_order: Vec<_> = pair
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            SessionEvent::Ipv4Up(_) => Some("ipv4"),
            SessionEvent::Ipv6Up(_) => Some("ipv6"),
            _ => None,
        })
        .collect();
    assert_eq!(up_order, ["ipv4", "ipv6"]);
}

#[test]
fn ipv6cp_starts_at_once_when_the_peer_protocol_rejects_ipcp() {
    let ac = AcConfig {
        ipv4: false,
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![ac]);
    pair.drive_for(Duration::from_secs(10));
    assert!(!pair.is_up());
    // No waiting for the hold's limit: IPCP's end releases IPv6CP.
    assert!(ipv6_up_at(&pair) < Duration::from_secs(1));
    assert!(!pair.saw(|e| matches!(e, SessionEvent::Down(_))));
    assert_eq!(pair.client.phase(), Phase::Running);
    assert_eq!(pair.acs[0].log.protocol_rejects, Vec::<u16>::new());
}

#[test]
fn ipv6cp_starts_after_one_restart_interval_when_ipcp_gets_no_answer() {
    let ac = AcConfig {
        ignore_ipcp: true,
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![ac]);
    pair.drive_for(Duration::from_secs(10));
    let restart = pair.client.ipcp().config().restart_interval;
    let held = ipv6_up_at(&pair);
    assert!(
        held >= restart && held < restart + Duration::from_millis(100),
        "IPv6 up after {held:?}"
    );
    // IPCP keeps trying until Max-Configure; IPv6 carries the session meanwhile
    // and after IPCP gives up.
    pair.drive_for(Duration::from_secs(60));
    assert!(!pair.is_up());
    assert!(!pair.saw(|e| matches!(e, SessionEvent::Down(_))));
    assert_eq!(pair.client.phase(), Phase::Running);
    assert!(matches!(
        pair.client.ipcp().state(),
        FsmState::Stopped | FsmState::Closed
    ));
}

#[test]
fn a_protocol_reject_of_ipv6cp_while_it_waits_keeps_it_from_starting() {
    // An AC without IPv6 may reject the protocol before we ever asked (it
    // rejects the peer's side, or whatever it sees first): IPv6CP then never
    // starts, and the session lives or dies with IPCP alone.
    let ac = AcConfig {
        ignore_ipcp: true,
        ..AcConfig::default()
    };
    let mut pair = pair(config(), vec![ac]);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(pair.client.phase(), Phase::Network);
    pair.acs[0].send_protocol_reject(Protocol::Ipv6cp, &[0x01, 0x01, 0x00, 0x04]);
    pair.drive_for(Duration::from_secs(10));
    assert!(control_frames(&pair, Protocol::Ipv6cp)
        .iter()
        .all(|(_, direction, ..)| *direction == Direction::ToClient));
    assert!(!pair.saw(|e| matches!(e, SessionEvent::Ipv6Up(_))));
    match down_within(&mut pair, Duration::from_secs(60)) {
        DownCause::Negotiation {
            protocol: "IPCP", ..
        } => {}
        other => panic!("unexpected cause {other:?}"),
    }
}
