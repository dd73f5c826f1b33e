//! Interop against the real rp-pppoe `pppoe-server` and `pppd` (in a
//! user-mode-linux guest; see lab/README.md), with a real `portdial dial` in
//! the lab's client namespace. Each test builds its own lab and tears it down,
//! also when it fails.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::lab::*;
use nix::sys::signal::Signal;

const USER: &str = "portdial";
const PASSWORD: &str = "portdial-secret";

fn password_file(lab: &Lab, secret: &str) -> String {
    let path = lab.dir.join(format!("password-{}", secret.len()));
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path.to_string_lossy().into_owned()
}

fn http_get(lab: &Lab, url: &str) -> Vec<u8> {
    let mut body = Vec::new();
    let ok = eventually(Duration::from_secs(10), || {
        let output = lab.in_client(&["curl", "-sS", "--max-time", "5", url]);
        body = output.stdout;
        output.status.success()
    });
    assert!(ok, "GET {url} failed");
    body
}

#[test]
fn pap_session_carries_traffic_and_dns_and_ends_with_padt() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let lab = Lab::up("pap", &["--auth", "pap"]);
    let password = password_file(&lab, PASSWORD);
    // ip-up / ip-down hooks that record their arguments and pppd's environment.
    let hook = lab.script(
        "hook.sh",
        "env > \"$0.$(basename \"$PHASE\").env\"\necho \"$@\" >> \"$0.$(basename \"$PHASE\").args\"",
    );
    let up_arg = lab.script("ip-up", &format!("PHASE=up exec {hook} \"$@\""));
    let down_arg = lab.script("ip-down", &format!("PHASE=down exec {hook} \"$@\""));
    let mut dialer = lab.dial(&[
        "--user",
        USER,
        "--password-file",
        &password,
        "--usepeerdns",
        "--default-route",
        "--ip-up",
        &up_arg,
        "--ip-down",
        &down_arg,
    ]);
    let (status, took) = dialer.wait_up(Duration::from_secs(20));
    eprintln!("pap: network up after {took:?}: {status}");
    assert_eq!(status["ac_name"], "portdial-lab");
    assert_eq!(status["ac_mac"], lab.get("server_mac"));
    assert_eq!(status["peer_ip"], "192.0.2.1");
    assert!(status["local_ip"].as_str().unwrap().starts_with("192.0.2."));
    assert_eq!(
        status["dns"],
        serde_json::json!(["192.0.2.53", "192.0.2.54"])
    );
    assert_eq!(status["mtu"], 1492);
    assert_eq!(status["interface"], "pd0");
    let resolv = file_text(&dialer.path("resolv.conf"));
    assert!(
        resolv.contains("nameserver 192.0.2.53") && resolv.contains("nameserver 192.0.2.54"),
        "{resolv}"
    );

    let routes =
        String::from_utf8_lossy(&lab.in_client(&["ip", "route", "show", "default"]).stdout)
            .into_owned();
    assert!(routes.contains("dev pd0"), "--default-route: {routes}");
    let hook_env = lab.dir.join("hook.sh.up.env");
    assert!(
        // Written by the shell's redirection: created first, filled after.
        eventually(Duration::from_secs(5), || !file_text(&hook_env).is_empty()),
        "ip-up did not run"
    );
    let env = file_text(&hook_env);
    for expected in [
        "IFNAME=pd0",
        "IPREMOTE=192.0.2.1",
        "DNS1=192.0.2.53",
        "DNS2=192.0.2.54",
        "PEERNAME=portdial-lab",
        "DEVICE=eth0",
    ] {
        assert!(
            env.contains(expected),
            "ip-up environment lacks {expected}:\n{env}"
        );
    }
    assert!(
        env.contains(&format!("IPLOCAL={}", status["local_ip"].as_str().unwrap())),
        "{env}"
    );
    assert!(lab.ping("192.0.2.1"), "no ping reply through the TUN");
    let index = http_get(&lab, lab.get("http_url"));
    let expected =
        std::fs::read(std::path::Path::new(lab.get("www_dir")).join("index.html")).unwrap();
    assert_eq!(index, expected, "HTTP body differs from the guest's file");
    let status = dialer.status().unwrap();
    assert!(
        status["tx_packets"].as_u64().unwrap() >= 2 && status["rx_packets"].as_u64().unwrap() >= 2
    );

    dialer.signal(Signal::SIGTERM);
    assert_eq!(dialer.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(
        eventually(Duration::from_secs(5), || lab
            .logs("all")
            .contains("closed for client")),
        "the server saw no PADT from us:\n{}",
        lab.logs("all")
    );
    assert!(
        !lab.in_client(&["ip", "link", "show", "pd0"])
            .status
            .success(),
        "the TUN outlived the session"
    );
    assert!(
        !dialer.path("resolv.conf").exists(),
        "the DNS file we wrote is removed on down"
    );
}

