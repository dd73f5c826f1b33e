//! A scripted PPPoE access concentrator and a virtual-time `Pair` harness
//! (quinn-proto's idea), so whole dial-ups run deterministically in
//! microseconds of real time.
//!
//! The AC is deliberately written apart from the client's automaton: it
//! follows the message sequence a real pppoe-server + pppd produces (PADO with
//! AC-Name and cookie, PADS, LCP request with MRU/auth/magic, PAP or CHAP, IPCP
//! with Nak of 0.0.0.0 and DNS, IPv6CP or a Protocol-Reject of it), with knobs
//! to misbehave.

#![allow(dead_code)]

mod ac_packets;

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use portdial_ppp::auth::chap_md5_response;
use portdial_ppp::session::{Session, SessionEvent};
use portdial_protocol::chap;
use portdial_protocol::control::{self, Code};
use portdial_protocol::encap::{self, SessionEncap};
use portdial_protocol::ethernet::{self, MacAddr, VlanStack};
use portdial_protocol::ipcp::IpcpOption;
use portdial_protocol::ipv6cp::Ipv6cpOption;
use portdial_protocol::lcp::{AuthProtocol, LcpOption, ProtocolRejectRepr};
use portdial_protocol::pap;
use portdial_protocol::ppp::Protocol;
use portdial_protocol::pppoe::{Code as PppoeCode, DiscoveryRepr, Tag};

pub use ac_packets::*;

#[derive(Debug, Clone)]
pub struct AcConfig {
    pub mac: MacAddr,
    pub name: String,
    pub services: Vec<String>,
    pub cookie: Vec<u8>,
    pub session_id: u16,
    pub auth: AcAuth,
    /// Accept a Nak of CHAP to PAP, as pppd with `require-chap require-pap`.
    pub accept_pap_nak: bool,
    pub user: String,
    pub password: String,
    pub mru: u16,
    pub magic: u32,
    pub ipv6: bool,
    /// Run IPCP; without it the AC Protocol-Rejects IPCP (an IPv6-only AC).
    pub ipv4: bool,
    /// Neither send nor answer IPCP, nor reject it: silence.
    pub ignore_ipcp: bool,
    /// PADS carries this error tag (type, message) instead of a session.
    pub pads_error: Option<(u16, String)>,
    /// Answer LCP Echo-Requests.
    pub answer_echo: bool,
    /// Nak every client Configure-Request's MRU with this value, forever.
    pub nak_mru_forever: Option<u16>,
    /// Configure-Reject every option the client asks for.
    pub reject_everything: bool,
    /// After PADS, send every LCP packet the client sends straight back to it,
    /// as a looped-back line does.
    pub reflect_lcp: bool,
    /// IPCP hands out this address instead of CLIENT_IP.
    pub assign: Ipv4Addr,
    /// Drop the first N frames of each kind the client sends (a late pppd).
    pub ignore_first_lcp_requests: u32,
    pub restart: Duration,
    /// RFC 4638: answer a PPP-Max-Payload tag in PADI/PADR with the same tag in
    /// PADO/PADS (an AC that supports baby jumbo frames).
    pub echo_ppp_max_payload: bool,
    /// Nak the client's MRU with this value until the client asks for exactly
    /// it, then Ack (an AC whose own MRU is lower, and which converges).
    pub nak_mru_until: Option<u16>,
}

impl Default for AcConfig {
    fn default() -> Self {
        AcConfig {
            mac: AC_MAC,
            name: "sim-ac".into(),
            services: vec![String::new()],
            cookie: b"cookie-1234".to_vec(),
            session_id: 0x0011,
            auth: AcAuth::Pap,
            accept_pap_nak: true,
            user: USER.into(),
            password: PASSWORD.into(),
            mru: 1492,
            magic: 0x1a2b_3c4d,
            ipv6: true,
            ipv4: true,
            ignore_ipcp: false,
            pads_error: None,
            answer_echo: true,
            nak_mru_forever: None,
            reject_everything: false,
            reflect_lcp: false,
            assign: CLIENT_IP,
            ignore_first_lcp_requests: 0,
            restart: Duration::from_secs(3),
            echo_ppp_max_payload: false,
            nak_mru_until: None,
        }
    }
}

