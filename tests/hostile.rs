//! A real `portdial dial` against a hostile access concentrator (tests/common/ac.rs)
//! on a veth pair between two namespaces each test creates and removes. One
//! test per hostile case; each checks that portdial did not panic, kept its
//! memory bounded, logged a clear line, answered on the wire as the RFC says
//! where it says something, and either kept the session or dialed again.
//!
//! Needs root; without it every test fails saying so. No lab, no UML.

mod common;

use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::ac::*;
use common::lab::{eventually, Dialer};
use portdial_ppp::auth::chap_md5_response;
use portdial_protocol::chap;
use portdial_protocol::control::Code;
use portdial_protocol::ethernet::{self, MacAddr};
use portdial_protocol::ipcp::IpcpOption;
use portdial_protocol::lcp::{EchoRepr, LcpOption, ProtocolRejectRepr};
use portdial_protocol::ppp::Protocol;
use portdial_protocol::pppoe::{tag_type, Code as PppoeCode, Tag};
use rand::{Rng, SeedableRng};

/// The tests are timing-sensitive (echo, restart timers) and one of them
/// saturates a core: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The resident memory portdial may use after any case. The debug build
/// with a session up measured 18-20 MiB here after every case (that is its
/// baseline); the bound leaves room for the allocator but not for anything
/// that grows with the hostile input (10,000 offers kept, or a buffer per
/// garbage frame, would show).
const RSS_BOUND_KIB: u64 = 32 * 1024;

/// Short timers so that every case ends in seconds.
const FAST: &[&str] = &[
    "--no-ipv6",
    "--no-port-manager",
    "--padi-timeout",
    "1",
    "--padi-attempts",
    "2",
    "--lcp-echo-interval",
    "1",
    "--lcp-echo-failure",
    "5",
];

/// `--persist`, re-dialing one second after a loss, giving up after
/// `maxfail` failed attempts in a row (0: never).
fn persist(maxfail: &str) -> [&str; 7] {
    [
        "--persist",
        "--holdoff",
        "1",
        "--holdoff-max",
        "1",
        "--maxfail",
        maxfail,
    ]
}

/// Starts portdial on the wire with the short timers and `extra`.
fn dial(wire: &Wire, extra: &[&str]) -> Dialer {
    let args: Vec<&str> = FAST.iter().chain(extra).copied().collect();
    wire.dial(&args)
}

/// No panic, bounded memory; returns the RSS (KiB) when the process is alive.
fn assert_sane(dialer: &mut Dialer) -> Option<u64> {
    let log = dialer.log();
    assert!(!log.contains("panicked"), "portdial panicked:\n{log}");
    if dialer.try_exit().is_some() {
        return None;
    }
    let pid = dialer.pid()?;
    let rss = vm_rss_kib(pid).expect("read VmRSS");
    eprintln!("portdial VmRSS: {rss} KiB");
    assert!(
        rss < RSS_BOUND_KIB,
        "portdial uses {rss} KiB, more than {RSS_BOUND_KIB} KiB"
    );
    Some(rss)
}

fn assert_log(dialer: &Dialer, needle: &str) {
    assert!(
        eventually(Duration::from_secs(5), || dialer.log().contains(needle)),
        "the log lacks {needle:?}:\n{}",
        dialer.log()
    );
}

fn up(dialer: &mut Dialer) -> serde_json::Value {
    dialer.wait_up(Duration::from_secs(20)).0
}

fn session_id(status: &serde_json::Value) -> u64 {
    status["session_id"].as_u64().expect("a session id")
}

/// The session is still the same one and up, and nothing re-dialed.
fn assert_still_up(dialer: &Dialer, id: u64) {
    let status = dialer.status().expect("portdial answers status");
    assert_eq!(status["phase"], "up", "{status}");
    assert_eq!(session_id(&status), id, "{status}");
    assert_eq!(status["redials"], 0, "{status}");
}

/// One case's setup: the serial lock, a wire of its own and an AC on it
/// running `script`. Bind all three: they drop in reverse, the AC before
/// the wire's namespaces, the lock last.
fn hostile_ac(case: &str, script: Script) -> (MutexGuard<'static, ()>, Wire, Ac) {
    let serial = serial();
    let wire = Wire::new(case);
    let ac = wire.ac(script);
    (serial, wire, ac)
}

/// Dials with FAST and `extra` and waits for the session; returns its id.
fn dial_up(wire: &Wire, extra: &[&str]) -> (Dialer, u64) {
    let mut dialer = dial(wire, extra);
    let id = session_id(&up(&mut dialer));
    (dialer, id)
}

/// Waits for the session after `id` (one re-dial); returns its status and
/// how long it took.
fn wait_redialed(dialer: &mut Dialer, id: u64) -> (serde_json::Value, Duration) {
    dialer.wait_for("a new session", Duration::from_secs(15), |s| {
        s["phase"] == "up" && s["redials"] == 1 && s["session_id"].as_u64() != Some(id)
    })
}

/// How a case that must keep the session ends: session `id` still up and
/// not re-dialed, IPv4 up logged, no panic, bounded memory.
fn assert_session_kept(dialer: &mut Dialer, id: u64) {
    assert_still_up(dialer, id);
    assert_log(dialer, "IPv4 up");
    assert_sane(dialer);
}

/// Frames from portdial (LCP/NCP control packets) of `protocol` with `code`.
fn sent_by_portdial(ac: &Ac, protocol: Protocol, code: Code) -> Vec<(u8, Vec<u8>)> {
    ac.received()
        .iter()
        .filter_map(|rx| {
            rx.control_with_code(protocol, code)
                .map(|c| (c.identifier, c.data.to_vec()))
        })
        .collect()
}