#[test]
fn discover_lists_the_access_concentrator() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let lab = Lab::up("discover", &["--auth", "pap"]);
    let portdial = portdial();
    let output = lab.in_client(&[
        portdial.to_str().unwrap(),
        "discover",
        "--iface",
        "eth0",
        "--json",
        "--timeout",
        "2",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let offers: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(offers.as_array().unwrap().len(), 1, "{offers}");
    assert_eq!(offers[0]["ac_name"], "portdial-lab");
    assert_eq!(offers[0]["ac_mac"], lab.get("server_mac"));
    assert_eq!(
        offers[0]["cookie"].as_str().unwrap().len(),
        40,
        "rp-pppoe's 20-byte cookie: {offers}"
    );
    // No PADR was sent: the server created no session.
    assert!(
        !lab.logs("all").contains("created for client"),
        "discover must not start a session"
    );
    // Text form, like `pppoe -A`.
    let output = lab.in_client(&[
        portdial.to_str().unwrap(),
        "discover",
        "--iface",
        "eth0",
        "--timeout",
        "2",
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("Access-Concentrator: portdial-lab") && text.contains("AC-Ethernet-Address"),
        "{text}"
    );
    // An interface that does not exist: its documented exit code.
    let output = lab.in_client(&[portdial.to_str().unwrap(), "discover", "--iface", "nosuch0"]);
    assert_eq!(output.status.code(), Some(8));
}

#[test]
fn chap_md5_session() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let lab = Lab::up("chap", &["--auth", "chap"]);
    let password = password_file(&lab, PASSWORD);
    let mut dialer = lab.dial(&["--user", USER, "--password-file", &password]);
    let (_, took) = dialer.wait_up(Duration::from_secs(20));
    eprintln!("chap: network up after {took:?}");
    assert!(lab.ping("192.0.2.1"));
    assert!(
        lab.logs("pppd").contains("CHAP"),
        "pppd did not run CHAP:\n{}",
        lab.logs("pppd")
    );
}

#[test]
fn server_asking_chap_gets_pap_when_the_client_allows_only_pap() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let lab = Lab::up("naktopap", &["--auth", "both"]);
    let password = password_file(&lab, PASSWORD);
    let mut dialer = lab.dial(&[
        "--user",
        USER,
        "--password-file",
        &password,
        "--auth",
        "pap",
    ]);
    dialer.wait_up(Duration::from_secs(20));
    let pppd = lab.logs("pppd");
    assert!(
        pppd.contains("PAP"),
        "pppd did not fall back to PAP:\n{pppd}"
    );
}