/// What the AC saw, for assertions.
#[derive(Debug, Default, Clone)]
pub struct AcLog {
    pub padi: u32,
    pub padr: u32,
    pub padt: u32,
    pub padr_cookie: Option<Vec<u8>>,
    pub lcp_requests: u32,
    pub lcp_naks_sent: u32,
    pub lcp_terminate_requests: u32,
    pub echo_requests: u32,
    pub protocol_rejects: Vec<u16>,
    pub pap_requests: Vec<(String, String)>,
    pub chap_responses: u32,
    pub ipcp_requests: u32,
    pub client_magic: Option<u32>,
    pub code_rejects: u32,
    /// The PPP-Max-Payload the client's last PADR asked for.
    pub padr_ppp_max_payload: Option<u16>,
    /// The MRU of each LCP Configure-Request the client sent (that asked one).
    pub client_mrus: Vec<u16>,
}

#[derive(Debug, Default)]
struct NcpSide {
    our_acked: bool,
    their_acked: bool,
    identifier: u8,
    deadline: Option<Instant>,
}

/// The scripted access concentrator.
pub struct SimAc {
    pub config: AcConfig,
    pub log: AcLog,
    session: Option<SessionEncap>,
    lcp: NcpSide,
    ipcp: NcpSide,
    ipv6cp: NcpSide,
    auth_done: bool,
    chap_id: u8,
    /// Whether the AC runs at all (a stopped server drops everything).
    pub silent: bool,
    outbox: VecDeque<Vec<u8>>,
    lcp_open_sent: bool,
}

impl SimAc {
    pub fn new(config: AcConfig) -> SimAc {
        SimAc {
            config,
            log: AcLog::default(),
            session: None,
            lcp: NcpSide::default(),
            ipcp: NcpSide::default(),
            ipv6cp: NcpSide::default(),
            auth_done: false,
            chap_id: 0x40,
            silent: false,
            outbox: VecDeque::new(),
            lcp_open_sent: false,
        }
    }

