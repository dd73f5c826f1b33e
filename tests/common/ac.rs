//! A scriptable hostile PPPoE access concentrator on a real wire: a veth pair
//! between two named network namespaces, an AF_PACKET socket
//! (`portdial::packet_socket`) in the server namespace, and a real
//! `portdial dial` in the client namespace (`common::lab::spawn_dialer`).
//!
//! The AC behaves well by default (PADO/PADS, LCP, PAP or CHAP-MD5, IPCP with
//! DNS, echo replies) and every step can be overridden: a hook sees each
//! received frame first and may stop the default handling, `Ac::with` runs
//! code inside the AC (inject any frame, change the script), and every frame
//! received is kept in a log so tests can assert what portdial answered.
//!
//! Frames are built and parsed with portdial-protocol only, apart from the
//! client; what the AC says is shared with the simulated AC of ppp/tests/sim
//! (ppp/tests/sim/ac_packets.rs).
//!
//! Needs root (namespaces, veth, raw sockets); without it the test fails and
//! says so.

#![allow(dead_code)]

#[path = "../../ppp/tests/sim/ac_packets.rs"]
mod ac_packets;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use portdial::packet_socket::PacketSocket;
use portdial_ppp::auth::chap_md5_response;
use portdial_protocol::chap;
use portdial_protocol::control::{self, Code};
use portdial_protocol::encap::{self, SessionEncap};
use portdial_protocol::ethernet::{self, MacAddr, VlanStack};
use portdial_protocol::ipcp::IpcpOption;
use portdial_protocol::pap;
use portdial_protocol::ppp::Protocol;
use portdial_protocol::pppoe::{Code as PppoeCode, DiscoveryRepr, Tag};
use tokio::sync::Notify;

pub use ac_packets::*;

use super::lab::{spawn_dialer, Dialer};

/// A MAC in the documentation range for the `n`th extra station.
pub fn doc_mac(n: u8) -> MacAddr {
    MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, n])
}
/// The veth ends: the client's (portdial's --iface) and the AC's.
pub const CLIENT_IFACE: &str = "h0";
pub const SERVER_IFACE: &str = "h1";

/// Fails (never skips) without root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the hostile-AC tests need root (network namespaces, veth, AF_PACKET sockets); run them as root"
    );
}

