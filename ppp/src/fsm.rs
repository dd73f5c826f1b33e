//! The option-negotiation automaton of RFC 1661 §4, shared by LCP and every NCP.
//!
//! One [`Automaton`] runs all ten states and sixteen events of the RFC; what is
//! specific to a protocol (which options to ask for, how to judge the peer's,
//! what to do when ours are Nak'd or rejected) lives in a [`Policy`].
//!
//! It is sans-IO and deterministic: packets come in through
//! [`Automaton::handle_packet`], go out through [`Automaton::poll_transmit`],
//! time is whatever `Instant` the caller passes, and the only timer (the RFC's
//! Restart timer) is exposed as [`Automaton::poll_timeout`].
//!
//! RFC 1661 §4.1 State Transition Table (the test `rfc_state_table_every_cell`
//! parses this very table and checks every cell against the automaton):
//!
//! ```text
//!       | State
//!       |    0         1         2         3         4         5
//! Events| Initial   Starting  Closed    Stopped   Closing   Stopping
//! ------+-----------------------------------------------------------
//!  Up   |    2     irc,scr/6     -         -         -         -
//!  Down |    -         -         0       tls/1       0         1
//!  Open |  tls/1       1     irc,scr/6     3r        5r        5r
//!  Close|    0       tlf/0       2         2         4         4
//!       |
//!   TO+ |    -         -         -         -       str/4     str/5
//!   TO- |    -         -         -         -       tlf/2     tlf/3
//!       |
//!  RCR+ |    -         -       sta/2 irc,scr,sca/8   4         5
//!  RCR- |    -         -       sta/2 irc,scr,scn/6   4         5
//!  RCA  |    -         -       sta/2     sta/3       4         5
//!  RCN  |    -         -       sta/2     sta/3       4         5
//!       |
//!  RTR  |    -         -       sta/2     sta/3     sta/4     sta/5
//!  RTA  |    -         -         2         3       tlf/2     tlf/3
//!       |
//!  RUC  |    -         -       scj/2     scj/3     scj/4     scj/5
//!  RXJ+ |    -         -         2         3         4         5
//!  RXJ- |    -         -       tlf/2     tlf/3     tlf/2     tlf/3
//!       |
//!  RXR  |    -         -         2         3         4         5
//!
//!       | State
//!       |    6         7         8           9
//! Events| Req-Sent  Ack-Rcvd  Ack-Sent    Opened
//! ------+-----------------------------------------
//!  Up   |    -         -         -           -
//!  Down |    1         1         1         tld/1
//!  Open |    6         7         8           9r
//!  Close|irc,str/4 irc,str/4 irc,str/4 tld,irc,str/4
//!       |
//!   TO+ |  scr/6     scr/6     scr/8         -
//!   TO- |  tlf/3p    tlf/3p    tlf/3p        -
//!       |
//!  RCR+ |  sca/8   sca,tlu/9   sca/8   tld,scr,sca/8
//!  RCR- |  scn/6     scn/7     scn/6   tld,scr,scn/6
//!  RCA  |  irc/7     scr/6x  irc,tlu/9   tld,scr/6x
//!  RCN  |irc,scr/6   scr/6x  irc,scr/8   tld,scr/6x
//!       |
//!  RTR  |  sta/6     sta/6     sta/6   tld,zrc,sta/5
//!  RTA  |    6         6         8       tld,scr/6
//!       |
//!  RUC  |  scj/6     scj/7     scj/8       scj/9
//!  RXJ+ |    6         6         8           9
//!  RXJ- |  tlf/3     tlf/3     tlf/3   tld,irc,str/5
//!       |
//!  RXR  |    6         7         8         ser/9
//! ```
//!
//! Events: Up/Down = lower layer up/down; Open/Close = administrative; TO+/TO- =
//! Restart timer expired with the restart counter above zero / exhausted; RCR+ and
//! RCR- = Configure-Request received, good / bad; RCA = Configure-Ack; RCN =
//! Configure-Nak or Configure-Reject; RTR/RTA = Terminate-Request/-Ack; RUC =
//! unknown code; RXJ+/RXJ- = Code-Reject (permitted / catastrophic) or
//! Protocol-Reject; RXR = Echo-Request, Echo-Reply or Discard-Request.
//!
//! Actions: tlu/tld/tls/tlf = This-Layer-Up/-Down/-Started/-Finished (reported
//! as [`FsmEvent`]s); irc/zrc = Initialize-/Zero-Restart-Count; scr, sca, scn,
//! str, sta, scj, ser = send Configure-Request, -Ack, -Nak or -Reject,
//! Terminate-Request, -Ack, Code-Reject, Echo-Reply. "-" marks an event that
//! cannot happen in that state: the automaton logs it, counts it in
//! [`FsmStats::illegal_events`] and otherwise ignores it. The Restart timer runs
//! exactly in the states that have TO events; only scr, str and zrc (re)start it.
//!
//! Options marked in the table and not taken here: `p` (passive: stay silent in
//! Stopped), `r` (restart: Open in Stopped/Stopping/Opened bounces the layer);
//! `x` (crossed connection) is taken as the table says.
//!
//! Where this automaton is stricter than the table, as pppd is:
//!
//! * An Ack, Nak or Reject counts as RCA/RCN only if its identifier is that of
//!   our outstanding Configure-Request and that request has not been answered
//!   yet; an Ack must also echo our options exactly. Anything else is discarded
//!   (and counted in [`FsmStats`]), so a duplicated Ack never tears down an
//!   opened link (the table's RCA/RCN in Ack-Rcvd and Opened are reached only
//!   by a reply to a request that is still unanswered).
//! * Receive-side Nak loop bound (the RFC resets the restart counter on every
//!   RCN, so a peer could keep us negotiating forever): after `max_failure`
//!   consecutive Naks/Rejects after which our next request would be the same
//!   as the last one, or after `2 * max_configure` consecutive Nak/Reject rounds
//!   without an Ack whatever they change, the layer is closed as not
//!   converging. Both counts restart with each valid Ack and each negotiation.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use portdial_protocol::control::{Code, Repr, HEADER_LEN};
use portdial_protocol::options::OptionIter;

/// The largest control packet a Code-Reject carries: the Rejected-Packet field
/// is truncated so that the whole packet fits the 1492-byte MRU of PPPoE
/// (RFC 1661 §5.6 asks for truncation to the peer's MRU, which LCP knows; an
/// unknown code arrives rarely enough that the PPPoE bound is good enough).
const MAX_CODE_REJECT_LEN: usize = 1492;

/// The counters and timer of RFC 1661 §4.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsmConfig {
    /// The Restart timer: how long to wait for an answer to a Configure- or
    /// Terminate-Request before sending it again.
    pub restart_interval: Duration,
    /// Configure-Requests sent without an Ack before giving up.
    pub max_configure: u32,
    /// Terminate-Requests sent without a Terminate-Ack before giving up.
    pub max_terminate: u32,
    /// Consecutive Configure-Naks sent without an Ack before we must Reject
    /// instead; also the receive-side bound on Naks that change nothing.
    pub max_failure: u32,
    /// When our Configure-Request is still unanswered and the peer's first
    /// Configure-Request arrives, retransmit ours at once (a peer that started
    /// late dropped it) instead of waiting out the restart timer. Default true.
    pub retransmit_on_peer_request: bool,
}

impl Default for FsmConfig {
    /// The defaults of RFC 1661 §4.6.
    fn default() -> Self {
        FsmConfig {
            restart_interval: Duration::from_secs(3),
            max_configure: 10,
            max_terminate: 2,
            max_failure: 5,
            retransmit_on_peer_request: true,
        }
    }
}

/// The ten states of RFC 1661 §4.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Initial,
    Starting,
    Closed,
    Stopped,
    Closing,
    Stopping,
    ReqSent,
    AckRcvd,
    AckSent,
    Opened,
}

impl State {
    /// The states in which the Restart timer runs (those with TO events).
    fn has_restart_timer(self) -> bool {
        matches!(
            self,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        )
    }
}

/// What a policy decides about the peer's Configure-Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestVerdict {
    /// RCR+: send a Configure-Ack echoing the request.
    Ack,
    /// RCR-: send a Configure-Nak carrying these options.
    Nak(Vec<u8>),
    /// RCR-: send a Configure-Reject carrying these options.
    Reject(Vec<u8>),
    /// The request cannot be read at all: drop it silently, as if it never
    /// arrived (counted in [`FsmStats::requests_discarded`]). Policies that
    /// prefer to Reject what they cannot parse (as pppd does) never return it.
    Discard,
}

/// The protocol-specific half of a negotiation.
pub trait Policy {
    /// For logs ("LCP", "IPCP", ...).
    fn name(&self) -> &'static str;

    /// Called when a new negotiation starts (on Up/Open, and when the peer or
    /// a Terminate-Ack restarts an opened or stopped layer), before anything
    /// else of that negotiation: forget what was learned from Naks/Rejects of
    /// the previous negotiation.
    fn reset(&mut self);

    /// Append the options of our next Configure-Request.
    fn build_request(&mut self, out: &mut Vec<u8>);

    /// Judge the peer's Configure-Request options. `nak_allowed` is false once
    /// Max-Failure Naks were sent without an Ack: the policy must then Reject
    /// instead of Nak (RFC 1661 §4.6). Malformed option lists: the policy
    /// decides (Reject them, or [`RequestVerdict::Discard`] to drop the packet).
    fn check_request(&mut self, options: &[u8], nak_allowed: bool) -> RequestVerdict;

    /// The peer Acked our request (the options echo what we sent: the automaton
    /// has already checked the identifier and the options, else the Ack is
    /// discarded).
    fn handle_ack(&mut self, options: &[u8]);

    /// The peer Nak'd some of our options. `Err(reason)` = we cannot converge
    /// (e.g. a required value refused): the automaton then closes the layer
    /// with that reason.
    fn handle_nak(&mut self, options: &[u8]) -> Result<(), String>;

    /// The peer Rejected some of our options; `Err` as for [`Policy::handle_nak`].
    fn handle_reject(&mut self, options: &[u8]) -> Result<(), String>;

    /// Whether a Code-Reject for `code` is acceptable (RXJ+) or catastrophic
    /// (RXJ-). The default: codes 1..=7, which every control protocol needs,
    /// are catastrophic; the others acceptable.
    fn code_reject_is_acceptable(&self, code: Code) -> bool {
        !(1..=7).contains(&u8::from(code))
    }

    /// A name for an option type, for the "not converging" failure message.
    /// The default knows none, and the message shows the type number.
    fn option_name(&self, _kind: u8) -> Option<&'static str> {
        None
    }
}

/// What the automaton tells the layer above (the RFC's tlu/tld/tls/tlf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsmEvent {
    /// This-Layer-Up: the negotiation finished; the layer is open.
    Up,
    /// This-Layer-Down: the layer left Opened.
    Down,
    /// This-Layer-Started: the layer wants the lower layer up.
    Started,
    /// This-Layer-Finished: the layer no longer needs the lower layer.
    /// `reason` is [`Automaton::failure`] at that moment (None for an orderly
    /// close).
    Finished { reason: Option<String> },
}

