//! The `ip-up` / `ip-down` scripts, run the way pppd runs them, so that
//! existing pppd scripts work unchanged.
//!
//! pppd(8), "SCRIPTS": the script gets the arguments
//!
//! ```text
//! interface-name tty-device speed local-IP-address remote-IP-address ipparam
//! ```
//!
//! — for PPPoE the "tty device" is the Ethernet interface and the speed is
//! `0`, as with pppd's pppoe plugin — and an environment that is empty except
//! for variables about the link: `IFNAME`, `DEVICE`, `IPLOCAL`, `IPREMOTE`
//! (only when the peer's address is known), `DNS1`/`DNS2` (when the peer gave
//! them), `USEPEERDNS=1` (with `usepeerdns` and servers given), `PEERNAME`,
//! `LINKNAME`, `PPPLOGNAME`, `ORIG_UID`, `PPPD_PID`, the pppoe plugin's
//! `MACREMOTE` (the AC's MAC, upper-case) and `ACNAME`, and for `ip-down`
//! `CONNECT_TIME`, `BYTES_SENT` and `BYTES_RCVD`. `SPEED` is not set: pppd sets
//! it only for serial lines.
//!
//! Where we differ from pppd, on purpose:
//! * `PATH` is set to a standard system path, because scripts written for
//!   pppd call `ip`, `iptables` and friends by name;
//! * `PORTDIAL_SESSION_ID` carries the PPPoE session id (pppd has no
//!   equivalent);
//! * the script's output is captured (the last few KiB) for our log, where
//!   pppd sends it to /dev/null;
//! * the script must finish within a timeout (30 s by default), after which
//!   its whole process group is killed: a hung script must not wedge the
//!   dialer. Call [`run_hook`] from a blocking task.

use std::fmt;
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, Uid, User};
use portdial_protocol::ethernet::MacAddr;

/// How long a script may run before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `PATH` for scripts (pppd gives none; see the module documentation).
const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Bytes of a script's output kept for the log.
const OUTPUT_LIMIT: usize = 4096;

/// After the timeout, SIGTERM, then SIGKILL if the script is still there.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// How long to wait for the output pipes to close after the script exited
/// (a background child it left may hold them open).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// Counters for `ip-down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// From the start of PPP negotiation to the end of the link.
    pub connect_time: Duration,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// What a script is told about the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEnv {
    /// The PPP (TUN) interface: `$1` and `IFNAME`.
    pub ifname: String,
    /// The Ethernet interface PPPoE runs on: `$2` and `DEVICE`.
    pub device: String,
    /// Our address: `$4` and `IPLOCAL`.
    pub local: Ipv4Addr,
    /// The peer's address, if it told us: `$5` (`0.0.0.0` if not) and `IPREMOTE`.
    pub remote: Option<Ipv4Addr>,
    /// The peer's DNS servers: `DNS1`, `DNS2`.
    pub dns: Vec<Ipv4Addr>,
    /// `usepeerdns` is on: `USEPEERDNS=1` when the peer gave servers.
    pub usepeerdns: bool,
    /// The peer's authenticated name: `PEERNAME`.
    pub peer_name: Option<String>,
    /// `$6` (pppd's `ipparam`); empty by default.
    pub ipparam: String,
    /// `LINKNAME`.
    pub linkname: Option<String>,
    /// The AC's MAC address: `MACREMOTE`.
    pub ac_mac: Option<MacAddr>,
    /// The AC's name from its PADO: `ACNAME`.
    pub ac_name: Option<String>,
    /// `PORTDIAL_SESSION_ID`.
    pub session_id: Option<u16>,
    /// The user who started the dialer: `PPPLOGNAME`.
    pub logname: String,
    /// `ORIG_UID`.
    pub orig_uid: u32,
    /// `PPPD_PID`.
    pub pid: u32,
    /// Set for `ip-down`: `CONNECT_TIME`, `BYTES_SENT`, `BYTES_RCVD`.
    pub stats: Option<LinkStats>,
}