fn run(command: &mut Command) {
    let output = command.output().expect("run ip");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Two named namespaces joined by a veth pair, removed on drop (also when
/// the test panics). The client end is `h0` with CLIENT_MAC, the AC end
/// `h1` with AC_MAC.
pub struct Wire {
    pub client: String,
    pub server: String,
    pub dir: PathBuf,
}

impl Wire {
    pub fn new(case: &str) -> Wire {
        require_root();
        let pid = std::process::id();
        let wire = Wire {
            client: format!("pd-h-{case}-{pid}-cli"),
            server: format!("pd-h-{case}-{pid}-srv"),
            dir: std::env::temp_dir().join(format!("portdial-hostile-{case}-{pid}")),
        };
        let _ = std::fs::remove_dir_all(&wire.dir);
        std::fs::create_dir_all(&wire.dir).expect("create the test directory");
        for ns in [&wire.client, &wire.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            run(Command::new("ip").args(["netns", "add", ns]));
            run(Command::new("ip").args(["-n", ns, "link", "set", "lo", "up"]));
        }
        run(Command::new("ip").args([
            "-n",
            &wire.client,
            "link",
            "add",
            CLIENT_IFACE,
            "address",
            &CLIENT_MAC.to_string(),
            "type",
            "veth",
            "peer",
            "name",
            SERVER_IFACE,
            "address",
            &AC_MAC.to_string(),
            "netns",
            &wire.server,
        ]));
        run(Command::new("ip").args(["-n", &wire.client, "link", "set", CLIENT_IFACE, "up"]));
        run(Command::new("ip").args(["-n", &wire.server, "link", "set", SERVER_IFACE, "up"]));
        wire
    }

    /// Starts `portdial dial --iface h0` in the client namespace with the
    /// test's credentials and every path in the test's directory.
    pub fn dial(&self, args: &[&str]) -> Dialer {
        let mut all = vec!["--user", USER, "--password", PASSWORD];
        all.extend_from_slice(args);
        spawn_dialer(&self.client, CLIENT_IFACE, &self.dir, &all)
    }

    /// Starts an AC on the server end.
    pub fn ac(&self, script: Script) -> Ac {
        Ac::start(&self.server, SERVER_IFACE, script)
    }

    /// Interface counters of the client end (`rx_packets`, `rx_dropped`, ...).
    pub fn client_link_stats(&self) -> serde_json::Value {
        let output = Command::new("ip")
            .args(["-n", &self.client, "-s", "-j", "link", "show", CLIENT_IFACE])
            .output()
            .expect("run ip -s link");
        let links: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
        links[0]["stats64"].clone()
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        for ns in [&self.client, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What the well-behaved AC does; tests change fields before or during a run.
#[derive(Debug, Clone)]
pub struct Script {
    pub mac: MacAddr,
    pub ac_name: String,
    pub service: String,
    pub cookie: Vec<u8>,
    pub answer_padi: bool,
    pub pado_delay: Duration,
    /// Answer a PADR carrying our cookie with a PADS.
    pub confirm: bool,
    /// Session ids handed out: this, then one more per session.
    pub first_session_id: u16,
    pub auth: AcAuth,
    /// The AC's LCP Configure-Request options; `None` builds MRU, auth, magic.
    pub lcp_options: Option<Vec<u8>>,
    pub mru: u16,
    pub magic: u32,
    /// The CHAP Challenge value.
    pub chap_value: Vec<u8>,
    /// The address handed to the client (Nak of its 0.0.0.0).
    pub assign: Ipv4Addr,
    pub answer_echo: bool,
    /// Retransmission interval of the AC's own Configure-Requests.
    pub restart: Duration,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            mac: AC_MAC,
            ac_name: "hostile-ac".into(),
            service: String::new(),
            cookie: b"cookie-of-hostile-ac".to_vec(),
            answer_padi: true,
            pado_delay: Duration::ZERO,
            confirm: true,
            first_session_id: 0x0101,
            auth: AcAuth::Pap,
            lcp_options: None,
            mru: 1492,
            magic: 0x5eed_f00d,
            chap_value: (0u8..16).collect(),
            assign: CLIENT_IP,
            answer_echo: true,
            restart: Duration::from_secs(1),
        }
    }
}

/// One frame the AC received.
#[derive(Debug, Clone)]
pub struct Rx {
    pub at: Instant,
    pub frame: Vec<u8>,
}

impl Rx {
    pub fn eth(&self) -> Option<ethernet::Repr> {
        ethernet::Repr::parse(&self.frame).ok().map(|(eth, _)| eth)
    }

    /// The PPPoE discovery packet, if this is one.
    pub fn discovery(&self) -> Option<DiscoveryRepr<'_>> {
        let (eth, offset) = ethernet::Repr::parse(&self.frame).ok()?;
        if eth.ethertype != ethernet::ethertype::PPPOE_DISCOVERY {
            return None;
        }
        DiscoveryRepr::parse_bytes(self.frame.get(offset..)?).ok()
    }

    /// The PPPoE discovery packet with `code`, if this is one.
    pub fn discovery_with_code(&self, code: PppoeCode) -> Option<DiscoveryRepr<'_>> {
        self.discovery().filter(|d| d.code == code)
    }

    pub fn is_discovery(&self, code: PppoeCode) -> bool {
        self.discovery_with_code(code).is_some()
    }

    /// (session id, PPP protocol, PPP payload) of a session frame.
    pub fn ppp(&self) -> Option<(u16, Protocol, &[u8])> {
        let decap = encap::decapsulate(&self.frame).ok()?;
        let payload = self.frame.get(decap.payload.clone())?;
        Some((decap.session_id, Protocol::from(decap.protocol), payload))
    }

    /// The control packet of `protocol`, if this frame carries one.
    pub fn control(&self, protocol: Protocol) -> Option<control::Repr<'_>> {
        let (_, carried, payload) = self.ppp()?;
        (carried == protocol)
            .then(|| control::Repr::parse_bytes(payload).ok())
            .flatten()
    }

    /// The control packet of `protocol` with `code`, if this frame carries one.
    pub fn control_with_code(&self, protocol: Protocol, code: Code) -> Option<control::Repr<'_>> {
        self.control(protocol).filter(|c| c.code == code)
    }

    pub fn is_control(&self, protocol: Protocol, code: Code) -> bool {
        self.control_with_code(protocol, code).is_some()
    }
}

