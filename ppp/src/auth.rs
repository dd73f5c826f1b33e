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
    Success { method: AuthMethod, message: String },
    Failure { method: AuthMethod, message: String },
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
                    self.fail(format!("no answer to {sent} PAP Authenticate-Requests"));
                } else {
                    self.send_pap_request(now);
                }
            }
            State::ChapWaiting { deadline, answered } if now >= deadline => {
                let message = match answered {
                    None => "no CHAP Challenge from the peer".to_string(),
                    Some(_) => "no CHAP Success or Failure after our Response".to_string(),
                };
                self.fail(message);
            }
            _ => {}
        }
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
        let State::PapRequesting { identifier, .. } = self.state else {
            return false;
        };
        if self.method != AuthMethod::Pap || packet.identifier != identifier {
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
}