impl HookEnv {
    /// The environment with this process's identity filled in and nothing
    /// optional set.
    pub fn new(ifname: &str, device: &str, local: Ipv4Addr) -> HookEnv {
        let uid = Uid::current();
        let logname = User::from_uid(uid)
            .ok()
            .flatten()
            .map(|user| user.name)
            .unwrap_or_else(|| "(unknown)".to_owned());
        HookEnv {
            ifname: ifname.to_owned(),
            device: device.to_owned(),
            local,
            remote: None,
            dns: Vec::new(),
            usepeerdns: false,
            peer_name: None,
            ipparam: String::new(),
            linkname: None,
            ac_mac: None,
            ac_name: None,
            session_id: None,
            logname,
            orig_uid: uid.as_raw(),
            pid: std::process::id(),
            stats: None,
        }
    }

    /// The script's six arguments after its name.
    pub fn args(&self) -> Vec<String> {
        vec![
            self.ifname.clone(),
            self.device.clone(),
            "0".to_owned(),
            self.local.to_string(),
            self.remote.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
            self.ipparam.clone(),
        ]
    }

    /// The script's whole environment (besides `PATH`).
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("IFNAME", self.ifname.clone()),
            ("DEVICE", self.device.clone()),
            ("IPLOCAL", self.local.to_string()),
            ("PPPLOGNAME", self.logname.clone()),
            ("ORIG_UID", self.orig_uid.to_string()),
            ("PPPD_PID", self.pid.to_string()),
        ];
        if let Some(remote) = self.remote {
            vars.push(("IPREMOTE", remote.to_string()));
        }
        let dns: Vec<&Ipv4Addr> = self
            .dns
            .iter()
            .filter(|server| !server.is_unspecified())
            .collect();
        for (name, server) in ["DNS1", "DNS2"].into_iter().zip(&dns) {
            vars.push((name, server.to_string()));
        }
        if self.usepeerdns && !dns.is_empty() {
            vars.push(("USEPEERDNS", "1".to_owned()));
        }
        let optional = [
            ("PEERNAME", &self.peer_name),
            ("LINKNAME", &self.linkname),
            ("ACNAME", &self.ac_name),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                vars.push((name, value.clone()));
            }
        }
        if let Some(mac) = self.ac_mac {
            // The pppoe plugin's format: upper-case hex.
            vars.push(("MACREMOTE", mac.to_string().to_ascii_uppercase()));
        }
        if let Some(session_id) = self.session_id {
            vars.push(("PORTDIAL_SESSION_ID", session_id.to_string()));
        }
        if let Some(stats) = self.stats {
            vars.push(("CONNECT_TIME", stats.connect_time.as_secs().to_string()));
            vars.push(("BYTES_SENT", stats.bytes_sent.to_string()));
            vars.push(("BYTES_RCVD", stats.bytes_received.to_string()));
        }
        vars
    }
}

/// How a script ended.
#[derive(Debug)]
pub struct HookOutcome {
    /// Its exit status; pppd ignores it, the caller may log a failure.
    pub status: ExitStatus,
    /// The last few KiB of what it wrote to stdout and stderr.
    pub output: String,
}

#[derive(Debug)]
pub enum HookError {
    /// The script does not exist.
    NotFound { path: PathBuf },
    /// The script could not be started (not executable, bad interpreter, ...).
    Spawn { path: PathBuf, source: io::Error },
    /// The script ran past the timeout and was killed.
    TimedOut {
        path: PathBuf,
        timeout: Duration,
        output: String,
    },
    /// Waiting for the script failed.
    Wait { path: PathBuf, source: io::Error },
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookError::NotFound { path } => write!(f, "{}: no such script", path.display()),
            HookError::Spawn { path, source } => {
                write!(f, "{}: cannot run: {source}", path.display())
            }
            HookError::TimedOut { path, timeout, .. } => write!(
                f,
                "{}: still running after {} s, killed",
                path.display(),
                timeout.as_secs_f32()
            ),
            HookError::Wait { path, source } => {
                write!(f, "{}: waiting for it failed: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for HookError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HookError::Spawn { source, .. } | HookError::Wait { source, .. } => Some(source),
            HookError::NotFound { .. } | HookError::TimedOut { .. } => None,
        }
    }
}

/// Runs a script with [`DEFAULT_TIMEOUT`]. Blocks until it ends.
pub fn run_hook(path: &Path, env: &HookEnv) -> Result<HookOutcome, HookError> {
    run_hook_with_timeout(path, env, DEFAULT_TIMEOUT)
}

