//! The control socket: a Unix stream socket speaking one JSON object per line.
//!
//! A client sends a request line (`{"cmd": "status"}`) and reads one response
//! line (`{"ok": true, ...}` or `{"ok": false, "error": "..."}`). The socket is
//! created 0600 (root only) unless a group is configured, then 0660 with that
//! group (0666 when two different groups are configured); on top of the file
//! mode every peer is checked with SO_PEERCRED, so a socket file with loosened
//! permissions still admits only root, our own user and the configured groups.
//! Root, our own user and the control group may use every command; the
//! read group only the commands that change nothing (status, ports, events,
//! history).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot};

/// The status `portdial status --json` prints. Field names are part of the
/// interface: scripts read them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    /// "discovery" | "lcp" | "auth" | "network" | "up" | "holdoff" | "down"
    pub phase: String,
    /// The TUN interface name.
    pub interface: String,
    pub session_id: Option<u16>,
    pub ac_mac: Option<String>,
    pub ac_name: Option<String>,
    pub local_ip: Option<String>,
    pub peer_ip: Option<String>,
    pub dns: Vec<String>,
    pub mtu: Option<u16>,
    pub uptime_s: u64,
    pub redials: u32,
    pub last_failure: Option<String>,
    pub tx_packets: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    /// Received PPPoE frames that did not parse (counted and dropped).
    #[serde(default)]
    pub malformed_frames: u64,
}

/// A request on the control socket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// The port table (`portdial ports`).
    Ports,
    /// Scan and judge now (`portdial scan`).
    Scan,
    /// Release one port, or every phantom.
    Release {
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        proto: Option<String>,
        #[serde(default)]
        phantoms: bool,
    },
    /// The terminal goes to sleep (`on: true`) or wakes up.
    Sleep {
        on: bool,
    },
    /// Subscribe: the connection then carries one event per line until closed.
    Events,
    /// The last events (up to 100), oldest first.
    History,
}

/// What the daemon answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Response {
    Status {
        ok: bool,
        status: Box<Status>,
    },
    /// Any other answer: the command's JSON result.
    Data {
        ok: bool,
        data: serde_json::Value,
    },
    Error {
        ok: bool,
        error: String,
    },
}

impl Response {
    pub fn data(data: impl Serialize) -> Response {
        match serde_json::to_value(data) {
            Ok(data) => Response::Data { ok: true, data },
            Err(error) => Response::error(format!("cannot encode the answer: {error}")),
        }
    }

    pub fn error(message: impl Into<String>) -> Response {
        Response::Error {
            ok: false,
            error: message.into(),
        }
    }
}

/// A request from a client, with the way back to it.
#[derive(Debug)]
pub struct Incoming {
    pub request: Request,
    pub reply: oneshot::Sender<Response>,
}

/// Who may use the socket besides root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Our own uid (a daemon run by a dedicated user admits that user).
    pub owner_uid: u32,
    /// May use every command.
    pub group: Option<u32>,
    /// May use the read-only commands.
    pub read_group: Option<u32>,
}

/// What an admitted peer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    ReadOnly,
    Full,
}

impl Access {
    /// `groups`: the peer's supplementary groups as the kernel recorded them
    /// at connect time (SO_PEERGROUPS), not read from /proc afterwards,
    /// where a recycled pid could speak for someone else. `None`: refused.
    fn permission(&self, uid: u32, gid: u32, groups: &[u32]) -> Option<Permission> {
        let member =
            |group: Option<u32>| group.is_some_and(|group| gid == group || groups.contains(&group));
        if uid == 0 || uid == self.owner_uid || member(self.group) {
            Some(Permission::Full)
        } else if member(self.read_group) {
            Some(Permission::ReadOnly)
        } else {
            None
        }
    }

