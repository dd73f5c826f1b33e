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

/// A verdict and why. The reason is kept as a [`Reason`] with its numbers and
/// formatted only when shown ([`Judgement::reason_text`], `Display`): a scan
/// of every port formats nothing it does not display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: Reason,
    /// A condition that has not yet lasted a whole window: how long the port
    /// has been watched, and the window (ms). Set for `suspect` verdicts
    /// drawn from traffic; shown after the reason.
    pub watched: Option<(u32, u32)>,
}

/// Why a port got its verdict. Durations are milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Listening,
    /// Bound to an address the session never had: not the session's to judge.
    NotTheSessions {
        address: IpAddr,
    },
    /// Bound to an address the session had before and has no more.
    AddressGone {
        address: IpAddr,
    },
    Orphaned,
    NoTrafficYet,
    MovesWhileAsleep {
        asleep_ms: u32,
    },
    CloseWait {
        quiet_ms: u32,
    },
    BothWays {
        window_ms: u32,
    },
    NoData {
        window_ms: u32,
    },
    SynsUnanswered {
        observed_ms: u32,
        syns: u16,
    },
    PeerAcknowledges,
    TcpTxOnly {
        observed_ms: u32,
        data_packets: u32,
    },
    UdpAnswered,
    UdpTxOnly {
        observed_ms: u32,
        datagrams: u32,
    },
    StoppedReading {
        zero_window_ms: u32,
    },
    ResponseArriving,
    TcpRxOnly {
        observed_ms: u32,
        data_packets: u32,
    },
    AnswersArrive,
    UdpRxOnly {
        observed_ms: u32,
        datagrams: u32,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Reason::Listening => f.write_str("listening"),
            Reason::NotTheSessions { address } => write!(
                f,
                "bound to {address}, not an address of the session: left alone"
            ),
            Reason::AddressGone { address } => {
                write!(f, "bound to {address}, which the session no longer has")
            }
            Reason::Orphaned => f.write_str("no process holds the socket any more"),
            Reason::NoTrafficYet => f.write_str("no traffic through the session yet"),
            Reason::MovesWhileAsleep { asleep_ms } => write!(
                f,
                "moves data while the terminal sleeps (asleep for {})",
                Human(asleep_ms)
            ),
            Reason::CloseWait { quiet_ms } => write!(
                f,
                "CLOSE-WAIT for {}: the peer closed and the application never did",
                Human(quiet_ms)
            ),
            Reason::BothWays { window_ms } => {
                write!(f, "sent and received data within {}", Human(window_ms))
            }
            Reason::NoData { window_ms } => {
                write!(f, "no data either way within {}", Human(window_ms))
            }
            Reason::SynsUnanswered { observed_ms, syns } => write!(
                f,
                "tx only for {}, {syns} SYNs unanswered",
                Human(observed_ms)
            ),
            Reason::PeerAcknowledges => f.write_str("tx only, but the peer acknowledges our data"),
            Reason::TcpTxOnly {
                observed_ms,
                data_packets,
            } => write!(
                f,
                "tx only for {}: {data_packets} data packets, the peer acknowledges nothing new",
                Human(observed_ms)
            ),
            Reason::UdpAnswered => f.write_str("UDP requests get responses"),
            Reason::UdpTxOnly {
                observed_ms,
                datagrams,
            } => write!(
                f,
                "tx only for {}: {datagrams} datagrams unanswered",
                Human(observed_ms)
            ),
            Reason::StoppedReading { zero_window_ms } => write!(
                f,
                "rx only: the application stopped reading (zero window for {})",
                Human(zero_window_ms)
            ),
            Reason::ResponseArriving => {
                f.write_str("rx only: the response to a request is still arriving")
            }
            Reason::TcpRxOnly {
                observed_ms,
                data_packets,
            } => write!(
                f,
                "rx only for {}: {data_packets} data packets arrive and no request was sent",
                Human(observed_ms)
            ),
            Reason::AnswersArrive => {
                f.write_str("rx only: answers to earlier requests still arrive")
            }
            Reason::UdpRxOnly {
                observed_ms,
                datagrams,
            } => write!(
                f,
                "rx only for {}: {datagrams} datagrams arrive and none was asked for",
                Human(observed_ms)
            ),
        }
    }
}