/// Runs a script, killing its process group if it is still running after
/// `timeout`. Blocks until it ends.
pub fn run_hook_with_timeout(
    path: &Path,
    env: &HookEnv,
    timeout: Duration,
) -> Result<HookOutcome, HookError> {
    let mut command = Command::new(path);
    command
        .args(env.args())
        .env_clear()
        .envs(env.vars())
        .env("PATH", SCRIPT_PATH)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills what it started too.
        .process_group(0);
    let mut spawned = command.spawn();
    // ETXTBSY: the script is still open for writing somewhere (an editor
    // saving it, or a process forked while it was being written): that
    // passes within moments.
    for _ in 0..50 {
        match &spawned {
            Err(error) if error.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10));
                spawned = command.spawn();
            }
            _ => break,
        }
    }
    let mut child = spawned.map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => HookError::NotFound {
            path: path.to_owned(),
        },
        _ => HookError::Spawn {
            path: path.to_owned(),
            source,
        },
    })?;
    let (sender, output) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        collect(stdout, sender.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        collect(stderr, sender);
    }
    let waited = wait_until(&mut child, Instant::now() + timeout);
    match waited {
        Ok(Some(status)) => Ok(HookOutcome {
            status,
            output: gather(output),
        }),
        Ok(None) => {
            kill_group(&mut child);
            Err(HookError::TimedOut {
                path: path.to_owned(),
                timeout,
                output: gather(output),
            })
        }
        Err(source) => {
            kill_group(&mut child);
            Err(HookError::Wait {
                path: path.to_owned(),
                source,
            })
        }
    }
}

/// Polls the child until it exits or the deadline passes (`Ok(None)`).
fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// SIGTERM to the script's process group, SIGKILL after a grace period, and
/// reap the script.
fn kill_group(child: &mut Child) {
    let Ok(raw) = i32::try_from(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    let group = Pid::from_raw(raw);
    let _ = killpg(group, Signal::SIGTERM);
    if !matches!(wait_until(child, Instant::now() + KILL_GRACE), Ok(Some(_))) {
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait();
    }
    // Whatever else is left in the group goes too.
    let _ = killpg(group, Signal::SIGKILL);
}

/// Reads a pipe to its end on a thread, keeping the last [`OUTPUT_LIMIT`] bytes.
fn collect(mut pipe: impl Read + Send + 'static, sender: mpsc::Sender<Vec<u8>>) {
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(read) => {
                    kept.extend_from_slice(chunk.get(..read).unwrap_or_default());
                    let excess = kept.len().saturating_sub(OUTPUT_LIMIT);
                    kept.drain(..excess);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = sender.send(kept);
    });
}

