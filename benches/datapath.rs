//! The per-packet cost of the data path: encapsulation or decapsulation plus
//! the port manager's accounting, with 1k, 10k and 100k live port entries
//! (one port over and over, and a different port every packet); judging
//! every port of a full table; mapping 10,000 real sockets to their owner
//! through /proc; the session machine answering an LCP Echo-Request on an
//! opened session; bytes per port entry and the resident memory of 100k
//! entries (printed). `cargo bench --bench datapath`; compare figures within
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
            // An open window: 0 would say the application stopped reading,
            // which few ports do.
            packet[34..36].copy_from_slice(&64_240u16.to_be_bytes());
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
                if judge(Some(&entry), &view, &context).verdict
                    == portdial::ports::judge::Verdict::Phantom
                {
                    phantoms += 1;
                }
            }
            black_box(phantoms)
        })
    });
}

/// This process's resident set, in KiB (`VmRSS` of /proc/self/status).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

fn entry_size(c: &mut Criterion) {
    // Not timings: printed once so the figures sit beside the others.
    eprintln!(
        "bytes per port entry: {} touched per packet (one cache line), {} in all, {} more for an entry with a spill",
        PortTable::HOT_ENTRY_BYTES,
        PortTable::ENTRY_BYTES,
        PortTable::SPILL_BYTES
    );
    // What a table of 100k live entries adds to the resident set (its
    // indexes included), and the process's whole RSS with it.
    let before = rss_kib();
    let table = table_with(100_000);
    let after = rss_kib();
    eprintln!(
        "RSS: a table of {} entries adds {} KiB; the bench process is at {} KiB",
        table.len(),
        after.saturating_sub(before),
        after
    );
    drop(table);
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

/// A scripted access concentrator just far enough for LCP to open: PADO and
/// PADS for the client's PADI and PADR, an LCP Configure-Request without
/// authentication, and an Ack of the client's request. Returns the session
/// and the AC's side of its encapsulation.
fn opened_session(now: Instant) -> (portdial_ppp::session::Session, SessionEncap) {
    use portdial_ppp::fsm::State;
    use portdial_ppp::session::{Session, SessionConfig};
    use portdial_protocol::control::{self, Code};
    use portdial_protocol::ethernet::{self, ethertype};
    use portdial_protocol::lcp::LcpOption;
    use portdial_protocol::pppoe::{self, Code as PppoeCode, DiscoveryRepr, Tag};

    const COOKIE: &[u8] = b"bench-cookie";
    let ac = SessionEncap {
        dst: ENCAP.src,
        src: ENCAP.dst,
        vlans: VlanStack::new(),
        session_id: ENCAP.session_id,
    };
    let discovery = |repr: &DiscoveryRepr<'_>| {
        let eth = ethernet::Repr {
            dst: ac.dst,
            src: ac.src,
            vlans: VlanStack::default(),
            ethertype: ethertype::PPPOE_DISCOVERY,
        };
        let mut frame = vec![0; eth.buffer_len() + repr.buffer_len()];
        eth.emit(&mut frame);
        repr.emit(&mut pppoe::Packet::new_unchecked(
            &mut frame[eth.buffer_len()..],
        ));
        frame
    };
    let lcp = |code, identifier, data: &[u8]| {
        let packet = control::Repr {
            code,
            identifier,
            data,
        }
        .to_vec();
        let mut frame = vec![0; HEADROOM + packet.len()];
        frame[HEADROOM..].copy_from_slice(&packet);
        let range = ac
            .encapsulate(&mut frame, HEADROOM, packet.len(), 0xc021)
            .expect("LCP frame");
        frame[range].to_vec()
    };

    let mut session = Session::new(
        SessionConfig {
            our_mac: ENCAP.src,
            ..SessionConfig::default()
        },
        [1; 32],
    );
    session.open(now);
    for _ in 0..16 {
        let mut replies = Vec::new();
        while let Some(frame) = session.poll_transmit() {
            let (eth, offset) = ethernet::Repr::parse(&frame).expect("the client's frame");
            if eth.ethertype == ethertype::PPPOE_DISCOVERY {
                let repr = DiscoveryRepr::parse_bytes(&frame[offset..]).expect("discovery");
                let mut tags = vec![Tag::ServiceName(repr.service_name().unwrap_or(b""))];
                if let Some(uniq) = repr.host_uniq() {
                    tags.push(Tag::HostUniq(uniq));
                }
                match repr.code {
                    PppoeCode::Padi => {
                        tags.push(Tag::AcName(b"bench-ac"));
                        tags.push(Tag::AcCookie(COOKIE));
                        replies.push(discovery(&DiscoveryRepr {
                            code: PppoeCode::Pado,
                            session_id: 0,
                            tags,
                        }));
                    }
                    PppoeCode::Padr => {
                        replies.push(discovery(&DiscoveryRepr {
                            code: PppoeCode::Pads,
                            session_id: ac.session_id,
                            tags,
                        }));
                        let mut options = Vec::new();
                        LcpOption::Mru(1492).push_to(&mut options);
                        LcpOption::MagicNumber(0x1a2b_3c4d).push_to(&mut options);
                        replies.push(lcp(Code::ConfigureRequest, 1, &options));
                    }
                    _ => {}
                }
            } else if let Ok(decap) = decapsulate(&frame) {
                let Ok(packet) = control::Repr::parse_bytes(&frame[decap.payload]) else {
                    continue;
                };
                if decap.protocol == 0xc021 && packet.code == Code::ConfigureRequest {
                    replies.push(lcp(Code::ConfigureAck, packet.identifier, packet.data));
                }
            }
        }
        for reply in &replies {
            session.handle_frame(now, reply);
        }
        if session.lcp().state() == State::Opened {
            return (session, ac);
        }
    }
    panic!(
        "LCP did not open against the scripted AC: {:?}",
        session.lcp().state()
    );
}

/// The session machine answering an LCP Echo-Request on an opened session:
/// the request parsed and checked, the Echo-Reply built and taken.
fn session_echo(c: &mut Criterion) {
    use portdial_protocol::control::{self, Code};

    let now = Instant::now();
    let (mut session, ac) = opened_session(now);
    while session.poll_transmit().is_some() {}
    let mut echo = Vec::new();
    portdial_protocol::lcp::EchoRepr {
        magic: 0x1a2b_3c4d,
        data: &[],
    }
    .push_to(&mut echo);
    let request = control::Repr {
        code: Code::EchoRequest,
        identifier: 7,
        data: &echo,
    }
    .to_vec();
    let mut frame = vec![0u8; HEADROOM + request.len()];
    frame[HEADROOM..].copy_from_slice(&request);
    let range = ac
        .encapsulate(&mut frame, HEADROOM, request.len(), 0xc021)
        .unwrap();
    let frame = frame[range].to_vec();
    // Once outside the timing: the request is answered.
    session.handle_frame(now, &frame);
    let reply = session.poll_transmit().expect("an Echo-Reply");
    let decap = decapsulate(&reply).unwrap();
    let answer = control::Repr::parse_bytes(&reply[decap.payload]).unwrap();
    assert_eq!((answer.code, answer.identifier), (Code::EchoReply, 7));
    c.bench_function("session_echo_request_answered", |b| {
        b.iter(|| {
            black_box(session.handle_frame(now, black_box(&frame)));
            black_box(session.poll_transmit())
        })
    });
}

criterion_group!(
    benches,
    entry_size,
    per_packet,
    judge_all,
    owner_mapping,
    session_echo
);
criterion_main!(benches);
