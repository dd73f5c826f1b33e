//! The port manager as the daemon runs it: scans (once after dial-up,
//! periodically, and when occupancy passes a threshold), judges every port the
//! session's addresses hold, releases the phantoms of classes in `release`
//! mode, and reports everything as events. It does no I/O of its own beyond
//! the kernel queries in [`super::sockets`]: packets it wants sent (resets to
//! the far end, injections toward local sockets) are returned to the daemon.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::classes::{Classes, Mode};
use super::judge::{judge, Context, Judgement, OwnerKnowledge, SocketView, Verdict};
use super::release;
use super::sockets::{self, DestroyFailure, KernelSocket, Owner, Owners, SocketState};
use super::table::{PortEntry, PortTable};
use super::{Direction, Proto, Tick};

#[derive(Debug, Clone, PartialEq)]
pub struct ManagerConfig {
    /// Scan once as soon as the session is up.
    pub scan_on_up: bool,
    /// Scan this often; `None`: never periodically.
    pub scan_interval: Option<Duration>,
    /// Scan whenever occupancy of the local port range passes this percentage;
    /// checked every `occupancy_check`.
    pub occupancy_threshold: Option<f64>,
    pub occupancy_check: Duration,
    /// Port entries the data path keeps at most.
    pub max_entries: usize,
    pub classes: Classes,
    /// Script run for every released port, with the event in its environment.
    pub on_release: Option<PathBuf>,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            scan_on_up: true,
            scan_interval: Some(Duration::from_secs(60)),
            occupancy_threshold: Some(80.0),
            occupancy_check: Duration::from_secs(5),
            max_entries: 16_384,
            classes: Classes::default(),
            on_release: None,
        }
    }
}

/// What started a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    SessionUp,
    Periodic,
    Occupancy,
    Request,
}

/// One row of `portdial ports`. Field names are the interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortRow {
    pub proto: Proto,
    pub local_ip: String,
    pub local_port: u16,
    pub remotes: Vec<String>,
    pub pid: Option<u32>,
    pub app: Option<String>,
    pub uid: Option<u32>,
    pub class: String,
    pub state: String,
    pub tx_packets: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_data_packets: u64,
    pub rx_data_packets: u64,
    pub last_tx_s: Option<f64>,
    pub last_rx_s: Option<f64>,
    pub verdict: Verdict,
    pub reason: String,
}

/// Events for `portdial events` subscribers, hooks and logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PortEvent {
    PortReleased {
        proto: Proto,
        port: u16,
        pid: Option<u32>,
        app: Option<String>,
        reason: String,
        /// Always "advised": the application should connect again.
        reconnect: &'static str,
        /// "sock_destroy", or "injected" when the kernel refused SOCK_DESTROY
        /// and resets were written toward the socket instead.
        method: &'static str,
    },
    /// A phantom in a class in `observe` mode: reported, left alone.
    PortPhantom {
        proto: Proto,
        port: u16,
        pid: Option<u32>,
        app: Option<String>,
        reason: String,
    },
    ScanCompleted {
        trigger: Trigger,
        sockets: usize,
        occupancy_percent: f64,
        phantoms: usize,
        released: usize,
    },
    /// After releasing: is the session up? If not the daemon re-dials.
    SessionChecked {
        up: bool,
        action: &'static str,
    },
    LinkLost {
        cause: String,
        released: usize,
    },
    RedialSucceeded {
        address: String,
        address_changed: bool,
    },
    RedialFailed {
        reason: String,
    },
}

/// What a scan or a release asks the daemon to do.
#[derive(Debug, Default)]
pub struct Outcome {
    pub events: Vec<PortEvent>,
    /// IP packets toward local sockets, for the TUN.
    pub to_tun: Vec<Vec<u8>>,
    /// IP packets toward the far ends, for the session.
    pub to_session: Vec<Vec<u8>>,
    pub rows: Vec<PortRow>,
}

/// What a scan needs from the kernel: the socket dump, the owners walk and
/// the port range. Collecting it blocks (tens of ms with many sockets), so
/// the daemon does it on the blocking pool.
pub struct Gathered {
    pub sockets: io::Result<Vec<KernelSocket>>,
    pub owners: Owners,
    pub range: Option<(u16, u16)>,
}

impl Gathered {
    /// Reads the calling thread's network namespace.
    pub fn collect() -> Gathered {
        Gathered {
            sockets: sockets::list_sockets(),
            owners: sockets::owners(),
            range: sockets::local_port_range().ok(),
        }
    }
}

pub struct PortManager {
    config: ManagerConfig,
    table: PortTable,
    epoch: Instant,
    addresses: Vec<IpAddr>,
    /// Addresses the session had before; sockets still bound to them are phantoms.
    old_addresses: Vec<IpAddr>,
    asleep_since: Option<Tick>,
    next_scan: Option<Instant>,
    next_occupancy_check: Option<Instant>,
    rows: Vec<PortRow>,
    released_total: u64,
    /// Inodes of relevant sockets a process held at the last scan.
    held_before: HashSet<u64>,
    /// The next scheduled scan is the one right after dial-up.
    up_scan_pending: bool,
}

impl PortManager {
    pub fn new(config: ManagerConfig, now: Instant) -> PortManager {
        PortManager {
            table: PortTable::new(config.max_entries),
            config,
            epoch: now,
            addresses: Vec::new(),
            old_addresses: Vec::new(),
            asleep_since: None,
            next_scan: None,
            next_occupancy_check: None,
            rows: Vec::new(),
            released_total: 0,
            held_before: HashSet::new(),
            up_scan_pending: false,
        }
    }

    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    pub fn table(&self) -> &PortTable {
        &self.table
    }

    pub fn tick(&self, now: Instant) -> Tick {
        // Wraps after 49 days; every age is computed with wrapping arithmetic.
        now.saturating_duration_since(self.epoch).as_millis() as Tick
    }