fn wait_exit(dialer: &mut Dialer, timeout: Duration) -> Option<i32> {
    let code = dialer.wait_exit(timeout);
    let log = dialer.log();
    assert!(!log.contains("panicked"), "portdial panicked:\n{log}");
    code
}

fn lcp_options(list: &[LcpOption<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for option in list {
        option.push_to(&mut out);
    }
    out
}

// ---- discovery ----

#[test]
fn two_acs_one_never_confirms() {
    // The first to answer takes PADRs but never confirms, and once portdial
    // turned to the other AC it sends a PADS for a session nobody asked it for.
    let (_serial, wire, bad) = hostile_ac(
        "twoac",
        Script {
            ac_name: "bad-ac".into(),
            confirm: false,
            ..Script::default()
        },
    );
    bad.on_frame(|emu, rx| {
        let Some(eth) = rx.eth() else {
            return Flow::Continue;
        };
        if let Some(padr) = rx.discovery_with_code(PppoeCode::Padr) {
            if eth.dst != emu.script.mac {
                let uniq = padr.host_uniq().unwrap_or_default().to_vec();
                let pads = Emu::discovery_frame(
                    emu.script.mac,
                    eth.src,
                    PppoeCode::Pads,
                    0x6666,
                    vec![Tag::ServiceName(b""), Tag::HostUniq(&uniq)],
                );
                emu.send(pads);
            }
        }
        Flow::Continue
    });
    let good_mac = doc_mac(3);
    let good = wire.ac(Script {
        mac: good_mac,
        ac_name: "good-ac".into(),
        cookie: b"good-cookie".to_vec(),
        pado_delay: Duration::from_millis(50),
        first_session_id: 0x0202,
        ..Script::default()
    });
    let mut dialer = dial(&wire, &[]);
    let status = up(&mut dialer);
    assert_eq!(status["ac_name"], "good-ac", "{status}");
    assert_eq!(status["ac_mac"], good_mac.to_string());
    assert_eq!(session_id(&status), 0x0202);
    let padrs_to = |mac: MacAddr| {
        bad.count(|rx| {
            rx.is_discovery(PppoeCode::Padr) && rx.eth().is_some_and(|eth| eth.dst == mac)
        })
    };
    assert_eq!(
        padrs_to(AC_MAC),
        2,
        "--padi-attempts 2 PADRs to the silent AC"
    );
    assert_eq!(padrs_to(good_mac), 1);
    assert_log(&dialer, "trying the next access concentrator that answered");
    // The spoofed PADS did not move the session.
    std::thread::sleep(Duration::from_millis(500));
    assert!(good.count(|rx| rx.is_control(Protocol::Ipcp, Code::ConfigureRequest)) > 0);
    assert_session_kept(&mut dialer, 0x0202);
}

#[test]
fn pado_flood_from_many_macs() {
    let (_serial, wire, ac) = hostile_ac(
        "flood",
        Script {
            ac_name: "real-ac".into(),
            pado_delay: Duration::from_millis(100),
            ..Script::default()
        },
    );
    const FLOOD: u32 = 10_000;
    // Every PADI draws 10,000 offers echoing its Host-Uniq, from the 200
    // documentation MACs 00:00:5e:00:53:10.. (the only ones we may use),
    // each with its own AC-Name and cookie, before the real offer.
    fn flood(emu: &mut Emu, host_uniq: &[u8]) {
        for i in 0..FLOOD {
            let name = format!("flood-{i}");
            let cookie = i.to_be_bytes();
            let frame = Emu::discovery_frame(
                doc_mac(0x10 + (i % 200) as u8),
                emu.client,
                PppoeCode::Pado,
                0,
                vec![
                    Tag::AcName(name.as_bytes()),
                    Tag::ServiceName(b""),
                    Tag::AcCookie(&cookie),
                    Tag::HostUniq(host_uniq),
                ],
            );
            emu.send(frame);
        }
    }
    ac.on_frame(|emu, rx| {
        if let Some(padi) = rx.discovery_with_code(PppoeCode::Padi) {
            let uniq = padi.host_uniq().unwrap_or_default().to_vec();
            if let Some(eth) = rx.eth() {
                emu.client = eth.src;
            }
            flood(emu, &uniq);
        }
        Flow::Continue
    });
    let before = wire.client_link_stats();
    let mut dialer = dial(&wire, &["--ac-name", "real-ac"]);
    let status = up(&mut dialer);
    assert_eq!(status["ac_name"], "real-ac");
    let id = session_id(&status);
    // Another flood while the session is up.
    let uniq = ac
        .received()
        .iter()
        .find_map(|rx| {
            rx.discovery()
                .and_then(|d| d.host_uniq().map(<[u8]>::to_vec))
        })
        .expect("a PADI with Host-Uniq");
    ac.with(|emu| flood(emu, &uniq));
    std::thread::sleep(Duration::from_secs(2));
    let after = wire.client_link_stats();
    eprintln!(
        "PADO flood: AC sent {} frames; client interface rx_packets {} -> {}, rx_dropped {} -> {}",
        ac.with(|emu| emu.sent),
        before["rx"]["packets"],
        after["rx"]["packets"],
        before["rx"]["dropped"],
        after["rx"]["dropped"]
    );
    // Only the real AC was asked for a session.
    let padr_destinations: Vec<_> = ac
        .received()
        .iter()
        .filter(|rx| rx.is_discovery(PppoeCode::Padr))
        .filter_map(|rx| rx.eth().map(|eth| eth.dst))
        .collect();
    assert_eq!(padr_destinations, [AC_MAC]);
    assert_log(&dialer, "PPPoE session established");
    assert_session_kept(&mut dialer, id);
}

/// A PADS carrying `error`: without --persist portdial exits 4 naming the
/// AC's message; with --persist it dials again after the holdoff until
/// --maxfail, then exits 7.
fn pads_error_case(case: &str, error_tag: u16, message: &str, logged: &str) {
    let (_serial, wire, ac) = hostile_ac(
        case,
        Script {
            confirm: false,
            ..Script::default()
        },
    );
    let text = message.as_bytes().to_vec();
    ac.on_frame(move |emu, rx| {
        if let Some(padr) = rx.discovery_with_code(PppoeCode::Padr) {
            let uniq = padr.host_uniq().unwrap_or_default().to_vec();
            let pads = Emu::discovery_frame(
                emu.script.mac,
                emu.client,
                PppoeCode::Pads,
                0,
                vec![
                    Tag::ServiceName(b""),
                    Tag::HostUniq(&uniq),
                    Tag::parse(error_tag, &text).expect("an error tag"),
                ],
            );
            emu.send(pads);
            return Flow::Stop;
        }
        Flow::Continue
    });
    let mut once = dial(&wire, &[]);
    assert_eq!(wait_exit(&mut once, Duration::from_secs(10)), Some(4));
    assert_log(&once, logged);
    assert_log(&once, message);

    let start = Instant::now();
    let mut persistent = dial(&wire, &persist("3"));
    assert_eq!(wait_exit(&mut persistent, Duration::from_secs(20)), Some(7));
    assert_log(&persistent, "consecutive failed attempts (maxfail)");
    assert_log(&persistent, message);
    let padrs = ac.count(|rx| rx.is_discovery(PppoeCode::Padr));
    assert_eq!(padrs, 1 + 3, "one PADR per attempt");
    eprintln!("{case}: 3 attempts in {:?}", start.elapsed());
}

#[test]
fn pads_service_name_error() {
    pads_error_case(
        "svcerr",
        tag_type::SERVICE_NAME_ERROR,
        "no such service here",
        "refused the service",
    );
}

#[test]
fn pads_ac_system_error() {
    pads_error_case(
        "syserr",
        tag_type::AC_SYSTEM_ERROR,
        "out of sessions",
        "reported a system error",
    );
}

#[test]
fn pads_generic_error() {
    pads_error_case(
        "generr",
        tag_type::GENERIC_ERROR,
        "try again later",
        "reported an error",
    );
}

#[test]
fn padt_from_a_wrong_mac_or_for_a_wrong_session_is_ignored() {
    let (_serial, wire, ac) = hostile_ac("padtbad", Script::default());
    let (mut dialer, id) = dial_up(&wire, &[]);
    let session = id as u16;
    ac.with(|emu| {
        emu.send_padt(doc_mac(9), session, b"from a stranger");
        emu.send_padt(AC_MAC, session.wrapping_add(1), b"another session");
        emu.send_padt(AC_MAC, 0, b"session zero");
        // Right AC and session, but addressed to another station.
        let frame = Emu::discovery_frame(
            AC_MAC,
            doc_mac(8),
            PppoeCode::Padt,
            session,
            vec![Tag::GenericError(b"not for you")],
        );
        emu.send(frame);
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!dialer.log().contains("PADT received"), "{}", dialer.log());
    assert_eq!(ac.count(|rx| rx.is_discovery(PppoeCode::Padt)), 0);
    // Echo kept running on the same session.
    assert!(ac.count(|rx| rx.is_control(Protocol::Lcp, Code::EchoRequest)) >= 2);
    assert_session_kept(&mut dialer, id);
}

#[test]
fn padt_for_our_session_redials() {
    let (_serial, wire, ac) = hostile_ac("padtok", Script::default());
    let (mut dialer, id) = dial_up(&wire, &persist("0"));
    ac.with(|emu| emu.send_padt(AC_MAC, id as u16, b"administratively closed"));
    let (status, took) = wait_redialed(&mut dialer, id);
    eprintln!("re-dialed after the PADT in {took:?}: {status}");
    assert_log(&dialer, "PADT received from the AC");
    assert_log(&dialer, "administratively closed");
    assert_eq!(ac.count(|rx| rx.is_discovery(PppoeCode::Padi)), 2);
    assert_sane(&mut dialer);
}

#[test]
fn frames_for_other_sessions_are_ignored() {
    let (_serial, wire, ac) = hostile_ac("othersess", Script::default());
    let (mut dialer, id) = dial_up(&wire, &[]);
    let ours = id as u16;
    let terminate = |identifier: u8| {
        portdial_protocol::control::Repr {
            code: Code::TerminateRequest,
            identifier,
            data: b"go away",
        }
        .to_vec()
    };
    let echo = EchoRepr {
        magic: 0x0bad_cafe,
        data: b"other",
    }
    .to_packet(Code::EchoRequest, 0xe5);
    let mut ipcp_request = Vec::new();
    IpcpOption::IpAddress(Ipv4Addr::new(198, 51, 100, 1)).push_to(&mut ipcp_request);
    let ipcp = portdial_protocol::control::Repr {
        code: Code::ConfigureRequest,
        identifier: 0xe6,
        data: &ipcp_request,
    }
    .to_vec();
    let lcp = u16::from(Protocol::Lcp);
    ac.with(|emu| {
        for frame in [
            Emu::session_frame(
                AC_MAC,
                CLIENT_MAC,
                ours.wrapping_add(1),
                lcp,
                &terminate(0xe1),
            ),
            Emu::session_frame(doc_mac(9), CLIENT_MAC, ours, lcp, &terminate(0xe2)),
            Emu::session_frame(AC_MAC, doc_mac(8), ours, lcp, &terminate(0xe3)),
            Emu::session_frame(AC_MAC, MacAddr::BROADCAST, ours, lcp, &terminate(0xe4)),
            Emu::session_frame(AC_MAC, CLIENT_MAC, ours.wrapping_add(7), lcp, &echo),
            Emu::session_frame(AC_MAC, CLIENT_MAC, 0, Protocol::Ipcp.into(), &ipcp),
            Emu::session_frame(AC_MAC, CLIENT_MAC, 0xffff, 0x4021, b"unknown protocol"),
        ] {
            emu.send(frame);
        }
    });
    std::thread::sleep(Duration::from_millis(2000));
    for code in [Code::TerminateAck, Code::EchoReply, Code::ProtocolReject] {
        let answers: Vec<_> = sent_by_portdial(&ac, Protocol::Lcp, code)
            .into_iter()
            .filter(|(identifier, _)| (0xe1..=0xe6).contains(identifier))
            .collect();
        assert!(
            answers.is_empty(),
            "portdial answered another session: {code:?} {answers:?}"
        );
    }
    assert!(sent_by_portdial(&ac, Protocol::Lcp, Code::ProtocolReject).is_empty());
    assert!(sent_by_portdial(&ac, Protocol::Ipcp, Code::ConfigureNak).is_empty());
    assert!(sent_by_portdial(&ac, Protocol::Ipcp, Code::ConfigureReject).is_empty());
    assert!(!dialer.log().contains("terminated by the peer"));
    assert_session_kept(&mut dialer, id);
}

// ---- LCP ----

#[test]
fn lcp_options_with_bad_lengths_are_rejected() {
    let magic = LcpOption::MagicNumber(0x5eed_f00d);
    let mru = LcpOption::Mru(1492);
    let mut long_data = vec![0x42, 0xff];
    long_data.extend(std::iter::repeat_n(0xa5, 253));
    // (the AC's options, what an RFC 1661 peer Configure-Rejects: the bad
    // option and, when the list cannot be walked past it, everything after).
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        // Length 0 in the middle of the list.
        (
            [lcp_options(&[mru]), vec![0x42, 0x00], lcp_options(&[magic])].concat(),
            [vec![0x42, 0x00], lcp_options(&[magic])].concat(),
        ),
        // Length 1 (shorter than the option's own header).
        (
            [vec![0x01, 0x01], lcp_options(&[magic])].concat(),
            [vec![0x01, 0x01], lcp_options(&[magic])].concat(),
        ),
        // Length 255, well-formed: an unknown option carrying 253 bytes.
        (
            [
                lcp_options(&[mru]),
                long_data.clone(),
                lcp_options(&[magic]),
            ]
            .concat(),
            long_data,
        ),
        // A known option (MRU) claiming 255 bytes: overruns the packet.
        (
            [lcp_options(&[magic]), vec![0x01, 0xff, 0x05, 0xd4]].concat(),
            vec![0x01, 0xff, 0x05, 0xd4],
        ),
        // A list ending in a lone byte.
        (
            [lcp_options(&[mru, magic]), vec![0x05]].concat(),
            vec![0x05],
        ),
        // A known option with a wrong but in-bounds length (MRU of 3 bytes).
        (
            [lcp_options(&[magic]), vec![0x01, 0x03, 0x05]].concat(),
            vec![0x01, 0x03, 0x05],
        ),
    ];
    let requests: Vec<Vec<u8>> = cases.iter().map(|(request, _)| request.clone()).collect();
    let (_serial, wire, ac) = hostile_ac(
        "optlen",
        Script {
            auth: AcAuth::None,
            lcp_options: Some(requests[0].clone()),
            ..Script::default()
        },
    );
    // Each Reject makes the AC send the next bad request, then a good one.
    let mut next = requests.into_iter().skip(1);
    ac.on_frame(move |emu, rx| {
        if rx.is_control(Protocol::Lcp, Code::ConfigureReject) {
            emu.script.lcp_options =
                Some(next.next().unwrap_or_else(|| lcp_options(&[mru, magic])));
        }
        Flow::Continue
    });
    let mut dialer = dial(&wire, &[]);
    let status = up(&mut dialer);
    let rejects = sent_by_portdial(&ac, Protocol::Lcp, Code::ConfigureReject);
    let rejected: Vec<Vec<u8>> = rejects.into_iter().map(|(_, data)| data).collect();
    let expected: Vec<Vec<u8>> = cases.into_iter().map(|(_, reject)| reject).collect();
    assert_eq!(rejected, expected);
    assert_eq!(status["mtu"], 1492);
    assert_session_kept(&mut dialer, session_id(&status));
}

#[test]
fn configure_nak_loop_hits_max_failure() {
    let (_serial, wire, ac) = hostile_ac("nakloop", Script::default());
    // First run: the AC Naks our MRU with a new acceptable value every time.
    let round = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = round.clone();
    let changing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mode = changing.clone();
    ac.on_configure_request(Protocol::Lcp, move |emu, request| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Alternating MRUs portdial can take, or one it cannot (64) forever.
        let mru = if mode.load(std::sync::atomic::Ordering::Relaxed) {
            1300 + (n % 2) as u16 * 100
        } else {
            64
        };
        let nak = lcp_options(&[LcpOption::Mru(mru)]);
        emu.send_control(Protocol::Lcp, Code::ConfigureNak, request.identifier, &nak);
        Flow::Stop
    });
    let mut dialer = dial(&wire, &[]);
    assert_eq!(wait_exit(&mut dialer, Duration::from_secs(20)), Some(6));
    assert_log(&dialer, "LCP: the peer keeps Nak'ing our MRU");
    assert_log(&dialer, "not converging");
    let requests = round.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("changing Naks: {requests} Configure-Requests before giving up");
    assert!((10..=40).contains(&requests), "{requests}");
    // RFC 1661: the link is closed with a Terminate-Request, then the PADT.
    assert!(!sent_by_portdial(&ac, Protocol::Lcp, Code::TerminateRequest).is_empty());
    assert!(ac.count(|rx| rx.is_discovery(PppoeCode::Padt)) >= 1);

    // Second run: a Nak portdial cannot take, repeated: Max-Failure rounds.
    changing.store(false, std::sync::atomic::Ordering::Relaxed);
    round.store(0, std::sync::atomic::Ordering::Relaxed);
    let mut dialer = dial(&wire, &[]);
    assert_eq!(wait_exit(&mut dialer, Duration::from_secs(20)), Some(6));
    assert_log(&dialer, "not converging");
    let requests = round.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("unchangeable Nak: {requests} Configure-Requests before giving up");
    assert!((2..=10).contains(&requests), "{requests}");
}

