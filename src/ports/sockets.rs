//! The kernel's view of the TCP and UDP sockets: list them all with one
//! NETLINK_SOCK_DIAG dump per family and protocol, find the process that owns
//! each one (by socket inode, from `/proc/<pid>/fd`), destroy one
//! (SOCK_DESTROY), and measure how full the ephemeral port range is.
//!
//! Everything netlink here works in the network namespace of the calling
//! *thread*: the diag socket is created by the call, and a socket belongs to
//! the namespace of the thread that creates it.
//!
//! The INET_DIAG messages are written and read here by hand instead of with
//! `netlink-packet-sock-diag` 0.5 (which would fit our netlink-packet-core
//! 0.9): that crate boxes every response and parses its attributes into owned
//! values, an allocation or more per socket where a scan must handle 65,536
//! sockets in milliseconds, and its messages always carry the type
//! SOCK_DIAG_BY_FAMILY, so SOCK_DESTROY cannot be expressed with it. The two
//! layouts needed are fixed C structs (`linux/inet_diag.h`), read in place
//! through checked ranges.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol};
use serde::Serialize;

use super::Proto;

/// A socket's state as the kernel reports it (`include/net/tcp_states.h`);
/// UDP uses ESTABLISHED when connected and CLOSE otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SocketState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    Unknown(u8),
}

impl SocketState {
    /// The state for the kernel's `idiag_state` value.
    pub fn from_kernel(value: u8) -> SocketState {
        match value {
            1 => SocketState::Established,
            2 => SocketState::SynSent,
            3 => SocketState::SynRecv,
            4 => SocketState::FinWait1,
            5 => SocketState::FinWait2,
            6 => SocketState::TimeWait,
            7 => SocketState::Close,
            8 => SocketState::CloseWait,
            9 => SocketState::LastAck,
            10 => SocketState::Listen,
            11 => SocketState::Closing,
            other => SocketState::Unknown(other),
        }
    }

    /// The kernel's value for this state.
    pub fn to_kernel(self) -> u8 {
        match self {
            SocketState::Established => 1,
            SocketState::SynSent => 2,
            SocketState::SynRecv => 3,
            SocketState::FinWait1 => 4,
            SocketState::FinWait2 => 5,
            SocketState::TimeWait => 6,
            SocketState::Close => 7,
            SocketState::CloseWait => 8,
            SocketState::LastAck => 9,
            SocketState::Listen => 10,
            SocketState::Closing => 11,
            SocketState::Unknown(other) => other,
        }
    }
}

/// The names `ss` prints, so that logs read like its output; CLOSE is
/// "UNCONN" there because for UDP it means "not connected".
impl fmt::Display for SocketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            SocketState::Established => "ESTAB",
            SocketState::SynSent => "SYN-SENT",
            SocketState::SynRecv => "SYN-RECV",
            SocketState::FinWait1 => "FIN-WAIT-1",
            SocketState::FinWait2 => "FIN-WAIT-2",
            SocketState::TimeWait => "TIME-WAIT",
            SocketState::Close => "UNCONN",
            SocketState::CloseWait => "CLOSE-WAIT",
            SocketState::LastAck => "LAST-ACK",
            SocketState::Listen => "LISTEN",
            SocketState::Closing => "CLOSING",
            SocketState::Unknown(value) => return write!(f, "UNKNOWN({value})"),
        };
        f.write_str(name)
    }
}

/// One TCP or UDP socket as the kernel's socket diagnostics report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KernelSocket {
    pub proto: Proto,
    /// `AF_INET` or `AF_INET6`: the socket's own family, so a dual-stack
    /// IPv6 socket talking IPv4 is AF_INET6 with `::ffff:a.b.c.d` addresses.
    pub family: u8,
    pub local: SocketAddr,
    /// `None` when unconnected (the kernel reports `0.0.0.0:0` / `[::]:0`).
    pub remote: Option<SocketAddr>,
    pub state: SocketState,
    /// The socket's inode in sockfs (`socket:[N]` in `/proc/<pid>/fd`); 0 for
    /// sockets no file refers to (TIME-WAIT, request and orphaned sockets).
    pub inode: u64,
    pub uid: u32,
    /// `idiag_cookie`: tells a socket from a later one with the same
    /// addresses; SOCK_DESTROY checks it.
    pub cookie: [u32; 2],
    /// `idiag_if`: the interface the socket is bound to, 0 if none.
    pub interface: u32,
}

impl KernelSocket {
    /// True when the socket's local address is one of `addresses`, the
    /// IPv4-mapped form of one of them, or a wildcard that covers one of
    /// them: `0.0.0.0` covers every IPv4 address, `::` every address
    /// (IPv4 too, since a `::` socket is dual-stack unless IPV6_V6ONLY,
    /// which this record does not carry). With no addresses it is false.
    pub fn is_on(&self, addresses: &[IpAddr]) -> bool {
        match self.local.ip().to_canonical() {
            IpAddr::V4(local) if local.is_unspecified() => addresses
                .iter()
                .any(|address| address.to_canonical().is_ipv4()),
            IpAddr::V6(local) if local.is_unspecified() => !addresses.is_empty(),
            local => addresses
                .iter()
                .any(|address| address.to_canonical() == local),
        }
    }
}

/// `tcp 192.0.2.1:40000 -> 198.51.100.7:443 ESTAB`, like a line of `ss`.
impl fmt::Display for KernelSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.proto, self.local)?;
        if let Some(remote) = self.remote {
            write!(f, " -> {remote}")?;
        }
        write!(f, " {}", self.state)
    }
}

/// The process that holds a socket open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub pid: u32,
    /// `/proc/<pid>/comm`: the name, at most 15 bytes.
    pub comm: String,
    /// `/proc/<pid>/exe`; `None` when it cannot be read (kernel threads,
    /// other users' processes without privilege).
    pub exe: Option<PathBuf>,
    /// The effective uid (`Uid:` in `/proc/<pid>/status`).
    pub uid: u32,
}

/// How much of the ephemeral port range is taken.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Occupancy {
    /// Distinct local port numbers in use (a port held by both a TCP and a
    /// UDP socket counts once).
    pub used: usize,
    pub range_size: usize,
    /// `used / range_size` in percent; 0 for an empty range.
    pub percent: f64,
}

/// Every TCP and UDP socket, IPv4 and IPv6, in every state, of the calling
/// thread's network namespace: four dump requests on one diag socket.
pub fn list_sockets() -> io::Result<Vec<KernelSocket>> {
    let mut diag = DiagSocket::open()?;
    let mut sockets = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        for proto in [Proto::Tcp, Proto::Udp] {
            diag.dump(family, proto, &mut sockets)?;
        }
    }
    Ok(sockets)
}

/// Destroys `socket` with SOCK_DESTROY, naming it exactly (addresses, ports,
/// interface, cookie), in the calling thread's namespace.
///
/// What the owner sees (Linux 6.18, checked by the tests): TCP sends the
/// peer a RST (its read fails with ECONNRESET), the owner's next read fails
/// with ECONNABORTED, and the port is free at once (no TIME-WAIT). UDP
/// reports ECONNABORTED once, to the next recv or send_to, and disconnects
/// the socket, so `send()` on a connected one fails with EDESTADDRREQ
/// instead; a kernel-chosen port is released (the next send binds a new
/// one), an explicitly bound port stays bound.
///
/// Errors keep the kernel's kind and name the socket: `NotFound` when it no
/// longer exists (ENOENT; also ESTALE, which TCP answers when the addresses
/// now belong to a newer socket with another cookie), `PermissionDenied`
/// without CAP_NET_ADMIN; EOPNOTSUPP when the kernel lacks
/// CONFIG_INET_DIAG_DESTROY.
pub fn destroy(socket: &KernelSocket) -> io::Result<()> {
    let mut diag = DiagSocket::open()?;
    diag.destroy(socket)
        .map_err(|error| destroy_error(socket, error))
}

/// What a failed [`destroy`] means to the caller, who must act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestroyFailure {
    /// The socket no longer exists (ENOENT), or a newer socket with another
    /// cookie holds its addresses (ESTALE): nothing to release, and a reset
    /// written toward those addresses would hit the newer socket.
    Gone,
    /// The kernel will not destroy it for us: SOCK_DESTROY is not built in
    /// (EOPNOTSUPP) or not permitted (EPERM, EACCES: no CAP_NET_ADMIN). The
    /// socket is still there.
    Refused,
    /// Anything else (a netlink failure, an unexpected errno).
    Other,
}

impl DestroyFailure {
    /// The meaning of an error [`destroy`] returned, by its kind (which
    /// `destroy` sets from the kernel's errno).
    pub fn of(error: &io::Error) -> DestroyFailure {
        match error.kind() {
            io::ErrorKind::NotFound => DestroyFailure::Gone,
            io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported => DestroyFailure::Refused,
            _ => DestroyFailure::Other,
        }
    }
}

