//! Packets that end a connection, built from what the data path accounted to
//! its port: a TCP reset toward the remote (so the far end frees its state),
//! and, for kernels without `SOCK_DESTROY`, a reset or an ICMP port
//! unreachable toward the local socket, written into the TUN as if it came
//! from the remote.
//!
//! Not the hot path: each builder allocates its packet. Headers and
//! checksums come from the protocol crate's `Repr`s and views.

use std::net::IpAddr;

use portdial_protocol::ip::{icmp, ipv4, ipv6, protocol, tcp, udp, TcpFlags};

use super::table::PortEntry;
use super::Proto;

/// TTL / hop limit of the packets we make (Linux's default).
const HOP_LIMIT: u8 = 64;

/// A TCP RST from the local address and port to the entry's remote, with
/// seq = `snd_nxt` (the sequence the remote expects next, which it accepts
/// as an exact-match reset, RFC 5961 §3.2). When the receive side is known,
/// ACK is set with ack = `rcv_nxt`, as Linux's own active reset does.
///
/// None unless the entry is TCP with known send state and both addresses
/// are of one family.
pub fn tcp_rst_to_remote(entry: &PortEntry) -> Option<Vec<u8>> {
    if entry.proto != Proto::Tcp || !entry.snd_known {
        return None;
    }
    let (flags, ack) = if entry.rcv_known {
        (TcpFlags::RST | TcpFlags::ACK, entry.rcv_nxt)
    } else {
        (TcpFlags::RST, 0)
    };
    tcp_packet(
        (entry.local_ip, entry.port),
        (entry.remote.ip, entry.remote.port),
        entry.snd_nxt,
        ack,
        flags,
    )
}

/// A TCP RST+ACK from the entry's remote to the local socket, with seq =
/// `rcv_nxt` (what the local socket expects next) and ack = `snd_nxt`, for
/// writing into the TUN: the socket's next call fails with ECONNRESET.
///
/// None unless the entry is TCP with both sides' sequence state known and
/// both addresses are of one family.
pub fn tcp_rst_to_local(entry: &PortEntry) -> Option<Vec<u8>> {
    if entry.proto != Proto::Tcp || !entry.snd_known || !entry.rcv_known {
        return None;
    }
    tcp_packet(
        (entry.remote.ip, entry.remote.port),
        (entry.local_ip, entry.port),
        entry.rcv_nxt,
        entry.snd_nxt,
        TcpFlags::RST | TcpFlags::ACK,
    )
}

/// An ICMP port unreachable (IPv4 type 3 code 3, ICMPv6 type 1 code 4) from
/// the entry's remote to the local address, quoting the IP header and the
/// UDP header of a datagram local → remote, for writing into the TUN: a
/// connected UDP socket's next call fails with ECONNREFUSED.
///
/// None unless the entry is UDP and both addresses are of one family.
pub fn udp_unreachable_to_local(entry: &PortEntry) -> Option<Vec<u8>> {
    if entry.proto != Proto::Udp {
        return None;
    }
    let (local, remote) = (entry.local_ip, entry.remote.ip);
    if !usable(local, remote) {
        return None;
    }
    // The quoted datagram: what the local socket would have sent, with an
    // empty payload (the kernel matches the socket by addresses and ports).
    let datagram = udp::Repr {
        src_port: entry.port,
        dst_port: entry.remote.port,
        payload: &[],
    };
    let quote = ip_packet(
        local,
        remote,
        protocol::UDP,
        datagram.buffer_len(),
        |bytes| datagram.emit(&mut udp::Packet::new_unchecked(bytes), &local, &remote),
    )?;
    let (msg_type, code, next) = match remote {
        IpAddr::V4(_) => (icmp::v4::DEST_UNREACHABLE, 3, protocol::ICMP),
        IpAddr::V6(_) => (icmp::v6::DEST_UNREACHABLE, 4, protocol::ICMPV6),
    };
    let message_len = icmp::HEADER_LEN + quote.len();
    ip_packet(remote, local, next, message_len, |bytes| {
        let mut message = icmp::Packet::new_unchecked(bytes);
        message.set_msg_type(msg_type);
        message.set_code(code);
        message.set_rest_of_header(0);
        message.data_mut().copy_from_slice(&quote);
        match remote {
            IpAddr::V4(_) => message.fill_checksum_v4(),
            IpAddr::V6(_) => message.fill_checksum_v6(&remote, &local),
        }
    })
}

