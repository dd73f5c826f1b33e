//! The IPv6CP policy (RFC 5072): negotiate random, non-zero, distinct interface
//! identifiers for the two ends, from which the link-local addresses follow.

use portdial_protocol::ipv6cp::Ipv6cpOption;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use crate::fsm::{Policy, RequestVerdict};
use crate::lcp::{judge_options, named};

pub type InterfaceId = [u8; 8];

const ZERO: InterfaceId = [0; 8];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ipv6cpNegotiated {
    pub local: Option<InterfaceId>,
    pub peer: Option<InterfaceId>,
}

#[derive(Debug)]
pub struct Ipv6cpPolicy {
    rng: ChaCha8Rng,
    want: Option<InterfaceId>,
    /// Kept when the peer rejects the option: the link-local address still needs one.
    local: InterfaceId,
    peer: Option<InterfaceId>,
}

impl Ipv6cpPolicy {
    pub fn new(rng: ChaCha8Rng) -> Ipv6cpPolicy {
        let mut policy = Ipv6cpPolicy {
            rng,
            want: None,
            local: ZERO,
            peer: None,
        };
        policy.reset();
        policy
    }

    pub fn negotiated(&self) -> Ipv6cpNegotiated {
        Ipv6cpNegotiated {
            local: Some(self.local),
            peer: self.peer,
        }
    }

    /// A random identifier that is neither zero nor equal to `avoid`.
    fn draw(&mut self, avoid: &[Option<InterfaceId>]) -> InterfaceId {
        loop {
            let mut id = ZERO;
            self.rng.fill_bytes(&mut id);
            if id != ZERO && !avoid.contains(&Some(id)) {
                return id;
            }
        }
    }
}