#[test]
fn wrong_password_fails_once_with_its_exit_code() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let lab = Lab::up("badpw", &["--auth", "pap"]);
    let password = password_file(&lab, "not-the-password");
    let mut dialer = lab.dial(&["--user", USER, "--password-file", &password]);
    let code = dialer.wait_exit(Duration::from_secs(30));
    assert_eq!(
        code,
        Some(5),
        "exit code AUTH_FAILED; log:\n{}",
        dialer.log()
    );
    let log = dialer.log();
    assert!(log.contains("authentication failed"), "{log}");
    assert!(
        !log.contains(PASSWORD) && !log.contains("not-the-password"),
        "a password reached the log"
    );
    // One attempt: no retry storm against the server.
    let attempts = lab.logs("pppd").matches("rcvd [PAP AuthReq").count();
    assert_eq!(attempts, 1, "{}", lab.logs("pppd"));
}

#[test]
fn mss_clamping_is_visible_at_the_server() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let lab = Lab::up("mss", &["--auth", "pap"]);
    let password = password_file(&lab, PASSWORD);
    let mut dialer = lab.dial(&[
        "--user",
        USER,
        "--password-file",
        &password,
        "--mss-clamp",
        "1300",
    ]);
    dialer.wait_up(Duration::from_secs(20));
    let pcap = lab.dir.join("server-side.pcap");
    let mut tcpdump = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.server_ns(),
            "tcpdump",
            "-i",
            "veth0",
            "-U",
            "-w",
        ])
        .arg(&pcap)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(700));
    http_get(&lab, lab.get("http_url"));
    std::thread::sleep(Duration::from_millis(500));
    let _ = tcpdump.kill();
    let _ = tcpdump.wait();
    let syn_mss = syn_mss_values(&pcap);
    assert!(!syn_mss.is_empty(), "no TCP SYN in the server-side capture");
    assert!(
        syn_mss.iter().all(|&mss| mss <= 1300),
        "SYN MSS values on the wire: {syn_mss:?}"
    );
}

/// The MSS option of every TCP SYN in a pcap of PPPoE session frames.
fn syn_mss_values(path: &std::path::Path) -> Vec<u16> {
    use portdial_protocol::encap::decapsulate;
    use portdial_protocol::ip::{ipv4, tcp};
    let file = std::fs::File::open(path).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(file).unwrap();
    let mut values = Vec::new();
    while let Some(Ok(packet)) = reader.next_packet() {
        let frame = &packet.data;
        let Ok(decap) = decapsulate(frame) else {
            continue;
        };
        if decap.protocol != 0x0021 {
            continue;
        }
        let Ok(ip) = ipv4::Packet::new_checked(&frame[decap.payload.clone()]) else {
            continue;
        };
        if ip.protocol() != 6 {
            continue;
        }
        let Ok(segment) = tcp::Packet::new_checked(ip.payload()) else {
            continue;
        };
        // The client's SYNs: the server's SYN-ACKs are clamped on their way in,
        // after this capture point.
        if segment.flags().contains(tcp::TcpFlags::SYN)
            && !segment.flags().contains(tcp::TcpFlags::ACK)
        {
            if let Some(mss) = segment.mss() {
                values.push(mss);
            }
        }
    }
    values
}

#[test]
fn server_restart_is_redialed() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let lab = Lab::up("restart", &["--auth", "pap"]);
    let password = password_file(&lab, PASSWORD);
    let mut dialer = lab.dial(&[
        "--user",
        USER,
        "--password-file",
        &password,
        "--persist",
        "--holdoff",
        "1",
        "--lcp-echo-interval",
        "2",
    ]);
    dialer.wait_up(Duration::from_secs(20));
    let mut times = Vec::new();
    for round in 1..=3u64 {
        let restarted = Instant::now();
        lab.must("server-restart", &[]);
        let (status, _) = dialer.wait_for("re-dial", Duration::from_secs(40), |s| {
            s["redials"] == round && s["phase"] == "up"
        });
        times.push(restarted.elapsed());
        assert!(status["last_failure"].is_string(), "{status}");
        assert!(lab.ping("192.0.2.1"), "no traffic after re-dial {round}");
    }
    eprintln!("re-dial after server restart: {times:?}");
}

