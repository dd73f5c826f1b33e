//! The orchestrator's handles: the machine-wide lab lock, the lab itself
//! (lab/labctl), `portdial dial` processes, and role processes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use portdial::control::Status;

pub const LOCK_PATH: &str = "/run/portdial-lab.lock";

/// Takes the machine-wide lab lock (as tests/common/lab.rs does), so lab
/// tests and this benchmark never share the machine's lab.
pub fn lab_lock() -> Result<Flock<std::fs::File>, String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)
        .map_err(|e| format!("open {LOCK_PATH}: {e}"))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| format!("lock {LOCK_PATH}: {errno}"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn portdial_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portdial"))
}

/// A running lab; `down` when dropped.
pub struct Lab {
    pub name: String,
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
}

impl Lab {
    pub fn up(name: &str, dir: &Path) -> Result<Lab, String> {
        let mut lab = Lab {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            env: HashMap::new(),
        };
        let stdout = lab.labctl("up", &[])?;
        lab.env = stdout
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(lab)
    }

    pub fn labctl(&self, command: &str, args: &[&str]) -> Result<String, String> {
        let output = Command::new(repo().join("lab/labctl"))
            .arg(command)
            .arg(&self.name)
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run lab/labctl: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "labctl {command} {} failed:\n{}{}",
                self.name,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    pub fn get(&self, key: &str) -> Result<&str, String> {
        self.env
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("labctl up printed no {key}"))
    }

    pub fn client_ns(&self) -> String {
        format!("pd-{}-cli", self.name)
    }

    pub fn server_ns(&self) -> String {
        format!("pd-{}-srv", self.name)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(error) = self.labctl("down", &[]) {
            eprintln!("{error}");
        }
    }
}

/// Asks a daemon for its status over the control socket.
pub fn status(runtime: &tokio::runtime::Runtime, control: &Path) -> Option<Status> {
    runtime.block_on(portdial::daemon::status(control)).ok()
}

/// A `portdial dial` in the client namespace; killed when dropped.
pub struct Dialer {
    pub child: Child,
    pub control: PathBuf,
    pub log: PathBuf,
}

impl Dialer {
    pub fn start(
        namespace: &str,
        dir: &Path,
        tag: &str,
        args: &[String],
    ) -> Result<Dialer, String> {
        let control = dir.join(format!("{tag}.sock"));
        let log_path = dir.join(format!("{tag}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| format!("log file: {e}"))?;
        let err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let _ = std::fs::remove_file(&control);
        // `ip netns exec` execs portdial: the child's pid is portdial's.
        let child = Command::new("ip")
            .args(["netns", "exec", namespace])
            .arg(portdial_binary())
            .arg("dial")
            .arg("--control")
            .arg(&control)
            .arg("--state-file")
            .arg(dir.join(format!("{tag}.state")))
            .arg("--resolv-conf")
            .arg(dir.join(format!("{tag}.resolv")))
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn portdial dial: {e}"))?;
        Ok(Dialer {
            child,
            control,
            log: log_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: Signal) {
        let _ = kill(Pid::from_raw(self.pid() as i32), signal);
    }

    /// Polls the status every 5 ms until `done`; returns it with the time
    /// waited.
    pub fn wait_for(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        timeout: Duration,
        done: impl Fn(&Status) -> bool,
    ) -> Result<(Status, Duration), String> {
        let start = Instant::now();
        loop {
            if let Some(status) = status(runtime, &self.control) {
                if done(&status) {
                    return Ok((status, start.elapsed()));
                }
            }
            if let Ok(Some(code)) = self.child.try_wait() {
                return Err(format!(
                    "portdial exited ({code}); log:\n{}",
                    self.log_text()
                ));
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "portdial not up after {timeout:?}; log:\n{}",
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM (PADT, TUN removed), then SIGKILL after 5 s.
    pub fn stop(mut self) {
        self.signal(Signal::SIGCONT);
        self.signal(Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dialer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A role process (this binary re-executed as `--role NAME`) in a
/// namespace, pinned to a core.
pub struct Role {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    name: String,
}

impl Role {
    pub fn spawn(
        namespace: &str,
        core: usize,
        role: &str,
        args: &[String],
    ) -> Result<Role, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                namespace,
                "taskset",
                "-c",
                &core.to_string(),
            ])
            .arg(exe)
            .args(["--role", role])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn role {role}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(Role {
            child,
            stdin,
            stdout,
            name: role.to_string(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the role prints (its `ready` or its result).
    pub fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 => Ok(line.trim_end().to_string()),
            _ => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                Err(format!(
                    "role {} ended without output ({status})",
                    self.name
                ))
            }
        }
    }

    /// Waits for `ready`; returns its `key=value`s.
    pub fn ready(&mut self) -> Result<HashMap<String, String>, String> {
        let line = self.line()?;
        let rest = line
            .strip_prefix("ready")
            .ok_or_else(|| format!("role {} said {line:?} instead of ready", self.name))?;
        Ok(rest
            .split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    pub fn tell(&mut self, text: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin
            .write_all(text.as_bytes())
            .and_then(|_| stdin.flush())
            .map_err(|e| format!("tell {}: {e}", self.name))
    }

    /// The JSON result a timed role prints when done.
    pub fn result(&mut self) -> Result<serde_json::Value, String> {
        let line = self.line()?;
        serde_json::from_str(&line).map_err(|e| format!("role {} printed {line:?}: {e}", self.name))
    }

    /// Closes stdin (the role stops) and returns its JSON result.
    pub fn finish(mut self) -> Result<serde_json::Value, String> {
        self.stdin = None;
        let result = self.result();
        let _ = self.child.wait();
        result
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        self.stdin = None;
        if let Ok(None) = self.child.try_wait() {
            std::thread::sleep(Duration::from_millis(50));
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// utime + stime of a process, all its threads, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("bad stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `after` starts at field 3.
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or("bad stat field")
    };
    let total = ticks(14)? + ticks(15)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(total as f64 / hz)
}

/// Context switches (voluntary + involuntary) of each thread of `pid`, by
/// thread id.
pub fn context_switches(pid: u32) -> Result<HashMap<String, u64>, String> {
    let mut counts = HashMap::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| format!("/proc/{pid}/task: {e}"))?;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let total: u64 = status
            .lines()
            .filter_map(|line| {
                line.strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            })
            .filter_map(|value| value.trim().parse::<u64>().ok())
            .sum();
        counts.insert(task.file_name().to_string_lossy().into_owned(), total);
    }
    Ok(counts)
}

pub fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".to_string())
}

/// Pins every thread of `pid` to `core`.
pub fn pin(pid: u32, core: usize) -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &core.to_string(), &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if !status.success() {
        return Err(format!("taskset -p {pid} failed"));
    }
    Ok(())
}
