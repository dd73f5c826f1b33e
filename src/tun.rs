//! The TUN side: an IP interface whose packets we read and write.
//!
//! The device is created without packet information (IFF_NO_PI): each read
//! or write is one bare IPv4 or IPv6 packet. It is not persistent: it
//! disappears when the [`Tun`] is dropped.

use std::io;
use std::os::fd::AsRawFd;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tun_tap::{Iface, Mode};

/// Why a TUN device could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TunError {
    #[error("creating a TUN device needs CAP_NET_ADMIN (run as root)")]
    NotPermitted,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A non-blocking TUN device registered with tokio. The `try_` methods
/// make the system call right away, whatever tokio last saw.
#[derive(Debug)]
pub struct Tun {
    iface: AsyncFd<Iface>,
}

impl Tun {
    /// Creates TUN device `name` (down, no address) in the calling thread's
    /// network namespace. Must be called inside a tokio runtime.
    ///
    /// If an unattached persistent TUN of that name exists, the kernel
    /// attaches to it instead of creating one.
    pub fn create(name: &str) -> Result<Tun, TunError> {
        // tun-tap would silently cut a longer name; IFNAMSIZ counts the NUL.
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['\0', '/', '%']) {
            return Err(TunError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not a valid interface name"),
            )));
        }
        let iface = Iface::without_packet_info(name, Mode::Tun).map_err(|error| {
            match error.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => TunError::NotPermitted,
                _ => TunError::Io(error),
            }
        })?;
        set_nonblocking(iface.as_raw_fd())?;
        // SAFETY: an Iface owns its File and always reports that File's
        // descriptor, which stays open until the Iface is dropped.
        let iface = unsafe { AsyncFd::register(iface) }.map_err(io::Error::from)?;
        Ok(Tun { iface })
    }

    /// The device's name, as the kernel gave it.
    pub fn name(&self) -> &str {
        self.iface.get_ref().name()
    }

    /// Receives one IP packet, waiting for it. A packet longer than `buf`
    /// is cut to its length, so give at least the MTU.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.iface
            .async_io(Interest::READABLE, |iface| iface.recv(buf))
            .await
    }

    /// Receives one IP packet if one is queued, else fails with `WouldBlock`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.iface.get_ref().recv(buf)
    }

    /// Hands one IP packet to the kernel, as if it arrived on the device.
    /// Fails with EIO while the device is down.
    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        self.iface
            .async_io(Interest::WRITABLE, |iface| write_whole(iface, packet))
            .await
    }

    /// [`send`](Self::send) now, or fails with `WouldBlock`.
    pub fn try_send(&self, packet: &[u8]) -> io::Result<()> {
        write_whole(self.iface.get_ref(), packet)
    }
}

fn write_whole(iface: &Iface, packet: &[u8]) -> io::Result<()> {
    let written = iface.send(packet)?;
    if written == packet.len() {
        Ok(())
    } else {
        // A TUN takes a packet whole or not at all.
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "packet written partially",
        ))
    }
}

/// tun-tap's own `set_non_blocking` needs its `libc` feature, which is off.
fn set_nonblocking(fd: std::os::fd::RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::time::Duration;

    use portdial_protocol::ip;

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
}