impl Judgement {
    fn new(verdict: Verdict, reason: Reason) -> Judgement {
        Judgement {
            verdict,
            reason,
            watched: None,
        }
    }

    /// The one-line reason people read (`portdial ports`, events, logs).
    pub fn reason_text(&self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for Judgement {
    /// The reason, with how much of the window a suspect port was watched.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.reason)?;
        if let Some((observed, window)) = self.watched {
            write!(
                f,
                " (watched {} of the {} window)",
                Human(observed),
                Human(window)
            )?;
        }
        Ok(())
    }
}

impl Serialize for Judgement {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut judgement = serializer.serialize_struct("Judgement", 2)?;
        judgement.serialize_field("verdict", &self.verdict)?;
        judgement.serialize_field("reason", &self.reason_text())?;
        judgement.end()
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
    /// Addresses the session had before and no longer has: sockets left on
    /// them are phantoms. A socket on any other address is not the
    /// session's, and never judged releasable.
    pub previous_addresses: &'a [IpAddr],
}

/// A duration for people, formatted when displayed: "45s", "5m", "1h30m".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Human(pub u32);

impl std::fmt::Display for Human {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seconds = self.0 / 1000;
        match seconds {
            0..=59 => write!(f, "{seconds}s"),
            60..=3599 if seconds.is_multiple_of(60) => write!(f, "{}m", seconds / 60),
            60..=3599 => write!(f, "{}m{}s", seconds / 60, seconds % 60),
            _ if seconds.is_multiple_of(3600) => write!(f, "{}h", seconds / 3600),
            _ => write!(f, "{}h{}m", seconds / 3600, (seconds % 3600) / 60),
        }
    }
}

/// A duration for people: "45s", "5m", "1h30m".
pub fn human(ms: u32) -> String {
    Human(ms).to_string()
}

fn age(now: Tick, then: Tick) -> u32 {
    now.wrapping_sub(then)
}

fn within(now: Tick, then: Option<Tick>, window_ms: u32) -> bool {
    then.is_some_and(|then| age(now, then) <= window_ms)
}

/// `address` without its IPv4-mapped IPv6 form.
fn unmapped(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
        v4 => v4,
    }
}

/// Whose address a socket is bound to.
enum Attribution {
    /// One the session has (or its IPv4-mapped form).
    Session,
    /// One the session had before.
    Previous(IpAddr),
    /// Any other: not the session's.
    Foreign(IpAddr),
}

/// A wildcard socket is the session's only as far as its traffic through
/// the session says so: the local address of its packets.
fn attribute(socket: &SocketView, entry: Option<&PortEntry>, context: &Context<'_>) -> Attribution {
    let bound = socket.local.ip();
    let address = if bound.is_unspecified() {
        match entry {
            Some(entry) => entry.local_ip,
            None => return Attribution::Foreign(bound),
        }
    } else {
        bound
    };
    let address = unmapped(address);
    if context.session_addresses.contains(&address) {
        Attribution::Session
    } else if context.previous_addresses.contains(&address) {
        Attribution::Previous(address)
    } else {
        Attribution::Foreign(bound)
    }
}