#[test]
fn configure_reject_of_everything_ends_at_max_configure() {
    let (_serial, wire, ac) = hostile_ac("rejall", Script::default());
    // The AC rejects the options of portdial's first request in every answer,
    // also once portdial no longer asks for them.
    let first: std::sync::Arc<Mutex<Option<Vec<u8>>>> = Default::default();
    let remembered = first.clone();
    ac.on_configure_request(Protocol::Lcp, move |emu, request| {
        let options = remembered
            .lock()
            .unwrap()
            .get_or_insert_with(|| request.data.to_vec())
            .clone();
        emu.send_control(
            Protocol::Lcp,
            Code::ConfigureReject,
            request.identifier,
            &options,
        );
        Flow::Stop
    });
    let start = Instant::now();
    let mut dialer = dial(&wire, &[]);
    assert_eq!(wait_exit(&mut dialer, Duration::from_secs(60)), Some(6));
    eprintln!("gave up after {:?}", start.elapsed());
    assert_log(&dialer, "negotiation timed out");
    let requests = sent_by_portdial(&ac, Protocol::Lcp, Code::ConfigureRequest);
    // After the first Reject portdial drops the rejected options (RFC 1661
    // §5.4) and asks with an empty list.
    // (The first may go out twice: portdial repeats it when the AC's own
    // request shows the AC started late.)
    let after_first = requests
        .iter()
        .find(|(identifier, _)| *identifier != requests[0].0);
    assert!(
        after_first.is_some_and(|(_, options)| options.is_empty()),
        "{requests:?}"
    );
    // The later Rejects name options the empty request did not carry: RFC
    // 1661 §5.4 makes them invalid, so they are discarded and the request
    // is retransmitted until Max-Configure (10) runs out.
    let empty = requests
        .iter()
        .filter(|(_, options)| options.is_empty())
        .count();
    assert_eq!(empty, 10, "{requests:?}");
    // TO- in Req-Sent is tlf without a Terminate-Request (RFC 1661 §4.1);
    // the PPPoE session is ended with a PADT.
    assert!(sent_by_portdial(&ac, Protocol::Lcp, Code::TerminateRequest).is_empty());
    assert!(ac.count(|rx| rx.is_discovery(PppoeCode::Padt)) >= 1);
}

