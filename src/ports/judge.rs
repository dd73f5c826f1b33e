//! The verdict on one port (claims 4 and 5 of CN102905292A), as a pure
//! function of what the data path saw, what the kernel says about the socket,
//! and the class's window — so every rule is tested without a network.
//!
//! Over the window:
//! - data sent and received → alive;
//! - only sent, or only received → link check: is a request/response exchange
//!   still progressing (our data acknowledged, the response to a request still
//!   arriving, UDP requests answered)? yes → alive, no → phantom;
//! - no traffic → idle, unless nobody holds the socket (known only when
//!   every process's fds could be read), or it sits in
//!   CLOSE-WAIT (the peer closed, the application never did), or it is bound
//!   to an address the session no longer has;
//! - while the terminal sleeps, a port that moves data → phantom;
//! - a listening socket is never phantom.
//!
//! A port whose bad condition has not yet lasted a whole window is `suspect`.
//! Every verdict carries a one-line reason.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::sockets::SocketState;
use super::table::PortEntry;
use super::{Proto, Tick};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
        Judgement {
            verdict,
            reason: reason.into(),
        }
    }
}

/// What the walk of `/proc/*/fd` says about who holds a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKnowledge {
    /// Some process holds it (its inode is in a `/proc/PID/fd`).
    Held,
    /// The walk read every process's fds and none holds it.
    Orphaned,
    /// The walk could not read every process's fds (no CAP_SYS_PTRACE or
    /// CAP_DAC_READ_SEARCH, a hidden `/proc`): not finding an owner proves
    /// nothing, so the socket is judged on its traffic alone.
    Unknown,
}