    /// The per-packet hook of the data path.
    #[inline]
    pub fn account(&mut self, now: Instant, direction: Direction, ip_packet: &[u8]) {
        let tick = self.tick(now);
        self.table.account(tick, direction, ip_packet);
    }

    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }

    /// The session's addresses changed (up with new addresses, or gone).
    /// Addresses it no longer has are remembered, so sockets left on them are
    /// judged phantom.
    pub fn set_addresses(&mut self, now: Instant, addresses: Vec<IpAddr>) {
        for old in self.addresses.drain(..) {
            if !addresses.contains(&old) && !self.old_addresses.contains(&old) {
                self.old_addresses.push(old);
            }
        }
        self.old_addresses.retain(|old| !addresses.contains(old));
        self.addresses = addresses;
        if !self.addresses.is_empty() {
            if self.config.scan_on_up {
                self.next_scan = Some(now);
                self.up_scan_pending = true;
            } else if let Some(interval) = self.config.scan_interval {
                self.next_scan = Some(now + interval);
            }
            self.next_occupancy_check = self
                .config
                .occupancy_threshold
                .map(|_| now + self.config.occupancy_check);
        } else {
            self.next_scan = None;
            self.next_occupancy_check = None;
        }
    }

    pub fn set_asleep(&mut self, now: Instant, asleep: bool) {
        self.asleep_since = if asleep {
            Some(self.asleep_since.unwrap_or(self.tick(now)))
        } else {
            None
        };
    }

    pub fn is_asleep(&self) -> bool {
        self.asleep_since.is_some()
    }

    pub fn next_wake(&self) -> Option<Instant> {
        [self.next_scan, self.next_occupancy_check]
            .into_iter()
            .flatten()
            .min()
    }

    /// The rows of the last scan.
    pub fn rows(&self) -> &[PortRow] {
        &self.rows
    }

    pub fn released_total(&self) -> u64 {
        self.released_total
    }

    /// Runs whatever is due: a scheduled scan, or the occupancy check that may
    /// start one.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Outcome> {
        let trigger = self.due(now)?;
        let gathered = Gathered::collect();
        self.finish(now, trigger, gathered)
    }

    /// Whether a scan is due now, and why. A due occupancy check only says
    /// "maybe": [`PortManager::finish`] checks the exact occupancy. Cheap (one
    /// small read of the kernel's socket counts): the expensive part is
    /// [`Gathered::collect`], which the daemon runs off its loop.
    pub fn due(&mut self, now: Instant) -> Option<Trigger> {
        if self.next_scan.is_some_and(|at| now >= at) {
            // Until the scan completes, do not ask again.
            self.next_scan = None;
            let trigger = if std::mem::take(&mut self.up_scan_pending) {
                Trigger::SessionUp
            } else {
                Trigger::Periodic
            };
            return Some(trigger);
        }
        if self.next_occupancy_check.is_some_and(|at| now >= at) {
            self.next_occupancy_check = Some(now + self.config.occupancy_check);
            let threshold = self.config.occupancy_threshold?;
            let range = sockets::local_port_range().ok()?;
            // The kernel's socket counts bound the number of ports in use:
            // dump the sockets only when they could reach the threshold.
            let range_size = usize::from(range.1.saturating_sub(range.0)) + 1;
            if let Some(bound) = sockets::socket_count_bound() {
                if (bound as f64) * 100.0 / (range_size as f64) < threshold {
                    return None;
                }
            }
            return Some(Trigger::Occupancy);
        }
        None
    }

    /// Judges (and releases) on what [`Gathered::collect`] found for a due
    /// scan. For an occupancy trigger, scans only when the exact occupancy
    /// passes the threshold.
    pub fn finish(
        &mut self,
        now: Instant,
        trigger: Trigger,
        gathered: Gathered,
    ) -> Option<Outcome> {
        let sockets = match gathered.sockets {
            Ok(sockets) => sockets,
            Err(error) => {
                tracing::warn!(%error, "cannot list the kernel's sockets");
                self.reschedule(now, trigger);
                return None;
            }
        };
        let occupancy = gathered
            .range
            .map(|range| sockets::occupancy(&sockets, &self.addresses, range).percent);
        if trigger == Trigger::Occupancy {
            let threshold = self.config.occupancy_threshold?;
            let percent = occupancy.unwrap_or(0.0);
            if percent < threshold {
                return None;
            }
            tracing::info!(
                percent,
                threshold,
                "port occupancy over the threshold: scanning"
            );
        }
        self.reschedule(now, trigger);
        Some(self.judge_sockets(
            now,
            trigger,
            true,
            &sockets,
            &gathered.owners,
            occupancy.unwrap_or(0.0),
            &mut sockets::destroy,
        ))
    }

    /// Only the scheduled scans move the schedule: a client asking for the
    /// table (or a manual scan) must not postpone or cancel them.
    fn reschedule(&mut self, now: Instant, trigger: Trigger) {
        // Nothing to scan without a session (its addresses are gone).
        if trigger != Trigger::Request && !self.addresses.is_empty() {
            self.next_scan = self.config.scan_interval.map(|interval| now + interval);
        }
    }

    /// Sockets the manager may judge: TCP/UDP on the session's addresses (old
    /// and new) or the wildcard, held by a file (TIME-WAIT and kernel-only
    /// sockets have no inode and belong to nobody to tell).
    fn relevant(&self, socket: &KernelSocket) -> bool {
        if socket.inode == 0 {
            return false;
        }
        let on_session = socket.is_on(&self.addresses) || socket.is_on(&self.old_addresses);
        // A wildcard socket counts only if its port carried session traffic.
        let wildcard = socket.local.ip().is_unspecified();
        on_session && (!wildcard || self.table.get(socket.proto, socket.local.port()).is_some())
    }

    /// Scans now: judges every relevant port, releases phantoms when
    /// `release` is set and their class is in `release` mode.
    pub fn scan(&mut self, now: Instant, trigger: Trigger, release: bool) -> Outcome {
        self.reschedule(now, trigger);
        let Gathered {
            sockets,
            owners,
            range,
        } = Gathered::collect();
        let sockets = match sockets {
            Ok(sockets) => sockets,
            Err(error) => {
                tracing::warn!(%error, "cannot list the kernel's sockets");
                return Outcome::default();
            }
        };
        let occupancy = range
            .map(|range| sockets::occupancy(&sockets, &self.addresses, range).percent)
            .unwrap_or(0.0);
        self.judge_sockets(
            now,
            trigger,
            release,
            &sockets,
            &owners,
            occupancy,
            &mut sockets::destroy,
        )
    }

    /// The body of [`PortManager::scan`], on a given listing and walk.
    #[allow(clippy::too_many_arguments)]
    fn judge_sockets(
        &mut self,
        now: Instant,
        trigger: Trigger,
        release: bool,
        sockets: &[KernelSocket],
        owners: &Owners,
        occupancy: f64,
        destroy: Destroy<'_>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        if !owners.complete {
            tracing::warn!(
                reason = owners.why_incomplete.as_deref().unwrap_or("-"),
                hint = "--name-owners keeps CAP_SYS_PTRACE, which reading them needs",
                "cannot read every /proc/PID/fd: owners unknown, judging by traffic only"
            );
        }
        let tick = self.tick(now);
        let mut phantoms = 0;
        let mut released = 0;
        let mut rows = Vec::new();
        let mut seen = Vec::new();
        // Ports whose entry is a connected socket's: an unconnected socket
        // sharing the port is not judged on that connection's traffic.
        let claimed: HashSet<(Proto, u16)> = sockets
            .iter()
            .filter(|s| self.relevant(s))
            .filter(|s| {
                self.table
                    .get(s.proto, s.local.port())
                    .is_some_and(|e| entry_is_of(s, &e))
            })
            .map(|s| (s.proto, s.local.port()))
            .collect();
        // Judge everything first (the table is only read), then act.
        let mut judged = Vec::new();
        for socket in sockets.iter().filter(|s| self.relevant(s)) {
            let owner = owners.get(socket.inode);
            let key = (socket.proto, socket.local.port());
            seen.push(key);
            // The entry is per port; on a port several connections share it
            // speaks for one of them at most.
            let entry = self
                .table
                .get(key.0, key.1)
                .filter(|e| match socket.remote {
                    Some(_) => entry_is_of(socket, e),
                    None => !claimed.contains(&key),
                });
            let remote_port = socket
                .remote
                .map(|r| r.port())
                .or(entry.as_ref().map(|e| e.remote.port));
            let class = self.config.classes.classify(
                owner.map(|o| o.comm.as_str()),
                owner.map(|o| o.uid).or(Some(socket.uid)),
                remote_port,
            );
            let view = SocketView {
                proto: socket.proto,
                local: socket.local,
                state: socket.state,
                owner: owner_knowledge(owners, socket.inode, &self.held_before),
            };
            let context = Context {
                now: tick,
                window: class.window,
                asleep_since: self.asleep_since,
                session_addresses: &self.addresses,
                previous_addresses: &self.old_addresses,
            };
            let judgement = judge(entry.as_ref(), &view, &context);
            let row = row(socket, owner, entry.as_ref(), &class.name, &judgement, tick);
            judged.push((*socket, owner.cloned(), class.mode, judgement, row));
        }
        for (socket, owner, mode, judgement, mut row) in judged {
            if judgement.verdict == Verdict::Phantom {
                phantoms += 1;
                if release && mode == Mode::Release {
                    if self.release_socket(
                        &socket,
                        owner.as_ref(),
                        &row.reason,
                        &mut outcome,
                        destroy,
                    ) {
                        released += 1;
                        row.verdict = Verdict::Released;
                    }
                } else {
                    outcome.events.push(PortEvent::PortPhantom {
                        proto: socket.proto,
                        port: socket.local.port(),
                        pid: owner.as_ref().map(|o| o.pid),
                        app: owner.as_ref().map(|o| o.comm.clone()),
                        reason: row.reason.clone(),
                    });
                }
            }
            rows.push(row);
        }
        // Entries whose socket is gone are reclaimed.
        self.table
            .retain(|entry| seen.contains(&(entry.proto, entry.port)));
        self.held_before = sockets
            .iter()
            .filter(|s| self.relevant(s) && owners.get(s.inode).is_some())
            .map(|s| s.inode)
            .collect();
        rows.sort_by_key(|r| (r.proto, r.local_port));
        tracing::info!(
            ?trigger,
            sockets = rows.len(),
            occupancy,
            phantoms,
            released,
            "port scan"
        );
        outcome.events.push(PortEvent::ScanCompleted {
            trigger,
            sockets: rows.len(),
            occupancy_percent: (occupancy * 10.0).round() / 10.0,
            phantoms,
            released,
        });
        self.rows = rows.clone();
        outcome.rows = rows;
        outcome
    }

    /// Releases one port on request (`portdial release PORT`), whatever its
    /// verdict; a listening socket is never released.
    pub fn release_port(
        &mut self,
        now: Instant,
        proto: Option<Proto>,
        port: u16,
    ) -> Result<Outcome, String> {
        let _ = now;
        let sockets = sockets::list_sockets().map_err(|e| format!("cannot list sockets: {e}"))?;
        let owners = sockets::owners();
        self.release_port_among(proto, port, &sockets, &owners, &mut sockets::destroy)
    }

    /// The body of [`PortManager::release_port`], on a given listing and walk.
    fn release_port_among(
        &mut self,
        proto: Option<Proto>,
        port: u16,
        sockets: &[KernelSocket],
        owners: &Owners,
        destroy: Destroy<'_>,
    ) -> Result<Outcome, String> {
        let (listeners, targets): (Vec<KernelSocket>, Vec<KernelSocket>) = sockets
            .iter()
            .filter(|s| {
                s.local.port() == port && proto.is_none_or(|p| p == s.proto) && self.relevant(s)
            })
            .partition(|s| s.state == SocketState::Listen);
        if targets.is_empty() {
            return Err(match listeners.first() {
                Some(listener) => format!(
                    "port {port} is held by a listening socket ({listener}): \
                     listeners are never released"
                ),
                None => format!("no socket of the session holds port {port}"),
            });
        }
        for listener in &listeners {
            tracing::info!(%listener, "leaving the listening socket of the port alone");
        }
        let mut outcome = Outcome::default();
        let mut observed = Vec::new();
        for socket in &targets {
            let owner = owners.get(socket.inode);
            let class = self.class_of(socket, owner);
            if class.mode == Mode::Observe {
                observed.push(class.name.clone());
                continue;
            }
            self.release_socket(socket, owner, "released on request", &mut outcome, destroy);
        }
        if outcome.events.is_empty() && !observed.is_empty() {
            return Err(format!(
                "port {port} is in a class in observe mode ({}): nothing released",
                observed.join(", ")
            ));
        }
        Ok(outcome)
    }

    /// Link loss (claim 7): every socket bound to the session's addresses is
    /// released at once, as Android destroys sockets when a network goes.
    /// Listeners are left alone.
    pub fn release_all(&mut self, cause: &str) -> Outcome {
        let sockets = match sockets::list_sockets() {
            Ok(sockets) => sockets,
            Err(error) => {
                tracing::warn!(%error, "cannot list the kernel's sockets");
                return Outcome::default();
            }
        };
        let owners = sockets::owners();
        self.release_all_among(cause, &sockets, &owners, &mut sockets::destroy)
    }

    /// The body of [`PortManager::release_all`], on a given listing and walk.
    fn release_all_among(
        &mut self,
        cause: &str,
        sockets: &[KernelSocket],
        owners: &Owners,
        destroy: Destroy<'_>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let reason = format!("link lost: {cause}");
        let mut released = 0;
        let targets: Vec<KernelSocket> = sockets
            .iter()
            .filter(|s| {
                self.relevant(s) && !s.local.ip().is_unspecified() && s.state != SocketState::Listen
            })
            .copied()
            .collect();
        for socket in &targets {
            let owner = owners.get(socket.inode);
            // Observe mode changes nothing, on link loss either: reported only.
            if self.class_of(socket, owner).mode == Mode::Observe {
                outcome.events.push(PortEvent::PortPhantom {
                    proto: socket.proto,
                    port: socket.local.port(),
                    pid: owner.map(|o| o.pid),
                    app: owner.map(|o| o.comm.clone()),
                    reason: reason.clone(),
                });
                continue;
            }
            if self.release_socket(socket, owner, &reason, &mut outcome, destroy) {
                released += 1;
            }
        }
        // Nothing can reach the far ends now: the resets would not arrive.
        outcome.to_session.clear();
        self.table.clear();
        outcome.events.push(PortEvent::LinkLost {
            cause: cause.to_string(),
            released,
        });
        outcome
    }

    /// The application class of a socket, as a scan classifies it.
    fn class_of(&self, socket: &KernelSocket, owner: Option<&Owner>) -> &super::classes::AppClass {
        let remote_port = socket.remote.map(|r| r.port()).or_else(|| {
            self.table
                .get(socket.proto, socket.local.port())
                .map(|e| e.remote.port)
        });
        self.config.classes.classify(
            owner.map(|o| o.comm.as_str()),
            owner.map(|o| o.uid).or(Some(socket.uid)),
            remote_port,
        )
    }

    /// Destroys one socket (or, where the kernel refuses, resets it through
    /// the TUN), resets the far end, drops the entry and reports it. Resets
    /// are built only from an entry that is this connection's (see
    /// [`entry_is_of`]). A socket that is already gone is not reported, and
    /// nothing is injected toward its addresses: a newer socket may hold them.
    fn release_socket(
        &mut self,
        socket: &KernelSocket,
        owner: Option<&Owner>,
        reason: &str,
        outcome: &mut Outcome,
        destroy: Destroy<'_>,
    ) -> bool {
        let port = socket.local.port();
        if socket.state == SocketState::Listen {
            tracing::warn!(%socket, "not releasing a listening socket");
            return false;
        }
        // The last guard before SOCK_DESTROY: every caller already picks the
        // session's sockets, and a socket the session cannot claim must
        // never be destroyed whatever asks for it.
        if !self.relevant(socket) {
            tracing::warn!(%socket, "not releasing a socket that is not the session's");
            return false;
        }
        let entry: Option<PortEntry> = self
            .table
            .get(socket.proto, port)
            .filter(|e| entry_is_of(socket, e));
        let method = match destroy(socket) {
            Ok(()) => "sock_destroy",
            Err(error) => match DestroyFailure::of(&error) {
                DestroyFailure::Gone => {
                    tracing::debug!(%error, "the socket is already gone: nothing to release");
                    if entry.is_some() {
                        self.table.remove(socket.proto, port);
                    }
                    return false;
                }
                DestroyFailure::Other => {
                    tracing::warn!(%error, proto = %socket.proto, port, "cannot release the port");
                    return false;
                }
                DestroyFailure::Refused => {
                    tracing::debug!(%error, port, "SOCK_DESTROY refused; injecting resets toward the socket");
                    let injected = entry.as_ref().and_then(|e| match socket.proto {
                        Proto::Tcp => release::tcp_rst_to_local(e),
                        Proto::Udp => release::udp_unreachable_to_local(e),
                    });
                    match injected {
                        Some(packet) => {
                            outcome.to_tun.push(packet);
                            "injected"
                        }
                        None => {
                            tracing::warn!(%error, %socket, "cannot release the port: SOCK_DESTROY refused and no reset can be built for this connection");
                            return false;
                        }
                    }
                }
            },
        };
        if entry.is_some() {
            self.table.remove(socket.proto, port);
        }
        // The far end frees its state too (the kernel's own reset on destroy
        // may not be sent in every state; a second one is harmless).
        if let Some(rst) = entry
            .as_ref()
            .filter(|_| socket.proto == Proto::Tcp)
            .and_then(release::tcp_rst_to_remote)
        {
            outcome.to_session.push(rst);
        }
        self.released_total += 1;
        tracing::info!(
            proto = %socket.proto,
            port,
            pid = owner.map(|o| o.pid),
            app = owner.map(|o| o.comm.as_str()),
            reason,
            method,
            "port released"
        );
        outcome.events.push(PortEvent::PortReleased {
            proto: socket.proto,
            port,
            pid: owner.map(|o| o.pid),
            app: owner.map(|o| o.comm.clone()),
            reason: reason.to_string(),
            reconnect: "advised",
            method,
        });
        true
    }
}

