//! Drives the lab (lab/labctl: the real rp-pppoe `pppoe-server` + `pppd` in a
//! user-mode-linux guest) and a real `portdial dial` in the lab's client
//! namespace.
//!
//! Prerequisites: root and the Debian packages `labctl check` names. A test
//! whose prerequisites are missing fails and says what is missing; the lab
//! tests are skipped only when asked for with PORTDIAL_SKIP_LAB=1.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

use nix::fcntl::{Flock, FlockArg};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The lab tests run one at a time: they are timing-sensitive (echo failure,
/// restart), and two guests plus two dialers would fight over two cores. The
/// mutex serializes the tests of one binary, the file lock those of several
/// processes (test binaries or benchmarks run side by side).
static SERIAL: Mutex<()> = Mutex::new(());

/// Held while a lab test runs: the in-process mutex and the machine-wide lock.
pub struct Serial {
    _file: Flock<std::fs::File>,
    _guard: MutexGuard<'static, ()>,
}

fn serial() -> Serial {
    let guard = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/portdial-lab.lock")
        .expect("open /run/portdial-lab.lock");
    let file = Flock::lock(file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, errno)| panic!("lock /run/portdial-lab.lock: {errno}"));
    Serial {
        _file: file,
        _guard: guard,
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn portdial() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portdial"))
}

/// Checks the prerequisites once per test; `None` means the user asked to skip.
pub fn prerequisites() -> Option<Serial> {
    if std::env::var_os("PORTDIAL_SKIP_LAB").is_some_and(|v| v == "1") {
        eprintln!("lab test skipped: PORTDIAL_SKIP_LAB=1");
        return None;
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "the lab tests need root (network namespaces, veth, a UML guest); run as root or set PORTDIAL_SKIP_LAB=1 to skip them"
    );
    let check = Command::new(repo().join("lab/labctl"))
        .arg("check")
        .output()
        .expect("run lab/labctl check");
    assert!(
        check.status.success(),
        "lab prerequisites missing (install them, e.g. via .ci/run, or set PORTDIAL_SKIP_LAB=1):\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    Some(serial())
}

/// One lab: two namespaces, a veth, a guest running pppoe-server.
pub struct Lab {
    pub name: String,
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

impl Lab {
    pub fn up(name: &str, args: &[&str]) -> Lab {
        let dir = std::env::temp_dir().join(format!("portdial-lab-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            name: name.to_string(),
            dir,
            env: HashMap::new(),
        };
        let output = lab.labctl("up", args);
        assert!(
            output.status.success(),
            "labctl up {name} failed:\n{}",
            text(&output)
        );
        lab.env = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        lab
    }

    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("labctl up printed no {key}"))
    }

    pub fn labctl(&self, command: &str, args: &[&str]) -> Output {
        Command::new(repo().join("lab/labctl"))
            .arg(command)
            .arg(&self.name)
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run lab/labctl")
    }

    pub fn must(&self, command: &str, args: &[&str]) -> String {
        let output = self.labctl(command, args);
        assert!(
            output.status.success(),
            "labctl {command} failed:\n{}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn client_ns(&self) -> String {
        format!("pd-{}-cli", self.name)
    }

    pub fn server_ns(&self) -> String {
        format!("pd-{}-srv", self.name)
    }

    /// Runs a command in the client namespace.
    pub fn in_client(&self, command: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.client_ns()])
            .args(command)
            .output()
            .unwrap()
    }

    /// Whether `address` answers a ping from the client namespace within a
    /// few tries: pppd may drop the first packets right after IPCP opens.
    pub fn ping(&self, address: &str) -> bool {
        eventually(Duration::from_secs(5), || {
            self.in_client(&["ping", "-c", "1", "-W", "1", address])
                .status
                .success()
        })
    }

    /// Runs a command in the server namespace (the veth end the guest uses).
    pub fn in_server(&self, command: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.server_ns()])
            .args(command)
            .output()
            .unwrap()
    }

    /// Writes an executable shell script into the lab's directory; returns its path.
    pub fn script(&self, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_string_lossy().into_owned()
    }

    pub fn logs(&self, which: &str) -> String {
        String::from_utf8_lossy(&self.labctl("logs", &[which]).stdout).into_owned()
    }

    /// Starts `portdial dial` in the client namespace.
    pub fn dial(&self, args: &[&str]) -> Dialer {
        spawn_dialer(&self.client_ns(), self.get("client_iface"), &self.dir, args)
    }
}

