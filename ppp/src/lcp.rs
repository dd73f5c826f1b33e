//! The LCP policy for PPPoE (RFC 1661 §6, RFC 2516 §7, RFC 4638).
//!
//! What it asks for: an MRU (1492 by default: 1500 bytes of Ethernet payload
//! minus the PPPoE header; up to 1500 with RFC 4638 when the AC agreed to it) and
//! a Magic-Number. What it refuses: ACCM, ACFC, FCS-Alternatives (RFC 2516 §7
//! says reject them) and PFC (not recommended over PPPoE), Quality-Protocol, and
//! anything it does not know. Authentication: the AC asks, we Ack a method we are
//! configured for and Nak any other with one we accept.

use portdial_protocol::lcp::{AuthProtocol, LcpOption};
use portdial_protocol::options::{OptionIter, RawOption};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use crate::auth::AuthMethod;
use crate::fsm::{Policy, RequestVerdict};

/// The smallest MRU we agree to (pppd's PPP_MINMRU): below it the link cannot
/// carry a useful IP packet.
pub const MIN_MRU: u16 = 128;
/// RFC 1661's default MRU, assumed when the peer does not negotiate one.
pub const DEFAULT_MRU: u16 = 1500;
/// An MRU that fits a plain 1500-byte Ethernet payload after the PPPoE header.
pub const PPPOE_MRU: u16 = 1492;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcpConfig {
    /// The MRU we ask for.
    pub mru: u16,
    /// The largest frame the link can carry (1492, or up to 1500 with RFC 4638);
    /// the peer's MRU is clamped to it for our MTU.
    pub link_max: u16,
    pub allow_pap: bool,
    pub allow_chap: bool,
    /// Consecutive Magic-Number collisions before we call the link looped back.
    pub loopback_limit: u32,
}

impl Default for LcpConfig {
    fn default() -> Self {
        LcpConfig {
            mru: PPPOE_MRU,
            link_max: PPPOE_MRU,
            allow_pap: true,
            allow_chap: true,
            loopback_limit: 5,
        }
    }
}

/// What LCP settled on, valid once the layer is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LcpNegotiated {
    /// The MRU the peer Acked for us (what we may receive).
    pub our_mru: Option<u16>,
    /// The peer's MRU (what we may send), RFC default 1500 when not negotiated.
    pub peer_mru: Option<u16>,
    pub auth: Option<AuthMethod>,
    pub our_magic: Option<u32>,
    pub peer_magic: Option<u32>,
}

impl LcpNegotiated {
    /// The MTU for the network layer: the peer's MRU, clamped to what the
    /// link can carry.
    pub fn mtu(&self, link_max: u16) -> u16 {
        self.peer_mru.unwrap_or(DEFAULT_MRU).min(link_max)
    }
}

#[derive(Debug)]
pub struct LcpPolicy {
    config: LcpConfig,
    rng: ChaCha8Rng,
    /// What our next Configure-Request asks for; `None` once rejected.
    want_mru: Option<u16>,
    want_magic: Option<u32>,
    /// What the peer asked in the request we are about to Ack.
    pending_peer: LcpNegotiated,
    negotiated: LcpNegotiated,
    magic_collisions: u32,
    loopback: bool,
}

impl LcpPolicy {
    pub fn new(config: LcpConfig, rng: ChaCha8Rng) -> LcpPolicy {
        let mut policy = LcpPolicy {
            config,
            rng,
            want_mru: None,
            want_magic: None,
            pending_peer: LcpNegotiated::default(),
            negotiated: LcpNegotiated::default(),
            magic_collisions: 0,
            loopback: false,
        };
        policy.reset();
        policy
    }

    pub fn config(&self) -> &LcpConfig {
        &self.config
    }

    /// Raises the link's limit once the AC confirmed an RFC 4638 PPP-Max-Payload.
    /// Sets what this session's link carries: raised once the AC confirmed an
    /// RFC 4638 PPP-Max-Payload, and set back for a session whose AC did not
    /// (the next AC may not carry baby jumbo frames).
    pub fn set_link_max(&mut self, link_max: u16, mru: u16) {
        self.config.link_max = link_max;
        self.config.mru = mru;
        self.want_mru = Some(mru.min(link_max));
    }

