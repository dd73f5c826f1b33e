//! The end-to-end benchmark (issue 6, benchmarks 2–4): portdial's data path
//! against the real rp-pppoe server in the lab, side by side with two null
//! forwarders and rp-pppoe's own user-mode client; bring-up and recovery
//! times; memory and idle wake-ups. `sudo cargo bench --bench e2e` (the
//! README's Benchmarks section explains every figure). The last line printed
//! is one JSON object with every figure and ratio.
//!
//! Options after `--`: `--reps N` (3), `--seconds S` per measurement (3),
//! `--bringup-runs N` (10), `--parts throughput,tcp,bringup,footprint`.

mod frames;
mod lab;
mod roles;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lab::{cpu_seconds, Dialer, Lab, Role};
use nix::sys::signal::Signal;
use portdial_protocol::ethernet::MacAddr;
use serde_json::{json, Map, Value};

/// The portdial variants measured, as (name, extra `portdial dial`
/// arguments): one line adds one (each dials its own session). The first
/// is the plain data path the per-CPU-second goal compares with the null
/// forwarder; the baselines ride its session.
const VARIANTS: &[(&str, &[&str])] = &[
    ("portdial", &["--no-tun-offload"]),
    ("portdial_offload", &["--tun-offload"]),
];

/// The forwarder under test runs here; every load role on the other core.
const FORWARDER_CORE: usize = 0;
const LOAD_CORE: usize = 1;
const SIZES: [usize; 2] = [64, 1400];
/// Ports of the UDP flows (discard upstream, a counting socket downstream)
/// and of the TCP flow.
const UP_PORT: u16 = 9;
const DOWN_PORT: u16 = 5001;
const TCP_PORT: u16 = 5201;
/// The null forwarder's TUN addresses (documentation range, in the client
/// namespace only), distinct from the session's so routes never overlap.
const NULL_LOCAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const NULL_PEER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The lab's veth ends (lab/README.md).
const CLIENT_IF: &str = "eth0";
const SERVER_IF: &str = "veth0";
/// Ports driven through the session for the footprint: every UDP source
/// port and enough TCP ones for 100,000 entries.
const SPRAY_UDP: u32 = 65_535;
const SPRAY_TCP: u32 = 100_000 - SPRAY_UDP;
/// Timers of the sessions measured while idle (stated in the JSON).
const SCAN_INTERVAL_S: u64 = 60;

struct Options {
    reps: usize,
    seconds: f64,
    bringup_runs: usize,
    parts: Vec<String>,
}

