//! ip::inspect and ip::clamp_mss_in_packet on arbitrary IP packets, and the
//! IPv4/IPv6/TCP/UDP/ICMP views' getters. Beyond "no panic": the flow is
//! consistent with the packet, MSS clamping keeps a valid TCP checksum
//! valid and touches nothing else, and the Reprs round-trip.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use portdial_protocol::ip::{self, icmp, ipv4, ipv6, tcp, udp, Fragment, TcpFlags};

fuzz_target!(|data: &[u8]| {
    if let Ok(flow) = ip::inspect(data) {
        check_flow(data, &flow);
    }
    check_clamp(data, 1452);
    check_clamp(data, 536);
    check_views(data);
});

fn check_flow(data: &[u8], flow: &ip::FlowInfo) {
    assert_eq!(Some(flow.ip_version), data.first().map(|byte| byte >> 4));
    assert!(flow.total_len as usize <= data.len());
    assert!(u32::from(flow.payload_len) <= flow.total_len);
    if flow.fragment == Fragment::Later {
        assert_eq!((flow.src_port, flow.dst_port, flow.seq), (0, 0, 0));
        assert!(!flow.quoted);
    }
    if flow.quoted {
        assert_eq!(flow.payload_len, 0);
        assert!(matches!(
            flow.protocol,
            ip::protocol::TCP | ip::protocol::UDP
        ));
    }
    if flow.protocol != ip::protocol::TCP || flow.quoted {
        assert_eq!(flow.tcp_flags, TcpFlags::EMPTY);
        assert_eq!(flow.ack, 0);
    }
    assert_eq!(flow.src.is_ipv4(), flow.ip_version == 4);
    assert_eq!(flow.dst.is_ipv4(), flow.ip_version == 4);
}

/// The TCP segment of an unfragmented (or first-fragment) TCP packet, with
/// its addresses, as clamp_mss_in_packet sees it.
fn tcp_segment(data: &[u8]) -> Option<(std::ops::Range<usize>, IpAddr, IpAddr)> {
    match data.first()? >> 4 {
        4 => {
            let ip = ipv4::Packet::new_checked(data).ok()?;
            (ip.protocol() == ip::protocol::TCP && ip.frag_offset() == 0).then(|| {
                (
                    usize::from(ip.header_len())..usize::from(ip.total_len()),
                    ip.src_addr().into(),
                    ip.dst_addr().into(),
                )
            })
        }
        6 => {
            let ip = ipv6::Packet::new_checked(data).ok()?;
            let upper = ip.upper_layer().ok()?;
            (upper.protocol == ip::protocol::TCP && !upper.non_first_fragment).then(|| {
                (
                    upper.offset..ip.total_len(),
                    ip.src_addr().into(),
                    ip.dst_addr().into(),
                )
            })
        }
        _ => None,
    }
}

fn check_clamp(data: &[u8], max_mss: u16) {
    let mut copy = data.to_vec();
    let changed = ip::clamp_mss_in_packet(&mut copy, max_mss);
    if !changed {
        assert_eq!(copy, data, "clamp reported no change but changed bytes");
        return;
    }
    let (range, src, dst) = tcp_segment(data).expect("only TCP segments are clamped");
    let before = tcp::Packet::new_checked(&data[range.clone()]).expect("clamped a valid header");
    let after = tcp::Packet::new_checked(&copy[range.clone()]).expect("clamping keeps the header");
    assert!(before.flags().contains(TcpFlags::SYN));
    assert!(before.mss().is_some_and(|mss| mss > max_mss));
    assert_eq!(after.mss(), Some(max_mss));
    // RFC 1624's incremental update: a checksum that was right stays right.
    if before.verify_checksum(&src, &dst) {
        assert!(
            after.verify_checksum(&src, &dst),
            "clamping broke the TCP checksum"
        );
    }
    // Only the MSS value and the checksum changed.
    let header_len = usize::from(before.header_len());
    for (at, (old, new)) in data.iter().zip(&copy).enumerate() {
        if old != new {
            let in_segment = at.checked_sub(range.start);
            let allowed = in_segment.is_some_and(|offset| {
                (16..18).contains(&offset) || (20..header_len).contains(&offset)
            });
            assert!(
                allowed,
                "clamping changed byte {at} outside MSS and checksum"
            );
        }
    }
    // Idempotent, and the flow does not change.
    assert!(!ip::clamp_mss_in_packet(&mut copy.clone(), max_mss));
    let flow_before = ip::inspect(data);
    let flow_after = ip::inspect(&copy);
    assert_eq!(flow_before, flow_after);
}