fn our_magic(ac: &Ac) -> Option<u32> {
    ac.received().iter().rev().find_map(|rx| {
        let request = rx.control_with_code(Protocol::Lcp, Code::ConfigureRequest)?;
        LcpOption::iter(request.data)
            .flatten()
            .find_map(|option| match option {
                LcpOption::MagicNumber(magic) => Some(magic),
                _ => None,
            })
    })
}

#[test]
fn peer_echoing_our_magic_number_is_a_loopback() {
    let (_serial, wire, ac) = hostile_ac(
        "loop",
        Script {
            auth: AcAuth::None,
            ..Script::default()
        },
    );
    // Negotiation: every LCP packet portdial sends comes straight back, as
    // on a looped-back line (its own magic number in every request).
    ac.on_frame(|emu, rx| match rx.ppp() {
        Some((_, Protocol::Lcp, payload)) => {
            let payload = payload.to_vec();
            emu.send_ppp(Protocol::Lcp.into(), &payload);
            Flow::Stop
        }
        _ => Flow::Continue,
    });
    let mut dialer = dial(&wire, &[]);
    assert_eq!(wait_exit(&mut dialer, Duration::from_secs(20)), Some(6));
    assert_log(&dialer, "looped back");
    // RFC 1661 §6.4: each collision is Nak'ed with another magic number.
    let naks = sent_by_portdial(&ac, Protocol::Lcp, Code::ConfigureNak);
    assert!(
        naks.iter().any(|(_, data)| data.first() == Some(&5)),
        "no Magic-Number Nak: {naks:?}"
    );
    assert!(!sent_by_portdial(&ac, Protocol::Lcp, Code::TerminateRequest).is_empty());

    // Up: an Echo-Request carrying our own magic number.
    ac.on_frame(|_, _| Flow::Continue);
    let (mut dialer, id) = dial_up(&wire, &persist("0"));
    let magic = our_magic(&ac).expect("portdial's magic number");
    let echo = EchoRepr {
        magic,
        data: b"looped",
    }
    .to_packet(Code::EchoRequest, 0x71);
    ac.with(|emu| emu.send_ppp(Protocol::Lcp.into(), &echo));
    assert_log(&dialer, "looped back");
    let (status, _) = wait_redialed(&mut dialer, id);
    eprintln!("re-dialed after the loopback: {status}");
    // No Echo-Reply to our own echo.
    assert!(sent_by_portdial(&ac, Protocol::Lcp, Code::EchoReply)
        .iter()
        .all(|(identifier, _)| *identifier != 0x71));
    assert_sane(&mut dialer);
}