impl Policy for Ipv6cpPolicy {
    fn name(&self) -> &'static str {
        "IPv6CP"
    }

    fn reset(&mut self) {
        self.peer = None;
        self.local = self.draw(&[]);
        self.want = Some(self.local);
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(id) = self.want {
            Ipv6cpOption::InterfaceIdentifier(id).push_to(out);
        }
    }

    fn check_request(&mut self, options: &[u8], nak_allowed: bool) -> RequestVerdict {
        let mut peer = None;
        // Our identifier also when we stopped asking for it (the peer rejected
        // the option): the peer must still not take it.
        let ours = Some(self.local);
        // RFC 5072 §4.1: a zero identifier, or one equal to ours, is Nak'd with a
        // suggestion that is neither.
        let fresh = self.draw(&[ours]);
        let verdicts =
            judge_options(
                options,
                Ipv6cpOption::parse,
                |option, raw, verdicts| match option {
                    Ipv6cpOption::InterfaceIdentifier(id) if id != ZERO && Some(id) != ours => {
                        peer = Some(id)
                    }
                    Ipv6cpOption::InterfaceIdentifier(_) if nak_allowed => {
                        Ipv6cpOption::InterfaceIdentifier(fresh).push_to(&mut verdicts.nak)
                    }
                    _ => verdicts.reject_raw(raw),
                },
            );
        let verdict = verdicts.into_verdict();
        if matches!(verdict, RequestVerdict::Ack) {
            self.peer = peer;
        }
        verdict
    }

    fn handle_ack(&mut self, _options: &[u8]) {}

    fn option_name(&self, kind: u8) -> Option<&'static str> {
        named(portdial_protocol::ipv6cp::kind_name(kind))
    }

    fn handle_nak(&mut self, options: &[u8]) -> Result<(), String> {
        for option in Ipv6cpOption::iter(options).flatten() {
            if let Ipv6cpOption::InterfaceIdentifier(id) = option {
                let id = if id != ZERO && Some(id) != self.peer {
                    id
                } else {
                    self.draw(&[self.peer, self.want])
                };
                self.want = Some(id);
                self.local = id;
            }
        }
        Ok(())
    }

    fn handle_reject(&mut self, options: &[u8]) -> Result<(), String> {
        // A peer that will not negotiate identifiers: keep ours for the link-local
        // address, just stop asking.
        for option in Ipv6cpOption::iter(options).flatten() {
            if let Ipv6cpOption::InterfaceIdentifier(_) = option {
                self.want = None;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The policy alone, through the `fsm::Policy` trait, on option lists built
    //! with portdial_protocol's `Ipv6cpOption` (constructed, not captured).

    use super::*;
    use rand::SeedableRng;

    const PEER_ID: InterfaceId = [0x02, 0, 0x5e, 0xff, 0xfe, 0, 0x53, 0x01];

    fn policy(seed: u8) -> Ipv6cpPolicy {
        Ipv6cpPolicy::new(ChaCha8Rng::from_seed([seed; 32]))
    }

    fn id_option(id: InterfaceId) -> Vec<u8> {
        let mut out = Vec::new();
        Ipv6cpOption::InterfaceIdentifier(id).push_to(&mut out);
        out
    }

    fn our_request(policy: &mut Ipv6cpPolicy) -> Vec<u8> {
        let mut out = Vec::new();
        policy.build_request(&mut out);
        out
    }

    /// The identifier our next request asks for.
    fn asked_id(policy: &mut Ipv6cpPolicy) -> InterfaceId {
        let request = our_request(policy);
        let parsed: Vec<_> = Ipv6cpOption::iter(&request).collect();
        match parsed.as_slice() {
            [Ok(Ipv6cpOption::InterfaceIdentifier(id))] => *id,
            other => panic!("expected one Interface-Identifier, got {other:?}"),
        }
    }

    fn naked_id(verdict: RequestVerdict) -> InterfaceId {
        let RequestVerdict::Nak(nak) = verdict else {
            panic!("expected a Nak, got {verdict:?}");
        };
        let parsed: Vec<_> = Ipv6cpOption::iter(&nak).collect();
        match parsed.as_slice() {
            [Ok(Ipv6cpOption::InterfaceIdentifier(id))] => *id,
            other => panic!("expected one Interface-Identifier, got {other:?}"),
        }
    }

    #[test]
    fn our_identifier_is_random_and_not_zero() {
        let mut first = policy(1);
        let mut second = policy(2);
        let (a, b) = (asked_id(&mut first), asked_id(&mut second));
        assert_ne!(a, ZERO);
        assert_ne!(b, ZERO);
        assert_ne!(a, b, "different seeds, different identifiers");
        assert_eq!(first.negotiated().local, Some(a));
        assert_eq!(first.negotiated().peer, None);
        // A new negotiation draws a new one.
        first.reset();
        assert_ne!(asked_id(&mut first), a);
    }

    #[test]
    fn a_zero_or_equal_peer_identifier_is_naked_with_another() {
        let mut ipv6cp = policy(3);
        let ours = asked_id(&mut ipv6cp);
        for peer in [ZERO, ours] {
            let suggested = naked_id(ipv6cp.check_request(&id_option(peer), true));
            assert_ne!(suggested, ZERO);
            assert_ne!(suggested, ours);
            assert_eq!(ipv6cp.negotiated().peer, None);
            // Past Max-Failure: Reject.
            assert_eq!(
                ipv6cp.check_request(&id_option(peer), false),
                RequestVerdict::Reject(id_option(peer))
            );
        }
        // Judging the peer does not change what we ask for.
        assert_eq!(asked_id(&mut ipv6cp), ours);
    }

    #[test]
    fn a_distinct_peer_identifier_is_acked_and_recorded() {
        let mut ipv6cp = policy(4);
        assert_eq!(
            ipv6cp.check_request(&id_option(PEER_ID), true),
            RequestVerdict::Ack
        );
        assert_eq!(ipv6cp.negotiated().peer, Some(PEER_ID));
    }

    #[test]
    fn a_nak_suggesting_the_peers_identifier_makes_us_draw_another() {
        let mut ipv6cp = policy(5);
        let ours = asked_id(&mut ipv6cp);
        assert_eq!(
            ipv6cp.check_request(&id_option(PEER_ID), true),
            RequestVerdict::Ack
        );
        assert_eq!(ipv6cp.handle_nak(&id_option(PEER_ID)), Ok(()));
        let next = asked_id(&mut ipv6cp);
        assert_ne!(next, PEER_ID);
        assert_ne!(next, ZERO);
        assert_ne!(next, ours);
        assert_eq!(ipv6cp.negotiated().local, Some(next));
        // A zero suggestion is not taken either.
        assert_eq!(ipv6cp.handle_nak(&id_option(ZERO)), Ok(()));
        assert_ne!(asked_id(&mut ipv6cp), ZERO);
    }

    #[test]
    fn a_usable_nak_suggestion_is_taken() {
        let mut ipv6cp = policy(6);
        let suggestion = [0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55];
        assert_eq!(ipv6cp.handle_nak(&id_option(suggestion)), Ok(()));
        assert_eq!(asked_id(&mut ipv6cp), suggestion);
        assert_eq!(ipv6cp.negotiated().local, Some(suggestion));
    }

    #[test]
    fn a_reject_stops_asking_but_keeps_a_local_identifier() {
        let mut ipv6cp = policy(7);
        let ours = asked_id(&mut ipv6cp);
        assert_eq!(ipv6cp.handle_reject(&id_option(ours)), Ok(()));
        assert_eq!(our_request(&mut ipv6cp), Vec::<u8>::new());
        // The link-local address still needs an identifier.
        assert_eq!(ipv6cp.negotiated().local, Some(ours));
    }

    #[test]
    fn after_a_reject_a_peer_identifier_equal_to_ours_is_still_naked() {
        let mut ipv6cp = policy(8);
        let ours = asked_id(&mut ipv6cp);
        assert_eq!(ipv6cp.handle_reject(&id_option(ours)), Ok(()));
        // We still use `ours` for our link-local address: the peer must not take it.
        let suggested = naked_id(ipv6cp.check_request(&id_option(ours), true));
        assert_ne!(suggested, ours);
        assert_ne!(suggested, ZERO);
    }
}