/// The output both pipes produced, waiting briefly for them to close.
fn gather(output: mpsc::Receiver<Vec<u8>>) -> String {
    let deadline = Instant::now() + OUTPUT_GRACE;
    let mut bytes = Vec::new();
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match output.recv_timeout(left) {
            Ok(part) => bytes.extend_from_slice(&part),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&bytes).trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("portdial-hooks-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn up_env() -> HookEnv {
        let mut env = HookEnv::new("pdial0", "eth0", Ipv4Addr::new(100, 64, 0, 2));
        env.remote = Some(Ipv4Addr::new(100, 64, 0, 1));
        env.dns = vec![Ipv4Addr::new(192, 0, 2, 53), Ipv4Addr::new(192, 0, 2, 54)];
        env.usepeerdns = true;
        env.ac_mac = Some("ca:01:0e:88:00:06".parse().unwrap());
        env.ac_name = Some("BRAS 1".into());
        env.session_id = Some(17);
        env.pid = 4242;
        env.logname = "root".into();
        env.orig_uid = 0;
        env
    }

    /// Runs the dumping script and returns its arguments and environment.
    fn dump(env: &HookEnv, name: &str) -> (Vec<String>, BTreeMap<String, String>) {
        let dir = temp_dir(name);
        let out = dir.join("out");
        let path = script(
            &dir,
            "ip-up",
            &format!(
                "for arg in \"$@\"; do echo \"arg=$arg\"; done > {out}\nenv >> {out}",
                out = out.display()
            ),
        );
        let outcome = run_hook(&path, env).unwrap();
        assert!(outcome.status.success(), "{outcome:?}");
        let text = fs::read_to_string(&out).unwrap();
        fs::remove_dir_all(dir).unwrap();
        let mut args = Vec::new();
        let mut vars = BTreeMap::new();
        for line in text.lines() {
            if let Some(arg) = line.strip_prefix("arg=") {
                args.push(arg.to_owned());
            } else if let Some((name, value)) = line.split_once('=') {
                vars.insert(name.to_owned(), value.to_owned());
            }
        }
        (args, vars)
    }

    #[test]
    fn ip_up_gets_pppd_arguments_and_environment() {
        let (args, vars) = dump(&up_env(), "up");
        assert_eq!(
            args,
            ["pdial0", "eth0", "0", "100.64.0.2", "100.64.0.1", ""]
        );
        let expected = [
            ("IFNAME", "pdial0"),
            ("DEVICE", "eth0"),
            ("IPLOCAL", "100.64.0.2"),
            ("IPREMOTE", "100.64.0.1"),
            ("DNS1", "192.0.2.53"),
            ("DNS2", "192.0.2.54"),
            ("USEPEERDNS", "1"),
            ("MACREMOTE", "CA:01:0E:88:00:06"),
            ("ACNAME", "BRAS 1"),
            ("PORTDIAL_SESSION_ID", "17"),
            ("PPPD_PID", "4242"),
            ("PPPLOGNAME", "root"),
            ("ORIG_UID", "0"),
            ("PATH", SCRIPT_PATH),
        ];
        for (name, value) in expected {
            assert_eq!(vars.get(name).map(String::as_str), Some(value), "{name}");
        }
        // Nothing of ours leaks in, and ip-down's counters are absent.
        for name in ["HOME", "CONNECT_TIME", "BYTES_SENT", "SPEED", "PEERNAME"] {
            assert!(!vars.contains_key(name), "{name} is set");
        }
    }

    #[test]
    fn ip_down_gets_counters_and_empty_ipparam_is_passed() {
        let mut env = up_env();
        env.remote = None;
        env.usepeerdns = false;
        env.ipparam = "wan".into();
        env.stats = Some(LinkStats {
            connect_time: Duration::from_secs(3600),
            bytes_sent: 1234,
            bytes_received: 5678,
        });
        let (args, vars) = dump(&env, "down");
        assert_eq!(
            args,
            ["pdial0", "eth0", "0", "100.64.0.2", "0.0.0.0", "wan"]
        );
        assert_eq!(vars["CONNECT_TIME"], "3600");
        assert_eq!(vars["BYTES_SENT"], "1234");
        assert_eq!(vars["BYTES_RCVD"], "5678");
        assert!(!vars.contains_key("IPREMOTE"));
        assert!(!vars.contains_key("USEPEERDNS"));
    }

    #[test]
    fn exit_status_and_output_are_reported() {
        let dir = temp_dir("status");
        let path = script(&dir, "fails", "echo to stdout\necho to stderr >&2\nexit 3");
        let outcome = run_hook(&path, &up_env()).unwrap();
        assert_eq!(outcome.status.code(), Some(3));
        assert!(outcome.output.contains("to stdout"), "{}", outcome.output);
        assert!(outcome.output.contains("to stderr"), "{}", outcome.output);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_hung_script_is_killed() {
        let dir = temp_dir("hang");
        let marker = dir.join("survived");
        let path = script(
            &dir,
            "hangs",
            &format!("echo started\nsleep 30\ntouch {}", marker.display()),
        );
        let started = Instant::now();
        let error =
            run_hook_with_timeout(&path, &up_env(), Duration::from_millis(300)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        match error {
            HookError::TimedOut { output, .. } => assert_eq!(output, "started"),
            other => panic!("unexpected {other}"),
        }
        assert!(!marker.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_and_unexecutable_scripts_are_errors() {
        let dir = temp_dir("missing");
        let error = run_hook(&dir.join("nope"), &up_env()).unwrap_err();
        assert!(matches!(error, HookError::NotFound { .. }), "{error}");
        let path = dir.join("not-executable");
        fs::write(&path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let error = run_hook(&path, &up_env()).unwrap_err();
        assert!(matches!(error, HookError::Spawn { .. }), "{error}");
        assert!(error.to_string().contains("not-executable"));
        fs::remove_dir_all(dir).unwrap();
    }
}