/// What the kernel says about the socket behind a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketView {
    pub proto: Proto,
    pub local: SocketAddr,
    pub state: SocketState,
    pub owner: OwnerKnowledge,
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
        60..=3599 if seconds.is_multiple_of(60) => format!("{}m", seconds / 60),
        60..=3599 => format!("{}m{}s", seconds / 60, seconds % 60),
        _ if seconds.is_multiple_of(3600) => format!("{}h", seconds / 3600),
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

    // A listener carries no connection of its own: releasing it would only
    // take a service away, so it is never phantom, wherever it is bound.
    if socket.state == SocketState::Listen {
        return Judgement::new(Verdict::Idle, "listening");
    }
    if !attributable(socket.local.ip(), context.session_addresses) {
        return Judgement::new(
            Verdict::Phantom,
            format!(
                "bound to {}, which the session no longer has",
                socket.local.ip()
            ),
        );
    }
    if socket.owner == OwnerKnowledge::Orphaned {
        return Judgement::new(Verdict::Phantom, "no process holds the socket any more");
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
            Judgement::new(
                Verdict::Suspect,
                format!(
                    "{what} (watched {} of the {window} window)",
                    human(observed)
                ),
            )
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
                format!(
                    "moves data while the terminal sleeps (asleep for {})",
                    human(age(now, since))
                ),
            );
        }
    }

    if socket.state == SocketState::CloseWait {
        let quiet_for = age(
            now,
            entry
                .last_tx
                .into_iter()
                .chain(entry.last_rx)
                .max()
                .unwrap_or(entry.first_seen),
        );
        let what = format!(
            "CLOSE-WAIT for {}: the peer closed and the application never did",
            human(quiet_for)
        );
        return if quiet_for >= window_ms {
            Judgement::new(Verdict::Phantom, what)
        } else {
            Judgement::new(Verdict::Suspect, what)
        };
    }

    let syn_only = socket.proto == Proto::Tcp && socket.state == SocketState::SynSent;
    // A connect still in SYN-SENT is still sending, also between the kernel's
    // retries (1, 2, 4, 8 s apart: longer than a short window).
    let tx = within(now, entry.last_tx_data, window_ms) || (syn_only && entry.syn_tx > 0);
    let rx = within(now, entry.last_rx_data, window_ms);
    match (tx, rx) {
        (true, true) => Judgement::new(
            Verdict::Alive,
            format!("sent and received data within {window}"),
        ),
        (false, false) => {
            Judgement::new(Verdict::Idle, format!("no data either way within {window}"))
        }
        (true, false) => match socket.proto {
            Proto::Tcp if syn_only || (entry.syn_tx > 0 && entry.rx_packets == 0) => {
                lasting(format!(
                    "tx only for {}, {} SYNs unanswered",
                    human(observed),
                    entry.syn_tx
                ))
            }
            Proto::Tcp if within(now, entry.last_ack_progress, window_ms) => Judgement::new(
                Verdict::Alive,
                "tx only, but the peer acknowledges our data",
            ),
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
            Proto::Tcp
                if entry
                    .zero_window_since
                    .is_some_and(|t| age(now, t) >= window_ms) =>
            {
                Judgement::new(
                    Verdict::Phantom,
                    format!(
                        "rx only: the application stopped reading (zero window for {})",
                        human(age(now, entry.zero_window_since.unwrap_or(now)))
                    ),
                )
            }
            Proto::Tcp if entry.request_seen && within(now, entry.last_rx_progress, window_ms) => {
                Judgement::new(
                    Verdict::Alive,
                    "rx only: the response to a request is still arriving",
                )
            }
            Proto::Tcp => lasting(format!(
                "rx only for {}: {} data packets arrive and no request was sent",
                human(observed),
                entry.rx_data_packets
            )),
            Proto::Udp if entry.request_seen && within(now, entry.last_answer, window_ms) => {
                Judgement::new(
                    Verdict::Alive,
                    "rx only: answers to earlier requests still arrive",
                )
            }
            Proto::Udp => lasting(format!(
                "rx only for {}: {} datagrams arrive and none was asked for",
                human(observed),
                entry.rx_data_packets
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::ports::Remote;

    const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const MIN: u32 = 60_000;

    fn entry(proto: Proto, first_seen: Tick) -> PortEntry {
        let remote = Remote {
            ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            port: 443,
        };
        PortEntry::new(proto, 40000, IpAddr::V4(LOCAL), remote, first_seen)
    }

    fn socket(proto: Proto, state: SocketState) -> SocketView {
        SocketView {
            proto,
            local: SocketAddr::new(IpAddr::V4(LOCAL), 40000),
            state,
            owner: OwnerKnowledge::Held,
        }
    }

    fn context(now: Tick) -> Context<'static> {
        static ADDRESSES: [IpAddr; 1] = [IpAddr::V4(LOCAL)];
        Context {
            now,
            window: Duration::from_secs(300),
            asleep_since: None,
            session_addresses: &ADDRESSES,
        }
    }

    fn verdict(e: &PortEntry, s: &SocketView, c: &Context<'_>) -> (Verdict, String) {
        let j = judge(Some(e), s, c);
        (j.verdict, j.reason)
    }

    #[test]
    fn both_directions_is_alive() {
        let mut e = entry(Proto::Tcp, 0);
        e.last_tx_data = Some(9 * MIN);
        e.last_rx_data = Some(9 * MIN);
        let (v, reason) = verdict(
            &e,
            &socket(Proto::Tcp, SocketState::Established),
            &context(10 * MIN),
        );
        assert_eq!(v, Verdict::Alive);
        assert_eq!(reason, "sent and received data within 5m");
    }

    #[test]
    fn unanswered_syns_are_phantom_after_the_window_and_suspect_before() {
        let mut e = entry(Proto::Tcp, 0);
        e.syn_tx = 12;
        e.tx_packets = 12;
        e.last_tx = Some(5 * MIN);
        let s = socket(Proto::Tcp, SocketState::SynSent);
        let (v, reason) = verdict(&e, &s, &context(5 * MIN));
        assert_eq!(v, Verdict::Phantom);
        assert_eq!(reason, "tx only for 5m, 12 SYNs unanswered");
        e.last_tx = Some(MIN);
        let (v, reason) = verdict(&e, &s, &context(MIN));
        assert_eq!(v, Verdict::Suspect);
        assert!(reason.contains("watched 1m of the 5m window"), "{reason}");
    }

    #[test]
    fn syn_sent_between_retries_is_still_tx_only() {
        // SYNs at 0..5 s and 11 s, judged at 18 s with a 6 s window: the last
        // SYN is older than the window, but the connect is still unanswered.
        let mut e = entry(Proto::Tcp, 0);
        e.syn_tx = 7;
        e.tx_packets = 7;
        e.last_tx = Some(11_000);
        let mut c = context(18_000);
        c.window = Duration::from_secs(6);
        let (v, reason) = verdict(&e, &socket(Proto::Tcp, SocketState::SynSent), &c);
        assert_eq!(
            (v, reason.as_str()),
            (Verdict::Phantom, "tx only for 18s, 7 SYNs unanswered")
        );
    }

    #[test]
    fn tx_only_with_ack_progress_is_alive_without_is_phantom() {
        let mut e = entry(Proto::Tcp, 0);
        e.tx_packets = 100;
        e.rx_packets = 50;
        e.tx_data_packets = 100;
        e.last_tx_data = Some(9 * MIN);
        e.last_ack_progress = Some(9 * MIN);
        let s = socket(Proto::Tcp, SocketState::Established);
        assert_eq!(verdict(&e, &s, &context(10 * MIN)).0, Verdict::Alive);
        e.last_ack_progress = Some(MIN);
        let (v, reason) = verdict(&e, &s, &context(10 * MIN));
        assert_eq!(v, Verdict::Phantom);
        assert!(
            reason.starts_with("tx only for 10m: 100 data packets"),
            "{reason}"
        );
    }

    #[test]
    fn a_download_is_alive_and_unsolicited_data_is_not() {
        let mut e = entry(Proto::Tcp, 0);
        e.request_seen = true;
        e.last_request = Some(0);
        e.rx_data_packets = 5000;
        e.last_rx_data = Some(10 * MIN);
        e.last_rx_progress = Some(10 * MIN);
        e.last_tx = Some(10 * MIN); // pure ACKs only
        let s = socket(Proto::Tcp, SocketState::Established);
        let (v, reason) = verdict(&e, &s, &context(10 * MIN));
        assert_eq!(
            (v, reason.as_str()),
            (
                Verdict::Alive,
                "rx only: the response to a request is still arriving"
            )
        );
        e.request_seen = false;
        assert_eq!(verdict(&e, &s, &context(10 * MIN)).0, Verdict::Phantom);
        // An application that stopped reading: zero window for the whole window.
        e.request_seen = true;
        e.zero_window_since = Some(4 * MIN);
        let (v, reason) = verdict(&e, &s, &context(10 * MIN));
        assert_eq!(v, Verdict::Phantom);
        assert!(reason.contains("stopped reading"), "{reason}");
    }

    #[test]
    fn udp_requests_with_and_without_answers() {
        let mut e = entry(Proto::Udp, 0);
        e.udp_unanswered = 30;
        e.last_tx_data = Some(10 * MIN);
        let s = socket(Proto::Udp, SocketState::Established);
        let (v, reason) = verdict(&e, &s, &context(10 * MIN));
        assert_eq!(
            (v, reason.as_str()),
            (Verdict::Phantom, "tx only for 10m: 30 datagrams unanswered")
        );
        e.last_answer = Some(9 * MIN);
        e.last_rx_data = Some(9 * MIN);
        assert_eq!(verdict(&e, &s, &context(10 * MIN)).0, Verdict::Alive);
    }

    #[test]
    fn idle_is_kept_unless_orphaned_moved_or_half_closed() {
        let e = entry(Proto::Tcp, 0);
        let mut s = socket(Proto::Tcp, SocketState::Established);
        assert_eq!(verdict(&e, &s, &context(60 * MIN)).0, Verdict::Idle);
        s.owner = OwnerKnowledge::Orphaned;
        assert_eq!(verdict(&e, &s, &context(60 * MIN)).0, Verdict::Phantom);
        s.owner = OwnerKnowledge::Held;
        s.local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)), 40000);
        let (v, reason) = verdict(&e, &s, &context(60 * MIN));
        assert_eq!(
            (v, reason.as_str()),
            (
                Verdict::Phantom,
                "bound to 192.0.2.11, which the session no longer has"
            )
        );
        // The wildcard and the IPv4-mapped form of our address are ours.
        s.local = "[::ffff:192.0.2.10]:40000".parse().unwrap();
        assert_eq!(verdict(&e, &s, &context(60 * MIN)).0, Verdict::Idle);
        s.local = "0.0.0.0:40000".parse().unwrap();
        assert_eq!(verdict(&e, &s, &context(60 * MIN)).0, Verdict::Idle);
        let mut e = entry(Proto::Tcp, 0);
        e.last_rx = Some(MIN);
        e.fin_rx = 1;
        let s = socket(Proto::Tcp, SocketState::CloseWait);
        let (v, reason) = verdict(&e, &s, &context(7 * MIN));
        assert_eq!(v, Verdict::Phantom);
        assert_eq!(
            reason,
            "CLOSE-WAIT for 6m: the peer closed and the application never did"
        );
        assert_eq!(verdict(&e, &s, &context(2 * MIN)).0, Verdict::Suspect);
    }

    #[test]
    fn moving_data_while_asleep_is_phantom() {
        let mut e = entry(Proto::Udp, 0);
        e.last_tx_data = Some(20 * MIN);
        e.last_rx_data = Some(20 * MIN);
        e.last_answer = Some(20 * MIN);
        let s = socket(Proto::Udp, SocketState::Established);
        let mut c = context(21 * MIN);
        assert_eq!(verdict(&e, &s, &c).0, Verdict::Alive);
        c.asleep_since = Some(10 * MIN);
        let (v, reason) = verdict(&e, &s, &c);
        assert_eq!(
            (v, reason.as_str()),
            (
                Verdict::Phantom,
                "moves data while the terminal sleeps (asleep for 11m)"
            )
        );
        // Data only before the sleep: not judged by the sleep rule.
        c.asleep_since = Some(20 * MIN + 1);
        assert_eq!(verdict(&e, &s, &c).0, Verdict::Alive);
    }

    #[test]
    fn an_unknown_owner_is_judged_on_traffic_alone() {
        // The walk of /proc could not read every process's fds: nobody found
        // is not nobody. Another user's quiet connection stays idle...
        let mut s = socket(Proto::Tcp, SocketState::Established);
        s.owner = OwnerKnowledge::Unknown;
        let quiet = judge(None, &s, &context(60 * MIN));
        assert_eq!(
            (quiet.verdict, quiet.reason.as_str()),
            (Verdict::Idle, "no traffic through the session yet")
        );
        let e = entry(Proto::Tcp, 0);
        assert_eq!(
            verdict(&e, &s, &context(60 * MIN)),
            (Verdict::Idle, "no data either way within 5m".to_string())
        );
        // ...and its traffic still counts: unanswered SYNs are phantom.
        let mut e = entry(Proto::Tcp, 0);
        e.syn_tx = 6;
        e.tx_packets = 6;
        e.last_tx = Some(5 * MIN);
        s.state = SocketState::SynSent;
        assert_eq!(verdict(&e, &s, &context(5 * MIN)).0, Verdict::Phantom);
    }

    #[test]
    fn a_listener_is_never_phantom() {
        let mut s = socket(Proto::Tcp, SocketState::Listen);
        let mut e = entry(Proto::Tcp, 0);
        // A server port: the entry shows only replies going out.
        e.tx_data_packets = 50;
        e.last_tx_data = Some(59 * MIN);
        for owner in [
            OwnerKnowledge::Held,
            OwnerKnowledge::Orphaned,
            OwnerKnowledge::Unknown,
        ] {
            s.owner = owner;
            for local in ["192.0.2.10:40000", "192.0.2.11:40000", "0.0.0.0:40000"] {
                s.local = local.parse().unwrap();
                let mut c = context(60 * MIN);
                assert_eq!(
                    verdict(&e, &s, &c),
                    (Verdict::Idle, "listening".to_string()),
                    "{owner:?} {local}"
                );
                c.asleep_since = Some(MIN);
                assert_eq!(judge(Some(&e), &s, &c).verdict, Verdict::Idle);
            }
        }
    }

    #[test]
    fn listening_and_untracked_sockets_are_idle() {
        let s = socket(Proto::Tcp, SocketState::Listen);
        assert_eq!(judge(None, &s, &context(MIN)).verdict, Verdict::Idle);
        let s = socket(Proto::Udp, SocketState::Close);
        assert_eq!(
            judge(None, &s, &context(MIN)).reason,
            "no traffic through the session yet"
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(45_000), "45s");
        assert_eq!(human(300_000), "5m");
        assert_eq!(human(90_000), "1m30s");
        assert_eq!(human(5_400_000), "1h30m");
    }
}
