//! Sessions: which frames belong together, who is the access concentrator,
//! and what each side's acknowledged requests carried. The rules are in the
//! documentation of [`crate::replay`].

use std::net::Ipv4Addr;

use portdial_protocol::ethernet::MacAddr;
use portdial_protocol::pppoe;

use super::SessionSummary;

/// One end of a conversation, as the capture identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Mac(MacAddr),
    /// The capturing host (PPP-with-direction: sent).
    Local,
    /// Its peer (PPP-with-direction: received).
    Remote,
}

/// A PPPoE discovery packet other than PADT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Discovery {
    pub code: pppoe::Code,
    pub session_id: u16,
    pub src: Option<MacAddr>,
    pub dst: Option<MacAddr>,
    pub host_uniq: Option<Vec<u8>>,
    pub ac_name: Option<String>,
    pub service_name: Option<String>,
}

/// A frame of a session: a PPP frame or a PADT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionFrame {
    /// `None` for PPP without PPPoE.
    pub session_id: Option<u16>,
    pub sender: Option<Endpoint>,
    pub receiver: Option<Endpoint>,
    pub fact: Fact,
    /// The PPPoE length is shorter than the Ethernet payload beyond padding.
    pub length_mismatch: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Discovery(Discovery),
    Session(SessionFrame),
}

/// What a session frame tells about the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fact {
    Padt,
    LcpRequest {
        asks_auth: bool,
    },
    /// A Configure-Ack: the options of the other side's request.
    LcpAck {
        mru: Option<u16>,
        auth: Option<String>,
    },
    LcpTerminateRequest,
    PapRequest,
    PapAck,
    PapNak,
    ChapChallenge,
    ChapResponse,
    ChapSuccess,
    ChapFailure,
    IpcpRequest {
        asks_address: bool,
        asks_dns: bool,
    },
    IpcpNak {
        offers_address: bool,
    },
    IpcpAck {
        address: Option<Ipv4Addr>,
        dns: Vec<Ipv4Addr>,
    },
    Ipv6cpAck {
        interface_id: Option<[u8; 8]>,
    },
    Data {
        bytes: u64,
        opens_tcp: bool,
    },
    Other,
}

/// How the AC's side was decided, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Evidence {
    FirstFrame,
    FirstTcpSyn,
    Addressing,
    Authentication,
    Discovery,
}

