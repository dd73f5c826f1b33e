//! The PPPoE Discovery stage, client side (RFC 2516 §5), as a sans-IO machine.
//!
//! PADI is broadcast with a Service-Name (and Host-Uniq, and PPP-Max-Payload when
//! an MRU above 1492 is wanted, RFC 4638), retried with a doubling timeout. The
//! first offer that matches the configured AC-Name and Service-Name wins; its
//! AC-Cookie and Relay-Session-Id are echoed in the PADR. A PADS either gives the
//! session id or carries an error tag that ends discovery with a typed failure.

use std::time::{Duration, Instant};

use portdial_protocol::ethernet::{self, MacAddr, VlanStack};
use portdial_protocol::pppoe::{self, Code, DiscoveryRepr, Tag};

/// What discovery needs to know. Defaults follow rp-pppoe and pppd: 5 s, doubled
/// after each unanswered PADI/PADR, 3 attempts each.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// The Service-Name to ask for; empty means "any service".
    pub service_name: String,
    /// Only accept offers from an AC with this name.
    pub ac_name: Option<String>,
    /// Ask for this PPP-Max-Payload (RFC 4638) when set; only values above 1492
    /// make sense.
    pub ppp_max_payload: Option<u16>,
    pub timeout: Duration,
    pub attempts: u32,
    /// VLAN tags to put on our frames (tags on received frames are accepted whatever
    /// they are: the interface may already have stripped or added them).
    pub vlans: VlanStack,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            service_name: String::new(),
            ac_name: None,
            ppp_max_payload: None,
            timeout: Duration::from_secs(5),
            attempts: 3,
            vlans: VlanStack::default(),
        }
    }
}

/// One AC's answer to our PADI, as `portdial discover` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub ac_mac: MacAddr,
    pub ac_name: Option<String>,
    pub service_names: Vec<String>,
    pub cookie: Option<Vec<u8>>,
    pub relay_session_id: Option<Vec<u8>>,
    pub ppp_max_payload: Option<u16>,
}

impl Offer {
    fn from_pado(ac_mac: MacAddr, repr: &DiscoveryRepr<'_>) -> Offer {
        let mut service_names = Vec::new();
        let mut offer = Offer {
            ac_mac,
            ac_name: None,
            service_names: Vec::new(),
            cookie: None,
            relay_session_id: None,
            ppp_max_payload: None,
        };
        for tag in &repr.tags {
            match *tag {
                Tag::ServiceName(name) => service_names.push(lossy(name)),
                Tag::AcName(name) => offer.ac_name = Some(lossy(name)),
                Tag::AcCookie(cookie) => offer.cookie = Some(cookie.to_vec()),
                Tag::RelaySessionId(id) => offer.relay_session_id = Some(id.to_vec()),
                Tag::PppMaxPayload(max) => offer.ppp_max_payload = Some(max),
                _ => {}
            }
        }
        offer.service_names = service_names;
        offer
    }

    /// Whether this offer satisfies the configuration. An AC that lists no
    /// Service-Name at all is taken to offer any (some do).
    fn matches(&self, config: &DiscoveryConfig) -> bool {
        let name_ok = match &config.ac_name {
            Some(wanted) => self.ac_name.as_deref() == Some(wanted.as_str()),
            None => true,
        };
        let service_ok = config.service_name.is_empty()
            || self.service_names.is_empty()
            || self.service_names.iter().any(|s| s == &config.service_name);
        name_ok && service_ok
    }
}

/// A session the AC confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    pub ac_mac: MacAddr,
    pub ac_name: Option<String>,
    pub session_id: u16,
    /// The PPP-Max-Payload the AC confirmed in its PADS (RFC 4638), if any.
    pub ppp_max_payload: Option<u16>,
}

