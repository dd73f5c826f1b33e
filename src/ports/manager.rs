//! The port manager as the daemon runs it: scans (once after dial-up,
//! periodically, and when occupancy passes a threshold), judges every port the
//! session's addresses hold, releases the phantoms of classes in `release`
//! mode, and reports everything as events. It does no I/O of its own beyond
//! the kernel queries in [`super::sockets`]: packets it wants sent (resets to
//! the far end, injections toward local sockets) are returned to the daemon.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::classes::{Classes, Mode};
use super::judge::{judge, Context, Judgement, SocketView, Verdict};
use super::release;
use super::sockets::{self, KernelSocket, Owner, SocketState};
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
        if self.next_scan.is_some_and(|at| now >= at) {
            let trigger = if std::mem::take(&mut self.up_scan_pending) {
                Trigger::SessionUp
            } else {
                Trigger::Periodic
            };
            return Some(self.scan(now, trigger, true));
        }
        if self.next_occupancy_check.is_some_and(|at| now >= at) {
            self.next_occupancy_check = Some(now + self.config.occupancy_check);
            let threshold = self.config.occupancy_threshold?;
            let sockets = sockets::list_sockets().ok()?;
            let range = sockets::local_port_range().ok()?;
            let occupancy = sockets::occupancy(&sockets, &self.addresses, range);
            if occupancy.percent >= threshold {
                tracing::info!(
                    percent = occupancy.percent,
                    threshold,
                    "port occupancy over the threshold: scanning"
                );
                return Some(self.scan(now, Trigger::Occupancy, true));
            }
        }
        None
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
        let mut outcome = Outcome::default();
        // Only the scheduled scans move the schedule: a client asking for the
        // table (or a manual scan) must not postpone or cancel them.
        if trigger != Trigger::Request {
            self.next_scan = self.config.scan_interval.map(|interval| now + interval);
        }
        let sockets = match sockets::list_sockets() {
            Ok(sockets) => sockets,
            Err(error) => {
                tracing::warn!(%error, "cannot list the kernel's sockets");
                return outcome;
            }
        };
        let owners = sockets::owners();
        let occupancy = sockets::local_port_range()
            .map(|range| sockets::occupancy(&sockets, &self.addresses, range).percent)
            .unwrap_or(0.0);
        let tick = self.tick(now);
        let mut phantoms = 0;
        let mut released = 0;
        let mut rows = Vec::new();
        let mut seen = Vec::new();
        // Judge everything first (the table is only read), then act.
        let mut judged = Vec::new();
        for socket in sockets.iter().filter(|s| self.relevant(s)) {
            let owner = owners.get(&socket.inode);
            let entry = self.table.get(socket.proto, socket.local.port());
            seen.push((socket.proto, socket.local.port()));
            let remote_port = socket
                .remote
                .map(|r| r.port())
                .or(entry.map(|e| e.remote.port));
            let class = self.config.classes.classify(
                owner.map(|o| o.comm.as_str()),
                owner.map(|o| o.uid).or(Some(socket.uid)),
                remote_port,
            );
            let view = SocketView {
                proto: socket.proto,
                local: socket.local,
                state: socket.state,
                has_owner: owner.is_some(),
            };
            let context = Context {
                now: tick,
                window: class.window,
                asleep_since: self.asleep_since,
                session_addresses: &self.addresses,
            };
            let judgement = judge(entry, &view, &context);
            let row = row(socket, owner, entry, &class.name, &judgement, tick);
            judged.push((*socket, owner.cloned(), class.mode, judgement, row));
        }
        for (socket, owner, mode, judgement, mut row) in judged {
            if judgement.verdict == Verdict::Phantom {
                phantoms += 1;
                if release && mode == Mode::Release {
                    if self.release_socket(&socket, owner.as_ref(), &judgement.reason, &mut outcome)
                    {
                        released += 1;
                        row.verdict = Verdict::Released;
                    }
                } else {
                    outcome.events.push(PortEvent::PortPhantom {
                        proto: socket.proto,
                        port: socket.local.port(),
                        pid: owner.as_ref().map(|o| o.pid),
                        app: owner.as_ref().map(|o| o.comm.clone()),
                        reason: judgement.reason.clone(),
                    });
                }
            }
            rows.push(row);
        }
        // Entries whose socket is gone are reclaimed.
        self.table
            .retain(|entry| seen.contains(&(entry.proto, entry.port)));
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

    /// Releases one port on request (`portdial release PORT`), whatever its verdict.
    pub fn release_port(
        &mut self,
        now: Instant,
        proto: Option<Proto>,
        port: u16,
    ) -> Result<Outcome, String> {
        let sockets = sockets::list_sockets().map_err(|e| format!("cannot list sockets: {e}"))?;
        let owners = sockets::owners();
        let mut outcome = Outcome::default();
        let targets: Vec<&KernelSocket> = sockets
            .iter()
            .filter(|s| {
                s.local.port() == port && proto.is_none_or(|p| p == s.proto) && self.relevant(s)
            })
            .collect();
        if targets.is_empty() {
            return Err(format!("no socket of the session holds port {port}"));
        }
        let targets: Vec<KernelSocket> = targets.into_iter().copied().collect();
        for socket in &targets {
            let owner = owners.get(&socket.inode);
            self.release_socket(socket, owner, "released on request", &mut outcome);
        }
        let _ = now;
        Ok(outcome)
    }

    /// Link loss (claim 7): every socket bound to the session's addresses is
    /// released at once, as Android destroys sockets when a network goes.
    pub fn release_all(&mut self, cause: &str) -> Outcome {
        let mut outcome = Outcome::default();
        let sockets = match sockets::list_sockets() {
            Ok(sockets) => sockets,
            Err(error) => {
                tracing::warn!(%error, "cannot list the kernel's sockets");
                return outcome;
            }
        };
        let owners = sockets::owners();
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
            if self.release_socket(socket, owners.get(&socket.inode), &reason, &mut outcome) {
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

    /// Destroys one socket (or, where the kernel refuses, resets it through
    /// the TUN), resets the far end, drops the entry and reports it.
    fn release_socket(
        &mut self,
        socket: &KernelSocket,
        owner: Option<&Owner>,
        reason: &str,
        outcome: &mut Outcome,
    ) -> bool {
        let port = socket.local.port();
        let entry: Option<PortEntry> = self.table.remove(socket.proto, port);
        let method = match sockets::destroy(socket) {
            Ok(()) => "sock_destroy",
            Err(error) => {
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
                        tracing::warn!(%error, proto = %socket.proto, port, "cannot release the port: SOCK_DESTROY refused and nothing to inject");
                        return false;
                    }
                }
            }
        };
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
        reason: judgement.reason.clone(),
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
