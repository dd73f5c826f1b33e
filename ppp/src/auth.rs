//! The client side of PAP (RFC 1334) and CHAP with MD5 (RFC 1994).
//!
//! PAP: we send Authenticate-Request and retransmit it on the restart interval
//! until Ack or Nak (pppd: pap-restart 3 s, pap-max-authreq 10). CHAP: we wait
//! for the AC's Challenge and answer every one, also re-challenges after the
//! link is up.

use std::fmt;
use std::time::{Duration, Instant};

use portdial_protocol::chap;
use portdial_protocol::control;
use portdial_protocol::pap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    Pap,
    ChapMd5,
}

impl AuthMethod {
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Pap => "pap",
            AuthMethod::ChapMd5 => "chap-md5",
        }
    }
}

/// A password that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub user: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthConfig {
    pub restart_interval: Duration,
    /// Authenticate-Requests sent before PAP gives up.
    pub max_requests: u32,
    /// How long to wait for the AC's CHAP Challenge.
    pub challenge_timeout: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            restart_interval: Duration::from_secs(3),
            max_requests: 10,
            challenge_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Success {
        method: AuthMethod,
        message: String,
    },
    /// The peer refused our credentials (PAP Nak, CHAP Failure).
    Failure {
        method: AuthMethod,
        message: String,
    },
    /// The peer never answered: not a verdict on the credentials.
    NoAnswer {
        method: AuthMethod,
        message: String,
    },
}

#[derive(Debug)]
enum State {
    /// PAP: a request is out, retransmitted at `deadline`.
    PapRequesting {
        identifier: u8,
        sent: u32,
        deadline: Instant,
    },
    /// CHAP: waiting for a Challenge, or for Success/Failure after a Response.
    ChapWaiting {
        deadline: Instant,
        answered: Option<u8>,
    },
    /// Authentication finished; CHAP may still re-challenge.
    Done,
}

/// One run of authentication, created when LCP opens with an agreed method.
#[derive(Debug)]
pub struct Authenticator {
    method: AuthMethod,
    credentials: Credentials,
    config: AuthConfig,
    state: State,
    next_identifier: u8,
    outcome: Option<AuthOutcome>,
    transmit: Vec<Vec<u8>>,
    /// Challenges answered after authentication succeeded.
    pub rechallenges: u32,
}

impl Authenticator {
    pub fn start(
        now: Instant,
        method: AuthMethod,
        credentials: Credentials,
        config: AuthConfig,
        first_identifier: u8,
    ) -> Authenticator {
        let state = match method {
            AuthMethod::Pap => State::PapRequesting {
                identifier: first_identifier,
                sent: 0,
                deadline: now,
            },
            AuthMethod::ChapMd5 => State::ChapWaiting {
                deadline: now + config.challenge_timeout,
                answered: None,
            },
        };
        let mut auth = Authenticator {
            method,
            credentials,
            config,
            state,
            next_identifier: first_identifier,
            outcome: None,
            transmit: Vec::new(),
            rechallenges: 0,
        };
        if method == AuthMethod::Pap {
            auth.send_pap_request(now);
        }
        auth
    }

    pub fn method(&self) -> AuthMethod {
        self.method
    }

