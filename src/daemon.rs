//! `portdial dial`: the device loop around the sans-IO session.
//!
//! One task owns everything (boringtun's shape): it waits on the packet
//! socket, the TUN, the session's next timer, signals, carrier events and the
//! control socket, handles a bounded batch of whatever is ready, then drains
//! the session's output. The supervisor part follows pppd: re-dial after a
//! lost link when `persist` is set, with a holdoff that backs off
//! exponentially on consecutive failures, up to `maxfail` of them.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use portdial_ppp::discovery::Established;
use portdial_ppp::session::{
    DownCause, Ipv4Info, Ipv6Info, Phase, Received, Session, SessionEvent,
};
use portdial_protocol::ethernet::MacAddr;
use portdial_protocol::ipv6cp::link_local;
use rand::RngCore;
use tokio::signal::unix::{signal, SignalKind};

use crate::capture::Capture;
use crate::config::DialConfig;
use crate::control::{self, Access, ControlServer, Incoming, Request, Response, Status};
use crate::datapath::{self, Counters, Open, FRAME_BUFFER, HEADROOM};
use crate::exit;
use crate::hooks::{self, HookEnv, LinkStats};
use crate::netlink::{LinkEvent, LinkWatcher, Netlink};
use crate::offload::{self, Coalescer, Segments};
use crate::packet_socket::{PacketSocket, PacketSocketError, MAX_BATCH};
use crate::ports::manager::{self, Outcome, PortEvent, PortManager, Trigger};
use crate::ports::{Direction, Proto};
use crate::resolv::PeerDns;
use crate::state_file::{self, SessionState};
use crate::tun::{Tun, TunError};

/// Frames or packets handled per wake-up before looking at the other
/// sources: one `recvmmsg` of session frames, or TUN reads.
const BATCH: usize = 64;

/// Frames gathered from TUN reads in one wake-up at most (super-packets
/// bring dozens each).
const UPSTREAM_FRAMES_PER_WAKE: usize = 4 * MAX_BATCH;

/// Why the daemon stopped, as a process exit code with a message.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: Option<String>,
}

impl Exit {
    fn ok() -> Exit {
        Exit {
            code: exit::OK,
            message: None,
        }
    }

    fn fail(code: u8, message: impl Into<String>) -> Exit {
        Exit {
            code,
            message: Some(message.into()),
        }
    }
}

/// The exit code for a session that ended and will not be re-dialed.
pub fn exit_code_for(cause: &DownCause) -> u8 {
    match cause {
        DownCause::Discovery(_) => exit::NO_ACCESS_CONCENTRATOR,
        DownCause::AuthFailed { .. } => exit::AUTH_FAILED,
        DownCause::Negotiation { .. } | DownCause::Loopback => exit::NEGOTIATION_FAILED,
        DownCause::Padt { .. }
        | DownCause::EchoTimeout { .. }
        | DownCause::PeerTerminated { .. } => exit::LINK_LOST,
        DownCause::CarrierLost => exit::LINK_LOST,
        DownCause::LocalClose { .. } => exit::OK,
    }
}

/// What the supervisor is doing between sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Supervisor {
    /// A session is being dialed or is up.
    Dialing,
    /// Waiting out the holdoff before the next dial.
    Holdoff { until: Instant },
    /// The interface has no carrier; dial when it comes back.
    WaitingCarrier,
    /// Shutting down: closing the session, exit when it is down or at `deadline`.
    Stopping { deadline: Instant },
}

struct Daemon {
    options: DialConfig,
    socket: PacketSocket,
    netlink: Netlink,
    session: Session,
    tun: Option<Tun>,
    /// Received packets merged for one write to an offloading TUN.
    coalescer: Coalescer,
    capture: Option<Capture>,
    counters: Counters,
    open: Open,
    supervisor: Supervisor,
    our_mac: MacAddr,
    ipv4: Option<Ipv4Info>,
    ipv6: Option<Ipv6Info>,
    up_since: Option<Instant>,
    session_reached_up: bool,
    redials: u32,
    consecutive_failures: u32,
    last_failure: Option<String>,
    exit: Option<Exit>,
    peer_dns: Option<PeerDns>,
    /// The MSS to clamp SYNs to, from the negotiated MTU and `--mss-clamp`.
    mss: Option<u16>,
    control: ControlServer,
    ports: Option<PortManager>,
    /// The last events, for `portdial events` without --follow.
    recent_events: VecDeque<serde_json::Value>,
    /// The link was lost and its ports released; the next dial's result is
    /// reported (claim 7).
    awaiting_redial: Option<String>,
    /// The session's IPv4 address before the link was lost.
    previous_address: Option<Ipv4Addr>,
    /// Set while the packet socket is broken: when to try reopening it.
    socket_retry: Option<Instant>,
    /// The hook scripts queued so far (they run one after another).
    hooks: Option<tokio::task::JoinHandle<()>>,
    /// The last session's discovery result, for ip-down after it ended.
    last_established: Option<Established>,
    /// A failure of ours (not the link's) that ended the session: exit code
    /// and message, reported instead of a clean close.
    local_failure: Option<(u8, String)>,
    /// SIGHUP: end the link and re-dial (with `persist`), as pppd does.
    hangup: bool,
    /// A scan's kernel queries running on the blocking pool.
    scan_task: Option<tokio::task::JoinHandle<(Trigger, manager::Gathered)>>,
}