/// Judges one port. `entry` is what the data path accounted to it (None when
/// nothing crossed the session for it).
pub fn judge(entry: Option<&PortEntry>, socket: &SocketView, context: &Context<'_>) -> Judgement {
    let now = context.now;
    let window_ms = u32::try_from(context.window.as_millis()).unwrap_or(u32::MAX);

    // A listener carries no connection of its own: releasing it would only
    // take a service away, so it is never phantom, wherever it is bound.
    if socket.state == SocketState::Listen {
        return Judgement::new(Verdict::Idle, Reason::Listening);
    }
    match attribute(socket, entry, context) {
        Attribution::Session => {}
        Attribution::Previous(address) => {
            return Judgement::new(Verdict::Phantom, Reason::AddressGone { address })
        }
        // Whatever its traffic, a socket the session cannot claim is left
        // alone: releasing it could cut a connection of another network.
        Attribution::Foreign(address) => {
            return Judgement::new(Verdict::Idle, Reason::NotTheSessions { address })
        }
    }
    if socket.owner == OwnerKnowledge::Orphaned {
        return Judgement::new(Verdict::Phantom, Reason::Orphaned);
    }
    let Some(entry) = entry else {
        return Judgement::new(Verdict::Idle, Reason::NoTrafficYet);
    };
    // How long the port has been watched: a condition can only be said to
    // have lasted a window once the port has been seen that long.
    let observed = age(now, entry.first_seen);
    let lasting = |reason: Reason| {
        if observed >= window_ms {
            Judgement::new(Verdict::Phantom, reason)
        } else {
            Judgement {
                verdict: Verdict::Suspect,
                reason,
                watched: Some((observed, window_ms)),
            }
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
                Reason::MovesWhileAsleep {
                    asleep_ms: age(now, since),
                },
            );
        }
    }

    if socket.state == SocketState::CloseWait {
        let quiet_ms = age(
            now,
            entry
                .last_tx
                .into_iter()
                .chain(entry.last_rx)
                .max()
                .unwrap_or(entry.first_seen),
        );
        let verdict = if quiet_ms >= window_ms {
            Verdict::Phantom
        } else {
            Verdict::Suspect
        };
        return Judgement::new(verdict, Reason::CloseWait { quiet_ms });
    }

    let syn_only = socket.proto == Proto::Tcp && socket.state == SocketState::SynSent;
    // A connect still in SYN-SENT is still sending, also between the kernel's
    // retries (1, 2, 4, 8 s apart: longer than a short window).
    let tx = within(now, entry.last_tx_data, window_ms) || (syn_only && entry.syn_tx > 0);
    let rx = within(now, entry.last_rx_data, window_ms);
    match (tx, rx) {
        (true, true) => Judgement::new(Verdict::Alive, Reason::BothWays { window_ms }),
        (false, false) => Judgement::new(Verdict::Idle, Reason::NoData { window_ms }),
        (true, false) => match socket.proto {
            Proto::Tcp if syn_only || (entry.syn_tx > 0 && entry.rx_packets == 0) => {
                lasting(Reason::SynsUnanswered {
                    observed_ms: observed,
                    syns: entry.syn_tx,
                })
            }
            Proto::Tcp if within(now, entry.last_ack_progress, window_ms) => {
                Judgement::new(Verdict::Alive, Reason::PeerAcknowledges)
            }
            Proto::Tcp => lasting(Reason::TcpTxOnly {
                observed_ms: observed,
                data_packets: entry.tx_data_packets,
            }),
            Proto::Udp if within(now, entry.last_answer, window_ms) => {
                Judgement::new(Verdict::Alive, Reason::UdpAnswered)
            }
            Proto::Udp => lasting(Reason::UdpTxOnly {
                observed_ms: observed,
                datagrams: entry.udp_unanswered,
            }),
        },
        (false, true) => match socket.proto {
            Proto::Tcp
                if entry
                    .zero_window_since
                    .is_some_and(|t| age(now, t) >= window_ms) =>
            {
                Judgement::new(
                    Verdict::Phantom,
                    Reason::StoppedReading {
                        zero_window_ms: age(now, entry.zero_window_since.unwrap_or(now)),
                    },
                )
            }
            Proto::Tcp if entry.request_seen && within(now, entry.last_rx_progress, window_ms) => {
                Judgement::new(Verdict::Alive, Reason::ResponseArriving)
            }
            Proto::Tcp => lasting(Reason::TcpRxOnly {
                observed_ms: observed,
                data_packets: entry.rx_data_packets,
            }),
            Proto::Udp if entry.request_seen && within(now, entry.last_answer, window_ms) => {
                Judgement::new(Verdict::Alive, Reason::AnswersArrive)
            }
            Proto::Udp => lasting(Reason::UdpRxOnly {
                observed_ms: observed,
                datagrams: entry.rx_data_packets,
            }),
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
            previous_addresses: &[],
        }
    }

    fn verdict(e: &PortEntry, s: &SocketView, c: &Context<'_>) -> (Verdict, String) {
        let j = judge(Some(e), s, c);
        (j.verdict, j.reason_text())
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
        let previous = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11))];
        let mut c = context(60 * MIN);
        c.previous_addresses = &previous;
        let (v, reason) = verdict(&e, &s, &c);
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
            (quiet.verdict, quiet.reason_text().as_str()),
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
            judge(None, &s, &context(MIN)).reason_text(),
            "no traffic through the session yet"
        );
    }

    /// Issue 5: a socket the session cannot claim is never phantom, whatever
    /// its traffic, owner or state, awake or asleep.
    #[test]
    fn a_socket_on_an_address_not_the_sessions_is_never_releasable() {
        let mut busy = entry(Proto::Tcp, 0);
        busy.syn_tx = 9;
        busy.tx_data_packets = 40;
        busy.last_tx_data = Some(59 * MIN);
        busy.zero_window_since = Some(0);
        let quiet = entry(Proto::Udp, 0);
        let previous = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11))];
        for local in ["10.0.0.5:40000", "127.0.0.1:40000", "[2001:db8::5]:40000"] {
            for state in [
                SocketState::Established,
                SocketState::SynSent,
                SocketState::CloseWait,
            ] {
                for owner in [
                    OwnerKnowledge::Held,
                    OwnerKnowledge::Orphaned,
                    OwnerKnowledge::Unknown,
                ] {
                    for e in [Some(&busy), Some(&quiet), None] {
                        let s = SocketView {
                            proto: Proto::Tcp,
                            local: local.parse().unwrap(),
                            state,
                            owner,
                        };
                        let mut c = context(60 * MIN);
                        c.previous_addresses = &previous;
                        c.asleep_since = Some(MIN);
                        let j = judge(e, &s, &c);
                        assert_eq!(
                            (j.verdict, j.reason_text()),
                            (
                                Verdict::Idle,
                                format!(
                                    "bound to {}, not an address of the session: left alone",
                                    s.local.ip()
                                )
                            ),
                            "{local} {state:?} {owner:?}"
                        );
                    }
                }
            }
        }
        // A wildcard socket is the session's only through its traffic: with
        // none, or traffic from another address, it is left alone.
        let mut s = socket(Proto::Udp, SocketState::Established);
        s.local = "0.0.0.0:40000".parse().unwrap();
        s.owner = OwnerKnowledge::Orphaned;
        let c = context(60 * MIN);
        assert_eq!(judge(None, &s, &c).verdict, Verdict::Idle);
        let mut elsewhere = entry(Proto::Udp, 0);
        elsewhere.local_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(judge(Some(&elsewhere), &s, &c).verdict, Verdict::Idle);
        // With traffic from the session's address, the usual rules apply.
        assert_eq!(judge(Some(&quiet), &s, &c).verdict, Verdict::Phantom);
    }

    #[test]
    fn reasons_are_formatted_only_when_shown() {
        let mut e = entry(Proto::Udp, 0);
        e.udp_unanswered = 3;
        e.last_tx_data = Some(MIN);
        let j = judge(
            Some(&e),
            &socket(Proto::Udp, SocketState::Established),
            &context(2 * MIN),
        );
        assert_eq!(
            (j.verdict, j.reason, j.watched),
            (
                Verdict::Suspect,
                Reason::UdpTxOnly {
                    observed_ms: 2 * MIN,
                    datagrams: 3
                },
                Some((2 * MIN, 5 * MIN))
            )
        );
        let text = "tx only for 2m: 3 datagrams unanswered (watched 2m of the 5m window)";
        assert_eq!(j.to_string(), text);
        assert_eq!(
            serde_json::to_value(j).unwrap(),
            serde_json::json!({"verdict": "suspect", "reason": text})
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