#[test]
fn chap_challenges_of_0_and_255_bytes_and_a_stream_of_rechallenges() {
    let (_serial, wire, ac) = hostile_ac(
        "chap",
        Script {
            auth: AcAuth::Chap,
            chap_value: Vec::new(),
            ..Script::default()
        },
    );
    let (mut dialer, id) = dial_up(&wire, &[]);
    assert_log(&dialer, "authenticated");
    let responses = |ac: &Ac| -> Vec<(u8, Vec<u8>)> {
        ac.received()
            .iter()
            .filter_map(|rx| {
                let packet = rx.control(Protocol::Chap)?;
                match chap::Repr::parse(&packet) {
                    Ok(chap::Repr::Response { value, .. }) => {
                        Some((packet.identifier, value.to_vec()))
                    }
                    _ => None,
                }
            })
            .collect()
    };
    // The empty challenge was answered correctly (the AC checked it: we are up).
    let first = responses(&ac);
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0].1,
        chap_md5_response(first[0].0, PASSWORD.as_bytes(), &[])
    );
    // A 255-byte re-challenge.
    let long: Vec<u8> = (0..255u8).collect();
    let long_id = ac.with(|emu| {
        emu.send_challenge(&long);
        emu.chap_id
    });
    assert!(eventually(Duration::from_secs(3), || responses(&ac).len() == 2));
    let answer = responses(&ac)[1].clone();
    assert_eq!(answer.0, long_id);
    assert_eq!(
        answer.1,
        chap_md5_response(long_id, PASSWORD.as_bytes(), &long)
    );
    // A stream of re-challenges, 1000 in batches of 50; the AC stays silent
    // about them (no Success/Failure) and checks every answer here.
    ac.on_frame(|_, rx| {
        if rx.control(Protocol::Chap).is_some() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    });
    let value = [0xab; 16];
    let mut asked = Vec::new();
    for _ in 0..20 {
        ac.with(|emu| {
            for _ in 0..50 {
                emu.send_challenge(&value);
                asked.push(emu.chap_id);
            }
        });
        let want = 2 + asked.len();
        assert!(
            eventually(Duration::from_secs(3), || responses(&ac).len() >= want),
            "{} of {} challenges answered",
            responses(&ac).len() - 2,
            asked.len()
        );
    }
    let stream = responses(&ac).split_off(2);
    assert_eq!(stream.len(), 1000);
    for ((identifier, response), expected_id) in stream.iter().zip(&asked) {
        assert_eq!(identifier, expected_id);
        assert_eq!(
            response,
            &chap_md5_response(*identifier, PASSWORD.as_bytes(), &value)
        );
    }
    assert_session_kept(&mut dialer, id);
}