/// Why discovery failed. Each carries what a person needs to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    /// No acceptable PADO after every PADI attempt. `offers` counts the PADOs
    /// that arrived but did not match the configured AC-Name/Service-Name.
    NoOffer { attempts: u32, offers: usize },
    /// The chosen AC never confirmed our PADR.
    NoConfirmation { ac_mac: MacAddr, attempts: u32 },
    /// The AC refused the service (PADS with Service-Name-Error).
    ServiceNameError { ac_mac: MacAddr, message: String },
    /// The AC reported an internal error (PADS with AC-System-Error).
    AcSystemError { ac_mac: MacAddr, message: String },
    /// PADS with Generic-Error, or a PADS with session id 0 and no error tag.
    GenericError { ac_mac: MacAddr, message: String },
}

impl std::fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiscoveryError::NoOffer { attempts, offers: 0 } => {
                write!(f, "no access concentrator answered {attempts} PADI")
            }
            DiscoveryError::NoOffer { attempts, offers } => write!(
                f,
                "no acceptable offer after {attempts} PADI ({offers} offers did not match the AC-Name/Service-Name asked for)"
            ),
            DiscoveryError::NoConfirmation { ac_mac, attempts } => {
                write!(f, "access concentrator {ac_mac} did not confirm {attempts} PADR")
            }
            DiscoveryError::ServiceNameError { ac_mac, message } => {
                write!(f, "access concentrator {ac_mac} refused the service: {message}")
            }
            DiscoveryError::AcSystemError { ac_mac, message } => {
                write!(f, "access concentrator {ac_mac} reported a system error: {message}")
            }
            DiscoveryError::GenericError { ac_mac, message } => {
                write!(f, "access concentrator {ac_mac} reported an error: {message}")
            }
        }
    }
}

impl std::error::Error for DiscoveryError {}

#[derive(Debug, Clone)]
enum State {
    Idle,
    /// PADI sent; `attempt` counts from 1.
    Initiating {
        attempt: u32,
        deadline: Instant,
    },
    Requesting {
        offer: Offer,
        attempt: u32,
        deadline: Instant,
    },
    Established(Established),
    Failed(DiscoveryError),
    /// `portdial discover`: PADI sent, offers collected until `deadline`, no PADR.
    Probing {
        attempt: u32,
        deadline: Instant,
    },
    /// Probing finished; the offers are in [`Discovery::offers`].
    Probed,
}

/// Counters for frames discovery saw and did not act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    pub padi_sent: u32,
    pub padr_sent: u32,
    pub offers_seen: u32,
    pub offers_rejected: u32,
    /// Discovery frames that were not for us or not expected now (wrong
    /// Host-Uniq, wrong AC, PADT for another session, ...).
    pub ignored: u32,
}

/// What an incoming discovery frame meant to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryInput {
    /// Nothing for the caller to do (it was ignored, or moved discovery on).
    Handled,
    /// A valid PADT for the established session: the session is over.
    Terminated { message: Option<String> },
}

/// The client side of PPPoE discovery.
#[derive(Debug)]
pub struct Discovery {
    our_mac: MacAddr,
    config: DiscoveryConfig,
    host_uniq: Vec<u8>,
    state: State,
    offers: Vec<Offer>,
    /// Acceptable offers that arrived after we chose one, tried in order when
    /// the chosen AC does not confirm (or refuses): a second AC on the segment
    /// must not be locked out by a first one that answers PADI but not PADR.
    fallbacks: Vec<Offer>,
    transmit: Vec<Vec<u8>>,
    stats: DiscoveryStats,
}

/// How many fallback offers are kept (a PADO flood must not grow memory).
const MAX_FALLBACKS: usize = 8;

impl Discovery {
    /// `host_uniq` is echoed by the AC so we can tell our offers from others'
    /// (drawn at random by the caller; empty disables the tag).
    pub fn new(our_mac: MacAddr, config: DiscoveryConfig, host_uniq: Vec<u8>) -> Discovery {
        Discovery {
            our_mac,
            config,
            host_uniq,
            state: State::Idle,
            offers: Vec::new(),
            fallbacks: Vec::new(),
            transmit: Vec::new(),
            stats: DiscoveryStats::default(),
        }
    }

    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    pub fn stats(&self) -> DiscoveryStats {
        self.stats
    }

    /// Every offer seen since the last `start`, matching or not (for `discover`).
    pub fn offers(&self) -> &[Offer] {
        &self.offers
    }