/// What a walk of `/proc` found: the process holding each socket inode, and
/// whether the walk saw every process that could hold one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owners {
    /// Socket inode → the process holding it (the lowest pid when several do).
    pub by_inode: HashMap<u64, Owner>,
    /// Every process's `/proc/<pid>/fd` was read (processes that ended
    /// during the walk excepted) and no process is hidden from `/proc`: only
    /// then does an inode missing from `by_inode` mean nobody holds it.
    pub complete: bool,
    /// Why the walk is not complete: the first thing it could not read.
    pub why_incomplete: Option<String>,
}

impl Owners {
    /// The process holding the socket with this inode, if the walk saw it.
    pub fn get(&self, inode: u64) -> Option<&Owner> {
        self.by_inode.get(&inode)
    }

    fn incomplete(&mut self, reason: String) {
        self.complete = false;
        self.why_incomplete.get_or_insert(reason);
    }
}

/// Maps every socket inode held open by a process to that process, walking
/// `/proc/<pid>/fd` once per process. When several processes share a socket
/// the lowest pid wins. Processes that vanish during the walk are skipped;
/// any other failure to read a process's fds (EACCES, EPERM: another user's
/// process without CAP_SYS_PTRACE / CAP_DAC_READ_SEARCH) marks the walk
/// incomplete, as does a `/proc` that hides processes (see
/// [`hidden_processes`]).
///
/// Blind spots it cannot report: sockets held only by a thread that
/// unshared its fd table, by a zombie thread-group leader's live threads,
/// by the kernel itself, or only by an fd in flight (SCM_RIGHTS).
pub fn owners() -> Owners {
    let mut walk = Owners {
        by_inode: HashMap::new(),
        complete: true,
        why_incomplete: None,
    };
    let mountinfo = fs::read_to_string("/proc/self/mountinfo");
    let status = fs::read_to_string("/proc/self/status");
    match (mountinfo, status) {
        (Ok(mountinfo), Ok(status)) => {
            if let Some(reason) = hidden_processes(&mountinfo, &status) {
                walk.incomplete(reason);
            }
        }
        (Err(error), _) => walk.incomplete(format!("/proc/self/mountinfo: {error}")),
        (_, Err(error)) => walk.incomplete(format!("/proc/self/status: {error}")),
    }
    let processes = match fs::read_dir("/proc") {
        Ok(processes) => processes,
        Err(error) => {
            walk.incomplete(format!("/proc: {error}"));
            return walk;
        }
    };
    let mut pids: Vec<u32> = Vec::new();
    for entry in processes {
        match entry {
            Ok(entry) => pids.extend(parse_decimal::<u32>(entry.file_name().as_bytes())),
            Err(error) => walk.incomplete(format!("listing /proc: {error}")),
        }
    }
    pids.sort_unstable();
    let mut entries = vec![0u8; DIRENT_BUFFER_LEN];
    for pid in pids {
        if let Err(reason) = scan_process(pid, &mut entries, &mut walk.by_inode) {
            walk.incomplete(reason);
        }
    }
    walk
}

/// Why `/proc` may not list every process that holds a socket of this
/// network namespace, from `/proc/self/mountinfo` and `/proc/self/status`:
/// - we are in a child PID namespace (`NSpid:` names more than one pid), so
///   processes of the parent namespaces, which may share our network
///   namespace, are not in our `/proc`;
/// - `/proc` is mounted `hidepid=2` / `hidepid=invisible` (systemd's
///   `ProtectProc=invisible`) and we lack CAP_SYS_PTRACE, so other users'
///   processes are not listed at all (a `gid=` exemption is not looked at).
///
/// (`hidepid=1` leaves the directories listed: reading their fds fails, and
/// the walk sees that.)
pub fn hidden_processes(mountinfo: &str, status: &str) -> Option<String> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
    };
    match field("NSpid:") {
        Some(pids) if pids.split_whitespace().count() > 1 => {
            return Some(format!(
                "in a child PID namespace (NSpid: {pids}): processes outside it are not in /proc"
            ));
        }
        _ => {}
    }
    // The last mount on /proc is the one on top.
    let hidepid = mountinfo
        .lines()
        .rev()
        .find_map(|line| {
            let (mount, filesystem) = line.split_once(" - ")?;
            (mount.split_whitespace().nth(4)? == "/proc").then_some(filesystem)
        })?
        .split_whitespace()
        .nth(2)?
        .split(',')
        .find_map(|option| option.strip_prefix("hidepid="))?;
    if !matches!(hidepid, "2" | "invisible") {
        return None;
    }
    let can_ptrace = field("CapEff:")
        .and_then(|mask| u64::from_str_radix(mask, 16).ok())
        .is_some_and(|mask| mask & (1 << CAP_SYS_PTRACE) != 0);
    (!can_ptrace).then(|| {
        format!(
            "/proc is mounted hidepid={hidepid} and we lack CAP_SYS_PTRACE: \
             other users' processes are not listed"
        )
    })
}

/// An upper bound on the TCP and UDP sockets of this network namespace (so
/// on the local ports they hold), from /proc/net/sockstat and sockstat6:
/// TCP in use + TIME-WAIT + UDP in use, both families. `None` when the files
/// cannot be read.
pub fn socket_count_bound() -> Option<usize> {
    let mut total = 0usize;
    // thread-self: the calling thread's namespace (/proc/net follows the
    // process's main thread).
    for path in [
        "/proc/thread-self/net/sockstat",
        "/proc/thread-self/net/sockstat6",
    ] {
        let text = std::fs::read_to_string(path).ok()?;
        total += sockstat_bound(&text);
    }
    Some(total)
}

/// The sum of the `inuse` and `tw` fields of the TCP/UDP lines of a sockstat file.
fn sockstat_bound(text: &str) -> usize {
    text.lines()
        .filter(|line| {
            ["TCP:", "UDP:", "TCP6:", "UDP6:"]
                .iter()
                .any(|p| line.starts_with(p))
        })
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words
                .windows(2)
                .filter(|pair| pair[0] == "inuse" || pair[0] == "tw")
                .filter_map(|pair| pair[1].parse::<usize>().ok())
                .sum::<usize>()
        })
        .sum()
}

/// The ephemeral port range of the calling thread's network namespace.
pub fn local_port_range() -> io::Result<(u16, u16)> {
    let text = fs::read_to_string(LOCAL_PORT_RANGE_PATH)?;
    let mut fields = text.split_whitespace().map(str::parse::<u16>);
    match (fields.next(), fields.next(), fields.next()) {
        (Some(Ok(low)), Some(Ok(high)), None) => Ok((low, high)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{LOCAL_PORT_RANGE_PATH}: expected two ports, got {text:?}"),
        )),
    }
}

/// Distinct local ports in use by TCP/UDP sockets on `addresses` or the
/// wildcard (see [`KernelSocket::is_on`]), inside `range` (inclusive),
/// divided by the range size.
pub fn occupancy(sockets: &[KernelSocket], addresses: &[IpAddr], range: (u16, u16)) -> Occupancy {
    let (low, high) = range;
    let range_size = if high >= low {
        usize::from(high - low) + 1
    } else {
        0
    };
    // One bit per port: no allocation, whatever the number of sockets.
    let mut seen = [0u64; 65536 / 64];
    let mut used = 0;
    for socket in sockets {
        let port = socket.local.port();
        if port < low || port > high || !socket.is_on(addresses) {
            continue;
        }
        let bit = 1u64 << (port % 64);
        if let Some(word) = seen.get_mut(usize::from(port / 64)) {
            if *word & bit == 0 {
                *word |= bit;
                used += 1;
            }
        }
    }
    let percent = if range_size == 0 {
        0.0
    } else {
        used as f64 * 100.0 / range_size as f64
    };
    Occupancy {
        used,
        range_size,
        percent,
    }
}

const LOCAL_PORT_RANGE_PATH: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// `linux/capability.h`: the bit of CAP_SYS_PTRACE in a capability mask.
const CAP_SYS_PTRACE: u32 = 19;

// Netlink and sock_diag constants (linux/netlink.h, linux/sock_diag.h).
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const SOCK_DESTROY: u16 = 21;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
/// Every state, including TCP_NEW_SYN_RECV (12) and, since Linux 6.5,
/// TCP_BOUND_INACTIVE (13): TCP sockets bound but neither listening nor
/// connected, which hold a port too.
const ALL_STATES: u32 = u32::MAX;

/// A netlink dump hands out at most about 32 KiB per datagram (one skb per
/// `recv`); twice that leaves room, and a longer one is reported, not cut.
const RECEIVE_BUFFER_LEN: usize = 64 * 1024;
/// Kernel-side queue of the diag socket: the dump stops filling while the
/// queue cannot take another ~32 KiB datagram, which a small
/// `net.core.rmem_default` would make frequent.
const SOCKET_RECEIVE_BUFFER: usize = 1024 * 1024;