#[test]
fn pap_ack_before_we_asked_is_ignored() {
    let (_serial, wire, ac) = hostile_ac("papearly", Script::default());
    let real_ack_at: std::sync::Arc<Mutex<Option<Instant>>> = Default::default();
    let recorded = real_ack_at.clone();
    ac.on_frame(move |emu, rx| {
        if rx.is_discovery(PppoeCode::Padr) {
            // Session starts: an Authenticate-Ack before LCP is even open.
            emu.default(rx.at, rx);
            emu.send_ppp(Protocol::Pap.into(), &pap_ack(0x77));
            return Flow::Stop;
        }
        // (PAP's Authenticate-Request has code 1, Configure-Request's.)
        if let Some(request) = rx.control_with_code(Protocol::Pap, Code::ConfigureRequest) {
            // An Ack of a request portdial never sent, at once.
            emu.send_ppp(
                Protocol::Pap.into(),
                &pap_ack(request.identifier.wrapping_add(100)),
            );
            // The real answer comes half a second later.
            let at = rx.at + Duration::from_millis(500);
            *recorded.lock().unwrap() = Some(at);
            let session = emu.session.expect("a session");
            let frame = Emu::session_frame(
                session.src,
                session.dst,
                session.session_id,
                Protocol::Pap.into(),
                &pap_ack(request.identifier),
            );
            emu.send_at(at, frame);
            emu.start_network(rx.at);
            return Flow::Stop;
        }
        Flow::Continue
    });
    fn pap_ack(identifier: u8) -> Vec<u8> {
        portdial_protocol::pap::Repr::AuthenticateAck { message: b"early" }.to_packet(identifier)
    }
    let (mut dialer, id) = dial_up(&wire, &[]);
    let acked_at = real_ack_at
        .lock()
        .unwrap()
        .expect("portdial sent an Authenticate-Request");
    // Nothing of the network phase before the real Ack.
    let first_ipcp = ac
        .received()
        .iter()
        .find(|rx| rx.control(Protocol::Ipcp).is_some())
        .map(|rx| rx.at)
        .expect("IPCP from portdial");
    assert!(
        first_ipcp >= acked_at,
        "portdial started IPCP {:?} before the real Authenticate-Ack",
        acked_at - first_ipcp
    );
    assert_log(&dialer, "authenticated");
    assert_session_kept(&mut dialer, id);
}