    /// The socket file's group and mode. The file mode only keeps strangers
    /// from connecting; SO_PEERCRED decides what a peer may do.
    fn file_mode(&self) -> (Option<u32>, u32) {
        match (self.group, self.read_group) {
            (None, None) => (None, 0o600),
            (Some(group), None) | (None, Some(group)) => (Some(group), 0o660),
            (Some(group), Some(read)) if group == read => (Some(group), 0o660),
            (Some(group), Some(_)) => (Some(group), 0o666),
        }
    }
}

impl Request {
    /// Scans, releases and sleep change the daemon's or the applications'
    /// state; the rest only reads.
    pub fn changes_state(&self) -> bool {
        match self {
            Request::Scan | Request::Release { .. } | Request::Sleep { .. } => true,
            Request::Status | Request::Ports | Request::Events | Request::History => false,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Ports => "ports",
            Request::Scan => "scan",
            Request::Release { .. } => "release",
            Request::Sleep { .. } => "sleep",
            Request::Events => "events",
            Request::History => "history",
        }
    }
}

/// SO_PEERGROUPS (Linux ≥ 4.13; 59 on the architectures we build for).
const SO_PEERGROUPS: libc::c_int = 59;

/// The peer's supplementary groups at connect time; empty when the kernel
/// cannot say (then only uid and primary gid count).
fn peer_groups(stream: &UnixStream) -> Vec<u32> {
    use std::os::fd::AsRawFd;
    let mut groups = vec![0 as libc::gid_t; 1024];
    let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
    // SAFETY: `groups` is writable memory of `len` bytes, and the fd is the
    // open socket `stream` owns for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERGROUPS,
            groups.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Vec::new();
    }
    groups.truncate(len as usize / std::mem::size_of::<libc::gid_t>());
    groups
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another portdial is already listening on {0}")]
    InUse(PathBuf),
    #[error("control socket {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// The listening side, owned by the daemon.
pub struct ControlServer {
    path: PathBuf,
    events: broadcast::Sender<String>,
}