#[test]
fn silent_server_is_detected_by_echo_and_redialed_when_back() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let lab = Lab::up("silent", &["--auth", "pap"]);
    let password = password_file(&lab, PASSWORD);
    let mut dialer = lab.dial(&[
        "--user",
        USER,
        "--password-file",
        &password,
        "--persist",
        "--holdoff",
        "1",
        "--lcp-echo-interval",
        "1",
        "--lcp-echo-failure",
        "3",
    ]);
    dialer.wait_up(Duration::from_secs(20));
    lab.must("freeze", &[]);
    let frozen = Instant::now();
    let (status, _) = dialer.wait_for("echo failure", Duration::from_secs(20), |s| {
        s["phase"] != "up"
    });
    eprintln!(
        "echo failure detected {:?} after the freeze: {status}",
        frozen.elapsed()
    );
    lab.must("thaw", &[]);
    let (status, _) = dialer.wait_for("re-dial", Duration::from_secs(60), |s| s["phase"] == "up");
    assert!(
        status["last_failure"].as_str().unwrap().contains("echo"),
        "{status}"
    );
    assert!(status["redials"].as_u64().unwrap() >= 1);
}

#[test]
fn carrier_loss_waits_for_carrier_and_redials() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let lab = Lab::up("carrier", &["--auth", "pap"]);
    let password = password_file(&lab, PASSWORD);
    let mut dialer = lab.dial(&[
        "--user",
        USER,
        "--password-file",
        &password,
        "--persist",
        "--holdoff",
        "1",
    ]);
    dialer.wait_up(Duration::from_secs(20));
    // The client's own link goes down (the guest's raw socket on the server end
    // of the veth would not survive a flap there, unlike a real AC).
    assert!(lab
        .in_client(&["ip", "link", "set", "eth0", "down"])
        .status
        .success());
    let (status, _) = dialer.wait_for("carrier loss", Duration::from_secs(10), |s| {
        s["phase"] == "holdoff"
    });
    assert!(
        status["last_failure"].as_str().unwrap().contains("carrier"),
        "{status}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let (status, _) = dialer.wait_for("no dialing without carrier", Duration::from_secs(1), |s| {
        s["phase"] == "holdoff"
    });
    assert_eq!(
        status["redials"], 0,
        "it must wait for the carrier: {status}"
    );
    assert!(lab
        .in_client(&["ip", "link", "set", "eth0", "up"])
        .status
        .success());
    let (status, _) = dialer.wait_for("re-dial", Duration::from_secs(40), |s| s["phase"] == "up");
    assert!(status["redials"].as_u64().unwrap() >= 1);
}

#[test]
fn stale_session_is_ended_with_padt_at_start() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let lab = Lab::up("stale", &["--auth", "pap"]);
    let password = password_file(&lab, PASSWORD);
    let state = lab.dir.join("shared-state.json");
    let state_arg = state.to_string_lossy().into_owned();
    let mut first = lab.dial(&[
        "--user",
        USER,
        "--password-file",
        &password,
        "--state-file",
        &state_arg,
    ]);
    let (status, _) = first.wait_up(Duration::from_secs(20));
    let stale_id = status["session_id"].as_u64().unwrap();
    // A crash: no PADT, no Terminate; the state file stays behind.
    first.signal(Signal::SIGKILL);
    first.wait_exit(Duration::from_secs(5));
    assert!(state.exists(), "the state file records the session");
    let mut second = lab.dial(&[
        "--user",
        USER,
        "--password-file",
        &password,
        "--state-file",
        &state_arg,
    ]);
    let (status, _) = second.wait_up(Duration::from_secs(20));
    assert_ne!(status["session_id"].as_u64().unwrap(), stale_id);
    assert!(second.log().contains("stale session"), "{}", second.log());
    // pppoe-server logs the PADT's Generic-Error text, then the closed session.
    let closed = format!("Session {stale_id} closed for client");
    assert!(
        eventually(Duration::from_secs(5), || {
            let logs = lab.logs("all");
            logs.contains("PADT: Generic-Error: portdial: stale session") && logs.contains(&closed)
        }),
        "the server never saw a PADT for session {stale_id}:\n{}",
        lab.logs("all")
    );
}