/// What a hook tells the AC after seeing a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Let the default behaviour handle the frame too.
    Continue,
    /// The hook handled it; skip the default.
    Stop,
}

pub type Hook = Box<dyn FnMut(&mut Emu, &Rx) -> Flow + Send>;

#[derive(Debug, Default, Clone, Copy)]
struct Negotiation {
    identifier: u8,
    our_acked: bool,
    their_acked: bool,
    last_sent: Option<Instant>,
    sent: u32,
}

impl Negotiation {
    /// Counts a new Configure-Request sent at `now`; returns its identifier.
    fn next_request(&mut self, now: Instant) -> u8 {
        self.identifier = self.identifier.wrapping_add(1);
        self.last_sent = Some(now);
        self.sent += 1;
        self.identifier
    }
}

/// The AC's state, seen by hooks and by `Ac::with`.
pub struct Emu {
    pub script: Script,
    /// Every frame received (PPPoE only: the socket filters), in order.
    pub log: Vec<Rx>,
    /// The current session, after a PADS.
    pub session: Option<SessionEncap>,
    pub sessions: u16,
    pub client: MacAddr,
    /// Frames sent so far.
    pub sent: u64,
    pub chap_id: u8,
    lcp: Negotiation,
    ipcp: Negotiation,
    lcp_opened: bool,
    auth_done: bool,
    outbox: Vec<Vec<u8>>,
    delayed: Vec<(Instant, Vec<u8>)>,
    hook: Option<Hook>,
}

impl Emu {
    fn new(script: Script) -> Emu {
        Emu {
            script,
            log: Vec::new(),
            session: None,
            sessions: 0,
            client: CLIENT_MAC,
            sent: 0,
            chap_id: 0x30,
            lcp: Negotiation::default(),
            ipcp: Negotiation::default(),
            lcp_opened: false,
            auth_done: false,
            outbox: Vec::new(),
            delayed: Vec::new(),
            hook: None,
        }
    }

    pub fn session_id(&self) -> Option<u16> {
        self.session.map(|s| s.session_id)
    }

    /// Queues a whole Ethernet frame.
    pub fn send(&mut self, frame: Vec<u8>) {
        self.outbox.push(frame);
    }

    /// Queues a frame to go out at `at`.
    pub fn send_at(&mut self, at: Instant, frame: Vec<u8>) {
        self.delayed.push((at, frame));
    }

    pub fn discovery_frame(
        src: MacAddr,
        dst: MacAddr,
        code: PppoeCode,
        session_id: u16,
        tags: Vec<Tag<'_>>,
    ) -> Vec<u8> {
        DiscoveryRepr {
            code,
            session_id,
            tags,
        }
        .to_frame(dst, src, VlanStack::default())
    }

    /// A PPPoE session frame carrying `packet` as `protocol`, for any
    /// session id and addresses.
    pub fn session_frame(
        src: MacAddr,
        dst: MacAddr,
        session_id: u16,
        protocol: u16,
        packet: &[u8],
    ) -> Vec<u8> {
        SessionEncap {
            dst,
            src,
            vlans: VlanStack::default(),
            session_id,
        }
        .to_frame(protocol, packet)
        .expect("a test packet fits a PPPoE frame")
    }

