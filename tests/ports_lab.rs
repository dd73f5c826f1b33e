//! The port manager's scenario suite in the lab (lab/README.md): a real
//! `portdial dial` against rp-pppoe + pppd, and small Python applications
//! (tests/apps/) with real kernel sockets in the client namespace. Every
//! scenario port carries the verdict it deserves (live or phantom, and from
//! when); the daemon's events are scored against those labels:
//!
//! - precision: released ports that were labelled phantom / all released
//!   scenario ports (asserted 1.0: no live port may ever be released);
//! - recall: phantom-labelled ports released (in observe mode: reported
//!   phantom) / all phantom-labelled ports;
//! - time from the moment a port turns phantom to its release (or report).
//!
//! Phases, one lab: 1. live and phantom ports side by side (bulk download,
//! UDP echo exchange, idle TCP; blackholed connect, unanswered UDP, CLOSE-WAIT
//! leak); 2. the terminal sleeps while a port moves data; 3. the server
//! restarts (link loss, re-dial); 4. a second dialer in observe mode.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::lab::*;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

const USER: &str = "portdial";
const PASSWORD: &str = "portdial-secret";
const SERVER: &str = "192.0.2.1";
/// The guest routes this network to a blackhole: packets to it vanish
/// without an ICMP error, as behind a dead middlebox.
const BLACKHOLE_NET: &str = "198.51.100.0/24";
const BLACKHOLE_TCP: &str = "198.51.100.7:443";
const BLACKHOLE_UDP: &str = "198.51.100.7:9";
const ECHO: &str = "192.0.2.1:7";
const ECONNABORTED: i64 = 103;

/// The windows of the config below, in seconds.
const QUICK_WINDOW_S: f64 = 6.0;
const DEFAULT_WINDOW_S: f64 = 8.0;
const SCAN_INTERVAL_S: f64 = 2.0;

/// Classes go by process name (each app names itself): matching the echo's
/// remote port 7 would put the UDP echo exchange into the 30-minute class
/// too, where it would prove nothing.
const PORTS_CONFIG: &str = r#"
[ports]
scan_interval = 2
default_window = "8s"

[[ports.class]]
name = "keepalive"
window = "30m"
processes = ["pd-idle-long", "pd-long-lived"]