/// The arguments the recorded sessions were dialed with; the offline replay
/// (tests/lab_captures.rs) rebuilds the same session from them.
pub const RECORDING_ARGS: &[&str] = &[
    "--user",
    USER,
    "--password",
    PASSWORD,
    "--usepeerdns",
    "--seed",
    "5eed",
    "--lcp-echo-interval",
    "20",
];

/// Records a PAP and a CHAP session with `--capture` (written to
/// captures/lab/ when PORTDIAL_RECORD=1, otherwise to the lab's directory),
/// and checks each capture decodes with `portdial replay` as the session it was.
#[test]
fn record_pap_and_chap_sessions() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    for auth in ["pap", "chap"] {
        let lab = Lab::up(&format!("rec{auth}"), &["--auth", auth]);
        let out = if std::env::var_os("PORTDIAL_RECORD").is_some_and(|v| v == "1") {
            repo().join(format!("captures/lab/{auth}.pcap"))
        } else {
            lab.dir.join(format!("{auth}.pcap"))
        };
        let out_arg = out.to_string_lossy().into_owned();
        let mut args = RECORDING_ARGS.to_vec();
        args.extend(["--capture", &out_arg]);
        let mut dialer = lab.dial(&args);
        dialer.wait_up(Duration::from_secs(20));
        // Let pppd finish its IPv6CP round before we close.
        std::thread::sleep(Duration::from_millis(500));
        dialer.signal(Signal::SIGTERM);
        assert_eq!(dialer.wait_exit(Duration::from_secs(15)), Some(0));
        let replay = Command::new(portdial())
            .args(["replay", "--json", &out_arg])
            .output()
            .unwrap();
        assert!(replay.status.success());
        let report: serde_json::Value = serde_json::from_slice(&replay.stdout).unwrap();
        assert_eq!(report["malformed"], 0, "{report}");
        let session = &report["sessions"][0];
        assert_eq!(session["ac_name"], "portdial-lab");
        assert_eq!(
            session["auth"],
            if auth == "pap" { "pap" } else { "chap-md5" }
        );
        assert_eq!(session["auth_result"], "success");
        assert_eq!(session["peer_ip"], "192.0.2.1");
        assert_eq!(
            session["dns"],
            serde_json::json!(["192.0.2.53", "192.0.2.54"])
        );
        assert!(session["terminated_by"].is_string(), "{session}");
        // The PAP password is masked in captures unless asked for.
        let bytes = std::fs::read(&out).unwrap();
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "the password is in the capture"
        );
    }
}