    pub fn established(&self) -> Option<&Established> {
        match &self.state {
            State::Established(established) => Some(established),
            _ => None,
        }
    }

    pub fn failure(&self) -> Option<&DiscoveryError> {
        match &self.state {
            State::Failed(error) => Some(error),
            _ => None,
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(
            self.state,
            State::Initiating { .. } | State::Requesting { .. }
        )
    }

    /// Starts (or restarts) discovery: broadcast the first PADI.
    pub fn start(&mut self, now: Instant) {
        self.offers.clear();
        self.fallbacks.clear();
        self.state = State::Initiating {
            attempt: 1,
            deadline: now + self.config.timeout,
        };
        self.send_padi();
    }

    /// Broadcasts PADIs and collects every offer until the attempts run out,
    /// without choosing one (what `pppoe -A` does). Stops early after the
    /// first attempt that drew an offer.
    pub fn probe(&mut self, now: Instant) {
        self.offers.clear();
        self.state = State::Probing {
            attempt: 1,
            deadline: now + self.config.timeout,
        };
        self.send_padi();
    }

    /// Whether a probe has finished.
    pub fn probe_done(&self) -> bool {
        matches!(self.state, State::Probed)
    }

    /// Forgets the session without sending anything (after a PADT, say).
    pub fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// Builds a PADT for the established session (or the one given), for a
    /// clean close or to clear a stale session recorded before a restart.
    pub fn padt_frame(&self, ac_mac: MacAddr, session_id: u16, message: &str) -> Vec<u8> {
        let mut tags = Vec::new();
        if !message.is_empty() {
            tags.push(Tag::GenericError(message.as_bytes()));
        }
        self.frame(ac_mac, Code::Padt, session_id, &tags)
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            None
        } else {
            Some(self.transmit.remove(0))
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Initiating { deadline, .. }
            | State::Requesting { deadline, .. }
            | State::Probing { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.state {
            State::Initiating { attempt, deadline } if now >= *deadline => {
                let attempt = *attempt;
                if attempt >= self.config.attempts {
                    let offers = self.offers.len();
                    self.state = State::Failed(DiscoveryError::NoOffer {
                        attempts: attempt,
                        offers,
                    });
                    return;
                }
                let deadline = now + self.backoff(attempt);
                self.state = State::Initiating {
                    attempt: attempt + 1,
                    deadline,
                };
                self.send_padi();
            }
            State::Probing { attempt, deadline } if now >= *deadline => {
                let attempt = *attempt;
                if attempt >= self.config.attempts || !self.offers.is_empty() {
                    self.state = State::Probed;
                    return;
                }
                let deadline = now + self.backoff(attempt);
                self.state = State::Probing {
                    attempt: attempt + 1,
                    deadline,
                };
                self.send_padi();
            }
            State::Requesting {
                offer,
                attempt,
                deadline,
            } if now >= *deadline => {
                let (offer, attempt) = (offer.clone(), *attempt);
                if attempt >= self.config.attempts {
                    let error = DiscoveryError::NoConfirmation {
                        ac_mac: offer.ac_mac,
                        attempts: attempt,
                    };
                    if !self.try_next_offer(now, &error) {
                        self.state = State::Failed(error);
                    }
                    return;
                }
                let deadline = now + self.backoff(attempt);
                self.send_padr(&offer);
                self.state = State::Requesting {
                    offer,
                    attempt: attempt + 1,
                    deadline,
                };
            }
            _ => {}
        }
    }

    /// The timeout after `attempt` unanswered tries: doubling, as rp-pppoe.
    fn backoff(&self, attempt: u32) -> Duration {
        self.config.timeout.saturating_mul(1u32 << attempt.min(16))
    }

    /// Feeds one received discovery frame (EtherType 0x8863), already split into
    /// its Ethernet header and PPPoE part.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        ethernet: &ethernet::Repr,
        pppoe: &DiscoveryRepr<'_>,
    ) -> DiscoveryInput {
        // Frames from ourselves (a switch looping our broadcast back) and frames
        // for other stations are not ours to act on.
        if ethernet.src == self.our_mac || ethernet.src.is_multicast() {
            self.stats.ignored += 1;
            return DiscoveryInput::Handled;
        }
        if ethernet.dst != self.our_mac && !ethernet.dst.is_broadcast() {
            self.stats.ignored += 1;
            return DiscoveryInput::Handled;
        }
        match pppoe.code {
            Code::Pado => self.handle_pado(now, ethernet.src, pppoe),
            Code::Pads => self.handle_pads(now, ethernet.src, pppoe),
            Code::Padt => return self.handle_padt(ethernet.src, pppoe),
            _ => self.stats.ignored += 1,
        }
        DiscoveryInput::Handled
    }

    fn host_uniq_matches(&self, repr: &DiscoveryRepr<'_>) -> bool {
        self.host_uniq.is_empty() || repr.host_uniq() == Some(self.host_uniq.as_slice())
    }

    fn handle_pado(&mut self, now: Instant, ac_mac: MacAddr, repr: &DiscoveryRepr<'_>) {
        // Offers arriving after we chose one are still recorded (for status and
        // `discover`), but only the first acceptable one is acted on.
        let initiating = matches!(self.state, State::Initiating { .. });
        let requesting = matches!(self.state, State::Requesting { .. } | State::Probing { .. });
        if !(initiating || requesting) || !self.host_uniq_matches(repr) || repr.session_id != 0 {
            self.stats.ignored += 1;
            return;
        }
        // RFC 2516 §5.2: a PADO must carry an AC-Name.
        if repr.ac_name().is_none() {
            self.stats.ignored += 1;
            return;
        }
        self.stats.offers_seen += 1;
        let offer = Offer::from_pado(ac_mac, repr);
        let acceptable = offer.matches(&self.config);
        // Keep a bounded list: a PADO flood must not grow memory.
        if self.offers.len() < 64 && !self.offers.iter().any(|o| o.ac_mac == ac_mac) {
            self.offers.push(offer.clone());
        }
        if !acceptable {
            self.stats.offers_rejected += 1;
            return;
        }
        if !initiating {
            if let State::Requesting { offer: chosen, .. } = &self.state {
                let known =
                    chosen.ac_mac == ac_mac || self.fallbacks.iter().any(|o| o.ac_mac == ac_mac);
                if !known && self.fallbacks.len() < MAX_FALLBACKS {
                    self.fallbacks.push(offer);
                }
            }
            return;
        }
        self.send_padr(&offer);
        self.state = State::Requesting {
            offer,
            attempt: 1,
            deadline: now + self.config.timeout,
        };
    }

    /// The chosen AC failed us: send a PADR to the next acceptable offer, if
    /// any arrived. Returns false when there is none left.
    fn try_next_offer(&mut self, now: Instant, error: &DiscoveryError) -> bool {
        if self.fallbacks.is_empty() {
            return false;
        }
        let offer = self.fallbacks.remove(0);
        tracing::info!(%error, next = %offer.ac_mac, "trying the next access concentrator that answered");
        self.send_padr(&offer);
        self.state = State::Requesting {
            offer,
            attempt: 1,
            deadline: now + self.config.timeout,
        };
        true
    }

    fn handle_pads(&mut self, now: Instant, ac_mac: MacAddr, repr: &DiscoveryRepr<'_>) {
        let offer = match &self.state {
            State::Requesting { offer, .. }
                if offer.ac_mac == ac_mac && self.host_uniq_matches(repr) =>
            {
                offer.clone()
            }
            _ => {
                self.stats.ignored += 1;
                return;
            }
        };
        if let Some(error) = repr.error() {
            let message = error.message().into_owned();
            let failure = match error.kind {
                pppoe::DiscoveryErrorKind::ServiceName => {
                    DiscoveryError::ServiceNameError { ac_mac, message }
                }
                pppoe::DiscoveryErrorKind::AcSystem => {
                    DiscoveryError::AcSystemError { ac_mac, message }
                }
                pppoe::DiscoveryErrorKind::Generic => {
                    DiscoveryError::GenericError { ac_mac, message }
                }
            };
            if !self.try_next_offer(now, &failure) {
                self.state = State::Failed(failure);
            }
            return;
        }
        if repr.session_id == 0 {
            self.state = State::Failed(DiscoveryError::GenericError {
                ac_mac,
                message: "PADS with session id 0 and no error tag".into(),
            });
            return;
        }
        self.state = State::Established(Established {
            ac_mac,
            ac_name: offer.ac_name,
            session_id: repr.session_id,
            ppp_max_payload: repr.ppp_max_payload(),
        });
    }

    fn handle_padt(&mut self, ac_mac: MacAddr, repr: &DiscoveryRepr<'_>) -> DiscoveryInput {
        match &self.state {
            State::Established(session)
                if session.ac_mac == ac_mac && session.session_id == repr.session_id =>
            {
                let message = repr.error().map(|error| error.message().into_owned());
                self.state = State::Idle;
                DiscoveryInput::Terminated { message }
            }
            _ => {
                self.stats.ignored += 1;
                DiscoveryInput::Handled
            }
        }
    }

    fn send_padi(&mut self) {
        let mut tags = vec![Tag::ServiceName(self.config.service_name.as_bytes())];
        if !self.host_uniq.is_empty() {
            tags.push(Tag::HostUniq(&self.host_uniq));
        }
        if let Some(max) = self.config.ppp_max_payload {
            tags.push(Tag::PppMaxPayload(max));
        }
        let frame = self.frame(MacAddr::BROADCAST, Code::Padi, 0, &tags);
        self.stats.padi_sent += 1;
        self.transmit.push(frame);
    }

    fn send_padr(&mut self, offer: &Offer) {
        let mut tags = vec![Tag::ServiceName(self.config.service_name.as_bytes())];
        if !self.host_uniq.is_empty() {
            tags.push(Tag::HostUniq(&self.host_uniq));
        }
        if let Some(cookie) = &offer.cookie {
            tags.push(Tag::AcCookie(cookie));
        }
        if let Some(relay) = &offer.relay_session_id {
            tags.push(Tag::RelaySessionId(relay));
        }
        if let Some(max) = self.config.ppp_max_payload {
            tags.push(Tag::PppMaxPayload(max));
        }
        let frame = self.frame(offer.ac_mac, Code::Padr, 0, &tags);
        self.stats.padr_sent += 1;
        self.transmit.push(frame);
    }

    fn frame(&self, dst: MacAddr, code: Code, session_id: u16, tags: &[Tag<'_>]) -> Vec<u8> {
        DiscoveryRepr {
            code,
            session_id,
            tags: tags.to_vec(),
        }
        .to_frame(dst, self.our_mac, self.config.vlans)
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: MacAddr = MacAddr([0, 0, 0x5e, 0, 0x53, 0x02]);
    const AC: MacAddr = MacAddr([0, 0, 0x5e, 0, 0x53, 0x01]);

    fn pado(discovery: &mut Discovery, now: Instant, ac: MacAddr, name: &[u8]) {
        let host_uniq = discovery.host_uniq.clone();
        let repr = DiscoveryRepr {
            code: Code::Pado,
            session_id: 0,
            tags: vec![
                Tag::AcName(name),
                Tag::ServiceName(b""),
                Tag::HostUniq(&host_uniq),
            ],
        };
        let eth = ethernet::Repr {
            dst: OURS,
            src: ac,
            vlans: VlanStack::default(),
            ethertype: ethernet::ethertype::PPPOE_DISCOVERY,
        };
        discovery.handle_frame(now, &eth, &repr);
    }

    #[test]
    fn probe_collects_every_offer_and_sends_no_padr() {
        let now = Instant::now();
        let mut discovery = Discovery::new(OURS, DiscoveryConfig::default(), vec![1, 2, 3, 4]);
        discovery.probe(now);
        assert!(discovery.poll_transmit().is_some(), "a PADI");
        pado(&mut discovery, now, AC, b"first");
        pado(
            &mut discovery,
            now,
            MacAddr([0, 0, 0x5e, 0, 0x53, 0x03]),
            b"second",
        );
        assert!(discovery.poll_transmit().is_none(), "no PADR while probing");
        discovery.handle_timeout(now + Duration::from_secs(5));
        assert!(discovery.probe_done());
        let names: Vec<_> = discovery
            .offers()
            .iter()
            .map(|o| o.ac_name.clone().unwrap())
            .collect();
        assert_eq!(names, ["first", "second"]);
    }

    #[test]
    fn probe_without_answers_retries_then_ends_empty() {
        let now = Instant::now();
        let mut discovery = Discovery::new(OURS, DiscoveryConfig::default(), vec![]);
        discovery.probe(now);
        let mut at = now;
        while let Some(deadline) = discovery.poll_timeout() {
            at = deadline;
            discovery.handle_timeout(at);
        }
        assert!(discovery.probe_done());
        assert!(discovery.offers().is_empty());
        assert_eq!(discovery.stats().padi_sent, 3);
        assert_eq!(at - now, Duration::from_secs(35));
    }

    fn pads_error(discovery: &mut Discovery, now: Instant, ac: MacAddr) {
        let host_uniq = discovery.host_uniq.clone();
        let repr = DiscoveryRepr {
            code: Code::Pads,
            session_id: 0,
            tags: vec![
                Tag::HostUniq(&host_uniq),
                Tag::GenericError(b"cookie not issued here"),
            ],
        };
        let eth = ethernet::Repr {
            dst: OURS,
            src: ac,
            vlans: VlanStack::default(),
            ethertype: ethernet::ethertype::PPPOE_DISCOVERY,
        };
        discovery.handle_frame(now, &eth, &repr);
    }

    fn padr_destinations(discovery: &mut Discovery) -> Vec<MacAddr> {
        std::iter::from_fn(|| discovery.poll_transmit())
            .filter_map(|frame| ethernet::Repr::parse(&frame).ok())
            .filter(|(eth, _)| !eth.dst.is_broadcast())
            .map(|(eth, _)| eth.dst)
            .collect()
    }

    /// Found by tests/hostile.rs: an AC that answers PADI first but never
    /// confirms (or refuses) the PADR used to lock out the second AC on the
    /// segment on every attempt; the next offer is now tried.
    #[test]
    fn an_unconfirmed_or_refused_offer_falls_back_to_the_next_one() {
        let second = MacAddr([0, 0, 0x5e, 0, 0x53, 0x03]);
        let third = MacAddr([0, 0, 0x5e, 0, 0x53, 0x04]);
        let now = Instant::now();
        let mut discovery = Discovery::new(OURS, DiscoveryConfig::default(), vec![7]);
        discovery.start(now);
        pado(&mut discovery, now, AC, b"silent");
        pado(&mut discovery, now, second, b"refusing");
        pado(&mut discovery, now, third, b"good");
        assert_eq!(padr_destinations(&mut discovery), [AC]);
        // AC retried, then given up on, and the next offer asked.
        let mut at = now;
        let mut sent = Vec::new();
        while !matches!(&discovery.state, State::Requesting { offer, .. } if offer.ac_mac == second)
        {
            assert!(discovery.failure().is_none(), "{:?}", discovery.failure());
            at = discovery.poll_timeout().expect("a PADR timer");
            discovery.handle_timeout(at);
            sent.extend(padr_destinations(&mut discovery));
        }
        assert_eq!(sent, [AC, AC, second]);
        pads_error(&mut discovery, at, second);
        assert_eq!(padr_destinations(&mut discovery), [third]);
        assert!(discovery.failure().is_none());
        // With no offer left, the error ends discovery as before.
        pads_error(&mut discovery, at, third);
        assert!(matches!(
            discovery.failure(),
            Some(DiscoveryError::GenericError { ac_mac, .. }) if *ac_mac == third
        ));
    }

    #[test]
    fn pado_flood_keeps_memory_bounded() {
        let now = Instant::now();
        let mut discovery = Discovery::new(OURS, DiscoveryConfig::default(), vec![9]);
        discovery.probe(now);
        for i in 0..10_000u32 {
            let mac = MacAddr([0, 0, 0x5e, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            pado(&mut discovery, now, mac, b"flood");
        }
        assert_eq!(discovery.offers().len(), 64);
        assert_eq!(discovery.stats().offers_seen, 10_000);
    }
}
