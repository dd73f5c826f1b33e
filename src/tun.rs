//! The TUN side: an IP interface whose packets we read and write.
//!
//! The device is created without packet information (IFF_NO_PI). Without
//! offloads each read or write is one bare IPv4 or IPv6 packet. With
//! offloads (IFF_VNET_HDR and TUNSETOFFLOAD, see [`Tun::create_with_offloads`])
//! every packet carries a virtio-net header in front: reads may return
//! TCP/UDP super-packets of up to 64 KiB for [`offload::split`](crate::offload::split), and writes
//! may carry received segments merged into one ([`Coalescer`]). It is not
//! persistent: it disappears when the [`Tun`] is dropped.

use std::io::{self, IoSlice};

use crate::offload::{Coalescer, VNET_HDR_LEN};

/// Why a TUN device could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TunError {
    #[error("creating a TUN device needs CAP_NET_ADMIN (run as root)")]
    NotPermitted,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What the kernel accepted with TUNSETOFFLOAD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offloads {
    /// TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6: TCP super-packets both ways
    /// and the virtio-net header on every packet.
    pub tcp: bool,
    /// TUN_F_USO4 | TUN_F_USO6 too (Linux 6.2): UDP super-packets.
    pub udp: bool,
}

/// A non-blocking TUN device registered with tokio. The `try_` methods
/// make the system call right away, whatever tokio last saw.
pub struct Tun {
    device: tun_rs::AsyncDevice,
    name: String,
    offloads: Offloads,
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .field("offloads", &self.offloads)
            .finish()
    }
}

impl Tun {
    /// Creates TUN device `name` (down, no address) in the calling thread's
    /// network namespace, without offloads. Must be called inside a tokio
    /// runtime.
    ///
    /// If an unattached persistent TUN of that name exists, the kernel
    /// attaches to it instead of creating one.
    pub fn create(name: &str) -> Result<Tun, TunError> {
        Tun::open(name, false)
    }

    /// [`create`](Self::create) with IFF_VNET_HDR and the TCP (and, where
    /// the kernel has them, UDP) segmentation offloads. A kernel that
    /// refuses them gets a plain TUN: see [`offloads`](Self::offloads).
    pub fn create_with_offloads(name: &str) -> Result<Tun, TunError> {
        check_name(name)?;
        match Tun::open(name, true) {
            Err(TunError::Io(error)) => {
                tracing::info!(%error, interface = name, "TUN offloads refused; using a plain TUN");
                Tun::open(name, false)
            }
            other => other,
        }
    }

    fn open(name: &str, offload: bool) -> Result<Tun, TunError> {
        check_name(name)?;
        let device = tun_rs::DeviceBuilder::new()
            .name(name)
            // Leave it down, as created: the daemon brings it up configured.
            .inherit_enable_state()
            .offload(offload)
            .build_async()
            .map_err(|error| match error.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => TunError::NotPermitted,
                _ => TunError::Io(error),
            })?;
        // tun-rs asks TSO first and USO on top, keeping whatever succeeded.
        let offloads = Offloads {
            tcp: device.tcp_gso(),
            udp: device.udp_gso(),
        };
        Ok(Tun {
            device,
            name: name.to_owned(),
            offloads,
        })
    }

    /// The device's name, as the kernel gave it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The offloads in force (none for a plain TUN).
    pub fn offloads(&self) -> Offloads {
        self.offloads
    }

    /// Receives one read's worth, waiting for it: without offloads one IP
    /// packet; with them the virtio-net header and a (super-)packet, for
    /// [`offload::split`](crate::offload::split). A longer read is cut to `buf`'s length.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.device.recv(buf).await
    }

    /// [`recv`](Self::recv) if something is queued, else `WouldBlock`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.device.try_recv(buf)
    }

    /// Hands one IP packet to the kernel, as if it arrived on the device.
    /// Fails with EIO while the device is down.
    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        if self.offloads.tcp {
            let header = [0u8; VNET_HDR_LEN];
            let parts = [IoSlice::new(&header), IoSlice::new(packet)];
            let written = self.device.send_vectored(&parts).await?;
            whole_write(written, VNET_HDR_LEN + packet.len())
        } else {
            let written = self.device.send(packet).await?;
            whole_write(written, packet.len())
        }
    }

    /// [`send`](Self::send) now, or fails with `WouldBlock`.
    pub fn try_send(&self, packet: &[u8]) -> io::Result<()> {
        if self.offloads.tcp {
            // A zero header: no GSO, checksum complete.
            let header = [0u8; VNET_HDR_LEN];
            let parts = [IoSlice::new(&header), IoSlice::new(packet)];
            whole_write(
                self.device.try_send_vectored(&parts)?,
                VNET_HDR_LEN + packet.len(),
            )
        } else {
            whole_write(self.device.try_send(packet)?, packet.len())
        }
    }

    /// Writes the (super-)packet held in `coalescer` now, virtio-net header
    /// included, and empties it (see [`Coalescer::finish`]); only for a TUN
    /// with offloads. Returns the bytes written (0: nothing was held).
    /// Fails when the write failed (the queue full, the device down).
    pub fn try_send_coalesced(&self, coalescer: &mut Coalescer) -> io::Result<usize> {
        let Some(whole) = coalescer.finish() else {
            return Ok(0);
        };
        if !self.offloads.tcp {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "coalesced writes need a TUN with offloads",
            ));
        }
        let written = self.device.try_send(whole)?;
        whole_write(written, whole.len())?;
        Ok(written)
    }
}