/// Destroys a kernel socket: [`sockets::destroy`], or a stand-in in tests.
type Destroy<'a> = &'a mut dyn FnMut(&KernelSocket) -> io::Result<()>;

/// What the walk of `/proc` says about the socket with this inode. A socket
/// is orphaned only when a process held it at an earlier scan and a complete
/// walk finds none now ("its owner process is gone"): sockets no process ever
/// held — the kernel's own (WireGuard, NFS), or ones passed in flight — are
/// unknown, not orphaned.
fn owner_knowledge(owners: &Owners, inode: u64, held_before: &HashSet<u64>) -> OwnerKnowledge {
    if owners.get(inode).is_some() {
        OwnerKnowledge::Held
    } else if owners.complete && held_before.contains(&inode) {
        OwnerKnowledge::Orphaned
    } else {
        OwnerKnowledge::Unknown
    }
}

/// The table's entry for the socket's port is this connection's: the same
/// remote (IPv4-mapped addresses compared as IPv4) and the same local
/// address. The table keys entries by (protocol, local port), so on a port
/// several connections share (an accepted server port, or an ephemeral port
/// Linux reuses for other destinations) the entry's addresses and sequence
/// numbers are those of whichever connection last sent: a reset built from
/// them, or a verdict drawn from them, would hit another connection. An
/// unconnected socket has no remote, so no entry is its connection's.
fn entry_is_of(socket: &KernelSocket, entry: &PortEntry) -> bool {
    let canonical =
        |address: SocketAddr| SocketAddr::new(address.ip().to_canonical(), address.port());
    let Some(remote) = socket.remote else {
        return false;
    };
    entry.proto == socket.proto
        && entry.port == socket.local.port()
        && canonical(remote) == canonical(SocketAddr::new(entry.remote.ip, entry.remote.port))
        && socket.local.ip().to_canonical() == entry.local_ip.to_canonical()
}