    pub fn negotiated(&self) -> &LcpNegotiated {
        &self.negotiated
    }

    /// Our current Magic-Number (0 when not negotiated), for Echo packets.
    pub fn magic(&self) -> u32 {
        self.negotiated.our_magic.or(self.want_magic).unwrap_or(0)
    }

    /// Whether the Magic-Number exchange showed a looped-back link.
    pub fn loopback_detected(&self) -> bool {
        self.loopback
    }

    /// Flags a loopback seen elsewhere (an Echo carrying our own magic).
    pub fn note_loopback(&mut self) {
        self.loopback = true;
    }

    fn new_magic(&mut self) -> u32 {
        loop {
            let magic = self.rng.next_u32();
            if magic != 0 && Some(magic) != self.want_magic {
                return magic;
            }
        }
    }

    /// The method we offer in a Nak: CHAP-MD5 when allowed (the password never
    /// crosses the wire), PAP otherwise.
    fn preferred_auth(&self) -> Option<AuthProtocol<'static>> {
        if self.config.allow_chap {
            Some(AuthProtocol::Chap { algorithm: 5 })
        } else if self.config.allow_pap {
            Some(AuthProtocol::Pap)
        } else {
            None
        }
    }

    fn accepted_auth(&self, protocol: &AuthProtocol<'_>) -> Option<AuthMethod> {
        match protocol {
            AuthProtocol::Pap if self.config.allow_pap => Some(AuthMethod::Pap),
            AuthProtocol::Chap { algorithm: 5 } if self.config.allow_chap => {
                Some(AuthMethod::ChapMd5)
            }
            _ => None,
        }
    }
}