/// Runs the dialer until it is told to stop or gives up.
pub async fn run(options: DialConfig) -> Exit {
    let socket = match PacketSocket::open(&options.iface) {
        Ok(socket) => socket,
        Err(PacketSocketError::InterfaceMissing(name)) => {
            return Exit::fail(
                exit::INTERFACE_MISSING,
                format!("interface {name} does not exist"),
            )
        }
        Err(PacketSocketError::NotPermitted) => {
            return Exit::fail(
                exit::NOT_PERMITTED,
                "opening a packet socket needs CAP_NET_RAW (run as root or grant the capability)",
            )
        }
        // Not an Ethernet interface (lo, a TUN, ...): the configuration is wrong.
        Err(PacketSocketError::Io(error)) if error.kind() == std::io::ErrorKind::InvalidInput => {
            return Exit::fail(exit::USAGE, format!("--iface {}: {error}", options.iface))
        }
        Err(error) => {
            return Exit::fail(
                exit::INTERNAL_ERROR,
                format!("packet socket on {}: {error}", options.iface),
            )
        }
    };
    let netlink = match Netlink::connect() {
        Ok(netlink) => netlink,
        Err(error) => return Exit::fail(exit::INTERNAL_ERROR, format!("netlink: {error}")),
    };
    let mut watcher = match LinkWatcher::new(&options.iface) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            return Exit::fail(
                exit::INTERNAL_ERROR,
                format!("netlink link events: {error}"),
            )
        }
    };
    let group_id = |key: &str, name: &Option<String>| match name {
        Some(name) => crate::config::group_id(key, name).map(Some),
        None => Ok(None),
    };
    let access = match (
        group_id("control-group", &options.control_group),
        group_id("control-read-group", &options.control_read_group),
    ) {
        (Ok(group), Ok(read_group)) => Access {
            // The socket answers to the user the daemon runs as.
            owner_uid: options
                .run_as
                .as_ref()
                .map_or_else(|| nix::unistd::geteuid().as_raw(), |user| user.uid),
            group,
            read_group,
        },
        (Err(error), _) | (_, Err(error)) => return Exit::fail(exit::USAGE, error.to_string()),
    };
    let (control, mut requests) = match ControlServer::start(&options.control, access).await {
        Ok(started) => started,
        Err(error) => return Exit::fail(exit::USAGE, error.to_string()),
    };
    let capture = match &options.capture {
        Some(path) => match Capture::create(path) {
            Ok(mut capture) => {
                capture.set_redact_pap(!options.capture_secrets);
                Some(capture)
            }
            Err(error) => return Exit::fail(exit::USAGE, error.to_string()),
        },
        None => None,
    };
    let mut sigterm = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => return Exit::fail(exit::INTERNAL_ERROR, format!("signal handler: {error}")),
    };
    let mut sighup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(error) => return Exit::fail(exit::INTERNAL_ERROR, format!("signal handler: {error}")),
    };
    let mut sigint = match signal(SignalKind::interrupt()) {
        Ok(s) => s,
        Err(error) => return Exit::fail(exit::INTERNAL_ERROR, format!("signal handler: {error}")),
    };

    // Everything that needs more than CAP_NET_ADMIN and CAP_NET_RAW is open
    // now: keep only those two, as --run-as's user if one is configured.
    match crate::privileges::drop_privileges(options.run_as.as_ref(), options.name_owners) {
        Ok(kept) => tracing::info!(
            uid = nix::unistd::getuid().as_raw(),
            capabilities = %kept,
            "privileges dropped"
        ),
        Err(error) => return Exit::fail(exit::NOT_PERMITTED, error.to_string()),
    }

    let our_mac = socket.mac();
    let session_config = options.session_config(our_mac);
    let seed = options.seed.unwrap_or_else(|| {
        let mut seed = [0; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        seed
    });
    let session = Session::new(session_config, seed);
    let mut daemon = Daemon {
        options,
        socket,
        netlink,
        session,
        tun: None,
        coalescer: Coalescer::new(false, false),
        capture,
        counters: Counters::default(),
        open: Open::default(),
        supervisor: Supervisor::Dialing,
        our_mac,
        ipv4: None,
        ipv6: None,
        up_since: None,
        session_reached_up: false,
        redials: 0,
        consecutive_failures: 0,
        last_failure: None,
        exit: None,
        peer_dns: None,
        mss: None,
        control,
        ports: None,
        recent_events: VecDeque::new(),
        awaiting_redial: None,
        previous_address: None,
        socket_retry: None,
        hooks: None,
        last_established: None,
        local_failure: None,
        hangup: false,
        scan_task: None,
    };
    daemon.ports = daemon
        .options
        .ports
        .clone()
        .map(|config| PortManager::new(config, Instant::now()));
    tracing::info!(iface = %daemon.options.iface, mac = %our_mac, "portdial starting");
    daemon.clear_stale_session().await;
    let now = Instant::now();
    if daemon.carrier().await {
        daemon.session.open(now);
    } else {
        tracing::info!(iface = %daemon.options.iface, "no carrier; waiting for it before dialing");
        daemon.supervisor = Supervisor::WaitingCarrier;
    }
    daemon.flush(now).await;

    // Allocated once: a receive batch of session frames, and the TUN reads
    // (segments of super-packets with offloads) waiting for one sendmmsg.
    let mut rx: Vec<Box<[u8]>> = (0..BATCH)
        .map(|_| vec![0u8; FRAME_BUFFER].into_boxed_slice())
        .collect();
    let mut rx_lens = [0usize; BATCH];
    let mut upstream = Segments::new(FRAME_BUFFER);
    let mut timer = match crate::timer::DeadlineTimer::new() {
        Ok(timer) => timer,
        Err(error) => return Exit::fail(exit::INTERNAL_ERROR, format!("timerfd: {error}")),
    };
    while daemon.exit.is_none() {
        let wake = daemon.next_wake();
        tokio::select! {
            result = socket_recv(&daemon.socket, daemon.socket_retry.is_some(), &mut rx, &mut rx_lens) => {
                let now = Instant::now();
                match result {
                    Ok(count) => {
                        for (frame, &len) in rx.iter_mut().zip(&rx_lens).take(count) {
                            daemon.on_frame(now, frame, len);
                        }
                    }
                    Err(error) => daemon.on_socket_error(now, error),
                }
                daemon.write_to_tun();
            }
            result = tun_recv(daemon.tun.as_ref(), &mut upstream) => {
                match result {
                    Ok(len) => daemon.on_tun_reads(Instant::now(), &mut upstream, len),
                    Err(error) => daemon.on_tun_error(Instant::now(), &error),
                }
            }
            fired = timer.wait(wake) => {
                if let Err(error) = fired {
                    daemon.exit = Some(Exit::fail(exit::INTERNAL_ERROR, format!("timerfd: {error}")));
                    continue;
                }
                daemon.on_timer(Instant::now());
            }
            event = link_event(&mut watcher) => {
                match event {
                    Ok(LinkEvent::Changed(info)) if info.name == daemon.options.iface => {
                        daemon.on_carrier(Instant::now(), info.carrier)
                    }
                    Ok(LinkEvent::Removed { name, .. }) if name == daemon.options.iface => {
                        daemon.on_carrier(Instant::now(), false)
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "netlink link events failed; carrier is no longer watched");
                        watcher = None;
                    }
                }
            }
            Some(incoming) = requests.recv() => daemon.on_request(Instant::now(), incoming),
            _ = sigterm.recv() => daemon.on_signal(Instant::now()),
            _ = sigint.recv() => daemon.on_signal(Instant::now()),
            _ = sighup.recv() => daemon.on_hangup(Instant::now()),
            gathered = scan_result(&mut daemon.scan_task) => {
                daemon.scan_task = None;
                match gathered {
                    Ok((trigger, gathered)) => daemon.on_scan_gathered(Instant::now(), trigger, gathered),
                    Err(error) => tracing::warn!(%error, "port scan task failed"),
                }
            }
        }
        daemon.flush(Instant::now()).await;
    }
    // ip-down (and any release hooks) run before we are gone.
    daemon.finish_hooks().await;
    daemon.exit.take().unwrap_or_else(Exit::ok)
}