/// `struct nlmsghdr`, native byte order.
mod header {
    use std::ops::Range;
    pub const LEN: Range<usize> = 0..4;
    pub const TYPE: Range<usize> = 4..6;
    pub const FLAGS: Range<usize> = 6..8;
    pub const SEQ: Range<usize> = 8..12;
    pub const SIZE: usize = 16;
    /// `struct nlmsgerr` starts with the (negative) errno.
    pub const ERROR: Range<usize> = 16..20;
}

/// `struct inet_diag_sockid` inside the request and the response: ports and
/// addresses in network order, interface and cookie in native order.
mod sockid {
    use std::ops::Range;
    pub const SPORT: Range<usize> = 0..2;
    pub const DPORT: Range<usize> = 2..4;
    pub const SRC: Range<usize> = 4..20;
    pub const DST: Range<usize> = 20..36;
    pub const IF: Range<usize> = 36..40;
    pub const COOKIE_LOW: Range<usize> = 40..44;
    pub const COOKIE_HIGH: Range<usize> = 44..48;
    pub const SIZE: usize = 48;
}

/// `struct inet_diag_req_v2`.
mod request {
    pub const FAMILY: usize = 0;
    pub const PROTOCOL: usize = 1;
    pub const STATES: std::ops::Range<usize> = 4..8;
    pub const ID: usize = 8;
    pub const SIZE: usize = ID + super::sockid::SIZE;
}

/// `struct inet_diag_msg` (the attributes after it are not read).
mod response {
    pub const FAMILY: usize = 0;
    pub const STATE: usize = 1;
    pub const ID: usize = 4;
    pub const UID: std::ops::Range<usize> = 64..68;
    pub const INODE: std::ops::Range<usize> = 68..72;
    pub const SIZE: usize = 72;
}

const REQUEST_MESSAGE_LEN: usize = header::SIZE + request::SIZE;

/// A NETLINK_SOCK_DIAG socket with its receive buffer.
struct DiagSocket {
    fd: OwnedFd,
    buffer: Vec<u8>,
    sequence: u32,
}

impl DiagSocket {
    fn open() -> io::Result<DiagSocket> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            socket::SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )
        .map_err(|errno| os_error(errno, "opening a NETLINK_SOCK_DIAG socket"))?;
        // Best effort: capped by net.core.rmem_max, and the default works.
        let _ = socket::setsockopt(&fd, socket::sockopt::RcvBuf, &SOCKET_RECEIVE_BUFFER);
        Ok(DiagSocket {
            fd,
            buffer: vec![0; RECEIVE_BUFFER_LEN],
            sequence: 0,
        })
    }

    fn send(&mut self, message_type: u16, flags: u16, id: &DiagRequest) -> io::Result<u32> {
        self.sequence = self.sequence.wrapping_add(1);
        let message = id.emit(message_type, flags, self.sequence);
        let kernel = NetlinkAddr::new(0, 0);
        loop {
            match socket::sendto(self.fd.as_raw_fd(), &message, &kernel, MsgFlags::empty()) {
                Ok(_) => return Ok(self.sequence),
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(os_error(errno, "sending a sock_diag request")),
            }
        }
    }

    /// Receives one datagram into `self.buffer` and returns its length.
    fn receive(&mut self) -> io::Result<usize> {
        loop {
            // MSG_TRUNC: the result is the datagram's real length, so a
            // datagram longer than the buffer is seen instead of cut.
            match socket::recv(self.fd.as_raw_fd(), &mut self.buffer, MsgFlags::MSG_TRUNC) {
                Ok(len) if len > self.buffer.len() => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "sock_diag datagram of {len} bytes exceeds the {} byte buffer",
                            self.buffer.len()
                        ),
                    ))
                }
                Ok(len) => return Ok(len),
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(os_error(errno, "receiving sock_diag messages")),
            }
        }
    }

    /// Dumps every `proto` socket of `family` into `sockets`.
    fn dump(
        &mut self,
        family: u8,
        proto: Proto,
        sockets: &mut Vec<KernelSocket>,
    ) -> io::Result<()> {
        let request = DiagRequest::dump(family, proto);
        let sequence = self.send(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, &request)?;
        loop {
            let len = self.receive()?;
            let datagram = self.buffer.get(..len).unwrap_or_default();
            for message in Messages::new(datagram) {
                let message = message?;
                if message.sequence != sequence {
                    continue;
                }
                match message.kind {
                    SOCK_DIAG_BY_FAMILY => {
                        if let Some(socket) = parse_socket(proto, message.payload) {
                            sockets.push(socket);
                        }
                    }
                    // The dump's end carries an int: 0, or the negative errno
                    // that stopped it.
                    NLMSG_DONE => {
                        return match read_i32(message.payload, 0..4) {
                            Some(code) if code < 0 => {
                                Err(dump_error(code.saturating_neg(), family, proto))
                            }
                            _ => Ok(()),
                        }
                    }
                    // 0 would be an acknowledgement, which a dump is not asked for.
                    NLMSG_ERROR => match message.error_code() {
                        Some(0) => {}
                        code => {
                            let errno = code.unwrap_or(-libc::EPROTO).saturating_neg();
                            return Err(dump_error(errno, family, proto));
                        }
                    },
                    _ => {}
                }
            }
        }
    }

    fn destroy(&mut self, socket: &KernelSocket) -> io::Result<()> {
        let request = DiagRequest::exact(socket);
        let sequence = self.send(SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, &request)?;
        loop {
            let len = self.receive()?;
            let datagram = self.buffer.get(..len).unwrap_or_default();
            for message in Messages::new(datagram) {
                let message = message?;
                if message.sequence != sequence || message.kind != NLMSG_ERROR {
                    continue;
                }
                return match message.error_code() {
                    Some(0) => Ok(()),
                    Some(code) => Err(io::Error::from_raw_os_error(code.saturating_neg())),
                    None => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink error message",
                    )),
                };
            }
        }
    }
}

/// The `inet_diag_req_v2` fields we set.
struct DiagRequest {
    family: u8,
    protocol: u8,
    states: u32,
    source_port: u16,
    destination_port: u16,
    source: [u8; 16],
    destination: [u8; 16],
    interface: u32,
    cookie: [u32; 2],
}

/// "Any socket" for the cookie in a dump request (INET_DIAG_NOCOOKIE).
const NO_COOKIE: [u32; 2] = [u32::MAX, u32::MAX];

impl DiagRequest {
    fn dump(family: u8, proto: Proto) -> DiagRequest {
        DiagRequest {
            family,
            protocol: ip_protocol(proto),
            states: ALL_STATES,
            source_port: 0,
            destination_port: 0,
            source: [0; 16],
            destination: [0; 16],
            interface: 0,
            cookie: NO_COOKIE,
        }
    }

    fn exact(socket: &KernelSocket) -> DiagRequest {
        let remote = socket.remote.unwrap_or_else(|| match socket.local {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        });
        DiagRequest {
            family: socket.family,
            protocol: ip_protocol(socket.proto),
            states: ALL_STATES,
            source_port: socket.local.port(),
            destination_port: remote.port(),
            source: address_bytes(socket.local.ip()),
            destination: address_bytes(remote.ip()),
            interface: socket.interface,
            cookie: socket.cookie,
        }
    }

    fn emit(&self, message_type: u16, flags: u16, sequence: u32) -> [u8; REQUEST_MESSAGE_LEN] {
        let mut message = [0u8; REQUEST_MESSAGE_LEN];
        let (head, body) = message.split_at_mut(header::SIZE);
        put(
            head,
            header::LEN,
            &(REQUEST_MESSAGE_LEN as u32).to_ne_bytes(),
        );
        put(head, header::TYPE, &message_type.to_ne_bytes());
        put(head, header::FLAGS, &flags.to_ne_bytes());
        put(head, header::SEQ, &sequence.to_ne_bytes());
        // The port id stays 0: the kernel fills in ours.
        put(body, request::FAMILY..request::FAMILY + 1, &[self.family]);
        put(
            body,
            request::PROTOCOL..request::PROTOCOL + 1,
            &[self.protocol],
        );
        put(body, request::STATES, &self.states.to_ne_bytes());
        let id = body.get_mut(request::ID..).unwrap_or_default();
        put(id, sockid::SPORT, &self.source_port.to_be_bytes());
        put(id, sockid::DPORT, &self.destination_port.to_be_bytes());
        put(id, sockid::SRC, &self.source);
        put(id, sockid::DST, &self.destination);
        put(id, sockid::IF, &self.interface.to_ne_bytes());
        put(id, sockid::COOKIE_LOW, &self.cookie[0].to_ne_bytes());
        put(id, sockid::COOKIE_HIGH, &self.cookie[1].to_ne_bytes());
        message
    }
}

