//! The locked-down daemon: the capabilities it keeps, `--run-as`, and who may
//! use which control command.
//!
//! The capability test dials the real rp-pppoe server in the lab (root and
//! the lab's packages; PORTDIAL_SKIP_LAB=1 skips it). The control-socket test
//! needs root (it connects as other users through setpriv) and util-linux's
//! setpriv; without them it fails and says so.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::lab::{eventually, file_text, portdial, prerequisites, Lab};
use nix::sys::signal::Signal;
use portdial::control::{Access, ControlServer, Response, Status};

const USER: &str = "portdial";
const PASSWORD: &str = "portdial-secret";
/// CAP_NET_ADMIN (12) and CAP_NET_RAW (13), as /proc/PID/status prints them.
const NET_ADMIN_AND_RAW: &str = "0000000000003000";
/// The same and CAP_SYS_PTRACE (19).
const WITH_PTRACE: &str = "0000000000083000";

fn password_file(lab: &Lab) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = lab.dir.join("password");
    std::fs::write(&path, PASSWORD).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_string_lossy().into_owned()
}

/// `Key:\tvalue` lines of /proc/PID/task/TID/status for every thread.
fn thread_status(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the daemon's threads");
    // A blocking-pool thread may end between the listing and the read.
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("status")).ok())
        .collect()
}

fn field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in\n{status}"))
        .trim()
}

/// Every thread holds exactly CAP_NET_ADMIN and CAP_NET_RAW, also in the
/// bounding set its hooks inherit, and runs as `uid`.
fn assert_locked_down(pid: u32, uid: u32) {
    for status in thread_status(pid) {
        for key in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
            assert_eq!(field(&status, key), NET_ADMIN_AND_RAW, "{key}:\n{status}");
        }
        let uids: Vec<&str> = field(&status, "Uid").split_whitespace().collect();
        assert_eq!(
            uids,
            vec![uid.to_string(); 4],
            "real, effective, saved, fs uid"
        );
    }
}