    /// Sends a PPP packet on the current session (nothing without one).
    pub fn send_ppp(&mut self, protocol: u16, packet: &[u8]) {
        if let Some(session) = self.session {
            let frame = Emu::session_frame(
                session.src,
                session.dst,
                session.session_id,
                protocol,
                packet,
            );
            self.send(frame);
        }
    }

    /// Sends a control packet (code, identifier, data) on the current session.
    pub fn send_control(&mut self, protocol: Protocol, code: Code, identifier: u8, data: &[u8]) {
        let packet = control::Repr {
            code,
            identifier,
            data,
        }
        .to_vec();
        self.send_ppp(protocol.into(), &packet);
    }

    /// A PADT for `session_id` from `src`.
    pub fn send_padt(&mut self, src: MacAddr, session_id: u16, message: &[u8]) {
        let frame = Emu::discovery_frame(
            src,
            self.client,
            PppoeCode::Padt,
            session_id,
            vec![Tag::GenericError(message)],
        );
        self.send(frame);
    }

    /// A CHAP Challenge with `value` (re-challenges too).
    pub fn send_challenge(&mut self, value: &[u8]) {
        self.chap_id = self.chap_id.wrapping_add(1);
        self.script.chap_value = value.to_vec();
        let packet = chap::Repr::Challenge {
            value,
            name: self.script.ac_name.as_bytes(),
        }
        .to_packet(self.chap_id);
        self.send_ppp(Protocol::Chap.into(), &packet);
    }

    /// Sends the AC's LCP Configure-Request (again).
    pub fn send_lcp_request(&mut self, now: Instant) {
        let identifier = self.lcp.next_request(now);
        let options = self.script.lcp_options.clone().unwrap_or_else(|| {
            lcp_request_options(self.script.mru, self.script.auth, self.script.magic)
        });
        self.send_control(Protocol::Lcp, Code::ConfigureRequest, identifier, &options);
    }

    fn send_ipcp_request(&mut self, now: Instant) {
        let identifier = self.ipcp.next_request(now);
        let mut options = Vec::new();
        IpcpOption::IpAddress(AC_IP).push_to(&mut options);
        self.send_control(Protocol::Ipcp, Code::ConfigureRequest, identifier, &options);
    }

    /// Starts the PPP part of a session from scratch (after a PADS).
    fn start_session(&mut self, now: Instant, session_id: u16) {
        self.session = Some(SessionEncap {
            dst: self.client,
            src: self.script.mac,
            vlans: VlanStack::default(),
            session_id,
        });
        self.lcp = Negotiation::default();
        self.ipcp = Negotiation::default();
        self.lcp_opened = false;
        self.auth_done = false;
        self.send_lcp_request(now);
    }

    fn handle(&mut self, now: Instant, frame: &[u8]) {
        let rx = Rx {
            at: now,
            frame: frame.to_vec(),
        };
        self.log.push(rx.clone());
        if let Some(mut hook) = self.hook.take() {
            let flow = hook(self, &rx);
            if self.hook.is_none() {
                self.hook = Some(hook);
            }
            if flow == Flow::Stop {
                return;
            }
        }
        self.default(now, &rx);
    }