/// Copies `bytes` into `buffer[range]`; the ranges used are constants inside
/// the fixed-size request, so a mismatch would be a bug caught by the tests,
/// and it writes nothing rather than panicking.
fn put(buffer: &mut [u8], range: std::ops::Range<usize>, bytes: &[u8]) {
    if let Some(slot) = buffer.get_mut(range) {
        if slot.len() == bytes.len() {
            slot.copy_from_slice(bytes);
        }
    }
}

fn ip_protocol(proto: Proto) -> u8 {
    match proto {
        Proto::Tcp => libc::IPPROTO_TCP as u8,
        Proto::Udp => libc::IPPROTO_UDP as u8,
    }
}

/// An address as `inet_diag_sockid` holds it: IPv4 in the first 4 bytes.
fn address_bytes(address: IpAddr) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    match address {
        IpAddr::V4(v4) => put(&mut bytes, 0..4, &v4.octets()),
        IpAddr::V6(v6) => bytes = v6.octets(),
    }
    bytes
}

/// One netlink message of a datagram.
struct Message<'a> {
    kind: u16,
    sequence: u32,
    /// The bytes after the header, up to the message's own length.
    payload: &'a [u8],
    whole: &'a [u8],
}

impl Message<'_> {
    /// The errno of an NLMSG_ERROR message (0 for an acknowledgement).
    fn error_code(&self) -> Option<i32> {
        read_i32(self.whole, header::ERROR)
    }
}

/// Iterates the netlink messages packed in one datagram; a malformed length
/// ends the walk with an error.
struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    fn new(datagram: &'a [u8]) -> Messages<'a> {
        Messages { rest: datagram }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = io::Result<Message<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let declared = read_u32(self.rest, header::LEN).map(|len| len as usize);
        let (Some(len), Some(kind), Some(sequence)) = (
            declared,
            read_u16(self.rest, header::TYPE),
            read_u32(self.rest, header::SEQ),
        ) else {
            self.rest = &[];
            return Some(Err(malformed("netlink header truncated")));
        };
        let (Some(whole), true) = (self.rest.get(..len), len >= header::SIZE) else {
            self.rest = &[];
            return Some(Err(malformed("netlink message length out of bounds")));
        };
        let payload = whole.get(header::SIZE..).unwrap_or_default();
        // Messages are 4-byte aligned; the last one may lack its padding.
        let aligned = len.saturating_add(3) & !3;
        self.rest = self.rest.get(aligned..).unwrap_or_default();
        Some(Ok(Message {
            kind,
            sequence,
            payload,
            whole,
        }))
    }
}

/// Reads one `inet_diag_msg`; `None` for a short one or a family other
/// than AF_INET/AF_INET6.
fn parse_socket(proto: Proto, payload: &[u8]) -> Option<KernelSocket> {
    if payload.len() < response::SIZE {
        return None;
    }
    let family = *payload.get(response::FAMILY)?;
    let state = SocketState::from_kernel(*payload.get(response::STATE)?);
    let id = payload.get(response::ID..response::ID + sockid::SIZE)?;
    let local_port = u16::from_be_bytes(id.get(sockid::SPORT)?.try_into().ok()?);
    let remote_port = u16::from_be_bytes(id.get(sockid::DPORT)?.try_into().ok()?);
    let (local, remote) = match i32::from(family) {
        libc::AF_INET => (
            IpAddr::V4(ipv4_at(id, sockid::SRC.start)?),
            IpAddr::V4(ipv4_at(id, sockid::DST.start)?),
        ),
        libc::AF_INET6 => (
            IpAddr::V6(ipv6_at(id, sockid::SRC)?),
            IpAddr::V6(ipv6_at(id, sockid::DST)?),
        ),
        _ => return None,
    };
    let remote = (!remote.is_unspecified() || remote_port != 0)
        .then_some(SocketAddr::new(remote, remote_port));
    Some(KernelSocket {
        proto,
        family,
        local: SocketAddr::new(local, local_port),
        remote,
        state,
        inode: u64::from(read_u32(payload, response::INODE)?),
        uid: read_u32(payload, response::UID)?,
        cookie: [
            read_u32(id, sockid::COOKIE_LOW)?,
            read_u32(id, sockid::COOKIE_HIGH)?,
        ],
        interface: read_u32(id, sockid::IF)?,
    })
}

fn ipv4_at(bytes: &[u8], start: usize) -> Option<Ipv4Addr> {
    let octets: [u8; 4] = bytes.get(start..start.checked_add(4)?)?.try_into().ok()?;
    Some(Ipv4Addr::from(octets))
}

fn ipv6_at(bytes: &[u8], range: std::ops::Range<usize>) -> Option<Ipv6Addr> {
    let octets: [u8; 16] = bytes.get(range)?.try_into().ok()?;
    Some(Ipv6Addr::from(octets))
}

fn read_u16(bytes: &[u8], range: std::ops::Range<usize>) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(range)?.try_into().ok()?))
}

fn read_u32(bytes: &[u8], range: std::ops::Range<usize>) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(range)?.try_into().ok()?))
}

fn read_i32(bytes: &[u8], range: std::ops::Range<usize>) -> Option<i32> {
    Some(i32::from_ne_bytes(bytes.get(range)?.try_into().ok()?))
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag: {what}"))
}

fn os_error(errno: Errno, what: &str) -> io::Error {
    let error = io::Error::from(errno);
    io::Error::new(error.kind(), format!("{what}: {error}"))
}

fn dump_error(errno: i32, family: u8, proto: Proto) -> io::Error {
    let family = if i32::from(family) == libc::AF_INET6 {
        "IPv6"
    } else {
        "IPv4"
    };
    os_error(
        Errno::from_raw(errno),
        &format!("dumping {family} {proto} sockets"),
    )
}

/// Adds the socket and a hint to the kernel's error, keeping its kind;
/// ESTALE (a newer socket holds the addresses) counts as `NotFound`.
fn destroy_error(socket: &KernelSocket, error: io::Error) -> io::Error {
    let hint = match error.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESTALE) => " (the socket no longer exists)",
        Some(libc::EPERM) | Some(libc::EACCES) => " (needs CAP_NET_ADMIN)",
        Some(libc::EOPNOTSUPP) => " (kernel built without CONFIG_INET_DIAG_DESTROY?)",
        _ => "",
    };
    // The kinds `DestroyFailure::of` reads, whatever std maps these to.
    let kind = match error.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESTALE) => io::ErrorKind::NotFound,
        Some(libc::EPERM) | Some(libc::EACCES) => io::ErrorKind::PermissionDenied,
        Some(libc::EOPNOTSUPP) => io::ErrorKind::Unsupported,
        _ => error.kind(),
    };
    io::Error::new(kind, format!("destroying {socket}: {error}{hint}"))
}

/// getdents64 buffer: a process with thousands of fds is read in a few calls.
const DIRENT_BUFFER_LEN: usize = 32 * 1024;

/// `struct linux_dirent64`: inode, offset, record length, type, name.
mod dirent {
    pub const RECLEN: std::ops::Range<usize> = 16..18;
    pub const NAME: usize = 19;
}

/// The process ended (or is ending): its fds are no longer anyone's.
fn vanished(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::NotFound || error.raw_os_error() == Some(libc::ESRCH)
}

/// Records every socket fd of `pid` in `map` (keeping an earlier owner).
/// Err names the first thing that could not be read (a process that
/// vanished is no error); the fds read before it, and after an unreadable
/// link, are still recorded.
fn scan_process(pid: u32, entries: &mut [u8], map: &mut HashMap<u64, Owner>) -> Result<(), String> {
    let directory = match File::open(format!("/proc/{pid}/fd")) {
        Ok(directory) => directory,
        Err(error) if vanished(&error) => return Ok(()),
        Err(error) => return Err(format!("/proc/{pid}/fd: {error}")),
    };
    let mut result = Ok(());
    // The owner is read once, at the process's first new socket.
    let mut owner: Option<Result<Option<Owner>, String>> = None;
    loop {
        // SAFETY: getdents64 writes at most `entries.len()` bytes into
        // `entries`, which outlives the call; the fd is open.
        let read = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                directory.as_raw_fd(),
                entries.as_mut_ptr(),
                entries.len(),
            )
        };
        let Ok(read) = usize::try_from(read) else {
            let error = io::Error::last_os_error();
            return if vanished(&error) {
                result
            } else {
                result.and(Err(format!("reading /proc/{pid}/fd: {error}")))
            };
        };
        if read == 0 {
            return result;
        }
        let mut rest = entries.get(..read).unwrap_or_default();
        while let Some(reclen) = read_u16(rest, dirent::RECLEN).map(usize::from) {
            let Some(record) = rest.get(..reclen).filter(|_| reclen > dirent::NAME) else {
                return result.and(Err(format!("/proc/{pid}/fd: malformed directory entry")));
            };
            rest = rest.get(reclen..).unwrap_or_default();
            let Some(name) = record
                .get(dirent::NAME..)
                .and_then(|name| CStr::from_bytes_until_nul(name).ok())
            else {
                continue;
            };
            let inode = match socket_inode(&directory, name) {
                Ok(Some(inode)) => inode,
                Ok(None) => continue,
                Err(error) if vanished(&error) => continue,
                Err(error) => {
                    let fd = name.to_string_lossy();
                    result = result.and(Err(format!("/proc/{pid}/fd/{fd}: {error}")));
                    continue;
                }
            };
            if map.contains_key(&inode) {
                continue;
            }
            match owner.get_or_insert_with(|| read_owner(pid)) {
                Ok(Some(found)) => {
                    map.insert(inode, found.clone());
                }
                // Ended since its fds were read: its sockets went with it
                // (or are held by another process, which the walk sees).
                Ok(None) => return result,
                Err(reason) => {
                    let reason = reason.clone();
                    return result.and(Err(reason));
                }
            }
        }
    }
}