/// Starts `portdial dial` in the namespace `client_ns` on `iface`, with its
/// control socket, DNS file, state file and log in a new directory under
/// `parent` (shared by the lab and the hostile-AC tests).
pub fn spawn_dialer(client_ns: &str, iface: &str, parent: &Path, args: &[&str]) -> Dialer {
    let dir = parent.join(format!(
        "dialer-{}",
        DIALERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    if args.contains(&"--run-as") {
        // The daemon's user writes its DNS and state files here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let control = dir.join("control.sock");
    let log = std::fs::File::create(dir.join("dialer.log")).unwrap();
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", client_ns])
        .arg(portdial())
        .arg("dial")
        .args(["--iface", iface])
        .arg("--control")
        .arg(&control)
        .arg("--resolv-conf")
        .arg(dir.join("resolv.conf"))
        .args(["--tun-name", "pd0"])
        .args(args)
        .stdin(Stdio::null());
    if !args.contains(&"--log-level") {
        command.args(["--log-level", "debug"]);
    }
    if !args.contains(&"--state-file") {
        command.arg("--state-file").arg(dir.join("state.json"));
    }
    if args.contains(&"--run-as") {
        with_open_tun_device(&mut command);
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let child = command.spawn().expect("spawn portdial dial");
    Dialer {
        child: Some(child),
        dir,
        control,
    }
}

/// Distributions ship /dev/net/tun mode 0666 (udev's default rule) so that a
/// daemon with CAP_NET_ADMIN but not root can open it; this machine's /dev
/// has it 0600. The child gets a private mount namespace with a 0666 tun node
/// on a tmpfs over /dev/net, leaving the host's /dev as it is.
fn with_open_tun_device(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let root = c"/";
    let dev_net = c"/dev/net";
    let tun = c"/dev/net/tun";
    let tmpfs = c"tmpfs";
    // SAFETY: only syscalls between fork and exec, on strings made before.
    unsafe {
        command.pre_exec(move || {
            let check = |rc: libc::c_int| {
                if rc == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                tmpfs.as_ptr(),
                dev_net.as_ptr(),
                tmpfs.as_ptr(),
                0,
                std::ptr::null(),
            ))?;
            libc::umask(0);
            check(libc::mknod(
                tun.as_ptr(),
                libc::S_IFCHR | 0o666,
                libc::makedev(10, 200),
            ))?;
            libc::umask(0o022);
            Ok(())
        });
    }
}

static DIALERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for Lab {
    fn drop(&mut self) {
        let output = self.labctl("down", &[]);
        if !output.status.success() {
            eprintln!("labctl down {} failed:\n{}", self.name, text(&output));
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A running `portdial dial`.
pub struct Dialer {
    child: Option<Child>,
    pub dir: PathBuf,
    pub control: PathBuf,
}

impl Dialer {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dialer.log")).unwrap_or_default()
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// `portdial status --json`, or None when the daemon does not answer.
    pub fn status(&self) -> Option<Value> {
        let output = Command::new(portdial())
            .args(["status", "--json", "--control"])
            .arg(&self.control)
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        serde_json::from_slice(&output.stdout).ok()
    }

    /// Waits until `done` holds for the status; panics with the log otherwise.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> (Value, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.status() {
                if done(&status) {
                    return (status, start.elapsed());
                }
            }
            if let Some(code) = self.try_exit() {
                panic!(
                    "portdial exited with {code:?} while waiting for {what}; log:\n{}",
                    self.log()
                );
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; last status {:?}; log:\n{}",
                    self.status(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_up(&mut self, timeout: Duration) -> (Value, Duration) {
        self.wait_for("phase up", timeout, |s| {
            s["phase"] == "up" && s["local_ip"].is_string()
        })
    }

    pub fn try_exit(&mut self) -> Option<Option<i32>> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.code()),
            _ => None,
        }
    }

    /// Waits for the process to exit on its own; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(code) = self.try_exit() {
                self.child = None;
                return code;
            }
            assert!(
                start.elapsed() < timeout,
                "portdial did not exit within {timeout:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        // `ip netns exec` execs the program, so the child's pid is portdial's.
        if let Some(child) = &self.child {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal);
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Dialer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- portdial log ({}) ---\n{}",
                self.dir.display(),
                self.log()
            );
        }
    }
}

/// Waits until `condition` holds, polling; false on timeout.
pub fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    condition()
}

pub fn file_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