    /// The well-behaved AC.
    pub fn default(&mut self, now: Instant, rx: &Rx) {
        let Some(eth) = rx.eth() else { return };
        if eth.dst != self.script.mac && !eth.dst.is_broadcast() {
            return;
        }
        if let Some(discovery) = rx.discovery() {
            self.default_discovery(now, eth.src, &discovery);
            return;
        }
        let Some((session_id, protocol, payload)) = rx.ppp() else {
            return;
        };
        if self.session_id() != Some(session_id) || eth.src != self.client {
            return;
        }
        let Ok(packet) = control::Repr::parse_bytes(payload) else {
            return;
        };
        match protocol {
            Protocol::Lcp => self.default_lcp(now, &packet),
            Protocol::Pap => {
                if let Ok(pap::Repr::AuthenticateRequest { peer_id, password }) =
                    pap::Repr::parse(&packet)
                {
                    let ok = peer_id == USER.as_bytes() && password == PASSWORD.as_bytes();
                    self.send_ppp(Protocol::Pap.into(), &pap_answer(ok, packet.identifier));
                    if ok {
                        self.start_network(now);
                    }
                }
            }
            Protocol::Chap => {
                if let Ok(chap::Repr::Response { value, .. }) = chap::Repr::parse(&packet) {
                    let expected = chap_md5_response(
                        packet.identifier,
                        PASSWORD.as_bytes(),
                        &self.script.chap_value,
                    );
                    let ok = packet.identifier == self.chap_id && value == expected;
                    self.send_ppp(Protocol::Chap.into(), &chap_answer(ok, packet.identifier));
                    if ok {
                        self.start_network(now);
                    }
                }
            }
            Protocol::Ipcp => self.default_ipcp(now, &packet),
            // As pppd without IPv6 (and without CCP): Protocol-Reject.
            _ => {
                let data = protocol_reject_data(protocol.into(), payload);
                self.send_control(Protocol::Lcp, Code::ProtocolReject, 0x99, &data);
            }
        }
    }

    fn default_discovery(&mut self, now: Instant, src: MacAddr, repr: &DiscoveryRepr<'_>) {
        match repr.code {
            PppoeCode::Padi if self.script.answer_padi => {
                self.client = src;
                let host_uniq = repr.host_uniq().map(<[u8]>::to_vec);
                let (name, service, cookie) = (
                    self.script.ac_name.clone(),
                    self.script.service.clone(),
                    self.script.cookie.clone(),
                );
                let mut tags = vec![
                    Tag::AcName(name.as_bytes()),
                    Tag::ServiceName(service.as_bytes()),
                    Tag::AcCookie(&cookie),
                ];
                if let Some(uniq) = &host_uniq {
                    tags.push(Tag::HostUniq(uniq));
                }
                let frame = Emu::discovery_frame(self.script.mac, src, PppoeCode::Pado, 0, tags);
                self.send_at(now + self.script.pado_delay, frame);
            }
            PppoeCode::Padr if self.script.confirm => {
                if repr.ac_cookie() != Some(self.script.cookie.as_slice()) {
                    return; // not a cookie we issued: a real AC drops it
                }
                self.client = src;
                let session_id = self.script.first_session_id.wrapping_add(self.sessions);
                self.sessions += 1;
                let tags = answer_tags(repr);
                let frame =
                    Emu::discovery_frame(self.script.mac, src, PppoeCode::Pads, session_id, tags);
                self.send(frame);
                self.start_session(now, session_id);
            }
            PppoeCode::Padt if Some(repr.session_id) == self.session_id() => {
                self.session = None;
            }
            _ => {}
        }
    }

    fn default_lcp(&mut self, now: Instant, packet: &control::Repr<'_>) {
        match packet.code {
            Code::ConfigureRequest => {
                self.send_control(
                    Protocol::Lcp,
                    Code::ConfigureAck,
                    packet.identifier,
                    packet.data,
                );
                self.lcp.their_acked = true;
                self.lcp_maybe_opened(now);
            }
            Code::ConfigureAck if packet.identifier == self.lcp.identifier => {
                self.lcp.our_acked = true;
                self.lcp_maybe_opened(now);
            }
            Code::ConfigureNak | Code::ConfigureReject
                if packet.identifier == self.lcp.identifier =>
            {
                self.send_lcp_request(now);
            }
            Code::TerminateRequest => {
                self.send_control(Protocol::Lcp, Code::TerminateAck, packet.identifier, &[]);
                self.lcp = Negotiation::default();
                self.lcp_opened = false;
            }
            Code::EchoRequest if self.script.answer_echo => {
                let reply = echo_reply_data(packet.data, self.script.magic);
                self.send_control(Protocol::Lcp, Code::EchoReply, packet.identifier, &reply);
            }
            _ => {}
        }
    }