#[test]
fn ipcp_handing_out_unusable_addresses() {
    let (_serial, wire, ac) = hostile_ac("ipcpaddr", Script::default());
    // Session n hands out BAD[n]; the fourth a good address.
    const BAD: [Ipv4Addr; 3] = [Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, AC_IP];
    ac.on_configure_request(Protocol::Ipcp, |emu, request| {
        let session = usize::from(emu.sessions).checked_sub(1);
        let Some(&bad) = session.and_then(|n| BAD.get(n)) else {
            return Flow::Continue;
        };
        let asked = IpcpOption::iter(request.data)
            .flatten()
            .find_map(|option| match option {
                IpcpOption::IpAddress(address) => Some(address),
                _ => None,
            });
        if asked == Some(bad) && !bad.is_unspecified() {
            // portdial took it: Ack, as a careless AC would.
            emu.send_control(
                Protocol::Ipcp,
                Code::ConfigureAck,
                request.identifier,
                request.data,
            );
        } else {
            let mut nak = Vec::new();
            IpcpOption::IpAddress(bad).push_to(&mut nak);
            emu.send_control(Protocol::Ipcp, Code::ConfigureNak, request.identifier, &nak);
        }
        Flow::Stop
    });
    let mut dialer = dial(&wire, &persist("0"));
    let (status, took) = dialer.wait_for(
        "up after three bad addresses",
        Duration::from_secs(30),
        |s| s["phase"] == "up" && s["local_ip"] == CLIENT_IP.to_string(),
    );
    eprintln!("up with a usable address after {took:?}: {status}");
    assert_eq!(status["redials"], 3, "{status}");
    assert_log(&dialer, "unusable address 0.0.0.0");
    assert_log(&dialer, "unusable address 255.255.255.255");
    assert_log(&dialer, "192.0.2.1");
    let log = dialer.log();
    assert!(
        log.contains("its own address 192.0.2.1")
            || log.contains("unusable local address 192.0.2.1"),
        "{log}"
    );
    // Each refusal closed IPCP with a Terminate-Request (RFC 1661 §3.7).
    assert!(sent_by_portdial(&ac, Protocol::Ipcp, Code::TerminateRequest).len() >= 3);
    assert_eq!(ac.count(|rx| rx.is_discovery(PppoeCode::Padt)), 3);
    assert_sane(&mut dialer);
}

#[test]
fn peer_mru_of_64_and_65535() {
    let (_serial, wire, ac) = hostile_ac(
        "mru",
        Script {
            mru: 64,
            ..Script::default()
        },
    );
    // The AC takes the MRU portdial Naks it (RFC 1661 §5.3).
    ac.on_frame(|emu, rx| {
        if let Some(nak) = rx.control_with_code(Protocol::Lcp, Code::ConfigureNak) {
            for option in LcpOption::iter(nak.data).flatten() {
                if let LcpOption::Mru(mru) = option {
                    emu.script.mru = mru;
                }
            }
        }
        Flow::Continue
    });
    let mut dialer = dial(&wire, &persist("0"));
    let status = up(&mut dialer);
    let naks = sent_by_portdial(&ac, Protocol::Lcp, Code::ConfigureNak);
    assert_eq!(
        naks.first().map(|(_, data)| data.clone()),
        Some(lcp_options(&[LcpOption::Mru(128)])),
        "an MRU of 64 is Nak'ed to the 128 minimum"
    );
    assert_eq!(status["mtu"], 128, "{status}");
    let id = session_id(&status);

    ac.with(|emu| {
        emu.script.mru = 65535;
        emu.send_padt(AC_MAC, id as u16, b"next one with a huge MRU");
    });
    let (status, _) = dialer.wait_for("the second session", Duration::from_secs(15), |s| {
        s["phase"] == "up" && s["redials"] == 1 && s["local_ip"].is_string()
    });
    assert_eq!(
        status["mtu"], 1492,
        "65535 is clamped to the link: {status}"
    );
    let acked_huge = sent_by_portdial(&ac, Protocol::Lcp, Code::ConfigureAck)
        .iter()
        .any(|(_, data)| {
            LcpOption::iter(data)
                .flatten()
                .any(|option| option == LcpOption::Mru(65535))
        });
    assert!(acked_huge, "an MRU of 65535 is acceptable and Acked");
    assert_log(&dialer, "mtu=1492");
    assert_sane(&mut dialer);
}

#[test]
fn unknown_protocols_are_protocol_rejected() {
    let (_serial, wire, ac) = hostile_ac("unkproto", Script::default());
    let (mut dialer, id) = dial_up(&wire, &[]);
    // CCP and IPv6CP (not run here), an unassigned network protocol and an
    // unassigned control protocol.
    let protocols = [0x80fd_u16, 0x8057, 0x4021, 0xc0a1];
    let big = vec![0x5a; 1400];
    ac.with(|emu| {
        for protocol in protocols {
            emu.send_ppp(protocol, &[0x01, 0x01, 0x00, 0x04]);
        }
        emu.send_ppp(0x4023, &big);
    });
    assert!(eventually(Duration::from_secs(3), || {
        sent_by_portdial(&ac, Protocol::Lcp, Code::ProtocolReject).len() == 5
    }));
    let rejected: Vec<(u16, Vec<u8>)> = sent_by_portdial(&ac, Protocol::Lcp, Code::ProtocolReject)
        .iter()
        .map(|(_, data)| {
            let reject = ProtocolRejectRepr::parse(data).expect("a Protocol-Reject");
            (reject.protocol, reject.information.to_vec())
        })
        .collect();
    for (protocol, (got, information)) in protocols.iter().zip(&rejected) {
        assert_eq!(got, protocol);
        assert_eq!(information, &[0x01, 0x01, 0x00, 0x04]);
    }
    // RFC 1661 §5.7: the rejected information is truncated to the peer's MRU.
    let (protocol, information) = &rejected[4];
    assert_eq!(*protocol, 0x4023);
    assert!(information.len() + 6 <= 1492 && big.starts_with(information));
    assert_session_kept(&mut dialer, id);
}