impl Options {
    fn parse(list: &[String]) -> Result<Options, String> {
        let args = roles::parse_args(list);
        let number = |key: &str, default: f64| -> Result<f64, String> {
            args.get(key)
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| format!("--{key} {v:?} is not a number"))
                })
                .unwrap_or(Ok(default))
        };
        Ok(Options {
            reps: number("reps", 3.0)? as usize,
            seconds: number("seconds", 3.0)?,
            bringup_runs: number("bringup-runs", 10.0)? as usize,
            parts: args
                .get("parts")
                .map(String::as_str)
                .unwrap_or("throughput,tcp,bringup,footprint")
                .split(',')
                .map(str::to_string)
                .collect(),
        })
    }

    fn wants(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--role") {
        let role = args.get(1).cloned().unwrap_or_default();
        let role_args = roles::parse_args(args.get(2..).unwrap_or(&[]));
        return match roles::run(&role, &role_args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("e2e role {role}: {message}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("e2e benchmark failed: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One portdial session of the run, as `portdial status --json` says.
#[derive(Clone)]
struct Session {
    id: u16,
    ac_mac: MacAddr,
    client_mac: MacAddr,
    local: Ipv4Addr,
    peer: Ipv4Addr,
}

/// What is measured: a portdial variant or a baseline.
#[derive(Clone, Copy, PartialEq)]
enum Impl {
    Portdial(usize),
    NullSingle,
    NullBatched,
    RpPppoe,
}

impl Impl {
    fn name(self) -> String {
        match self {
            Impl::Portdial(i) => VARIANTS[i].0.to_string(),
            Impl::NullSingle => "null_single".into(),
            Impl::NullBatched => "null_batched".into(),
            Impl::RpPppoe => "rp_pppoe".into(),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Up,
    Down,
}

struct Bench {
    lab: Lab,
    dir: PathBuf,
    runtime: tokio::runtime::Runtime,
    options: Options,
    dialers: Vec<Dialer>,
    sessions: Vec<Session>,
}

/// Samples by (implementation, case), one per repetition.
type Samples = BTreeMap<(String, String), Vec<Sample>>;

/// One measurement: packets (or bytes) counted over the generator's time,
/// with the forwarder's CPU time over the same window.
#[derive(Clone, Copy, Default)]
struct Sample {
    packets: f64,
    payload_bytes: f64,
    seconds: f64,
    cpu_s: f64,
    sent: f64,
}

fn run(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root (network namespaces, a UML guest, AF_PACKET); run `sudo cargo bench --bench e2e`".into());
    }
    frames::self_check()?;
    for program in ["pppoe", "taskset", "ip"] {
        let found = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).exists()))
            .unwrap_or(false);
        if !found {
            return Err(format!(
                "{program} not found (Debian packages pppoe, util-linux, iproute2)"
            ));
        }
    }
    let check = std::process::Command::new(lab::repo().join("lab/labctl"))
        .arg("check")
        .output()
        .map_err(|e| format!("lab/labctl check: {e}"))?;
    if !check.status.success() {
        return Err(format!(
            "lab prerequisites missing:\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        ));
    }
    eprintln!("e2e: waiting for the lab lock {}", lab::LOCK_PATH);
    let _lock = lab::lab_lock()?;
    let dir = std::env::temp_dir().join(format!("portdial-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = run_in(options, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    println!("{report}");
    Ok(())
}

fn run_in(options: Options, dir: &Path) -> Result<Value, String> {
    let started = Instant::now();
    eprintln!("e2e: lab up");
    let lab = Lab::up("e2e", &dir.join("lab"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    std::fs::write(dir.join("password"), "portdial-secret\n").map_err(|e| e.to_string())?;
    // Room for the footprint's 100k ports (the default table holds 16,384).
    std::fs::write(dir.join("portdial.toml"), "[ports]\nmax_entries = 131072\n")
        .map_err(|e| e.to_string())?;
    let mut bench = Bench {
        lab,
        dir: dir.to_path_buf(),
        runtime,
        options,
        dialers: Vec::new(),
        sessions: Vec::new(),
    };
    let mut report = Map::new();
    report.insert(
        "date".into(),
        json!(command_output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])),
    );
    report.insert("machine".into(), machine());
    report.insert(
        "config".into(),
        json!({
            "reps": bench.options.reps,
            "seconds": bench.options.seconds,
            "forwarder_core": FORWARDER_CORE,
            "load_core": LOAD_CORE,
            "variants": VARIANTS.iter().map(|(name, args)| json!({"name": name, "args": args})).collect::<Vec<_>>(),
        }),
    );
    if bench.options.wants("bringup") {
        report.insert("bringup".into(), bench.bringup()?);
    }
    bench.dial_sessions()?;
    bench.lab.labctl("freeze", &[])?;
    let mut footprint = Map::new();
    if bench.options.wants("footprint") {
        footprint.extend(bench.idle_footprint()?);
    }
    for dialer in &bench.dialers {
        dialer.signal(Signal::SIGSTOP);
    }
    let mut udp = BTreeMap::new();
    if bench.options.wants("throughput") {
        udp = bench.udp_throughput()?;
        report.insert("udp".into(), summarize(&udp));
    }
    let mut tcp = BTreeMap::new();
    if bench.options.wants("tcp") {
        tcp = bench.tcp_throughput()?;
        report.insert("tcp_up".into(), summarize_tcp(&tcp));
    }
    if bench.options.wants("footprint") {
        footprint.extend(bench.loaded_footprint()?);
        report.insert("footprint".into(), Value::Object(footprint));
    }
    report.insert("ratios".into(), ratios(&udp, &tcp));
    let _ = bench.lab.labctl("thaw", &[]);
    for dialer in bench.dialers.drain(..) {
        dialer.stop();
    }
    report.insert(
        "wall_s".into(),
        json!(round(started.elapsed().as_secs_f64(), 1)),
    );
    print_table(&udp, &tcp);
    Ok(Value::Object(report))
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "kernel": command_output("uname", &["-r"]),
        "pppoe": command_output("dpkg-query", &["-W", "-f", "${Version}", "pppoe"]),
    })
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn as_f64(value: &Value, key: &str) -> Result<f64, String> {
    value[key]
        .as_f64()
        .ok_or_else(|| format!("no {key} in {value}"))
}

impl Bench {
    fn client_ns(&self) -> String {
        self.lab.client_ns()
    }

    fn server_ns(&self) -> String {
        self.lab.server_ns()
    }

    fn password_file(&self) -> String {
        self.dir.join("password").display().to_string()
    }

    /// Dials one session per variant (guest running), LCP echo off for the
    /// traffic runs since the guest is frozen through them.
    fn dial_sessions(&mut self) -> Result<(), String> {
        let client_mac: MacAddr = self
            .lab
            .get("client_mac")?
            .parse()
            .map_err(|_| "client_mac")?;
        for (index, (name, extra)) in VARIANTS.iter().enumerate() {
            eprintln!("e2e: dialing {name}");
            let mut args: Vec<String> = [
                "--iface",
                CLIENT_IF,
                "--user",
                "portdial",
                "--password-file",
                &self.password_file(),
                "--tun-name",
                &format!("pd{index}"),
                "--lcp-echo-interval",
                "0",
                "--no-ipv6",
                "--scan-interval",
                &SCAN_INTERVAL_S.to_string(),
                "--config",
                &self.dir.join("portdial.toml").display().to_string(),
                "--log-level",
                "warn",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(extra.iter().map(|s| s.to_string()));
            let mut dialer = Dialer::start(&self.client_ns(), &self.dir, name, &args)?;
            let (status, _) = dialer.wait_for(&self.runtime, Duration::from_secs(30), |s| {
                s.phase == "up" && s.local_ip.is_some()
            })?;
            let parse_ip = |v: &Option<String>| -> Result<Ipv4Addr, String> {
                v.as_deref()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("bad address {v:?}"))
            };
            let session = Session {
                id: status.session_id.ok_or("no session id")?,
                ac_mac: status
                    .ac_mac
                    .as_deref()
                    .and_then(|m| m.parse().ok())
                    .ok_or("no ac_mac")?,
                client_mac,
                local: parse_ip(&status.local_ip)?,
                peer: parse_ip(&status.peer_ip)?,
            };
            eprintln!(
                "e2e: {name} up: session {} {} -> {} (AC {})",
                session.id, session.local, session.peer, session.ac_mac
            );
            lab::pin(dialer.pid(), FORWARDER_CORE)?;
            self.sessions.push(session);
            self.dialers.push(dialer);
        }
        Ok(())
    }

    /// Bring-up and recovery (benchmark 3), as lab/measure does it: start →
    /// phase up, and `labctl server-restart` → phase up again, `runs` times,
    /// with and without IPv6CP.
    fn bringup(&self) -> Result<Value, String> {
        let mut result = Map::new();
        for (label, extra) in [("ipv4_only", &["--no-ipv6"][..]), ("dual_stack", &[][..])] {
            let (mut start_ms, mut restart_ms) = (Vec::new(), Vec::new());
            for run in 0..self.options.bringup_runs {
                eprintln!("e2e: bring-up {label} run {}", run + 1);
                let mut args: Vec<String> = [
                    "--iface",
                    CLIENT_IF,
                    "--user",
                    "portdial",
                    "--password-file",
                    &self.password_file(),
                    "--tun-name",
                    "pdb0",
                    "--persist",
                    "--holdoff",
                    "1",
                    "--lcp-echo-interval",
                    "1",
                    "--lcp-echo-failure",
                    "3",
                    "--log-level",
                    "warn",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                args.extend(extra.iter().map(|s| s.to_string()));
                let start = Instant::now();
                let mut dialer = Dialer::start(&self.client_ns(), &self.dir, "bringup", &args)?;
                dialer.wait_for(&self.runtime, Duration::from_secs(30), |s| {
                    s.phase == "up" && s.local_ip.is_some()
                })?;
                start_ms.push(start.elapsed().as_secs_f64() * 1e3);
                let restart = Instant::now();
                self.lab.labctl("server-restart", &[])?;
                dialer.wait_for(&self.runtime, Duration::from_secs(30), |s| {
                    s.phase == "up" && s.redials >= 1 && s.local_ip.is_some()
                })?;
                restart_ms.push(restart.elapsed().as_secs_f64() * 1e3);
                dialer.stop();
                std::thread::sleep(Duration::from_secs(1));
            }
            let summary = |v: &Vec<f64>| {
                json!({
                    "median_ms": round(median(v.clone()), 0),
                    "min_ms": round(v.iter().copied().fold(f64::INFINITY, f64::min), 0),
                    "max_ms": round(v.iter().copied().fold(0.0, f64::max), 0),
                    "runs": v.len(),
                })
            };
            result.insert(
                label.into(),
                json!({"start_to_up": summary(&start_ms), "server_restart_to_up": summary(&restart_ms)}),
            );
        }
        Ok(Value::Object(result))
    }

    /// RSS and wake-ups of the first variant's daemon, idle (guest frozen,
    /// LCP echo off).
    fn idle_footprint(&self) -> Result<Map<String, Value>, String> {
        let pid = self.dialers[0].pid();
        // Past the scan after dial-up and the exit of its blocking thread.
        std::thread::sleep(Duration::from_secs(12));
        let rss = lab::rss_kib(pid)?;
        let window = 10.0;
        eprintln!("e2e: idle wake-ups over {window} s");
        let before = lab::context_switches(pid)?;
        std::thread::sleep(Duration::from_secs_f64(window));
        let after = lab::context_switches(pid)?;
        // Per thread: a thread that started meanwhile counts whole; one
        // that ended (tokio's idle blocking threads do) is not counted.
        let switches: u64 = after
            .iter()
            .map(|(tid, count)| count.saturating_sub(before.get(tid).copied().unwrap_or(0)))
            .sum();
        let mut out = Map::new();
        out.insert("rss_idle_kib".into(), json!(rss));
        out.insert(
            "idle_wakeups_per_s".into(),
            json!(round(switches as f64 / window, 2)),
        );
        out.insert("idle_window_s".into(), json!(window));
        out.insert("threads".into(), json!(lab::thread_count(pid)));
        out.insert(
            "idle_timers".into(),
            json!(format!(
                "LCP echo off (--lcp-echo-interval 0), port scan every {SCAN_INTERVAL_S} s, occupancy check every 5 s"
            )),
        );
        Ok(out)
    }

    /// RSS with 100,000 port entries: every UDP source port and 34,465 TCP
    /// ones, one packet each, sent from the session's address through the
    /// TUN by a raw socket in the client namespace.
    fn loaded_footprint(&self) -> Result<Map<String, Value>, String> {
        let dialer = &self.dialers[0];
        let session = &self.sessions[0];
        dialer.signal(Signal::SIGCONT);
        let tx_before = lab::status(&self.runtime, &dialer.control)
            .map(|s| s.tx_packets)
            .unwrap_or(0);
        eprintln!(
            "e2e: driving {} ports through the session",
            SPRAY_UDP + SPRAY_TCP
        );
        let mut spray = Role::spawn(
            &self.client_ns(),
            LOAD_CORE,
            "port-spray",
            &strings(&[
                "--src",
                &session.local.to_string(),
                "--dst",
                &session.peer.to_string(),
                "--udp",
                &SPRAY_UDP.to_string(),
                "--tcp",
                &SPRAY_TCP.to_string(),
                "--device",
                "pd0",
            ]),
        )?;
        let sprayed = as_f64(&spray.result()?, "sent")?;
        std::thread::sleep(Duration::from_secs(1));
        let tx_after = lab::status(&self.runtime, &dialer.control)
            .map(|s| s.tx_packets)
            .unwrap_or(0);
        let rss = lab::rss_kib(dialer.pid())?;
        let mut out = Map::new();
        out.insert("rss_100k_ports_kib".into(), json!(rss));
        out.insert("ports_sprayed".into(), json!(sprayed));
        out.insert(
            "ports_forwarded".into(),
            json!(tx_after.saturating_sub(tx_before)),
        );
        Ok(out)
    }

    fn implementations(&self, with_pppoe: bool) -> Vec<Impl> {
        let mut list: Vec<Impl> = (0..VARIANTS.len()).map(Impl::Portdial).collect();
        list.extend([Impl::NullSingle, Impl::NullBatched]);
        if with_pppoe {
            list.push(Impl::RpPppoe);
        }
        list
    }

    /// UDP both ways at both sizes; the implementations alternate within
    /// each repetition, in an order rotated per repetition.
    fn udp_throughput(&self) -> Result<Samples, String> {
        let mut samples: Samples = BTreeMap::new();
        let impls = self.implementations(true);
        for rep in 0..self.options.reps {
            for direction in [Direction::Up, Direction::Down] {
                for size in SIZES {
                    let case = case_name(direction, size);
                    for k in 0..impls.len() {
                        let which = impls[(k + rep) % impls.len()];
                        let sample = self.udp_once(which, direction, size)?;
                        eprintln!(
                            "e2e: rep {} {case:<9} {:<14} {:>9.0} pps {:>6.3} Gbit/s cpu {:.2} s ({:.0} pkts/cpu-s)",
                            rep + 1,
                            which.name(),
                            sample.packets / sample.seconds,
                            sample.payload_bytes * 8.0 / sample.seconds / 1e9,
                            sample.cpu_s,
                            sample.packets / sample.cpu_s
                        );
                        samples
                            .entry((which.name(), case.clone()))
                            .or_default()
                            .push(sample);
                    }
                }
            }
        }
        Ok(samples)
    }

    /// The TUN the forwarder reads: generators bind to it.
    fn device_for(which: Impl) -> String {
        match which {
            Impl::Portdial(i) => format!("pd{i}"),
            _ => "nf0".into(),
        }
    }

    fn session_for(&self, which: Impl) -> (Session, Ipv4Addr, Ipv4Addr) {
        match which {
            Impl::Portdial(i) => {
                let s = self.sessions[i].clone();
                let (local, peer) = (s.local, s.peer);
                (s, local, peer)
            }
            // The baselines ride the first variant's session (its daemon is
            // stopped meanwhile) with their own TUN addresses.
            _ => (self.sessions[0].clone(), NULL_LOCAL, NULL_PEER),
        }
    }

    /// Starts (or resumes) the forwarder; returns its pid and the role
    /// handle of a baseline.
    fn start_forwarder(
        &self,
        which: Impl,
        direction: Direction,
        size: usize,
    ) -> Result<(u32, Option<Role>), String> {
        let (session, local, peer) = self.session_for(which);
        match which {
            Impl::Portdial(i) => {
                self.dialers[i].signal(Signal::SIGCONT);
                // Let it drain what queued on its socket while stopped.
                std::thread::sleep(Duration::from_millis(100));
                Ok((self.dialers[i].pid(), None))
            }
            Impl::NullSingle | Impl::NullBatched => {
                let batch = if which == Impl::NullSingle { "1" } else { "64" };
                let mut role = Role::spawn(
                    &self.client_ns(),
                    FORWARDER_CORE,
                    "null-fwd",
                    &strings(&[
                        "--iface",
                        CLIENT_IF,
                        "--tun",
                        "nf0",
                        "--local",
                        &local.to_string(),
                        "--peer",
                        &peer.to_string(),
                        "--our-mac",
                        &session.client_mac.to_string(),
                        "--peer-mac",
                        &session.ac_mac.to_string(),
                        "--session",
                        &session.id.to_string(),
                        "--batch",
                        batch,
                    ]),
                )?;
                role.ready()?;
                Ok((role.pid(), Some(role)))
            }
            Impl::RpPppoe => {
                let mode = if direction == Direction::Up {
                    "up"
                } else {
                    "down"
                };
                let mut role = Role::spawn(
                    &self.client_ns(),
                    LOAD_CORE,
                    "pppoe-pty",
                    &strings(&[
                        "--iface",
                        CLIENT_IF,
                        "--session",
                        &session.id.to_string(),
                        "--ac-mac",
                        &session.ac_mac.to_string(),
                        "--mode",
                        mode,
                        "--size",
                        &size.to_string(),
                        "--seconds",
                        &self.options.seconds.to_string(),
                        "--core",
                        &FORWARDER_CORE.to_string(),
                    ]),
                )?;
                let ready = role.ready()?;
                let pid = ready
                    .get("pid")
                    .and_then(|p| p.parse().ok())
                    .ok_or("pppoe-pty gave no pid")?;
                Ok((pid, Some(role)))
            }
        }
    }

    fn stop_forwarder(&self, which: Impl) {
        if let Impl::Portdial(i) = which {
            self.dialers[i].signal(Signal::SIGSTOP);
        }
    }

    fn udp_once(&self, which: Impl, direction: Direction, size: usize) -> Result<Sample, String> {
        let (session, local, peer) = self.session_for(which);
        let seconds = self.options.seconds.to_string();
        let size_arg = size.to_string();
        let (pid, mut handle) = self.start_forwarder(which, direction, size)?;
        let mut sample = Sample::default();
        let result = (|| -> Result<(), String> {
            if direction == Direction::Up {
                let mut sink = Role::spawn(
                    &self.server_ns(),
                    LOAD_CORE,
                    "sink",
                    &strings(&[
                        "--iface",
                        SERVER_IF,
                        "--session",
                        &session.id.to_string(),
                        "--size",
                        &size_arg,
                    ]),
                )?;
                sink.ready()?;
                let cpu0 = cpu_seconds(pid)?;
                let generated = match handle.as_mut() {
                    Some(pppoe) if which == Impl::RpPppoe => {
                        pppoe.tell("go\n")?;
                        pppoe.result()?
                    }
                    _ => Role::spawn(
                        &self.client_ns(),
                        LOAD_CORE,
                        "udp-send",
                        &strings(&[
                            "--dst",
                            &format!("{peer}:{UP_PORT}"),
                            "--size",
                            &size_arg,
                            "--seconds",
                            &seconds,
                            "--gso",
                            "--device",
                            &Self::device_for(which),
                        ]),
                    )?
                    .result()?,
                };
                std::thread::sleep(Duration::from_millis(200));
                sample.cpu_s = cpu_seconds(pid)? - cpu0;
                let counted = sink.finish()?;
                sample.packets = as_f64(&counted, "frames")?;
                sample.seconds = as_f64(&generated, "seconds")?;
                sample.sent = as_f64(&generated, "sent")?;
            } else {
                let mut counter = if which == Impl::RpPppoe {
                    None
                } else {
                    let mut role = Role::spawn(
                        &self.client_ns(),
                        LOAD_CORE,
                        "udp-count",
                        &strings(&[
                            "--bind",
                            &format!("{local}:{DOWN_PORT}"),
                            "--size",
                            &size_arg,
                        ]),
                    )?;
                    role.ready()?;
                    Some(role)
                };
                let cpu0 = cpu_seconds(pid)?;
                let generated = Role::spawn(
                    &self.server_ns(),
                    LOAD_CORE,
                    "inject",
                    &strings(&[
                        "--iface",
                        SERVER_IF,
                        "--src-mac",
                        &session.ac_mac.to_string(),
                        "--dst-mac",
                        &session.client_mac.to_string(),
                        "--session",
                        &session.id.to_string(),
                        "--ip-src",
                        &peer.to_string(),
                        "--ip-dst",
                        &local.to_string(),
                        "--port",
                        &DOWN_PORT.to_string(),
                        "--size",
                        &size_arg,
                        "--seconds",
                        &seconds,
                    ]),
                )?
                .result()?;
                std::thread::sleep(Duration::from_millis(200));
                sample.cpu_s = cpu_seconds(pid)? - cpu0;
                let counted = match counter.take() {
                    Some(role) => role.finish()?,
                    None => handle.take().ok_or("no pppoe role")?.finish()?,
                };
                sample.packets = as_f64(&counted, "packets")?;
                sample.seconds = as_f64(&generated, "seconds")?;
                sample.sent = as_f64(&generated, "sent")?;
            }
            Ok(())
        })();
        drop(handle);
        self.stop_forwarder(which);
        result?;
        sample.payload_bytes = sample.packets * size as f64;
        Ok(sample)
    }

    /// One TCP flow upstream through each forwarder (not rp-pppoe: its pty
    /// side has no IP stack). The far end of the session is a batched null
    /// forwarder in the server namespace (the guest is frozen) whose TUN
    /// holds the peer address; the receiver counts the bytes.
    fn tcp_throughput(&self) -> Result<Samples, String> {
        let mut samples: Samples = BTreeMap::new();
        let impls = self.implementations(false);
        for rep in 0..self.options.reps {
            for k in 0..impls.len() {
                let which = impls[(k + rep) % impls.len()];
                let sample = self.tcp_once(which)?;
                eprintln!(
                    "e2e: rep {} tcp_up    {:<14} {:>6.3} Gbit/s cpu {:.2} s",
                    rep + 1,
                    which.name(),
                    sample.payload_bytes * 8.0 / sample.seconds / 1e9,
                    sample.cpu_s
                );
                samples
                    .entry((which.name(), "tcp".into()))
                    .or_default()
                    .push(sample);
            }
        }
        Ok(samples)
    }

    fn tcp_once(&self, which: Impl) -> Result<Sample, String> {
        let (session, local, peer) = self.session_for(which);
        let (pid, handle) = self.start_forwarder(which, Direction::Up, 0)?;
        let mut sample = Sample::default();
        let result = (|| -> Result<(), String> {
            let mut far_end = Role::spawn(
                &self.server_ns(),
                LOAD_CORE,
                "null-fwd",
                &strings(&[
                    "--iface",
                    SERVER_IF,
                    "--tun",
                    "term0",
                    "--local",
                    &peer.to_string(),
                    "--peer",
                    &local.to_string(),
                    "--our-mac",
                    &session.ac_mac.to_string(),
                    "--peer-mac",
                    &session.client_mac.to_string(),
                    "--session",
                    &session.id.to_string(),
                    "--batch",
                    "64",
                ]),
            )?;
            far_end.ready()?;
            let mut receiver = Role::spawn(
                &self.server_ns(),
                LOAD_CORE,
                "tcp-recv",
                &strings(&["--bind", &format!("{peer}:{TCP_PORT}")]),
            )?;
            receiver.ready()?;
            let cpu0 = cpu_seconds(pid)?;
            let sent = Role::spawn(
                &self.client_ns(),
                LOAD_CORE,
                "tcp-send",
                &strings(&[
                    "--dst",
                    &format!("{peer}:{TCP_PORT}"),
                    "--seconds",
                    &self.options.seconds.to_string(),
                    "--device",
                    &Self::device_for(which),
                ]),
            )?
            .result()?;
            std::thread::sleep(Duration::from_millis(200));
            sample.cpu_s = cpu_seconds(pid)? - cpu0;
            sample.payload_bytes = as_f64(&receiver.finish()?, "bytes")?;
            sample.seconds = as_f64(&sent, "seconds")?;
            sample.sent = as_f64(&sent, "sent_bytes")?;
            drop(far_end);
            Ok(())
        })();
        drop(handle);
        self.stop_forwarder(which);
        result?;
        Ok(sample)
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn case_name(direction: Direction, size: usize) -> String {
    let dir = if direction == Direction::Up {
        "up"
    } else {
        "down"
    };
    format!("{dir}_{size}")
}

/// Per implementation and case: medians over the repetitions of each
/// rate (each computed per repetition).
fn summarize(samples: &Samples) -> Value {
    let mut out: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for ((name, case), list) in samples {
        let per = |f: &dyn Fn(&Sample) -> f64| median(list.iter().map(f).collect());
        out.entry(name.clone()).or_default().insert(
            case.clone(),
            json!({
                "pps": round(per(&|s| s.packets / s.seconds), 0),
                "gbit_s": round(per(&|s| s.payload_bytes * 8.0 / s.seconds / 1e9), 3),
                "cpu_share": round(per(&|s| s.cpu_s / s.seconds), 3),
                "pkts_per_cpu_s": round(per(&|s| s.packets / s.cpu_s), 0),
                "gbit_per_cpu_s": round(per(&|s| s.payload_bytes * 8.0 / s.cpu_s / 1e9), 3),
                "delivered": round(per(&|s| if s.sent > 0.0 { s.packets / s.sent } else { f64::NAN }), 3),
                "reps": list.len(),
            }),
        );
    }
    json!(out)
}

/// The TCP flow per implementation: medians of goodput and CPU.
fn summarize_tcp(samples: &Samples) -> Value {
    let mut out = Map::new();
    for ((name, _), list) in samples {
        let per = |f: &dyn Fn(&Sample) -> f64| median(list.iter().map(f).collect());
        out.insert(
            name.clone(),
            json!({
                "gbit_s": round(per(&|s| s.payload_bytes * 8.0 / s.seconds / 1e9), 3),
                "cpu_share": round(per(&|s| s.cpu_s / s.seconds), 3),
                "gbit_per_cpu_s": round(per(&|s| s.payload_bytes * 8.0 / s.cpu_s / 1e9), 3),
                "reps": list.len(),
            }),
        );
    }
    Value::Object(out)
}

/// The goal ratios of issue 6, each the ratio of the two medians.
fn ratios(udp: &Samples, tcp: &Samples) -> Value {
    let metric = |map: &Samples, name: &str, case: &str, f: &dyn Fn(&Sample) -> f64| {
        map.get(&(name.to_string(), case.to_string()))
            .map(|list| median(list.iter().map(f).collect()))
            .unwrap_or(f64::NAN)
    };
    let per_cpu = |s: &Sample| s.packets / s.cpu_s;
    let gbit = |s: &Sample| s.payload_bytes * 8.0 / s.seconds / 1e9;
    let ratio = |a: f64, b: f64| {
        if a.is_finite() && b.is_finite() && b > 0.0 {
            json!(round(a / b, 3))
        } else {
            Value::Null
        }
    };
    let mut out = Map::new();
    for (variant, _) in VARIANTS {
        let mut per_cpu_vs_null = Map::new();
        let mut gbit_vs_pppoe = Map::new();
        for direction in [Direction::Up, Direction::Down] {
            for size in SIZES {
                let case = case_name(direction, size);
                per_cpu_vs_null.insert(
                    case.clone(),
                    ratio(
                        metric(udp, variant, &case, &per_cpu),
                        metric(udp, "null_batched", &case, &per_cpu),
                    ),
                );
            }
            let case = case_name(direction, 1400);
            gbit_vs_pppoe.insert(
                case.clone(),
                ratio(
                    metric(udp, variant, &case, &gbit),
                    metric(udp, "rp_pppoe", &case, &gbit),
                ),
            );
        }
        out.insert(
            format!("{variant}_vs_null_batched_pkts_per_cpu_s"),
            Value::Object(per_cpu_vs_null),
        );
        out.insert(
            format!("{variant}_vs_rp_pppoe_gbit_s"),
            Value::Object(gbit_vs_pppoe),
        );
    }
    // The best portdial variant against the naive I/O limit, UDP at 1400 B
    // each way and the TCP flow.
    let mut best = Map::new();
    let cases: Vec<(String, &Samples)> = vec![
        (case_name(Direction::Up, 1400), udp),
        (case_name(Direction::Down, 1400), udp),
        ("tcp".to_string(), tcp),
    ];
    for (case, map) in cases {
        let best_variant = VARIANTS
            .iter()
            .map(|(name, _)| (name, metric(map, name, &case, &gbit)))
            .filter(|(_, v)| v.is_finite())
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((name, value)) = best_variant {
            best.insert(
                case.clone(),
                json!({"variant": name, "ratio": ratio(value, metric(map, "null_single", &case, &gbit))}),
            );
        }
    }
    out.insert(
        "best_variant_vs_null_single_gbit_s".into(),
        Value::Object(best),
    );
    Value::Object(out)
}

fn print_table(udp: &Samples, tcp: &Samples) {
    println!(
        "{:<16} {:<9} {:>10} {:>8} {:>8} {:>12}",
        "implementation", "case", "pps", "Gbit/s", "cpu", "pkts/cpu-s"
    );
    for ((name, case), list) in udp.iter().chain(tcp.iter()) {
        let per = |f: &dyn Fn(&Sample) -> f64| median(list.iter().map(f).collect());
        println!(
            "{:<16} {:<9} {:>10.0} {:>8.3} {:>8.3} {:>12.0}",
            name,
            case,
            per(&|s| s.packets / s.seconds),
            per(&|s| s.payload_bytes * 8.0 / s.seconds / 1e9),
            per(&|s| s.cpu_s / s.seconds),
            per(&|s| s.packets / s.cpu_s),
        );
    }
}
