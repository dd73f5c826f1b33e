//! The PPPoE dialer as a deterministic, sans-IO machine.
//!
//! [`session::Session`] is the whole dialer: PPPoE discovery ([`discovery`]),
//! then the RFC 1661 automaton ([`fsm`]) running LCP ([`lcp`]), PAP or CHAP
//! ([`auth`]), IPCP ([`ipcp`]) and IPv6CP ([`ipv6cp`]). Nothing here opens a
//! socket, reads the clock or draws entropy: time is passed in, and randomness
//! comes from a caller-supplied seed.

#![forbid(unsafe_code)]

pub mod auth;
pub mod discovery;
pub mod fsm;
pub mod ipcp;
pub mod ipv6cp;
pub mod lcp;
pub mod session;