/// Addresses a packet can go between: one family, neither unspecified.
fn usable(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4() && !a.is_unspecified() && !b.is_unspecified()
}

/// A bare TCP segment (no options, no data, window 0) in an IP packet.
fn tcp_packet(
    (src, src_port): (IpAddr, u16),
    (dst, dst_port): (IpAddr, u16),
    seq: u32,
    ack: u32,
    flags: TcpFlags,
) -> Option<Vec<u8>> {
    if !usable(src, dst) {
        return None;
    }
    let segment = tcp::Repr {
        src_port,
        dst_port,
        seq_number: seq,
        ack_number: ack,
        flags,
        window_len: 0,
        urgent_at: 0,
        options: &[],
        payload: &[],
    };
    ip_packet(src, dst, protocol::TCP, segment.buffer_len(), |bytes| {
        segment.emit(&mut tcp::Packet::new_unchecked(bytes), &src, &dst)
    })
}

/// An IP header src → dst for `payload_len` bytes of protocol `next`, and
/// the payload `write_payload` fills in. None for mixed families.
fn ip_packet(
    src: IpAddr,
    dst: IpAddr,
    next: u8,
    payload_len: usize,
    write_payload: impl FnOnce(&mut [u8]),
) -> Option<Vec<u8>> {
    let (mut bytes, header_len) = match (src, dst) {
        (IpAddr::V4(src_addr), IpAddr::V4(dst_addr)) => {
            let repr = ipv4::Repr {
                src_addr,
                dst_addr,
                protocol: next,
                ttl: HOP_LIMIT,
                payload_len,
            };
            let header_len = repr.buffer_len();
            let mut bytes = vec![0; header_len.checked_add(payload_len)?];
            repr.emit(&mut ipv4::Packet::new_unchecked(&mut bytes[..]));
            (bytes, header_len)
        }
        (IpAddr::V6(src_addr), IpAddr::V6(dst_addr)) => {
            let repr = ipv6::Repr {
                src_addr,
                dst_addr,
                next_header: next,
                hop_limit: HOP_LIMIT,
                payload_len,
            };
            let header_len = repr.buffer_len();
            let mut bytes = vec![0; header_len.checked_add(payload_len)?];
            repr.emit(&mut ipv6::Packet::new_unchecked(&mut bytes[..]));
            (bytes, header_len)
        }
        _ => return None,
    };
    write_payload(bytes.get_mut(header_len..)?);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

    use portdial_protocol::ip::{self, FlowInfo};

    use super::*;
    use crate::ports::table::testing::{tcp, udp};
    use crate::ports::table::PortTable;
    use crate::ports::{Direction, Remote};

    const ACK: TcpFlags = TcpFlags::ACK;
    const SYN: TcpFlags = TcpFlags::SYN;

    fn v4(port: u16) -> SocketAddr {
        (Ipv4Addr::new(192, 0, 2, 10), port).into()
    }

    fn remote_v4(port: u16) -> SocketAddr {
        (Ipv4Addr::new(198, 51, 100, 7), port).into()
    }

    fn v6(port: u16) -> SocketAddr {
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10), port).into()
    }

    fn remote_v6(port: u16) -> SocketAddr {
        (Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1), port).into()
    }

    /// A client handshake and one request/response, accounted: our ISN
    /// 1000, theirs 5000, 16 bytes of request, 64 of response.
    fn tcp_session(local: SocketAddr, remote: SocketAddr) -> PortEntry {
        let mut table = PortTable::new(4);
        let packets = [
            (
                Direction::Tx,
                tcp(local, remote, 1000, 0, SYN, 64240, &[], &[]),
            ),
            (
                Direction::Rx,
                tcp(remote, local, 5000, 1001, SYN | ACK, 65535, &[], &[]),
            ),
            (
                Direction::Tx,
                tcp(local, remote, 1001, 5001, ACK, 502, &[], &[]),
            ),
            (
                Direction::Tx,
                tcp(local, remote, 1001, 5001, ACK, 502, &[], &[b'G'; 16]),
            ),
            (
                Direction::Rx,
                tcp(remote, local, 5001, 1017, ACK, 256, &[], &[b'R'; 64]),
            ),
        ];
        for (at, (direction, packet)) in packets.iter().enumerate() {
            table.account(at as u32, *direction, packet).unwrap();
        }
        table.get(Proto::Tcp, local.port()).unwrap()
    }

    /// Parses a built packet back, checking every checksum; returns its flow.
    fn parse_verified(bytes: &[u8]) -> FlowInfo {
        let flow = ip::inspect(bytes).unwrap();
        assert_eq!(usize::try_from(flow.total_len).unwrap(), bytes.len());
        let segment = match flow.ip_version {
            4 => {
                let packet = ipv4::Packet::new_checked(bytes).unwrap();
                assert!(packet.verify_checksum());
                assert_eq!(packet.ttl(), HOP_LIMIT);
                packet.payload()
            }
            _ => {
                let packet = ipv6::Packet::new_checked(bytes).unwrap();
                assert_eq!(packet.hop_limit(), HOP_LIMIT);
                &bytes[ipv6::HEADER_LEN..]
            }
        };
        // For an ICMP error the flow's addresses are the quoted packet's.
        let (src, dst): (IpAddr, IpAddr) = match flow.ip_version {
            4 => {
                let packet = ipv4::Packet::new_checked(bytes).unwrap();
                (packet.src_addr().into(), packet.dst_addr().into())
            }
            _ => {
                let packet = ipv6::Packet::new_checked(bytes).unwrap();
                (packet.src_addr().into(), packet.dst_addr().into())
            }
        };
        if flow.quoted {
            let message = icmp::Packet::new_checked(segment).unwrap();
            match flow.ip_version {
                4 => assert!(message.verify_checksum_v4()),
                _ => assert!(message.verify_checksum_v6(&src, &dst)),
            }
        } else {
            let packet = tcp::Packet::new_checked(segment).unwrap();
            let repr = tcp::Repr::parse(&packet, &src, &dst).expect("valid checksum");
            assert_eq!((repr.payload.len(), repr.options.len()), (0, 0));
        }
        flow
    }

    #[test]
    fn resets_carry_the_entrys_sequence_numbers() {
        for (local, remote) in [(v4(40000), remote_v4(80)), (v6(40000), remote_v6(443))] {
            let entry = tcp_session(local, remote);
            assert_eq!((entry.snd_nxt, entry.rcv_nxt), (1017, 5065));

            let to_remote = tcp_rst_to_remote(&entry).unwrap();
            let flow = parse_verified(&to_remote);
            assert_eq!((flow.src, flow.src_port), (local.ip(), local.port()));
            assert_eq!((flow.dst, flow.dst_port), (remote.ip(), remote.port()));
            assert_eq!(flow.tcp_flags, TcpFlags::RST | ACK);
            assert_eq!((flow.seq, flow.ack), (1017, 5065));

            let to_local = tcp_rst_to_local(&entry).unwrap();
            let flow = parse_verified(&to_local);
            assert_eq!((flow.src, flow.src_port), (remote.ip(), remote.port()));
            assert_eq!((flow.dst, flow.dst_port), (local.ip(), local.port()));
            assert_eq!(flow.tcp_flags, TcpFlags::RST | ACK);
            assert_eq!((flow.seq, flow.ack), (5065, 1017));
            assert_eq!(udp_unreachable_to_local(&entry), None);
        }
    }

    #[test]
    fn a_reset_needs_sequence_state() {
        let (local, remote) = (v4(40001), remote_v4(80));
        let bare = PortEntry::new(
            Proto::Tcp,
            40001,
            local.ip(),
            Remote {
                ip: remote.ip(),
                port: 80,
            },
            0,
        );
        assert_eq!(tcp_rst_to_remote(&bare), None);
        assert_eq!(tcp_rst_to_local(&bare), None);
        // Only our SYN seen: the remote can be reset (plain RST, no ACK), the
        // local socket not (nothing of the peer's side is known).
        let mut table = PortTable::new(1);
        table.account(
            0,
            Direction::Tx,
            &tcp(local, remote, 77, 0, SYN, 9, &[], &[]),
        );
        let entry = table.get(Proto::Tcp, 40001).unwrap();
        let flow = parse_verified(&tcp_rst_to_remote(&entry).unwrap());
        assert_eq!((flow.tcp_flags, flow.seq, flow.ack), (TcpFlags::RST, 78, 0));
        assert_eq!(tcp_rst_to_local(&entry), None);
        // Mixed or unspecified addresses.
        let mut mixed = tcp_session(local, remote);
        mixed.remote.ip = remote_v6(0).ip();
        assert_eq!(tcp_rst_to_remote(&mixed), None);
        assert_eq!(tcp_rst_to_local(&mixed), None);
        mixed.remote.ip = Ipv4Addr::UNSPECIFIED.into();
        assert_eq!(tcp_rst_to_local(&mixed), None);
    }

    #[test]
    fn port_unreachable_quotes_our_datagram() {
        for (local, remote, code) in [(v4(5353), remote_v4(53), 3), (v6(5353), remote_v6(53), 4)] {
            let mut table = PortTable::new(2);
            table.account(0, Direction::Tx, &udp(local, remote, b"query"));
            let entry = table.get(Proto::Udp, 5353).unwrap();
            assert_eq!(tcp_rst_to_remote(&entry), None);
            let bytes = udp_unreachable_to_local(&entry).unwrap();
            let flow = parse_verified(&bytes);
            // The quote is local → remote, UDP, ports as the socket's.
            assert!(flow.quoted);
            assert_eq!(flow.protocol, protocol::UDP);
            assert_eq!((flow.src, flow.src_port), (local.ip(), 5353));
            assert_eq!((flow.dst, flow.dst_port), (remote.ip(), 53));
            let expected_type = match local {
                SocketAddr::V4(_) => icmp::v4::DEST_UNREACHABLE,
                SocketAddr::V6(_) => icmp::v6::DEST_UNREACHABLE,
            };
            assert_eq!((flow.icmp_type, flow.icmp_code), (expected_type, code));
            // Outer header: remote → local; the quote is IP header + 8 bytes.
            let outer_len = if local.is_ipv4() { 20 } else { 40 };
            assert_eq!(bytes.len(), 2 * outer_len + 8 + 8);
            let quote = &bytes[outer_len + 8..];
            let quoted_udp = udp::Packet::new_checked(&quote[outer_len..]).unwrap();
            assert_eq!(quoted_udp.len(), 8);
            assert!(quoted_udp.verify_checksum(&local.ip(), &remote.ip()));
            // Fed back to the table, it counts as an error on our port.
            table.account(1, Direction::Rx, &bytes).unwrap();
            assert_eq!(table.get(Proto::Udp, 5353).unwrap().icmp_errors, 1);
        }
    }

    /// End to end in the test's own network namespace: a TUN with
    /// 192.0.2.10 peer 192.0.2.1 plays the session; the test answers for
    /// the peer by writing into the TUN.
    mod in_a_namespace {
        use std::time::Duration;

        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        use super::*;
        use crate::netlink::Netlink;
        use crate::netns::in_netns_async;
        use crate::tun::Tun;

        const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
        const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
        const WAIT: Duration = Duration::from_secs(2);

        async fn point_to_point_tun() -> Tun {
            let netlink = Netlink::connect().expect("netlink");
            let tun = Tun::create("pdrel0").unwrap_or_else(|error| panic!("{error}"));
            let index = netlink
                .link_index("pdrel0")
                .await
                .expect("query")
                .expect("pdrel0 exists");
            // No IPv6: no router solicitations on the TUN.
            netlink
                .set_ipv6_disabled("pdrel0", true)
                .expect("disable_ipv6");
            netlink.set_mtu(index, 1492).await.expect("mtu");
            netlink
                .add_ipv4_ptp(index, LOCAL, PEER)
                .await
                .expect("ptp address");
            netlink.set_up(index).await.expect("up");
            assert!(netlink.wait_carrier("pdrel0", WAIT).await.expect("wait"));
            tun
        }

        /// The next packet from the TUN that `keep` accepts, within 2 s.
        async fn recv_matching(tun: &Tun, keep: impl Fn(&FlowInfo) -> bool) -> (Vec<u8>, FlowInfo) {
            let mut buffer = [0u8; 2048];
            loop {
                let len = tokio::time::timeout(WAIT, tun.recv(&mut buffer))
                    .await
                    .expect("a packet within 2 s")
                    .expect("recv");
                let packet = buffer.get(..len).expect("len within buffer").to_vec();
                if let Ok(flow) = ip::inspect(&packet) {
                    if keep(&flow) {
                        return (packet, flow);
                    }
                }
            }
        }

        /// The peer's side of the exchange, accounted as the data path would.
        async fn from_peer(tun: &Tun, table: &mut PortTable, now: u32, packet: &[u8]) {
            table
                .account(now, Direction::Rx, packet)
                .expect("accounted");
            tun.send(packet).await.expect("write into the TUN");
        }

        #[test]
        fn reset_to_local_breaks_an_established_connection() {
            in_netns_async(|| async {
                let tun = point_to_point_tun().await;
                let mut table = PortTable::new(16);
                let connecting = tokio::spawn(tokio::net::TcpStream::connect((PEER, 80)));

                let is_tcp_to_peer =
                    |flow: &FlowInfo| flow.protocol == protocol::TCP && flow.dst_port == 80;
                let (syn, syn_flow) =
                    recv_matching(&tun, |f| is_tcp_to_peer(f) && f.tcp_flags == SYN).await;
                table.account(0, Direction::Tx, &syn).expect("accounted");
                let local = SocketAddr::from((LOCAL, syn_flow.src_port));
                let peer = SocketAddr::from((PEER, 80));
                let peer_isn: u32 = 0xffff_f000;
                let mss_1400 = [tcp::option::MSS, 4, 0x05, 0x78];
                let syn_ack = tcp(
                    peer,
                    local,
                    peer_isn,
                    syn_flow.seq.wrapping_add(1),
                    SYN | ACK,
                    65535,
                    &mss_1400,
                    &[],
                );
                from_peer(&tun, &mut table, 1, &syn_ack).await;
                let (ack, _) =
                    recv_matching(&tun, |f| is_tcp_to_peer(f) && f.tcp_flags == ACK).await;
                table.account(2, Direction::Tx, &ack).expect("accounted");
                let mut stream = tokio::time::timeout(WAIT, connecting)
                    .await
                    .expect("connected within 2 s")
                    .expect("task")
                    .expect("connect");

                let request = b"GET / HTTP/1.0\r\n\r\n";
                stream.write_all(request).await.expect("write");
                let (get, get_flow) =
                    recv_matching(&tun, |f| is_tcp_to_peer(f) && f.payload_len > 0).await;
                table.account(3, Direction::Tx, &get).expect("accounted");
                let mut their_seq = peer_isn.wrapping_add(1);
                let our_next = get_flow.seq.wrapping_add(request.len() as u32);
                let response = b"HTTP/1.0 200 OK\r\n\r\nhello";
                let data = tcp(
                    peer,
                    local,
                    their_seq,
                    our_next,
                    ACK | TcpFlags::PSH,
                    65535,
                    &[],
                    response,
                );
                from_peer(&tun, &mut table, 4, &data).await;
                their_seq = their_seq.wrapping_add(response.len() as u32);
                let mut buffer = [0u8; 64];
                let len = tokio::time::timeout(WAIT, stream.read(&mut buffer))
                    .await
                    .expect("response within 2 s")
                    .expect("read");
                assert_eq!(&buffer[..len], response);
                let (ack, _) =
                    recv_matching(&tun, |f| is_tcp_to_peer(f) && f.ack == their_seq).await;
                table.account(5, Direction::Tx, &ack).expect("accounted");

                let entry = table.get(Proto::Tcp, local.port()).expect("entry");
                assert!(entry.request_seen);
                assert_eq!((entry.snd_nxt, entry.snd_acked), (our_next, our_next));
                assert_eq!(entry.rcv_nxt, their_seq);
                assert_eq!((entry.tx_data_packets, entry.rx_data_packets), (1, 1));
                // The reset for the remote starts where the local socket's
                // next segment would.
                let to_remote = ip::inspect(&tcp_rst_to_remote(&entry).expect("rst")).unwrap();
                assert_eq!((to_remote.seq, to_remote.ack), (our_next, their_seq));

                // A reset one segment off is not accepted (RFC 5961: at most
                // a challenge ACK): the connection still carries data.
                let off = tcp(
                    peer,
                    local,
                    their_seq.wrapping_add(1000),
                    our_next,
                    TcpFlags::RST | ACK,
                    0,
                    &[],
                    &[],
                );
                from_peer(&tun, &mut table, 6, &off).await;
                let more = tcp(peer, local, their_seq, our_next, ACK, 65535, &[], b"more");
                from_peer(&tun, &mut table, 7, &more).await;
                let len = tokio::time::timeout(WAIT, stream.read(&mut buffer))
                    .await
                    .expect("more within 2 s")
                    .expect("read after the wrong reset");
                assert_eq!(&buffer[..len], b"more");

                let entry = table.get(Proto::Tcp, local.port()).expect("entry");
                assert_eq!(entry.rcv_nxt, their_seq.wrapping_add(4));
                let reset = tcp_rst_to_local(&entry).expect("rst to local");
                tun.send(&reset).await.expect("write the reset");
                let error = tokio::time::timeout(WAIT, stream.read(&mut buffer))
                    .await
                    .expect("the reset within 2 s")
                    .expect_err("the connection is reset");
                assert_eq!(error.raw_os_error(), Some(libc::ECONNRESET));
            });
        }

        #[test]
        fn port_unreachable_to_local_refuses_a_connected_udp_socket() {
            in_netns_async(|| async {
                let tun = point_to_point_tun().await;
                let mut table = PortTable::new(16);
                let socket = tokio::net::UdpSocket::bind((LOCAL, 0)).await.expect("bind");
                socket.connect((PEER, 53)).await.expect("connect");
                socket.send(b"query").await.expect("send");
                let (query, flow) =
                    recv_matching(&tun, |f| f.protocol == protocol::UDP && f.dst_port == 53).await;
                table.account(0, Direction::Tx, &query).expect("accounted");
                let local = SocketAddr::from((LOCAL, flow.src_port));
                let answer = udp((PEER, 53).into(), local, b"answer");
                from_peer(&tun, &mut table, 1, &answer).await;
                let mut buffer = [0u8; 64];
                let len = tokio::time::timeout(WAIT, socket.recv(&mut buffer))
                    .await
                    .expect("answer within 2 s")
                    .expect("recv");
                assert_eq!(&buffer[..len], b"answer");

                let entry = table.get(Proto::Udp, local.port()).expect("entry");
                assert_eq!((entry.udp_answered, entry.udp_unanswered), (1, 0));
                let refusal = udp_unreachable_to_local(&entry).expect("unreachable");
                tun.send(&refusal).await.expect("write the error");
                let error = tokio::time::timeout(WAIT, socket.recv(&mut buffer))
                    .await
                    .expect("the error within 2 s")
                    .expect_err("the socket is refused");
                assert_eq!(error.raw_os_error(), Some(libc::ECONNREFUSED));
            });
        }
    }
}