/// Counters for diagnostics; they never affect the automaton.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsmStats {
    /// Acks/Naks/Rejects whose identifier is not that of our outstanding request.
    pub replies_bad_id: u64,
    /// Second and later replies to a request already answered.
    pub replies_duplicate: u64,
    /// Acks whose options differ from what we sent.
    pub acks_mismatched: u64,
    /// Rejects naming options our request did not carry (RFC 1661 §5.4:
    /// invalid, silently discarded).
    pub rejects_invalid: u64,
    /// Peer Configure-Requests the policy could not read.
    pub requests_discarded: u64,
    /// Code-Rejects too short to name the rejected code.
    pub code_rejects_malformed: u64,
    /// Events in cells the table marks "-".
    pub illegal_events: u64,
    /// Configure-/Terminate-Requests sent again on timeout.
    pub retransmissions: u64,
    /// Configure-Requests sent again early, on the peer's first request.
    pub early_retransmissions: u64,
    /// Configure-Naks we sent.
    pub naks_sent: u64,
    /// Configure-Rejects we sent.
    pub rejects_sent: u64,
}

/// Our Configure-Request awaiting (or having got) its answer.
#[derive(Debug, Clone)]
struct OutstandingRequest {
    identifier: u8,
    options: Vec<u8>,
    /// An Ack, Nak or Reject for it was accepted; later ones are duplicates.
    answered: bool,
}

/// Our last Terminate-Request, kept for retransmission.
#[derive(Debug, Clone)]
struct TerminateRequest {
    identifier: u8,
    data: Vec<u8>,
}

/// The RFC 1661 option-negotiation automaton, driven by a [`Policy`].
#[derive(Debug)]
pub struct Automaton<P: Policy> {
    policy: P,
    config: FsmConfig,
    state: State,
    restart_counter: u32,
    restart_deadline: Option<Instant>,
    /// Identifier of our next new request (Configure, Terminate, Code-Reject).
    next_identifier: u8,
    request: Option<OutstandingRequest>,
    terminate: Option<TerminateRequest>,
    /// Consecutive Configure-Naks we sent without an Ack (Max-Failure).
    naks_sent_in_row: u32,
    /// Consecutive Nak/Reject rounds received without an Ack.
    nak_rounds: u32,
    /// Of those, consecutive ones after which our request stayed the same.
    unchanged_nak_rounds: u32,
    /// The peer sent a Configure-Request in this negotiation.
    peer_request_seen: bool,
    failure: Option<String>,
    /// The failure is the peer's Terminate-Request (not a negotiation problem).
    peer_terminated: bool,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<FsmEvent>,
    stats: FsmStats,
}