    /// The result, once there is one (taken by the session).
    pub fn take_outcome(&mut self) -> Option<AuthOutcome> {
        self.outcome.take()
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.transmit.is_empty()).then(|| self.transmit.remove(0))
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::PapRequesting { deadline, .. } | State::ChapWaiting { deadline, .. } => {
                Some(deadline)
            }
            State::Done => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::PapRequesting { sent, deadline, .. } if now >= deadline => {
                if sent >= self.config.max_requests {
                    self.no_answer(format!("no answer to {sent} PAP Authenticate-Requests"));
                } else {
                    self.send_pap_request(now);
                }
            }
            State::ChapWaiting { deadline, answered } if now >= deadline => {
                let message = match answered {
                    None => "no CHAP Challenge from the peer".to_string(),
                    Some(_) => "no CHAP Success or Failure after our Response".to_string(),
                };
                self.no_answer(message);
            }
            _ => {}
        }
    }

    fn no_answer(&mut self, message: String) {
        self.state = State::Done;
        self.outcome = Some(AuthOutcome::NoAnswer {
            method: self.method,
            message,
        });
    }

    fn fail(&mut self, message: String) {
        self.state = State::Done;
        self.outcome = Some(AuthOutcome::Failure {
            method: self.method,
            message,
        });
    }

    fn succeed(&mut self, message: String) {
        self.state = State::Done;
        self.outcome = Some(AuthOutcome::Success {
            method: self.method,
            message,
        });
    }

    fn send_pap_request(&mut self, now: Instant) {
        let identifier = self.next_identifier;
        self.next_identifier = self.next_identifier.wrapping_add(1);
        let sent = match self.state {
            State::PapRequesting { sent, .. } => sent + 1,
            _ => 1,
        };
        let repr = pap::Repr::AuthenticateRequest {
            peer_id: self.credentials.user.as_bytes(),
            password: self.credentials.password.expose().as_bytes(),
        };
        self.transmit.push(repr.to_packet(identifier));
        self.state = State::PapRequesting {
            identifier,
            sent,
            deadline: now + self.config.restart_interval,
        };
    }

    /// Feeds a PAP packet. Returns false when it was not acceptable (wrong id,
    /// wrong code, not expected now) and was dropped.
    pub fn handle_pap(&mut self, packet: &control::Repr<'_>) -> bool {
        let State::PapRequesting {
            identifier, sent, ..
        } = self.state
        else {
            return false;
        };
        // An answer to any request of this run counts (a late Ack of an
        // earlier, identical request is still an Ack, as pppd takes it);
        // identifiers we never sent do not.
        let age = identifier.wrapping_sub(packet.identifier);
        if self.method != AuthMethod::Pap || u32::from(age) >= sent {
            return false;
        }
        match pap::Repr::parse(packet) {
            Ok(pap::Repr::AuthenticateAck { message }) => self.succeed(lossy(message)),
            Ok(pap::Repr::AuthenticateNak { message }) => self.fail(lossy(message)),
            _ => return false,
        }
        true
    }

    /// Feeds a CHAP packet. Returns false when it was dropped.
    pub fn handle_chap(&mut self, now: Instant, packet: &control::Repr<'_>) -> bool {
        if self.method != AuthMethod::ChapMd5 {
            return false;
        }
        match chap::Repr::parse(packet) {
            Ok(chap::Repr::Challenge { value, .. }) => {
                let response = chap_md5_response(
                    packet.identifier,
                    self.credentials.password.expose().as_bytes(),
                    value,
                );
                let repr = chap::Repr::Response {
                    value: &response,
                    name: self.credentials.user.as_bytes(),
                };
                self.transmit.push(repr.to_packet(packet.identifier));
                match self.state {
                    State::Done => self.rechallenges += 1,
                    _ => {
                        self.state = State::ChapWaiting {
                            deadline: now + self.config.challenge_timeout,
                            answered: Some(packet.identifier),
                        }
                    }
                }
                true
            }
            // pppd sends Success/Failure with the Challenge's id; after a
            // re-challenge the link is already up, so a Success changes nothing
            // and a Failure ends it.
            Ok(chap::Repr::Success { message }) => match self.state {
                State::ChapWaiting {
                    answered: Some(id), ..
                } if id == packet.identifier => {
                    self.succeed(lossy(message));
                    true
                }
                State::Done => true,
                _ => false,
            },
            Ok(chap::Repr::Failure { message }) => match self.state {
                State::ChapWaiting {
                    answered: Some(id), ..
                } if id != packet.identifier => false,
                State::ChapWaiting { answered: None, .. } => false,
                _ => {
                    self.fail(lossy(message));
                    true
                }
            },
            _ => false,
        }
    }
}