fn seconds_since(now: Tick, then: Option<Tick>) -> Option<f64> {
    then.map(|then| f64::from(now.wrapping_sub(then)) / 1000.0)
}

fn row(
    socket: &KernelSocket,
    owner: Option<&Owner>,
    entry: Option<&PortEntry>,
    class: &str,
    judgement: &Judgement,
    now: Tick,
) -> PortRow {
    let mut remotes: Vec<String> = socket.remote.map(|r| r.to_string()).into_iter().collect();
    if let Some(entry) = entry {
        let seen = SocketAddr::new(entry.remote.ip, entry.remote.port).to_string();
        if !remotes.contains(&seen) {
            remotes.push(seen);
        }
    }
    PortRow {
        proto: socket.proto,
        local_ip: socket.local.ip().to_string(),
        local_port: socket.local.port(),
        remotes,
        pid: owner.map(|o| o.pid),
        app: owner.map(|o| o.comm.clone()),
        uid: owner.map(|o| o.uid).or(Some(socket.uid)),
        class: class.to_string(),
        state: socket.state.to_string(),
        tx_packets: entry.map_or(0, |e| u64::from(e.tx_packets)),
        rx_packets: entry.map_or(0, |e| u64::from(e.rx_packets)),
        tx_bytes: entry.map_or(0, |e| e.tx_bytes),
        rx_bytes: entry.map_or(0, |e| e.rx_bytes),
        tx_data_packets: entry.map_or(0, |e| u64::from(e.tx_data_packets)),
        rx_data_packets: entry.map_or(0, |e| u64::from(e.rx_data_packets)),
        last_tx_s: entry.and_then(|e| seconds_since(now, e.last_tx)),
        last_rx_s: entry.and_then(|e| seconds_since(now, e.last_rx)),
        verdict: judgement.verdict,
        reason: judgement.reason_text(),
    }
}