fn check_views(data: &[u8]) {
    if let Ok(ip) = ipv4::Packet::new_checked(data) {
        let _ = (
            ip.version(),
            ip.header_len(),
            ip.dscp(),
            ip.ecn(),
            ip.ident(),
        );
        let _ = (ip.dont_fragment(), ip.more_fragments(), ip.frag_offset());
        let _ = (
            ip.is_fragment(),
            ip.ttl(),
            ip.checksum(),
            ip.verify_checksum(),
        );
        assert_eq!(ip.as_bytes().len(), usize::from(ip.total_len()));
        assert_eq!(
            ip.options().len() + ip::ipv4::HEADER_LEN + ip.payload().len(),
            usize::from(ip.total_len())
        );
        let (src, dst) = (IpAddr::from(ip.src_addr()), IpAddr::from(ip.dst_addr()));
        if let Ok(repr) = ipv4::Repr::parse(&ip) {
            let mut buf = vec![0u8; repr.buffer_len() + repr.payload_len];
            repr.emit(&mut ipv4::Packet::new_unchecked(&mut buf[..]));
            let emitted = ipv4::Packet::new_checked(&buf[..]).expect("emitted IPv4 is valid");
            assert!(emitted.verify_checksum());
            if repr.buffer_len() + repr.payload_len <= usize::from(u16::MAX) {
                assert_eq!(ipv4::Repr::parse(&emitted), Ok(repr));
            }
        }
        if ip.frag_offset() == 0 {
            check_transport(ip.protocol(), ip.payload(), &src, &dst, 4);
        }
    }
    if let Ok(ip) = ipv6::Packet::new_checked(data) {
        let _ = (
            ip.version(),
            ip.traffic_class(),
            ip.flow_label(),
            ip.hop_limit(),
        );
        assert_eq!(ip.as_bytes().len(), ip.total_len());
        assert_eq!(ip.payload().len(), usize::from(ip.payload_len()));
        let (src, dst) = (IpAddr::from(ip.src_addr()), IpAddr::from(ip.dst_addr()));
        if let Ok(repr) = ipv6::Repr::parse(&ip) {
            let mut buf = vec![0u8; repr.buffer_len() + repr.payload_len];
            repr.emit(&mut ipv6::Packet::new_unchecked(&mut buf[..]));
            let emitted = ipv6::Packet::new_checked(&buf[..]).expect("emitted IPv6 is valid");
            assert_eq!(ipv6::Repr::parse(&emitted), Ok(repr));
        }
        if let Ok(upper) = ip.upper_layer() {
            assert!(upper.offset <= ip.total_len());
            if !upper.non_first_fragment {
                let segment = &ip.as_bytes()[upper.offset..];
                check_transport(upper.protocol, segment, &src, &dst, 6);
            }
        }
    }
}

fn check_transport(protocol: u8, segment: &[u8], src: &IpAddr, dst: &IpAddr, version: u8) {
    match protocol {
        ip::protocol::TCP => {
            let Ok(packet) = tcp::Packet::new_checked(segment) else {
                return;
            };
            let _ = (packet.src_port(), packet.dst_port(), packet.seq_number());
            let _ = (
                packet.ack_number(),
                packet.flags().to_string(),
                packet.window_len(),
            );
            let _ = (packet.checksum(), packet.urgent_at(), packet.mss());
            assert_eq!(
                tcp::HEADER_LEN + packet.options().len() + packet.payload().len(),
                segment.len()
            );
            if let Ok(repr) = tcp::Repr::parse(&packet, src, dst) {
                let emitted = repr.to_vec(src, dst);
                // Options come from a whole header: no padding or truncation.
                assert_eq!(emitted.len(), segment.len());
                let again = tcp::Packet::new_checked(&emitted[..]).expect("emitted TCP is valid");
                assert_eq!(tcp::Repr::parse(&again, src, dst), Ok(repr));
            }
        }
        ip::protocol::UDP => {
            let Ok(packet) = udp::Packet::new_checked(segment) else {
                return;
            };
            let _ = (
                packet.src_port(),
                packet.dst_port(),
                packet.len(),
                packet.checksum(),
            );
            assert!(packet.payload().len() + udp::HEADER_LEN <= segment.len());
            if let Ok(repr) = udp::Repr::parse(&packet, src, dst) {
                let emitted = repr.to_vec(src, dst);
                let again = udp::Packet::new_checked(&emitted[..]).expect("emitted UDP is valid");
                assert!(again.verify_checksum(src, dst));
                assert_eq!(udp::Repr::parse(&again, src, dst), Ok(repr));
            }
        }
        ip::protocol::ICMP | ip::protocol::ICMPV6 => {
            let Ok(packet) = icmp::Packet::new_checked(segment) else {
                return;
            };
            let _ = (packet.msg_type(), packet.code(), packet.checksum());
            let _ = (
                packet.rest_of_header(),
                packet.echo_ident(),
                packet.echo_seq(),
            );
            let _ = packet.data();
            let quoted = if version == 4 {
                let _ = packet.verify_checksum_v4();
                packet.quoted_v4()
            } else {
                let _ = packet.verify_checksum_v6(src, dst);
                packet.quoted_v6()
            };
            if let Ok(quoted) = quoted {
                let _ = (quoted.ports(), quoted.tcp_seq());
                assert!(quoted.header.len() + quoted.transport.len() <= packet.data().len());
            }
        }
        _ => {}
    }
}
