//! The IPv6CP policy (RFC 5072): negotiate random, non-zero, distinct interface
//! identifiers for the two ends, from which the link-local addresses follow.

use portdial_protocol::ipv6cp::Ipv6cpOption;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use crate::fsm::{Policy, RequestVerdict};
use crate::lcp::judge_options;

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
        let ours = self.want;
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