/// The text table of `portdial ports`.
pub fn render(rows: &[PortRow]) -> String {
    let mut out = format!(
        "{:<5} {:<22} {:<22} {:>7} {:<15} {:<14} {:<11} {:>8} {:>8} {:>7} {:>7} {:<9} {}\n",
        "proto",
        "local",
        "remote",
        "pid",
        "app",
        "class",
        "state",
        "tx",
        "rx",
        "last_tx",
        "last_rx",
        "verdict",
        "reason"
    );
    let secs = |s: Option<f64>| s.map(|s| format!("{s:.0}s")).unwrap_or_else(|| "-".into());
    for r in rows {
        out.push_str(&format!(
            "{:<5} {:<22} {:<22} {:>7} {:<15} {:<14} {:<11} {:>8} {:>8} {:>7} {:>7} {:<9} {}\n",
            r.proto.as_str(),
            format!("{}:{}", r.local_ip, r.local_port),
            r.remotes.first().map(String::as_str).unwrap_or("-"),
            r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            r.app.as_deref().unwrap_or("-"),
            r.class,
            r.state,
            r.tx_packets,
            r.rx_packets,
            secs(r.last_tx_s),
            secs(r.last_rx_s),
            r.verdict.as_str(),
            r.reason
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV6};
    use std::sync::{Arc, Mutex};

    use portdial_protocol::ip::{self, FlowInfo, TcpFlags};

    use super::*;
    use crate::ports::table::testing::tcp;

    const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const SYN: TcpFlags = TcpFlags::SYN;
    const ACK: TcpFlags = TcpFlags::ACK;

    /// A manager whose session has the address 192.0.2.10.
    fn session_manager() -> (PortManager, Instant) {
        let now = Instant::now();
        let mut manager = PortManager::new(ManagerConfig::default(), now);
        manager.set_addresses(now, vec![IpAddr::V4(LOCAL)]);
        (manager, now)
    }

    fn address(text: &str) -> SocketAddr {
        text.parse().expect("address")
    }

    /// A socket as `list_sockets` would report it; the inode is made from
    /// the port so each test socket has its own.
    fn socket(proto: Proto, local: &str, remote: Option<&str>, state: SocketState) -> KernelSocket {
        let local = address(local);
        KernelSocket {
            proto,
            family: if local.is_ipv4() {
                libc::AF_INET as u8
            } else {
                libc::AF_INET6 as u8
            },
            local,
            remote: remote.map(address),
            state,
            inode: 100_000
                + u64::from(local.port())
                + remote.map_or(0, |r| address(r).port().into()),
            uid: 1000,
            cookie: [1, 2],
            interface: 0,
        }
    }

    fn established(local: &str, remote: &str) -> KernelSocket {
        socket(Proto::Tcp, local, Some(remote), SocketState::Established)
    }

    fn walk(complete: bool, held: &[&KernelSocket]) -> Owners {
        let owner = Owner {
            pid: 4242,
            comm: "app".into(),
            exe: None,
            uid: 1000,
        };
        Owners {
            by_inode: held.iter().map(|s| (s.inode, owner.clone())).collect(),
            complete,
            why_incomplete: (!complete).then(|| "/proc/1/fd: Permission denied".into()),
        }
    }

    /// The sockets a stand-in for SOCK_DESTROY was asked to destroy.
    type Calls = Arc<Mutex<Vec<KernelSocket>>>;

    /// A stand-in for SOCK_DESTROY: records the sockets it is asked to
    /// destroy and answers `answer`.
    fn destroyer(
        answer: impl Fn() -> io::Result<()>,
    ) -> (Calls, impl FnMut(&KernelSocket) -> io::Result<()>) {
        let calls = Calls::default();
        let recorded = Arc::clone(&calls);
        let destroy = move |socket: &KernelSocket| {
            recorded.lock().expect("lock").push(*socket);
            answer()
        };
        (calls, destroy)
    }

    fn refused() -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "destroying: Operation not permitted (needs CAP_NET_ADMIN)",
        ))
    }

    /// A handshake and one request/response on `local` ↔ `remote`, the
    /// server's side (`local` is the listening port), accounted at `at`
    /// with ISNs `isn` (ours) and `isn + 10_000` (theirs).
    fn serve(
        manager: &mut PortManager,
        at: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        isn: u32,
    ) {
        let theirs = isn.wrapping_add(10_000);
        let packets = [
            (
                Direction::Rx,
                tcp(remote, local, theirs, 0, SYN, 64240, &[], &[]),
            ),
            (
                Direction::Tx,
                tcp(local, remote, isn, theirs + 1, SYN | ACK, 65535, &[], &[]),
            ),
            (
                Direction::Rx,
                tcp(
                    remote,
                    local,
                    theirs + 1,
                    isn + 1,
                    ACK,
                    502,
                    &[],
                    b"GET / HTTP/1.1\r\n",
                ),
            ),
            (
                Direction::Tx,
                tcp(
                    local,
                    remote,
                    isn + 1,
                    theirs + 17,
                    ACK,
                    502,
                    &[],
                    &[b'R'; 32],
                ),
            ),
        ];
        for (direction, packet) in packets {
            manager.account(at, direction, &packet);
        }
    }

    fn flow(packet: &[u8]) -> FlowInfo {
        ip::inspect(packet).expect("a packet we built parses")
    }

    fn released(outcome: &Outcome) -> Vec<(u16, &'static str)> {
        outcome
            .events
            .iter()
            .filter_map(|event| match event {
                PortEvent::PortReleased { port, method, .. } => Some((*port, *method)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn only_sockets_on_the_sessions_addresses_are_relevant() {
        let (mut manager, now) = session_manager();
        let on_session = established("192.0.2.10:40000", "198.51.100.7:443");
        let mapped = established("[::ffff:192.0.2.10]:40001", "[::ffff:198.51.100.7]:443");
        let elsewhere = established("10.0.0.5:40002", "10.0.0.1:22");
        let loopback = established("127.0.0.1:40003", "127.0.0.1:5432");
        let elsewhere6 = established("[2001:db8::5]:40004", "[2001:db8:1::1]:443");
        let quiet_wildcard = socket(Proto::Udp, "0.0.0.0:5353", None, SocketState::Close);
        let busy_wildcard = socket(Proto::Udp, "0.0.0.0:5354", None, SocketState::Close);
        let mut time_wait = established("192.0.2.10:40005", "198.51.100.7:443");
        time_wait.inode = 0;
        manager.account(
            now,
            Direction::Tx,
            &crate::ports::table::testing::udp(
                address("192.0.2.10:5354"),
                address("198.51.100.7:53"),
                b"query",
            ),
        );
        assert!(manager.relevant(&on_session));
        assert!(manager.relevant(&mapped));
        assert!(manager.relevant(&busy_wildcard));
        for never in [
            &elsewhere,
            &loopback,
            &elsewhere6,
            &quiet_wildcard,
            &time_wait,
        ] {
            assert!(!manager.relevant(never), "{never}");
        }
        // An address the session had before still counts (its sockets are
        // phantoms); one it never had does not.
        manager.set_addresses(now, vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11))]);
        assert!(manager.relevant(&on_session));
        assert!(!manager.relevant(&elsewhere));

        // A scan never judges nor touches a socket on another address, even
        // orphaned and bound to nothing the session has.
        let (mut manager, now) = session_manager();
        let (calls, mut destroy) = destroyer(|| Ok(()));
        let sockets = [elsewhere, loopback, elsewhere6];
        let outcome = manager.judge_sockets(
            now,
            Trigger::Request,
            true,
            &sockets,
            &walk(true, &[]),
            0.0,
            &mut destroy,
        );
        assert!(outcome.rows.is_empty(), "{:?}", outcome.rows);
        assert!(calls.lock().expect("lock").is_empty());
    }

    #[test]
    fn an_unknown_owner_is_judged_by_traffic_and_kept() {
        let (mut manager, now) = session_manager();
        let quiet = established("192.0.2.10:40000", "198.51.100.7:443");
        let listener = socket(Proto::Tcp, "192.0.2.10:8080", None, SocketState::Listen);
        let sockets = [quiet, listener];

        // The daemon cannot read other users' /proc/PID/fd: nobody found.
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        let (calls, mut destroy) = destroyer(|| Ok(()));
        let outcome = tracing::subscriber::with_default(subscriber, || {
            manager.judge_sockets(
                now,
                Trigger::Periodic,
                true,
                &sockets,
                &walk(false, &[]),
                0.0,
                &mut destroy,
            )
        });
        assert!(calls.lock().expect("lock").is_empty());
        assert!(released(&outcome).is_empty());
        let verdicts: Vec<(u16, Verdict)> = outcome
            .rows
            .iter()
            .map(|r| (r.local_port, r.verdict))
            .collect();
        assert_eq!(verdicts, [(8080, Verdict::Idle), (40000, Verdict::Idle)]);
        let log = captured.text();
        assert_eq!(
            log.matches("cannot read every /proc/PID/fd: owners unknown, judging by traffic only")
                .count(),
            1,
            "{log}"
        );
        assert!(log.contains("/proc/1/fd: Permission denied"), "{log}");

        // A complete walk that finds nobody, for sockets nobody was ever seen
        // holding (the kernel's own, say): unknown, kept.
        let (calls, mut destroy) = destroyer(|| Ok(()));
        let outcome = manager.judge_sockets(
            now,
            Trigger::Periodic,
            true,
            &sockets,
            &walk(true, &[]),
            0.0,
            &mut destroy,
        );
        assert!(
            calls.lock().expect("lock").is_empty(),
            "never-held sockets are not orphans"
        );
        assert!(released(&outcome).is_empty());
        // Held at one scan ...
        let (_, mut destroy) = destroyer(|| Ok(()));
        manager.judge_sockets(
            now,
            Trigger::Periodic,
            true,
            &sockets,
            &walk(true, &[&quiet, &listener]),
            0.0,
            &mut destroy,
        );
        // ... and nobody holds them at the next: the owner process is gone, so
        // the connection is orphaned and released; the listener never is.
        let (calls, mut destroy) = destroyer(|| Ok(()));
        let outcome = manager.judge_sockets(
            now,
            Trigger::Periodic,
            true,
            &sockets,
            &walk(true, &[]),
            0.0,
            &mut destroy,
        );
        assert_eq!(*calls.lock().expect("lock"), [quiet]);
        assert_eq!(released(&outcome), [(40000, "sock_destroy")]);
        let listening = outcome
            .rows
            .iter()
            .find(|r| r.local_port == 8080)
            .expect("row");
        assert_eq!(
            (listening.verdict, listening.reason.as_str()),
            (Verdict::Idle, "listening")
        );

        // Held: idle.
        let (calls, mut destroy) = destroyer(|| Ok(()));
        let outcome = manager.judge_sockets(
            now,
            Trigger::Periodic,
            true,
            &sockets,
            &walk(true, &[&quiet]),
            0.0,
            &mut destroy,
        );
        assert!(calls.lock().expect("lock").is_empty());
        assert!(released(&outcome).is_empty());
    }

    #[test]
    fn resets_are_built_only_for_the_connection_the_entry_describes() {
        let (mut manager, now) = session_manager();
        let server = address("192.0.2.10:8080");
        let (first, second) = (address("198.51.100.7:50000"), address("203.0.113.9:40000"));
        // Two connections accepted on one port; the second sent last, so the
        // port's entry carries its addresses and sequence numbers.
        serve(&mut manager, now, server, first, 1_000);
        serve(&mut manager, now, server, second, 7_000_000);
        let entry = manager.table().get(Proto::Tcp, 8080).expect("entry");
        assert_eq!(SocketAddr::new(entry.remote.ip, entry.remote.port), second);
        let first_socket = established("192.0.2.10:8080", "198.51.100.7:50000");
        let second_socket = established("192.0.2.10:8080", "203.0.113.9:40000");
        assert!(!entry_is_of(&first_socket, &entry));
        assert!(entry_is_of(&second_socket, &entry));

        // Destroying the first: nothing is built from the second's entry,
        // which stays for the second.
        let mut outcome = Outcome::default();
        let (_, mut destroy) = destroyer(|| Ok(()));
        assert!(manager.release_socket(&first_socket, None, "test", &mut outcome, &mut destroy));
        assert!(outcome.to_session.is_empty() && outcome.to_tun.is_empty());
        assert_eq!(manager.table().get(Proto::Tcp, 8080), Some(entry.clone()));
        // Where SOCK_DESTROY is refused, no reset is injected for it either:
        // the one the entry allows would reset the second connection.
        let mut outcome = Outcome::default();
        let (_, mut destroy) = destroyer(refused);
        assert!(!manager.release_socket(&first_socket, None, "test", &mut outcome, &mut destroy));
        assert!(outcome.to_session.is_empty() && outcome.to_tun.is_empty());
        assert!(outcome.events.is_empty());

        // The second, reported by the kernel as a dual-stack socket
        // (::ffff:a.b.c.d), is the entry's: both resets go to it.
        let mapped = |a: SocketAddr| match a {
            SocketAddr::V4(v4) => {
                SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
            }
            v6 => v6,
        };
        let mut second_mapped = second_socket;
        second_mapped.family = libc::AF_INET6 as u8;
        second_mapped.local = mapped(server);
        second_mapped.remote = Some(mapped(second));
        let mut outcome = Outcome::default();
        let (_, mut destroy) = destroyer(refused);
        assert!(manager.release_socket(&second_mapped, None, "test", &mut outcome, &mut destroy));
        assert_eq!(released(&outcome), [(8080, "injected")]);
        let [to_local] = outcome.to_tun.as_slice() else {
            panic!("one injected reset: {:?}", outcome.to_tun);
        };
        let [to_remote] = outcome.to_session.as_slice() else {
            panic!("one reset to the remote: {:?}", outcome.to_session);
        };
        let inward = flow(to_local);
        assert_eq!(
            (inward.src, inward.src_port, inward.dst, inward.dst_port),
            (second.ip(), 40000, server.ip(), 8080)
        );
        assert_eq!((inward.seq, inward.ack), (entry.rcv_nxt, entry.snd_nxt));
        let outward = flow(to_remote);
        assert_eq!(
            (outward.src, outward.src_port, outward.dst, outward.dst_port),
            (server.ip(), 8080, second.ip(), 40000)
        );
        assert!(outward.tcp_flags.contains(TcpFlags::RST));
        assert_eq!(outward.seq, entry.snd_nxt);
        assert_eq!(manager.table().get(Proto::Tcp, 8080), None);
    }

    #[test]
    fn a_shared_ports_entry_does_not_judge_the_other_connections() {
        let (mut manager, now) = session_manager();
        let server = address("192.0.2.10:8080");
        serve(
            &mut manager,
            now,
            server,
            address("198.51.100.7:50000"),
            1_000,
        );
        // The second connection only sends, unacknowledged, for the whole window.
        let second = address("203.0.113.9:40000");
        serve(&mut manager, now, server, second, 7_000_000);
        let later = now + Duration::from_secs(400);
        for _ in 0..3 {
            manager.account(
                later,
                Direction::Tx,
                &tcp(
                    server,
                    second,
                    7_000_033,
                    7_010_017,
                    ACK,
                    502,
                    &[],
                    &[b'R'; 100],
                ),
            );
        }
        let first_socket = established("192.0.2.10:8080", "198.51.100.7:50000");
        let second_socket = established("192.0.2.10:8080", "203.0.113.9:40000");
        let sockets = [first_socket, second_socket];
        let (calls, mut destroy) = destroyer(|| Ok(()));
        let outcome = manager.judge_sockets(
            later + Duration::from_secs(1),
            Trigger::Periodic,
            false,
            &sockets,
            &walk(true, &[&first_socket, &second_socket]),
            0.0,
            &mut destroy,
        );
        assert!(calls.lock().expect("lock").is_empty());
        let verdict = |remote: &str| {
            outcome
                .rows
                .iter()
                .find(|r| r.remotes.first().map(String::as_str) == Some(remote))
                .map(|r| (r.verdict, r.reason.clone()))
                .expect("row")
        };
        assert_eq!(
            verdict("198.51.100.7:50000"),
            (
                Verdict::Idle,
                "no traffic through the session yet".to_string()
            )
        );
        assert_eq!(verdict("203.0.113.9:40000").0, Verdict::Phantom);
    }

    #[test]
    fn a_vanished_socket_is_not_reported_and_nothing_is_injected() {
        let (mut manager, now) = session_manager();
        let local = address("192.0.2.10:40000");
        let remote = address("198.51.100.7:443");
        let connection = established("192.0.2.10:40000", "198.51.100.7:443");
        let setup = |manager: &mut PortManager| {
            manager.account(
                now,
                Direction::Tx,
                &tcp(local, remote, 1, 0, SYN, 9, &[], &[]),
            );
            manager.account(
                now,
                Direction::Rx,
                &tcp(remote, local, 500, 2, SYN | ACK, 9, &[], &[]),
            );
        };
        // ENOENT, or ESTALE (a newer socket holds the addresses): gone.
        setup(&mut manager);
        let mut outcome = Outcome::default();
        let (_, mut destroy) =
            destroyer(|| Err(io::Error::new(io::ErrorKind::NotFound, "no longer exists")));
        assert!(!manager.release_socket(&connection, None, "test", &mut outcome, &mut destroy));
        assert!(outcome.events.is_empty());
        assert!(outcome.to_tun.is_empty() && outcome.to_session.is_empty());
        assert_eq!(manager.table().get(Proto::Tcp, 40000), None);
        assert_eq!(manager.released_total(), 0);

        // Another failure: a warning, no packets, the entry kept.
        setup(&mut manager);
        let mut outcome = Outcome::default();
        let (_, mut destroy) = destroyer(|| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Invalid argument",
            ))
        });
        assert!(!manager.release_socket(&connection, None, "test", &mut outcome, &mut destroy));
        assert!(outcome.events.is_empty());
        assert!(outcome.to_tun.is_empty() && outcome.to_session.is_empty());
        assert!(manager.table().get(Proto::Tcp, 40000).is_some());

        // Refused (no CAP_NET_ADMIN, no CONFIG_INET_DIAG_DESTROY): injected.
        for refusal in [io::ErrorKind::PermissionDenied, io::ErrorKind::Unsupported] {
            setup(&mut manager);
            let mut outcome = Outcome::default();
            let (_, mut destroy) = destroyer(move || Err(io::Error::new(refusal, "refused")));
            assert!(manager.release_socket(&connection, None, "test", &mut outcome, &mut destroy));
            assert_eq!(released(&outcome), [(40000, "injected")]);
            assert_eq!((outcome.to_tun.len(), outcome.to_session.len()), (1, 1));
        }
        assert_eq!(manager.released_total(), 2);
    }

    #[test]
    fn listeners_are_never_released() {
        let (mut manager, _) = session_manager();
        let listener = socket(Proto::Tcp, "192.0.2.10:8080", None, SocketState::Listen);
        let accepted = established("192.0.2.10:8080", "198.51.100.7:50000");
        let owners = walk(true, &[]);
        let (calls, mut destroy) = destroyer(|| Ok(()));
        let refusal = manager
            .release_port_among(Some(Proto::Tcp), 8080, &[listener], &owners, &mut destroy)
            .expect_err("a listener is not released");
        assert_eq!(
            refusal,
            "port 8080 is held by a listening socket (tcp 192.0.2.10:8080 LISTEN): \
             listeners are never released"
        );
        let outcome = manager
            .release_port_among(None, 8080, &[listener, accepted], &owners, &mut destroy)
            .expect("the accepted connection is released");
        assert_eq!(released(&outcome), [(8080, "sock_destroy")]);
        assert_eq!(*calls.lock().expect("lock"), [accepted]);
        assert_eq!(
            manager
                .release_port_among(None, 9090, &[listener], &owners, &mut destroy)
                .expect_err("nothing on 9090"),
            "no socket of the session holds port 9090"
        );

        calls.lock().expect("lock").clear();
        let outcome =
            manager.release_all_among("test", &[listener, accepted], &owners, &mut destroy);
        assert_eq!(*calls.lock().expect("lock"), [accepted]);
        assert!(matches!(
            outcome.events.last(),
            Some(PortEvent::LinkLost { released: 1, .. })
        ));
        // And release_socket itself refuses one.
        let mut outcome = Outcome::default();
        assert!(!manager.release_socket(&listener, None, "test", &mut outcome, &mut destroy));
        assert_eq!(calls.lock().expect("lock").len(), 1);
    }

    /// Issue 5: whatever asks (a scan, `portdial release`, link loss, a
    /// direct call), a socket the session cannot claim is never destroyed
    /// and nothing is injected toward it.
    #[test]
    fn sockets_the_session_cannot_claim_are_never_released() {
        let (mut manager, now) = session_manager();
        // Traffic on the foreign sockets' ports, so no lookup finds the table empty.
        for port in [40002, 40004] {
            manager.account(
                now,
                Direction::Tx,
                &tcp(
                    address(&format!("192.0.2.10:{port}")),
                    address("198.51.100.7:443"),
                    1,
                    0,
                    SYN,
                    9,
                    &[],
                    &[],
                ),
            );
        }
        let elsewhere = established("10.0.0.5:40002", "10.0.0.1:22");
        let elsewhere6 = established("[2001:db8::5]:40004", "[2001:db8:1::1]:443");
        let quiet_wildcard = socket(Proto::Udp, "0.0.0.0:5353", None, SocketState::Close);
        let foreign = [elsewhere, elsewhere6, quiet_wildcard];
        let nobody = walk(true, &[]);
        let (calls, mut destroy) = destroyer(|| Ok(()));
        // Held at one scan, gone at the next: orphans, if they were ours.
        manager.judge_sockets(
            now,
            Trigger::Periodic,
            true,
            &foreign,
            &walk(true, &foreign.iter().collect::<Vec<_>>()),
            0.0,
            &mut destroy,
        );
        let later = now + Duration::from_secs(3600);
        let outcome = manager.judge_sockets(
            later,
            Trigger::Periodic,
            true,
            &foreign,
            &nobody,
            0.0,
            &mut destroy,
        );
        assert!(outcome.rows.is_empty() && released(&outcome).is_empty());
        for socket in &foreign {
            let refusal = manager
                .release_port_among(None, socket.local.port(), &foreign, &nobody, &mut destroy)
                .expect_err("not the session's");
            assert!(
                refusal.starts_with("no socket of the session holds port"),
                "{refusal}"
            );
            let mut outcome = Outcome::default();
            assert!(!manager.release_socket(socket, None, "test", &mut outcome, &mut destroy));
            assert!(outcome.events.is_empty() && outcome.to_tun.is_empty());
            assert!(outcome.to_session.is_empty());
        }
        let outcome = manager.release_all_among("test", &foreign, &nobody, &mut destroy);
        assert!(matches!(
            outcome.events.as_slice(),
            [PortEvent::LinkLost { released: 0, .. }]
        ));
        assert!(calls.lock().expect("lock").is_empty());
        assert_eq!(manager.released_total(), 0);
    }

    /// Issue 5: `--port-mode observe` changes nothing: no destroy, no reset
    /// either way, no event claiming a release; phantoms are reported.
    #[test]
    fn observe_mode_changes_nothing() {
        let now = Instant::now();
        let config = ManagerConfig {
            classes: Classes::default().with_mode(Mode::Observe),
            ..ManagerConfig::default()
        };
        let mut manager = PortManager::new(config, now);
        let old = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
        manager.set_addresses(now, vec![old]);
        manager.set_addresses(now, vec![IpAddr::V4(LOCAL)]);
        let (local, remote) = (address("192.0.2.10:40000"), address("198.51.100.7:443"));
        // A connection with known sequence state (resets could be built),
        // then only unanswered data for a long time.
        manager.account(
            now,
            Direction::Tx,
            &tcp(local, remote, 1, 0, SYN, 9, &[], &[]),
        );
        manager.account(
            now,
            Direction::Rx,
            &tcp(remote, local, 500, 2, SYN | ACK, 9, &[], &[]),
        );
        let connection = established("192.0.2.10:40000", "198.51.100.7:443");
        let left_behind = established("192.0.2.9:40001", "198.51.100.7:443");
        let sockets = [connection, left_behind];
        let (calls, mut destroy) = destroyer(|| Ok(()));
        manager.judge_sockets(
            now,
            Trigger::Periodic,
            true,
            &sockets,
            &walk(true, &[&connection, &left_behind]),
            0.0,
            &mut destroy,
        );
        // The owner is gone: both are phantoms (orphaned; on an old address).
        let later = now + Duration::from_secs(3600);
        let outcome = manager.judge_sockets(
            later,
            Trigger::Periodic,
            true,
            &sockets,
            &walk(true, &[]),
            0.0,
            &mut destroy,
        );
        assert!(released(&outcome).is_empty());
        assert!(outcome.to_tun.is_empty() && outcome.to_session.is_empty());
        let phantoms: Vec<(u16, String)> = outcome
            .events
            .iter()
            .filter_map(|e| match e {
                PortEvent::PortPhantom { port, reason, .. } => Some((*port, reason.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            phantoms,
            [
                (40000, "no process holds the socket any more".to_string()),
                (
                    40001,
                    "bound to 192.0.2.9, which the session no longer has".to_string()
                )
            ]
        );
        assert!(outcome.rows.iter().all(|r| r.verdict == Verdict::Phantom));
        // Nor on request, nor on link loss.
        let owners = walk(true, &[]);
        let refusal = manager
            .release_port_among(None, 40000, &sockets, &owners, &mut destroy)
            .expect_err("observe mode releases nothing");
        assert_eq!(
            refusal,
            "port 40000 is in a class in observe mode (default): nothing released"
        );
        let outcome = manager.release_all_among("PADT", &sockets, &owners, &mut destroy);
        assert!(released(&outcome).is_empty());
        assert!(outcome.to_tun.is_empty() && outcome.to_session.is_empty());
        assert!(matches!(
            outcome.events.last(),
            Some(PortEvent::LinkLost { released: 0, .. })
        ));
        assert!(calls.lock().expect("lock").is_empty());
        assert_eq!(manager.released_total(), 0);
    }

    /// A `MakeWriter` keeping what a test's subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
        }
    }

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// The occupancy trigger with real sockets: a narrowed port range in a
    /// fresh namespace, filled past the threshold, starts a scan.
    #[test]
    fn occupancy_over_the_threshold_starts_a_scan() {
        use std::net::{Ipv4Addr, UdpSocket};
        let outcome = crate::netns::run_async_in_new_netns(|| async {
            let netlink = crate::netlink::Netlink::connect().expect("netlink");
            let lo = netlink
                .link_index("lo")
                .await
                .expect("lo")
                .expect("lo exists");
            let address = Ipv4Addr::new(192, 0, 2, 10);
            netlink
                .add_ipv4(lo, address, 32)
                .await
                .expect("address on lo");
            std::fs::write("/proc/sys/net/ipv4/ip_local_port_range", "40000 40009")
                .expect("port range");
            let config = ManagerConfig {
                scan_on_up: false,
                scan_interval: None,
                occupancy_threshold: Some(50.0),
                occupancy_check: std::time::Duration::from_millis(1),
                ..ManagerConfig::default()
            };
            let start = Instant::now();
            let mut manager = PortManager::new(config, start);
            manager.set_addresses(start, vec![IpAddr::V4(address)]);
            // 4 of 10 ports: below the threshold, no scan.
            let mut held: Vec<UdpSocket> = (0..4)
                .map(|_| UdpSocket::bind((address, 0)).expect("bind"))
                .collect();
            let later = start + std::time::Duration::from_millis(10);
            assert!(manager.handle_timeout(later).is_none());
            // 6 of 10: over 50 %, a scan of the session's sockets.
            held.extend((0..2).map(|_| UdpSocket::bind((address, 0)).expect("bind")));
            let later = later + std::time::Duration::from_millis(10);
            let outcome = manager.handle_timeout(later);
            drop(held);
            outcome
        })
        .expect("network namespace (needs root)");
        let outcome = outcome.expect("a scan over the threshold");
        let scan = outcome.events.iter().find_map(|e| match e {
            PortEvent::ScanCompleted {
                trigger,
                occupancy_percent,
                ..
            } => Some((*trigger, *occupancy_percent)),
            _ => None,
        });
        assert_eq!(scan, Some((Trigger::Occupancy, 60.0)));
    }
}