    pub fn session_id(&self) -> Option<u16> {
        self.session.as_ref().map(|s| s.session_id)
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.lcp.deadline, self.ipcp.deadline, self.ipv6cp.deadline]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.silent {
            return;
        }
        if self.lcp.deadline.is_some_and(|d| now >= d) && !self.lcp.our_acked {
            self.send_lcp_request(now);
        }
        if self.ipcp.deadline.is_some_and(|d| now >= d) && !self.ipcp.our_acked {
            self.send_ipcp_request(now);
        }
        if self.ipv6cp.deadline.is_some_and(|d| now >= d) && !self.ipv6cp.our_acked {
            self.send_ipv6cp_request(now);
        }
    }

    /// Ends the session from the AC side with a PADT.
    pub fn send_padt(&mut self, session_id: u16, from: MacAddr) {
        let repr = DiscoveryRepr {
            code: PppoeCode::Padt,
            session_id,
            tags: vec![Tag::GenericError(b"sim-ac: administratively closed")],
        };
        self.push_discovery(from, CLIENT_MAC, &repr);
    }

    /// Sends an LCP Terminate-Request, as pppd does when the server stops.
    pub fn send_terminate(&mut self) {
        let packet = control::Repr {
            code: Code::TerminateRequest,
            identifier: 0x77,
            data: b"User request",
        }
        .to_vec();
        self.send_ppp(Protocol::Lcp, &packet);
    }

    /// Sends any PPP packet on the session.
    pub fn send_ppp(&mut self, protocol: Protocol, packet: &[u8]) {
        let Some(encap) = &self.session else { return };
        let frame = encap
            .to_frame(protocol.into(), packet)
            .expect("the AC's packets fit a PPPoE frame");
        self.outbox.push_back(frame);
    }

    /// Sends an LCP Protocol-Reject of `protocol`, as a peer that stopped
    /// running it does; `information` stands for the rejected packet.
    pub fn send_protocol_reject(&mut self, protocol: Protocol, information: &[u8]) {
        let data = protocol_reject_data(protocol.into(), information);
        self.reply(Protocol::Lcp, Code::ProtocolReject, 0x98, &data);
    }

    /// Sends a CHAP Challenge (also used for re-challenges).
    pub fn send_challenge(&mut self) {
        self.chap_id = self.chap_id.wrapping_add(1);
        let value = [self.chap_id; 16];
        let packet = chap::Repr::Challenge {
            value: &value,
            name: self.config.name.as_bytes(),
        }
        .to_packet(self.chap_id);
        self.send_ppp(Protocol::Chap, &packet);
    }

    fn push_discovery(&mut self, src: MacAddr, dst: MacAddr, repr: &DiscoveryRepr<'_>) {
        self.outbox
            .push_back(repr.to_frame(dst, src, VlanStack::default()));
    }

    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) {
        if self.silent {
            return;
        }
        let Ok((eth, offset)) = ethernet::Repr::parse(frame) else {
            return;
        };
        if eth.dst != self.config.mac && !eth.dst.is_broadcast() {
            return;
        }
        match eth.ethertype {
            ethernet::ethertype::PPPOE_DISCOVERY => {
                let Ok(repr) = DiscoveryRepr::parse_bytes(&frame[offset..]) else {
                    return;
                };
                self.handle_discovery(now, eth.src, &repr);
            }
            ethernet::ethertype::PPPOE_SESSION => {
                let Ok(decap) = encap::decapsulate(frame) else {
                    return;
                };
                if Some(decap.session_id) != self.session_id() {
                    return;
                }
                let payload = frame[decap.payload.clone()].to_vec();
                self.handle_ppp(now, decap.protocol, &payload);
            }
            _ => {}
        }
    }

    fn handle_discovery(&mut self, now: Instant, client: MacAddr, repr: &DiscoveryRepr<'_>) {
        let host_uniq = repr.host_uniq().map(<[u8]>::to_vec);
        match repr.code {
            PppoeCode::Padi => {
                self.log.padi += 1;
                let wanted = repr.service_name().unwrap_or(b"");
                if !wanted.is_empty()
                    && !self.config.services.iter().any(|s| s.as_bytes() == wanted)
                {
                    return;
                }
                let services: Vec<String> = self.config.services.clone();
                let name = self.config.name.clone();
                let cookie = self.config.cookie.clone();
                let mut tags = vec![Tag::AcName(name.as_bytes())];
                for service in &services {
                    tags.push(Tag::ServiceName(service.as_bytes()));
                }
                tags.push(Tag::AcCookie(&cookie));
                if let Some(uniq) = &host_uniq {
                    tags.push(Tag::HostUniq(uniq));
                }
                if let Some(max) = repr
                    .ppp_max_payload()
                    .filter(|_| self.config.echo_ppp_max_payload)
                {
                    tags.push(Tag::PppMaxPayload(max));
                }
                let pado = DiscoveryRepr {
                    code: PppoeCode::Pado,
                    session_id: 0,
                    tags,
                };
                self.push_discovery(self.config.mac, client, &pado);
            }
            PppoeCode::Padr => {
                self.log.padr += 1;
                self.log.padr_cookie = repr.ac_cookie().map(<[u8]>::to_vec);
                self.log.padr_ppp_max_payload = repr.ppp_max_payload();
                let mut tags = answer_tags(repr);
                let error = self.config.pads_error.clone();
                if let Some((tag_type, message)) = &error {
                    tags.push(Tag::parse(*tag_type, message.as_bytes()).unwrap());
                    let pads = DiscoveryRepr {
                        code: PppoeCode::Pads,
                        session_id: 0,
                        tags,
                    };
                    self.push_discovery(self.config.mac, client, &pads);
                    return;
                }
                if self.log.padr_cookie.as_deref() != Some(self.config.cookie.as_slice()) {
                    return; // a real AC drops a PADR without its cookie
                }
                let session_id = self.config.session_id;
                if let Some(max) = repr
                    .ppp_max_payload()
                    .filter(|_| self.config.echo_ppp_max_payload)
                {
                    tags.push(Tag::PppMaxPayload(max));
                }
                let pads = DiscoveryRepr {
                    code: PppoeCode::Pads,
                    session_id,
                    tags,
                };
                self.push_discovery(self.config.mac, client, &pads);
                self.session = Some(SessionEncap {
                    dst: client,
                    src: self.config.mac,
                    vlans: VlanStack::default(),
                    session_id,
                });
                self.lcp = NcpSide::default();
                self.ipcp = NcpSide::default();
                self.ipv6cp = NcpSide::default();
                self.auth_done = false;
                self.lcp_open_sent = false;
                if !self.config.reflect_lcp {
                    self.send_lcp_request(now);
                }
            }
            PppoeCode::Padt => {
                self.log.padt += 1;
                if Some(repr.session_id) == self.session_id() {
                    self.session = None;
                    self.lcp.deadline = None;
                    self.ipcp.deadline = None;
                    self.ipv6cp.deadline = None;
                }
            }
            _ => {}
        }
    }

    fn send_lcp_request(&mut self, now: Instant) {
        self.lcp.identifier = self.lcp.identifier.wrapping_add(1);
        let options = lcp_request_options(self.config.mru, self.config.auth, self.config.magic);
        let packet = control::Repr {
            code: Code::ConfigureRequest,
            identifier: self.lcp.identifier,
            data: &options,
        }
        .to_vec();
        self.lcp.deadline = Some(now + self.config.restart);
        self.send_ppp(Protocol::Lcp, &packet);
    }

    fn send_ipcp_request(&mut self, now: Instant) {
        self.ipcp.identifier = self.ipcp.identifier.wrapping_add(1);
        let mut options = Vec::new();
        IpcpOption::IpAddress(AC_IP).push_to(&mut options);
        // pppd asks for VJ compression; a client must reject it.
        IpcpOption::IpCompressionProtocol {
            protocol: 0x002d,
            data: &[0x0f, 0x01],
        }
        .push_to(&mut options);
        let packet = control::Repr {
            code: Code::ConfigureRequest,
            identifier: self.ipcp.identifier,
            data: &options,
        }
        .to_vec();
        self.ipcp.deadline = Some(now + self.config.restart);
        self.send_ppp(Protocol::Ipcp, &packet);
    }

    fn send_ipv6cp_request(&mut self, now: Instant) {
        self.ipv6cp.identifier = self.ipv6cp.identifier.wrapping_add(1);
        let mut options = Vec::new();
        Ipv6cpOption::InterfaceIdentifier(AC_INTERFACE_ID).push_to(&mut options);
        let packet = control::Repr {
            code: Code::ConfigureRequest,
            identifier: self.ipv6cp.identifier,
            data: &options,
        }
        .to_vec();
        self.ipv6cp.deadline = Some(now + self.config.restart);
        self.send_ppp(Protocol::Ipv6cp, &packet);
    }

    fn lcp_opened(&mut self, now: Instant) {
        if self.lcp_open_sent || !(self.lcp.our_acked && self.lcp.their_acked) {
            return;
        }
        self.lcp_open_sent = true;
        match self.config.auth {
            AcAuth::Chap => self.send_challenge(),
            AcAuth::Pap => {}
            AcAuth::None => self.start_network(now),
        }
    }

    fn start_network(&mut self, now: Instant) {
        self.auth_done = true;
        if self.config.ipv4 && !self.config.ignore_ipcp {
            self.send_ipcp_request(now);
        }
        if self.config.ipv6 {
            self.send_ipv6cp_request(now);
        }
    }

    fn reply(&mut self, protocol: Protocol, code: Code, identifier: u8, data: &[u8]) {
        let packet = control::Repr {
            code,
            identifier,
            data,
        }
        .to_vec();
        self.send_ppp(protocol, &packet);
    }

    fn handle_ppp(&mut self, now: Instant, protocol: u16, payload: &[u8]) {
        let Ok(packet) = control::Repr::parse_bytes(payload) else {
            return;
        };
        if self.config.reflect_lcp && Protocol::from(protocol) == Protocol::Lcp {
            self.send_ppp(Protocol::Lcp, payload);
            return;
        }
        match Protocol::from(protocol) {
            Protocol::Lcp => self.handle_lcp(now, &packet),
            Protocol::Pap => {
                if let Ok(pap::Repr::AuthenticateRequest { peer_id, password }) =
                    pap::Repr::parse(&packet)
                {
                    let user = String::from_utf8_lossy(peer_id).into_owned();
                    let pass = String::from_utf8_lossy(password).into_owned();
                    self.log.pap_requests.push((user.clone(), pass.clone()));
                    let ok = user == self.config.user && pass == self.config.password;
                    self.send_ppp(Protocol::Pap, &pap_answer(ok, packet.identifier));
                    if ok && !self.auth_done {
                        self.start_network(now);
                    }
                }
            }
            Protocol::Chap => {
                if let Ok(chap::Repr::Response { value, .. }) = chap::Repr::parse(&packet) {
                    self.log.chap_responses += 1;
                    let expected = chap_md5_response(
                        packet.identifier,
                        self.config.password.as_bytes(),
                        &[packet.identifier; 16],
                    );
                    let ok = packet.identifier == self.chap_id && value == expected;
                    self.send_ppp(Protocol::Chap, &chap_answer(ok, packet.identifier));
                    if ok && !self.auth_done {
                        self.start_network(now);
                    }
                }
            }
            Protocol::Ipcp if self.config.ignore_ipcp => {}
            Protocol::Ipcp if self.config.ipv4 => self.handle_ipcp(now, &packet),
            Protocol::Ipv6cp if self.config.ipv6 => self.handle_ipv6cp(now, &packet),
            _ => {
                // As pppd: Protocol-Reject what we do not run.
                let data = protocol_reject_data(protocol, payload);
                self.reply(Protocol::Lcp, Code::ProtocolReject, 0x99, &data);
            }
        }
    }

    fn handle_lcp(&mut self, now: Instant, packet: &control::Repr<'_>) {
        match packet.code {
            Code::ConfigureRequest => {
                self.log.lcp_requests += 1;
                if self.log.lcp_requests <= self.config.ignore_first_lcp_requests {
                    return;
                }
                let mut client_mru = None;
                for option in LcpOption::iter(packet.data).flatten() {
                    match option {
                        LcpOption::MagicNumber(magic) => self.log.client_magic = Some(magic),
                        LcpOption::Mru(mru) => client_mru = Some(mru),
                        _ => {}
                    }
                }
                if let Some(mru) = client_mru {
                    self.log.client_mrus.push(mru);
                }
                if self.config.reject_everything && !packet.data.is_empty() {
                    self.reply(
                        Protocol::Lcp,
                        Code::ConfigureReject,
                        packet.identifier,
                        packet.data,
                    );
                    return;
                }
                if let Some(mru) = self.config.nak_mru_forever {
                    let mut nak = Vec::new();
                    LcpOption::Mru(mru).push_to(&mut nak);
                    self.log.lcp_naks_sent += 1;
                    self.reply(Protocol::Lcp, Code::ConfigureNak, packet.identifier, &nak);
                    return;
                }
                if let Some(mru) = self.config.nak_mru_until {
                    if client_mru.is_some_and(|asked| asked != mru) {
                        let mut nak = Vec::new();
                        LcpOption::Mru(mru).push_to(&mut nak);
                        self.log.lcp_naks_sent += 1;
                        self.reply(Protocol::Lcp, Code::ConfigureNak, packet.identifier, &nak);
                        return;
                    }
                }
                self.reply(
                    Protocol::Lcp,
                    Code::ConfigureAck,
                    packet.identifier,
                    packet.data,
                );
                self.lcp.their_acked = true;
                self.lcp_opened(now);
            }
            Code::ConfigureAck if packet.identifier == self.lcp.identifier => {
                self.lcp.our_acked = true;
                self.lcp.deadline = None;
                self.lcp_opened(now);
            }
            Code::ConfigureNak | Code::ConfigureReject
                if packet.identifier == self.lcp.identifier =>
            {
                // Accept a Nak of CHAP to PAP, as pppd with both required.
                for option in LcpOption::iter(packet.data).flatten() {
                    if let LcpOption::AuthProtocol(AuthProtocol::Pap) = option {
                        if self.config.accept_pap_nak {
                            self.config.auth = AcAuth::Pap;
                        }
                    }
                }
                self.send_lcp_request(now);
            }
            Code::TerminateRequest => {
                self.log.lcp_terminate_requests += 1;
                self.reply(Protocol::Lcp, Code::TerminateAck, packet.identifier, &[]);
            }
            Code::EchoRequest => {
                self.log.echo_requests += 1;
                if self.config.answer_echo {
                    let data = echo_reply_data(packet.data, self.config.magic);
                    self.reply(Protocol::Lcp, Code::EchoReply, packet.identifier, &data);
                }
            }
            Code::ProtocolReject => {
                if let Ok(reject) = ProtocolRejectRepr::parse(packet.data) {
                    self.log.protocol_rejects.push(reject.protocol);
                }
            }
            Code::CodeReject => self.log.code_rejects += 1,
            _ => {}
        }
    }

    fn handle_ipcp(&mut self, now: Instant, packet: &control::Repr<'_>) {
        match packet.code {
            Code::ConfigureRequest => {
                self.log.ipcp_requests += 1;
                let (code, data) = ipcp_answer(packet.data, self.config.assign);
                self.reply(Protocol::Ipcp, code, packet.identifier, &data);
                self.ipcp.their_acked |= code == Code::ConfigureAck;
            }
            Code::ConfigureAck if packet.identifier == self.ipcp.identifier => {
                self.ipcp.our_acked = true;
                self.ipcp.deadline = None;
            }
            Code::ConfigureReject if packet.identifier == self.ipcp.identifier => {
                // The client refused VJ: ask again with the address alone.
                self.ipcp.identifier = self.ipcp.identifier.wrapping_add(1);
                let mut options = Vec::new();
                IpcpOption::IpAddress(AC_IP).push_to(&mut options);
                let request = control::Repr {
                    code: Code::ConfigureRequest,
                    identifier: self.ipcp.identifier,
                    data: &options,
                }
                .to_vec();
                self.ipcp.deadline = Some(now + self.config.restart);
                self.send_ppp(Protocol::Ipcp, &request);
            }
            Code::TerminateRequest => {
                self.reply(Protocol::Ipcp, Code::TerminateAck, packet.identifier, &[])
            }
            _ => {}
        }
    }

    fn handle_ipv6cp(&mut self, _now: Instant, packet: &control::Repr<'_>) {
        match packet.code {
            Code::ConfigureRequest => {
                self.reply(
                    Protocol::Ipv6cp,
                    Code::ConfigureAck,
                    packet.identifier,
                    packet.data,
                );
                self.ipv6cp.their_acked = true;
            }
            Code::ConfigureAck if packet.identifier == self.ipv6cp.identifier => {
                self.ipv6cp.our_acked = true;
                self.ipv6cp.deadline = None;
            }
            _ => {}
        }
    }
}