[[ports.class]]
name = "quick"
window = "6s"
processes = ["pd-syn", "pd-udp-void", "pd-closewait", "pd-syn-observe"]
"#;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn sleep_until_unix(at: f64) {
    let wait = at - unix_now();
    if wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn password_file(lab: &Lab) -> String {
    let path = lab.dir.join("password");
    std::fs::write(&path, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path.to_string_lossy().into_owned()
}

fn ping(lab: &Lab, address: &str) -> bool {
    // pppd may drop the first packets right after IPCP opens: retry a little.
    eventually(Duration::from_secs(5), || {
        lab.in_client(&["ping", "-c", "1", "-W", "1", address])
            .status
            .success()
    })
}

fn python() -> &'static str {
    // The system interpreter starts faster than a version-manager shim.
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// `portdial events --follow --json`, read on a thread; every event with the
/// wall-clock time it arrived.
struct EventLog {
    child: Child,
    seen: Arc<Mutex<Vec<(f64, Value)>>>,
}

impl EventLog {
    fn follow(dialer: &Dialer) -> EventLog {
        let mut child = Command::new(portdial())
            .args(["events", "--follow", "--json", "--control"])
            .arg(&dialer.control)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn portdial events --follow");
        let stdout = child.stdout.take().expect("piped stdout");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let at = unix_now();
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    sink.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((at, event));
                }
            }
        });
        EventLog { child, seen }
    }

    fn all(&self) -> Vec<(f64, Value)> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The first event at or after `after` that `matches`, waiting up to `timeout`.
    fn wait(
        &self,
        after: f64,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<(f64, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let hit = self
                .all()
                .into_iter()
                .find(|(at, event)| *at >= after && matches(event));
            if hit.is_some() || Instant::now() >= deadline {
                return hit;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_event(event: &Value, name: &str) -> bool {
    event["event"] == name
}

/// An event of kind `name` about the local port (`proto`, `port`).
fn about(name: &'static str, proto: &'static str, port: u16) -> impl Fn(&Value) -> bool {
    move |event| is_event(event, name) && event["proto"] == proto && event["port"] == port
}

/// One app of tests/apps/, running in the client namespace.
struct App {
    name: &'static str,
    child: Child,
    out: PathBuf,
    stderr: PathBuf,
}

impl App {
    fn spawn(lab: &Lab, script: &str, name: &'static str, args: &[&str]) -> App {
        let out = lab.dir.join(format!("app-{name}.jsonl"));
        let stderr = lab.dir.join(format!("app-{name}.stderr"));
        // `ip netns exec` execs the program: the child's pid is the app's.
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.client_ns()])
            .arg(python())
            .arg("-B")
            .arg(repo().join("tests/apps").join(script))
            .args(["--name", name, "--out"])
            .arg(&out)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn app {name}: {e}"));
        App {
            name,
            child,
            out,
            stderr,
        }
    }

    /// The complete lines of the record file.
    fn records(&self) -> Vec<Value> {
        file_text(&self.out)
            .split_inclusive('\n')
            .filter(|line| line.ends_with('\n'))
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    fn record(&self, event: &str) -> Option<Value> {
        self.records().into_iter().find(|r| r["event"] == event)
    }

    fn wait_record(&self, event: &str, timeout: Duration) -> Option<Value> {
        let mut found = None;
        eventually(timeout, || {
            found = self.record(event);
            found.is_some()
        });
        found
    }

    /// A record the scenario cannot go on without.
    fn must_record(&self, event: &str, timeout: Duration) -> Value {
        match self.wait_record(event, timeout) {
            Some(record) => record,
            None => panic!(
                "app {} wrote no {event:?} record within {timeout:?}\n{}",
                self.name,
                self.describe()
            ),
        }
    }

    fn describe(&self) -> String {
        format!(
            "records:\n{}stderr:\n{}",
            file_text(&self.out),
            file_text(&self.stderr)
        )
    }

    fn count(&self, event: &str) -> usize {
        self.records()
            .iter()
            .filter(|r| r["event"] == event)
            .count()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn t_of(record: &Value) -> f64 {
    record["t"].as_f64().unwrap_or(f64::NAN)
}

fn port_of(record: &Value) -> u16 {
    record["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0)
}

fn pid_of(record: &Value) -> u32 {
    record["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(0)
}

/// `portdial ports --json`: the rows of a judgement made now (nothing released).
fn port_rows(dialer: &Dialer) -> Vec<Value> {
    let output = Command::new(portdial())
        .args(["ports", "--json", "--control"])
        .arg(&dialer.control)
        .output()
        .expect("run portdial ports");
    if !output.status.success() {
        eprintln!(
            "portdial ports failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return Vec::new();
    }
    serde_json::from_slice::<Value>(&output.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn find_row<'a>(rows: &'a [Value], proto: &str, port: u16) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["proto"] == proto && r["local_port"] == port)
}

fn control(dialer: &Dialer, args: &[&str]) -> String {
    let output = Command::new(portdial())
        .args(args)
        .arg("--control")
        .arg(&dialer.control)
        .output()
        .expect("run portdial");
    assert!(
        output.status.success(),
        "portdial {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A scenario port and the verdict it deserves.
struct Labelled {
    scenario: &'static str,
    proto: &'static str,
    port: u16,
    pid: u32,
    /// From this moment on the port is phantom (−∞: from its start; +∞: never,
    /// a live port; a time: a live port that dies then, by sleep or link loss).
    phantom_from: f64,
    /// When the judge can first call it phantom (its window elapsed), for the
    /// time-to-release figure.
    phantom_at: Option<f64>,
    /// Observe mode: a `port_phantom` report is the hit, any release is wrong.
    observe: bool,
}

impl Labelled {
    fn new(scenario: &'static str, proto: &'static str, record: &Value) -> Labelled {
        Labelled {
            scenario,
            proto,
            port: port_of(record),
            pid: pid_of(record),
            phantom_from: f64::INFINITY,
            phantom_at: None,
            observe: false,
        }
    }

    fn phantom(mut self, at: f64) -> Labelled {
        self.phantom_from = f64::NEG_INFINITY;
        self.phantom_at = Some(at);
        self
    }

    fn is_phantom_labelled(&self) -> bool {
        self.phantom_from < f64::INFINITY
    }

    fn matches(&self, event: &Value) -> bool {
        event["proto"] == self.proto && event["port"] == self.port && event["pid"] == self.pid
    }
}

/// Verdicts seen in `portdial ports`, per scenario, in order, without repeats.
#[derive(Default)]
struct Verdicts(BTreeMap<&'static str, Vec<String>>);

impl Verdicts {
    fn note(&mut self, scenario: &'static str, row: Option<&Value>) -> Option<String> {
        let verdict = row.map(|r| r["verdict"].as_str().unwrap_or("?").to_string());
        let text = match row {
            Some(r) => format!(
                "{} ({}; class {}, {})",
                r["verdict"].as_str().unwrap_or("?"),
                r["reason"].as_str().unwrap_or(""),
                r["class"].as_str().unwrap_or("?"),
                r["state"].as_str().unwrap_or("?")
            ),
            None => "absent".to_string(),
        };
        let seen = self.0.entry(scenario).or_default();
        if seen.last() != Some(&text) {
            seen.push(text);
        }
        verdict
    }
}

/// A failed expectation, kept so every scenario runs and the figures print
/// before the suite fails.
macro_rules! check {
    ($problems:expr, $condition:expr, $($message:tt)+) => {
        if !$condition {
            let message = format!($($message)+);
            eprintln!("CHECK FAILED: {message}");
            $problems.push(message);
        }
    };
}

#[test]
fn port_manager_scenarios_precision_and_recall() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let suite_start = Instant::now();
    let lab = Lab::up("ports", &["--auth", "pap"]);
    lab.must(
        "guest",
        &[&format!("ip route add blackhole {BLACKHOLE_NET}")],
    );
    let password = password_file(&lab);
    let config = lab.dir.join("ports.toml");
    std::fs::write(&config, PORTS_CONFIG).unwrap();
    let config = config.to_string_lossy().into_owned();
    let mut problems: Vec<String> = Vec::new();
    // Expectations the daemon does not meet today; reported, and fatal only
    // with PORTDIAL_PORTS_STRICT=1 (see the KNOWN BUG comments).
    let mut known_bugs: Vec<String> = Vec::new();
    let mut labels: Vec<Labelled> = Vec::new();
    let mut verdicts = Verdicts::default();
    let mut facts = serde_json::Map::new();

    let dial_args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "--user",
            USER,
            "--password-file",
            &password,
            "--config",
            &config,
            "--default-route",
            "--no-ipv6",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let args = dial_args(&["--persist", "--holdoff", "1"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut dialer = lab.dial(&args);
    let (status, took) = dialer.wait_up(Duration::from_secs(20));
    let first_address = status["local_ip"].as_str().unwrap_or_default().to_string();
    eprintln!("ports: up after {took:?} as {first_address}");
    assert!(ping(&lab, SERVER), "no ping reply through the session");
    let events = EventLog::follow(&dialer);
    // A periodic scan event proves the subscription is live.
    assert!(
        events
            .wait(0.0, Duration::from_secs(10), |e| is_event(
                e,
                "scan_completed"
            ))
            .is_some(),
        "no scan_completed event within 10 s; log:\n{}",
        dialer.log()
    );

    // ---- Phase 1: live and phantom ports side by side -----------------------
    let t0 = unix_now();
    let rate = (256 * 1024).to_string();
    let bulk = App::spawn(
        &lab,
        "http_download.py",
        "pd-bulk",
        &["--host", SERVER, "--rate", &rate, "--seconds", "24"],
    );
    let echo = App::spawn(
        &lab,
        "udp_exchange.py",
        "pd-udp-echo",
        &["--remote", ECHO, "--seconds", "22"],
    );
    let idle_long = App::spawn(&lab, "tcp_idle.py", "pd-idle-long", &["--remote", ECHO]);
    let idle_short = App::spawn(&lab, "tcp_idle.py", "pd-idle-short", &["--remote", ECHO]);
    let syn = App::spawn(
        &lab,
        "tcp_connect.py",
        "pd-syn",
        &["--remote", BLACKHOLE_TCP, "--rebind"],
    );
    let void = App::spawn(
        &lab,
        "udp_exchange.py",
        "pd-udp-void",
        &["--remote", BLACKHOLE_UDP],
    );
    let leak = App::spawn(
        &lab,
        "close_wait_leak.py",
        "pd-closewait",
        &["--host", SERVER],
    );

    let start = Duration::from_secs(10);
    let bulk_started = bulk.must_record("started", start);
    let echo_started = echo.must_record("started", start);
    let idle_long_started = idle_long.must_record("exchanged", start);
    let idle_short_started = idle_short.must_record("exchanged", start);
    let idle_long_port = port_of(&idle_long.must_record("started", start));
    let idle_short_port = port_of(&idle_short.must_record("started", start));
    let syn_connecting = syn.must_record("connecting", start);
    let void_started = void.must_record("started", start);
    let void_first = void.must_record("sent", start);
    let leak_started = leak.must_record("started", start);
    let leak_eof = leak.must_record("eof", start);
    check!(
        problems,
        idle_long_started["ok"] == true && idle_short_started["ok"] == true,
        "the TCP echo did not echo: {idle_long_started} {idle_short_started}"
    );

    let s1 = labels.len();
    labels.push(Labelled::new("1 bulk download", "tcp", &bulk_started));
    let s2 = labels.len();
    labels.push(Labelled::new("2 udp echo exchange", "udp", &echo_started));
    let s3_long = labels.len();
    let mut idle_long_label = Labelled::new("3 idle tcp (30m class)", "tcp", &idle_long_started);
    idle_long_label.port = idle_long_port;
    labels.push(idle_long_label);
    let s3_short = labels.len();
    let mut idle_short_label =
        Labelled::new("3b idle tcp (8s default)", "tcp", &idle_short_started);
    idle_short_label.port = idle_short_port;
    labels.push(idle_short_label);
    let s4 = labels.len();
    labels.push(
        Labelled::new("4 tcp connect to blackhole", "tcp", &syn_connecting)
            .phantom(t_of(&syn_connecting) + QUICK_WINDOW_S),
    );
    let s5 = labels.len();
    labels.push(
        Labelled::new("5 udp to blackhole", "udp", &void_started)
            .phantom(t_of(&void_first) + QUICK_WINDOW_S),
    );
    let s6 = labels.len();
    labels.push(
        Labelled::new("6 close-wait leak", "tcp", &leak_started)
            .phantom(t_of(&leak_eof) + QUICK_WINDOW_S),
    );

    // Before any window has passed: the bad ports are only suspect.
    sleep_until_unix(t0 + 3.5);
    let rows = port_rows(&dialer);
    for index in [s1, s2, s3_long, s3_short, s4, s5, s6] {
        let l = &labels[index];
        verdicts.note(l.scenario, find_row(&rows, l.proto, l.port));
    }
    for index in [s4, s5, s6] {
        let l = &labels[index];
        let row = find_row(&rows, l.proto, l.port);
        check!(
            problems,
            row.is_some_and(|r| r["pid"] == l.pid && r["class"] == "quick"),
            "{}: row owner/class wrong (app pid {}): {row:?}",
            l.scenario,
            l.pid
        );
    }

    // The phantoms are released once their windows pass.
    let release_wait = Duration::from_secs_f64(QUICK_WINDOW_S + 4.0 * SCAN_INTERVAL_S + 6.0);
    for index in [s4, s5, s6] {
        let l = &labels[index];
        let released = events.wait(t0, release_wait, about("port_released", l.proto, l.port));
        match released {
            Some((_, event)) => {
                check!(
                    problems,
                    event["pid"] == l.pid,
                    "{}: released with owner {} but the app's pid is {}",
                    l.scenario,
                    event["pid"],
                    l.pid
                );
                eprintln!("{}: {event}", l.scenario);
            }
            None => problems.push(format!(
                "{}: port {}/{} not released within {release_wait:?}",
                l.scenario, l.proto, l.port
            )),
        }
    }
    let reason_of = |proto: &'static str, port: u16| {
        events
            .wait(t0, Duration::ZERO, about("port_released", proto, port))
            .map(|(_, e)| e["reason"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    let syn_reason = reason_of("tcp", labels[s4].port);
    check!(
        problems,
        syn_reason.contains("SYNs unanswered"),
        "4: release reason {syn_reason:?}"
    );
    let void_reason = reason_of("udp", labels[s5].port);
    check!(
        problems,
        void_reason.contains("datagrams unanswered"),
        "5: release reason {void_reason:?}"
    );
    let leak_reason = reason_of("tcp", labels[s6].port);
    check!(
        problems,
        leak_reason.contains("CLOSE-WAIT"),
        "6: release reason {leak_reason:?}"
    );

    // What the applications saw.
    let app_wait = Duration::from_secs(5);
    let failed = syn.wait_record("connect_failed", app_wait);
    check!(
        problems,
        failed.as_ref().is_some_and(|r| r["errno"] == ECONNABORTED),
        "4: connect() should fail with ECONNABORTED: {failed:?}\n{}",
        syn.describe()
    );
    let rebound = syn.wait_record("rebound", app_wait);
    check!(
        problems,
        rebound
            .as_ref()
            .is_some_and(|r| r["port"] == labels[s4].port),
        "4: the released port {} could not be bound again (SO_REUSEADDR off): {}",
        labels[s4].port,
        syn.describe()
    );
    for (scenario, app) in [("5", &void), ("6", &leak)] {
        let error = app.wait_record("error", app_wait);
        check!(
            problems,
            error.as_ref().is_some_and(|r| r["errno"] == ECONNABORTED),
            "{scenario}: the app should see ECONNABORTED: {error:?}\n{}",
            app.describe()
        );
    }
    facts.insert(
        "scenario4_app".into(),
        json!({"connect": failed, "rebind": rebound}),
    );

    // The live ports, judged while the phantoms come and go.
    for at in [t0 + 12.0, t0 + 19.0] {
        sleep_until_unix(at);
        let rows = port_rows(&dialer);
        // Silent for a whole default window since its one exchange: idle.
        let short_quiet = at > t_of(&idle_short_started) + DEFAULT_WINDOW_S + 0.5;
        let short_allowed = if short_quiet {
            &["idle"][..]
        } else {
            &["alive", "idle"][..]
        };
        for (index, allowed) in [
            (s1, &["alive"][..]),
            (s2, &["alive"][..]),
            (s3_long, &["alive", "idle"][..]),
            (s3_short, short_allowed),
        ] {
            let l = &labels[index];
            let row = find_row(&rows, l.proto, l.port);
            let verdict = verdicts.note(l.scenario, row);
            check!(
                problems,
                verdict.as_deref().is_some_and(|v| allowed.contains(&v)),
                "{}: verdict {verdict:?} at t0+{:.0}s, expected one of {allowed:?}: {row:?}",
                l.scenario,
                at - t0
            );
            check!(
                problems,
                row.is_some_and(|r| r["pid"] == l.pid),
                "{}: owner should be the app (pid {}): {row:?}",
                l.scenario,
                l.pid
            );
        }
    }
    let class_of =
        |rows: &[Value], l: &Labelled| find_row(rows, l.proto, l.port).map(|r| r["class"].clone());
    let rows = port_rows(&dialer);
    check!(
        problems,
        class_of(&rows, &labels[s3_long]) == Some(json!("keepalive"))
            && class_of(&rows, &labels[s1]) == Some(json!("default")),
        "classes: idle-long {:?}, bulk {:?}",
        class_of(&rows, &labels[s3_long]),
        class_of(&rows, &labels[s1])
    );

    let bulk_done = bulk.wait_record("done", Duration::from_secs(25));
    let bulk_bytes = bulk_done
        .as_ref()
        .and_then(|r| r["bytes"].as_u64())
        .unwrap_or(0);
    check!(
        problems,
        bulk.record("error").is_none() && bulk.record("eof").is_none() && bulk_bytes > 1 << 20,
        "1: the download should run its course undisturbed ({bulk_bytes} bytes)\n{}",
        bulk.describe()
    );
    let echo_done = echo.wait_record("done", Duration::from_secs(10));
    let (sent, answers) = echo_done
        .as_ref()
        .map(|r| {
            (
                r["sent"].as_u64().unwrap_or(0),
                r["answers"].as_u64().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));
    check!(
        problems,
        echo.record("error").is_none() && sent >= 15 && answers + 2 >= sent,
        "2: the echo exchange should run undisturbed ({answers}/{sent} answered)\n{}",
        echo.describe()
    );
    facts.insert(
        "scenario1_bytes".into(),
        json!({"bytes": bulk_bytes, "rate_limit": 256 * 1024}),
    );
    facts.insert(
        "scenario2_exchange".into(),
        json!({"sent": sent, "answers": answers}),
    );

    // ---- Phase 2: the terminal sleeps while a port moves data ---------------
    let sleeper = App::spawn(&lab, "udp_exchange.py", "pd-sleeper", &["--remote", ECHO]);
    let sleeper_started = sleeper.must_record("started", start);
    check!(
        problems,
        eventually(Duration::from_secs(10), || sleeper.count("answer") >= 3),
        "P2: the echo exchange did not get going\n{}",
        sleeper.describe()
    );
    let rows = port_rows(&dialer);
    let p2 = labels.len();
    labels.push(Labelled::new(
        "P2 udp exchange while asleep",
        "udp",
        &sleeper_started,
    ));
    verdicts.note(labels[p2].scenario, find_row(&rows, "udp", labels[p2].port));
    let t_sleep = unix_now();
    control(&dialer, &["sleep", "on"]);
    labels[p2].phantom_from = t_sleep;
    let released = events.wait(
        t_sleep,
        Duration::from_secs_f64(4.0 * SCAN_INTERVAL_S + 4.0),
        about("port_released", "udp", labels[p2].port),
    );
    // It turns phantom with its first datagram after the sleep began.
    labels[p2].phantom_at = sleeper
        .records()
        .iter()
        .find(|r| r["event"] == "sent" && t_of(r) >= t_sleep)
        .map(t_of);
    check!(
        problems,
        released
            .as_ref()
            .is_some_and(|(_, e)| e["pid"] == labels[p2].pid
                && e["reason"].as_str().unwrap_or("").contains("sleeps")),
        "P2: not released for moving data while asleep: {released:?}"
    );
    let error = sleeper.wait_record("error", app_wait);
    check!(
        problems,
        error.as_ref().is_some_and(|r| r["errno"] == ECONNABORTED),
        "P2: the app should see ECONNABORTED: {error:?}\n{}",
        sleeper.describe()
    );
    // One more scan while asleep: the idle connections move nothing and stay.
    let after = unix_now();
    events.wait(after, Duration::from_secs(5), |e| {
        is_event(e, "scan_completed") && e["trigger"] == "periodic"
    });
    let rows = port_rows(&dialer);
    for index in [s3_long, s3_short] {
        let l = &labels[index];
        verdicts.note(l.scenario, find_row(&rows, l.proto, l.port));
    }
    control(&dialer, &["sleep", "off"]);

    // ---- Phase 3: the server restarts; link loss and re-dial -----------------
    let t_restart = unix_now();
    for index in [s3_long, s3_short] {
        labels[index].phantom_from = t_restart;
        labels[index].phantom_at = Some(t_restart);
    }
    let restart = lab.must("server-restart", &[]);
    eprintln!("server-restart: {}", restart.trim().replace('\n', " "));
    let link_lost = events.wait(t_restart, Duration::from_secs(20), |e| {
        is_event(e, "link_lost")
    });
    check!(
        problems,
        link_lost
            .as_ref()
            .is_some_and(|(_, e)| e["released"].as_u64().unwrap_or(0) >= 2),
        "P3: link_lost should release both idle connections: {link_lost:?}"
    );
    for index in [s3_long, s3_short] {
        let l = &labels[index];
        let released = events.wait(
            t_restart,
            Duration::from_secs(5),
            about("port_released", l.proto, l.port),
        );
        check!(
            problems,
            released.as_ref().is_some_and(|(_, e)| e["pid"] == l.pid
                && e["reason"].as_str().unwrap_or("").starts_with("link lost")),
            "P3: {} not released on link loss: {released:?}",
            l.scenario
        );
    }
    for app in [&idle_long, &idle_short] {
        let error = app.wait_record("error", app_wait);
        check!(
            problems,
            error.as_ref().is_some_and(|r| r["errno"] == ECONNABORTED),
            "P3: {} should see ECONNABORTED: {error:?}\n{}",
            app.name,
            app.describe()
        );
    }
    let redialed = events.wait(t_restart, Duration::from_secs(40), |e| {
        is_event(e, "redial_succeeded")
    });
    let (status, _) = dialer.wait_for("re-dial", Duration::from_secs(40), |s| {
        s["phase"] == "up" && s["redials"].as_u64().unwrap_or(0) >= 1 && s["local_ip"].is_string()
    });
    let second_address = status["local_ip"].as_str().unwrap_or_default().to_string();
    let redial_event = redialed.as_ref().map(|(_, e)| e.clone());
    check!(
        problems,
        redial_event
            .as_ref()
            .is_some_and(|e| e["address"] == second_address.as_str()
                && e["address_changed"] == (second_address != first_address)),
        "P3: redial_succeeded should name the new address {second_address} (was {first_address}): {redial_event:?}"
    );
    if second_address == first_address {
        eprintln!(
            "P3: NOTE the address did not change across the server restart ({first_address}): \
             the restarted pppoe-server hands out session ids from 1 again"
        );
    }
    facts.insert(
        "phase3".into(),
        json!({
            "address_before": first_address,
            "address_after": second_address,
            "session_id_after": status["session_id"],
            "link_lost": link_lost.as_ref().map(|(_, e)| e.clone()),
            "link_lost_after_restart_s": link_lost.as_ref().map(|(t, _)| round3(t - t_restart)),
            "redial_succeeded": redial_event,
            "redial_after_restart_s": redialed.as_ref().map(|(t, _)| round3(t - t_restart)),
        }),
    );

    // ---- Phase 3b: the session ends, the server stays; the next address ------
    // The restarted pppoe-server numbers sessions from 1 again, so phase 3 may
    // keep the address. Ending only our session's pppd (the server keeps
    // running) makes the next session take the next id, so the next address.
    let long_lived = App::spawn(&lab, "tcp_idle.py", "pd-long-lived", &["--remote", ECHO]);
    let long_exchanged = long_lived.must_record("exchanged", start);
    let mut long_label = Labelled::new("3c long-lived tcp, address change", "tcp", &long_exchanged);
    long_label.port = port_of(&long_lived.must_record("started", start));
    let p3b = labels.len();
    labels.push(long_label);
    let rows = port_rows(&dialer);
    verdicts.note(
        labels[p3b].scenario,
        find_row(&rows, "tcp", labels[p3b].port),
    );
    let t_end = unix_now();
    labels[p3b].phantom_from = t_end;
    labels[p3b].phantom_at = Some(t_end);
    let killed = lab.must(
        "guest",
        &[&format!(
            "for p in $(pidof pppd); do tr '\\0' ' ' < /proc/$p/cmdline \\
             | grep -q ' {SERVER}:{second_address} ' && kill -TERM $p && echo killed=$p; done"
        )],
    );
    check!(
        problems,
        killed.contains("killed="),
        "P3b: no pppd of our session ({second_address}) to end: {killed:?}"
    );
    let link_lost_b = events.wait(t_end, Duration::from_secs(20), |e| is_event(e, "link_lost"));
    let released = events.wait(
        t_end,
        Duration::from_secs(5),
        about("port_released", "tcp", labels[p3b].port),
    );
    check!(
        problems,
        link_lost_b
            .as_ref()
            .is_some_and(|(_, e)| e["released"].as_u64().unwrap_or(0) >= 1)
            && released.as_ref().is_some_and(|(_, e)| e["pid"] == labels[p3b].pid
                && e["reason"].as_str().unwrap_or("").starts_with("link lost")),
        "P3b: the long-lived connection should be released on link loss: {link_lost_b:?} {released:?}"
    );
    let error = long_lived.wait_record("error", app_wait);
    check!(
        problems,
        error.as_ref().is_some_and(|r| r["errno"] == ECONNABORTED),
        "P3b: the app should see ECONNABORTED: {error:?}\n{}",
        long_lived.describe()
    );
    let redialed_b = events.wait(t_end, Duration::from_secs(40), |e| {
        is_event(e, "redial_succeeded")
    });
    let (status, _) = dialer.wait_for("second re-dial", Duration::from_secs(40), |s| {
        s["phase"] == "up" && s["redials"].as_u64().unwrap_or(0) >= 2 && s["local_ip"].is_string()
    });
    let third_address = status["local_ip"].as_str().unwrap_or_default().to_string();
    let redial_event_b = redialed_b.as_ref().map(|(_, e)| e.clone());
    check!(
        problems,
        third_address != second_address
            && redial_event_b.as_ref().is_some_and(|e| e["address"] == third_address.as_str()
                && e["address_changed"] == true),
        "P3b: the next session should bring the next address ({second_address} -> {third_address}) \
         and redial_succeeded address_changed true: {redial_event_b:?}"
    );
    facts.insert(
        "phase3b".into(),
        json!({
            "address_before": second_address,
            "address_after": third_address,
            "session_id_after": status["session_id"],
            "link_lost": link_lost_b.as_ref().map(|(_, e)| e.clone()),
            "link_lost_after_kill_s": link_lost_b.as_ref().map(|(t, _)| round3(t - t_end)),
            "redial_succeeded": redial_event_b,
            "redial_after_kill_s": redialed_b.as_ref().map(|(t, _)| round3(t - t_end)),
        }),
    );

    // ---- Phase 4: observe mode ---------------------------------------------
    dialer.signal(Signal::SIGTERM);
    assert_eq!(dialer.wait_exit(Duration::from_secs(15)), Some(0));
    // Everything dialer A published; its subscription ends with it.
    let events_a = events.all();
    drop(events);
    let args = dial_args(&["--port-mode", "observe"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut observer = lab.dial(&args);
    let (status, _) = observer.wait_up(Duration::from_secs(20));
    facts.insert("observer_address".into(), status["local_ip"].clone());
    assert!(
        ping(&lab, SERVER),
        "no ping reply through the second session"
    );
    let observed_events = EventLog::follow(&observer);
    assert!(observed_events
        .wait(0.0, Duration::from_secs(10), |e| is_event(
            e,
            "scan_completed"
        ))
        .is_some());
    let watched = App::spawn(
        &lab,
        "tcp_connect.py",
        "pd-syn-observe",
        &["--remote", BLACKHOLE_TCP],
    );
    let connecting = watched.must_record("connecting", start);
    let p4 = labels.len();
    let mut label = Labelled::new("P4 blackhole connect, observe mode", "tcp", &connecting)
        .phantom(t_of(&connecting) + QUICK_WINDOW_S);
    label.observe = true;
    labels.push(label);
    let reported = observed_events.wait(
        t_of(&connecting),
        Duration::from_secs_f64(QUICK_WINDOW_S + 4.0 * SCAN_INTERVAL_S + 6.0),
        about("port_phantom", "tcp", labels[p4].port),
    );
    let rows = port_rows(&observer);
    let row = find_row(&rows, "tcp", labels[p4].port).cloned();
    verdicts.note(labels[p4].scenario, row.as_ref());
    check!(
        problems,
        reported
            .as_ref()
            .is_some_and(|(_, e)| e["pid"] == labels[p4].pid),
        "P4: no port_phantom event for port {} (pid {}): {reported:?}",
        labels[p4].port,
        labels[p4].pid
    );
    check!(
        problems,
        row.as_ref().is_some_and(|r| r["verdict"] == "phantom"
            && r["pid"] == labels[p4].pid
            && r["state"] == "SYN-SENT"),
        "P4: `ports` should show the socket SYN-SENT, phantom, owned by the app: {row:?}"
    );
    let ss = String::from_utf8_lossy(&lab.in_client(&["ss", "-tanpH", "state", "syn-sent"]).stdout)
        .into_owned();
    check!(
        problems,
        ss.contains(&format!(":{} ", labels[p4].port))
            && ss.contains(&format!("pid={}", labels[p4].pid)),
        "P4: the app's socket should still exist:\n{ss}"
    );
    check!(
        problems,
        watched.record("connect_failed").is_none(),
        "P4: observe mode must not abort the connect: {}",
        watched.describe()
    );

    // KNOWN BUG (daemon, src/ports/manager.rs `PortManager::scan`): a
    // read-only `portdial ports` judges through `scan()`, which also moves the
    // next periodic scan to now + scan_interval. A client polling `ports`
    // more often than the interval starves the periodic scans, so phantoms
    // are neither released nor reported while it polls. Measured here: poll
    // every 0.5 s for three intervals and count the periodic scans.
    let poll_from = unix_now();
    let mut polled_verdicts = Vec::new();
    while unix_now() < poll_from + 3.0 * SCAN_INTERVAL_S + 0.5 {
        let rows = port_rows(&observer);
        let verdict = find_row(&rows, "tcp", labels[p4].port)
            .map(|r| r["verdict"].as_str().unwrap_or("?").to_string())
            .unwrap_or_else(|| "absent".into());
        if polled_verdicts.last() != Some(&verdict) {
            polled_verdicts.push(verdict);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let poll_to = unix_now();
    let periodic_while_polled = observed_events
        .all()
        .iter()
        .filter(|(t, e)| {
            *t > poll_from + 0.2
                && *t <= poll_to
                && is_event(e, "scan_completed")
                && e["trigger"] == "periodic"
        })
        .count();
    facts.insert(
        "periodic_scans_while_polling_ports".into(),
        json!({"polled_s": round3(poll_to - poll_from), "periodic_scans": periodic_while_polled,
               "expected_at_least": 2, "verdicts_seen": polled_verdicts}),
    );
    if periodic_while_polled < 2 {
        known_bugs.push(format!(
            "periodic scans starve while `portdial ports` is polled every 0.5 s: \
             {periodic_while_polled} periodic scans in {:.1} s with scan_interval 2 s \
             (src/ports/manager.rs PortManager::scan reschedules next_scan for Trigger::Request too)",
            poll_to - poll_from
        ));
    }
    // Linux 6.x retries a SYN after 1 s five times, then after 2, 4, 8 s (SYNs
    // at 0,1,2,3,4,5,7,11,19 s). Between 11 + window and 19 s no SYN was sent
    // within the 6 s window: what does the judge call a connect that is
    // still unanswered then? (Observation, not asserted.)
    sleep_until_unix(t_of(&connecting) + 18.0);
    let rows = port_rows(&observer);
    let between = find_row(&rows, "tcp", labels[p4].port).cloned();
    verdicts.note(labels[p4].scenario, between.as_ref());
    facts.insert(
        "syn_sent_18s_after_connect".into(),
        json!({
            "verdict": between.as_ref().map(|r| r["verdict"].clone()),
            "reason": between.as_ref().map(|r| r["reason"].clone()),
            "last_tx_s": between.as_ref().map(|r| r["last_tx_s"].clone()),
        }),
    );
    let observer_releases: Vec<Value> = observed_events
        .all()
        .into_iter()
        .filter(|(_, e)| is_event(e, "port_released"))
        .map(|(_, e)| e)
        .collect();
    check!(
        problems,
        observer_releases.is_empty(),
        "P4: observe mode released ports: {observer_releases:?}"
    );

    // ---- Figures ---------------------------------------------------------------
    let mut all_events = events_a;
    all_events.extend(observed_events.all());
    let figures = figures(&labels, &all_events);
    let suite_s = suite_start.elapsed().as_secs_f64();
    let mut report = figures.clone();
    if let Value::Object(map) = &mut report {
        map.insert("verdicts_seen".into(), json!(verdicts.0));
        map.insert("facts".into(), Value::Object(facts));
        map.insert("known_bugs".into(), json!(known_bugs));
        map.insert("suite_s".into(), json!(round3(suite_s)));
    }
    eprintln!("--- port manager scenarios ---");
    for (scenario, seen) in &verdicts.0 {
        eprintln!("{scenario}: {}", seen.join(" -> "));
    }
    eprintln!(
        "precision {} recall {} ({} of {} phantom-labelled ports caught; {} releases of ours, {} of live ports; {} other releases)",
        figures["precision"],
        figures["recall"],
        figures["phantoms_caught"],
        figures["phantom_labelled"],
        figures["released_ours"],
        figures["released_live"],
        figures["released_other"].as_array().map_or(0, Vec::len)
    );
    for (scenario, seconds) in figures["time_to_release_s"]
        .as_object()
        .into_iter()
        .flatten()
    {
        eprintln!("time from phantom to release/report, {scenario}: {seconds} s");
    }
    for bug in &known_bugs {
        eprintln!("KNOWN BUG: {bug}");
    }
    println!("PORTS_LAB_FIGURES {report}");
    eprintln!("PORTS_LAB_FIGURES {report}");

    // No live port may ever be released.
    assert_eq!(
        figures["precision"],
        json!(1.0),
        "a live port was released: {}",
        figures["releases"]
    );
    assert_eq!(
        figures["recall"],
        json!(1.0),
        "a phantom port was not caught: {}",
        figures["missed"]
    );
    assert!(
        problems.is_empty(),
        "{} expectation(s) failed:\n- {}",
        problems.len(),
        problems.join("\n- ")
    );
    if std::env::var_os("PORTDIAL_PORTS_STRICT").is_some_and(|v| v == "1") {
        assert!(known_bugs.is_empty(), "known bugs: {known_bugs:?}");
    }
}

/// Precision, recall and the time from phantom to release, from every event
/// both dialers published, scored against the labels.
fn figures(labels: &[Labelled], events: &[(f64, Value)]) -> Value {
    let mut releases = Vec::new();
    let mut other = Vec::new();
    let (mut hits, mut false_releases) = (0u32, 0u32);
    for (at, event) in events.iter().filter(|(_, e)| is_event(e, "port_released")) {
        let Some(label) = labels.iter().find(|l| l.matches(event)) else {
            other.push(event.clone());
            continue;
        };
        let phantom = *at >= label.phantom_from && !label.observe;
        if phantom {
            hits += 1;
        } else {
            false_releases += 1;
        }
        releases.push(json!({
            "scenario": label.scenario,
            "port": label.port,
            "labelled": if phantom { "phantom" } else { "live" },
            "reason": event["reason"],
        }));
    }
    let released = hits + false_releases;
    let precision = if released == 0 {
        Value::Null
    } else {
        json!(f64::from(hits) / f64::from(released))
    };
    let mut caught = 0u32;
    let mut missed = Vec::new();
    let mut latency = serde_json::Map::new();
    let phantom_labelled: Vec<&Labelled> =
        labels.iter().filter(|l| l.is_phantom_labelled()).collect();
    for label in &phantom_labelled {
        let wanted = if label.observe {
            "port_phantom"
        } else {
            "port_released"
        };
        let hit = events
            .iter()
            .find(|(at, e)| is_event(e, wanted) && label.matches(e) && *at >= label.phantom_from);
        match hit {
            Some((at, _)) => {
                caught += 1;
                if let Some(phantom_at) = label.phantom_at {
                    latency.insert(label.scenario.to_string(), json!(round3(at - phantom_at)));
                }
            }
            None => missed.push(label.scenario),
        }
    }
    let recall = if phantom_labelled.is_empty() {
        Value::Null
    } else {
        json!(f64::from(caught) / phantom_labelled.len() as f64)
    };
    json!({
        "suite": "ports_lab",
        "precision": precision,
        "recall": recall,
        "released_ours": released,
        "released_live": false_releases,
        "phantom_labelled": phantom_labelled.len(),
        "phantoms_caught": caught,
        "missed": missed,
        "time_to_release_s": latency,
        "releases": releases,
        "released_other": other,
        "scenario_ports": labels.iter().map(|l| json!({
            "scenario": l.scenario, "proto": l.proto, "port": l.port, "pid": l.pid,
            "label": if l.phantom_from == f64::INFINITY { "live".to_string() }
                else if l.phantom_from == f64::NEG_INFINITY { "phantom".to_string() }
                else { "live, then phantom".to_string() },
        })).collect::<Vec<_>>(),
    })
}
