//! The whole dialer as one sans-IO machine: PPPoE discovery, then LCP, PAP or
//! CHAP, IPCP and IPv6CP over the PPPoE session (RFC 1661 §3.2's phases).
//!
//! Drive it the quinn-proto way: feed received Ethernet frames with
//! [`Session::handle_frame`] and expired timers with [`Session::handle_timeout`];
//! after each call drain [`Session::poll_transmit`] (whole Ethernet frames to
//! send) and [`Session::poll_event`], and sleep until [`Session::poll_timeout`].
//! Time and randomness come from the caller, so a run is a pure function of its
//! inputs and its seed.

use std::collections::VecDeque;
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::time::{Duration, Instant};

use portdial_protocol::control::{self, Code};
use portdial_protocol::encap::{self, SessionEncap};
use portdial_protocol::ethernet::{self, MacAddr};
use portdial_protocol::lcp::{EchoRepr, ProtocolRejectRepr};
use portdial_protocol::ppp::Protocol;
use portdial_protocol::pppoe::DiscoveryRepr;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::auth::{AuthConfig, AuthMethod, AuthOutcome, Authenticator, Credentials};
use crate::discovery::{Discovery, DiscoveryConfig, DiscoveryError, DiscoveryInput, Established};
use crate::fsm::{Automaton, FsmConfig, FsmEvent, Policy, State as FsmState};
use crate::ipcp::{is_usable_address, IpcpConfig, IpcpPolicy};
use crate::ipv6cp::{InterfaceId, Ipv6cpPolicy};
use crate::lcp::{LcpConfig, LcpPolicy};

/// LCP keepalive (pppd's lcp-echo-interval / lcp-echo-failure /
/// lcp-echo-adaptive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoConfig {
    /// `None` disables echo requests.
    pub interval: Option<Duration>,
    /// Unanswered requests before the peer is declared dead (0: never).
    pub failure: u32,
    /// Send a request only when nothing at all arrived since the last one, so a
    /// saturated link whose echo replies are late is not declared dead.
    pub adaptive: bool,
}