    fn lcp_maybe_opened(&mut self, now: Instant) {
        if self.lcp_opened || !(self.lcp.our_acked && self.lcp.their_acked) {
            return;
        }
        self.lcp_opened = true;
        match self.script.auth {
            AcAuth::None => self.start_network(now),
            AcAuth::Pap => {}
            AcAuth::Chap => {
                let value = self.script.chap_value.clone();
                self.send_challenge(&value);
            }
        }
    }

    /// Starts IPCP from the AC's side (once per session).
    pub fn start_network(&mut self, now: Instant) {
        if self.auth_done {
            return;
        }
        self.auth_done = true;
        self.send_ipcp_request(now);
    }

    fn default_ipcp(&mut self, now: Instant, packet: &control::Repr<'_>) {
        match packet.code {
            Code::ConfigureRequest => {
                let (code, data) = ipcp_answer(packet.data, self.script.assign);
                self.send_control(Protocol::Ipcp, code, packet.identifier, &data);
                self.ipcp.their_acked |= code == Code::ConfigureAck;
            }
            Code::ConfigureAck if packet.identifier == self.ipcp.identifier => {
                self.ipcp.our_acked = true;
            }
            Code::ConfigureNak | Code::ConfigureReject
                if packet.identifier == self.ipcp.identifier =>
            {
                self.send_ipcp_request(now);
            }
            Code::TerminateRequest => {
                self.send_control(Protocol::Ipcp, Code::TerminateAck, packet.identifier, &[]);
                self.ipcp = Negotiation::default();
            }
            _ => {}
        }
    }

    /// Retransmits unanswered Configure-Requests (10 at most) and releases
    /// delayed frames.
    fn tick(&mut self, now: Instant) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.delayed = later;
        self.outbox.extend(due.into_iter().map(|(_, frame)| frame));
        if self.session.is_none() {
            return;
        }
        let restart = self.script.restart;
        let overdue = |n: &Negotiation| {
            !n.our_acked && n.sent < 10 && n.last_sent.is_some_and(|at| now >= at + restart)
        };
        if overdue(&self.lcp) {
            self.send_lcp_request(now);
        }
        if self.auth_done && overdue(&self.ipcp) {
            self.send_ipcp_request(now);
        }
    }
}

/// A running AC: a thread in the server namespace owning the socket.
pub struct Ac {
    emu: Arc<Mutex<Emu>>,
    wake: Arc<Notify>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Runs `task` on a new thread named `name` inside namespace `ns`, on a
/// current-thread tokio runtime of its own.
fn spawn_in_netns<F, Fut>(name: &str, ns: &str, task: F) -> JoinHandle<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future,
    Fut::Output: Send + 'static,
{
    let ns = ns.to_string();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            enter_netns(&ns);
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(task())
        })
        .unwrap_or_else(|error| panic!("spawn the {name} thread: {error}"))
}

/// Enters the named namespace on the calling thread.
pub fn enter_netns(ns: &str) {
    let file = std::fs::File::open(Path::new("/run/netns").join(ns))
        .unwrap_or_else(|error| panic!("open namespace {ns}: {error}"));
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|errno| panic!("setns into {ns} (needs root): {errno}"));
}