/// The inode of fd `name` in the `/proc/<pid>/fd` directory if it is a
/// socket (its link reads `socket:[N]`), None if it is something else.
fn socket_inode(directory: &File, name: &CStr) -> io::Result<Option<u64>> {
    let mut target = [0u8; 32];
    // SAFETY: readlinkat writes at most `target.len()` bytes into `target`;
    // `name` is NUL-terminated and the directory fd is open.
    let len = unsafe {
        libc::readlinkat(
            directory.as_raw_fd(),
            name.as_ptr(),
            target.as_mut_ptr().cast(),
            target.len(),
        )
    };
    let Ok(len) = usize::try_from(len) else {
        let error = io::Error::last_os_error();
        // EINVAL: not a link at all ("." and "..").
        return match error.raw_os_error() {
            Some(libc::EINVAL) => Ok(None),
            _ => Err(error),
        };
    };
    Ok(target
        .get(..len)
        .and_then(|link| link.strip_prefix(b"socket:["))
        .and_then(|link| link.strip_suffix(b"]"))
        .and_then(parse_decimal))
}

/// The process `pid`; None if it has ended, Err if it cannot be read.
fn read_owner(pid: u32) -> Result<Option<Owner>, String> {
    let read = |what: &str| {
        let path = format!("/proc/{pid}/{what}");
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(error) if vanished(&error) => Ok(None),
            Err(error) => Err(format!("{path}: {error}")),
        }
    };
    let (Some(comm), Some(status)) = (read("comm")?, read("status")?) else {
        return Ok(None);
    };
    // "Uid:\treal\teffective\tsaved\tfs"
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|effective| effective.parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status: no effective Uid"))?;
    Ok(Some(Owner {
        pid,
        comm: comm.trim_end_matches('\n').to_owned(),
        exe: fs::read_link(format!("/proc/{pid}/exe")).ok(),
        uid,
    }))
}