/// The packet socket's next frames, one `recvmmsg` into `bufs` (lengths in
/// `lens`); never ready while the socket is being reopened.
async fn socket_recv(
    socket: &PacketSocket,
    broken: bool,
    bufs: &mut [Box<[u8]>],
    lens: &mut [usize],
) -> std::io::Result<usize> {
    if broken {
        return std::future::pending().await;
    }
    socket.recv_batch(bufs, lens).await
}

/// The running scan's result; never ready when none runs.
async fn scan_result(
    task: &mut Option<tokio::task::JoinHandle<(Trigger, manager::Gathered)>>,
) -> Result<(Trigger, manager::Gathered), tokio::task::JoinError> {
    match task {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

/// One read from the TUN into `segments`: the raw buffer with offloads,
/// the next free segment buffer past the headroom without.
async fn tun_recv(tun: Option<&Tun>, segments: &mut Segments) -> std::io::Result<usize> {
    match tun {
        Some(tun) => {
            tun.recv(segments.read_buffer(tun.offloads().tcp, HEADROOM))
                .await
        }
        None => std::future::pending().await,
    }
}

async fn link_event(watcher: &mut Option<LinkWatcher>) -> std::io::Result<LinkEvent> {
    match watcher {
        Some(watcher) => watcher.next().await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    fn next_wake(&self) -> Option<Instant> {
        let supervisor = match self.supervisor {
            Supervisor::Holdoff { until } => Some(until),
            Supervisor::Stopping { deadline } => Some(deadline),
            _ => None,
        };
        let ports = self.ports.as_ref().and_then(PortManager::next_wake);
        [
            self.session.poll_timeout(),
            supervisor,
            ports,
            self.socket_retry,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    async fn carrier(&self) -> bool {
        match self.netlink.link_info(&self.options.iface).await {
            Ok(Some(info)) => info.carrier,
            _ => true,
        }
    }

    /// ISPs keep a session for minutes after a client vanished and may refuse a
    /// new one meanwhile: end the one we recorded before we died.
    async fn clear_stale_session(&mut self) {
        let path = self.options.state_file.clone();
        let Some(record) = state_file::load(&path) else {
            return;
        };
        if record.iface != self.options.iface {
            return;
        }
        tracing::info!(
            ac = %record.ac_mac,
            session_id = record.session_id,
            "sending PADT for the stale session recorded at the last run"
        );
        let frame = self.session.discovery().padt_frame(
            record.ac_mac,
            record.session_id,
            "portdial: stale session",
        );
        self.send_frame(&frame);
        if let Err(error) = state_file::clear(&path) {
            tracing::warn!(%error, "cannot clear the state file");
        }
    }

    fn send_frame(&mut self, frame: &[u8]) {
        self.capture(frame);
        if let Err(error) = self.socket.try_send(frame) {
            tracing::debug!(%error, "packet socket send failed");
        }
    }

    fn capture(&mut self, frame: &[u8]) {
        if let Some(capture) = &mut self.capture {
            if let Err(error) = capture.write(frame, SystemTime::now()) {
                tracing::warn!(%error, "capture stopped");
                self.capture = None;
            }
        }
    }

    /// One received frame: the session's, and a data frame's packet goes to
    /// the TUN: merged into the held GRO super-packet where the TUN has
    /// offloads, else written at once from the receive buffer.
    fn on_frame(&mut self, now: Instant, rx: &mut [u8], len: usize) {
        let Some(frame) = rx.get_mut(..len) else {
            return;
        };
        self.capture(frame);
        if let Received::Data { payload, .. } = self.session.handle_frame(now, frame) {
            let payload = datapath::downstream(frame, payload, self.mss, &mut self.counters);
            if let Some(ports) = &mut self.ports {
                ports.account(now, Direction::Rx, &frame[payload.clone()]);
            }
            let Some(offloaded) = self.tun.as_ref().map(|tun| tun.offloads().tcp) else {
                self.counters.rx_dropped += 1;
                return;
            };
            let packet = &frame[payload];
            if offloaded {
                if self.coalescer.push(packet) {
                    return;
                }
                // It does not join what is held: that goes first.
                self.write_to_tun();
                if self.coalescer.push(packet) {
                    return;
                }
            }
            if let Some(tun) = &self.tun {
                if let Err(error) = tun.try_send(packet) {
                    tracing::debug!(%error, "TUN write failed");
                    self.counters.rx_dropped += 1;
                }
            }
        }
    }

    /// Writes the GRO super-packet held so far (if any) to the TUN.
    fn write_to_tun(&mut self) {
        let held = self.coalescer.segments();
        if held == 0 {
            return;
        }
        match &self.tun {
            Some(tun) => {
                if let Err(error) = tun.try_send_coalesced(&mut self.coalescer) {
                    // The queue full or the device down: all of it is lost.
                    tracing::debug!(%error, "TUN write failed");
                    self.counters.rx_dropped += held as u64;
                }
            }
            None => {
                self.counters.rx_dropped += held as u64;
                let _ = self.coalescer.finish();
            }
        }
    }

    /// A wake-up of the TUN with its first read (`len` bytes in
    /// `segments`' read buffer) done: reads on until nothing is queued or
    /// the bound is reached, and sends the frames gathered in `sendmmsg`
    /// batches, whenever the buffers run short and at the end.
    fn on_tun_reads(&mut self, now: Instant, segments: &mut Segments, len: usize) {
        let mut gathered = self.on_tun_read(now, segments, len);
        for _ in 1..BATCH {
            let Some(offloaded) = self.tun.as_ref().map(|tun| tun.offloads().tcp) else {
                break;
            };
            if gathered >= UPSTREAM_FRAMES_PER_WAKE {
                break;
            }
            // A super-packet may need MAX_SEGMENTS buffers, a packet one.
            if segments.room() < if offloaded { offload::MAX_SEGMENTS } else { 1 } {
                self.send_upstream(segments);
            }
            let Some(tun) = self.tun.as_ref() else { break };
            match tun.try_recv(segments.read_buffer(offloaded, HEADROOM)) {
                Ok(len) => gathered += self.on_tun_read(now, segments, len),
                Err(_) => break,
            }
        }
        self.send_upstream(segments);
    }

    /// One read from the TUN (`len` bytes in `segments`' read buffer): a
    /// packet, or with offloads a super-packet cut into segments here. Each
    /// segment is accounted, clamped and encapsulated on its own, as if it
    /// had been read alone, and waits in `segments` for
    /// [`send_upstream`](Self::send_upstream). Returns how many packets
    /// the read held.
    fn on_tun_read(&mut self, now: Instant, segments: &mut Segments, len: usize) -> usize {
        let offloaded = self.tun.as_ref().is_some_and(|tun| tun.offloads().tcp);
        let first = segments.used;
        let count = if offloaded {
            let limit = usize::from(self.segment_limit());
            let (Some(raw), Some(bufs), Some(lens)) = (
                segments.raw.get_mut(..len),
                segments.bufs.get_mut(first..),
                segments.lens.get_mut(first..),
            ) else {
                self.counters.tx_dropped += 1;
                return 0;
            };
            match offload::split(raw, bufs, lens, HEADROOM, limit) {
                Ok(count) => count,
                Err(error) => {
                    tracing::debug!(%error, len, "dropping a packet from the TUN");
                    self.counters.tx_dropped += 1;
                    return 0;
                }
            }
        } else {
            let Some(slot) = segments.lens.get_mut(first) else {
                self.counters.tx_dropped += 1;
                return 0;
            };
            *slot = len;
            1
        };
        let Some(encap) = self.session.encap().copied() else {
            self.counters.tx_dropped += count as u64;
            return count;
        };
        let held = segments
            .bufs
            .iter_mut()
            .zip(&segments.lens)
            .zip(&mut segments.frames)
            .skip(first)
            .take(count);
        for ((buf, &len), frame) in held {
            if let (Some(ports), Some(packet)) =
                (&mut self.ports, buf.get(HEADROOM..HEADROOM + len))
            {
                ports.account(now, Direction::Tx, packet);
            }
            // A dropped packet (counted) leaves an empty frame, skipped.
            *frame = datapath::upstream(buf, len, &encap, self.open, self.mss, &mut self.counters)
                .unwrap_or_default();
        }
        segments.used = first + count;
        count
    }

    /// Sends the frames gathered in `segments`, up to
    /// [`packet_socket::MAX_BATCH`] per `sendmmsg`, and empties it. What
    /// the socket does not take (its buffer full) is dropped and counted.
    fn send_upstream(&mut self, segments: &mut Segments) {
        let used = std::mem::take(&mut segments.used);
        let mut held = segments
            .bufs
            .iter()
            .zip(&segments.frames)
            .take(used)
            .filter_map(|(buf, frame)| buf.get(frame.clone()))
            .filter(|frame| !frame.is_empty())
            .peekable();
        let mut batch: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
        while held.peek().is_some() {
            let mut ready = 0;
            for (slot, frame) in batch.iter_mut().zip(&mut held) {
                *slot = frame;
                ready += 1;
            }
            if let Some(capture) = &mut self.capture {
                for frame in &batch[..ready] {
                    if let Err(error) = capture.write(frame, SystemTime::now()) {
                        tracing::warn!(%error, "capture stopped");
                        self.capture = None;
                        break;
                    }
                }
            }
            let mut sent = 0;
            while sent < ready {
                match self.socket.try_send_batch(&batch[sent..ready]) {
                    Ok(0) | Err(_) => break,
                    Ok(taken) => sent += taken,
                }
            }
            self.counters.tx_dropped += (ready - sent) as u64;
        }
    }

    /// The largest IP packet the session carries: the TUN's MTU.
    fn segment_limit(&self) -> u16 {
        let negotiated = [
            self.ipv4.as_ref().map(|info| info.mtu),
            self.ipv6.as_ref().map(|info| info.mtu),
        ];
        let negotiated = negotiated.into_iter().flatten().min();
        self.options.tun_mtu(negotiated.unwrap_or(self.options.mtu))
    }

    /// A receive error that is not "nothing to read": the interface went down
    /// or away. Stop polling the socket (an error returned at once would spin
    /// the loop) and reopen it shortly; the carrier watcher handles the link.
    fn on_socket_error(&mut self, now: Instant, error: std::io::Error) {
        tracing::info!(%error, iface = %self.options.iface, "packet socket failed; reopening it");
        self.socket_retry = Some(now + std::time::Duration::from_secs(1));
    }

    fn reopen_socket(&mut self, now: Instant) {
        match PacketSocket::open(&self.options.iface) {
            Ok(socket) => {
                tracing::info!(iface = %self.options.iface, "packet socket reopened");
                self.socket = socket;
                self.socket_retry = None;
            }
            Err(error) => {
                tracing::debug!(%error, "packet socket not reopened yet");
                self.socket_retry = Some(now + std::time::Duration::from_secs(1));
            }
        }
    }

    /// The TUN failed under us (deleted by someone, say): the session cannot
    /// carry traffic any more, so end it cleanly (Terminate, PADT, ip-down);
    /// with `persist` the re-dial creates a new TUN and runs ip-up again, as
    /// pppd does for a new link: that also restores whatever the user's
    /// ip-up had attached to the interface, which went with it.
    fn on_tun_error(&mut self, now: Instant, error: &std::io::Error) {
        // A read on a TUN deleted under us (`ip link del`) fails with EBADFD:
        // the link is gone as surely as after a PADT (exit 10 without
        // --persist); any other TUN failure is ours.
        let (code, error) = match error.raw_os_error() {
            Some(libc::EBADFD) => (
                exit::LINK_LOST,
                format!("{} was deleted", self.options.tun_name),
            ),
            _ => (exit::INTERNAL_ERROR, error.to_string()),
        };
        tracing::warn!(%error, interface = %self.options.tun_name, persist = self.options.persist, "the TUN interface failed; ending the session");
        self.tun = None;
        self.open = Open::default();
        self.local_failure = Some((code, format!("the TUN interface failed: {error}")));
        self.session.close(now, "TUN interface lost");
    }

    fn on_timer(&mut self, now: Instant) {
        if self.socket_retry.is_some_and(|at| now >= at) {
            self.reopen_socket(now);
        }
        match self.supervisor {
            Supervisor::Holdoff { until } if now >= until => self.dial(now),
            Supervisor::Stopping { deadline } if now >= deadline => {
                tracing::info!(
                    "the peer did not acknowledge our Terminate-Request in time; exiting"
                );
                self.exit = Some(Exit::ok());
            }
            _ => {}
        }
        self.session.handle_timeout(now);
        // A due scan gathers the kernel's sockets and their owners on the
        // blocking pool, so forwarding and timers never wait on it.
        if self.scan_task.is_none() {
            if let Some(trigger) = self.ports.as_mut().and_then(|ports| ports.due(now)) {
                self.scan_task = Some(tokio::task::spawn_blocking(move || {
                    (trigger, manager::Gathered::collect())
                }));
            }
        }
    }

    /// A background gather finished: judge and act on it.
    fn on_scan_gathered(&mut self, now: Instant, trigger: Trigger, gathered: manager::Gathered) {
        if let Some(outcome) = self
            .ports
            .as_mut()
            .and_then(|ports| ports.finish(now, trigger, gathered))
        {
            self.apply(outcome);
        }
    }

    /// Carries out what the port manager asked for: packets toward local
    /// sockets into the TUN, resets toward the far ends through the session,
    /// events to subscribers, logs and the release hook.
    fn apply(&mut self, outcome: Outcome) {
        for packet in &outcome.to_tun {
            if let Some(tun) = &self.tun {
                if let Err(error) = tun.try_send(packet) {
                    tracing::debug!(%error, "cannot inject a reset into the TUN");
                }
            }
        }
        for packet in &outcome.to_session {
            self.send_ip(packet);
        }
        let released = outcome
            .events
            .iter()
            .filter(|e| matches!(e, PortEvent::PortReleased { .. }))
            .count();
        for event in outcome.events {
            self.publish(&event);
            if let (PortEvent::PortReleased { .. }, Some(script)) = (
                &event,
                self.ports
                    .as_ref()
                    .and_then(|p| p.config().on_release.clone()),
            ) {
                let env = release_env(&event);
                self.queue_hook(move || run_release_hook(&script, &env));
            }
        }
        // Claim 6: after releasing, check the session; the supervisor re-dials
        // a session that is down.
        if released > 0 {
            let up = self.session.phase() == Phase::Running;
            let action = match (up, self.options.persist) {
                (true, _) => "none",
                (false, true) => "redial",
                (false, false) => "exit",
            };
            self.publish(&PortEvent::SessionChecked { up, action });
        }
    }

    /// Sends an IP packet the daemon built itself through the session.
    fn send_ip(&mut self, packet: &[u8]) {
        let Some(encap) = self.session.encap().copied() else {
            return;
        };
        let mut buf = vec![0u8; HEADROOM + packet.len()];
        buf[HEADROOM..].copy_from_slice(packet);
        let mut counters = Counters::default();
        if let Some(range) = datapath::upstream(
            &mut buf,
            packet.len(),
            &encap,
            self.open,
            None,
            &mut counters,
        ) {
            self.capture(&buf[range.clone()]);
            if let Err(error) = self.socket.try_send(&buf[range]) {
                tracing::debug!(%error, "cannot send a reset to the far end");
            }
        }
    }

    /// Publishes an event to subscribers and keeps it for `portdial events`.
    fn publish(&mut self, event: &PortEvent) {
        self.control.publish(event);
        if let Ok(value) = serde_json::to_value(event) {
            if self.recent_events.len() == 100 {
                self.recent_events.pop_front();
            }
            self.recent_events.push_back(value);
        }
    }

    fn dial(&mut self, now: Instant) {
        self.supervisor = Supervisor::Dialing;
        self.redials += 1;
        self.session_reached_up = false;
        tracing::info!(redials = self.redials, "re-dialing");
        self.session.open(now);
    }

    fn on_carrier(&mut self, now: Instant, carrier: bool) {
        match (carrier, self.supervisor) {
            (false, Supervisor::Dialing) => {
                tracing::info!(iface = %self.options.iface, "carrier lost");
                self.session.carrier_lost(now);
            }
            (false, Supervisor::Holdoff { .. }) => self.supervisor = Supervisor::WaitingCarrier,
            (true, Supervisor::WaitingCarrier) => {
                tracing::info!(iface = %self.options.iface, "carrier is back");
                let until = now + self.options.holdoff;
                self.supervisor = Supervisor::Holdoff { until };
            }
            _ => {}
        }
    }

    fn on_signal(&mut self, now: Instant) {
        match self.supervisor {
            Supervisor::Stopping { .. } => {
                tracing::info!("second signal: exiting at once");
                self.exit = Some(Exit::ok());
            }
            Supervisor::Dialing if self.session.phase() != Phase::Dead => {
                tracing::info!("terminating the session");
                // Terminate-Request is retried max-terminate times at the restart
                // interval; give it that long, then leave anyway.
                let fsm = portdial_ppp::fsm::FsmConfig::default();
                let grace = fsm.restart_interval * (fsm.max_terminate + 1);
                self.supervisor = Supervisor::Stopping {
                    deadline: now + grace,
                };
                self.session.close(now, "User request");
            }
            _ => self.exit = Some(Exit::ok()),
        }
    }

    /// SIGHUP, as pppd: end the link (Terminate, PADT); with `persist` dial
    /// again at once, otherwise exit.
    fn on_hangup(&mut self, now: Instant) {
        match self.supervisor {
            Supervisor::Dialing if self.session.phase() != Phase::Dead => {
                tracing::info!("SIGHUP: ending the link");
                self.hangup = true;
                self.session.close(now, "SIGHUP");
            }
            Supervisor::Holdoff { .. } | Supervisor::WaitingCarrier if self.options.persist => {
                tracing::info!("SIGHUP: dialing now");
                self.dial(now);
            }
            Supervisor::Stopping { .. } => {}
            _ => self.exit = Some(Exit::ok()),
        }
    }

    fn on_request(&mut self, now: Instant, incoming: Incoming) {
        let response = match incoming.request {
            Request::Status => Response::Status {
                ok: true,
                status: Box::new(self.status()),
            },
            Request::History => Response::data(&self.recent_events),
            // Answered by the control server itself.
            Request::Events => Response::error("events are streamed by the control socket"),
            request => self.port_request(now, request),
        };
        let _ = incoming.reply.send(response);
    }

    fn port_request(&mut self, now: Instant, request: Request) -> Response {
        let Some(ports) = &mut self.ports else {
            return Response::error("the port manager is off (--no-port-manager)");
        };
        if ports.addresses().is_empty() && !matches!(request, Request::Sleep { .. }) {
            return Response::error("the session is not up: no ports to look at");
        }
        match request {
            Request::Ports => {
                // Judge now without acting, so the table is current.
                let outcome = ports.scan(now, Trigger::Request, false);
                Response::data(&outcome.rows)
            }
            Request::Scan => {
                let outcome = ports.scan(now, Trigger::Request, true);
                let rows = outcome.rows.clone();
                let events = outcome.events.clone();
                self.apply(outcome);
                Response::data(serde_json::json!({ "ports": rows, "events": events }))
            }
            Request::Release { phantoms: true, .. } => {
                let outcome = ports.scan(now, Trigger::Request, true);
                let events = outcome.events.clone();
                self.apply(outcome);
                Response::data(serde_json::json!({ "events": events }))
            }
            Request::Release {
                port: Some(port),
                proto,
                ..
            } => {
                let proto = match proto.as_deref() {
                    None => None,
                    Some("tcp") => Some(Proto::Tcp),
                    Some("udp") => Some(Proto::Udp),
                    Some(other) => {
                        return Response::error(format!("unknown protocol {other:?}: tcp or udp"))
                    }
                };
                match ports.release_port(now, proto, port) {
                    Ok(outcome) => {
                        let events = outcome.events.clone();
                        self.apply(outcome);
                        Response::data(serde_json::json!({ "events": events }))
                    }
                    Err(message) => Response::error(message),
                }
            }
            Request::Release { .. } => Response::error("release needs a port or --phantoms"),
            Request::Sleep { on } => {
                ports.set_asleep(now, on);
                tracing::info!(asleep = on, "terminal sleep state");
                Response::data(serde_json::json!({ "asleep": on }))
            }
            Request::Status | Request::History | Request::Events => {
                Response::error("unexpected request")
            }
        }
    }

    fn status(&self) -> Status {
        let phase = match self.supervisor {
            Supervisor::Holdoff { .. } | Supervisor::WaitingCarrier => "holdoff",
            _ => self.session.phase().as_str(),
        };
        let established = self.session.established();
        Status {
            phase: phase.to_string(),
            interface: self.options.tun_name.clone(),
            session_id: established.map(|e| e.session_id),
            ac_mac: established.map(|e| e.ac_mac.to_string()),
            ac_name: established.and_then(|e| e.ac_name.clone()),
            local_ip: self.ipv4.as_ref().map(|i| i.local.to_string()),
            peer_ip: self
                .ipv4
                .as_ref()
                .and_then(|i| i.peer.map(|p| p.to_string())),
            dns: self
                .ipv4
                .as_ref()
                .map(|i| i.dns.iter().map(Ipv4Addr::to_string).collect())
                .unwrap_or_default(),
            mtu: self
                .ipv4
                .as_ref()
                .map(|i| i.mtu)
                .or(self.ipv6.as_ref().map(|i| i.mtu)),
            uptime_s: self.up_since.map(|t| t.elapsed().as_secs()).unwrap_or(0),
            redials: self.redials,
            last_failure: self.last_failure.clone(),
            tx_packets: self.counters.tx_packets,
            rx_packets: self.counters.rx_packets,
            tx_bytes: self.counters.tx_bytes,
            rx_bytes: self.counters.rx_bytes,
            malformed_frames: self.session.stats().malformed,
        }
    }

    /// Sends what the session queued and acts on its events.
    async fn flush(&mut self, now: Instant) {
        if let Some(capture) = &mut self.capture {
            let _ = capture.flush();
        }
        loop {
            while let Some(frame) = self.session.poll_transmit() {
                self.send_frame(&frame);
            }
            let Some(event) = self.session.poll_event() else {
                break;
            };
            self.on_session_event(now, event).await;
        }
    }

    async fn on_session_event(&mut self, now: Instant, event: SessionEvent) {
        match event {
            SessionEvent::Phase(_) | SessionEvent::Authenticated { .. } => {}
            SessionEvent::DiscoveryComplete(established) => {
                self.last_established = Some(established.clone());
                let record = SessionState {
                    iface: self.options.iface.clone(),
                    ac_mac: established.ac_mac,
                    session_id: established.session_id,
                    our_mac: self.our_mac,
                    since: SystemTime::now(),
                };
                if let Err(error) = state_file::save(&self.options.state_file, &record) {
                    tracing::warn!(%error, "cannot record the session");
                }
            }
            SessionEvent::Ipv4Up(info) => {
                let previous = self.ipv4.clone();
                if let Err((code, message)) = self.configure_ipv4(&info, previous.as_ref()).await {
                    tracing::error!(%message, "cannot configure the TUN interface");
                    self.local_failure = Some((code, message));
                    self.session.close(now, "cannot configure the interface");
                    return;
                }
                self.open.ipv4 = true;
                self.ipv4 = Some(info.clone());
                self.mark_up(now);
                if let Some(ports) = &mut self.ports {
                    // Schedules the after-dial-up scan; sockets left on an
                    // earlier address are judged phantom by it.
                    ports.set_addresses(now, vec![IpAddr::V4(info.local)]);
                }
                if self.awaiting_redial.take().is_some() {
                    let address_changed =
                        self.previous_address.is_some_and(|old| old != info.local);
                    self.publish(&PortEvent::RedialSucceeded {
                        address: info.local.to_string(),
                        address_changed,
                    });
                }
                self.previous_address = Some(info.local);
                self.run_hook(self.options.ip_up.clone(), &info, false);
            }
            SessionEvent::Ipv6Up(info) => {
                if let Err((_, message)) = self.configure_ipv6(&info).await {
                    tracing::warn!(%message, "cannot configure IPv6 on the TUN interface");
                    return;
                }
                self.open.ipv6 = true;
                self.ipv6 = Some(info);
                self.mark_up(now);
            }
            SessionEvent::Ipv4Down => {
                self.open.ipv4 = false;
                if let Some(info) = self.ipv4.clone() {
                    self.run_hook(self.options.ip_down.clone(), &info, true);
                }
                self.remove_resolv();
            }
            SessionEvent::Ipv6Down => self.open.ipv6 = false,
            SessionEvent::Down(cause) => self.on_down(now, cause),
        }
    }

    fn mark_up(&mut self, now: Instant) {
        if self.up_since.is_none() {
            self.up_since = Some(now);
        }
        self.session_reached_up = true;
        self.consecutive_failures = 0;
    }

    async fn ensure_tun(&mut self) -> Result<u32, LocalFailure> {
        if self.tun.is_none() {
            let create = if self.options.tun_offload {
                Tun::create_with_offloads
            } else {
                Tun::create
            };
            let tun = create(&self.options.tun_name).map_err(|error| match error {
                TunError::NotPermitted => (
                    exit::NOT_PERMITTED,
                    "creating a TUN needs CAP_NET_ADMIN".to_string(),
                ),
                other => (
                    exit::INTERNAL_ERROR,
                    format!("TUN {}: {other}", self.options.tun_name),
                ),
            })?;
            // IPv6CP negotiates the link-local address; without this the kernel
            // adds one of its own beside it.
            if let Err(error) = self
                .netlink
                .set_ipv6_no_auto_link_local(&self.options.tun_name)
            {
                tracing::debug!(%error, "cannot turn off the kernel's link-local address");
            }
            tracing::info!(interface = %tun.name(), offloads = ?tun.offloads(), "TUN created");
            let offloads = tun.offloads();
            self.coalescer = Coalescer::new(offloads.tcp, offloads.udp);
            self.tun = Some(tun);
        }
        let name = self.options.tun_name.clone();
        match self.netlink.link_index(&name).await {
            Ok(Some(index)) => Ok(index),
            Ok(None) => Err((exit::INTERNAL_ERROR, format!("TUN {name} vanished"))),
            Err(error) => Err(os_failure(format!("netlink: finding {name}"), error)),
        }
    }

    /// Configures IPv4 on the TUN. `previous` is what an earlier IPCP of the
    /// same session set (a renegotiation): the same address is already there;
    /// a different one replaces it.
    async fn configure_ipv4(
        &mut self,
        info: &Ipv4Info,
        previous: Option<&Ipv4Info>,
    ) -> Result<(), LocalFailure> {
        let index = self.ensure_tun().await?;
        let mtu = self.options.tun_mtu(info.mtu);
        self.mss = self.options.mss_for(mtu);
        let changed = previous.is_some_and(|old| old.local != info.local || old.peer != info.peer);
        let nl = &self.netlink;
        if changed {
            nl.flush_addresses(index)
                .await
                .map_err(|e| os_failure("remove the old addresses".into(), e))?;
        }
        nl.set_mtu(index, u32::from(mtu))
            .await
            .map_err(|e| os_failure(format!("set MTU {mtu}"), e))?;
        let added = match info.peer {
            Some(peer) => nl.add_ipv4_ptp(index, info.local, peer).await,
            None => nl.add_ipv4(index, info.local, 32).await,
        };
        match added {
            Ok(()) => {}
            // Renegotiated to the same address: it is in place already.
            Err(error) if error.raw_os_error() == Some(libc::EEXIST) => {}
            Err(error) => return Err(os_failure(format!("add address {}", info.local), error)),
        }
        nl.set_up(index)
            .await
            .map_err(|e| os_failure("bring up".into(), e))?;
        if changed {
            if let Some(v6) = self.ipv6 {
                self.configure_ipv6(&v6).await?;
            }
        }
        let nl = &self.netlink;
        if self.options.default_route {
            if let Err(error) = nl.add_default_route_v4(index).await {
                tracing::warn!(%error, "not replacing the existing default route");
            }
        }
        if self.options.usepeerdns && self.peer_dns.is_none() {
            match PeerDns::install(&self.options.resolv_conf, &info.dns) {
                Ok(installed) => self.peer_dns = installed,
                Err(error) => tracing::warn!(%error, "cannot write the DNS servers"),
            }
        }
        tracing::info!(
            interface = %self.options.tun_name,
            local = %info.local,
            peer = ?info.peer,
            mtu,
            "network up"
        );
        Ok(())
    }

    async fn configure_ipv6(&mut self, info: &Ipv6Info) -> Result<(), LocalFailure> {
        let index = self.ensure_tun().await?;
        // Up first: on a link that is down the kernel installs no IPv6 routes,
        // and add_ipv6_ptp waits for them (when IPv6CP opens before IPCP, no
        // one else has brought the TUN up yet).
        self.netlink
            .set_up(index)
            .await
            .map_err(|e| os_failure("bring up".into(), e))?;
        let local: Ipv6Addr = link_local(info.local_id);
        let result = match info.peer_id {
            Some(peer) => {
                self.netlink
                    .add_ipv6_ptp(index, local, link_local(peer))
                    .await
            }
            None => self.netlink.add_ipv6(index, local, 64).await,
        };
        match result {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(libc::EEXIST) => {}
            Err(error) => return Err(os_failure(format!("add {local}"), error)),
        }
        tracing::info!(interface = %self.options.tun_name, %local, "IPv6 link-local up");
        Ok(())
    }

    fn remove_resolv(&mut self) {
        if let Some(peer_dns) = self.peer_dns.take() {
            if let Err(error) = peer_dns.remove() {
                tracing::warn!(%error, "cannot remove the DNS servers we wrote");
            }
        }
    }

    /// Starts a hook script in the background. Hooks run one after another
    /// (ip-down waits for ip-up, release hooks queue), and never hold up the
    /// device loop: pppd runs its scripts asynchronously too.
    fn run_hook(&mut self, script: Option<PathBuf>, info: &Ipv4Info, down: bool) {
        let Some(script) = script else { return };
        // ip-down runs after Session::finish cleared the session: use what was
        // recorded when it was established.
        let established = self
            .session
            .established()
            .or(self.last_established.as_ref());
        let mut env = HookEnv::new(&self.options.tun_name, &self.options.iface, info.local);
        env.remote = info.peer;
        env.dns = info.dns.clone();
        env.usepeerdns = self.options.usepeerdns;
        env.peer_name = established.and_then(|e| e.ac_name.clone());
        env.ac_name = env.peer_name.clone();
        env.ac_mac = established.map(|e| e.ac_mac);
        env.session_id = established.map(|e| e.session_id);
        if down {
            env.stats = Some(LinkStats {
                connect_time: self.up_since.map(|t| t.elapsed()).unwrap_or_default(),
                bytes_sent: self.counters.tx_bytes,
                bytes_received: self.counters.rx_bytes,
            });
        }
        self.queue_hook(move || match hooks::run_hook(&script, &env) {
            Ok(outcome) if outcome.status.success() => {}
            Ok(outcome) => {
                tracing::warn!(script = %script.display(), status = %outcome.status, output = %outcome.output, "hook script failed")
            }
            Err(error) => tracing::warn!(%error, "hook script could not run"),
        });
    }

    /// Runs `job` on the blocking pool after every hook queued before it.
    fn queue_hook(&mut self, job: impl FnOnce() + Send + 'static) {
        let previous = self.hooks.take();
        self.hooks = Some(tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            if let Err(error) = tokio::task::spawn_blocking(job).await {
                tracing::warn!(%error, "hook task failed");
            }
        }));
    }

    /// Waits for the queued hooks (ip-down on the way out), bounded.
    async fn finish_hooks(&mut self) {
        if let Some(hooks) = self.hooks.take() {
            // Each hook is bounded to 30 s plus a 2 s grace by hooks::run_hook.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(70), hooks).await;
        }
    }

    fn on_down(&mut self, now: Instant, cause: DownCause) {
        let failure = self.local_failure.take();
        let hangup = std::mem::take(&mut self.hangup);
        // Our own orderly close (SIGTERM, or SIGHUP): nothing was lost.
        let local_close = (matches!(cause, DownCause::LocalClose { .. }) && failure.is_none())
            || matches!(self.supervisor, Supervisor::Stopping { .. });
        let had_addresses = self
            .ports
            .as_ref()
            .is_some_and(|p| !p.addresses().is_empty());
        if !local_close && had_addresses {
            // Claim 7: the link is gone, so every port on its address is dead:
            // release them now, while the TUN and its address still exist.
            let reason = cause.to_string();
            if let Some(outcome) = self.ports.as_mut().map(|ports| ports.release_all(&reason)) {
                self.apply(outcome);
            }
            self.awaiting_redial = Some(reason);
        } else if !local_close && self.awaiting_redial.is_some() {
            self.publish(&PortEvent::RedialFailed {
                reason: cause.to_string(),
            });
        }
        if let Some(ports) = &mut self.ports {
            ports.set_addresses(now, Vec::new());
        }
        // The TUN goes with the session: dropping it removes the interface and
        // its routes.
        self.tun = None;
        self.open = Open::default();
        self.ipv4 = None;
        self.ipv6 = None;
        self.up_since = None;
        self.remove_resolv();
        let _ = state_file::clear(&self.options.state_file);
        self.mss = None;
        self.last_failure = Some(
            failure
                .as_ref()
                .map_or_else(|| cause.to_string(), |(_, m)| m.clone()),
        );
        if let Supervisor::Stopping { .. } = self.supervisor {
            self.exit = Some(Exit::ok());
            return;
        }
        if let Some((code, message)) = failure {
            // A failure of ours: its own exit code, and it counts toward maxfail.
            if !self.options.persist {
                self.exit = Some(Exit::fail(code, message));
                return;
            }
            self.session_reached_up = false;
        } else if hangup {
            if !self.options.persist {
                self.exit = Some(Exit::ok());
                return;
            }
            tracing::info!("SIGHUP: re-dialing");
            self.supervisor = Supervisor::Holdoff { until: now };
            return;
        } else if !self.options.persist {
            let code = exit_code_for(&cause);
            self.exit = Some(if code == exit::OK {
                Exit::ok()
            } else {
                Exit::fail(code, cause.to_string())
            });
            return;
        }
        if !self.session_reached_up {
            self.consecutive_failures += 1;
        }
        if self.options.maxfail_reached(self.consecutive_failures) {
            self.exit = Some(Exit::fail(
                exit::MAXFAIL_REACHED,
                format!(
                    "{} consecutive failed attempts (maxfail); last: {cause}",
                    self.consecutive_failures
                ),
            ));
            return;
        }
        if cause == DownCause::CarrierLost {
            self.supervisor = Supervisor::WaitingCarrier;
            return;
        }
        let delay = self.options.holdoff_after(self.consecutive_failures);
        tracing::info!(%cause, delay_s = delay.as_secs_f32(), "link down; re-dialing after the holdoff");
        self.supervisor = Supervisor::Holdoff { until: now + delay };
    }
}

/// Answers `portdial status`.
pub async fn status(path: &std::path::Path) -> Result<Status, String> {
    match control::request(path, &Request::Status).await {
        Ok(Response::Status { status, .. }) => Ok(*status),
        Ok(Response::Error { error, .. }) => Err(error),
        Ok(Response::Data { .. }) => Err("unexpected answer to a status request".into()),
        Err(error) => Err(error.to_string()),
    }
}

/// A failure of ours that ends a session: the exit code it maps to, and why.
type LocalFailure = (u8, String);

/// An operating-system error while configuring: "not permitted" has its own
/// exit code, everything else is internal.
fn os_failure(what: String, error: std::io::Error) -> LocalFailure {
    let code = match error.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => exit::NOT_PERMITTED,
        _ => exit::INTERNAL_ERROR,
    };
    (code, format!("{what}: {error}"))
}

/// The environment of the `--on-release` hook: the event's fields.
fn release_env(event: &PortEvent) -> Vec<(String, String)> {
    let mut env = vec![("PORTDIAL_EVENT".to_string(), "port_released".to_string())];
    if let PortEvent::PortReleased {
        proto,
        port,
        pid,
        app,
        reason,
        reconnect,
        method,
    } = event
    {
        env.push(("PORTDIAL_PROTO".into(), proto.to_string()));
        env.push(("PORTDIAL_PORT".into(), port.to_string()));
        env.push((
            "PORTDIAL_PID".into(),
            pid.map(|p| p.to_string()).unwrap_or_default(),
        ));
        env.push(("PORTDIAL_APP".into(), app.clone().unwrap_or_default()));
        env.push(("PORTDIAL_REASON".into(), reason.clone()));
        env.push(("PORTDIAL_RECONNECT".into(), reconnect.to_string()));
        env.push(("PORTDIAL_METHOD".into(), method.to_string()));
    }
    env
}

/// Runs the release hook (on the blocking pool), bounded like the ip-up hooks.
fn run_release_hook(script: &std::path::Path, env: &[(String, String)]) {
    let mut command = std::process::Command::new(script);
    command
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env.iter().map(|(k, v)| (k, v)));
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match command.spawn() {
        Ok(mut child) => {
            let deadline = Instant::now() + std::time::Duration::from_secs(30);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        tracing::warn!(script = %script.display(), "the release hook did not finish in 30 s: killed");
                        break;
                    }
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, script = %script.display(), "the release hook could not run")
        }
    }
}