impl Default for EchoConfig {
    /// rp-pppoe's pppoe-connect defaults: every 20 s, dead after 3.
    fn default() -> Self {
        EchoConfig {
            interval: Some(Duration::from_secs(20)),
            failure: 3,
            adaptive: false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SessionConfig {
    pub our_mac: MacAddr,
    pub discovery: DiscoveryConfig,
    pub fsm: FsmConfig,
    pub lcp: LcpConfig,
    pub credentials: Credentials,
    pub auth: AuthConfig,
    pub ipcp: IpcpConfig,
    pub ipv6: bool,
    pub echo: EchoConfig,
}

/// RFC 1661 §3.2's link phases, with discovery in front for PPPoE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Dead,
    Discovery,
    Establish,
    Authenticate,
    Network,
    /// At least one network protocol is up.
    Running,
    Terminate,
}

impl Phase {
    /// The name `portdial status` reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Dead => "down",
            Phase::Discovery => "discovery",
            Phase::Establish => "lcp",
            Phase::Authenticate => "auth",
            Phase::Network => "network",
            Phase::Running => "up",
            Phase::Terminate => "terminate",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownCause {
    Discovery(DiscoveryError),
    /// The AC sent a PADT for our session.
    Padt {
        message: Option<String>,
    },
    EchoTimeout {
        unanswered: u32,
    },
    /// The Ethernet interface lost carrier (reported by the caller).
    CarrierLost,
    PeerTerminated {
        message: String,
    },
    AuthFailed {
        method: AuthMethod,
        message: String,
    },
    /// A protocol could not agree (Max-Configure, Max-Failure, a required
    /// option refused, an unusable address, ...).
    Negotiation {
        protocol: &'static str,
        reason: String,
    },
    Loopback,
    LocalClose {
        reason: String,
    },
}

impl DownCause {
    /// Whether re-dialing could help (not for a wrong password).
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, DownCause::AuthFailed { .. })
    }
}

impl fmt::Display for DownCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownCause::Discovery(error) => write!(f, "discovery failed: {error}"),
            DownCause::Padt {
                message: Some(message),
            } => write!(f, "the AC ended the session (PADT: {message})"),
            DownCause::Padt { message: None } => f.write_str("the AC ended the session (PADT)"),
            DownCause::EchoTimeout { unanswered } => {
                write!(
                    f,
                    "the peer stopped answering LCP echo ({unanswered} requests unanswered)"
                )
            }
            DownCause::CarrierLost => f.write_str("the Ethernet interface lost carrier"),
            DownCause::PeerTerminated { message } if message.is_empty() => {
                f.write_str("the peer terminated the link")
            }
            DownCause::PeerTerminated { message } => {
                write!(f, "the peer terminated the link: {message}")
            }
            DownCause::AuthFailed { method, message } => {
                write!(f, "authentication failed ({}): {message}", method.name())
            }
            DownCause::Negotiation { protocol, reason } => {
                write!(f, "{protocol} negotiation failed: {reason}")
            }
            DownCause::Loopback => {
                f.write_str("the link is looped back (our own Magic-Number came back)")
            }
            DownCause::LocalClose { reason } => write!(f, "closed: {reason}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Info {
    pub local: Ipv4Addr,
    /// The peer's address, when it told us.
    pub peer: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub mtu: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Info {
    pub local_id: InterfaceId,
    pub peer_id: Option<InterfaceId>,
    pub mtu: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    Phase(Phase),
    DiscoveryComplete(Established),
    Authenticated { method: AuthMethod, message: String },
    Ipv4Up(Ipv4Info),
    Ipv4Down,
    Ipv6Up(Ipv6Info),
    Ipv6Down,
    Down(DownCause),
}

/// What a received frame was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A control or discovery frame the session consumed.
    Control,
    /// Network-layer data for the TUN: `payload` is the IP packet's range in the frame.
    Data {
        protocol: Protocol,
        payload: Range<usize>,
    },
    /// Not for us or not acceptable now; counted in [`SessionStats`].
    Dropped,
    /// Unparseable; counted in [`SessionStats::malformed`].
    Malformed,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub frames_received: u64,
    pub malformed: u64,
    /// Frames for other sessions or hosts, or unexpected now.
    pub dropped: u64,
    pub echo_requests_sent: u64,
    pub echo_replies_received: u64,
    pub protocol_rejects_sent: u64,
}

/// Our IPv6CP Configure-Request waits until IPCP has opened (see
/// [`Session::hold_ipv6cp`]); meanwhile the peer's latest IPv6CP
/// Configure-Request is kept, to be answered when IPv6CP starts.
#[derive(Debug)]
struct Ipv6cpHold {
    /// Start IPv6CP anyway at this point (a peer that never answers IPCP).
    until: Instant,
    peer_request: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Echo {
    next: Option<Instant>,
    outstanding: u32,
    identifier: u8,
    heard_since_request: bool,
}

/// The dialer.
pub struct Session {
    config: SessionConfig,
    rng: ChaCha8Rng,
    phase: Phase,
    discovery: Discovery,
    established: Option<Established>,
    encap: Option<SessionEncap>,
    lcp: Automaton<LcpPolicy>,
    ipcp: Automaton<IpcpPolicy>,
    ipv6cp: Option<Automaton<Ipv6cpPolicy>>,
    ipv6cp_hold: Option<Ipv6cpHold>,
    auth: Option<Authenticator>,
    echo: Echo,
    /// Identifier for the LCP packets outside the automaton (echo, Protocol-Reject).
    lcp_identifier: u8,
    /// Set by whoever starts the end of the link, reported when LCP finishes.
    pending_cause: Option<DownCause>,
    ipv4_up: bool,
    ipv6_up: bool,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<SessionEvent>,
    stats: SessionStats,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("phase", &self.phase)
            .field("established", &self.established)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Everything random (Host-Uniq, magic numbers, interface identifiers,
    /// first identifiers) is drawn from a generator seeded with `seed`.
    pub fn new(config: SessionConfig, seed: [u8; 32]) -> Session {
        let mut rng = ChaCha8Rng::from_seed(seed);
        let mut host_uniq = vec![0; 8];
        rng.fill_bytes(&mut host_uniq);
        let discovery = Discovery::new(config.our_mac, config.discovery.clone(), host_uniq);
        let lcp = Automaton::new(LcpPolicy::new(config.lcp, child_rng(&mut rng)), config.fsm);
        // The early retransmission is for a peer that starts LCP late (pppd
        // behind pppoe-server drops our first LCP request); NCPs start
        // together, and retransmitting there only races the peer's answer.
        let ncp_fsm = FsmConfig {
            retransmit_on_peer_request: false,
            ..config.fsm
        };
        let ipcp = Automaton::new(IpcpPolicy::new(config.ipcp), ncp_fsm);
        let ipv6cp = config
            .ipv6
            .then(|| Automaton::new(Ipv6cpPolicy::new(child_rng(&mut rng)), ncp_fsm));
        let lcp_identifier = rng.next_u32() as u8;
        Session {
            config,
            rng,
            phase: Phase::Dead,
            discovery,
            established: None,
            encap: None,
            lcp,
            ipcp,
            ipv6cp,
            ipv6cp_hold: None,
            auth: None,
            echo: Echo::default(),
            lcp_identifier,
            pending_cause: None,
            ipv4_up: false,
            ipv6_up: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            stats: SessionStats::default(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    pub fn established(&self) -> Option<&Established> {
        self.established.as_ref()
    }

    /// The header to put on data frames, once the session exists.
    pub fn encap(&self) -> Option<&SessionEncap> {
        self.encap.as_ref()
    }

    pub fn lcp(&self) -> &Automaton<LcpPolicy> {
        &self.lcp
    }

    pub fn ipcp(&self) -> &Automaton<IpcpPolicy> {
        &self.ipcp
    }

    pub fn ipv6cp(&self) -> Option<&Automaton<Ipv6cpPolicy>> {
        self.ipv6cp.as_ref()
    }

    /// The MTU for the network layer (the peer's MRU, clamped to the link).
    pub fn mtu(&self) -> u16 {
        self.lcp
            .policy()
            .negotiated()
            .mtu(self.lcp.policy().config().link_max)
    }

    /// Starts dialing: discovery, then everything else follows.
    pub fn open(&mut self, now: Instant) {
        if self.phase != Phase::Dead {
            return;
        }
        self.pending_cause = None;
        self.established = None;
        self.encap = None;
        self.set_phase(Phase::Discovery);
        self.discovery.start(now);
        self.drain(now);
    }

    /// Ends the session politely: LCP Terminate, then PADT.
    pub fn close(&mut self, now: Instant, reason: &str) {
        match self.phase {
            Phase::Dead => {}
            Phase::Discovery => {
                self.discovery.reset();
                self.finish(DownCause::LocalClose {
                    reason: reason.to_string(),
                });
            }
            _ => {
                self.pending_cause.get_or_insert(DownCause::LocalClose {
                    reason: reason.to_string(),
                });
                self.lcp.close(now, reason);
                self.drain(now);
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.discovery.poll_timeout(),
            self.lcp.poll_timeout(),
            self.ipcp.poll_timeout(),
            self.ipv6cp.as_ref().and_then(Automaton::poll_timeout),
            self.auth.as_ref().and_then(Authenticator::poll_timeout),
            self.ipv6cp_hold.as_ref().map(|hold| hold.until),
            self.echo.next,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.discovery.handle_timeout(now);
        self.lcp.handle_timeout(now);
        self.ipcp.handle_timeout(now);
        if let Some(ipv6cp) = &mut self.ipv6cp {
            ipv6cp.handle_timeout(now);
        }
        if let Some(auth) = &mut self.auth {
            auth.handle_timeout(now);
        }
        if self
            .ipv6cp_hold
            .as_ref()
            .is_some_and(|hold| now >= hold.until)
        {
            tracing::info!("IPCP is not open yet; starting IPv6CP anyway");
            self.start_ipv6cp(now);
        }
        if self.echo.next.is_some_and(|next| now >= next) {
            self.echo_tick(now);
        }
        self.drain(now);
    }

    /// The Ethernet link under the session is gone (carrier loss): every layer
    /// goes down at once; nothing is sent, since nothing would arrive.
    pub fn carrier_lost(&mut self, now: Instant) {
        if self.phase == Phase::Dead {
            return;
        }
        if self.phase == Phase::Discovery {
            self.discovery.reset();
            self.finish(DownCause::CarrierLost);
            return;
        }
        self.lower_layer_lost(now, DownCause::CarrierLost, false);
    }

    /// Tells the keepalive that something arrived from the peer (for data the
    /// caller decapsulated itself without [`Session::handle_frame`]).
    pub fn note_activity(&mut self) {
        self.echo.heard_since_request = true;
    }

    /// Feeds one received Ethernet frame.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> Received {
        self.stats.frames_received += 1;
        let received = match ethernet::Repr::parse(frame) {
            Err(_) => Received::Malformed,
            Ok((eth, offset)) => match eth.ethertype {
                ethernet::ethertype::PPPOE_DISCOVERY => {
                    self.handle_discovery(now, &eth, &frame[offset..])
                }
                ethernet::ethertype::PPPOE_SESSION => self.handle_session_frame(now, frame),
                _ => Received::Dropped,
            },
        };
        match received {
            Received::Malformed => {
                self.stats.malformed += 1;
                tracing::debug!(len = frame.len(), "malformed frame dropped");
            }
            Received::Dropped => self.stats.dropped += 1,
            _ => {}
        }
        self.drain(now);
        received
    }

    fn handle_discovery(&mut self, now: Instant, eth: &ethernet::Repr, payload: &[u8]) -> Received {
        let Ok(repr) = DiscoveryRepr::parse_bytes(payload) else {
            return Received::Malformed;
        };
        match self.discovery.handle_frame(now, eth, &repr) {
            DiscoveryInput::Terminated { message } => {
                tracing::info!(
                    message = message.as_deref().unwrap_or(""),
                    "PADT received from the AC"
                );
                self.lower_layer_lost(now, DownCause::Padt { message }, false);
                Received::Control
            }
            DiscoveryInput::Handled => Received::Control,
        }
    }

    fn handle_session_frame(&mut self, now: Instant, frame: &[u8]) -> Received {
        let Ok(decap) = encap::decapsulate(frame) else {
            return Received::Malformed;
        };
        let ours = match &self.established {
            Some(session) => {
                decap.session_id == session.session_id
                    && decap.src == session.ac_mac
                    && decap.dst == self.config.our_mac
            }
            None => false,
        };
        if !ours {
            return Received::Dropped;
        }
        self.echo.heard_since_request = true;
        let payload = &frame[decap.payload.clone()];
        match Protocol::from(decap.protocol) {
            protocol @ (Protocol::Ipv4 | Protocol::Ipv6) => {
                let open = if protocol == Protocol::Ipv4 {
                    self.ipv4_up
                } else {
                    self.ipv6_up
                };
                if open {
                    Received::Data {
                        protocol,
                        payload: decap.payload,
                    }
                } else {
                    Received::Dropped
                }
            }
            Protocol::Lcp => self.handle_lcp(now, payload),
            Protocol::Pap | Protocol::Chap => self.handle_auth(now, decap.protocol, payload),
            // RFC 1661 §3.4-3.5: before the network phase, NCP packets are
            // silently discarded.
            Protocol::Ipcp | Protocol::Ipv6cp if !self.in_network_phase() => Received::Dropped,
            Protocol::Ipcp => Self::feed_ncp(&mut self.ipcp, now, payload),
            Protocol::Ipv6cp if self.ipv6cp.is_some() => self.handle_ipv6cp(now, payload),
            _ => self.protocol_reject(now, decap.protocol, payload),
        }
    }

    fn handle_ipv6cp(&mut self, now: Instant, payload: &[u8]) -> Received {
        if let Some(hold) = &mut self.ipv6cp_hold {
            let Ok(packet) = control::Repr::parse_bytes(payload) else {
                return Received::Malformed;
            };
            // Until we send our own request the peer can only be asking or
            // withdrawing: keep its latest request (retransmissions carry the
            // identifier it expects in our Ack); answering later is what a slow
            // link would do anyway. Anything else is not ours to answer yet.
            match packet.code {
                Code::ConfigureRequest => {
                    hold.peer_request = Some(control_bytes(payload).to_vec());
                }
                Code::TerminateRequest => hold.peer_request = None,
                _ => return Received::Dropped,
            }
            return Received::Control;
        }
        match &mut self.ipv6cp {
            Some(ipv6cp) => Self::feed_ncp(ipv6cp, now, payload),
            None => Received::Dropped,
        }
    }

    fn in_network_phase(&self) -> bool {
        matches!(self.phase, Phase::Network | Phase::Running)
    }

    fn feed_ncp<P: Policy>(fsm: &mut Automaton<P>, now: Instant, payload: &[u8]) -> Received {
        let Ok(packet) = control::Repr::parse_bytes(payload) else {
            return Received::Malformed;
        };
        if !fsm.handle_packet(now, &packet) {
            // Codes above 7 are LCP's alone.
            fsm.reject_unknown_code(now, control_bytes(payload));
        }
        Received::Control
    }

    /// RFC 1661 §5.7: an unknown protocol is Protocol-Rejected, but only while
    /// LCP is Opened, and (as pppd) not before the network phase: until then
    /// non-LCP packets are silently discarded (§3.4).
    fn protocol_reject(&mut self, _now: Instant, protocol: u16, payload: &[u8]) -> Received {
        if self.lcp.state() != FsmState::Opened || !self.in_network_phase() {
            return Received::Dropped;
        }
        // Keep the reject within the peer's MRU: 4 bytes of LCP header, 2 of protocol.
        let room = usize::from(self.mtu()).saturating_sub(6);
        let information = &payload[..payload.len().min(room)];
        let mut data = Vec::with_capacity(2 + information.len());
        ProtocolRejectRepr {
            protocol,
            information,
        }
        .push_to(&mut data);
        let identifier = self.next_lcp_identifier();
        let packet = control::Repr {
            code: Code::ProtocolReject,
            identifier,
            data: &data,
        }
        .to_vec();
        self.stats.protocol_rejects_sent += 1;
        tracing::debug!(
            protocol = format_args!("{protocol:#06x}"),
            "Protocol-Reject sent"
        );
        self.send_ppp(Protocol::Lcp, &packet);
        Received::Control
    }

    fn next_lcp_identifier(&mut self) -> u8 {
        self.lcp_identifier = self.lcp_identifier.wrapping_add(1);
        self.lcp_identifier
    }

    fn handle_lcp(&mut self, now: Instant, payload: &[u8]) -> Received {
        let Ok(packet) = control::Repr::parse_bytes(payload) else {
            return Received::Malformed;
        };
        match packet.code {
            Code::ProtocolReject => {
                if self.lcp.state() != FsmState::Opened {
                    return Received::Dropped;
                }
                let Ok(reject) = ProtocolRejectRepr::parse(packet.data) else {
                    return Received::Malformed;
                };
                match Protocol::from(reject.protocol) {
                    Protocol::Ipcp => self.ipcp.handle_protocol_reject(now),
                    // Held, IPv6CP has not started: it never will on this link.
                    Protocol::Ipv6cp if self.ipv6cp_hold.take().is_some() => {
                        tracing::info!("the peer Protocol-Rejected IPv6CP");
                    }
                    Protocol::Ipv6cp => {
                        if let Some(ipv6cp) = &mut self.ipv6cp {
                            ipv6cp.handle_protocol_reject(now);
                        }
                    }
                    // LCP itself rejected: the peer cannot talk PPP with us.
                    Protocol::Lcp => {
                        self.pending_cause = Some(DownCause::Negotiation {
                            protocol: "LCP",
                            reason: "the peer Protocol-Rejected LCP".into(),
                        });
                        self.lcp.close(now, "LCP Protocol-Rejected");
                    }
                    _ => {}
                }
            }
            Code::EchoRequest => {
                if !self.lcp.handle_rxr(now) || self.lcp.state() != FsmState::Opened {
                    return Received::Control;
                }
                let Ok(echo) = EchoRepr::parse(packet.data) else {
                    return Received::Malformed;
                };
                let magic = self.lcp.policy().magic();
                if magic != 0 && echo.magic == magic {
                    self.lcp.policy_mut().note_loopback();
                } else {
                    let mut data = Vec::with_capacity(packet.data.len());
                    EchoRepr {
                        magic,
                        data: echo.data,
                    }
                    .push_to(&mut data);
                    let reply = control::Repr {
                        code: Code::EchoReply,
                        identifier: packet.identifier,
                        data: &data,
                    }
                    .to_vec();
                    self.send_ppp(Protocol::Lcp, &reply);
                }
            }
            Code::EchoReply => {
                if let Ok(echo) = EchoRepr::parse(packet.data) {
                    let magic = self.lcp.policy().magic();
                    // A reply carrying our own magic is not an answer; as pppd,
                    // ignore it (a looped line reflects our Echo-Requests, which
                    // the Echo-Request branch catches).
                    if magic != 0 && echo.magic == magic {
                        tracing::debug!("Echo-Reply with our own magic ignored");
                    } else {
                        self.stats.echo_replies_received += 1;
                        self.echo.outstanding = 0;
                    }
                }
            }
            Code::DiscardRequest => {
                self.lcp.handle_rxr(now);
            }
            // Informational (RFC 1570); nothing to answer.
            Code::Identification | Code::TimeRemaining => {}
            _ => {
                if !self.lcp.handle_packet(now, &packet) {
                    self.lcp.reject_unknown_code(now, control_bytes(payload));
                }
            }
        }
        if self.lcp.policy().loopback_detected() && self.pending_cause.is_none() {
            self.pending_cause = Some(DownCause::Loopback);
            self.lcp.close(now, "Loopback detected");
        }
        Received::Control
    }

    fn handle_auth(&mut self, now: Instant, protocol: u16, payload: &[u8]) -> Received {
        let Ok(packet) = control::Repr::parse_bytes(payload) else {
            return Received::Malformed;
        };
        let Some(auth) = &mut self.auth else {
            return Received::Dropped;
        };
        let accepted = match Protocol::from(protocol) {
            Protocol::Pap => auth.handle_pap(&packet),
            _ => auth.handle_chap(now, &packet),
        };
        if accepted {
            Received::Control
        } else {
            Received::Dropped
        }
    }

    fn echo_tick(&mut self, now: Instant) {
        let Some(interval) = self.config.echo.interval else {
            self.echo.next = None;
            return;
        };
        self.echo.next = Some(now + interval);
        if self.config.echo.adaptive && self.echo.heard_since_request {
            // Traffic is proof of life: no request needed this round.
            self.echo.outstanding = 0;
            self.echo.heard_since_request = false;
            return;
        }
        let failure = self.config.echo.failure;
        if failure > 0 && self.echo.outstanding >= failure {
            let unanswered = self.echo.outstanding;
            tracing::info!(unanswered, "LCP echo failure: the peer is gone");
            self.lower_layer_lost(now, DownCause::EchoTimeout { unanswered }, true);
            return;
        }
        let magic = self.lcp.policy().magic();
        let mut data = Vec::with_capacity(4);
        EchoRepr { magic, data: &[] }.push_to(&mut data);
        self.echo.identifier = self.next_lcp_identifier();
        let packet = control::Repr {
            code: Code::EchoRequest,
            identifier: self.echo.identifier,
            data: &data,
        }
        .to_vec();
        self.echo.outstanding += 1;
        self.echo.heard_since_request = false;
        self.stats.echo_requests_sent += 1;
        self.send_ppp(Protocol::Lcp, &packet);
    }

    /// The PPPoE session is gone underneath PPP (PADT, echo failure): take every
    /// layer down at once. `send_padt` tells the AC, when it may not know yet.
    fn lower_layer_lost(&mut self, now: Instant, cause: DownCause, send_padt: bool) {
        if send_padt {
            self.send_padt("portdial: link lost");
        }
        self.established = None;
        self.encap = None;
        // A link we were already closing for a reason (a refused password,
        // say) ends for that reason, even if the AC's PADT overtakes our
        // Terminate-Request.
        let cause = self.pending_cause.take().unwrap_or(cause);
        self.pending_cause = Some(cause.clone());
        self.lcp.down(now);
        self.ipcp.down(now);
        if let Some(ipv6cp) = &mut self.ipv6cp {
            ipv6cp.down(now);
        }
        self.ipv6cp_hold = None;
        self.auth = None;
        self.echo = Echo::default();
        self.drain(now);
        if self.phase != Phase::Dead {
            self.finish(cause);
        }
    }

    fn send_padt(&mut self, message: &str) {
        if let Some(session) = &self.established {
            let frame = self
                .discovery
                .padt_frame(session.ac_mac, session.session_id, message);
            self.transmit.push_back(frame);
        }
    }

    /// Wraps a PPP packet in the session's PPPoE header and queues it.
    fn send_ppp(&mut self, protocol: Protocol, packet: &[u8]) {
        let Some(encap) = &self.encap else { return };
        match encap.to_frame(protocol.into(), packet) {
            Ok(frame) => self.transmit.push_back(frame),
            Err(error) => tracing::debug!(%error, "control packet too large to send"),
        }
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.phase != phase {
            tracing::info!(from = %self.phase, to = %phase, "phase");
            self.phase = phase;
            self.events.push_back(SessionEvent::Phase(phase));
        }
    }

    /// Ends the session: report the cause once and go Dead.
    fn finish(&mut self, cause: DownCause) {
        if self.ipv4_up {
            self.ipv4_up = false;
            self.events.push_back(SessionEvent::Ipv4Down);
        }
        if self.ipv6_up {
            self.ipv6_up = false;
            self.events.push_back(SessionEvent::Ipv6Down);
        }
        self.auth = None;
        self.ipv6cp_hold = None;
        self.echo = Echo::default();
        self.established = None;
        self.encap = None;
        self.pending_cause = None;
        tracing::info!(%cause, "session down");
        self.set_phase(Phase::Dead);
        self.events.push_back(SessionEvent::Down(cause));
    }

    /// Moves every layer's output into our queues and reacts to their events
    /// until nothing changes.
    fn drain(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(frame) = self.discovery.poll_transmit() {
                self.transmit.push_back(frame);
                progressed = true;
            }
            if self.phase == Phase::Discovery {
                if let Some(established) = self.discovery.established().cloned() {
                    self.on_discovery_complete(now, established);
                    progressed = true;
                } else if let Some(error) = self.discovery.failure().cloned() {
                    self.discovery.reset();
                    self.finish(DownCause::Discovery(error));
                    progressed = true;
                }
            }
            while let Some(packet) = self.lcp.poll_transmit() {
                self.send_ppp(Protocol::Lcp, &packet);
                progressed = true;
            }
            while let Some(event) = self.lcp.poll_event() {
                self.on_lcp_event(now, event);
                progressed = true;
            }
            if let Some(auth) = &mut self.auth {
                let mut packets = Vec::new();
                while let Some(packet) = auth.poll_transmit() {
                    packets.push(packet);
                }
                let protocol = match auth.method() {
                    AuthMethod::Pap => Protocol::Pap,
                    AuthMethod::ChapMd5 => Protocol::Chap,
                };
                let outcome = auth.take_outcome();
                for packet in packets {
                    self.send_ppp(protocol, &packet);
                    progressed = true;
                }
                if let Some(outcome) = outcome {
                    self.on_auth_outcome(now, outcome);
                    progressed = true;
                }
            }
            while let Some(packet) = self.ipcp.poll_transmit() {
                self.send_ppp(Protocol::Ipcp, &packet);
                progressed = true;
            }
            while let Some(event) = self.ipcp.poll_event() {
                self.on_ipcp_event(now, event);
                progressed = true;
            }
            let mut ipv6_packets = Vec::new();
            let mut ipv6_events = Vec::new();
            if let Some(ipv6cp) = &mut self.ipv6cp {
                while let Some(packet) = ipv6cp.poll_transmit() {
                    ipv6_packets.push(packet);
                }
                while let Some(event) = ipv6cp.poll_event() {
                    ipv6_events.push(event);
                }
            }
            for packet in ipv6_packets {
                self.send_ppp(Protocol::Ipv6cp, &packet);
                progressed = true;
            }
            for event in ipv6_events {
                self.on_ipv6cp_event(now, event);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_discovery_complete(&mut self, now: Instant, established: Established) {
        tracing::info!(
            ac = %established.ac_mac,
            ac_name = established.ac_name.as_deref().unwrap_or(""),
            session_id = established.session_id,
            "PPPoE session established"
        );
        self.encap = Some(SessionEncap {
            dst: established.ac_mac,
            src: self.config.our_mac,
            vlans: self.config.discovery.vlans,
            session_id: established.session_id,
        });
        // RFC 4638: a larger MRU only when we asked and this AC confirmed it;
        // every session starts from the configured limits again.
        let (link_max, mru) = match (
            self.config.discovery.ppp_max_payload,
            established.ppp_max_payload,
        ) {
            (Some(asked), Some(confirmed)) => {
                let link_max = asked.min(confirmed);
                (link_max, self.config.lcp.mru.min(link_max))
            }
            _ => (self.config.lcp.link_max, self.config.lcp.mru),
        };
        self.lcp.policy_mut().set_link_max(link_max, mru);
        self.established = Some(established.clone());
        self.events
            .push_back(SessionEvent::DiscoveryComplete(established));
        self.set_phase(Phase::Establish);
        self.lcp.open(now);
        self.lcp.up(now);
    }

    fn on_lcp_event(&mut self, now: Instant, event: FsmEvent) {
        match event {
            FsmEvent::Started => {}
            FsmEvent::Up => {
                if let Some(interval) = self.config.echo.interval {
                    self.echo = Echo {
                        next: Some(now + interval),
                        ..Echo::default()
                    };
                }
                match self.lcp.policy().negotiated().auth {
                    Some(method) => {
                        self.set_phase(Phase::Authenticate);
                        let first_identifier = self.rng.next_u32() as u8;
                        self.auth = Some(Authenticator::start(
                            now,
                            method,
                            self.config.credentials.clone(),
                            self.config.auth,
                            first_identifier,
                        ));
                    }
                    None => self.enter_network(now),
                }
            }
            FsmEvent::Down => {
                self.auth = None;
                self.echo = Echo::default();
                self.ipcp.down(now);
                if let Some(ipv6cp) = &mut self.ipv6cp {
                    ipv6cp.down(now);
                }
                self.ipv6cp_hold = None;
                if self.phase != Phase::Dead {
                    self.set_phase(Phase::Terminate);
                }
            }
            FsmEvent::Finished { reason } => {
                if self.phase == Phase::Dead {
                    return;
                }
                let by_peer = self.lcp.terminated_by_peer();
                let cause = self.pending_cause.take().unwrap_or_else(|| {
                    let reason = reason.unwrap_or_else(|| "LCP finished".into());
                    if by_peer {
                        DownCause::PeerTerminated { message: reason }
                    } else {
                        DownCause::Negotiation {
                            protocol: "LCP",
                            reason,
                        }
                    }
                });
                self.send_padt(&cause.to_string());
                self.lcp_down_and_dead(now, cause);
            }
        }
    }

    fn lcp_down_and_dead(&mut self, now: Instant, cause: DownCause) {
        // Make sure the automaton rests in Initial for the next dial.
        self.lcp.down(now);
        while self.lcp.poll_event().is_some() {}
        while self.lcp.poll_transmit().is_some() {}
        self.finish(cause);
    }

    fn on_auth_outcome(&mut self, now: Instant, outcome: AuthOutcome) {
        match outcome {
            AuthOutcome::Success { method, message } => {
                tracing::info!(method = method.name(), message, "authenticated");
                self.events
                    .push_back(SessionEvent::Authenticated { method, message });
                if self.phase == Phase::Authenticate {
                    self.enter_network(now);
                }
            }
            AuthOutcome::Failure { method, message } => {
                tracing::info!(method = method.name(), message, "authentication failed");
                self.pending_cause = Some(DownCause::AuthFailed { method, message });
                self.lcp.close(now, "Authentication failed");
            }
            // Silence is a failed negotiation (worth re-dialing), not a verdict
            // on the password.
            AuthOutcome::NoAnswer { method, message } => {
                tracing::info!(
                    method = method.name(),
                    message,
                    "authentication got no answer"
                );
                let protocol = match method {
                    AuthMethod::Pap => "PAP",
                    AuthMethod::ChapMd5 => "CHAP",
                };
                self.pending_cause = Some(DownCause::Negotiation {
                    protocol,
                    reason: message,
                });
                self.lcp.close(now, "Authentication timed out");
            }
        }
    }

    fn enter_network(&mut self, now: Instant) {
        self.set_phase(Phase::Network);
        self.ipcp.open(now);
        self.ipcp.up(now);
        self.hold_ipv6cp(now);
    }

    /// IPv6CP starts once IPCP has opened (or ended, or one restart interval
    /// passed without it): IPv4 is what "network up" waits for, so it is
    /// negotiated, and configured by the caller, first; IPv6 follows one round
    /// trip later. A peer like pppd asks for both at once; its IPv6CP request
    /// is kept and answered when ours goes out.
    fn hold_ipv6cp(&mut self, now: Instant) {
        if self.ipv6cp.is_some() {
            self.ipv6cp_hold = Some(Ipv6cpHold {
                until: now + self.config.fsm.restart_interval,
                peer_request: None,
            });
        }
    }

    /// Ends the hold: our Configure-Request goes out, then the answer to the
    /// peer's request that waited.
    fn start_ipv6cp(&mut self, now: Instant) {
        let Some(hold) = self.ipv6cp_hold.take() else {
            return;
        };
        let Some(ipv6cp) = &mut self.ipv6cp else {
            return;
        };
        ipv6cp.open(now);
        ipv6cp.up(now);
        if let Some(request) = hold.peer_request {
            Self::feed_ncp(ipv6cp, now, &request);
        }
    }

    fn fail_network(&mut self, now: Instant, protocol: &'static str, reason: String) {
        if protocol == "IPCP" {
            // IPv4 is out: IPv6 need not wait for it any longer.
            self.start_ipv6cp(now);
        }
        let other_alive = match protocol {
            "IPCP" => self.ipv6_up || self.ipv6cp.as_ref().is_some_and(|f| !is_resting(f.state())),
            _ => self.ipv4_up || !is_resting(self.ipcp.state()),
        };
        if other_alive {
            tracing::info!(
                protocol,
                reason,
                "network protocol failed; the other one carries on"
            );
            return;
        }
        self.pending_cause
            .get_or_insert(DownCause::Negotiation { protocol, reason });
        self.lcp.close(now, "No network protocols running");
    }

    fn on_ipcp_event(&mut self, now: Instant, event: FsmEvent) {
        match event {
            FsmEvent::Up => {
                let negotiated = self.ipcp.policy().negotiated();
                let local = match negotiated.local {
                    Some(local) if is_usable_address(local) && Some(local) != negotiated.peer => {
                        local
                    }
                    other => {
                        let reason = match other {
                            Some(local) => format!("unusable local address {local}"),
                            None => "the peer assigned no address".into(),
                        };
                        self.ipcp.close(now, "unusable address");
                        self.fail_network(now, "IPCP", reason);
                        return;
                    }
                };
                let info = Ipv4Info {
                    local,
                    peer: negotiated.peer,
                    dns: negotiated.dns,
                    mtu: self.mtu(),
                };
                tracing::info!(local = %info.local, peer = ?info.peer, dns = ?info.dns, mtu = info.mtu, "IPv4 up");
                self.ipv4_up = true;
                self.events.push_back(SessionEvent::Ipv4Up(info));
                self.set_phase(Phase::Running);
                self.start_ipv6cp(now);
            }
            FsmEvent::Down => {
                if self.ipv4_up {
                    self.ipv4_up = false;
                    self.events.push_back(SessionEvent::Ipv4Down);
                }
            }
            FsmEvent::Started => {}
            FsmEvent::Finished { reason } => {
                if matches!(self.phase, Phase::Network | Phase::Running) {
                    let reason = reason.unwrap_or_else(|| "IPCP finished".into());
                    self.fail_network(now, "IPCP", reason);
                }
            }
        }
    }

    fn on_ipv6cp_event(&mut self, now: Instant, event: FsmEvent) {
        match event {
            FsmEvent::Up => {
                let Some(ipv6cp) = &self.ipv6cp else { return };
                let negotiated = ipv6cp.policy().negotiated();
                let Some(local_id) = negotiated.local else {
                    return;
                };
                let info = Ipv6Info {
                    local_id,
                    peer_id: negotiated.peer,
                    mtu: self.mtu(),
                };
                tracing::info!(mtu = info.mtu, "IPv6 up");
                self.ipv6_up = true;
                self.events.push_back(SessionEvent::Ipv6Up(info));
                self.set_phase(Phase::Running);
            }
            FsmEvent::Down => {
                if self.ipv6_up {
                    self.ipv6_up = false;
                    self.events.push_back(SessionEvent::Ipv6Down);
                }
            }
            FsmEvent::Started => {}
            FsmEvent::Finished { reason } => {
                if matches!(self.phase, Phase::Network | Phase::Running) {
                    let reason = reason.unwrap_or_else(|| "IPv6CP finished".into());
                    self.fail_network(now, "IPv6CP", reason);
                }
            }
        }
    }
}

/// A control protocol that is not negotiating and will not by itself.
fn is_resting(state: FsmState) -> bool {
    matches!(
        state,
        FsmState::Initial | FsmState::Starting | FsmState::Closed | FsmState::Stopped
    )
}

/// The control packet as its length field bounds it (for Code-Reject, which
/// quotes the rejected packet).
fn control_bytes(payload: &[u8]) -> &[u8] {
    control::Packet::new_checked(payload)
        .map(|packet| packet.as_bytes())
        .unwrap_or(payload)
}

fn child_rng(rng: &mut ChaCha8Rng) -> ChaCha8Rng {
    let mut seed = [0; 32];
    rng.fill_bytes(&mut seed);
    ChaCha8Rng::from_seed(seed)
}
