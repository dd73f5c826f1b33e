//! `portdial replay FILE --ports`: the port manager's accounting and judge run
//! over a capture's data traffic, with the capture's own timestamps. There are
//! no kernel sockets and no owners: a socket's state is inferred from the TCP
//! flags seen, and every port counts as held.

use std::net::IpAddr;
use std::time::Duration;

use portdial_protocol::encap::decapsulate;
use portdial_protocol::ethernet::MacAddr;

use super::{read_frames, CaptureError, FrameSink, RawFrame, Report};
use crate::ports::classes::Classes;
use crate::ports::judge::{judge, Context, OwnerKnowledge, SocketView};
use crate::ports::manager::PortRow;
use crate::ports::sockets::SocketState;
use crate::ports::table::{PortEntry, PortTable};
use crate::ports::{Direction, Proto, Tick};

/// Ethernet, the only link type that carries PPPoE session frames here.
const LINKTYPE_ETHERNET: u32 = 1;

struct Accounting {
    clients: Vec<MacAddr>,
    table: PortTable,
    first_ns: Option<i128>,
    now: Tick,
    /// Source addresses of the client's packets: its addresses, for captures
    /// without IPCP.
    local_addresses: Vec<IpAddr>,
}

impl FrameSink for Accounting {
    fn push_frame(&mut self, frame: RawFrame<'_>) {
        let tick = match frame.timestamp_ns {
            Some(ns) => {
                let first = *self.first_ns.get_or_insert(ns);
                u32::try_from((ns - first) / 1_000_000).unwrap_or(u32::MAX)
            }
            None => self.now,
        };
        self.now = tick;
        if frame.link_type & 0xffff != LINKTYPE_ETHERNET {
            return;
        }
        let Ok(decap) = decapsulate(frame.data) else {
            return;
        };
        if !matches!(decap.protocol, 0x0021 | 0x0057) {
            return;
        }
        let direction = if self.clients.contains(&decap.src) {
            Direction::Tx
        } else {
            Direction::Rx
        };
        let Some(packet) = frame.data.get(decap.payload) else {
            return;
        };
        if direction == Direction::Tx {
            if let Ok(flow) = portdial_protocol::ip::inspect(packet) {
                if !self.local_addresses.contains(&flow.src) && self.local_addresses.len() < 16 {
                    self.local_addresses.push(flow.src);
                }
            }
        }
        self.table.account(tick, direction, packet);
    }

    fn push_file_error(&mut self, _error: String) {}
}

/// The state a socket would be in, from the flags its packets carried.
fn inferred_state(entry: &PortEntry) -> SocketState {
    match entry.proto {
        Proto::Udp => SocketState::Established,
        Proto::Tcp if entry.rst_tx > 0 || entry.rst_rx > 0 => SocketState::Close,
        Proto::Tcp if entry.fin_rx > 0 && entry.fin_tx == 0 => SocketState::CloseWait,
        Proto::Tcp if entry.fin_tx > 0 && entry.fin_rx > 0 => SocketState::TimeWait,
        Proto::Tcp if entry.fin_tx > 0 => SocketState::FinWait1,
        Proto::Tcp if entry.syn_tx > 0 && entry.rx_packets == 0 => SocketState::SynSent,
        Proto::Tcp => SocketState::Established,
    }
}

/// Judges every port of the capture's client(s) at the capture's last
/// instant. `window` replaces the classes' windows when given.
pub fn ports(
    capture: &[u8],
    report: &Report,
    window: Option<Duration>,
) -> Result<Vec<PortRow>, CaptureError> {
    let clients = report
        .sessions
        .iter()
        .filter_map(|s| s.client_mac.as_deref())
        .filter_map(|mac| mac.parse().ok())
        .collect();
    let mut accounting = Accounting {
        clients,
        table: PortTable::new(65_536),
        first_ns: None,
        now: 0,
        local_addresses: report
            .sessions
            .iter()
            .filter_map(|s| s.local_ip.as_deref())
            .filter_map(|ip| ip.parse().ok())
            .collect(),
    };
    read_frames(capture, &mut accounting)?;
    let classes = Classes::default();
    let mut rows: Vec<PortRow> = accounting
        .table
        .iter()
        .map(|entry| {
            let class = classes.classify(None, None, Some(entry.remote.port));
            let state = inferred_state(&entry);
            let view = SocketView {
                proto: entry.proto,
                local: std::net::SocketAddr::new(entry.local_ip, entry.port),
                state,
                owner: OwnerKnowledge::Held,
            };
            let context = Context {
                now: accounting.now,
                window: window.unwrap_or(class.window),
                asleep_since: None,
                session_addresses: &accounting.local_addresses,
                previous_addresses: &[],
            };
            let judgement = judge(Some(&entry), &view, &context);
            let seconds =
                |t: Option<Tick>| t.map(|t| f64::from(accounting.now.wrapping_sub(t)) / 1000.0);
            PortRow {
                proto: entry.proto,
                local_ip: entry.local_ip.to_string(),
                local_port: entry.port,
                remotes: vec![
                    std::net::SocketAddr::new(entry.remote.ip, entry.remote.port).to_string(),
                ],
                pid: None,
                app: None,
                uid: None,
                class: class.name.clone(),
                state: state.to_string(),
                tx_packets: u64::from(entry.tx_packets),
                rx_packets: u64::from(entry.rx_packets),
                tx_bytes: entry.tx_bytes,
                rx_bytes: entry.rx_bytes,
                tx_data_packets: u64::from(entry.tx_data_packets),
                rx_data_packets: u64::from(entry.rx_data_packets),
                last_tx_s: seconds(entry.last_tx),
                last_rx_s: seconds(entry.last_rx),
                verdict: judgement.verdict,
                reason: judgement.reason_text(),
            }
        })
        .collect();
    rows.sort_by_key(|r| (r.proto, r.local_port));
    Ok(rows)
}
