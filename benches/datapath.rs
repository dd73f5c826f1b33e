//! The per-packet cost of the data path: encapsulation or decapsulation plus
//! the port manager's accounting, with 1k, 10k and 100k live port entries
//! (one port over and over, and a different port every packet); judging
//! every port of a full table; mapping 10,000 real sockets to their owner
//! through /proc; the session machine handling an LCP frame; bytes per port
//! entry (printed). `cargo bench --bench datapath`; compare figures within
//! one run.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use portdial::datapath::{self, Counters, Open, FRAME_BUFFER, HEADROOM};
use portdial::ports::judge::{judge, Context, OwnerKnowledge, SocketView};
use portdial::ports::sockets::SocketState;
use portdial::ports::table::PortTable;
use portdial::ports::{Direction, Proto};
use portdial_protocol::encap::{decapsulate, SessionEncap};
use portdial_protocol::ethernet::{MacAddr, VlanStack};

const ENCAP: SessionEncap = SessionEncap {
    dst: MacAddr([0, 0, 0x5e, 0, 0x53, 0x01]),
    src: MacAddr([0, 0, 0x5e, 0, 0x53, 0x02]),
    vlans: VlanStack::new(),
    session_id: 0x0011,
};

/// An IPv4 UDP packet 192.0.2.10:`port` → 198.51.100.7:53 with `payload` bytes.
fn udp_packet(port: u16, payload: usize) -> Vec<u8> {
    let total = 28 + payload;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[192, 0, 2, 10]);
    p[16..20].copy_from_slice(&[198, 51, 100, 7]);
    p[20..22].copy_from_slice(&port.to_be_bytes());
    p[22..24].copy_from_slice(&53u16.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    p
}

/// A table with `live` entries: UDP ports first, then TCP (65,536 per protocol).
fn table_with(live: usize) -> PortTable {
    let mut table = PortTable::new(live.max(1));
    for i in 0..live {
        let port = (i % 65_536) as u16;
        let mut packet = udp_packet(port, 16);
        if i >= 65_536 {
            packet[9] = 6; // as TCP: the ports are where UDP's are
            packet.resize(40, 0);
            packet[2..4].copy_from_slice(&40u16.to_be_bytes());
            packet[32] = 0x50;
            packet[33] = 0x10;
        }
        table.account(0, Direction::Tx, &packet);
    }
    table
}

fn per_packet(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_packet");
    for live in [1_000usize, 10_000, 100_000] {
        let mut table = table_with(live);
        // A port in the middle of the live range.
        let port = (live / 2 % 65_536) as u16;
        let packet = udp_packet(port, 1372);
        // The packet sits in the buffer after the headroom, as a TUN read
        // leaves it; encapsulation rewrites only the header in front of it.
        let mut buf = vec![0u8; FRAME_BUFFER];
        buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(&packet);
        let open = Open {
            ipv4: true,
            ipv6: false,
        };
        let mut counters = Counters::default();
        group.bench_with_input(
            BenchmarkId::new("encapsulate_and_account", live),
            &live,
            |b, _| {
                b.iter(|| {
                    table.account(1, Direction::Tx, &buf[HEADROOM..HEADROOM + packet.len()]);
                    black_box(datapath::upstream(
                        &mut buf,
                        packet.len(),
                        &ENCAP,
                        open,
                        None,
                        &mut counters,
                    ));
                })
            },
        );
        let range =
            datapath::upstream(&mut buf, packet.len(), &ENCAP, open, None, &mut counters).unwrap();
        let mut frame = buf[range].to_vec();
        group.bench_with_input(
            BenchmarkId::new("decapsulate_and_account", live),
            &live,
            |b, _| {
                b.iter(|| {
                    let decap = decapsulate(black_box(&frame)).unwrap();
                    let payload =
                        datapath::downstream(&mut frame, decap.payload, None, &mut counters);
                    table.account(2, Direction::Rx, &frame[payload]);
                })
            },
        );
        // A different live port every packet (a stride through the table),
        // so the entries are not all in cache: the port field is rewritten
        // in place before each packet.
        let mut next = 0usize;
        let stride = 7_919; // prime: visits every live port
        group.bench_with_input(
            BenchmarkId::new("encapsulate_and_account_spread", live),
            &live,
            |b, _| {
                b.iter(|| {
                    next = (next + stride) % live.min(65_536);
                    let at = HEADROOM + 20;
                    buf[at..at + 2].copy_from_slice(&(next as u16).to_be_bytes());
                    table.account(1, Direction::Tx, &buf[HEADROOM..HEADROOM + packet.len()]);
                    black_box(datapath::upstream(
                        &mut buf,
                        packet.len(),
                        &ENCAP,
                        open,
                        None,
                        &mut counters,
                    ));
                })
            },
        );
        buf[HEADROOM + 20..HEADROOM + 22].copy_from_slice(&port.to_be_bytes());
        // The same work without the port manager, for the accounting's share.
        group.bench_with_input(BenchmarkId::new("encapsulate_only", live), &live, |b, _| {
            b.iter(|| {
                black_box(datapath::upstream(
                    &mut buf,
                    packet.len(),
                    &ENCAP,
                    open,
                    None,
                    &mut counters,
                ))
            })
        });
        group.bench_with_input(BenchmarkId::new("decapsulate_only", live), &live, |b, _| {
            b.iter(|| {
                let decap = decapsulate(black_box(&frame)).unwrap();
                black_box(datapath::downstream(
                    &mut frame,
                    decap.payload,
                    None,
                    &mut counters,
                ));
            })
        });
    }
    group.finish();
}