/// An option name for failure messages; `None` for the types the protocol
/// crate does not know (it names them "unknown").
pub(crate) fn named(name: &'static str) -> Option<&'static str> {
    (name != "unknown").then_some(name)
}

/// Sorts the peer's options into the three answers RFC 1661 §5 allows; the
/// first non-empty of reject, nak, ack wins.
#[derive(Default)]
pub(crate) struct Verdicts {
    pub reject: Vec<u8>,
    pub nak: Vec<u8>,
}

impl Verdicts {
    pub fn reject_raw(&mut self, raw: RawOption<'_>) {
        raw.push_to(&mut self.reject);
    }

    /// A list that does not parse: reject everything from the bad option on,
    /// as pppd does, so the peer sees exactly what we could not read.
    pub fn reject_rest(&mut self, options: &[u8], consumed: usize) {
        self.reject
            .extend_from_slice(options.get(consumed..).unwrap_or(&[]));
    }

    pub fn into_verdict(self) -> RequestVerdict {
        if !self.reject.is_empty() {
            RequestVerdict::Reject(self.reject)
        } else if !self.nak.is_empty() {
            RequestVerdict::Nak(self.nak)
        } else {
            RequestVerdict::Ack
        }
    }
}

/// Walks a Configure-Request's options, handing each parsed one to `judge` and
/// rejecting malformed ones. `P` parses a raw option into the protocol's type.
pub(crate) fn judge_options<'a, T>(
    options: &'a [u8],
    parse: impl Fn(RawOption<'a>) -> portdial_protocol::Result<T>,
    mut judge: impl FnMut(T, RawOption<'a>, &mut Verdicts),
) -> Verdicts {
    let mut verdicts = Verdicts::default();
    let mut consumed = 0;
    for raw in OptionIter::new(options) {
        match raw {
            Ok(raw) => {
                consumed += raw.buffer_len();
                match parse(raw) {
                    Ok(option) => judge(option, raw, &mut verdicts),
                    // A known option with the wrong length.
                    Err(_) => verdicts.reject_raw(raw),
                }
            }
            Err(_) => {
                verdicts.reject_rest(options, consumed);
                break;
            }
        }
    }
    verdicts
}

impl Policy for LcpPolicy {
    fn name(&self) -> &'static str {
        "LCP"
    }

    fn reset(&mut self) {
        // Never ask for more than the link carries (1492 unless RFC 4638 raised it).
        self.want_mru = Some(self.config.mru.min(self.config.link_max));
        self.want_magic = Some(self.new_magic());
        self.negotiated = LcpNegotiated::default();
        self.pending_peer = LcpNegotiated::default();
        self.magic_collisions = 0;
        self.loopback = false;
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(mru) = self.want_mru {
            LcpOption::Mru(mru).push_to(out);
        }
        if let Some(magic) = self.want_magic {
            LcpOption::MagicNumber(magic).push_to(out);
        }
    }

    fn check_request(&mut self, options: &[u8], nak_allowed: bool) -> RequestVerdict {
        let mut peer = LcpNegotiated::default();
        let mut magic_collision = false;
        let mut replacement_magic = None;
        // Draw a replacement magic up front so the closure below need not borrow self mutably.
        let fresh_magic = self.new_magic();
        let verdicts = judge_options(
            options,
            LcpOption::parse,
            |option, raw, verdicts| match option {
                LcpOption::Mru(mru) if mru >= MIN_MRU => peer.peer_mru = Some(mru),
                LcpOption::Mru(_) if nak_allowed => {
                    LcpOption::Mru(MIN_MRU).push_to(&mut verdicts.nak)
                }
                LcpOption::AuthProtocol(protocol) => match self.accepted_auth(&protocol) {
                    Some(method) => peer.auth = Some(method),
                    None => match self.preferred_auth() {
                        Some(ours) if nak_allowed => {
                            LcpOption::AuthProtocol(ours).push_to(&mut verdicts.nak)
                        }
                        _ => verdicts.reject_raw(raw),
                    },
                },
                LcpOption::MagicNumber(magic) if magic != 0 && Some(magic) != self.want_magic => {
                    peer.peer_magic = Some(magic)
                }
                LcpOption::MagicNumber(magic) if nak_allowed => {
                    // RFC 1661 §6.4: a collision means either a looped-back link or two
                    // peers that drew the same number; Nak with a different value and
                    // draw a new one ourselves.
                    magic_collision = magic != 0;
                    replacement_magic = Some(fresh_magic);
                    LcpOption::MagicNumber(fresh_magic ^ 0x5a5a_5a5a).push_to(&mut verdicts.nak)
                }
                // ACCM, ACFC, PFC, FCS-Alternatives (RFC 2516 §7), Quality-Protocol,
                // a Nak we may no longer send, and everything unknown.
                _ => verdicts.reject_raw(raw),
            },
        );
        if magic_collision {
            self.magic_collisions += 1;
            if self.magic_collisions >= self.config.loopback_limit {
                self.loopback = true;
            }
            self.want_magic = replacement_magic;
        } else {
            self.magic_collisions = 0;
        }
        let verdict = verdicts.into_verdict();
        if matches!(verdict, RequestVerdict::Ack) {
            self.pending_peer = peer;
            self.negotiated.peer_mru = peer.peer_mru;
            self.negotiated.auth = peer.auth;
            self.negotiated.peer_magic = peer.peer_magic;
        }
        verdict
    }

    fn option_name(&self, kind: u8) -> Option<&'static str> {
        named(portdial_protocol::lcp::kind_name(kind))
    }

    fn handle_ack(&mut self, _options: &[u8]) {
        self.negotiated.our_mru = self.want_mru;
        self.negotiated.our_magic = self.want_magic;
    }

    fn handle_nak(&mut self, options: &[u8]) -> Result<(), String> {
        for option in LcpOption::iter(options).flatten() {
            match option {
                // Take the peer's suggestion when we can receive it (pppd accepts up
                // to the RFC default too: an AC Nak'ing 1492 to 1500 is common).
                LcpOption::Mru(mru)
                    if mru >= MIN_MRU && (mru <= self.config.mru.max(DEFAULT_MRU)) =>
                {
                    self.want_mru = (mru != DEFAULT_MRU || self.want_mru.is_some()).then_some(mru)
                }
                LcpOption::MagicNumber(_) => self.want_magic = Some(self.new_magic()),
                _ => {}
            }
        }
        Ok(())
    }

    fn handle_reject(&mut self, options: &[u8]) -> Result<(), String> {
        for option in LcpOption::iter(options).flatten() {
            match option {
                LcpOption::Mru(_) => self.want_mru = None,
                LcpOption::MagicNumber(_) => self.want_magic = None,
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The policy alone, through the `fsm::Policy` trait, on option lists built
    //! with portdial_protocol's `LcpOption` (constructed, not captured).

    use super::*;
    use rand::SeedableRng;

    fn policy(config: LcpConfig) -> LcpPolicy {
        LcpPolicy::new(config, ChaCha8Rng::from_seed([1; 32]))
    }

    fn options(list: &[LcpOption<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for option in list {
            option.push_to(&mut out);
        }
        out
    }

    fn our_request(policy: &mut LcpPolicy) -> Vec<u8> {
        let mut out = Vec::new();
        policy.build_request(&mut out);
        out
    }

    /// FCS-Alternatives (RFC 1570), which `LcpOption` leaves unknown: 16-bit FCS.
    const FCS_ALTERNATIVES: LcpOption<'static> = LcpOption::Unknown {
        kind: 9,
        data: &[0x02],
    };

    #[test]
    fn rfc_2516_options_are_rejected_exactly() {
        let mut lcp = policy(LcpConfig::default());
        let request = options(&[
            LcpOption::Mru(1492),
            LcpOption::Accm(0),
            LcpOption::MagicNumber(0x1122_3344),
            LcpOption::Pfc,
            LcpOption::Acfc,
            FCS_ALTERNATIVES,
        ]);
        let expected = options(&[
            LcpOption::Accm(0),
            LcpOption::Pfc,
            LcpOption::Acfc,
            FCS_ALTERNATIVES,
        ]);
        assert_eq!(
            lcp.check_request(&request, true),
            RequestVerdict::Reject(expected)
        );
        // Nothing of a rejected request is taken as agreed.
        assert_eq!(lcp.negotiated().peer_mru, None);
        assert_eq!(lcp.negotiated().peer_magic, None);
    }

    #[test]
    fn quality_protocol_and_unknown_options_are_rejected() {
        let mut lcp = policy(LcpConfig::default());
        // LQR (0xc025) with a reporting period, and an option type nobody defined.
        let quality = LcpOption::QualityProtocol {
            protocol: 0xc025,
            data: &[0, 0, 0x0b, 0xb8],
        };
        let unknown = LcpOption::Unknown {
            kind: 0x42,
            data: &[1, 2, 3],
        };
        let request = options(&[
            LcpOption::Mru(1492),
            quality,
            LcpOption::MagicNumber(0x1122_3344),
            unknown,
        ]);
        assert_eq!(
            lcp.check_request(&request, true),
            RequestVerdict::Reject(options(&[quality, unknown]))
        );
    }

    #[test]
    fn a_small_mru_is_naked_to_the_minimum_or_rejected() {
        let mut lcp = policy(LcpConfig::default());
        let request = options(&[LcpOption::Mru(64)]);
        assert_eq!(
            lcp.check_request(&request, true),
            RequestVerdict::Nak(options(&[LcpOption::Mru(MIN_MRU)]))
        );
        // Past Max-Failure a Nak is no longer allowed: RFC 1661 §4.6 says Reject.
        assert_eq!(
            lcp.check_request(&request, false),
            RequestVerdict::Reject(request.clone())
        );
        // The minimum itself is fine.
        let request = options(&[LcpOption::Mru(MIN_MRU)]);
        assert_eq!(lcp.check_request(&request, true), RequestVerdict::Ack);
    }

    #[test]
    fn a_large_peer_mru_is_acked_and_our_mtu_clamped_to_the_link() {
        for mru in [1500, 65535] {
            let mut lcp = policy(LcpConfig::default());
            let request = options(&[LcpOption::Mru(mru), LcpOption::MagicNumber(7)]);
            assert_eq!(lcp.check_request(&request, true), RequestVerdict::Ack);
            let negotiated = lcp.negotiated();
            assert_eq!(negotiated.peer_mru, Some(mru));
            assert_eq!(negotiated.peer_magic, Some(7));
            assert_eq!(negotiated.mtu(PPPOE_MRU), 1492, "peer MRU {mru}");
            assert_eq!(negotiated.mtu(1500), 1500, "peer MRU {mru}");
        }
        // A peer that names no MRU gets the RFC default, still clamped.
        let mut lcp = policy(LcpConfig::default());
        let request = options(&[LcpOption::MagicNumber(7)]);
        assert_eq!(lcp.check_request(&request, true), RequestVerdict::Ack);
        assert_eq!(lcp.negotiated().mtu(PPPOE_MRU), 1492);
        assert_eq!(lcp.negotiated().mtu(1500), DEFAULT_MRU);
    }

    #[test]
    fn pap_when_only_chap_is_allowed_is_naked_to_chap_md5() {
        let mut lcp = policy(LcpConfig {
            allow_pap: false,
            ..LcpConfig::default()
        });
        let request = options(&[LcpOption::AuthProtocol(AuthProtocol::Pap)]);
        assert_eq!(
            lcp.check_request(&request, true),
            RequestVerdict::Nak(options(&[LcpOption::AuthProtocol(AuthProtocol::Chap {
                algorithm: 5
            })]))
        );
    }

    #[test]
    fn chap_md5_when_only_pap_is_allowed_is_naked_to_pap() {
        let mut lcp = policy(LcpConfig {
            allow_chap: false,
            ..LcpConfig::default()
        });
        let request = options(&[LcpOption::AuthProtocol(AuthProtocol::Chap { algorithm: 5 })]);
        assert_eq!(
            lcp.check_request(&request, true),
            RequestVerdict::Nak(options(&[LcpOption::AuthProtocol(AuthProtocol::Pap)]))
        );
    }

    #[test]
    fn ms_chap_v2_is_naked_to_chap_md5() {
        let mut lcp = policy(LcpConfig::default());
        let request = options(&[
            LcpOption::Mru(1492),
            LcpOption::AuthProtocol(AuthProtocol::Chap { algorithm: 0x81 }),
        ]);
        assert_eq!(
            lcp.check_request(&request, true),
            RequestVerdict::Nak(options(&[LcpOption::AuthProtocol(AuthProtocol::Chap {
                algorithm: 5
            })]))
        );
        // Without Naks left, the method we cannot do is rejected.
        assert_eq!(
            lcp.check_request(&request, false),
            RequestVerdict::Reject(options(&[LcpOption::AuthProtocol(AuthProtocol::Chap {
                algorithm: 0x81
            })]))
        );
    }

    #[test]
    fn an_accepted_method_is_recorded() {
        let mut lcp = policy(LcpConfig::default());
        let request = options(&[LcpOption::AuthProtocol(AuthProtocol::Chap { algorithm: 5 })]);
        assert_eq!(lcp.check_request(&request, true), RequestVerdict::Ack);
        assert_eq!(lcp.negotiated().auth, Some(AuthMethod::ChapMd5));
        let request = options(&[LcpOption::AuthProtocol(AuthProtocol::Pap)]);
        assert_eq!(lcp.check_request(&request, true), RequestVerdict::Ack);
        assert_eq!(lcp.negotiated().auth, Some(AuthMethod::Pap));
    }

    #[test]
    fn auth_with_no_method_allowed_is_rejected() {
        let mut lcp = policy(LcpConfig {
            allow_pap: false,
            allow_chap: false,
            ..LcpConfig::default()
        });
        for auth in [
            AuthProtocol::Pap,
            AuthProtocol::Chap { algorithm: 5 },
            AuthProtocol::Eap,
        ] {
            let rejected = options(&[LcpOption::AuthProtocol(auth)]);
            let request = options(&[
                LcpOption::Mru(1492),
                LcpOption::AuthProtocol(auth),
                LcpOption::MagicNumber(7),
            ]);
            assert_eq!(
                lcp.check_request(&request, true),
                RequestVerdict::Reject(rejected),
                "{auth}"
            );
        }
    }

    #[test]
    fn a_malformed_list_rejects_everything_from_the_bad_option_on() {
        let mut lcp = policy(LcpConfig::default());
        let mut request = options(&[LcpOption::Mru(1492), LcpOption::MagicNumber(7)]);
        // Authentication-Protocol whose length byte (10) runs past the end.
        let overrun = [0x03, 0x0a, 0xc0, 0x23];
        request.extend_from_slice(&overrun);
        assert_eq!(
            lcp.check_request(&request, true),
            RequestVerdict::Reject(overrun.to_vec())
        );
        // A length below 2 in the middle: it and everything after it.
        let mut request = options(&[LcpOption::Mru(1492)]);
        let tail = [0x05, 0x01, 0x01, 0x04, 0x05, 0xd4];
        request.extend_from_slice(&tail);
        assert_eq!(
            lcp.check_request(&request, true),
            RequestVerdict::Reject(tail.to_vec())
        );
    }

    #[test]
    fn a_known_option_of_the_wrong_length_is_rejected_alone() {
        let mut lcp = policy(LcpConfig::default());
        // MRU with three bytes of data, well framed: only it is rejected.
        let bad_mru = [0x01, 0x05, 0x05, 0xd4, 0x00];
        let mut request = bad_mru.to_vec();
        LcpOption::MagicNumber(7).push_to(&mut request);
        LcpOption::Pfc.push_to(&mut request);
        let mut expected = bad_mru.to_vec();
        LcpOption::Pfc.push_to(&mut expected);
        assert_eq!(
            lcp.check_request(&request, true),
            RequestVerdict::Reject(expected)
        );
    }

    #[test]
    fn a_zero_magic_is_naked_with_a_usable_one() {
        let mut lcp = policy(LcpConfig::default());
        let ours = lcp.magic();
        let request = options(&[LcpOption::MagicNumber(0)]);
        let RequestVerdict::Nak(nak) = lcp.check_request(&request, true) else {
            panic!("a zero magic must be Nak'd");
        };
        let suggested: Vec<_> = LcpOption::iter(&nak).collect();
        let [Ok(LcpOption::MagicNumber(suggested))] = suggested.as_slice() else {
            panic!("Nak carries one Magic-Number: {nak:02x?}");
        };
        assert_ne!(*suggested, 0);
        assert_ne!(*suggested, lcp.magic());
        // Zero is not a collision: our own number stays and no loopback is suspected.
        assert_eq!(lcp.magic(), ours);
        assert!(!lcp.loopback_detected());
        assert_eq!(
            lcp.check_request(&request, false),
            RequestVerdict::Reject(request.clone())
        );
    }

    #[test]
    fn our_own_magic_five_times_is_a_loopback() {
        let mut lcp = policy(LcpConfig::default());
        for round in 1..=5 {
            let ours = lcp.magic();
            assert_ne!(ours, 0);
            let request = options(&[LcpOption::Mru(1492), LcpOption::MagicNumber(ours)]);
            let RequestVerdict::Nak(nak) = lcp.check_request(&request, true) else {
                panic!("round {round}: our own magic must be Nak'd");
            };
            // A new number for us, and a different one suggested to the peer.
            let fresh = lcp.magic();
            assert_ne!(fresh, ours, "round {round}");
            assert_ne!(nak, options(&[LcpOption::MagicNumber(fresh)]));
            assert_ne!(nak, options(&[LcpOption::MagicNumber(0)]));
            assert_eq!(
                our_request(&mut lcp),
                options(&[LcpOption::Mru(1492), LcpOption::MagicNumber(fresh)])
            );
            assert_eq!(lcp.loopback_detected(), round >= 5, "round {round}");
        }
    }

    #[test]
    fn a_distinct_magic_between_collisions_restarts_the_count() {
        let mut lcp = policy(LcpConfig::default());
        let collide = |lcp: &mut LcpPolicy| {
            let request = options(&[LcpOption::MagicNumber(lcp.magic())]);
            assert!(matches!(
                lcp.check_request(&request, true),
                RequestVerdict::Nak(_)
            ));
        };
        for _ in 0..4 {
            collide(&mut lcp);
        }
        let other = lcp.magic() ^ 1;
        let request = options(&[LcpOption::MagicNumber(other)]);
        assert_eq!(lcp.check_request(&request, true), RequestVerdict::Ack);
        for _ in 0..4 {
            collide(&mut lcp);
        }
        assert!(!lcp.loopback_detected());
        collide(&mut lcp);
        assert!(lcp.loopback_detected());
    }

    #[test]
    fn a_nak_of_mru_1500_is_adopted_and_one_of_64_ignored() {
        let mut lcp = policy(LcpConfig::default());
        let magic = lcp.magic();
        assert_eq!(lcp.handle_nak(&options(&[LcpOption::Mru(1500)])), Ok(()));
        assert_eq!(
            our_request(&mut lcp),
            options(&[LcpOption::Mru(1500), LcpOption::MagicNumber(magic)])
        );

        let mut lcp = policy(LcpConfig::default());
        let magic = lcp.magic();
        for mru in [64, 127, 9000] {
            assert_eq!(lcp.handle_nak(&options(&[LcpOption::Mru(mru)])), Ok(()));
            assert_eq!(
                our_request(&mut lcp),
                options(&[LcpOption::Mru(1492), LcpOption::MagicNumber(magic)]),
                "Nak of MRU {mru}"
            );
        }
    }

    #[test]
    fn a_nak_of_magic_draws_a_new_one() {
        let mut lcp = policy(LcpConfig::default());
        let magic = lcp.magic();
        assert_eq!(
            lcp.handle_nak(&options(&[LcpOption::MagicNumber(magic)])),
            Ok(())
        );
        assert_ne!(lcp.magic(), magic);
        assert_ne!(lcp.magic(), 0);
    }

    #[test]
    fn a_reject_of_mru_and_magic_stops_asking_for_them() {
        let mut lcp = policy(LcpConfig::default());
        let request = our_request(&mut lcp);
        assert_eq!(
            request,
            options(&[LcpOption::Mru(1492), LcpOption::MagicNumber(lcp.magic())])
        );
        assert_eq!(lcp.handle_reject(&request), Ok(()));
        assert_eq!(our_request(&mut lcp), Vec::<u8>::new());
        assert_eq!(lcp.magic(), 0, "no magic for echoes either");
        // A new negotiation asks again.
        lcp.reset();
        assert_eq!(our_request(&mut lcp).len(), 4 + 6);
    }

    #[test]
    fn an_ack_records_what_we_asked() {
        let mut lcp = policy(LcpConfig::default());
        let request = our_request(&mut lcp);
        let magic = lcp.magic();
        lcp.handle_ack(&request);
        assert_eq!(lcp.negotiated().our_mru, Some(1492));
        assert_eq!(lcp.negotiated().our_magic, Some(magic));
        assert_eq!(lcp.magic(), magic);
    }

    #[test]
    fn set_link_max_makes_the_next_request_ask_for_it() {
        // Configured for 1500, but the link carries 1492 until RFC 4638 is confirmed.
        let mut lcp = policy(LcpConfig {
            mru: 1500,
            ..LcpConfig::default()
        });
        let magic = lcp.magic();
        assert_eq!(
            our_request(&mut lcp),
            options(&[LcpOption::Mru(1492), LcpOption::MagicNumber(magic)])
        );
        lcp.set_link_max(1500, 1500);
        assert_eq!(lcp.config().link_max, 1500);
        assert_eq!(
            our_request(&mut lcp),
            options(&[LcpOption::Mru(1500), LcpOption::MagicNumber(magic)])
        );
        // And it survives the reset at the start of the negotiation.
        lcp.reset();
        assert_eq!(
            our_request(&mut lcp),
            options(&[LcpOption::Mru(1500), LcpOption::MagicNumber(lcp.magic())])
        );
    }
}
