//! The verdict on one port (claims 4 and 5 of CN102905292A), as a pure
//! function of what the data path saw, what the kernel says about the socket,
//! and the class's window — so every rule is tested without a network.
//!
//! Over the window:
//! - data sent and received → alive;
//! - only sent, or only received → link check: is a request/response exchange
//!   still progressing (our data acknowledged, the response to a request still
//!   arriving, UDP requests answered)? yes → alive, no → phantom;
//! - no traffic → idle, unless nobody holds the socket, or it sits in
//!   CLOSE-WAIT (the peer closed, the application never did), or it is bound
//!   to an address the session no longer has;
//! - while the terminal sleeps, a port that moves data → phantom.
//!
//! A port whose bad condition has not yet lasted a whole window is `suspect`.
//! Every verdict carries a one-line reason.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use super::sockets::SocketState;
use super::table::PortEntry;
use super::{Proto, Tick};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Alive,
    Idle,
    Suspect,
    Phantom,
    Released,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Alive => "alive",
            Verdict::Idle => "idle",
            Verdict::Suspect => "suspect",
            Verdict::Phantom => "phantom",
            Verdict::Released => "released",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: String,
}

impl Judgement {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Judgement {
        Judgement { verdict, reason: reason.into() }
    }
}

/// What the kernel says about the socket behind a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketView {
    pub proto: Proto,
    pub local: SocketAddr,
    pub state: SocketState,
    /// Some process holds the socket (its inode is in a /proc/PID/fd).
    pub has_owner: bool,
}

/// The circumstances of one judgement.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: Tick,
    pub window: Duration,
    /// When the terminal went to sleep, if it is asleep.
    pub asleep_since: Option<Tick>,
    /// The addresses the session has now.
    pub session_addresses: &'a [IpAddr],
}

/// A duration for people: "45s", "5m", "1h30m".
pub fn human(ms: u32) -> String {
    let seconds = ms / 1000;
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 if seconds % 60 == 0 => format!("{}m", seconds / 60),
        60..=3599 => format!("{}m{}s", seconds / 60, seconds % 60),
        _ if seconds % 3600 == 0 => format!("{}h", seconds / 3600),
        _ => format!("{}h{}m", seconds / 3600, (seconds % 3600) / 60),
    }
}

fn age(now: Tick, then: Tick) -> u32 {
    now.wrapping_sub(then)
}

fn within(now: Tick, then: Option<Tick>, window_ms: u32) -> bool {
    then.is_some_and(|then| age(now, then) <= window_ms)
}

/// Whether `address` is one the session has, its IPv4-mapped form, or a wildcard.
fn attributable(address: IpAddr, session: &[IpAddr]) -> bool {
    if address.is_unspecified() {
        return true;
    }
    let unmapped = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
        v4 => v4,
    };
    session.contains(&unmapped)
}

/// Judges one port. `entry` is what the data path accounted to it (None when
/// nothing crossed the session for it).
pub fn judge(entry: Option<&PortEntry>, socket: &SocketView, context: &Context<'_>) -> Judgement {
    let now = context.now;
    let window_ms = u32::try_from(context.window.as_millis()).unwrap_or(u32::MAX);
    let window = human(window_ms);

    if !attributable(socket.local.ip(), context.session_addresses) {
        return Judgement::new(
            Verdict::Phantom,
            format!("bound to {}, which the session no longer has", socket.local.ip()),
        );
    }
    if !socket.has_owner {
        return Judgement::new(Verdict::Phantom, "no process holds the socket any more");
    }
    if socket.state == SocketState::Listen {
        return Judgement::new(Verdict::Idle, "listening");
    }
    let Some(entry) = entry else {
        return Judgement::new(Verdict::Idle, "no traffic through the session yet");
    };
    // How long the port has been watched: a condition can only be said to
    // have lasted a window once the port has been seen that long.
    let observed = age(now, entry.first_seen);
    let long_enough = observed >= window_ms;
    let lasting = |what: String| {
        if long_enough {
            Judgement::new(Verdict::Phantom, what)
        } else {
            Judgement::new(Verdict::Suspect, format!("{what} (watched {} of the {window} window)", human(observed)))
        }
    };

    if let Some(since) = context.asleep_since {
        // Data at or after the moment the terminal went to sleep (wrapping ticks).
        let moved_while_asleep = [entry.last_tx_data, entry.last_rx_data]
            .into_iter()
            .flatten()
            .any(|t| (t.wrapping_sub(since) as i32) >= 0);
        if moved_while_asleep {
            return Judgement::new(
                Verdict::Phantom,
                format!("moves data while the terminal sleeps (asleep for {})", human(age(now, since))),
            );
        }
    }

    if socket.state == SocketState::CloseWait {
        let quiet_for = age(now, entry.last_tx.into_iter().chain(entry.last_rx).max().unwrap_or(entry.first_seen));
        let what = format!("CLOSE-WAIT for {}: the peer closed and the application never did", human(quiet_for));
        return if quiet_for >= window_ms {
            Judgement::new(Verdict::Phantom, what)
        } else {
            Judgement::new(Verdict::Suspect, what)
        };
    }

    let syn_only = socket.proto == Proto::Tcp && socket.state == SocketState::SynSent;
    let tx = within(now, entry.last_tx_data, window_ms) || (syn_only && within(now, entry.last_tx, window_ms));
    let rx = within(now, entry.last_rx_data, window_ms);
    match (tx, rx) {
        (true, true) => Judgement::new(Verdict::Alive, format!("sent and received data within {window}")),
        (false, false) => Judgement::new(Verdict::Idle, format!("no data either way within {window}")),
        (true, false) => match socket.proto {
            Proto::Tcp if syn_only || (entry.syn_tx > 0 && entry.rx_packets == 0) => {
                lasting(format!("tx only for {}, {} SYNs unanswered", human(observed), entry.syn_tx))
            }
            Proto::Tcp if within(now, entry.last_ack_progress, window_ms) => {
                Judgement::new(Verdict::Alive, "tx only, but the peer acknowledges our data")
            }
            Proto::Tcp => lasting(format!(
                "tx only for {}: {} data packets, the peer acknowledges nothing new",
                human(observed),
                entry.tx_data_packets
            )),
            Proto::Udp if within(now, entry.last_answer, window_ms) => {
                Judgement::new(Verdict::Alive, "UDP requests get responses")
            }
            Proto::Udp => lasting(format!(
                "tx only for {}: {} datagrams unanswered",
                human(observed),
                entry.udp_unanswered
            )),
        },
        (false, true) => match socket.proto {
            Proto::Tcp if entry.zero_window_since.is_some_and(|t| age(now, t) >= window_ms) => Judgement::new(
                Verdict::Phantom,
                format!(
                    "rx only: the application stopped reading (zero window for {})",
                    human(age(now, entry.zero_window_since.unwrap_or(now)))
                ),
            ),
            Proto::Tcp if entry.request_seen && within(now, entry.last_rx_progress, window_ms) => {
                Judgement::new(Verdict::Alive, "rx only: the response to a request is still arriving")
            }
            Proto::Tcp => lasting(format!(
                "rx only for {}: {} data packets arrive and no request was sent",
                human(observed),
                entry.rx_data_packets
            )),
            Proto::Udp if entry.request_seen && within(now, entry.last_answer, window_ms) => {
                Judgement::new(Verdict::Alive, "rx only: answers to earlier requests still arrive")
            }
            Proto::Udp => lasting(format!(
                "rx only for {}: {} datagrams arrive and none was asked for",
                human(observed),
                entry.rx_data_packets
            )),
        },
    }
}