fn judge_all(c: &mut Criterion) {
    let table = table_with(65_536);
    let addresses = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))];
    let context = Context {
        now: 60_000,
        window: Duration::from_secs(300),
        asleep_since: None,
        session_addresses: &addresses,
        previous_addresses: &[],
    };
    c.bench_function("judge_65536_ports", |b| {
        b.iter(|| {
            let mut phantoms = 0;
            for entry in table.iter() {
                let view = SocketView {
                    proto: Proto::Udp,
                    local: SocketAddr::new(entry.local_ip, entry.port),
                    state: SocketState::Established,
                    owner: OwnerKnowledge::Held,
                };
                if judge(Some(entry), &view, &context).verdict
                    == portdial::ports::judge::Verdict::Phantom
                {
                    phantoms += 1;
                }
            }
            black_box(phantoms)
        })
    });
}

fn entry_size(c: &mut Criterion) {
    // Not a timing: printed once so the figure sits beside the others.
    eprintln!(
        "bytes per port entry: {}",
        std::mem::size_of::<portdial::ports::table::PortEntry>()
    );
    let _ = c;
}

/// `sockets::owners()` (the walk of /proc/PID/fd mapping socket inodes to
/// processes) with 10,000 sockets open in this process, on top of whatever
/// the machine runs. The sockets are unbound: no port and no address is
/// taken.
fn owner_mapping(c: &mut Criterion) {
    const SOCKETS: usize = 10_000;
    let limit = libc::rlimit {
        rlim_cur: 16_384,
        rlim_max: 16_384,
    };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        panic!(
            "raising RLIMIT_NOFILE to 16384 for 10,000 sockets: {} (needs root or a hard limit that high)",
            std::io::Error::last_os_error()
        );
    }
    let held: Vec<std::os::fd::OwnedFd> = (0..SOCKETS)
        .map(|_| {
            // SAFETY: socket(2) with constant arguments; the fd is owned below.
            let fd =
                unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            // SAFETY: a fresh fd nobody else owns.
            unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
        })
        .collect();
    let walk = portdial::ports::sockets::owners();
    let pid = std::process::id();
    let ours = walk.by_inode.values().filter(|o| o.pid == pid).count();
    assert!(
        ours >= SOCKETS,
        "the walk found {ours} of our {SOCKETS} sockets"
    );
    eprintln!(
        "owner mapping: {} socket inodes on the machine, {ours} of them this process's",
        walk.by_inode.len()
    );
    let mut group = c.benchmark_group("owners");
    group.sample_size(10);
    group.bench_function("owner_mapping_10000_sockets", |b| {
        b.iter(|| black_box(portdial::ports::sockets::owners()))
    });
    group.finish();
    drop(held);
}

fn session_echo(c: &mut Criterion) {
    use portdial_ppp::session::{Session, SessionConfig};
    // Bring a session up against the recorded CHAP capture's AC frames is heavy;
    // instead time the machine's handling of an Echo-Request on an unknown
    // session: parse, check, drop — the per-frame control-path floor.
    let config = SessionConfig {
        our_mac: ENCAP.src,
        ..SessionConfig::default()
    };
    let mut session = Session::new(config, [1; 32]);
    let now = Instant::now();
    session.open(now);
    while session.poll_transmit().is_some() {}
    let echo = [0x09u8, 0x01, 0x00, 0x08, 0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0u8; HEADROOM + echo.len()];
    frame[HEADROOM..].copy_from_slice(&echo);
    let range = ENCAP
        .encapsulate(&mut frame, HEADROOM, echo.len(), 0xc021)
        .unwrap();
    let frame = frame[range].to_vec();
    c.bench_function("session_handle_echo_frame", |b| {
        b.iter(|| {
            black_box(session.handle_frame(now, black_box(&frame)));
        })
    });
}

criterion_group!(
    benches,
    per_packet,
    judge_all,
    entry_size,
    owner_mapping,
    session_echo
);
criterion_main!(benches);