impl ControlServer {
    /// Binds the socket and spawns the accept loop on the current runtime;
    /// requests arrive on the returned channel.
    pub async fn start(
        path: &Path,
        access: Access,
    ) -> Result<(ControlServer, mpsc::Receiver<Incoming>), ControlError> {
        let io_error = |source| ControlError::Io {
            path: path.to_path_buf(),
            source,
        };
        if path.exists() {
            // A live daemon answers; a stale file from a crash does not.
            if UnixStream::connect(path).await.is_ok() {
                return Err(ControlError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(io_error)?;
        }
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(io_error)?;
            }
        }
        let listener = UnixListener::bind(path).map_err(io_error)?;
        let (group, mode) = access.file_mode();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_error)?;
        if let Some(group) = group {
            std::os::unix::fs::chown(path, None, Some(group)).map_err(io_error)?;
        }
        let (sender, receiver) = mpsc::channel(32);
        // A slow subscriber misses events (and is told how many) rather than
        // holding the daemon back.
        let (events, _) = broadcast::channel(1024);
        tokio::spawn(accept_loop(listener, access, sender, events.clone()));
        Ok((
            ControlServer {
                path: path.to_path_buf(),
                events,
            },
            receiver,
        ))
    }

    /// Sends an event to every subscriber (`portdial events --follow`).
    pub fn publish(&self, event: &impl Serialize) {
        if let Ok(line) = serde_json::to_string(event) {
            // No subscriber is not an error.
            let _ = self.events.send(line);
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept_loop(
    listener: UnixListener,
    access: Access,
    sender: mpsc::Sender<Incoming>,
    events: broadcast::Sender<String>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!(%error, "control accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permission = match stream.peer_cred() {
            Ok(cred) => access.permission(cred.uid(), cred.gid(), &peer_groups(&stream)),
            Err(_) => None,
        };
        let Some(permission) = permission else {
            tracing::info!(
                "control connection refused: peer is not root, the owner or a control group"
            );
            let mut stream = stream;
            let _ = write_line(&mut stream, &Response::error("permission denied")).await;
            continue;
        };
        tokio::spawn(serve_client(
            stream,
            permission,
            sender.clone(),
            events.clone(),
        ));
    }
}

/// Longest request line accepted; anything longer is an error, not a buffer.
const MAX_REQUEST: u64 = 64 * 1024;

async fn serve_client(
    stream: UnixStream,
    permission: Permission,
    sender: mpsc::Sender<Incoming>,
    events: broadcast::Sender<String>,
) {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(tokio::io::AsyncReadExt::take(reader, MAX_REQUEST)).lines();
    // Idle clients are dropped so a flood of connections cannot pile up.
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await
    {
        let response = match serde_json::from_str::<Request>(&line) {
            Err(error) => Response::error(format!("bad request: {error}")),
            Ok(request) if request.changes_state() && permission < Permission::Full => {
                tracing::info!(
                    command = request.name(),
                    "control request refused: the peer may only read"
                );
                Response::error(format!(
                    "permission denied: {} changes state; it needs root or the control group",
                    request.name()
                ))
            }
            Ok(Request::Events) => {
                stream_events(&mut writer, events.subscribe()).await;
                return;
            }
            Ok(request) => {
                let (reply, answer) = oneshot::channel();
                if sender.send(Incoming { request, reply }).await.is_err() {
                    return;
                }
                answer
                    .await
                    .unwrap_or_else(|_| Response::error("the daemon is shutting down"))
            }
        };
        if write_line(&mut writer, &response).await.is_err() {
            return;
        }
    }
}

/// Writes every event to a subscriber until it goes away.
async fn stream_events<W: AsyncWriteExt + Unpin>(
    writer: &mut W,
    mut events: broadcast::Receiver<String>,
) {
    loop {
        let line = match events.recv().await {
            Ok(line) => line,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                format!("{{\"event\":\"lagged\",\"missed\":{missed}}}")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if writer.write_all(line.as_bytes()).await.is_err()
            || writer.write_all(b"\n").await.is_err()
        {
            return;
        }
    }
}

/// The client side of a subscription: calls `each` with every event line.
pub async fn follow_events(path: &Path, mut each: impl FnMut(&str)) -> Result<(), ClientError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let (reader, mut writer) = stream.into_split();
    let mut line = serde_json::to_string(&Request::Events)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push('\n');
    writer
        .write_all(line.as_bytes())
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let mut lines = BufReader::new(reader).lines();
    while let Some(event) = lines
        .next_line()
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?
    {
        each(&event);
    }
    Ok(())
}

async fn write_line<W: AsyncWriteExt + Unpin>(
    writer: &mut W,
    response: &Response,
) -> io::Result<()> {
    let mut line = serde_json::to_string(response).map_err(io::Error::other)?;
    line.push('\n');
    writer.write_all(line.as_bytes()).await
}

/// The client side: one request, one response.
pub async fn request(path: &Path, request: &Request) -> Result<Response, ClientError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let (reader, mut writer) = stream.into_split();
    let mut line =
        serde_json::to_string(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push('\n');
    // A daemon that refuses us answers "permission denied" and closes before
    // reading: the write may then fail, but the answer is there to read.
    let written = writer.write_all(line.as_bytes()).await;
    let mut lines = BufReader::new(reader).lines();
    let answer = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .map_err(|_| ClientError::Protocol("no answer within 10 s".into()))?
        .map_err(|e| ClientError::Protocol(e.to_string()))?
        .ok_or_else(|| match written {
            Err(error) => ClientError::Protocol(error.to_string()),
            Ok(()) => ClientError::Protocol("the daemon closed the connection".into()),
        })?;
    serde_json::from_str(&answer).map_err(|e| ClientError::Protocol(format!("bad answer: {e}")))
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the daemon at {path}: {source} (is `portdial dial` running with this --control path?)")]
    Connect { path: PathBuf, source: io::Error },
    #[error("control protocol: {0}")]
    Protocol(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn status_round_trip_and_permissions() {
        runtime().block_on(async {
            let dir = tempdir();
            let path = dir.join("control.sock");
            let access = Access {
                owner_uid: nix::unistd::geteuid().as_raw(),
                group: None,
                read_group: None,
            };
            let (_server, mut requests) = ControlServer::start(&path, access).await.unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            tokio::spawn(async move {
                while let Some(incoming) = requests.recv().await {
                    let status = Status {
                        phase: "up".into(),
                        redials: 2,
                        ..Status::default()
                    };
                    let _ = incoming.reply.send(Response::Status {
                        ok: true,
                        status: Box::new(status),
                    });
                }
            });
            match request(&path, &Request::Status).await.unwrap() {
                Response::Status { ok: true, status } => {
                    assert_eq!(status.phase, "up");
                    assert_eq!(status.redials, 2);
                }
                other => panic!("{other:?}"),
            }
            // A second daemon on the same path is refused.
            assert!(matches!(
                ControlServer::start(&path, access).await,
                Err(ControlError::InUse(_))
            ));
        });
    }

    #[test]
    fn malformed_requests_get_an_error_line() {
        runtime().block_on(async {
            let dir = tempdir();
            let path = dir.join("control.sock");
            let access = Access {
                owner_uid: nix::unistd::geteuid().as_raw(),
                group: None,
                read_group: None,
            };
            let (_server, _requests) = ControlServer::start(&path, access).await.unwrap();
            let stream = UnixStream::connect(&path).await.unwrap();
            let (reader, mut writer) = stream.into_split();
            writer.write_all(b"{not json\n").await.unwrap();
            let line = BufReader::new(reader).lines().next_line().await.unwrap().unwrap();
            let response: Response = serde_json::from_str(&line).unwrap();
            assert!(matches!(response, Response::Error { ok: false, error } if error.starts_with("bad request")));
        });
    }

    #[test]
    fn access_rules() {
        use Permission::{Full, ReadOnly};
        let access = Access {
            owner_uid: 1000,
            group: Some(50),
            read_group: Some(60),
        };
        assert_eq!(access.permission(0, 0, &[]), Some(Full));
        assert_eq!(access.permission(1000, 1000, &[]), Some(Full));
        assert_eq!(access.permission(2000, 50, &[]), Some(Full));
        assert_eq!(
            access.permission(2000, 2000, &[7, 50]),
            Some(Full),
            "a supplementary group counts"
        );
        assert_eq!(access.permission(2000, 60, &[]), Some(ReadOnly));
        assert_eq!(access.permission(2000, 2000, &[60]), Some(ReadOnly));
        assert_eq!(access.permission(2000, 2000, &[60, 50]), Some(Full));
        assert_eq!(access.permission(2000, 2000, &[7]), None);
        let no_groups = Access {
            owner_uid: 1000,
            group: None,
            read_group: None,
        };
        assert_eq!(no_groups.permission(2000, 50, &[50]), None);
        assert_eq!(no_groups.file_mode(), (None, 0o600));
        assert_eq!(access.file_mode(), (Some(50), 0o666));
        let read_only = Access {
            group: None,
            ..access
        };
        assert_eq!(read_only.file_mode(), (Some(60), 0o660));
    }

    #[test]
    fn state_changing_requests() {
        let changing: Vec<&str> = [
            Request::Status,
            Request::Ports,
            Request::Scan,
            Request::Release {
                port: None,
                proto: None,
                phantoms: true,
            },
            Request::Sleep { on: true },
            Request::Events,
            Request::History,
        ]
        .iter()
        .filter(|request| request.changes_state())
        .map(Request::name)
        .collect();
        assert_eq!(changing, ["scan", "release", "sleep"]);
    }

    #[test]
    fn peer_groups_are_the_connecting_processs_groups() {
        runtime().block_on(async {
            let (ours, theirs) = UnixStream::pair().unwrap();
            let mut expected: Vec<u32> = nix::unistd::getgroups()
                .unwrap()
                .into_iter()
                .map(|g| g.as_raw())
                .collect();
            let mut got = peer_groups(&ours);
            expected.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, expected);
            drop(theirs);
        });
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "portdial-control-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}