impl<P: Policy> Automaton<P> {
    /// An automaton in the Initial state.
    pub fn new(policy: P, config: FsmConfig) -> Self {
        Automaton {
            policy,
            config,
            state: State::Initial,
            restart_counter: 0,
            restart_deadline: None,
            next_identifier: 1,
            request: None,
            terminate: None,
            naks_sent_in_row: 0,
            nak_rounds: 0,
            unchanged_nak_rounds: 0,
            peer_request_seen: false,
            failure: None,
            peer_terminated: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            stats: FsmStats::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn policy(&self) -> &P {
        &self.policy
    }

    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
    }

    pub fn config(&self) -> &FsmConfig {
        &self.config
    }

    pub fn stats(&self) -> &FsmStats {
        &self.stats
    }

    /// Why the last negotiation failed (Max-Configure exhausted, peer kept
    /// Nak'ing, policy `Err`, Terminate by peer, catastrophic reject), for the
    /// session to report. Cleared when a new negotiation starts.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Whether [`Automaton::failure`] is the peer's Terminate-Request.
    pub fn terminated_by_peer(&self) -> bool {
        self.peer_terminated
    }

    /// Up: the lower layer is ready.
    pub fn up(&mut self, now: Instant) {
        match self.state {
            State::Initial => self.set_state(State::Closed, "Up"),
            State::Starting => {
                self.set_state(State::ReqSent, "Up");
                self.start_negotiation();
                self.initialize_restart_count(self.config.max_configure);
                self.send_new_configure_request(now);
            }
            _ => self.illegal("Up"),
        }
    }

    /// Down: the lower layer went away.
    pub fn down(&mut self, _now: Instant) {
        match self.state {
            State::Initial | State::Starting => self.illegal("Down"),
            State::Closed | State::Closing => self.set_state(State::Initial, "Down"),
            State::Stopped => {
                self.set_state(State::Starting, "Down");
                self.this_layer_started();
            }
            State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent => {
                self.set_state(State::Starting, "Down")
            }
            State::Opened => {
                self.set_state(State::Starting, "Down");
                self.this_layer_down();
            }
        }
    }

    /// Open: the administrator wants the layer up.
    pub fn open(&mut self, now: Instant) {
        match self.state {
            State::Initial => {
                self.set_state(State::Starting, "Open");
                self.this_layer_started();
            }
            State::Closed => {
                self.set_state(State::ReqSent, "Open");
                self.start_negotiation();
                self.initialize_restart_count(self.config.max_configure);
                self.send_new_configure_request(now);
            }
            State::Closing => self.set_state(State::Stopping, "Open"),
            State::Starting
            | State::Stopped
            | State::Stopping
            | State::ReqSent
            | State::AckRcvd
            | State::AckSent
            | State::Opened => {}
        }
    }

    /// Close: the administrator wants the layer down; `reason` goes into the
    /// Terminate-Request's data.
    pub fn close(&mut self, now: Instant, reason: &str) {
        self.close_event(now, reason.as_bytes(), "Close");
    }

    /// TO+ / TO-: call when [`Automaton::poll_timeout`] is due; does nothing
    /// before the deadline or when the timer is not running.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.restart_deadline {
            Some(deadline) if now >= deadline => {}
            _ => return,
        }
        self.restart_deadline = None;
        if self.restart_counter > 0 {
            self.timeout_with_counter(now);
        } else {
            self.timeout_exhausted();
        }
    }

    /// Handles control packets with codes 1..=7. Returns false for other
    /// codes: the caller (LCP) handles 8..=13 itself or calls
    /// [`Automaton::reject_unknown_code`].
    pub fn handle_packet(&mut self, now: Instant, packet: &Repr) -> bool {
        let (identifier, data) = (packet.identifier, packet.data);
        match packet.code {
            Code::ConfigureRequest => self.receive_configure_request(now, identifier, data),
            Code::ConfigureAck => self.receive_configure_ack(now, identifier, data),
            Code::ConfigureNak | Code::ConfigureReject => {
                self.receive_configure_nak_or_reject(now, packet.code, identifier, data)
            }
            Code::TerminateRequest => self.receive_terminate_request(now, identifier, data),
            Code::TerminateAck => self.receive_terminate_ack(now),
            Code::CodeReject => self.receive_code_reject(now, data),
            _ => return false,
        }
        true
    }

    /// RUC: send a Code-Reject for a packet with an unknown code (the raw
    /// packet bytes, as received).
    pub fn reject_unknown_code(&mut self, _now: Instant, raw_packet: &[u8]) {
        if matches!(self.state, State::Initial | State::Starting) {
            self.illegal("RUC");
            return;
        }
        let room = MAX_CODE_REJECT_LEN.saturating_sub(HEADER_LEN);
        let rejected = raw_packet.get(..room).unwrap_or(raw_packet);
        let identifier = self.take_identifier();
        self.send(Code::CodeReject, identifier, rejected);
    }

    /// A Protocol-Reject of this protocol was received (RXJ-: catastrophic
    /// for NCPs; LCP is never Protocol-Rejected).
    pub fn handle_protocol_reject(&mut self, now: Instant) {
        if matches!(self.state, State::Initial | State::Starting) {
            self.illegal("RXJ-");
            return;
        }
        let reason = format!(
            "{}: the peer Protocol-Rejected {}",
            self.name(),
            self.name()
        );
        self.receive_catastrophic_reject(now, reason);
    }

    /// RXR (Echo-Request, Echo-Reply, Discard-Request): returns whether the
    /// caller should answer an Echo-Request (the table's ser: only in Opened).
    pub fn handle_rxr(&mut self, _now: Instant) -> bool {
        match self.state {
            State::Initial | State::Starting => {
                self.illegal("RXR");
                false
            }
            State::Opened => true,
            _ => false,
        }
    }

    /// The next control packet to send (code, identifier, length, data).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event for the layer above.
    pub fn poll_event(&mut self) -> Option<FsmEvent> {
        self.events.pop_front()
    }

    /// When the Restart timer expires, if it runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.restart_deadline
    }

    // ---- events from packets -------------------------------------------

    fn receive_configure_request(&mut self, now: Instant, identifier: u8, options: &[u8]) {
        match self.state {
            State::Initial | State::Starting => return self.illegal("RCR"),
            State::Closed => return self.send(Code::TerminateAck, identifier, &[]),
            State::Closing | State::Stopping => return,
            State::Stopped | State::ReqSent | State::AckRcvd | State::AckSent | State::Opened => {}
        }
        let restart = matches!(self.state, State::Stopped | State::Opened);
        if restart {
            // The policy learns the peer's options in check_request, so the new
            // negotiation must start before it is asked.
            self.start_negotiation();
        }
        let nak_allowed = self.naks_sent_in_row < self.config.max_failure;
        let verdict = self.policy.check_request(options, nak_allowed);
        let good = match verdict {
            RequestVerdict::Ack => true,
            RequestVerdict::Nak(_) | RequestVerdict::Reject(_) => false,
            RequestVerdict::Discard => {
                self.stats.requests_discarded += 1;
                tracing::debug!(
                    protocol = self.name(),
                    "unreadable Configure-Request dropped"
                );
                if self.state == State::Opened {
                    // The peer has left Opened anyway (it is renegotiating) and the
                    // policy was reset: go down and renegotiate, but do not answer
                    // what we could not read.
                    self.set_state(State::ReqSent, "RCR (unreadable)");
                    self.this_layer_down();
                    self.send_new_configure_request(now);
                }
                return;
            }
        };
        let event = if good { "RCR+" } else { "RCR-" };
        let first_peer_request = !self.peer_request_seen;
        self.peer_request_seen = true;
        match (self.state, good) {
            (State::Stopped, _) => {
                self.set_state(if good { State::AckSent } else { State::ReqSent }, event);
                self.initialize_restart_count(self.config.max_configure);
                self.send_new_configure_request(now);
                self.answer_request(identifier, options, verdict);
            }
            (State::Opened, _) => {
                self.set_state(if good { State::AckSent } else { State::ReqSent }, event);
                self.this_layer_down();
                self.send_new_configure_request(now);
                self.answer_request(identifier, options, verdict);
            }
            (State::ReqSent, _) => {
                if good {
                    self.set_state(State::AckSent, event);
                }
                self.answer_request(identifier, options, verdict);
                if first_peer_request {
                    self.retransmit_early(now);
                }
            }
            (State::AckRcvd, true) => {
                self.set_state(State::Opened, event);
                self.answer_request(identifier, options, verdict);
                self.this_layer_up();
            }
            (State::AckSent, false) => {
                self.set_state(State::ReqSent, event);
                self.answer_request(identifier, options, verdict);
            }
            // AckRcvd and RCR-, AckSent and RCR+: the state stays.
            _ => self.answer_request(identifier, options, verdict),
        }
    }

    fn receive_configure_ack(&mut self, now: Instant, identifier: u8, options: &[u8]) {
        match self.state {
            State::Initial | State::Starting => return self.illegal("RCA"),
            State::Closed | State::Stopped => {
                return self.send(Code::TerminateAck, identifier, &[])
            }
            State::Closing | State::Stopping => return,
            State::ReqSent | State::AckRcvd | State::AckSent | State::Opened => {}
        }
        if !self.accept_reply(identifier, "Configure-Ack") {
            return;
        }
        let echoes_ours = self
            .request
            .as_ref()
            .is_some_and(|request| request.options == options);
        if !echoes_ours {
            self.stats.acks_mismatched += 1;
            tracing::debug!(
                protocol = self.name(),
                "Configure-Ack with other options than ours dropped"
            );
            return;
        }
        if let Some(request) = self.request.as_mut() {
            request.answered = true;
        }
        self.nak_rounds = 0;
        self.unchanged_nak_rounds = 0;
        match self.state {
            State::ReqSent => {
                self.set_state(State::AckRcvd, "RCA");
                self.initialize_restart_count(self.config.max_configure);
                self.policy.handle_ack(options);
            }
            State::AckRcvd => {
                tracing::debug!(
                    protocol = self.name(),
                    "crossed connection: second Ack, renegotiating"
                );
                self.set_state(State::ReqSent, "RCA");
                self.send_new_configure_request(now);
            }
            State::AckSent => {
                self.set_state(State::Opened, "RCA");
                self.initialize_restart_count(self.config.max_configure);
                self.policy.handle_ack(options);
                self.this_layer_up();
            }
            State::Opened => {
                self.set_state(State::ReqSent, "RCA");
                self.this_layer_down();
                self.start_negotiation();
                self.send_new_configure_request(now);
            }
            _ => {}
        }
    }

    fn receive_configure_nak_or_reject(
        &mut self,
        now: Instant,
        code: Code,
        identifier: u8,
        options: &[u8],
    ) {
        match self.state {
            State::Initial | State::Starting => return self.illegal("RCN"),
            State::Closed | State::Stopped => {
                return self.send(Code::TerminateAck, identifier, &[])
            }
            State::Closing | State::Stopping => return,
            State::ReqSent | State::AckRcvd | State::AckSent | State::Opened => {}
        }
        if !self.accept_reply(identifier, code.name()) {
            return;
        }
        if code == Code::ConfigureReject && !self.rejects_only_what_we_asked(options) {
            self.stats.rejects_invalid += 1;
            tracing::debug!(
                protocol = self.name(),
                identifier,
                "Configure-Reject of options we did not ask for dropped"
            );
            return;
        }
        if let Some(request) = self.request.as_mut() {
            request.answered = true;
        }
        let from = self.state;
        // ReqSent and AckSent re-initialise the counter; AckRcvd (crossed
        // connection) and Opened only send.
        let initialize = matches!(from, State::ReqSent | State::AckSent);
        self.set_state(
            if from == State::AckSent {
                State::AckSent
            } else {
                State::ReqSent
            },
            "RCN",
        );
        if from == State::Opened {
            self.this_layer_down();
            self.start_negotiation();
        }
        let handled = if code == Code::ConfigureNak {
            self.policy.handle_nak(options)
        } else {
            self.policy.handle_reject(options)
        };
        if let Err(reason) = handled {
            let reason = format!("{}: {reason}", self.name());
            return self.fail(now, reason);
        }
        let mut next = Vec::new();
        self.policy.build_request(&mut next);
        let unchanged = self
            .request
            .as_ref()
            .is_some_and(|request| request.options == next);
        self.nak_rounds = self.nak_rounds.saturating_add(1);
        self.unchanged_nak_rounds = if unchanged {
            self.unchanged_nak_rounds.saturating_add(1)
        } else {
            0
        };
        let round_limit = self.config.max_configure.saturating_mul(2).max(1);
        if self.unchanged_nak_rounds >= self.config.max_failure.max(1)
            || self.nak_rounds >= round_limit
        {
            let reason = self.not_converging(code, options);
            return self.fail(now, reason);
        }
        if initialize {
            self.initialize_restart_count(self.config.max_configure);
        }
        self.send_configure_request(now, next);
    }

    fn receive_terminate_request(&mut self, now: Instant, identifier: u8, data: &[u8]) {
        match self.state {
            State::Initial | State::Starting => self.illegal("RTR"),
            State::Closed | State::Stopped | State::Closing | State::Stopping => {
                self.send(Code::TerminateAck, identifier, &[])
            }
            State::ReqSent | State::AckRcvd | State::AckSent => {
                self.set_state(State::ReqSent, "RTR");
                self.send(Code::TerminateAck, identifier, &[]);
            }
            State::Opened => {
                let mut reason = format!("{}: terminated by the peer", self.name());
                if !data.is_empty() {
                    let _ = write!(
                        reason,
                        " ({})",
                        String::from_utf8_lossy(data).escape_debug()
                    );
                }
                tracing::info!(protocol = self.name(), %reason, "layer terminated by the peer");
                self.failure = Some(reason);
                self.peer_terminated = true;
                self.set_state(State::Stopping, "RTR");
                self.this_layer_down();
                self.zero_restart_count(now);
                self.send(Code::TerminateAck, identifier, &[]);
            }
        }
    }

    fn receive_terminate_ack(&mut self, now: Instant) {
        match self.state {
            State::Initial | State::Starting => self.illegal("RTA"),
            State::Closing => {
                self.set_state(State::Closed, "RTA");
                self.this_layer_finished();
            }
            State::Stopping => {
                self.set_state(State::Stopped, "RTA");
                self.this_layer_finished();
            }
            State::AckRcvd => self.set_state(State::ReqSent, "RTA"),
            State::Opened => {
                self.set_state(State::ReqSent, "RTA");
                self.this_layer_down();
                self.start_negotiation();
                self.send_new_configure_request(now);
            }
            State::Closed | State::Stopped | State::ReqSent | State::AckSent => {}
        }
    }

    fn receive_code_reject(&mut self, now: Instant, data: &[u8]) {
        if matches!(self.state, State::Initial | State::Starting) {
            return self.illegal("RXJ");
        }
        // The data is the rejected packet, whose first byte is its code.
        let Some(&rejected) = data.first() else {
            self.stats.code_rejects_malformed += 1;
            tracing::debug!(protocol = self.name(), "empty Code-Reject dropped");
            return;
        };
        let code = Code::from(rejected);
        if self.policy.code_reject_is_acceptable(code) {
            tracing::debug!(
                protocol = self.name(),
                code = rejected,
                "peer Code-Rejected an optional code"
            );
            if self.state == State::AckRcvd {
                self.set_state(State::ReqSent, "RXJ+");
            }
        } else {
            let reason = format!(
                "{}: the peer Code-Rejected {} (code {rejected})",
                self.name(),
                code.name()
            );
            self.receive_catastrophic_reject(now, reason);
        }
    }

    /// RXJ-.
    fn receive_catastrophic_reject(&mut self, now: Instant, reason: String) {
        tracing::info!(protocol = self.name(), %reason, "catastrophic reject");
        self.failure = Some(reason.clone());
        match self.state {
            State::Initial | State::Starting => self.illegal("RXJ-"),
            State::Closed | State::Stopped => self.this_layer_finished(),
            State::Closing => {
                self.set_state(State::Closed, "RXJ-");
                self.this_layer_finished();
            }
            State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent => {
                self.set_state(State::Stopped, "RXJ-");
                self.this_layer_finished();
            }
            State::Opened => {
                self.set_state(State::Stopping, "RXJ-");
                self.this_layer_down();
                self.initialize_restart_count(self.config.max_terminate);
                self.send_new_terminate_request(now, reason.into_bytes());
            }
        }
    }

    // ---- other events ------------------------------------------------------

    fn close_event(&mut self, now: Instant, reason: &[u8], event: &'static str) {
        match self.state {
            State::Initial | State::Closed | State::Closing => {}
            State::Starting => {
                self.set_state(State::Initial, event);
                self.this_layer_finished();
            }
            State::Stopped => self.set_state(State::Closed, event),
            State::Stopping => self.set_state(State::Closing, event),
            State::ReqSent | State::AckRcvd | State::AckSent => {
                self.set_state(State::Closing, event);
                self.initialize_restart_count(self.config.max_terminate);
                self.send_new_terminate_request(now, reason.to_vec());
            }
            State::Opened => {
                self.set_state(State::Closing, event);
                self.this_layer_down();
                self.initialize_restart_count(self.config.max_terminate);
                self.send_new_terminate_request(now, reason.to_vec());
            }
        }
    }

    /// The negotiation cannot succeed: record why and close the layer.
    fn fail(&mut self, now: Instant, reason: String) {
        tracing::info!(protocol = self.name(), %reason, "negotiation failed");
        let data = reason.clone().into_bytes();
        self.failure = Some(reason);
        self.close_event(now, &data, "Close (negotiation failed)");
    }

    /// TO+.
    fn timeout_with_counter(&mut self, now: Instant) {
        match self.state {
            State::Closing | State::Stopping => self.retransmit_terminate_request(now),
            State::ReqSent | State::AckRcvd => {
                self.set_state(State::ReqSent, "TO+");
                self.retransmit_configure_request(now);
            }
            State::AckSent => self.retransmit_configure_request(now),
            _ => self.illegal("TO+"),
        }
    }

    /// TO-.
    fn timeout_exhausted(&mut self) {
        match self.state {
            State::Closing => {
                self.set_state(State::Closed, "TO-");
                self.this_layer_finished();
            }
            State::Stopping => {
                self.set_state(State::Stopped, "TO-");
                self.this_layer_finished();
            }
            State::ReqSent | State::AckRcvd | State::AckSent => {
                let reason = if self.peer_request_seen {
                    format!(
                        "{}: the peer did not Ack any of our {} Configure-Requests",
                        self.name(),
                        self.config.max_configure
                    )
                } else {
                    format!(
                        "{}: no answer to {} Configure-Requests",
                        self.name(),
                        self.config.max_configure
                    )
                };
                tracing::info!(protocol = self.name(), %reason, "negotiation timed out");
                self.failure = Some(reason);
                self.set_state(State::Stopped, "TO-");
                self.this_layer_finished();
            }
            _ => self.illegal("TO-"),
        }
    }

    // ---- actions -----------------------------------------------------------

    /// The one place that changes state. Leaving the states where the Restart
    /// timer runs stops it.
    fn set_state(&mut self, to: State, event: &'static str) {
        let from = self.state;
        if from == to {
            return;
        }
        tracing::debug!(
            protocol = self.policy.name(),
            from = ?from,
            to = ?to,
            event,
            "state change"
        );
        self.state = to;
        if !to.has_restart_timer() {
            self.restart_deadline = None;
        }
    }

    /// A new negotiation begins: the policy and the per-negotiation counters
    /// forget the previous one.
    fn start_negotiation(&mut self) {
        self.policy.reset();
        self.request = None;
        self.naks_sent_in_row = 0;
        self.nak_rounds = 0;
        self.unchanged_nak_rounds = 0;
        self.peer_request_seen = false;
        self.failure = None;
        self.peer_terminated = false;
    }

    fn this_layer_up(&mut self) {
        self.events.push_back(FsmEvent::Up);
    }

    fn this_layer_down(&mut self) {
        self.events.push_back(FsmEvent::Down);
    }

    fn this_layer_started(&mut self) {
        self.events.push_back(FsmEvent::Started);
    }

    fn this_layer_finished(&mut self) {
        self.events.push_back(FsmEvent::Finished {
            reason: self.failure.clone(),
        });
    }

    /// irc: Max-Configure before a Configure-Request, Max-Terminate before a
    /// Terminate-Request.
    fn initialize_restart_count(&mut self, count: u32) {
        self.restart_counter = count;
    }

    /// zrc: no Terminate-Request will follow; wait one interval for the peer
    /// to see our Terminate-Ack.
    fn zero_restart_count(&mut self, now: Instant) {
        self.restart_counter = 0;
        self.start_restart_timer(now);
    }

    fn start_restart_timer(&mut self, now: Instant) {
        self.restart_deadline = now.checked_add(self.config.restart_interval).or(Some(now));
    }

    /// A request went out: one fewer left, and the timer restarts.
    fn count_request_sent(&mut self, now: Instant) {
        self.restart_counter = self.restart_counter.saturating_sub(1);
        self.start_restart_timer(now);
    }

    fn take_identifier(&mut self) -> u8 {
        let identifier = self.next_identifier;
        self.next_identifier = identifier.wrapping_add(1);
        identifier
    }

    /// scr with freshly built options and a new identifier.
    fn send_new_configure_request(&mut self, now: Instant) {
        let mut options = Vec::new();
        self.policy.build_request(&mut options);
        self.send_configure_request(now, options);
    }

    fn send_configure_request(&mut self, now: Instant, options: Vec<u8>) {
        let identifier = self.take_identifier();
        self.send(Code::ConfigureRequest, identifier, &options);
        self.request = Some(OutstandingRequest {
            identifier,
            options,
            answered: false,
        });
        self.count_request_sent(now);
    }

    /// scr on TO+: the same request, identifier and options, once more.
    fn retransmit_configure_request(&mut self, now: Instant) {
        self.stats.retransmissions += 1;
        self.resend_configure_request();
        self.count_request_sent(now);
    }

    /// Our request is still unanswered when the peer's first request arrives:
    /// the peer probably dropped ours while it was not yet listening. Send it
    /// again now; the restart counter is left alone (this is no timeout).
    fn retransmit_early(&mut self, now: Instant) {
        let unanswered = self
            .request
            .as_ref()
            .is_some_and(|request| !request.answered);
        if !self.config.retransmit_on_peer_request || !unanswered {
            return;
        }
        self.stats.early_retransmissions += 1;
        tracing::debug!(
            protocol = self.name(),
            "peer's first request: retransmitting ours early"
        );
        self.resend_configure_request();
        self.start_restart_timer(now);
    }

    fn resend_configure_request(&mut self) {
        if let Some(request) = self.request.as_mut() {
            request.answered = false;
            let packet = Repr {
                code: Code::ConfigureRequest,
                identifier: request.identifier,
                data: &request.options,
            };
            self.transmit.push_back(packet.to_vec());
        }
    }

    /// sca / scn, with the Max-Failure bookkeeping.
    fn answer_request(&mut self, identifier: u8, options: &[u8], verdict: RequestVerdict) {
        match verdict {
            RequestVerdict::Ack => {
                self.naks_sent_in_row = 0;
                self.send(Code::ConfigureAck, identifier, options);
            }
            RequestVerdict::Nak(naks) => {
                self.naks_sent_in_row = self.naks_sent_in_row.saturating_add(1);
                self.stats.naks_sent += 1;
                self.send(Code::ConfigureNak, identifier, &naks);
            }
            RequestVerdict::Reject(rejects) => {
                self.stats.rejects_sent += 1;
                self.send(Code::ConfigureReject, identifier, &rejects);
            }
            RequestVerdict::Discard => {}
        }
    }

    fn send_new_terminate_request(&mut self, now: Instant, data: Vec<u8>) {
        let identifier = self.take_identifier();
        self.send(Code::TerminateRequest, identifier, &data);
        self.terminate = Some(TerminateRequest { identifier, data });
        self.count_request_sent(now);
    }

    fn retransmit_terminate_request(&mut self, now: Instant) {
        self.stats.retransmissions += 1;
        if let Some(terminate) = &self.terminate {
            let packet = Repr {
                code: Code::TerminateRequest,
                identifier: terminate.identifier,
                data: &terminate.data,
            };
            self.transmit.push_back(packet.to_vec());
        }
        self.count_request_sent(now);
    }

    fn send(&mut self, code: Code, identifier: u8, data: &[u8]) {
        tracing::trace!(
            protocol = self.name(),
            code = code.name(),
            identifier,
            len = data.len(),
            "send"
        );
        self.transmit.push_back(
            Repr {
                code,
                identifier,
                data,
            }
            .to_vec(),
        );
    }

    // ---- helpers -------------------------------------------------------------

    fn name(&self) -> &'static str {
        self.policy.name()
    }

    /// An event the table marks "-".
    fn illegal(&mut self, event: &'static str) {
        self.stats.illegal_events += 1;
        tracing::debug!(
            protocol = self.name(),
            event,
            state = ?self.state,
            "event ignored in this state"
        );
    }

    /// Whether an Ack/Nak/Reject answers our outstanding, unanswered request.
    fn accept_reply(&mut self, identifier: u8, what: &'static str) -> bool {
        match &self.request {
            Some(request) if request.identifier == identifier && !request.answered => true,
            Some(request) if request.identifier == identifier => {
                self.stats.replies_duplicate += 1;
                tracing::debug!(
                    protocol = self.name(),
                    identifier,
                    what,
                    "duplicate reply dropped"
                );
                false
            }
            _ => {
                self.stats.replies_bad_id += 1;
                tracing::debug!(
                    protocol = self.name(),
                    identifier,
                    what,
                    "reply with a stale identifier dropped"
                );
                false
            }
        }
    }

    /// RFC 1661 §5.4: a Configure-Reject's options are a subset of our
    /// request's, neither reordered nor modified; anything else is invalid.
    fn rejects_only_what_we_asked(&self, rejected: &[u8]) -> bool {
        let Some(request) = &self.request else {
            return false;
        };
        let mut ours = OptionIter::new(&request.options);
        OptionIter::new(rejected).all(|option| match option {
            Ok(option) => ours.any(|asked| asked == Ok(option)),
            Err(_) => false,
        })
    }

    fn not_converging(&self, code: Code, options: &[u8]) -> String {
        let verb = if code == Code::ConfigureNak {
            "Nak'ing"
        } else {
            "Rejecting"
        };
        let mut names = String::new();
        for option in OptionIter::new(options).flatten() {
            if !names.is_empty() {
                names.push_str(", ");
            }
            match self.policy.option_name(option.kind) {
                Some(name) => names.push_str(name),
                None => {
                    let _ = write!(names, "option {}", option.kind);
                }
            }
        }
        if names.is_empty() {
            names.push_str("options");
        }
        format!(
            "{}: the peer keeps {verb} our {names} ({} rounds without an Ack), not converging",
            self.name(),
            self.nak_rounds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portdial_protocol::options::push_option;
    use std::collections::HashMap;

    /// The one option of the test protocol: type 1 carrying a 16-bit value.
    const OPTION: u8 = 1;
    const INTERVAL: Duration = Duration::from_secs(3);

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Answer {
        Ack,
        /// Nak with value 1500 while Naks are allowed, else Reject.
        Nak,
        /// Ack the value given, Nak anything else (Reject once Naks are not allowed).
        Want(u16),
        Reject,
        Discard,
    }

    #[derive(Debug)]
    struct TestPolicy {
        answer: Answer,
        initial_value: u16,
        value: u16,
        /// Take the value the peer Naks.
        follow_naks: bool,
        /// Change the value on every Nak, whatever the peer says.
        bump_on_nak: bool,
        reject_error: Option<String>,
        resets: u32,
        nak_allowed_seen: Vec<bool>,
        acked: Vec<Vec<u8>>,
    }

    impl TestPolicy {
        fn new() -> Self {
            TestPolicy {
                answer: Answer::Ack,
                initial_value: 1000,
                value: 1000,
                follow_naks: false,
                bump_on_nak: false,
                reject_error: None,
                resets: 0,
                nak_allowed_seen: Vec::new(),
                acked: Vec::new(),
            }
        }
    }

    fn option(value: u16) -> Vec<u8> {
        let mut out = Vec::new();
        push_option(&mut out, OPTION, &value.to_be_bytes());
        out
    }

    fn option_value(options: &[u8]) -> Option<u16> {
        let first = OptionIter::new(options).next()?.ok()?;
        let bytes: [u8; 2] = first.data.try_into().ok()?;
        Some(u16::from_be_bytes(bytes))
    }

    impl Policy for TestPolicy {
        fn name(&self) -> &'static str {
            "TEST"
        }

        fn reset(&mut self) {
            self.resets += 1;
            self.value = self.initial_value;
        }

        fn build_request(&mut self, out: &mut Vec<u8>) {
            push_option(out, OPTION, &self.value.to_be_bytes());
        }

        fn check_request(&mut self, options: &[u8], nak_allowed: bool) -> RequestVerdict {
            self.nak_allowed_seen.push(nak_allowed);
            let nak_or_reject = |value: u16| {
                if nak_allowed {
                    RequestVerdict::Nak(option(value))
                } else {
                    RequestVerdict::Reject(options.to_vec())
                }
            };
            match self.answer {
                Answer::Ack => RequestVerdict::Ack,
                Answer::Nak => nak_or_reject(1500),
                Answer::Want(value) if option_value(options) == Some(value) => RequestVerdict::Ack,
                Answer::Want(value) => nak_or_reject(value),
                Answer::Reject => RequestVerdict::Reject(options.to_vec()),
                Answer::Discard => RequestVerdict::Discard,
            }
        }

        fn handle_ack(&mut self, options: &[u8]) {
            self.acked.push(options.to_vec());
        }

        fn handle_nak(&mut self, options: &[u8]) -> Result<(), String> {
            if self.follow_naks {
                if let Some(value) = option_value(options) {
                    self.value = value;
                }
            }
            if self.bump_on_nak {
                self.value = self.value.wrapping_add(1);
            }
            Ok(())
        }

        fn handle_reject(&mut self, _options: &[u8]) -> Result<(), String> {
            self.reject_error.clone().map_or(Ok(()), Err)
        }

        fn option_name(&self, kind: u8) -> Option<&'static str> {
            (kind == OPTION).then_some("Test-Option")
        }
    }

    fn test_config() -> FsmConfig {
        FsmConfig {
            restart_interval: INTERVAL,
            max_configure: 3,
            max_terminate: 2,
            max_failure: 3,
            retransmit_on_peer_request: false,
        }
    }

    type Fsm = Automaton<TestPolicy>;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Sent {
        code: Code,
        identifier: u8,
        data: Vec<u8>,
    }

    fn sent(fsm: &mut Fsm) -> Vec<Sent> {
        std::iter::from_fn(|| fsm.poll_transmit())
            .map(|bytes| {
                let repr = Repr::parse_bytes(&bytes).expect("the automaton emits valid packets");
                assert_eq!(repr.buffer_len(), bytes.len());
                Sent {
                    code: repr.code,
                    identifier: repr.identifier,
                    data: repr.data.to_vec(),
                }
            })
            .collect()
    }

    fn codes(sent: &[Sent]) -> Vec<Code> {
        sent.iter().map(|packet| packet.code).collect()
    }

    fn events(fsm: &mut Fsm) -> Vec<FsmEvent> {
        std::iter::from_fn(|| fsm.poll_event()).collect()
    }

    fn event_names(events: &[FsmEvent]) -> Vec<&'static str> {
        events
            .iter()
            .map(|event| match event {
                FsmEvent::Up => "tlu",
                FsmEvent::Down => "tld",
                FsmEvent::Started => "tls",
                FsmEvent::Finished { .. } => "tlf",
            })
            .collect()
    }

    fn finished_reason(events: &[FsmEvent]) -> Option<String> {
        events.iter().find_map(|event| match event {
            FsmEvent::Finished { reason } => Some(reason.clone().unwrap_or_default()),
            _ => None,
        })
    }

    fn receive(fsm: &mut Fsm, now: Instant, code: Code, identifier: u8, data: &[u8]) -> bool {
        fsm.handle_packet(
            now,
            &Repr {
                code,
                identifier,
                data,
            },
        )
    }

    /// Our outstanding request's identifier and options.
    fn outstanding(fsm: &Fsm) -> (u8, Vec<u8>) {
        let request = fsm.request.as_ref().expect("a request is outstanding");
        (request.identifier, request.options.clone())
    }

    fn ack_ours(fsm: &mut Fsm, now: Instant) {
        let (identifier, options) = outstanding(fsm);
        assert!(receive(fsm, now, Code::ConfigureAck, identifier, &options));
    }

    fn nak_ours(fsm: &mut Fsm, now: Instant, value: u16) {
        let (identifier, _) = outstanding(fsm);
        assert!(receive(
            fsm,
            now,
            Code::ConfigureNak,
            identifier,
            &option(value)
        ));
    }

    fn peer_request(fsm: &mut Fsm, now: Instant, identifier: u8) {
        assert!(receive(
            fsm,
            now,
            Code::ConfigureRequest,
            identifier,
            &option(1492)
        ));
    }

    fn drain(fsm: &mut Fsm) {
        sent(fsm);
        events(fsm);
    }

    /// An automaton driven into `target` through legal events only, with its
    /// queues drained, and the time it got there.
    fn reach_with(target: State, config: FsmConfig) -> (Fsm, Instant) {
        let mut now = Instant::now();
        let mut fsm = Automaton::new(TestPolicy::new(), config);
        match target {
            State::Initial => {}
            State::Starting => fsm.open(now),
            State::Closed => fsm.up(now),
            State::ReqSent => {
                fsm.up(now);
                fsm.open(now);
            }
            State::AckRcvd => {
                (fsm, now) = reach_with(State::ReqSent, config);
                ack_ours(&mut fsm, now);
            }
            State::AckSent => {
                (fsm, now) = reach_with(State::ReqSent, config);
                peer_request(&mut fsm, now, 0x40);
            }
            State::Opened => {
                (fsm, now) = reach_with(State::AckSent, config);
                ack_ours(&mut fsm, now);
            }
            State::Closing => {
                (fsm, now) = reach_with(State::ReqSent, config);
                fsm.close(now, "test");
            }
            State::Stopping => {
                (fsm, now) = reach_with(State::Opened, config);
                fsm.handle_protocol_reject(now);
            }
            State::Stopped => {
                (fsm, now) = reach_with(State::ReqSent, config);
                fsm.handle_protocol_reject(now);
            }
        }
        assert_eq!(fsm.state(), target);
        assert_eq!(
            fsm.poll_timeout().is_some(),
            target.has_restart_timer(),
            "{target:?}"
        );
        drain(&mut fsm);
        (fsm, now)
    }

    fn reach(target: State) -> (Fsm, Instant) {
        reach_with(target, test_config())
    }

    const ALL_STATES: [State; 10] = [
        State::Initial,
        State::Starting,
        State::Closed,
        State::Stopped,
        State::Closing,
        State::Stopping,
        State::ReqSent,
        State::AckRcvd,
        State::AckSent,
        State::Opened,
    ];

    const ALL_EVENTS: [&str; 16] = [
        "Up", "Down", "Open", "Close", "TO+", "TO-", "RCR+", "RCR-", "RCA", "RCN", "RTR", "RTA",
        "RUC", "RXJ+", "RXJ-", "RXR",
    ];

    fn state_named(name: &str) -> State {
        match name {
            "Initial" => State::Initial,
            "Starting" => State::Starting,
            "Closed" => State::Closed,
            "Stopped" => State::Stopped,
            "Closing" => State::Closing,
            "Stopping" => State::Stopping,
            "Req-Sent" => State::ReqSent,
            "Ack-Rcvd" => State::AckRcvd,
            "Ack-Sent" => State::AckSent,
            "Opened" => State::Opened,
            other => panic!("unknown state {other:?} in the table"),
        }
    }

    /// The table in this module's documentation, as (event, state) -> cell.
    fn rfc_table() -> HashMap<(String, State), String> {
        let mut table = HashMap::new();
        let mut columns = Vec::new();
        for line in include_str!("fsm.rs").lines() {
            let Some(doc) = line.strip_prefix("//!") else {
                continue;
            };
            let Some((left, right)) = doc.split_once('|') else {
                continue;
            };
            let left = left.trim();
            if left == "Events" {
                columns = right.split_whitespace().map(state_named).collect();
                continue;
            }
            if left.is_empty() {
                continue;
            }
            let cells: Vec<&str> = right.split_whitespace().collect();
            assert_eq!(cells.len(), columns.len(), "row {line:?}");
            for (state, cell) in columns.iter().zip(cells) {
                assert!(table
                    .insert((left.to_string(), *state), cell.to_string())
                    .is_none());
            }
        }
        table
    }

    /// A cell: `None` for "-", else its actions and the next state (the
    /// p/r/x markers dropped).
    fn parse_cell(cell: &str) -> Option<(Vec<&str>, State)> {
        if cell == "-" {
            return None;
        }
        let (actions, next) = match cell.split_once('/') {
            Some((actions, next)) => (actions.split(',').collect(), next),
            None => (Vec::new(), cell),
        };
        let number = next.trim_end_matches(['p', 'r', 'x']);
        let index: usize = number
            .parse()
            .unwrap_or_else(|_| panic!("bad cell {cell:?}"));
        Some((actions, ALL_STATES[index]))
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Flavour {
        /// scn sends a Nak; RXJ- is a Code-Reject of Configure-Request.
        NakAndCodeReject,
        /// scn sends a Reject; RXJ- is a Protocol-Reject.
        RejectAndProtocolReject,
    }

    /// Gets the automaton ready for an event that needs a precondition the
    /// legal path does not give: the restart counter for TO+/TO-, and an
    /// unanswered request for RCA/RCN in Ack-Rcvd and Opened (where a legal
    /// reply would be a duplicate, which is discarded; see the module docs).
    fn prepare(fsm: &mut Fsm, event: &str) {
        match event {
            "TO+" if fsm.restart_counter == 0 => fsm.restart_counter = 1,
            "TO-" => fsm.restart_counter = 0,
            "RCA" | "RCN" => {
                if let Some(request) = fsm.request.as_mut() {
                    request.answered = false;
                }
            }
            _ => {}
        }
    }

    /// Fires `event`; returns the time used and what handle_rxr said.
    fn fire(fsm: &mut Fsm, event: &str, start: Instant, flavour: Flavour) -> (Instant, bool) {
        let now = start + Duration::from_secs(1);
        let reply_identifier = fsm
            .request
            .as_ref()
            .map_or(0x55, |request| request.identifier);
        let reply_options = fsm
            .request
            .as_ref()
            .map_or_else(|| option(7), |request| request.options.clone());
        let mut rxr = false;
        match event {
            "Up" => fsm.up(now),
            "Down" => fsm.down(now),
            "Open" => fsm.open(now),
            "Close" => fsm.close(now, "test"),
            "TO+" | "TO-" => {
                // With no timer running this is the table's "-": nothing happens.
                let due = fsm
                    .poll_timeout()
                    .unwrap_or(start + Duration::from_secs(3600));
                fsm.handle_timeout(due);
                return (due, false);
            }
            "RCR+" | "RCR-" => {
                fsm.policy_mut().answer = match (event, flavour) {
                    ("RCR+", _) => Answer::Ack,
                    (_, Flavour::NakAndCodeReject) => Answer::Nak,
                    (_, Flavour::RejectAndProtocolReject) => Answer::Reject,
                };
                receive(fsm, now, Code::ConfigureRequest, 0x61, &option(1492));
            }
            "RCA" => {
                receive(
                    fsm,
                    now,
                    Code::ConfigureAck,
                    reply_identifier,
                    &reply_options,
                );
            }
            "RCN" => {
                // A Nak suggests a value; a Reject names what we asked
                // (RFC 1661 §5.4 discards any other).
                let (code, options) = match flavour {
                    Flavour::NakAndCodeReject => (Code::ConfigureNak, option(1200)),
                    Flavour::RejectAndProtocolReject => (Code::ConfigureReject, reply_options),
                };
                receive(fsm, now, code, reply_identifier, &options);
            }
            "RTR" => {
                receive(fsm, now, Code::TerminateRequest, 0x62, b"bye");
            }
            "RTA" => {
                receive(fsm, now, Code::TerminateAck, 0x63, &[]);
            }
            // A packet with code 0x20, which nobody defines.
            "RUC" => fsm.reject_unknown_code(now, &[0x20, 0x64, 0x00, 0x04]),
            "RXJ+" => {
                receive(fsm, now, Code::CodeReject, 0x65, &[0x20, 0x64, 0x00, 0x04]);
            }
            "RXJ-" => match flavour {
                Flavour::NakAndCodeReject => {
                    let mut rejected = vec![1, 0x66, 0x00, 0x08];
                    rejected.extend_from_slice(&option(1000));
                    receive(fsm, now, Code::CodeReject, 0x67, &rejected);
                }
                Flavour::RejectAndProtocolReject => fsm.handle_protocol_reject(now),
            },
            "RXR" => rxr = fsm.handle_rxr(now),
            other => panic!("unknown event {other}"),
        }
        (now, rxr)
    }

    fn check_cell(event: &str, state: State, cell: &str, flavour: Flavour) {
        let context = format!("{event} in {state:?} ({cell}, {flavour:?})");
        let (mut fsm, start) = reach(state);
        prepare(&mut fsm, event);
        let counter_before = fsm.restart_counter;
        let deadline_before = fsm.poll_timeout();
        let (now, rxr) = fire(&mut fsm, event, start, flavour);
        let sent = codes(&sent(&mut fsm));
        let events = events(&mut fsm);
        let events = event_names(&events);

        let Some((actions, next)) = parse_cell(cell) else {
            assert_eq!(fsm.state(), state, "{context}: state");
            assert!(sent.is_empty(), "{context}: sent {sent:?}");
            assert!(events.is_empty(), "{context}: events {events:?}");
            assert_eq!(fsm.restart_counter, counter_before, "{context}: counter");
            assert_eq!(fsm.poll_timeout(), deadline_before, "{context}: timer");
            assert!(!rxr, "{context}: rxr");
            return;
        };
        assert_eq!(fsm.state(), next, "{context}: state");

        let scn = match flavour {
            Flavour::NakAndCodeReject => Code::ConfigureNak,
            Flavour::RejectAndProtocolReject => Code::ConfigureReject,
        };
        let expected_sent: Vec<Code> = actions
            .iter()
            .filter_map(|action| match *action {
                "scr" => Some(Code::ConfigureRequest),
                "sca" => Some(Code::ConfigureAck),
                "scn" => Some(scn),
                "str" => Some(Code::TerminateRequest),
                "sta" => Some(Code::TerminateAck),
                "scj" => Some(Code::CodeReject),
                _ => None,
            })
            .collect();
        assert_eq!(sent, expected_sent, "{context}: sent");

        let expected_events: Vec<&str> = actions
            .iter()
            .copied()
            .filter(|action| action.starts_with("tl"))
            .collect();
        assert_eq!(events, expected_events, "{context}: events");

        assert_eq!(rxr, actions.contains(&"ser"), "{context}: ser");

        let sends_request = actions.contains(&"scr") || actions.contains(&"str");
        let config = test_config();
        let expected_counter = if actions.contains(&"zrc") {
            0
        } else if actions.contains(&"irc") {
            let initial = if actions.contains(&"str") {
                config.max_terminate
            } else {
                config.max_configure
            };
            initial - u32::from(sends_request)
        } else if sends_request {
            counter_before.saturating_sub(1)
        } else {
            counter_before
        };
        assert_eq!(fsm.restart_counter, expected_counter, "{context}: counter");

        let expected_deadline = if sends_request || actions.contains(&"zrc") {
            Some(now + INTERVAL)
        } else if next.has_restart_timer() {
            deadline_before
        } else {
            None
        };
        assert_eq!(fsm.poll_timeout(), expected_deadline, "{context}: timer");
    }

    #[test]
    fn rfc_state_table_every_cell() {
        let table = rfc_table();
        assert_eq!(table.len(), ALL_EVENTS.len() * ALL_STATES.len());
        for flavour in [Flavour::NakAndCodeReject, Flavour::RejectAndProtocolReject] {
            for event in ALL_EVENTS {
                for state in ALL_STATES {
                    let cell = &table[&(event.to_string(), state)];
                    check_cell(event, state, cell, flavour);
                }
            }
        }
    }

    #[test]
    fn cells_with_a_counter_condition_take_both_branches() {
        // The x/y pairs of the table: TO+ and TO- in every state with a timer.
        for state in [
            State::Closing,
            State::Stopping,
            State::ReqSent,
            State::AckRcvd,
            State::AckSent,
        ] {
            let (mut fsm, _) = reach(state);
            fsm.restart_counter = 1;
            let due = fsm.poll_timeout().unwrap();
            fsm.handle_timeout(due);
            assert!(matches!(
                fsm.state(),
                State::Closing | State::Stopping | State::ReqSent | State::AckSent
            ));
            assert!(
                events(&mut fsm).is_empty(),
                "{state:?}: TO+ finishes nothing"
            );
            assert_eq!(sent(&mut fsm).len(), 1, "{state:?}: TO+ retransmits");

            let (mut fsm, _) = reach(state);
            fsm.restart_counter = 0;
            let due = fsm.poll_timeout().unwrap();
            fsm.handle_timeout(due);
            assert!(matches!(fsm.state(), State::Closed | State::Stopped));
            assert_eq!(
                event_names(&events(&mut fsm)),
                ["tlf"],
                "{state:?}: TO- finishes"
            );
            assert!(sent(&mut fsm).is_empty());
            assert_eq!(fsm.poll_timeout(), None);
        }
    }

    #[test]
    fn max_configure_exhaustion_finishes_with_reason() {
        let (mut fsm, start) = reach(State::Starting);
        fsm.up(start);
        let first = sent(&mut fsm);
        assert_eq!(codes(&first), [Code::ConfigureRequest]);
        let mut now = start;
        for _ in 1..test_config().max_configure {
            now += INTERVAL;
            fsm.handle_timeout(now);
            // A retransmission: the same identifier and options.
            assert_eq!(sent(&mut fsm), first);
            assert!(events(&mut fsm).is_empty());
        }
        now += INTERVAL;
        fsm.handle_timeout(now);
        assert!(sent(&mut fsm).is_empty());
        assert_eq!(fsm.state(), State::Stopped);
        assert_eq!(fsm.poll_timeout(), None);
        let reason = finished_reason(&events(&mut fsm)).unwrap();
        assert_eq!(reason, "TEST: no answer to 3 Configure-Requests");
        assert_eq!(fsm.failure(), Some(reason.as_str()));
        assert_eq!(fsm.stats().retransmissions, 2);

        // The peer talks but never Acks: a different diagnosis.
        let (mut fsm, mut now) = reach(State::AckSent);
        for _ in 0..test_config().max_configure {
            now += INTERVAL;
            fsm.handle_timeout(now);
        }
        assert_eq!(fsm.state(), State::Stopped);
        assert_eq!(
            fsm.failure(),
            Some("TEST: the peer did not Ack any of our 3 Configure-Requests")
        );
    }

    #[test]
    fn max_failure_turns_naks_into_rejects() {
        let (mut fsm, now) = reach(State::ReqSent);
        fsm.policy_mut().answer = Answer::Nak;
        for identifier in 0..4 {
            peer_request(&mut fsm, now, identifier);
        }
        assert_eq!(fsm.policy().nak_allowed_seen, [true, true, true, false]);
        let replies = sent(&mut fsm);
        assert_eq!(
            codes(&replies),
            [
                Code::ConfigureNak,
                Code::ConfigureNak,
                Code::ConfigureNak,
                Code::ConfigureReject
            ]
        );
        assert_eq!(replies[0].data, option(1500));
        assert_eq!(replies[3].data, option(1492));
        assert_eq!((fsm.stats().naks_sent, fsm.stats().rejects_sent), (3, 1));

        // An Ack sent clears the count.
        fsm.policy_mut().answer = Answer::Ack;
        peer_request(&mut fsm, now, 4);
        fsm.policy_mut().answer = Answer::Nak;
        peer_request(&mut fsm, now, 5);
        assert_eq!(fsm.policy().nak_allowed_seen[4..], [false, true]);

        // So does a new negotiation.
        let (mut fsm, now) = reach(State::ReqSent);
        fsm.policy_mut().answer = Answer::Nak;
        for identifier in 0..3 {
            peer_request(&mut fsm, now, identifier);
        }
        fsm.close(now, "test");
        receive(&mut fsm, now, Code::TerminateAck, 0, &[]);
        fsm.open(now);
        peer_request(&mut fsm, now, 9);
        assert_eq!(fsm.policy().nak_allowed_seen.last(), Some(&true));
    }

    #[test]
    fn restart_timer_intervals() {
        let config = FsmConfig {
            retransmit_on_peer_request: false,
            ..FsmConfig::default()
        };
        assert_eq!(config.restart_interval, Duration::from_secs(3));
        let (mut fsm, start) = reach_with(State::Closed, config);
        assert_eq!(fsm.poll_timeout(), None);
        fsm.open(start);
        assert_eq!(fsm.poll_timeout(), Some(start + INTERVAL));

        // Early is nothing.
        fsm.handle_timeout(start + INTERVAL - Duration::from_millis(1));
        assert!(sent(&mut fsm).len() == 1 && fsm.poll_timeout() == Some(start + INTERVAL));

        // Each retransmission restarts it from the time it fired.
        let late = start + INTERVAL + Duration::from_millis(250);
        fsm.handle_timeout(late);
        assert_eq!(codes(&sent(&mut fsm)), [Code::ConfigureRequest]);
        assert_eq!(fsm.poll_timeout(), Some(late + INTERVAL));

        // A Nak answered: a new request, a new full interval.
        let now = late + Duration::from_secs(1);
        nak_ours(&mut fsm, now, 1500);
        assert_eq!(fsm.poll_timeout(), Some(now + INTERVAL));

        // Receiving the peer's request does not touch the timer.
        peer_request(&mut fsm, now + Duration::from_secs(1), 1);
        assert_eq!(fsm.poll_timeout(), Some(now + INTERVAL));

        // Opened: no timer.
        ack_ours(&mut fsm, now + Duration::from_secs(2));
        assert_eq!(fsm.state(), State::Opened);
        assert_eq!(fsm.poll_timeout(), None);

        // Closing: the Terminate-Request starts it again.
        let closing = now + Duration::from_secs(5);
        fsm.close(closing, "bye");
        assert_eq!(fsm.poll_timeout(), Some(closing + INTERVAL));
        fsm.handle_timeout(closing + INTERVAL);
        assert_eq!(fsm.poll_timeout(), Some(closing + INTERVAL * 2));
        fsm.handle_timeout(closing + INTERVAL * 2);
        assert_eq!((fsm.state(), fsm.poll_timeout()), (State::Closed, None));
    }

    #[test]
    fn identifier_rules() {
        let (mut fsm, now) = reach(State::Closed);
        fsm.open(now);
        let first = sent(&mut fsm);
        assert_eq!(first[0].identifier, 1);

        // A retransmission keeps the identifier; a new request takes a new one.
        fsm.handle_timeout(now + INTERVAL);
        assert_eq!(sent(&mut fsm), first);
        nak_ours(&mut fsm, now, 1500);
        let second = sent(&mut fsm);
        assert_eq!(
            (second[0].code, second[0].identifier),
            (Code::ConfigureRequest, 2)
        );

        // A Nak for the old request is stale now, and discarded.
        receive(&mut fsm, now, Code::ConfigureNak, 1, &option(1500));
        receive(&mut fsm, now, Code::ConfigureReject, 1, &option(1000));
        receive(&mut fsm, now, Code::ConfigureAck, 1, &first[0].data);
        assert!(sent(&mut fsm).is_empty());
        assert_eq!(
            (fsm.state(), fsm.stats().replies_bad_id),
            (State::ReqSent, 3)
        );

        // An Ack whose options are not ours is discarded.
        receive(&mut fsm, now, Code::ConfigureAck, 2, &option(999));
        assert_eq!(
            (fsm.state(), fsm.stats().acks_mismatched),
            (State::ReqSent, 1)
        );

        // The right one is taken, once.
        receive(&mut fsm, now, Code::ConfigureAck, 2, &second[0].data);
        assert_eq!(fsm.state(), State::AckRcvd);
        assert_eq!(fsm.policy().acked, [second[0].data.clone()]);
        receive(&mut fsm, now, Code::ConfigureAck, 2, &second[0].data);
        receive(&mut fsm, now, Code::ConfigureNak, 2, &option(1));
        assert_eq!(
            (fsm.state(), fsm.stats().replies_duplicate),
            (State::AckRcvd, 2)
        );

        // Replies echo the peer's identifier.
        peer_request(&mut fsm, now, 0xa7);
        let ack = sent(&mut fsm);
        assert_eq!(
            (ack[0].code, ack[0].identifier, &ack[0].data),
            (Code::ConfigureAck, 0xa7, &option(1492))
        );
        assert_eq!(fsm.state(), State::Opened);

        // A duplicate Ack in Opened is dropped: the link stays up.
        receive(&mut fsm, now, Code::ConfigureAck, 2, &second[0].data);
        assert_eq!(fsm.state(), State::Opened);
        assert!(events(&mut fsm)
            .iter()
            .all(|event| *event != FsmEvent::Down));

        // Code-Reject takes a new identifier; Terminate-Ack echoes the request's.
        fsm.reject_unknown_code(now, &[0x20, 0x01, 0x00, 0x04]);
        receive(&mut fsm, now, Code::TerminateRequest, 0x33, &[]);
        let packets = sent(&mut fsm);
        assert_eq!(
            (packets[0].code, packets[0].identifier),
            (Code::CodeReject, 3)
        );
        assert_eq!(packets[0].data, [0x20, 0x01, 0x00, 0x04]);
        assert_eq!(
            (packets[1].code, packets[1].identifier),
            (Code::TerminateAck, 0x33)
        );

        // Identifiers wrap.
        let (mut fsm, now) = reach(State::Closed);
        fsm.next_identifier = 255;
        fsm.open(now);
        nak_ours(&mut fsm, now, 1500);
        let ids: Vec<u8> = sent(&mut fsm)
            .iter()
            .map(|packet| packet.identifier)
            .collect();
        assert_eq!(ids, [255, 0]);
    }

    #[test]
    fn terminate_request_retransmissions_keep_the_identifier() {
        let (mut fsm, now) = reach(State::Opened);
        fsm.close(now, "admin");
        let first = sent(&mut fsm);
        assert_eq!(
            (first[0].code, &first[0].data[..]),
            (Code::TerminateRequest, &b"admin"[..])
        );
        fsm.handle_timeout(now + INTERVAL);
        assert_eq!(sent(&mut fsm), first);
    }

    #[test]
    fn early_retransmit_on_the_peers_first_request() {
        let config = FsmConfig {
            retransmit_on_peer_request: true,
            ..test_config()
        };
        let (mut fsm, start) = reach_with(State::Closed, config);
        fsm.open(start);
        let ours = sent(&mut fsm);
        let counter = fsm.restart_counter;

        let now = start + Duration::from_secs(1);
        peer_request(&mut fsm, now, 0x10);
        let packets = sent(&mut fsm);
        assert_eq!(
            codes(&packets),
            [Code::ConfigureAck, Code::ConfigureRequest]
        );
        assert_eq!(packets[1], ours[0]);
        assert_eq!(
            fsm.restart_counter, counter,
            "an early retransmission is not a timeout"
        );
        assert_eq!(fsm.poll_timeout(), Some(now + INTERVAL));
        assert_eq!(fsm.stats().early_retransmissions, 1);

        // Only the first request of the negotiation triggers it.
        fsm.policy_mut().answer = Answer::Nak;
        peer_request(&mut fsm, now, 0x11);
        assert_eq!(codes(&sent(&mut fsm)), [Code::ConfigureNak]);

        // A first request that is Nak'd triggers it as well.
        let (mut fsm, now) = reach_with(State::ReqSent, config);
        fsm.policy_mut().answer = Answer::Nak;
        peer_request(&mut fsm, now, 0x12);
        assert_eq!(
            codes(&sent(&mut fsm)),
            [Code::ConfigureNak, Code::ConfigureRequest]
        );

        // Not once our request is answered.
        let (mut fsm, now) = reach_with(State::AckRcvd, config);
        peer_request(&mut fsm, now, 0x13);
        assert_eq!(codes(&sent(&mut fsm)), [Code::ConfigureAck]);
        assert_eq!(fsm.state(), State::Opened);

        // And not when disabled.
        let (mut fsm, now) = reach(State::ReqSent);
        peer_request(&mut fsm, now, 0x14);
        assert_eq!(codes(&sent(&mut fsm)), [Code::ConfigureAck]);
    }

    #[test]
    fn naks_that_change_nothing_stop_the_negotiation() {
        let (mut fsm, now) = reach(State::ReqSent);
        // The policy keeps asking for 1000 whatever the peer says.
        for round in 1..test_config().max_failure {
            nak_ours(&mut fsm, now, 1500);
            assert_eq!(
                codes(&sent(&mut fsm)),
                [Code::ConfigureRequest],
                "round {round}"
            );
        }
        nak_ours(&mut fsm, now, 1500);
        let reason = "TEST: the peer keeps Nak'ing our Test-Option \
                      (3 rounds without an Ack), not converging";
        assert_eq!(fsm.failure(), Some(reason));
        assert_eq!(fsm.state(), State::Closing);
        let packets = sent(&mut fsm);
        assert_eq!(codes(&packets), [Code::TerminateRequest]);
        assert_eq!(packets[0].data, reason.as_bytes());

        receive(
            &mut fsm,
            now,
            Code::TerminateAck,
            packets[0].identifier,
            &[],
        );
        assert_eq!(fsm.state(), State::Closed);
        assert_eq!(finished_reason(&events(&mut fsm)).as_deref(), Some(reason));
    }

    #[test]
    fn endless_nak_rounds_stop_the_negotiation() {
        let (mut fsm, now) = reach(State::ReqSent);
        fsm.policy_mut().bump_on_nak = true;
        let round_limit = 2 * test_config().max_configure;
        for _ in 1..round_limit {
            nak_ours(&mut fsm, now, 1500);
            assert_eq!(codes(&sent(&mut fsm)), [Code::ConfigureRequest]);
        }
        nak_ours(&mut fsm, now, 1500);
        assert_eq!(fsm.state(), State::Closing);
        assert!(fsm
            .failure()
            .unwrap()
            .contains("(6 rounds without an Ack), not converging"));

        // Rejects count as well, and an Ack in between starts the count again.
        let (mut fsm, now) = reach(State::ReqSent);
        for _ in 1..test_config().max_failure {
            let (identifier, options) = outstanding(&fsm);
            receive(&mut fsm, now, Code::ConfigureReject, identifier, &options);
        }
        assert_eq!(fsm.state(), State::ReqSent);
        ack_ours(&mut fsm, now);
        fsm.handle_timeout(now + INTERVAL);
        let (identifier, options) = outstanding(&fsm);
        receive(&mut fsm, now, Code::ConfigureReject, identifier, &options);
        assert_eq!(fsm.state(), State::ReqSent);
        assert_eq!(fsm.failure(), None);
    }

    /// Found by tests/hostile.rs: a Reject naming options our request did
    /// not carry used to count as a negotiation round; RFC 1661 §5.4 makes
    /// it invalid, to be silently discarded.
    #[test]
    fn a_reject_of_options_we_did_not_ask_for_is_discarded() {
        let (mut fsm, now) = reach(State::ReqSent);
        let (identifier, options) = outstanding(&fsm);
        for bogus in [
            option(4242),
            [options.clone(), option(7)].concat(),
            vec![OPTION, 1],
        ] {
            receive(&mut fsm, now, Code::ConfigureReject, identifier, &bogus);
            assert!(
                sent(&mut fsm).is_empty(),
                "nothing answers an invalid Reject"
            );
        }
        assert_eq!(fsm.stats().rejects_invalid, 3);
        assert_eq!(fsm.state(), State::ReqSent);
        // The request is still unanswered: a valid Reject is taken.
        receive(&mut fsm, now, Code::ConfigureReject, identifier, &options);
        assert_eq!(codes(&sent(&mut fsm)), [Code::ConfigureRequest]);
        assert_eq!(fsm.stats().rejects_invalid, 3);
    }

    #[test]
    fn naks_that_converge_reach_opened() {
        let (mut fsm, now) = reach(State::ReqSent);
        fsm.policy_mut().follow_naks = true;
        nak_ours(&mut fsm, now, 1492);
        let request = sent(&mut fsm);
        assert_eq!(request[0].data, option(1492));
        ack_ours(&mut fsm, now);
        peer_request(&mut fsm, now, 3);
        assert_eq!(fsm.state(), State::Opened);
        assert_eq!(event_names(&events(&mut fsm)), ["tlu"]);
        assert_eq!(fsm.policy().acked, [option(1492)]);
    }

    #[test]
    fn policy_error_closes_with_its_reason() {
        let (mut fsm, now) = reach(State::AckSent);
        fsm.policy_mut().reject_error = Some("the peer rejected a required option".into());
        let (identifier, options) = outstanding(&fsm);
        receive(&mut fsm, now, Code::ConfigureReject, identifier, &options);
        let reason = "TEST: the peer rejected a required option";
        assert_eq!((fsm.state(), fsm.failure()), (State::Closing, Some(reason)));
        let packets = sent(&mut fsm);
        assert_eq!(codes(&packets), [Code::TerminateRequest]);
        assert_eq!(packets[0].data, reason.as_bytes());
        // The peer never answers: two Terminate-Requests, then finished anyway.
        fsm.handle_timeout(now + INTERVAL);
        assert_eq!(codes(&sent(&mut fsm)), [Code::TerminateRequest]);
        fsm.handle_timeout(now + INTERVAL * 2);
        assert_eq!(fsm.state(), State::Closed);
        assert_eq!(finished_reason(&events(&mut fsm)).as_deref(), Some(reason));

        // From Opened (a Nak there renegotiates first): one Down, no more.
        let (mut fsm, now) = reach(State::Opened);
        fsm.policy_mut().reject_error = Some("no".into());
        fsm.request.as_mut().unwrap().answered = false;
        let (identifier, options) = outstanding(&fsm);
        receive(&mut fsm, now, Code::ConfigureReject, identifier, &options);
        assert_eq!(fsm.state(), State::Closing);
        assert_eq!(event_names(&events(&mut fsm)), ["tld"]);
    }

    #[test]
    fn close_in_every_state() {
        let expected = [
            (State::Initial, State::Initial, vec![], vec![]),
            (State::Starting, State::Initial, vec![], vec!["tlf"]),
            (State::Closed, State::Closed, vec![], vec![]),
            (State::Stopped, State::Closed, vec![], vec![]),
            (State::Closing, State::Closing, vec![], vec![]),
            (State::Stopping, State::Closing, vec![], vec![]),
            (
                State::ReqSent,
                State::Closing,
                vec![Code::TerminateRequest],
                vec![],
            ),
            (
                State::AckRcvd,
                State::Closing,
                vec![Code::TerminateRequest],
                vec![],
            ),
            (
                State::AckSent,
                State::Closing,
                vec![Code::TerminateRequest],
                vec![],
            ),
            (
                State::Opened,
                State::Closing,
                vec![Code::TerminateRequest],
                vec!["tld"],
            ),
        ];
        for (from, to, codes_sent, events_sent) in expected {
            let (mut fsm, now) = reach(from);
            fsm.close(now, "admin close");
            assert_eq!(fsm.state(), to, "{from:?}");
            let packets = sent(&mut fsm);
            assert_eq!(codes(&packets), codes_sent, "{from:?}");
            if let Some(terminate) = packets.first() {
                assert_eq!(terminate.data, b"admin close");
                assert_eq!(fsm.restart_counter, test_config().max_terminate - 1);
            }
            assert_eq!(event_names(&events(&mut fsm)), events_sent, "{from:?}");
            assert_eq!(
                fsm.poll_timeout().is_some(),
                to.has_restart_timer(),
                "{from:?}"
            );
            // An administrative close is no failure.
            assert!(
                from == State::Stopping || from == State::Stopped || fsm.failure().is_none(),
                "{from:?}"
            );
            // And closing twice changes nothing.
            fsm.close(now, "again");
            assert_eq!(fsm.state(), to);
            assert!(sent(&mut fsm).is_empty() && events(&mut fsm).is_empty());
        }
    }

    #[test]
    fn terminate_request_with_data_in_opened() {
        let (mut fsm, now) = reach(State::Opened);
        receive(&mut fsm, now, Code::TerminateRequest, 9, b"going away");
        let packets = sent(&mut fsm);
        assert_eq!(
            packets,
            [Sent {
                code: Code::TerminateAck,
                identifier: 9,
                data: vec![]
            }]
        );
        assert_eq!(event_names(&events(&mut fsm)), ["tld"]);
        assert_eq!((fsm.state(), fsm.restart_counter), (State::Stopping, 0));
        // zrc: one interval for the Terminate-Ack to arrive, then finished.
        fsm.handle_timeout(now + INTERVAL);
        assert_eq!(fsm.state(), State::Stopped);
        assert!(sent(&mut fsm).is_empty());
        let reason = finished_reason(&events(&mut fsm)).unwrap();
        assert_eq!(reason, "TEST: terminated by the peer (going away)");
    }

    #[test]
    fn terminate_ack_in_opened_restarts_the_negotiation() {
        let (mut fsm, now) = reach(State::Opened);
        let resets = fsm.policy().resets;
        let (old_identifier, _) = outstanding(&fsm);
        receive(&mut fsm, now, Code::TerminateAck, 0x20, &[]);
        assert_eq!(fsm.state(), State::ReqSent);
        assert_eq!(event_names(&events(&mut fsm)), ["tld"]);
        let packets = sent(&mut fsm);
        assert_eq!(codes(&packets), [Code::ConfigureRequest]);
        assert_ne!(packets[0].identifier, old_identifier);
        assert_eq!(fsm.policy().resets, resets + 1);
    }

    #[test]
    fn a_peer_request_in_stopped_or_opened_starts_a_new_negotiation() {
        for state in [State::Stopped, State::Opened] {
            let (mut fsm, now) = reach(state);
            let resets = fsm.policy().resets;
            peer_request(&mut fsm, now, 0x70);
            assert_eq!(fsm.policy().resets, resets + 1, "{state:?}");
            assert_eq!(fsm.policy().nak_allowed_seen.last(), Some(&true));
            assert_eq!(fsm.failure(), None);
            assert_eq!(fsm.state(), State::AckSent);
        }
    }

    #[test]
    fn unreadable_requests_are_dropped() {
        let (mut fsm, now) = reach(State::ReqSent);
        fsm.policy_mut().answer = Answer::Discard;
        peer_request(&mut fsm, now, 1);
        assert!(sent(&mut fsm).is_empty());
        assert_eq!(
            (fsm.state(), fsm.stats().requests_discarded),
            (State::ReqSent, 1)
        );

        // In Opened the peer is renegotiating anyway: go down, ask again, do not answer.
        let (mut fsm, now) = reach(State::Opened);
        fsm.policy_mut().answer = Answer::Discard;
        peer_request(&mut fsm, now, 1);
        assert_eq!(codes(&sent(&mut fsm)), [Code::ConfigureRequest]);
        assert_eq!(event_names(&events(&mut fsm)), ["tld"]);
        assert_eq!(fsm.state(), State::ReqSent);
    }

    #[test]
    fn lcp_only_codes_are_left_to_the_caller() {
        let (mut fsm, now) = reach(State::Opened);
        for code in 8..=255u8 {
            assert!(
                !receive(&mut fsm, now, Code::from(code), 1, &[0; 4]),
                "code {code}"
            );
        }
        assert!(!receive(&mut fsm, now, Code::from(0), 1, &[]));
        assert_eq!(fsm.state(), State::Opened);
        assert!(sent(&mut fsm).is_empty());
    }

    #[test]
    fn code_rejects() {
        let policy = TestPolicy::new();
        for code in 1..=7u8 {
            assert!(!policy.code_reject_is_acceptable(Code::from(code)));
        }
        for code in [0u8, 8, 9, 12, 14, 255] {
            assert!(policy.code_reject_is_acceptable(Code::from(code)));
        }

        // An empty Code-Reject names no code: dropped.
        let (mut fsm, now) = reach(State::Opened);
        receive(&mut fsm, now, Code::CodeReject, 1, &[]);
        assert_eq!(
            (fsm.state(), fsm.stats().code_rejects_malformed),
            (State::Opened, 1)
        );

        // A catastrophic one is reported.
        receive(&mut fsm, now, Code::CodeReject, 2, &[5, 1, 0, 4]);
        assert_eq!(fsm.state(), State::Stopping);
        assert_eq!(
            fsm.failure(),
            Some("TEST: the peer Code-Rejected Terminate-Request (code 5)")
        );

        // Code-Rejects are truncated to the PPPoE MRU.
        let (mut fsm, now) = reach(State::Opened);
        fsm.reject_unknown_code(now, &vec![0x20; 4000]);
        assert_eq!(fsm.poll_transmit().unwrap().len(), MAX_CODE_REJECT_LEN);
    }

    #[test]
    fn echo_only_answered_when_opened() {
        for state in ALL_STATES {
            let (mut fsm, now) = reach(state);
            assert_eq!(fsm.handle_rxr(now), state == State::Opened, "{state:?}");
        }
    }

    #[test]
    fn packets_before_up_are_ignored() {
        for state in [State::Initial, State::Starting] {
            let (mut fsm, now) = reach(state);
            for code in 1..=7u8 {
                assert!(receive(&mut fsm, now, Code::from(code), 1, &option(1)));
            }
            assert_eq!(fsm.state(), state);
            assert!(sent(&mut fsm).is_empty() && events(&mut fsm).is_empty());
            assert_eq!(fsm.stats().illegal_events, 7);
        }
    }

    /// Two automata joined back to back, delivering packets until both are quiet.
    fn run_pair(a: &mut Fsm, b: &mut Fsm, now: Instant) {
        for _ in 0..100 {
            let from_a: Vec<Vec<u8>> = std::iter::from_fn(|| a.poll_transmit()).collect();
            let from_b: Vec<Vec<u8>> = std::iter::from_fn(|| b.poll_transmit()).collect();
            if from_a.is_empty() && from_b.is_empty() {
                return;
            }
            for bytes in from_a {
                assert!(b.handle_packet(now, &Repr::parse_bytes(&bytes).unwrap()));
            }
            for bytes in from_b {
                assert!(a.handle_packet(now, &Repr::parse_bytes(&bytes).unwrap()));
            }
        }
        panic!("the pair never went quiet");
    }

    #[test]
    fn two_automata_negotiate_through_a_nak() {
        let now = Instant::now();
        let mut a = Automaton::new(TestPolicy::new(), FsmConfig::default());
        a.policy_mut().follow_naks = true;
        let mut b = Automaton::new(TestPolicy::new(), FsmConfig::default());
        b.policy_mut().answer = Answer::Want(1500);
        for fsm in [&mut a, &mut b] {
            fsm.open(now);
            fsm.up(now);
        }
        run_pair(&mut a, &mut b, now);
        assert_eq!((a.state(), b.state()), (State::Opened, State::Opened));
        assert_eq!(a.policy().acked, [option(1500)]);
        assert_eq!(b.policy().acked, [option(1000)]);
        assert_eq!(event_names(&events(&mut a)), ["tls", "tlu"]);
        assert_eq!(event_names(&events(&mut b)), ["tls", "tlu"]);
        assert_eq!((a.poll_timeout(), b.poll_timeout()), (None, None));

        // One side closes; both end up down.
        a.close(now, "done");
        run_pair(&mut a, &mut b, now);
        assert_eq!((a.state(), b.state()), (State::Closed, State::Stopping));
        assert_eq!(event_names(&events(&mut a)), ["tld", "tlf"]);
        assert_eq!(event_names(&events(&mut b)), ["tld"]);
        b.handle_timeout(now + INTERVAL);
        assert_eq!(b.state(), State::Stopped);
        assert_eq!(
            finished_reason(&events(&mut b)).unwrap(),
            "TEST: terminated by the peer (done)"
        );
    }
}