/// `portdial release PORT` destroys the socket; the example application
/// (examples/reconnect.rs) hears of it on the event stream and connects again;
/// the `--on-release` hook gets the event's fields.
#[test]
fn released_port_is_reconnected_by_the_example_application() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let lab = Lab::up("reconnect", &["--auth", "pap"]);
    let password = password_file(&lab, PASSWORD);
    let hook_arg = lab.script(
        "on-release.sh",
        &format!("env > {}/on-release.env", lab.dir.display()),
    );
    let mut dialer = lab.dial(&[
        "--user",
        USER,
        "--password-file",
        &password,
        "--on-release",
        &hook_arg,
        // The release names the application's pid.
        "--name-owners",
    ]);
    dialer.wait_up(Duration::from_secs(20));
    let example = portdial().parent().unwrap().join("examples/reconnect");
    assert!(
        example.exists(),
        "build the example first: cargo build --example reconnect"
    );
    let out = lab.dir.join("reconnect.out");
    let mut app = Command::new("ip")
        .args(["netns", "exec", &lab.client_ns()])
        .arg(&example)
        .args(["--server", "192.0.2.1:7", "--control"])
        .arg(&dialer.control)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first_port = || {
        file_text(&out)
            .lines()
            .find_map(|l| l.strip_prefix("connected local_port=").map(str::to_string))
    };
    assert!(
        eventually(Duration::from_secs(10), || first_port().is_some()),
        "{}",
        file_text(&out)
    );
    let port = first_port().unwrap();
    let release = Command::new(portdial())
        .args(["release", &port, "--proto", "tcp", "--control"])
        .arg(&dialer.control)
        .output()
        .unwrap();
    assert!(
        release.status.success(),
        "{}",
        String::from_utf8_lossy(&release.stderr)
    );
    let released = String::from_utf8_lossy(&release.stdout).into_owned();
    assert!(
        released.contains("port_released") && released.contains(&format!("port={port}")),
        "{released}"
    );
    assert!(
        released.contains(&format!("pid={}", app.id())),
        "the owner is the application: {released}"
    );
    // The application connects again, from a new port.
    let reconnected = eventually(Duration::from_secs(10), || {
        file_text(&out).matches("connected local_port=").count() >= 2
    });
    let _ = app.kill();
    let _ = app.wait();
    let text = file_text(&out);
    assert!(reconnected, "{text}");
    assert!(
        text.contains("ConnectionAborted") || text.contains("reconnecting as advised"),
        "{text}"
    );
    let env = file_text(&lab.dir.join("on-release.env"));
    for expected in [
        "PORTDIAL_EVENT=port_released",
        &format!("PORTDIAL_PORT={port}"),
        "PORTDIAL_PROTO=tcp",
        "PORTDIAL_RECONNECT=advised",
    ] {
        assert!(
            env.contains(expected),
            "on-release hook environment lacks {expected}:\n{env}"
        );
    }
}

/// SIGHUP, as with pppd: the link is ended (the server sees our PADT) and,
/// with `persist`, dialed again at once; ip-down runs for the old session
/// with its session variables, ip-up for the new one.
#[test]
fn sighup_ends_the_link_and_redials() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let lab = Lab::up("hup", &["--auth", "pap"]);
    let password = password_file(&lab, PASSWORD);
    let hook = lab.script(
        "hook.sh",
        &format!(
            "env | sort > {}/$PHASE.$(date +%s%N).env",
            lab.dir.display()
        ),
    );
    let up_arg = lab.script("up.sh", &format!("PHASE=up exec {hook}"));
    let down_arg = lab.script("down.sh", &format!("PHASE=down exec {hook}"));
    let mut dialer = lab.dial(&[
        "--user",
        USER,
        "--password-file",
        &password,
        "--persist",
        "--holdoff",
        "1",
        "--ip-up",
        &up_arg,
        "--ip-down",
        &down_arg,
    ]);
    let (first, _) = dialer.wait_up(Duration::from_secs(20));
    dialer.signal(Signal::SIGHUP);
    let (second, _) = dialer.wait_for("re-dial after SIGHUP", Duration::from_secs(30), |s| {
        s["phase"] == "up" && s["redials"] == 1
    });
    assert_ne!(first["session_id"], second["session_id"], "a new session");
    assert!(
        eventually(Duration::from_secs(5), || lab
            .logs("all")
            .contains("PADT: Generic-Error: closed: SIGHUP")),
        "the server saw no PADT:\n{}",
        lab.logs("all")
    );
    let envs = |phase: &str| -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(&lab.dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with(&format!("{phase}.")) && name.ends_with(".env")
            })
            .collect();
        files.sort();
        files.iter().map(|p| file_text(p)).collect()
    };
    assert!(
        eventually(Duration::from_secs(5), || envs("up").len() == 2),
        "ip-up runs: {:?}",
        envs("up").len()
    );
    let downs = envs("down");
    assert_eq!(downs.len(), 1, "ip-down ran once");
    assert!(
        downs[0].contains("MACREMOTE=") && downs[0].contains("PORTDIAL_SESSION_ID="),
        "{}",
        downs[0]
    );
    assert!(dialer.try_exit().is_none(), "still running");
}