#[test]
fn the_daemon_keeps_only_net_admin_and_net_raw_also_as_a_dedicated_user() {
    let Some(_serial) = prerequisites() else {
        return;
    };
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("the user nobody");
    let lab = Lab::up("caps", &["--auth", "pap"]);
    let password = password_file(&lab);
    let base = ["--user", USER, "--password-file", &password, "--usepeerdns"];

    // As root: uid 0, but only the two capabilities.
    let mut dialer = lab.dial(&base);
    dialer.wait_up(Duration::from_secs(20));
    assert_locked_down(dialer.pid().unwrap(), 0);
    assert!(
        dialer.log().contains("privileges dropped"),
        "{}",
        dialer.log()
    );
    dialer.signal(Signal::SIGTERM);
    assert_eq!(dialer.wait_exit(Duration::from_secs(15)), Some(0));

    // --name-owners keeps CAP_SYS_PTRACE for the port manager's owner names,
    // but the hooks and anything they start never get it.
    let mut args = base.to_vec();
    args.push("--name-owners");
    let mut dialer = lab.dial(&args);
    dialer.wait_up(Duration::from_secs(20));
    for status in thread_status(dialer.pid().unwrap()) {
        assert_eq!(field(&status, "CapEff"), WITH_PTRACE, "{status}");
        assert_eq!(field(&status, "CapPrm"), WITH_PTRACE, "{status}");
        for key in ["CapInh", "CapAmb", "CapBnd"] {
            assert_eq!(field(&status, key), NET_ADMIN_AND_RAW, "{key}:\n{status}");
        }
    }
    dialer.signal(Signal::SIGTERM);
    assert_eq!(dialer.wait_exit(Duration::from_secs(15)), Some(0));

    // As nobody: the hooks inherit the same two capabilities and the uid.
    let hook = lab.script(
        "ip-up",
        "grep -E '^(Uid|CapEff|CapBnd):' /proc/self/status > \"$0.seen\"",
    );
    // The hook, running as nobody, writes what it saw next to itself.
    std::fs::set_permissions(
        &lab.dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mut args = base.to_vec();
    args.extend(["--run-as", "nobody", "--ip-up", &hook, "--persist"]);
    let mut dialer = lab.dial(&args);
    let (status, _) = dialer.wait_up(Duration::from_secs(20));
    let pid = dialer.pid().unwrap();
    assert_locked_down(pid, nobody.uid.as_raw());
    assert!(
        file_text(&dialer.path("resolv.conf")).contains("nameserver 192.0.2.53"),
        "nobody writes the DNS file"
    );
    let seen = Path::new(&hook).with_extension("seen");
    assert!(
        eventually(Duration::from_secs(5), || file_text(&seen)
            .contains("CapBnd")),
        "ip-up did not run"
    );
    let seen = file_text(&seen);
    assert_eq!(field(&seen, "CapEff"), NET_ADMIN_AND_RAW, "{seen}");
    assert_eq!(field(&seen, "CapBnd"), NET_ADMIN_AND_RAW, "{seen}");
    assert!(
        field(&seen, "Uid").starts_with(&nobody.uid.to_string()),
        "{seen}"
    );
    // A re-dial needs both capabilities again (a new TUN, addresses, routes).
    let session = status["session_id"].clone();
    dialer.signal(Signal::SIGHUP);
    assert!(
        eventually(Duration::from_secs(30), || dialer
            .status()
            .is_some_and(|s| s["phase"] == "up" && s["session_id"] != session)),
        "no re-dial as nobody:\n{}",
        dialer.log()
    );
    assert!(
        lab.in_client(&["ping", "-c", "1", "-W", "2", "192.0.2.1"])
            .status
            .success(),
        "no traffic after the re-dial as nobody"
    );
    dialer.signal(Signal::SIGTERM);
    assert_eq!(dialer.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(
        !lab.in_client(&["ip", "link", "show", "pd0"])
            .status
            .success(),
        "the TUN outlived the session"
    );
}

#[test]
fn run_as_without_the_right_to_change_user_is_refused_with_a_clear_message() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: it creates a namespace and runs portdial as nobody through setpriv"
    );
    let dir = tempdir();
    let password = dir.join("password");
    std::fs::write(&password, "x").unwrap();
    std::fs::set_permissions(
        &password,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    // nobody with exactly the two capabilities, in a namespace of its own
    // with a veth pair: everything opens, then --run-as needs CAP_SETUID and
    // CAP_SETGID, which it does not have.
    let script = format!(
        "ip link add d0 address 00:00:5e:00:53:01 type veth peer name d1 && \
         ip link set d0 up && ip link set d1 up && \
         exec setpriv --reuid nobody --regid nogroup --clear-groups \
           --inh-caps +net_admin,+net_raw --ambient-caps +net_admin,+net_raw \
           {portdial} dial --iface d0 --user u --password-file {password} \
           --control {dir}/control.sock --state-file {dir}/state.json \
           --resolv-conf {dir}/resolv.conf --run-as nobody",
        portdial = portdial().display(),
        password = password.display(),
        dir = dir.display(),
    );
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let output = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .output()
        .expect("unshare and setpriv (util-linux)");
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(9), "{output:?}");
    assert!(
        text.contains("--run-as nobody: changing user needs root"),
        "{text}"
    );

    // Root may change user, but nobody must then be able to open
    // /dev/net/tun for every new session's TUN: refused at start, saying so
    // (here with a 0600 node of our own over /dev/net, in a private mount
    // namespace).
    let script = format!(
        "mount -t tmpfs tmpfs /dev/net && mknod -m 600 /dev/net/tun c 10 200 && \
         ip link add d0 address 00:00:5e:00:53:01 type veth peer name d1 && \
         ip link set d0 up && ip link set d1 up && \
         exec {portdial} dial --iface d0 --user u --password-file {password} \
           --control {dir}/control.sock --state-file {dir}/state.json \
           --resolv-conf {dir}/resolv.conf --run-as nobody",
        portdial = portdial().display(),
        password = password.display(),
        dir = dir.display(),
    );
    let output = Command::new("unshare")
        .args(["--net", "--mount", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux)");
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(9), "{output:?}");
    assert!(text.contains("nobody cannot open /dev/net/tun"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A root-owned 0755 directory of our own under the temp dir.
fn tempdir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "portdial-security-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

/// Runs a portdial control command as nobody with the given supplementary
/// groups; returns its exit code and output.
fn as_nobody(groups: &[u32], socket: &Path, command: &[&str]) -> (i32, String) {
    let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
    let mut setpriv = Command::new("setpriv");
    setpriv.args(["--reuid", "nobody", "--regid", "nogroup"]);
    if groups.is_empty() {
        setpriv.arg("--clear-groups");
    } else {
        setpriv.args(["--groups", &groups.join(",")]);
    }
    let output = setpriv
        .arg(portdial())
        .args(command)
        .arg("--control")
        .arg(socket)
        .output()
        .expect("setpriv (util-linux)");
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn read_only_commands_open_to_a_group_state_changing_ones_need_the_control_group() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: it connects to the control socket as other users through setpriv"
    );
    const CONTROL: u32 = 4_242;
    const READ: u32 = 4_343;
    let dir = tempdir();
    let socket = dir.join("control.sock");
    let served = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = {
        let (socket, served) = (socket.clone(), served.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let access = Access {
                    owner_uid: 0,
                    group: Some(CONTROL),
                    read_group: Some(READ),
                };
                let (_server, mut requests) = ControlServer::start(&socket, access).await.unwrap();
                ready_tx.send(()).unwrap();
                // Stands in for the daemon: answers every request that
                // reaches it and records which did.
                let answer = async move {
                    while let Some(incoming) = requests.recv().await {
                        served.lock().unwrap().push(incoming.request.clone());
                        let response = match incoming.request {
                            portdial::control::Request::Status => Response::Status {
                                ok: true,
                                status: Box::new(Status {
                                    phase: "up".into(),
                                    ..Status::default()
                                }),
                            },
                            _ => Response::data(serde_json::json!({"ports": [], "released": []})),
                        };
                        let _ = incoming.reply.send(response);
                    }
                };
                tokio::select! {
                    _ = answer => {}
                    _ = stop_rx => {}
                }
            });
        })
    };
    ready.recv().unwrap();
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(
        meta.mode() & 0o777,
        0o666,
        "two groups: the file mode admits both, SO_PEERCRED decides"
    );

    // A stranger is refused everything.
    let (code, text) = as_nobody(&[], &socket, &["status"]);
    assert_eq!(code, 9, "{text}");
    assert!(text.contains("permission denied"), "{text}");

    // The read group reads, and is refused what changes state.
    let (code, text) = as_nobody(&[READ], &socket, &["status", "--json"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\"phase\":\"up\""), "{text}");
    assert_eq!(as_nobody(&[READ], &socket, &["ports"]).0, 0);
    for command in [
        &["release", "--phantoms"][..],
        &["scan"][..],
        &["sleep", "on"][..],
    ] {
        let (code, text) = as_nobody(&[READ], &socket, command);
        assert_eq!(code, 9, "{command:?}: {text}");
        assert!(text.contains("changes state"), "{command:?}: {text}");
    }
    let reached: Vec<bool> = served
        .lock()
        .unwrap()
        .iter()
        .map(|request| request.changes_state())
        .collect();
    assert_eq!(
        reached,
        [false, false],
        "only status and ports reached the daemon"
    );

    // The control group may change state.
    let (code, text) = as_nobody(&[CONTROL], &socket, &["release", "--phantoms"]);
    assert_eq!(code, 0, "{text}");
    assert!(served.lock().unwrap().last().unwrap().changes_state());
    let _ = stop.send(());
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_systemd_unit_is_valid() {
    // systemd-analyze checks the unit against this machine's systemd; the
    // binary path is pointed at the one under test.
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/portdial.service"
    ))
    .unwrap();
    let unit = unit.replace("/usr/local/bin/portdial", &portdial().display().to_string());
    let dir = tempdir();
    let path = dir.join("portdial.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd) is needed to check the unit");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && text.trim().is_empty(), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