impl Ac {
    pub fn start(ns: &str, iface: &str, script: Script) -> Ac {
        let emu = Arc::new(Mutex::new(Emu::new(script)));
        let wake = Arc::new(Notify::new());
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (emu, wake, stop) = (emu.clone(), wake.clone(), stop.clone());
            let iface = iface.to_string();
            spawn_in_netns("hostile-ac", ns, move || async move {
                serve(&iface, emu, wake, stop, ready_tx).await
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the AC did not open its socket");
        Ac {
            emu,
            wake,
            stop,
            thread: Some(thread),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Emu> {
        self.emu
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` inside the AC (change the script, inject frames); what it
    /// queued is sent at once.
    pub fn with<T>(&self, f: impl FnOnce(&mut Emu) -> T) -> T {
        let result = f(&mut self.lock());
        self.wake.notify_one();
        result
    }

    /// Sees every received frame before the default behaviour.
    pub fn on_frame(&self, hook: impl FnMut(&mut Emu, &Rx) -> Flow + Send + 'static) {
        self.lock().hook = Some(Box::new(hook));
    }

    /// Sees every Configure-Request of `protocol` from portdial, before the
    /// default behaviour; other frames go to the default.
    pub fn on_configure_request(
        &self,
        protocol: Protocol,
        mut hook: impl FnMut(&mut Emu, &control::Repr<'_>) -> Flow + Send + 'static,
    ) {
        self.on_frame(move |emu, rx| {
            match rx.control_with_code(protocol, Code::ConfigureRequest) {
                Some(request) => hook(emu, &request),
                None => Flow::Continue,
            }
        });
    }

    pub fn received(&self) -> Vec<Rx> {
        self.lock().log.clone()
    }

    pub fn count(&self, predicate: impl Fn(&Rx) -> bool) -> usize {
        self.lock().log.iter().filter(|rx| predicate(rx)).count()
    }

    /// Waits until a received frame satisfies `predicate`; returns it.
    pub fn wait_for(&self, what: &str, timeout: Duration, predicate: impl Fn(&Rx) -> bool) -> Rx {
        let start = Instant::now();
        loop {
            if let Some(rx) = self.lock().log.iter().find(|rx| predicate(rx)) {
                return rx.clone();
            }
            assert!(
                start.elapsed() < timeout,
                "the AC did not receive {what} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ac {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    iface: &str,
    emu: Arc<Mutex<Emu>>,
    wake: Arc<Notify>,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let socket = PacketSocket::open(iface).expect("open the AC's packet socket");
    let _ = ready.send(());
    let lock = || emu.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let outbox = std::mem::take(&mut lock().outbox);
        let count = outbox.len() as u64;
        for frame in &outbox {
            // ENOBUFS (the veth queue is full) drops the frame, as a wire would.
            let _ = socket.send(frame).await;
        }
        lock().sent += count;
        tokio::select! {
            received = socket.recv(&mut buf) => {
                if let Ok(len) = received {
                    let now = Instant::now();
                    let mut emu = lock();
                    emu.handle(now, &buf[..len]);
                    while let Ok(len) = socket.try_recv(&mut buf) {
                        emu.handle(now, &buf[..len]);
                    }
                }
            }
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        lock().tick(Instant::now());
    }
}

/// Sends frames from `make` as fast as one thread can on `iface` in `ns`
/// for `duration`; returns how many frames the kernel took and how long it
/// took. `make(i)` builds frame `i`.
pub fn blast(
    ns: &str,
    iface: &str,
    duration: Duration,
    make: impl Fn(u64) -> Vec<u8> + Send + 'static,
) -> (u64, Duration) {
    let iface = iface.to_string();
    spawn_in_netns("blaster", ns, move || async move {
        let socket = PacketSocket::open(&iface).expect("open the blaster's socket");
        // A pool of prebuilt frames, so the loop measures sending only.
        let pool: Vec<Vec<u8>> = (0..4096).map(&make).collect();
        let start = Instant::now();
        let mut sent = 0u64;
        let mut at = 0usize;
        while start.elapsed() < duration {
            let end = (at + portdial::packet_socket::MAX_BATCH).min(pool.len());
            match socket.try_send_batch(&pool[at..end]) {
                Ok(n) => sent += n as u64,
                Err(_) => tokio::task::yield_now().await,
            }
            at = if end == pool.len() { 0 } else { end };
        }
        (sent, start.elapsed())
    })
    .join()
    .expect("the blaster panicked")
}

/// VmRSS of a process in KiB (from /proc/PID/status).
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}