#[test]
fn unknown_codes_are_code_rejected() {
    let (_serial, wire, ac) = hostile_ac("unkcode", Script::default());
    let (mut dialer, id) = dial_up(&wire, &[]);
    let lcp_unknown = [0x42, 0x21, 0x00, 0x06, 0xde, 0xad];
    let ipcp_unknown = [0x0c, 0x22, 0x00, 0x04];
    ac.with(|emu| {
        emu.send_ppp(Protocol::Lcp.into(), &lcp_unknown);
        emu.send_ppp(Protocol::Ipcp.into(), &ipcp_unknown);
    });
    assert!(eventually(Duration::from_secs(3), || {
        !sent_by_portdial(&ac, Protocol::Lcp, Code::CodeReject).is_empty()
            && !sent_by_portdial(&ac, Protocol::Ipcp, Code::CodeReject).is_empty()
    }));
    // RFC 1661 §5.6: the Code-Reject quotes the rejected packet.
    assert_eq!(
        sent_by_portdial(&ac, Protocol::Lcp, Code::CodeReject)[0].1,
        lcp_unknown
    );
    assert_eq!(
        sent_by_portdial(&ac, Protocol::Ipcp, Code::CodeReject)[0].1,
        ipcp_unknown
    );
    assert_session_kept(&mut dialer, id);
}

// ---- garbage ----

#[test]
fn garbage_at_full_rate_leaves_the_session_up() {
    let (_serial, wire, ac) = hostile_ac("garbage", Script::default());
    // Info level: debug would write a line per malformed frame.
    let (mut dialer, id) = dial_up(&wire, &["--log-level", "info"]);
    let session = id as u16;
    let before = wire.client_link_stats();
    let echoes_before = ac.count(|rx| rx.is_control(Protocol::Lcp, Code::EchoRequest));
    // None of these is a well-formed control packet of our session.
    let make = move |i: u64| -> Vec<u8> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(i);
        let len = rng.gen_range(14..=1514);
        let mut frame: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let dst = if i.is_multiple_of(7) {
            MacAddr::BROADCAST
        } else {
            CLIENT_MAC
        };
        frame[..6].copy_from_slice(&dst.0);
        frame[6..12].copy_from_slice(&AC_MAC.0);
        fn put(frame: &mut Vec<u8>, at: usize, bytes: &[u8]) {
            if frame.len() < at + bytes.len() {
                frame.resize(at + bytes.len(), 0);
            }
            frame[at..at + bytes.len()].copy_from_slice(bytes);
        }
        // EtherType, PPPoE version/type and code, session id.
        fn session_header(frame: &mut Vec<u8>, ver_type: u8, session: u16) {
            put(frame, 12, &ethernet::ethertype::PPPOE_SESSION.to_be_bytes());
            put(frame, 14, &[ver_type, 0x00]);
            put(frame, 16, &session.to_be_bytes());
        }
        match i % 6 {
            // Random EtherType (the socket filter's business).
            0 => {}
            // Discovery with random content.
            1 => put(
                &mut frame,
                12,
                &ethernet::ethertype::PPPOE_DISCOVERY.to_be_bytes(),
            ),
            // Our session with a wrong version/type.
            2 => session_header(&mut frame, 0x21, session),
            // Our session with a length beyond the frame.
            3 => {
                session_header(&mut frame, 0x11, session);
                let claimed = (frame.len() as u16).saturating_add(1);
                put(&mut frame, 18, &claimed.to_be_bytes());
            }
            // Another session, random payload.
            4 => session_header(
                &mut frame,
                0x11,
                session.wrapping_add(1 + (i as u16 % 1000)),
            ),
            // Our session, an invalid PPP protocol field (even low octet).
            _ => {
                session_header(&mut frame, 0x11, session);
                let length = (frame.len().saturating_sub(20)).max(2) as u16;
                put(&mut frame, 18, &length.to_be_bytes());
                put(&mut frame, 20, &[0xc0, 0x20]);
            }
        }
        frame
    };
    let (sent, took) = blast(&wire.server, SERVER_IFACE, Duration::from_secs(3), make);
    let rate = sent as f64 / took.as_secs_f64();
    std::thread::sleep(Duration::from_millis(1500));
    let after = wire.client_link_stats();
    let status = dialer.status().expect("portdial answers status");
    eprintln!(
        "garbage: {sent} frames in {took:?} = {rate:.0} frames/s; client interface rx_packets +{}, rx_dropped +{}; portdial malformed_frames {}",
        after["rx"]["packets"].as_u64().unwrap_or(0) - before["rx"]["packets"].as_u64().unwrap_or(0),
        after["rx"]["dropped"].as_u64().unwrap_or(0) - before["rx"]["dropped"].as_u64().unwrap_or(0),
        status["malformed_frames"]
    );
    assert!(sent > 10_000, "the blaster sent only {sent} frames");
    assert!(
        status["malformed_frames"].as_u64().unwrap_or(0) > 0,
        "malformed frames are counted: {status}"
    );
    // Keepalive went on through the storm.
    let echoes = ac.count(|rx| rx.is_control(Protocol::Lcp, Code::EchoRequest)) - echoes_before;
    assert!(echoes >= 3, "only {echoes} Echo-Requests during the storm");
    assert!(!dialer.log().contains("session down"), "{}", dialer.log());
    assert_session_kept(&mut dialer, id);
}