fn check_name(name: &str) -> Result<(), TunError> {
    // IFNAMSIZ counts the NUL; a template (%d) or path would be misread.
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['\0', '/', '%']) {
        return Err(TunError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a valid interface name"),
        )));
    }
    Ok(())
}

fn whole_write(written: usize, len: usize) -> io::Result<()> {
    if written == len {
        Ok(())
    } else {
        // A TUN takes a packet whole or not at all.
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "packet written partially",
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::time::Duration;

    use portdial_protocol::ip;

    use std::os::fd::AsFd;

    use super::*;
    use crate::netlink::Netlink;
    use crate::netns::in_netns_async;

    const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    /// Creates `pdtest0` like the daemon will: MTU 1492, point-to-point
    /// IPv4, up; IPv6 off unless asked, so no router solicitation shows up.
    async fn configured_tun(netlink: &Netlink, ipv6: bool) -> (Tun, u32) {
        let tun = Tun::create("pdtest0").unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(tun.name(), "pdtest0");
        let index = netlink
            .link_index("pdtest0")
            .await
            .expect("query")
            .expect("pdtest0 exists");
        netlink
            .set_ipv6_disabled("pdtest0", !ipv6)
            .expect("disable_ipv6");
        netlink.set_mtu(index, 1492).await.expect("mtu");
        netlink
            .add_ipv4_ptp(index, LOCAL, PEER)
            .await
            .expect("ptp address");
        netlink.set_up(index).await.expect("up");
        assert!(netlink
            .wait_carrier("pdtest0", Duration::from_secs(5))
            .await
            .expect("wait"));
        (tun, index)
    }

    /// The next packet from the TUN that `keep` accepts, within 2 s.
    async fn recv_matching(
        tun: &Tun,
        keep: impl Fn(&ip::FlowInfo) -> bool,
    ) -> (Vec<u8>, ip::FlowInfo) {
        let mut buffer = [0u8; 2048];
        loop {
            let len = tokio::time::timeout(Duration::from_secs(2), tun.recv(&mut buffer))
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

    fn ones_complement_sum(bytes: &[u8], mut sum: u32) -> u32 {
        for chunk in bytes.chunks(2) {
            let high = u32::from(chunk.first().copied().unwrap_or(0)) << 8;
            sum += high | u32::from(chunk.get(1).copied().unwrap_or(0));
        }
        sum
    }

    fn fold(mut sum: u32) -> u16 {
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// Built, not captured: IPv4/UDP `src:sport → dst:dport` with valid
    /// header and UDP checksums.
    fn udp_v4(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
        let udp_len = 8 + payload.len() as u16;
        let mut packet = vec![0x45, 0x00];
        packet.extend_from_slice(&(20 + udp_len).to_be_bytes());
        packet.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, 17, 0, 0]);
        packet.extend_from_slice(&src.octets());
        packet.extend_from_slice(&dst.octets());
        let header_checksum = fold(ones_complement_sum(&packet, 0));
        packet[10..12].copy_from_slice(&header_checksum.to_be_bytes());
        let mut udp = Vec::new();
        udp.extend_from_slice(&sport.to_be_bytes());
        udp.extend_from_slice(&dport.to_be_bytes());
        udp.extend_from_slice(&udp_len.to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&dst.octets());
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&udp_len.to_be_bytes());
        let udp_checksum = fold(ones_complement_sum(&udp, ones_complement_sum(&pseudo, 0)));
        udp[6..8].copy_from_slice(&udp_checksum.to_be_bytes());
        packet.extend_from_slice(&udp);
        packet
    }

    #[test]
    fn ip_packets_cross_the_tun_both_ways() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let (tun, index) = configured_tun(&netlink, false).await;
            let info = netlink
                .link_info("pdtest0")
                .await
                .expect("query")
                .expect("pdtest0");
            assert_eq!((info.mtu, info.up, info.mac), (1492, true, None));
            assert_eq!(
                netlink.addresses(index).await.expect("addresses"),
                [(IpAddr::V4(LOCAL), 32, Some(IpAddr::V4(PEER)))]
            );

            // Out: the kernel routes to the peer through the TUN.
            let socket = tokio::net::UdpSocket::bind("0.0.0.0:0")
                .await
                .expect("bind");
            socket
                .send_to(b"outbound", (PEER, 9))
                .await
                .expect("send_to");
            let (packet, flow) =
                recv_matching(&tun, |flow| flow.protocol == ip::protocol::UDP).await;
            assert_eq!(
                (flow.ip_version, flow.src, flow.dst, flow.dst_port),
                (4, IpAddr::V4(LOCAL), IpAddr::V4(PEER), 9)
            );
            assert!(packet.ends_with(b"outbound"));

            // In: a packet written to the TUN reaches a local socket.
            let receiver = tokio::net::UdpSocket::bind((LOCAL, 5555))
                .await
                .expect("bind local");
            tun.send(&udp_v4(PEER, 4000, LOCAL, 5555, b"inbound"))
                .await
                .expect("send");
            let mut buffer = [0u8; 64];
            let (len, from) =
                tokio::time::timeout(Duration::from_secs(2), receiver.recv_from(&mut buffer))
                    .await
                    .expect("datagram within 2 s")
                    .expect("recv_from");
            assert_eq!(
                (&buffer[..len], from),
                (&b"inbound"[..], SocketAddr::from((PEER, 4000)))
            );
            // try_send works before any wake-up.
            tun.try_send(&udp_v4(PEER, 4000, LOCAL, 5555, b"again"))
                .expect("try_send");
            let (len, _) =
                tokio::time::timeout(Duration::from_secs(2), receiver.recv_from(&mut buffer))
                    .await
                    .expect("datagram within 2 s")
                    .expect("recv_from");
            assert_eq!(&buffer[..len], b"again");
        });
    }

    #[test]
    fn default_route_is_added_and_deleted() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let (tun, index) = configured_tun(&netlink, false).await;
            let default = (Ipv4Addr::UNSPECIFIED, 0);
            assert!(!netlink
                .routes_v4(index)
                .await
                .expect("routes")
                .contains(&default));
            netlink
                .add_default_route_v4(index)
                .await
                .expect("add default");
            assert!(netlink
                .routes_v4(index)
                .await
                .expect("routes")
                .contains(&default));
            // Traffic to anywhere now leaves through the TUN.
            let socket = tokio::net::UdpSocket::bind("0.0.0.0:0")
                .await
                .expect("bind");
            let elsewhere = Ipv4Addr::new(198, 51, 100, 7);
            socket.send_to(b"x", (elsewhere, 9)).await.expect("send_to");
            let (_, flow) = recv_matching(&tun, |flow| flow.protocol == ip::protocol::UDP).await;
            assert_eq!(
                (flow.src, flow.dst),
                (IpAddr::V4(LOCAL), IpAddr::V4(elsewhere))
            );
            netlink
                .del_default_route_v4(index)
                .await
                .expect("del default");
            assert!(!netlink
                .routes_v4(index)
                .await
                .expect("routes")
                .contains(&default));
            let deleted_twice = netlink.del_default_route_v4(index).await.expect_err("gone");
            assert_eq!(deleted_twice.raw_os_error(), Some(libc::ESRCH));
            // A network route too.
            netlink
                .add_route_v4(Ipv4Addr::new(198, 51, 100, 0), 24, index)
                .await
                .expect("add route");
            assert!(netlink
                .routes_v4(index)
                .await
                .expect("routes")
                .contains(&(Ipv4Addr::new(198, 51, 100, 0), 24)));
        });
    }

    #[test]
    fn ipv6_point_to_point_link_local_addresses_work() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let (tun, index) = configured_tun(&netlink, true).await;
            // As built from IPv6CP interface identifiers.
            let local: Ipv6Addr = "fe80::200:5eff:fe00:530a".parse().expect("address");
            let peer: Ipv6Addr = "fe80::200:5eff:fe00:5301".parse().expect("address");
            netlink.flush_addresses(index).await.expect("flush");
            netlink
                .add_ipv6_ptp(index, local, peer)
                .await
                .expect("ptp v6");
            assert_eq!(
                netlink.addresses(index).await.expect("addresses"),
                [(IpAddr::V6(local), 128, Some(IpAddr::V6(peer)))]
            );
            let routes = netlink.routes_v6(index).await.expect("routes");
            assert!(routes.contains(&(peer, 128)), "{routes:?}");
            // The kernel routes to the peer through the TUN, from `local`.
            let socket = std::net::UdpSocket::bind("[::]:0").expect("bind");
            let target = std::net::SocketAddrV6::new(peer, 9, 0, index);
            socket.send_to(b"v6", target).expect("send_to");
            let (_, flow) = recv_matching(&tun, |flow| flow.protocol == ip::protocol::UDP).await;
            assert_eq!(
                (flow.ip_version, flow.src, flow.dst),
                (6, IpAddr::V6(local), IpAddr::V6(peer))
            );
            // A global address and a v6 default route.
            let global: Ipv6Addr = "2001:db8::10".parse().expect("address");
            netlink
                .add_ipv6(index, global, 64)
                .await
                .expect("global v6");
            netlink
                .add_default_route_v6(index)
                .await
                .expect("v6 default");
            let socket = std::net::UdpSocket::bind("[::]:0").expect("bind");
            let remote: Ipv6Addr = "2001:db8:1::1".parse().expect("address");
            socket.send_to(b"v6", (remote, 9)).expect("send_to");
            let (_, flow) = recv_matching(&tun, |flow| flow.dst == IpAddr::V6(remote)).await;
            assert_eq!(flow.src, IpAddr::V6(global));
            let default = (Ipv6Addr::UNSPECIFIED, 0);
            assert!(netlink
                .routes_v6(index)
                .await
                .expect("routes")
                .contains(&default));
            netlink
                .del_default_route_v6(index)
                .await
                .expect("del v6 default");
            assert!(!netlink
                .routes_v6(index)
                .await
                .expect("routes")
                .contains(&default));
            netlink.flush_addresses(index).await.expect("flush");
            assert_eq!(netlink.addresses(index).await.expect("addresses"), []);
        });
    }

    #[test]
    fn dropping_the_tun_removes_the_interface() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let tun = Tun::create("pdtest0").unwrap_or_else(|error| panic!("{error}"));
            assert!(netlink
                .link_index("pdtest0")
                .await
                .expect("query")
                .is_some());
            let mut buffer = [0u8; 64];
            let empty = tun.try_recv(&mut buffer).expect_err("nothing queued");
            assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
            drop(tun);
            assert_eq!(netlink.link_index("pdtest0").await.expect("query"), None);
        });
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "a-name-longer-than-15", "pd%d", "a/b"] {
            assert!(
                matches!(Tun::create(name), Err(TunError::Io(error)) if error.kind() == io::ErrorKind::InvalidInput),
                "{name:?}"
            );
        }
    }

    /// What the forwarder in [`tcp_through_offloading_tuns`] saw.
    #[derive(Debug, Default)]
    struct Forwarded {
        reads: usize,
        super_packets: usize,
        segments: usize,
        segment_bytes: usize,
        /// Bytes the coalescing writes reported, one header per write.
        written: usize,
        /// Batches with a failed write: the TUN's queue was full (EAGAIN),
        /// as the daemon sees it too; TCP sends those segments again.
        failed_batches: usize,
    }

    fn write_counted(to: &Tun, coalescer: &mut Coalescer, seen: &mut Forwarded) {
        match to.try_send_coalesced(coalescer) {
            Ok(written) => seen.written += written,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => seen.failed_batches += 1,
            Err(error) => panic!("TUN write: {error}"),
        }
    }

    /// One packet written alone (a zero header with offloads).
    fn write_alone(to: &Tun, packet: &[u8], seen: &mut Forwarded) {
        match to.try_send(packet) {
            Ok(()) => {
                let header = if to.offloads().tcp {
                    crate::offload::VNET_HDR_LEN
                } else {
                    0
                };
                seen.written += header + packet.len();
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => seen.failed_batches += 1,
            Err(error) => panic!("TUN write: {error}"),
        }
    }

    /// Moves everything one TUN reads into the other, the way the daemon
    /// does it (split, then coalesce), and checks every segment on the way
    /// as a receiver would: length within the MTU, IPv4 header and TCP
    /// checksums, by code independent of the splitter.
    fn forward_one(
        offloaded: bool,
        to: &Tun,
        raw: &mut [u8],
        len: usize,
        coalescer: &mut Coalescer,
        seen: &mut Forwarded,
    ) {
        use crate::offload::{split, verify, VnetHeader, MAX_SEGMENTS};
        seen.reads += 1;
        let mut bufs = vec![[0u8; 2048]; MAX_SEGMENTS];
        let mut lens = [0usize; MAX_SEGMENTS];
        let count = if offloaded {
            let header = VnetHeader::parse(raw).expect("a virtio-net header");
            if header.gso_type != crate::offload::gso::NONE {
                seen.super_packets += 1;
            }
            split(&mut raw[..len], &mut bufs, &mut lens, 0, 1492)
                .unwrap_or_else(|error| panic!("{error} splitting {header:?}"))
        } else {
            bufs[0][..len].copy_from_slice(&raw[..len]);
            lens[0] = len;
            1
        };
        for (buf, &len) in bufs.iter().zip(&lens).take(count) {
            let segment = &buf[..len];
            assert!(len <= 1492, "{len}");
            if segment[0] >> 4 == 4 && segment[9] == ip::protocol::TCP {
                assert!(verify::ipv4_header_ok(segment));
                let transport = usize::from(segment[0] & 0xf) * 4;
                assert!(verify::transport_checksum_ok(segment, false, 6, transport));
            }
            seen.segments += 1;
            seen.segment_bytes += len;
            if !offloaded {
                write_alone(to, segment, seen);
            } else if !coalescer.push(segment) {
                write_counted(to, coalescer, seen);
                if !coalescer.push(segment) {
                    write_alone(to, segment, seen);
                }
            }
        }
    }

    /// A TCP transfer both ways between two namespaces joined by two
    /// offloading TUNs and this test in between: the kernel hands over TSO
    /// super-packets, the splitter's segments are valid packets of at most
    /// the MTU, and the coalesced writes carry them intact (the bytes
    /// arrive unchanged) in fewer writes than segments.
    #[test]
    fn tcp_through_offloading_tuns_uses_super_packets() {
        let (seen, elapsed) = transfer_between_tuns(true);
        // The kernel handed over super-packets, most of the bytes came
        // in them, and merging wrote far fewer headers than segments.
        assert!(seen.super_packets > 0, "{seen:?}");
        assert!(seen.segments > 2 * seen.reads, "{seen:?}");
        let uncoalesced = seen.segment_bytes + crate::offload::VNET_HDR_LEN * seen.segments;
        assert!(seen.written < uncoalesced * 99 / 100, "{seen:?}");
        // For comparison only (no timing is asserted): the same transfer
        // through plain TUNs, one packet per read and write.
        let (plain, plain_elapsed) = transfer_between_tuns(false);
        let gbits = |elapsed: Duration| (2 * TRANSFER * 8) as f64 / elapsed.as_secs_f64() / 1e9;
        eprintln!(
            "offloads: {seen:?} {:.2} Gbit/s; plain: {} reads {:.2} Gbit/s",
            gbits(elapsed),
            plain.reads,
            gbits(plain_elapsed)
        );
    }

    /// Bytes sent each way by [`transfer_between_tuns`].
    const TRANSFER: usize = 32 << 20;

    /// Sends [`TRANSFER`] bytes from a namespace to another and back over
    /// TCP, through two TUNs (with offloads or without) and the forwarder
    /// above; returns what it saw and how long the transfer took.
    fn transfer_between_tuns(offloads: bool) -> (Forwarded, Duration) {
        use crate::netns::NetNs;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        const SIZE: usize = TRANSFER;
        const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
        const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
        let pattern = |i: usize| (i % 251) as u8;

        in_netns_async(move || async move {
            let netlink = Netlink::connect().expect("netlink");
            let far = NetNs::new().expect("second namespace");
            let create = if offloads {
                Tun::create_with_offloads
            } else {
                Tun::create
            };
            let tun_a = create("pdoffa").expect("TUN a");
            let tun_b = create("pdoffb").expect("TUN b");
            if offloads {
                assert_eq!(
                    tun_a.offloads(),
                    Offloads {
                        tcp: true,
                        udp: true
                    },
                    "this kernel (6.2 or later) accepts TSO and USO on a TUN"
                );
            }
            let index_a = netlink.link_index("pdoffa").await.unwrap().unwrap();
            let index_b = netlink.link_index("pdoffb").await.unwrap().unwrap();
            netlink.set_mtu(index_a, 1492).await.expect("mtu");
            netlink.add_ipv4_ptp(index_a, A, B).await.expect("address");
            netlink.set_up(index_a).await.expect("up");
            netlink
                .move_link_to_netns(index_b, far.as_fd())
                .await
                .expect("move TUN b");
            far.run_async(|| async {
                let netlink = Netlink::connect().expect("netlink");
                let index = netlink.link_index("pdoffb").await.unwrap().unwrap();
                netlink.set_mtu(index, 1492).await.expect("mtu");
                netlink.add_ipv4_ptp(index, B, A).await.expect("address");
                netlink.set_up(index).await.expect("up");
            })
            .expect("configure b");

            // The far side: accept, read SIZE bytes, send SIZE bytes back.
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let server = std::thread::spawn(move || {
                far.run_async(move || async move {
                    let listener = tokio::net::TcpListener::bind((B, 5001))
                        .await
                        .expect("bind");
                    ready_tx.send(()).expect("ready");
                    let (mut stream, _) = listener.accept().await.expect("accept");
                    let mut received = vec![0u8; SIZE];
                    stream.read_exact(&mut received).await.expect("read");
                    let intact = received.iter().enumerate().all(|(i, &b)| b == pattern(i));
                    stream.write_all(&received).await.expect("write back");
                    stream.shutdown().await.expect("shutdown");
                    intact
                })
                .expect("server namespace")
            });
            ready_rx.recv().expect("server up");

            let started = std::time::Instant::now();
            let client = async {
                let mut stream = tokio::net::TcpStream::connect((B, 5001))
                    .await
                    .expect("connect");
                let data: Vec<u8> = (0..SIZE).map(pattern).collect();
                stream.write_all(&data).await.expect("send");
                let mut back = vec![0u8; SIZE];
                stream.read_exact(&mut back).await.expect("receive");
                back == data
            };
            let mut seen = Forwarded::default();
            let forwarder = async {
                let mut raw_a = vec![0u8; crate::offload::MAX_SUPER_PACKET];
                let mut raw_b = vec![0u8; crate::offload::MAX_SUPER_PACKET];
                let mut to_a = Coalescer::new(tun_a.offloads().tcp, tun_a.offloads().udp);
                let mut to_b = Coalescer::new(tun_b.offloads().tcp, tun_b.offloads().udp);
                loop {
                    tokio::select! {
                        len = tun_a.recv(&mut raw_a) => {
                            let len = len.expect("read a");
                            forward_one(offloads, &tun_b, &mut raw_a, len, &mut to_b, &mut seen);
                            while let Ok(len) = tun_a.try_recv(&mut raw_a) {
                                forward_one(offloads, &tun_b, &mut raw_a, len, &mut to_b, &mut seen);
                            }
                            if offloads {
                                write_counted(&tun_b, &mut to_b, &mut seen);
                            }
                        }
                        len = tun_b.recv(&mut raw_b) => {
                            let len = len.expect("read b");
                            forward_one(offloads, &tun_a, &mut raw_b, len, &mut to_a, &mut seen);
                            while let Ok(len) = tun_b.try_recv(&mut raw_b) {
                                forward_one(offloads, &tun_a, &mut raw_b, len, &mut to_a, &mut seen);
                            }
                            if offloads {
                                write_counted(&tun_a, &mut to_a, &mut seen);
                            }
                        }
                    }
                }
            };
            let intact_back = tokio::select! {
                intact = tokio::time::timeout(Duration::from_secs(60), client) => intact.expect("transfer within 60 s"),
                _ = forwarder => unreachable!("the forwarder never ends"),
            };
            let elapsed = started.elapsed();
            let intact_there = server.join().expect("server thread");
            assert!(
                intact_there && intact_back,
                "the bytes arrive unchanged both ways"
            );
            (seen, elapsed)
        })
    }

    /// USO: a UDP_SEGMENT send reaches an offloading TUN as one UDP_L4
    /// super-packet, which splits into the datagrams the socket meant.
    #[test]
    fn udp_segment_sends_arrive_as_one_super_packet() {
        use crate::offload::{gso, split, verify, VnetHeader, MAX_SEGMENTS, MAX_SUPER_PACKET};
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let tun = Tun::create_with_offloads("pdtest0").expect("TUN");
            assert!(tun.offloads().udp, "{:?}", tun.offloads());
            let index = netlink.link_index("pdtest0").await.unwrap().unwrap();
            netlink
                .set_ipv6_disabled("pdtest0", true)
                .expect("disable_ipv6");
            netlink.set_mtu(index, 1492).await.expect("mtu");
            netlink
                .add_ipv4_ptp(index, LOCAL, PEER)
                .await
                .expect("address");
            netlink.set_up(index).await.expect("up");
            let socket = std::net::UdpSocket::bind((LOCAL, 4000)).expect("bind");
            nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::UdpGsoSegment, &1200)
                .expect("UDP_SEGMENT");
            let payload: Vec<u8> = (0..1200 * 9 + 500).map(|i| (i % 253) as u8).collect();
            socket.send_to(&payload, (PEER, 9)).expect("send_to");

            let mut raw = vec![0u8; MAX_SUPER_PACKET];
            let len = tokio::time::timeout(Duration::from_secs(2), tun.recv(&mut raw))
                .await
                .expect("a read within 2 s")
                .expect("recv");
            let header = VnetHeader::parse(&raw).expect("header");
            assert_eq!((header.gso_type, header.gso_size), (gso::UDP_L4, 1200));
            let mut bufs = vec![[0u8; 2048]; MAX_SEGMENTS];
            let mut lens = [0usize; MAX_SEGMENTS];
            let count = split(&mut raw[..len], &mut bufs, &mut lens, 0, 1492).expect("split");
            assert_eq!(count, 10);
            let mut rebuilt = Vec::new();
            for (buf, &len) in bufs.iter().zip(&lens).take(count) {
                let datagram = &buf[..len];
                assert!(verify::ipv4_header_ok(datagram));
                assert!(verify::transport_checksum_ok(datagram, false, 17, 20));
                let flow = ip::inspect(datagram).expect("a valid packet");
                assert_eq!((flow.src_port, flow.dst_port), (4000, 9));
                rebuilt.extend_from_slice(&datagram[28..]);
            }
            assert_eq!(lens[0], 20 + 8 + 1200);
            assert_eq!(lens[9], 20 + 8 + 500);
            assert_eq!(rebuilt, payload);
        });
    }
}