/// Decides per frame whether the simulated wire loses it.
pub type LossFn = Box<dyn FnMut(Direction, &[u8]) -> bool>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToAc,
    ToClient,
}

/// A client session and its ACs on one simulated Ethernet segment, in virtual time.
pub struct Pair {
    pub now: Instant,
    pub start: Instant,
    pub client: Session,
    pub acs: Vec<SimAc>,
    pub events: Vec<(Duration, SessionEvent)>,
    pub loss: Option<LossFn>,
    /// Every frame that crossed the wire, in order, for replay-style checks.
    pub wire: Vec<(Duration, Direction, Vec<u8>)>,
}

impl Pair {
    pub fn new(client: Session, acs: Vec<SimAc>) -> Pair {
        let start = Instant::now();
        Pair {
            now: start,
            start,
            client,
            acs,
            events: Vec::new(),
            loss: None,
            wire: Vec::new(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Moves frames until the wire is quiet, then advances virtual time to the
    /// next timer; stops when `done` says so or `limit` of virtual time passed.
    pub fn drive_until(&mut self, limit: Duration, mut done: impl FnMut(&Pair) -> bool) -> bool {
        let deadline = self.now + limit;
        loop {
            self.exchange();
            if done(self) {
                return true;
            }
            let next = [
                self.client.poll_timeout(),
                self.acs.iter().filter_map(SimAc::poll_timeout).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(next) if next <= deadline => {
                    self.now = self.now.max(next);
                    self.client.handle_timeout(self.now);
                    for ac in &mut self.acs {
                        ac.handle_timeout(self.now);
                    }
                }
                _ => {
                    self.now = deadline;
                    self.exchange();
                    return done(self);
                }
            }
        }
    }

    /// Drives for a fixed virtual duration.
    pub fn drive_for(&mut self, duration: Duration) {
        self.drive_until(duration, |_| false);
    }

    /// Delivers frames both ways until nobody has anything to send; a frame
    /// takes no time on the simulated wire.
    pub fn exchange(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(frame) = self.client.poll_transmit() {
                moved = true;
                if self.lost(Direction::ToAc, &frame) {
                    continue;
                }
                self.wire
                    .push((self.elapsed(), Direction::ToAc, frame.clone()));
                for ac in &mut self.acs {
                    ac.handle_frame(self.now, &frame);
                }
            }
            let mut to_client = Vec::new();
            for ac in &mut self.acs {
                while let Some(frame) = ac.poll_transmit() {
                    to_client.push(frame);
                }
            }
            for frame in to_client {
                moved = true;
                if self.lost(Direction::ToClient, &frame) {
                    continue;
                }
                self.wire
                    .push((self.elapsed(), Direction::ToClient, frame.clone()));
                self.client.handle_frame(self.now, &frame);
            }
            while let Some(event) = self.client.poll_event() {
                self.events.push((self.elapsed(), event));
            }
            if !moved {
                return;
            }
        }
        panic!("the simulated wire never went quiet: a packet storm");
    }

    fn lost(&mut self, direction: Direction, frame: &[u8]) -> bool {
        match &mut self.loss {
            Some(loss) => loss(direction, frame),
            None => false,
        }
    }

    pub fn saw(&self, predicate: impl Fn(&SessionEvent) -> bool) -> bool {
        self.events.iter().any(|(_, event)| predicate(event))
    }

    pub fn first(
        &self,
        predicate: impl Fn(&SessionEvent) -> bool,
    ) -> Option<(Duration, SessionEvent)> {
        self.events
            .iter()
            .find(|(_, event)| predicate(event))
            .cloned()
    }

    pub fn is_up(&self) -> bool {
        self.saw(|e| matches!(e, SessionEvent::Ipv4Up(_)))
    }
}