/// A non-empty run of ASCII digits that fits `T`.
fn parse_decimal<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::Netlink;
    use crate::netns::{in_netns_async, run_in_new_netns};
    use std::collections::HashSet;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    const TEST_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const TEST_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

    /// A test that needs a namespace fails, naming the privilege, when run
    /// without root; it never passes by skipping.
    fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        run_in_new_netns(f).unwrap_or_else(|error| panic!("{error}"))
    }

    /// The sockfs inode behind one of our fds, from `/proc/self/fd`.
    fn fd_inode(fd: &impl AsRawFd) -> u64 {
        let link = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("readlink");
        let link = link.as_os_str().as_bytes();
        link.strip_prefix(b"socket:[")
            .and_then(|rest| rest.strip_suffix(b"]"))
            .and_then(parse_decimal)
            .unwrap_or_else(|| panic!("not a socket: {link:?}"))
    }

    fn find(
        sockets: &[KernelSocket],
        proto: Proto,
        local: SocketAddr,
        remote: Option<SocketAddr>,
    ) -> KernelSocket {
        let found: Vec<&KernelSocket> = sockets
            .iter()
            .filter(|s| s.proto == proto && s.local == local && s.remote == remote)
            .collect();
        match found.as_slice() {
            [one] => **one,
            _ => panic!("{proto} {local} -> {remote:?}: found {found:?} in {sockets:#?}"),
        }
    }

    fn errno(error: &io::Error) -> Option<i32> {
        error.raw_os_error()
    }

    /// A TCP socket bound without SO_REUSEADDR (std sets it on listeners),
    /// so that binding shows whether the port is really free.
    fn bind_tcp_strict(address: SocketAddr) -> io::Result<socket2::Socket> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(address),
            socket2::Type::STREAM,
            None,
        )?;
        socket.bind(&address.into())?;
        Ok(socket)
    }

    fn own_comm() -> String {
        fs::read_to_string("/proc/self/comm")
            .expect("comm")
            .trim_end()
            .to_owned()
    }

    // ---- without the kernel ----

    /// Run by `an_unprivileged_walk_is_incomplete` as another user; does
    /// nothing in a normal run.
    #[test]
    fn report_the_owners_walk_when_asked() {
        if std::env::var_os(WALK_REPORT).is_none() {
            return;
        }
        let walk = owners();
        println!(
            "walk: complete={} why={}",
            walk.complete,
            walk.why_incomplete.unwrap_or_default()
        );
    }

    const WALK_REPORT: &str = "PORTDIAL_TEST_REPORT_OWNERS_WALK";

    /// The daemon run as a dedicated user (or without CAP_SYS_PTRACE /
    /// CAP_DAC_READ_SEARCH) cannot read root's `/proc/<pid>/fd`: the walk
    /// must say it is incomplete, not that root's sockets have no owner.
    #[test]
    fn an_unprivileged_walk_is_incomplete() {
        use std::os::unix::process::CommandExt;
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root, to run a walk as nobody"
        );
        let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "ports::sockets::tests::report_the_owners_walk_when_asked",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WALK_REPORT, "1")
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run the walk as nobody");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        let report = stdout
            .lines()
            .find_map(|line| line.split_once("walk: ").map(|(_, report)| report))
            .unwrap_or_else(|| panic!("no report in {stdout}"));
        eprintln!("the walk as nobody: {report}");
        assert!(report.starts_with("complete=false why=/proc/"), "{report}");
        assert!(report.contains("Permission denied"), "{report}");
    }

    /// `/proc/self/mountinfo` and `/proc/self/status` lines, built after the
    /// kernel's formats (not taken from a machine).
    #[test]
    fn hidden_processes_from_pid_namespaces_and_hidepid() {
        let proc_mount = |options: &str| {
            format!(
                "21 26 0:5 / /sys rw,nosuid - sysfs sysfs rw\n\
                 22 26 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc {options}\n"
            )
        };
        let status = |nspid: &str, capeff: &str| {
            format!("Name:\tportdial\nNSpid:\t{nspid}\nCapEff:\t{capeff}\n")
        };
        let root = status("4242", "000001ffffffffff");
        let no_ptrace = status("4242", "000001fffff7ffff");
        assert_eq!(hidden_processes(&proc_mount("rw"), &root), None);
        assert_eq!(hidden_processes(&proc_mount("rw"), &no_ptrace), None);
        // hidepid=1 lists the directories; reading them fails, which the walk sees.
        assert_eq!(
            hidden_processes(&proc_mount("rw,hidepid=1"), &no_ptrace),
            None
        );
        for hidepid in ["2", "invisible"] {
            let mount = proc_mount(&format!("rw,hidepid={hidepid}"));
            assert_eq!(hidden_processes(&mount, &root), None);
            let reason = hidden_processes(&mount, &no_ptrace).expect("hidden");
            assert!(
                reason.starts_with(&format!("/proc is mounted hidepid={hidepid}")),
                "{reason}"
            );
        }
        // The mount on top counts.
        let stacked = format!(
            "{}30 22 0:40 / /proc rw - proc proc rw,hidepid=invisible\n",
            proc_mount("rw")
        );
        assert!(hidden_processes(&stacked, &no_ptrace).is_some());
        // A pid in a child namespace: our /proc shows only that namespace.
        let reason = hidden_processes(&proc_mount("rw"), &status("917\t1", "000001ffffffffff"))
            .expect("hidden");
        assert!(reason.contains("child PID namespace"), "{reason}");
        // Unreadable text is not taken as hidden.
        assert_eq!(hidden_processes("", ""), None);
    }

    #[test]
    fn destroy_failures_by_errno() {
        let socket = synthetic(Proto::Tcp, "192.0.2.1:40000");
        let failure = |errno| {
            DestroyFailure::of(&destroy_error(&socket, io::Error::from_raw_os_error(errno)))
        };
        assert_eq!(failure(libc::ENOENT), DestroyFailure::Gone);
        assert_eq!(failure(libc::ESTALE), DestroyFailure::Gone);
        assert_eq!(failure(libc::EOPNOTSUPP), DestroyFailure::Refused);
        assert_eq!(failure(libc::EPERM), DestroyFailure::Refused);
        assert_eq!(failure(libc::EACCES), DestroyFailure::Refused);
        assert_eq!(failure(libc::EINVAL), DestroyFailure::Other);
        assert_eq!(failure(libc::ENOBUFS), DestroyFailure::Other);
        let text = destroy_error(&socket, io::Error::from_raw_os_error(libc::ESTALE)).to_string();
        assert!(text.contains("no longer exists"), "{text}");
    }

    #[test]
    fn states_round_trip_and_print_like_ss() {
        for value in 0..=u8::MAX {
            assert_eq!(SocketState::from_kernel(value).to_kernel(), value);
        }
        assert_eq!(SocketState::from_kernel(1).to_string(), "ESTAB");
        assert_eq!(SocketState::from_kernel(2).to_string(), "SYN-SENT");
        assert_eq!(SocketState::from_kernel(7).to_string(), "UNCONN");
        assert_eq!(SocketState::from_kernel(8).to_string(), "CLOSE-WAIT");
        assert_eq!(SocketState::from_kernel(10).to_string(), "LISTEN");
        assert_eq!(SocketState::from_kernel(13).to_string(), "UNKNOWN(13)");
    }

    fn synthetic(proto: Proto, local: &str) -> KernelSocket {
        let local: SocketAddr = local.parse().expect("address");
        KernelSocket {
            proto,
            family: if local.is_ipv4() {
                libc::AF_INET as u8
            } else {
                libc::AF_INET6 as u8
            },
            local,
            remote: None,
            state: SocketState::Close,
            inode: 1,
            uid: 0,
            cookie: [1, 0],
            interface: 0,
        }
    }

    #[test]
    fn is_on_matches_address_wildcard_and_mapped_form() {
        let v4 = [IpAddr::V4(TEST_V4)];
        let v6 = [IpAddr::V6(TEST_V6)];
        let on = |local: &str, addresses: &[IpAddr]| synthetic(Proto::Udp, local).is_on(addresses);
        assert!(on("192.0.2.1:53", &v4));
        assert!(!on("192.0.2.2:53", &v4));
        assert!(on("0.0.0.0:53", &v4));
        assert!(
            !on("0.0.0.0:53", &v6),
            "an IPv4 wildcard is not on an IPv6 address"
        );
        assert!(on("[::]:53", &v4), "a dual-stack wildcard covers IPv4");
        assert!(on("[::]:53", &v6));
        assert!(on("[::ffff:192.0.2.1]:53", &v4));
        assert!(!on("[::ffff:192.0.2.2]:53", &v4));
        assert!(on("[2001:db8::1]:53", &v6));
        assert!(!on("[2001:db8::2]:53", &v6));
        // An address given in mapped form matches the plain IPv4 socket.
        assert!(on(
            "192.0.2.1:53",
            &["::ffff:192.0.2.1".parse().expect("address")]
        ));
        assert!(!on("0.0.0.0:53", &[]));
        assert!(!on("[::]:53", &[]));
    }

    #[test]
    fn occupancy_counts_distinct_ports_in_range_on_the_addresses() {
        let sockets = [
            synthetic(Proto::Udp, "192.0.2.1:40001"),
            synthetic(Proto::Tcp, "192.0.2.1:40001"), // same port, counted once
            synthetic(Proto::Tcp, "0.0.0.0:40002"),
            synthetic(Proto::Udp, "[::]:40003"),
            synthetic(Proto::Udp, "[::ffff:192.0.2.1]:40004"),
            synthetic(Proto::Udp, "192.0.2.2:40005"), // another address
            synthetic(Proto::Udp, "192.0.2.1:39999"), // below the range
            synthetic(Proto::Udp, "192.0.2.1:40010"), // above the range
        ];
        let occupancy = occupancy(&sockets, &[IpAddr::V4(TEST_V4)], (40000, 40009));
        assert_eq!(
            occupancy,
            Occupancy {
                used: 4,
                range_size: 10,
                percent: 40.0
            }
        );
        let empty = super::occupancy(&sockets, &[IpAddr::V4(TEST_V4)], (2, 1));
        assert_eq!((empty.used, empty.range_size, empty.percent), (0, 0, 0.0));
        let whole = super::occupancy(&sockets, &[IpAddr::V4(TEST_V4)], (0, u16::MAX));
        assert_eq!((whole.used, whole.range_size), (6, 65536));
    }

    /// A request laid out as `struct inet_diag_req_v2` after a `nlmsghdr`
    /// (bytes built here from the C layout, not captured).
    #[test]
    fn destroy_request_layout() {
        let mut socket = synthetic(Proto::Tcp, "192.0.2.1:40000");
        socket.remote = Some("198.51.100.7:443".parse().expect("address"));
        socket.interface = 3;
        socket.cookie = [0x1122_3344, 0x5566_7788];
        let bytes = DiagRequest::exact(&socket).emit(SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, 9);
        let mut expected = Vec::new();
        expected.extend_from_slice(&72u32.to_ne_bytes());
        expected.extend_from_slice(&21u16.to_ne_bytes());
        expected.extend_from_slice(&5u16.to_ne_bytes());
        expected.extend_from_slice(&9u32.to_ne_bytes());
        expected.extend_from_slice(&0u32.to_ne_bytes());
        expected.extend_from_slice(&[2, 6, 0, 0]);
        expected.extend_from_slice(&u32::MAX.to_ne_bytes());
        expected.extend_from_slice(&[0x9c, 0x40, 0x01, 0xbb]);
        expected.extend_from_slice(&[192, 0, 2, 1]);
        expected.extend_from_slice(&[0; 12]);
        expected.extend_from_slice(&[198, 51, 100, 7]);
        expected.extend_from_slice(&[0; 12]);
        expected.extend_from_slice(&3u32.to_ne_bytes());
        expected.extend_from_slice(&0x1122_3344u32.to_ne_bytes());
        expected.extend_from_slice(&0x5566_7788u32.to_ne_bytes());
        assert_eq!(bytes.as_slice(), expected.as_slice());
    }

    /// An `inet_diag_msg` built from the C layout (not captured; the real
    /// kernel's are parsed by the namespace tests below).
    fn built_response() -> Vec<u8> {
        let mut message = vec![libc::AF_INET6 as u8, 10, 0, 0];
        message.extend_from_slice(&[0x1f, 0x90, 0, 0]); // port 8080, no remote
        message.extend_from_slice(&TEST_V6.octets());
        message.extend_from_slice(&[0; 16]);
        message.extend_from_slice(&2u32.to_ne_bytes()); // interface
        message.extend_from_slice(&7u32.to_ne_bytes()); // cookie
        message.extend_from_slice(&8u32.to_ne_bytes());
        message.extend_from_slice(&[0; 12]); // expires, rqueue, wqueue
        message.extend_from_slice(&1000u32.to_ne_bytes()); // uid
        message.extend_from_slice(&12345u32.to_ne_bytes()); // inode
        message
    }

    #[test]
    fn response_parses_and_short_ones_are_skipped() {
        let message = built_response();
        let socket = parse_socket(Proto::Tcp, &message).expect("parse");
        assert_eq!(
            socket,
            KernelSocket {
                proto: Proto::Tcp,
                family: libc::AF_INET6 as u8,
                local: SocketAddr::new(IpAddr::V6(TEST_V6), 8080),
                remote: None,
                state: SocketState::Listen,
                inode: 12345,
                uid: 1000,
                cookie: [7, 8],
                interface: 2,
            }
        );
        for len in 0..message.len() {
            assert_eq!(
                parse_socket(Proto::Tcp, message.get(..len).unwrap_or_default()),
                None
            );
        }
        let mut other_family = message.clone();
        other_family[0] = libc::AF_UNIX as u8;
        assert_eq!(parse_socket(Proto::Tcp, &other_family), None);
    }

    #[test]
    fn netlink_walk_rejects_bad_lengths_without_panicking() {
        let mut datagram = Vec::new();
        let payload = built_response();
        datagram.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        datagram.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        datagram.extend_from_slice(&0u16.to_ne_bytes());
        datagram.extend_from_slice(&5u32.to_ne_bytes());
        datagram.extend_from_slice(&0u32.to_ne_bytes());
        datagram.extend_from_slice(&payload);
        let messages: Vec<_> = Messages::new(&datagram)
            .collect::<io::Result<_>>()
            .expect("walk");
        assert_eq!(messages.len(), 1);
        assert_eq!(
            (messages[0].kind, messages[0].sequence),
            (SOCK_DIAG_BY_FAMILY, 5)
        );
        assert_eq!(messages[0].payload, payload.as_slice());
        // Every truncation, and lengths below the header or past the end.
        for len in 1..datagram.len() {
            let result: io::Result<Vec<_>> = Messages::new(&datagram[..len]).collect();
            assert!(result.is_err(), "truncated to {len}");
        }
        for declared in [0u32, 15, u32::MAX] {
            let mut bad = datagram.clone();
            bad[..4].copy_from_slice(&declared.to_ne_bytes());
            let result: io::Result<Vec<_>> = Messages::new(&bad).collect();
            assert!(result.is_err(), "declared length {declared}");
        }
    }

    // ---- against the kernel, each in its own namespace ----

    /// What `list_sockets` must report for one of our std sockets, taken
    /// from the socket itself (getsockname/getpeername and /proc/self/fd).
    struct Expected {
        proto: Proto,
        local: SocketAddr,
        remote: Option<SocketAddr>,
        state: SocketState,
        inode: u64,
    }

    impl Expected {
        fn listener(listener: &TcpListener) -> Expected {
            Expected {
                proto: Proto::Tcp,
                local: listener.local_addr().expect("addr"),
                remote: None,
                state: SocketState::Listen,
                inode: fd_inode(listener),
            }
        }

        fn stream(stream: &TcpStream) -> Expected {
            Expected {
                proto: Proto::Tcp,
                local: stream.local_addr().expect("addr"),
                remote: Some(stream.peer_addr().expect("peer")),
                state: SocketState::Established,
                inode: fd_inode(stream),
            }
        }

        fn udp(socket: &UdpSocket) -> Expected {
            let remote = socket.peer_addr().ok();
            Expected {
                proto: Proto::Udp,
                local: socket.local_addr().expect("addr"),
                remote,
                state: if remote.is_some() {
                    SocketState::Established
                } else {
                    SocketState::Close
                },
                inode: fd_inode(socket),
            }
        }
    }

    async fn add_test_addresses() {
        let netlink = Netlink::connect().expect("netlink");
        let lo = netlink
            .link_index("lo")
            .await
            .expect("query lo")
            .expect("lo");
        netlink
            .add_ipv4(lo, TEST_V4, 32)
            .await
            .expect("add 192.0.2.1");
        netlink
            .add_ipv6(lo, TEST_V6, 128)
            .await
            .expect("add 2001:db8::1");
    }

    #[test]
    fn lists_tcp_and_udp_sockets_of_both_families_with_their_owner() {
        in_netns_async(|| async {
            add_test_addresses().await;
            let listener = TcpListener::bind((TEST_V4, 0)).expect("listen");
            let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
            let (server, _) = listener.accept().expect("accept");
            let udp_unconnected = UdpSocket::bind((TEST_V4, 0)).expect("bind udp");
            let udp_connected = UdpSocket::bind((TEST_V4, 0)).expect("bind udp");
            udp_connected
                .connect(udp_unconnected.local_addr().expect("addr"))
                .expect("connect udp");
            let listener6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).expect("listen ::1");
            let client6 =
                TcpStream::connect(listener6.local_addr().expect("addr")).expect("connect ::1");
            let (server6, _) = listener6.accept().expect("accept ::1");
            let udp6 = UdpSocket::bind((TEST_V6, 0)).expect("bind 2001:db8::1");
            // Dual-stack: an IPv6 listener on [::] accepting an IPv4 client.
            let dual = TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0)).expect("listen [::]");
            let dual_port = dual.local_addr().expect("addr").port();
            let dual_client =
                TcpStream::connect((Ipv4Addr::LOCALHOST, dual_port)).expect("connect v4");
            let (dual_server, _) = dual.accept().expect("accept v4 on [::]");

            let sockets = list_sockets().expect("list");
            let owners = owners();
            // Complete or not (even root may be denied a process's fds, as
            // a sandbox's pid 1 is here), our own sockets are found.
            eprintln!(
                "walk complete: {} {:?}",
                owners.complete, owners.why_incomplete
            );
            let uid = nix::unistd::geteuid().as_raw();
            let comm = own_comm();
            let mapped_local =
                SocketAddr::new(IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()), dual_port);
            assert_eq!(dual_server.local_addr().expect("addr"), mapped_local);
            let expectations = [
                Expected::listener(&listener),
                Expected::stream(&client),
                Expected::stream(&server),
                Expected::udp(&udp_unconnected),
                Expected::udp(&udp_connected),
                Expected::listener(&listener6),
                Expected::stream(&client6),
                Expected::stream(&server6),
                Expected::udp(&udp6),
                Expected::listener(&dual),
                Expected::stream(&dual_client),
                Expected::stream(&dual_server),
            ];
            for expected in &expectations {
                let socket = find(&sockets, expected.proto, expected.local, expected.remote);
                let family = if expected.local.is_ipv4() {
                    libc::AF_INET
                } else {
                    libc::AF_INET6
                };
                assert_eq!(
                    (
                        socket.state,
                        i32::from(socket.family),
                        socket.inode,
                        socket.uid
                    ),
                    (expected.state, family, expected.inode, uid),
                    "{socket}"
                );
                assert_eq!(socket.interface, 0, "{socket}");
                assert_ne!(socket.cookie, [0, 0], "{socket}");
                let owner = owners
                    .get(expected.inode)
                    .unwrap_or_else(|| panic!("no owner for {socket}"));
                assert_eq!(
                    (owner.pid, owner.comm.as_str(), owner.uid),
                    (std::process::id(), comm.as_str(), uid)
                );
                assert_eq!(owner.exe, fs::read_link("/proc/self/exe").ok());
            }
            assert_eq!(
                sockets.len(),
                12,
                "only this namespace's sockets: {sockets:#?}"
            );
            // The accepted dual-stack socket is reported as it is (AF_INET6,
            // ::ffff:127.0.0.1) and is on 127.0.0.1.
            let mapped = find(
                &sockets,
                Proto::Tcp,
                mapped_local,
                dual_server.peer_addr().ok(),
            );
            assert!(mapped.is_on(&[IpAddr::V4(Ipv4Addr::LOCALHOST)]));
            assert!(!mapped.is_on(&[IpAddr::V4(TEST_V4)]));
        });
    }

    #[test]
    fn a_connection_the_peer_closed_and_we_did_not_is_close_wait() {
        in_netns(|| {
            let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
            let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
            let (server, _) = listener.accept().expect("accept");
            let local = client.local_addr().expect("addr");
            let remote = client.peer_addr().expect("addr");
            drop(server);
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                let sockets = list_sockets().expect("list");
                let ours = find(&sockets, Proto::Tcp, local, Some(remote));
                if ours.state == SocketState::CloseWait {
                    assert_eq!(ours.inode, fd_inode(&client));
                    // The closed side lives on without a file: inode 0.
                    let peer = find(&sockets, Proto::Tcp, remote, Some(local));
                    assert!(
                        matches!(peer.state, SocketState::FinWait1 | SocketState::FinWait2),
                        "{peer}"
                    );
                    assert_eq!(peer.inode, 0);
                    eprintln!("after the peer's close: {ours} / {peer}");
                    break;
                }
                assert!(Instant::now() < deadline, "still {ours}");
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    }

    #[test]
    fn destroying_a_tcp_socket_aborts_it_resets_the_peer_and_frees_the_port() {
        in_netns(|| {
            let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
            let mut client =
                TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
            let (mut server, _) = listener.accept().expect("accept");
            let local = client.local_addr().expect("addr");
            let strict = bind_tcp_strict(local)
                .map(drop)
                .expect_err("the port is in use");
            assert_eq!(errno(&strict), Some(libc::EADDRINUSE));

            let sockets = list_sockets().expect("list");
            let target = find(
                &sockets,
                Proto::Tcp,
                local,
                Some(client.peer_addr().expect("addr")),
            );
            destroy(&target).expect("destroy");

            let mut buffer = [0u8; 16];
            let owner_error = client
                .read(&mut buffer)
                .expect_err("the owner's read must fail");
            assert_eq!(
                errno(&owner_error),
                Some(libc::ECONNABORTED),
                "{owner_error}"
            );
            server
                .set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            let peer_error = server
                .read(&mut buffer)
                .expect_err("the peer must see a reset");
            assert_eq!(errno(&peer_error), Some(libc::ECONNRESET), "{peer_error}");
            eprintln!("TCP destroy: owner read -> {owner_error}; peer read -> {peer_error}");

            bind_tcp_strict(local).expect("the port is free at once");
            let after = list_sockets().expect("list");
            assert!(
                !after.iter().any(|s| s.cookie == target.cookie),
                "{after:#?}"
            );
            let gone = destroy(&target).expect_err("destroying it again");
            assert_eq!(gone.kind(), io::ErrorKind::NotFound, "{gone}");
            eprintln!("destroy of a vanished TCP socket: {gone}");
        });
    }

    /// Observed on Linux 6.18: udp_abort sets the socket error to
    /// ECONNABORTED and disconnects the socket. The error is reported once,
    /// by the next recv or send_to; but send() on a socket that was connected
    /// fails with EDESTADDRREQ instead, since udp_sendmsg checks the (now
    /// lost) connection before any pending error. A kernel-chosen port is
    /// released (the socket is unhashed and its port reset to 0, and a later
    /// send_to binds a new one); an explicitly bound port stays bound.
    #[test]
    fn destroying_a_udp_socket_fails_its_next_call_with_econnaborted() {
        in_netns(|| {
            let peer = UdpSocket::bind("127.0.0.1:0").expect("bind peer");
            let peer_address = peer.local_addr().expect("addr");
            let connected = || {
                let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
                socket.connect(peer_address).expect("connect");
                socket
                    .set_read_timeout(Some(Duration::from_millis(200)))
                    .expect("timeout");
                socket
            };
            let (receiver, sender, connected_sender) = (connected(), connected(), connected());
            let pinned = UdpSocket::bind("127.0.0.1:5353").expect("bind 5353");

            let sockets = list_sockets().expect("list");
            let entry = |socket: &UdpSocket| {
                let local = socket.local_addr().expect("addr");
                find(&sockets, Proto::Udp, local, socket.peer_addr().ok())
            };
            let entries = [
                entry(&receiver),
                entry(&sender),
                entry(&connected_sender),
                entry(&pinned),
            ];
            assert!(entries[..3]
                .iter()
                .all(|e| e.state == SocketState::Established));
            for entry in &entries {
                destroy(entry).unwrap_or_else(|error| panic!("{error}"));
            }

            let mut buffer = [0u8; 16];
            let recv_error = receiver.recv(&mut buffer).expect_err("recv after destroy");
            assert_eq!(errno(&recv_error), Some(libc::ECONNABORTED), "{recv_error}");
            let again = receiver.recv(&mut buffer).expect_err("nothing to receive");
            assert_eq!(
                again.kind(),
                io::ErrorKind::WouldBlock,
                "reported once: {again}"
            );

            let send_error = sender
                .send_to(b"x", peer_address)
                .expect_err("send_to after destroy");
            assert_eq!(errno(&send_error), Some(libc::ECONNABORTED), "{send_error}");
            sender
                .send_to(b"x", peer_address)
                .expect("reported once; the socket binds anew");

            // Disconnected, its kernel-chosen port released...
            let peer_error = connected_sender.peer_addr().expect_err("disconnected");
            assert_eq!(errno(&peer_error), Some(libc::ENOTCONN));
            assert_eq!(connected_sender.local_addr().expect("addr").port(), 0);
            let connected_error = connected_sender.send(b"x").expect_err("send after destroy");
            assert_eq!(
                errno(&connected_error),
                Some(libc::EDESTADDRREQ),
                "{connected_error}"
            );
            // ...and even the failing send binds a new one (inet_sendmsg
            // autobinds before udp_sendmsg finds no destination).
            let rebound = connected_sender.local_addr().expect("addr").port();
            assert_ne!(rebound, 0);
            assert_ne!(rebound, entries[2].local.port());
            eprintln!(
                "UDP destroy: recv -> {recv_error}; send_to -> {send_error}; \
                 send on the connected socket -> {connected_error}"
            );

            let after = list_sockets().expect("list");
            assert!(
                after.iter().all(|s| s.cookie != entries[0].cookie),
                "{after:#?}"
            );
            let pinned_after = find(&after, Proto::Udp, entries[3].local, None);
            assert_eq!(
                pinned_after.cookie, entries[3].cookie,
                "still bound to 5353"
            );

            let gone = destroy(&entries[0]).expect_err("destroying it again");
            assert_eq!(gone.kind(), io::ErrorKind::NotFound, "{gone}");
            assert!(gone.to_string().contains("no longer exists"), "{gone}");
            eprintln!("destroy of a vanished UDP socket: {gone}");
        });
    }

    #[test]
    fn occupancy_of_a_narrowed_port_range() {
        in_netns(|| {
            fs::write(LOCAL_PORT_RANGE_PATH, "40000 40009")
                .expect("narrow the range in this netns");
            assert_eq!(local_port_range().expect("range"), (40000, 40009));
            let udp = |address: &str| UdpSocket::bind(address).expect(address);
            let tcp = |address: &str| TcpListener::bind(address).expect(address);
            let _held = (
                udp("127.0.0.1:40001"),
                tcp("127.0.0.1:40001"),
                tcp("127.0.0.1:40002"),
                udp("0.0.0.0:40003"),
                udp("[::]:40007"),
                udp("127.0.0.2:40005"), // another address
                udp("[::1]:40006"),     // another address
                udp("127.0.0.1:5000"),  // outside the range
                // Bound only: listed since Linux 6.5 (TCP_BOUND_INACTIVE).
                bind_tcp_strict("127.0.0.1:40008".parse().expect("address")).expect("bind"),
            );
            let ephemeral = [udp("127.0.0.1:0"), udp("127.0.0.1:0")];
            let mut expected: HashSet<u16> = [40001, 40002, 40003, 40007, 40008].into();
            for socket in &ephemeral {
                let port = socket.local_addr().expect("addr").port();
                assert!((40000..=40009).contains(&port), "ephemeral port {port}");
                expected.insert(port);
            }
            let sockets = list_sockets().expect("list");
            let bound_only = find(
                &sockets,
                Proto::Tcp,
                "127.0.0.1:40008".parse().expect("address"),
                None,
            );
            assert_eq!(bound_only.state, SocketState::Close);
            let measured = occupancy(&sockets, &[IpAddr::V4(Ipv4Addr::LOCALHOST)], (40000, 40009));
            assert_eq!(
                measured.used,
                expected.len(),
                "{expected:?} vs {sockets:#?}"
            );
            assert_eq!(measured.range_size, 10);
            assert!((measured.percent - expected.len() as f64 * 10.0).abs() < 1e-9);
            eprintln!("occupancy: {measured:?}");
        });
        // The range written above belonged to that namespace only.
        assert_ne!(local_port_range().expect("range"), (40000, 40009));
    }

    /// Raises RLIMIT_NOFILE's soft (and if needed hard) limit to at least
    /// `wanted` and restores the old one when dropped.
    struct FileLimit(libc::rlimit);

    impl FileLimit {
        fn raise(wanted: libc::rlim_t) -> FileLimit {
            let mut old = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes only `old`.
            assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
            let new = libc::rlimit {
                rlim_cur: old.rlim_cur.max(wanted),
                rlim_max: old.rlim_max.max(wanted),
            };
            // SAFETY: setrlimit reads only `new`.
            let result = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) };
            assert_eq!(
                result,
                0,
                "raise RLIMIT_NOFILE: {}",
                io::Error::last_os_error()
            );
            FileLimit(old)
        }
    }

    impl Drop for FileLimit {
        fn drop(&mut self) {
            // SAFETY: setrlimit reads only the saved limit.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.0) };
        }
    }

    #[test]
    fn lists_ten_thousand_sockets() {
        const COUNT: usize = 10_000;
        let _limit = FileLimit::raise(COUNT as libc::rlim_t + 2048);
        in_netns(|| {
            let sockets: Vec<UdpSocket> = (0..COUNT)
                .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
                .collect();
            let ports: HashSet<u16> = sockets
                .iter()
                .map(|s| s.local_addr().expect("addr").port())
                .collect();
            let inodes: HashSet<u64> = sockets.iter().map(fd_inode).collect();

            let mut listing = Vec::new();
            let mut list_times = Vec::new();
            for _ in 0..3 {
                let start = Instant::now();
                listing = list_sockets().expect("list");
                list_times.push(start.elapsed());
            }
            let start = Instant::now();
            let owners = owners();
            let owners_time = start.elapsed();

            assert_eq!(listing.len(), COUNT);
            let listed: HashSet<u16> = listing.iter().map(|s| s.local.port()).collect();
            assert_eq!(listed, ports);
            assert!(listing
                .iter()
                .all(|s| inodes.contains(&s.inode) && s.state == SocketState::Close));
            let pid = std::process::id();
            assert!(inodes
                .iter()
                .all(|inode| owners.get(*inode).is_some_and(|o| o.pid == pid)));
            eprintln!(
                "{COUNT} UDP sockets: list_sockets {list_times:?}, owners() {owners_time:?} ({} inodes mapped)",
                owners.by_inode.len()
            );
        });
    }

    #[test]
    fn sockstat_counts_bound_the_ports_in_use() {
        // The format of /proc/net/sockstat and sockstat6 on Linux 6.18.
        let v4 = "sockets: used 8\nTCP: inuse 3 orphan 0 tw 2 alloc 4 mem 225\nUDP: inuse 5 mem 0\nUDPLITE: inuse 7\nRAW: inuse 1\n";
        let v6 = "TCP6: inuse 1\nUDP6: inuse 2\nUDPLITE6: inuse 0\nRAW6: inuse 9\n";
        assert_eq!(sockstat_bound(v4), 10);
        assert_eq!(sockstat_bound(v6), 3);
        assert!(socket_count_bound().is_some());
    }
}