impl Evidence {
    fn describe(self) -> &'static str {
        match self {
            Evidence::FirstFrame => "roles guessed: the client is taken to be the first sender",
            Evidence::FirstTcpSyn => {
                "roles guessed: the client is taken to be the first TCP SYN's sender"
            }
            Evidence::Addressing => "roles from IPCP addressing",
            Evidence::Authentication => "roles from authentication",
            Evidence::Discovery => "roles from discovery",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Ac,
    Client,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LcpAck {
    mru: Option<u16>,
    auth: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct IpcpAck {
    address: Option<Ipv4Addr>,
    dns: Vec<Ipv4Addr>,
}

/// A PADI, PADO or PADR waiting for its PADS.
#[derive(Debug, Clone)]
struct Pending {
    frame: u64,
    code: pppoe::Code,
    client: Option<MacAddr>,
    ac: Option<MacAddr>,
    host_uniq: Option<Vec<u8>>,
    ac_name: Option<String>,
    service_name: Option<String>,
}

/// Everything known about one session. Sides are indices 0 and 1 into
/// `sides`; facts that depend on who sent them are stored per sending side.
#[derive(Debug, Clone)]
struct Session {
    id: Option<u16>,
    sides: [Option<Endpoint>; 2],
    ac: Option<(usize, Evidence)>,
    ac_name: Option<String>,
    service_name: Option<String>,
    discovery_frames: Vec<u64>,
    first_frame: u64,
    frames: u64,
    first_side: Option<usize>,
    first_syn_side: Option<usize>,
    /// Indexed by the side that sent the Ack.
    lcp_acks: [Option<LcpAck>; 2],
    ipcp_acks: [Option<IpcpAck>; 2],
    ipv6cp_acks: [Option<[u8; 8]>; 2],
    auth_success: Option<bool>,
    terminated_by: Option<&'static str>,
    data_packets: u64,
    data_bytes: u64,
    length_mismatches: u64,
    address_mismatches: u64,
}

impl Session {
    fn new(id: Option<u16>, first_frame: u64) -> Session {
        Session {
            id,
            sides: [None; 2],
            ac: None,
            ac_name: None,
            service_name: None,
            discovery_frames: Vec::new(),
            first_frame,
            frames: 0,
            first_side: None,
            first_syn_side: None,
            lcp_acks: [None, None],
            ipcp_acks: [None, None],
            ipv6cp_acks: [None; 2],
            auth_success: None,
            terminated_by: None,
            data_packets: 0,
            data_bytes: 0,
            length_mismatches: 0,
            address_mismatches: 0,
        }
    }

    fn position(&self, endpoint: Endpoint) -> Option<usize> {
        self.sides.iter().position(|side| *side == Some(endpoint))
    }

    /// How well a frame's endpoints fit: (known endpoints found, fits
    /// without conflict).
    fn fit(&self, sender: Option<Endpoint>, receiver: Option<Endpoint>) -> (usize, bool) {
        let mut known: Vec<Endpoint> = sender.into_iter().chain(receiver).collect();
        known.dedup();
        let found = known
            .iter()
            .filter(|endpoint| self.position(**endpoint).is_some())
            .count();
        let free = self.sides.iter().filter(|side| side.is_none()).count();
        (found, known.len() - found <= free)
    }

    /// The side that sent a frame, learning endpoints into free slots.
    fn side_of(&mut self, sender: Option<Endpoint>, receiver: Option<Endpoint>) -> Option<usize> {
        if let Some(side) = sender.and_then(|sender| self.position(sender)) {
            return Some(side);
        }
        if let Some(side) = receiver.and_then(|receiver| self.position(receiver)) {
            let other = 1 - side;
            if self.sides[other].is_none() {
                self.sides[other] = sender;
            }
            return Some(other);
        }
        let sender = sender?;
        let free = self.sides.iter().position(Option::is_none)?;
        self.sides[free] = Some(sender);
        let other = 1 - free;
        if self.sides[other].is_none() {
            self.sides[other] = receiver;
        }
        Some(free)
    }

    /// Records that `side` plays `role`, unless stronger evidence says
    /// otherwise already.
    fn hint(&mut self, side: Option<usize>, role: Role, evidence: Evidence) {
        let Some(side) = side else { return };
        let ac = match role {
            Role::Ac => side,
            Role::Client => 1 - side,
        };
        let stronger = match self.ac {
            Some((_, known)) => known < evidence,
            None => true,
        };
        if stronger {
            self.ac = Some((ac, evidence));
        }
    }

    fn apply(&mut self, side: Option<usize>, fact: Fact) {
        match fact {
            Fact::Padt => {
                self.terminated_by.get_or_insert("padt");
            }
            Fact::LcpTerminateRequest => {
                self.terminated_by.get_or_insert("lcp-terminate");
            }
            Fact::LcpRequest { asks_auth } => {
                if asks_auth {
                    self.hint(side, Role::Ac, Evidence::Authentication);
                }
            }
            Fact::LcpAck { mru, auth } => {
                if let Some(side) = side {
                    self.lcp_acks[side] = Some(LcpAck { mru, auth });
                }
            }
            Fact::PapRequest | Fact::ChapResponse => {
                self.hint(side, Role::Client, Evidence::Authentication)
            }
            Fact::ChapChallenge => self.hint(side, Role::Ac, Evidence::Authentication),
            Fact::PapAck | Fact::ChapSuccess => {
                self.hint(side, Role::Ac, Evidence::Authentication);
                self.auth_success = Some(true);
            }
            Fact::PapNak | Fact::ChapFailure => {
                self.hint(side, Role::Ac, Evidence::Authentication);
                self.auth_success = Some(false);
            }
            Fact::IpcpRequest {
                asks_address,
                asks_dns,
            } => {
                if asks_address || asks_dns {
                    self.hint(side, Role::Client, Evidence::Addressing);
                }
            }
            Fact::IpcpNak { offers_address } => {
                if offers_address {
                    self.hint(side, Role::Ac, Evidence::Addressing);
                }
            }
            Fact::IpcpAck { address, dns } => {
                if let Some(side) = side {
                    self.ipcp_acks[side] = Some(IpcpAck { address, dns });
                }
            }
            Fact::Ipv6cpAck { interface_id } => {
                if let (Some(side), Some(id)) = (side, interface_id) {
                    self.ipv6cp_acks[side] = Some(id);
                }
            }
            Fact::Data { bytes, opens_tcp } => {
                self.data_packets += 1;
                self.data_bytes = self.data_bytes.saturating_add(bytes);
                if opens_tcp && self.first_syn_side.is_none() {
                    self.first_syn_side = side;
                }
            }
            Fact::Other => {}
        }
    }

    /// The AC's side and how it was decided, falling back on the guesses.
    fn roles(&self) -> Option<(usize, Evidence)> {
        self.ac.or_else(|| {
            let (client, evidence) = match (self.first_syn_side, self.first_side) {
                (Some(side), _) => (side, Evidence::FirstTcpSyn),
                (None, Some(side)) => (side, Evidence::FirstFrame),
                (None, None) => return None,
            };
            Some((1 - client, evidence))
        })
    }

    fn summary(&self) -> SessionSummary {
        let roles = self.roles();
        let ac = roles.map(|(side, _)| side);
        let client = ac.map(|side| 1 - side);
        let mac = |side: Option<usize>| match side.and_then(|side| self.sides[side]) {
            Some(Endpoint::Mac(mac)) => Some(mac.to_string()),
            _ => None,
        };
        // Acks are stored by the side that sent them: the client's request
        // is acked by the AC, and the other way round.
        let client_request_lcp = ac.and_then(|side| self.lcp_acks[side].as_ref());
        let ac_request_lcp = client.and_then(|side| self.lcp_acks[side].as_ref());
        let lcp_completed = self.lcp_acks.iter().all(Option::is_some);
        let auth = match ac_request_lcp.and_then(|ack| ack.auth.clone()) {
            Some(auth) => Some(auth),
            None if lcp_completed && ac.is_some() => Some("none".to_string()),
            None => None,
        };
        let client_request_ipcp = ac.and_then(|side| self.ipcp_acks[side].as_ref());
        let ac_request_ipcp = client.and_then(|side| self.ipcp_acks[side].as_ref());

        let mut notes = vec![match roles {
            Some((_, evidence)) => evidence.describe().to_string(),
            None => "roles unknown: the capture does not tell the sides apart".to_string(),
        }];
        if let Some(mru) = ac_request_lcp.and_then(|ack| ack.mru) {
            notes.push(format!(
                "the AC's acknowledged LCP request carried MRU {mru}"
            ));
        }
        if !self.discovery_frames.is_empty() {
            let frames: Vec<String> = self.discovery_frames.iter().map(u64::to_string).collect();
            notes.push(format!("discovery frames {}", frames.join(", ")));
        }
        notes.push(format!(
            "opened at frame {}; {} PPP/PADT frames",
            self.first_frame, self.frames
        ));
        if self.length_mismatches > 0 {
            notes.push(format!(
                "{} frames carry more bytes than their PPPoE length (the PPPoE length was used)",
                self.length_mismatches
            ));
        }
        if self.address_mismatches > 0 {
            notes.push(format!(
                "{} frames joined by session id and one MAC address only",
                self.address_mismatches
            ));
        }

        SessionSummary {
            session_id: self.id,
            ac_mac: mac(ac),
            client_mac: mac(client),
            ac_name: self.ac_name.clone(),
            service_name: self.service_name.clone(),
            auth,
            auth_result: self
                .auth_success
                .map(|success| if success { "success" } else { "failure" }.to_string()),
            mru: client_request_lcp.and_then(|ack| ack.mru),
            local_ip: client_request_ipcp
                .and_then(|ack| ack.address)
                .map(|address| address.to_string()),
            peer_ip: ac_request_ipcp
                .and_then(|ack| ack.address)
                .map(|address| address.to_string()),
            dns: client_request_ipcp
                .map(|ack| ack.dns.iter().map(Ipv4Addr::to_string).collect())
                .unwrap_or_default(),
            ipv6_interface_id: ac
                .and_then(|side| self.ipv6cp_acks[side])
                .map(|id| interface_id_text(&id)),
            terminated_by: self.terminated_by.map(str::to_string),
            data_packets: self.data_packets,
            data_bytes: self.data_bytes,
            notes,
        }
    }
}

/// An IPv6CP interface identifier as four groups of four hex digits.
fn interface_id_text(id: &[u8; 8]) -> String {
    id.chunks(2)
        .map(|pair| {
            pair.iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// Builds the sessions of a capture frame by frame.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    sessions: Vec<Session>,
    pending: Vec<Pending>,
}

impl Tracker {
    pub fn apply(&mut self, frame: u64, event: Event) {
        match event {
            Event::Discovery(discovery) => self.discovery(frame, discovery),
            Event::Session(session_frame) => self.session_frame(frame, session_frame),
        }
    }

    fn discovery(&mut self, frame: u64, discovery: Discovery) {
        let (client, ac) = match discovery.code {
            // A PADI goes to the broadcast address: no AC yet.
            pppoe::Code::Padi => (discovery.src, None),
            pppoe::Code::Padr => (discovery.src, discovery.dst),
            pppoe::Code::Pado | pppoe::Code::Pads => (discovery.dst, discovery.src),
            _ => return,
        };
        let pending = Pending {
            frame,
            code: discovery.code,
            client,
            ac,
            host_uniq: discovery.host_uniq,
            ac_name: discovery.ac_name,
            service_name: discovery.service_name,
        };
        if discovery.code == pppoe::Code::Pads {
            self.open_by_pads(discovery.session_id, pending);
        } else {
            self.pending.push(pending);
        }
    }

    fn open_by_pads(&mut self, session_id: u16, pads: Pending) {
        let mut session = Session::new(Some(session_id), pads.frame);
        session.sides = [pads.ac.map(Endpoint::Mac), pads.client.map(Endpoint::Mac)];
        session.ac = Some((0, Evidence::Discovery));
        let (concluded, still_pending): (Vec<Pending>, Vec<Pending>) =
            std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|pending| concludes(pending, &pads));
        self.pending = still_pending;
        let named = |code: pppoe::Code, pick: fn(&Pending) -> Option<String>| {
            concluded
                .iter()
                .rev()
                .filter(|pending| pending.code == code)
                .find_map(pick)
        };
        session.ac_name = pads
            .ac_name
            .clone()
            .or_else(|| named(pppoe::Code::Pado, |p| p.ac_name.clone()))
            .or_else(|| named(pppoe::Code::Padr, |p| p.ac_name.clone()));
        session.service_name = pads
            .service_name
            .clone()
            .or_else(|| named(pppoe::Code::Padr, |p| p.service_name.clone()))
            .or_else(|| named(pppoe::Code::Pado, |p| p.service_name.clone()))
            .or_else(|| named(pppoe::Code::Padi, |p| p.service_name.clone()));
        session.discovery_frames = concluded.iter().map(|pending| pending.frame).collect();
        session.discovery_frames.push(pads.frame);
        self.sessions.push(session);
    }

    /// The session a frame belongs to, opened if none fits.
    fn find_or_open(&mut self, frame: u64, session_frame: &SessionFrame) -> usize {
        let SessionFrame {
            session_id,
            sender,
            receiver,
            ..
        } = *session_frame;
        let same_id = || {
            self.sessions
                .iter()
                .enumerate()
                .rev()
                .filter(move |(_, session)| session.id == session_id)
        };
        if let Some((index, _)) = same_id().find(|(_, session)| session.fit(sender, receiver).1) {
            return index;
        }
        if let Some((index, _)) = same_id().find(|(_, session)| session.fit(sender, receiver).0 > 0)
        {
            self.sessions[index].address_mismatches += 1;
            return index;
        }
        self.sessions.push(Session::new(session_id, frame));
        self.sessions.len() - 1
    }

    fn session_frame(&mut self, frame: u64, session_frame: SessionFrame) {
        let index = self.find_or_open(frame, &session_frame);
        let session = &mut self.sessions[index];
        session.frames += 1;
        let side = session.side_of(session_frame.sender, session_frame.receiver);
        if session.first_side.is_none() {
            session.first_side = side;
        }
        if session_frame.length_mismatch {
            session.length_mismatches += 1;
        }
        session.apply(side, session_frame.fact);
    }

    /// The session summaries, and the discovery frames no PADS concluded.
    pub fn finish(self) -> (Vec<SessionSummary>, Vec<String>) {
        let summaries = self.sessions.iter().map(Session::summary).collect();
        let unconcluded = self
            .pending
            .iter()
            .map(|pending| {
                let from = match pending.code {
                    pppoe::Code::Pado => pending.ac,
                    _ => pending.client,
                };
                let from =
                    from.map_or_else(|| "an unknown address".to_string(), |mac| mac.to_string());
                format!(
                    "frame {}: {} from {from}",
                    pending.frame,
                    pending.code.name()
                )
            })
            .collect();
        (summaries, unconcluded)
    }
}

/// Whether a PADI, PADO or PADR belongs to the exchange a PADS concludes:
/// nothing may contradict (Host-Uniq, client and AC address where both are
/// known), and Host-Uniq or the client address must agree.
fn concludes(pending: &Pending, pads: &Pending) -> bool {
    let same_mac = |a: Option<MacAddr>, b: Option<MacAddr>| match (a, b) {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    };
    // RFC 2516: an AC echoes the client's Host-Uniq, so one side having it
    // and the other not means another exchange.
    let same_uniq = match (&pending.host_uniq, &pads.host_uniq) {
        (Some(a), Some(b)) => Some(a == b),
        (None, None) => None,
        _ => Some(false),
    };
    let same_client = same_mac(pending.client, pads.client);
    let same_ac = same_mac(pending.ac, pads.ac);
    if [same_uniq, same_client, same_ac].contains(&Some(false)) {
        return false;
    }
    same_uniq == Some(true) || same_client == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: MacAddr = MacAddr([0xca, 0x01, 0x0e, 0x88, 0x00, 0x06]);
    const CLIENT: MacAddr = MacAddr([0xcc, 0x05, 0x0e, 0x88, 0x00, 0x00]);

    fn frame(sender: MacAddr, receiver: MacAddr, fact: Fact) -> Event {
        Event::Session(SessionFrame {
            session_id: Some(0x11),
            sender: Some(Endpoint::Mac(sender)),
            receiver: Some(Endpoint::Mac(receiver)),
            fact,
            length_mismatch: false,
        })
    }

    #[test]
    fn session_only_roles_come_from_authentication() {
        let mut tracker = Tracker::default();
        tracker.apply(
            1,
            frame(
                CLIENT,
                AC,
                Fact::Data {
                    bytes: 10,
                    opens_tcp: true,
                },
            ),
        );
        tracker.apply(2, frame(AC, CLIENT, Fact::LcpRequest { asks_auth: true }));
        tracker.apply(
            3,
            frame(
                CLIENT,
                AC,
                Fact::LcpAck {
                    mru: None,
                    auth: Some("pap".into()),
                },
            ),
        );
        tracker.apply(
            4,
            frame(
                AC,
                CLIENT,
                Fact::LcpAck {
                    mru: Some(1492),
                    auth: None,
                },
            ),
        );
        tracker.apply(5, frame(AC, CLIENT, Fact::PapNak));
        let (sessions, _) = tracker.finish();
        assert_eq!(sessions.len(), 1);
        let session = &sessions[0];
        assert_eq!(session.ac_mac.as_deref(), Some("ca:01:0e:88:00:06"));
        assert_eq!(session.client_mac.as_deref(), Some("cc:05:0e:88:00:00"));
        assert_eq!(session.auth.as_deref(), Some("pap"));
        assert_eq!(session.auth_result.as_deref(), Some("failure"));
        assert_eq!(session.mru, Some(1492));
        assert_eq!(session.data_packets, 1);
    }

    #[test]
    fn host_uniq_ties_discovery_to_its_pads() {
        let discovery = |code, src, dst, uniq: &[u8]| {
            Event::Discovery(Discovery {
                code,
                session_id: if code == pppoe::Code::Pads { 7 } else { 0 },
                src: Some(src),
                dst: Some(dst),
                host_uniq: Some(uniq.to_vec()),
                ac_name: Some("BRAS".into()),
                service_name: None,
            })
        };
        let mut tracker = Tracker::default();
        tracker.apply(
            1,
            discovery(pppoe::Code::Padi, CLIENT, MacAddr::BROADCAST, b"a"),
        );
        tracker.apply(
            2,
            discovery(pppoe::Code::Padi, CLIENT, MacAddr::BROADCAST, b"b"),
        );
        tracker.apply(3, discovery(pppoe::Code::Pado, AC, CLIENT, b"a"));
        tracker.apply(4, discovery(pppoe::Code::Pads, AC, CLIENT, b"a"));
        let (sessions, unconcluded) = tracker.finish();
        assert_eq!(sessions[0].session_id, Some(7));
        assert_eq!(sessions[0].ac_name.as_deref(), Some("BRAS"));
        assert!(sessions[0]
            .notes
            .contains(&"discovery frames 1, 3, 4".to_string()));
        assert_eq!(
            unconcluded,
            vec!["frame 2: PADI from cc:05:0e:88:00:00".to_string()]
        );
    }

    #[test]
    fn interface_ids_print_as_four_groups() {
        let id = [0xce, 0x05, 0x0e, 0xff, 0xfe, 0x88, 0x00, 0x00];
        assert_eq!(interface_id_text(&id), "ce05:0eff:fe88:0000");
    }
}