/// RFC 1994 §4.1 with MD5: MD5(identifier || secret || challenge).
pub fn chap_md5_response(identifier: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut context = md5::Context::new();
    context.consume([identifier]);
    context.consume(secret);
    context.consume(challenge);
    context.finalize().0
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chap_md5_matches_rfc_1994_construction() {
        // Computed independently: printf '\x01secret\x00\x01\x02\x03' | md5sum
        let response = chap_md5_response(1, b"secret", &[0, 1, 2, 3]);
        assert_eq!(hex::encode(response), CHAP_EXPECTED);
    }

    const CHAP_EXPECTED: &str = "e82cb2ed1efe04893c9cf73d4dd12e2d";

    // ---- PAP retransmission, identifiers, CHAP timeouts and re-challenges ----
    // Packets built with portdial_protocol's pap/chap Reprs (constructed, not captured).

    const SECOND: Duration = Duration::from_secs(1);

    fn credentials() -> Credentials {
        Credentials {
            user: "alice".into(),
            password: Secret::new("wonderland"),
        }
    }

    fn config() -> AuthConfig {
        AuthConfig {
            restart_interval: 3 * SECOND,
            max_requests: 3,
            challenge_timeout: 30 * SECOND,
        }
    }

    fn sent(auth: &mut Authenticator) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| auth.poll_transmit()).collect()
    }

    /// The identifier of a PAP Authenticate-Request, checking it carries our credentials.
    fn pap_request_identifier(packet: &[u8]) -> u8 {
        let control = control::Repr::parse_bytes(packet).unwrap();
        assert_eq!(
            pap::Repr::parse(&control).unwrap(),
            pap::Repr::AuthenticateRequest {
                peer_id: b"alice",
                password: b"wonderland",
            }
        );
        control.identifier
    }

    fn feed_pap(auth: &mut Authenticator, repr: pap::Repr<'_>, identifier: u8) -> bool {
        let bytes = repr.to_packet(identifier);
        auth.handle_pap(&control::Repr::parse_bytes(&bytes).unwrap())
    }

    fn feed_chap(
        auth: &mut Authenticator,
        now: Instant,
        repr: chap::Repr<'_>,
        identifier: u8,
    ) -> bool {
        let bytes = repr.to_packet(identifier);
        auth.handle_chap(now, &control::Repr::parse_bytes(&bytes).unwrap())
    }

    fn no_answer(method: AuthMethod, message: &str) -> Option<AuthOutcome> {
        Some(AuthOutcome::NoAnswer {
            method,
            message: message.into(),
        })
    }

    fn failure(method: AuthMethod, message: &str) -> Option<AuthOutcome> {
        Some(AuthOutcome::Failure {
            method,
            message: message.into(),
        })
    }

    #[test]
    fn pap_retransmits_with_a_new_identifier_then_gives_up() {
        let start = Instant::now();
        let mut auth = Authenticator::start(start, AuthMethod::Pap, credentials(), config(), 0xfe);
        let first = sent(&mut auth);
        assert_eq!(first.len(), 1);
        assert_eq!(pap_request_identifier(&first[0]), 0xfe);
        assert_eq!(auth.poll_timeout(), Some(start + 3 * SECOND));
        // Nothing before the restart interval is up.
        auth.handle_timeout(start + 2 * SECOND);
        assert!(sent(&mut auth).is_empty());
        // One request per interval, each with the next identifier (wrapping).
        for (at, identifier) in [(3, 0xff), (6, 0x00)] {
            auth.handle_timeout(start + at * SECOND);
            let again = sent(&mut auth);
            assert_eq!(again.len(), 1, "at {at} s");
            assert_eq!(pap_request_identifier(&again[0]), identifier, "at {at} s");
            assert_eq!(auth.poll_timeout(), Some(start + (at + 3) * SECOND));
            assert_eq!(auth.take_outcome(), None);
        }
        // max_requests (3) sent: the next expiry is the end.
        auth.handle_timeout(start + 9 * SECOND);
        assert!(sent(&mut auth).is_empty());
        assert_eq!(
            auth.take_outcome(),
            no_answer(AuthMethod::Pap, "no answer to 3 PAP Authenticate-Requests")
        );
        assert_eq!(auth.poll_timeout(), None);
    }

    #[test]
    fn pap_answers_with_a_wrong_identifier_are_ignored() {
        let start = Instant::now();
        let mut auth = Authenticator::start(start, AuthMethod::Pap, credentials(), config(), 10);
        sent(&mut auth);
        let ack = pap::Repr::AuthenticateAck { message: b"ok" };
        let nak = pap::Repr::AuthenticateNak { message: b"no" };
        assert!(!feed_pap(&mut auth, ack, 11));
        assert!(!feed_pap(&mut auth, nak, 9));
        assert_eq!(auth.take_outcome(), None);
        // After a retransmission, an answer to either request counts (pppd
        // takes a late Ack); one to an identifier never sent does not.
        auth.handle_timeout(start + 3 * SECOND);
        assert_eq!(pap_request_identifier(&sent(&mut auth)[0]), 11);
        assert!(!feed_pap(&mut auth, ack, 12));
        assert!(!feed_pap(&mut auth, ack, 9));
        assert_eq!(auth.take_outcome(), None);
        assert!(feed_pap(&mut auth, ack, 10));
        assert_eq!(
            auth.take_outcome(),
            Some(AuthOutcome::Success {
                method: AuthMethod::Pap,
                message: "ok".into()
            })
        );
        // Done: a duplicate Ack is not acted on again.
        assert!(!feed_pap(&mut auth, ack, 11));
        assert_eq!(auth.poll_timeout(), None);
    }

    #[test]
    fn pap_nak_with_the_right_identifier_fails_with_its_message() {
        let start = Instant::now();
        let mut auth = Authenticator::start(start, AuthMethod::Pap, credentials(), config(), 10);
        let nak = pap::Repr::AuthenticateNak {
            message: b"Login incorrect",
        };
        assert!(feed_pap(&mut auth, nak, 10));
        assert_eq!(
            auth.take_outcome(),
            failure(AuthMethod::Pap, "Login incorrect")
        );
    }

    #[test]
    fn chap_without_a_challenge_fails_after_the_timeout() {
        let start = Instant::now();
        let mut auth = Authenticator::start(start, AuthMethod::ChapMd5, credentials(), config(), 0);
        assert!(sent(&mut auth).is_empty(), "CHAP waits for the AC");
        assert_eq!(auth.poll_timeout(), Some(start + 30 * SECOND));
        auth.handle_timeout(start + 29 * SECOND);
        assert_eq!(auth.take_outcome(), None);
        auth.handle_timeout(start + 30 * SECOND);
        assert_eq!(
            auth.take_outcome(),
            no_answer(AuthMethod::ChapMd5, "no CHAP Challenge from the peer")
        );
    }

    #[test]
    fn chap_without_a_verdict_after_our_response_fails_after_the_timeout() {
        let start = Instant::now();
        let mut auth = Authenticator::start(start, AuthMethod::ChapMd5, credentials(), config(), 0);
        let at = start + 5 * SECOND;
        let challenge = chap::Repr::Challenge {
            value: &[9; 16],
            name: b"ac",
        };
        assert!(feed_chap(&mut auth, at, challenge, 3));
        assert_eq!(sent(&mut auth).len(), 1);
        // The wait restarts from the Challenge.
        assert_eq!(auth.poll_timeout(), Some(at + 30 * SECOND));
        auth.handle_timeout(at + 30 * SECOND);
        assert_eq!(
            auth.take_outcome(),
            no_answer(
                AuthMethod::ChapMd5,
                "no CHAP Success or Failure after our Response"
            )
        );
    }

    #[test]
    fn chap_failure_or_success_before_any_challenge_is_ignored() {
        let start = Instant::now();
        let mut auth = Authenticator::start(start, AuthMethod::ChapMd5, credentials(), config(), 0);
        let failure_repr = chap::Repr::Failure { message: b"early" };
        let success = chap::Repr::Success { message: b"early" };
        assert!(!feed_chap(&mut auth, start, failure_repr, 1));
        assert!(!feed_chap(&mut auth, start, success, 1));
        assert_eq!(auth.take_outcome(), None);
        assert!(sent(&mut auth).is_empty());
        // The real exchange still works afterwards.
        let challenge = chap::Repr::Challenge {
            value: &[1; 16],
            name: b"ac",
        };
        assert!(feed_chap(&mut auth, start, challenge, 1));
        assert!(feed_chap(&mut auth, start, success, 1));
        assert!(matches!(
            auth.take_outcome(),
            Some(AuthOutcome::Success { .. })
        ));
    }

    #[test]
    fn chap_rechallenge_after_success_is_answered() {
        let start = Instant::now();
        let mut auth = Authenticator::start(start, AuthMethod::ChapMd5, credentials(), config(), 0);
        let check_response = |packet: &[u8], identifier: u8, value: &[u8]| {
            let control = control::Repr::parse_bytes(packet).unwrap();
            assert_eq!(control.identifier, identifier);
            let expected = chap_md5_response(identifier, b"wonderland", value);
            assert_eq!(
                chap::Repr::parse(&control).unwrap(),
                chap::Repr::Response {
                    value: &expected,
                    name: b"alice",
                }
            );
        };
        let first = [0x11; 16];
        let challenge = chap::Repr::Challenge {
            value: &first,
            name: b"ac",
        };
        assert!(feed_chap(&mut auth, start, challenge, 7));
        check_response(&sent(&mut auth)[0], 7, &first);
        let success = chap::Repr::Success {
            message: b"welcome",
        };
        assert!(feed_chap(&mut auth, start, success, 7));
        assert_eq!(
            auth.take_outcome(),
            Some(AuthOutcome::Success {
                method: AuthMethod::ChapMd5,
                message: "welcome".into()
            })
        );
        assert_eq!(auth.rechallenges, 0);
        assert_eq!(auth.poll_timeout(), None);

        // RFC 1994 §2: the authenticator may challenge again at any time.
        let later = start + 600 * SECOND;
        let second = [0x22; 20];
        let rechallenge = chap::Repr::Challenge {
            value: &second,
            name: b"ac",
        };
        assert!(feed_chap(&mut auth, later, rechallenge, 8));
        let responses = sent(&mut auth);
        assert_eq!(responses.len(), 1);
        check_response(&responses[0], 8, &second);
        assert_eq!(auth.rechallenges, 1);
        // The link is already up: Success changes nothing, no timer runs.
        assert!(feed_chap(&mut auth, later, success, 8));
        assert_eq!(auth.take_outcome(), None);
        assert_eq!(auth.poll_timeout(), None);
        // A Failure of a re-challenge ends the link.
        assert!(feed_chap(&mut auth, later, rechallenge, 9));
        assert_eq!(auth.rechallenges, 2);
        let denied = chap::Repr::Failure { message: b"denied" };
        assert!(feed_chap(&mut auth, later, denied, 9));
        assert_eq!(auth.take_outcome(), failure(AuthMethod::ChapMd5, "denied"));
    }

    #[test]
    fn packets_of_the_other_method_are_dropped() {
        let start = Instant::now();
        let mut pap_auth = Authenticator::start(start, AuthMethod::Pap, credentials(), config(), 1);
        let challenge = chap::Repr::Challenge {
            value: &[1; 16],
            name: b"ac",
        };
        assert!(!feed_chap(&mut pap_auth, start, challenge, 1));
        let mut chap_auth =
            Authenticator::start(start, AuthMethod::ChapMd5, credentials(), config(), 1);
        let ack = pap::Repr::AuthenticateAck { message: b"ok" };
        assert!(!feed_pap(&mut chap_auth, ack, 1));
        assert_eq!(chap_auth.take_outcome(), None);
    }
}