/// The human-readable form of `portdial status`.
pub fn render_status(status: &Status) -> String {
    let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
    let mut out = String::new();
    out.push_str(&format!("phase:        {}\n", status.phase));
    out.push_str(&format!("interface:    {}\n", status.interface));
    out.push_str(&format!(
        "session:      {} from {} ({})\n",
        status
            .session_id
            .map(|id| id.to_string())
            .unwrap_or_else(|| "-".into()),
        or_dash(&status.ac_mac),
        or_dash(&status.ac_name)
    ));
    out.push_str(&format!(
        "address:      {} peer {}\n",
        or_dash(&status.local_ip),
        or_dash(&status.peer_ip)
    ));
    out.push_str(&format!(
        "dns:          {}\n",
        if status.dns.is_empty() {
            "-".into()
        } else {
            status.dns.join(" ")
        }
    ));
    out.push_str(&format!(
        "mtu:          {}\n",
        status
            .mtu
            .map(|m| m.to_string())
            .unwrap_or_else(|| "-".into())
    ));
    out.push_str(&format!(
        "uptime:       {} s, {} re-dials\n",
        status.uptime_s, status.redials
    ));
    out.push_str(&format!(
        "last failure: {}\n",
        or_dash(&status.last_failure)
    ));
    out.push_str(&format!(
        "traffic:      tx {} packets / {} bytes, rx {} packets / {} bytes\n",
        status.tx_packets, status.tx_bytes, status.rx_packets, status.rx_bytes
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_cause() {
        use portdial_ppp::auth::AuthMethod;
        use portdial_ppp::discovery::DiscoveryError;
        let no_ac = DownCause::Discovery(DiscoveryError::NoOffer {
            attempts: 3,
            offers: 0,
        });
        assert_eq!(exit_code_for(&no_ac), exit::NO_ACCESS_CONCENTRATOR);
        let auth = DownCause::AuthFailed {
            method: AuthMethod::Pap,
            message: "no".into(),
        };
        assert_eq!(exit_code_for(&auth), exit::AUTH_FAILED);
        assert_eq!(
            exit_code_for(&DownCause::Loopback),
            exit::NEGOTIATION_FAILED
        );
        assert_eq!(
            exit_code_for(&DownCause::LocalClose { reason: "x".into() }),
            exit::OK
        );
    }
}
