//! Links, addresses, routes and link events over rtnetlink.
//!
//! Everything acts on the network namespace of the thread that called
//! [`Netlink::connect`] / [`LinkWatcher::new`] (a netlink socket belongs to
//! the namespace it was created in), except [`Netlink::set_ipv6_disabled`],
//! which writes /proc and so acts on the namespace of the calling thread.
//!
//! Errors are `io::Error`s that keep the kernel's errno (`raw_os_error()`),
//! so callers can tell EEXIST, ENODEV or EPERM apart.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use futures::channel::mpsc::UnboundedReceiver;
use futures::{StreamExt, TryStreamExt};
use portdial_protocol::ethernet::MacAddr;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::SocketAddr;
use rtnetlink::{LinkUnspec, LinkVeth, MulticastGroup, RouteMessageBuilder};
use tokio::task::JoinHandle;

/// What the dialer needs to know about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// `None` for links without a 6-byte hardware address (TUN, loopback
    /// has one of zeros).
    pub mac: Option<MacAddr>,
    pub mtu: u32,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Up with carrier, and the kernel has finished bringing it up
    /// (IFF_RUNNING: operstate UP or UNKNOWN). Only then does the link
    /// transmit: until the kernel's link-watch work has run after carrier
    /// came on, the queue discipline is still the no-op one that drops
    /// everything, although IFF_LOWER_UP is already set.
    pub carrier: bool,
}

impl LinkInfo {
    fn from_message(message: &LinkMessage) -> LinkInfo {
        let mut name = String::new();
        let mut mac = None;
        let mut mtu = 0;
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(value) => name.clone_from(value),
                LinkAttribute::Address(bytes) if bytes.len() == 6 => {
                    mac = MacAddr::from_bytes(bytes).ok();
                }
                LinkAttribute::Mtu(value) => mtu = *value,
                _ => {}
            }
        }
        let flags = message.header.flags;
        let up = flags.contains(LinkFlags::Up);
        LinkInfo {
            index: message.header.index,
            name,
            mac,
            mtu,
            up,
            carrier: up && flags.contains(LinkFlags::Running),
        }
    }
}

/// The kernel's table of local and broadcast routes (RT_TABLE_LOCAL).
const RT_TABLE_LOCAL: u8 = 255;

/// A change seen by a [`LinkWatcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The link was created or changed (flags, carrier, MTU, address...).
    /// The kernel sends these often; compare with the previous state.
    Changed(LinkInfo),
    /// The link was deleted.
    Removed { index: u32, name: String },
}

/// An rtnetlink connection. Dropping it stops its background task.
#[derive(Debug)]
pub struct Netlink {
    handle: rtnetlink::Handle,
    connection: JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Netlink {
    /// Opens a NETLINK_ROUTE socket in the calling thread's namespace and
    /// spawns its connection task on the current tokio runtime (panics
    /// outside a runtime, like `tokio::spawn`).
    pub fn connect() -> io::Result<Netlink> {
        let (connection, handle, _unsolicited) = rtnetlink::new_connection()?;
        let connection = tokio::spawn(connection);
        Ok(Netlink { handle, connection })
    }

    /// The index of link `name`, `None` when there is no such link.
    pub async fn link_index(&self, name: &str) -> io::Result<Option<u32>> {
        Ok(self.link_info(name).await?.map(|info| info.index))
    }

    /// The state of link `name`, `None` when there is no such link.
    pub async fn link_info(&self, name: &str) -> io::Result<Option<LinkInfo>> {
        let mut replies = self.handle.link().get().match_name(name).execute();
        match replies.try_next().await {
            Ok(Some(message)) => Ok(Some(LinkInfo::from_message(&message))),
            Ok(None) => Ok(None),
            Err(error) => {
                let error = to_io(error);
                if error.raw_os_error() == Some(libc::ENODEV) {
                    Ok(None)
                } else {
                    Err(error)
                }
            }
        }
    }

    /// All links of the namespace.
    pub async fn links(&self) -> io::Result<Vec<LinkInfo>> {
        self.handle
            .link()
            .get()
            .execute()
            .map_ok(|message| LinkInfo::from_message(&message))
            .try_collect()
            .await
            .map_err(to_io)
    }

    /// Sends one RTM_SETLINK built by the caller.
    async fn set_link(&self, message: netlink_packet_route::link::LinkMessage) -> io::Result<()> {
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(to_io)
    }

    pub async fn set_mtu(&self, index: u32, mtu: u32) -> io::Result<()> {
        let message = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.set_link(message).await
    }

    pub async fn set_up(&self, index: u32) -> io::Result<()> {
        let message = LinkUnspec::new_with_index(index).up().build();
        self.set_link(message).await
    }

    pub async fn set_down(&self, index: u32) -> io::Result<()> {
        let message = LinkUnspec::new_with_index(index).down().build();
        self.set_link(message).await
    }

    /// Sets the link's MAC address (the link may need to be down for some
    /// drivers; veth and dummy accept it up).
    pub async fn set_mac(&self, index: u32, mac: MacAddr) -> io::Result<()> {
        let message = LinkUnspec::new_with_index(index)
            .address(mac.as_bytes().to_vec())
            .build();
        self.set_link(message).await
    }

    /// Creates the veth pair `a`–`b` (both down) in this namespace.
    pub async fn add_veth(&self, a: &str, b: &str) -> io::Result<()> {
        let message = LinkVeth::new(a, b).build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(to_io)
    }

    /// Deletes a link (for a veth, both ends go).
    pub async fn delete_link(&self, index: u32) -> io::Result<()> {
        self.handle.link().del(index).execute().await.map_err(to_io)
    }

    /// Moves a link into the namespace `netns` refers to (an open
    /// /proc/<pid>/ns/net or /run/netns/<name> file).
    pub async fn move_link_to_netns(&self, index: u32, netns: BorrowedFd<'_>) -> io::Result<()> {
        let message = LinkUnspec::new_with_index(index)
            .setns_by_fd(netns.as_raw_fd())
            .build();
        self.set_link(message).await
    }

    /// A point-to-point IPv4 address, as `ip addr add LOCAL peer PEER/32`:
    /// IFA_LOCAL is ours, IFA_ADDRESS the peer's, and the kernel adds the
    /// host route to the peer.
    pub async fn add_ipv4_ptp(
        &self,
        index: u32,
        local: Ipv4Addr,
        peer: Ipv4Addr,
    ) -> io::Result<()> {
        self.add_ptp(index, IpAddr::V4(local), IpAddr::V4(peer), 32)
            .await
    }

    /// A point-to-point IPv6 address, `LOCAL/128 peer PEER` (used with the
    /// link-local addresses built from the IPv6CP interface identifiers).
    /// The kernel accepts IFA_ADDRESS ≠ IFA_LOCAL for IPv6 (tested in
    /// `tun`). Added without duplicate address detection: IPv6CP already
    /// made the identifiers unique, and a tentative address cannot be a
    /// source.
    ///
    /// Unlike IPv4, the kernel installs the /128 route to the peer and the
    /// local route only from a work item after the address is added (even
    /// without DAD); sending meanwhile fails with "Network is unreachable".
    /// So this returns once both routes are there (or fails after 2 s).
    pub async fn add_ipv6_ptp(
        &self,
        index: u32,
        local: Ipv6Addr,
        peer: Ipv6Addr,
    ) -> io::Result<()> {
        self.add_ptp(index, IpAddr::V6(local), IpAddr::V6(peer), 128)
            .await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let routes = self
                .route_messages(RouteMessageBuilder::<Ipv6Addr>::new().build())
                .await?;
            let has_host_route = |table: u8, destination: Ipv6Addr| {
                routes.iter().any(|route| {
                    route.header.table == table
                        && route.header.destination_prefix_length == 128
                        && route_output_interface(route) == Some(index)
                        && route_destination(route) == Some(IpAddr::V6(destination))
                })
            };
            if has_host_route(RouteHeader::RT_TABLE_MAIN, peer)
                && has_host_route(RT_TABLE_LOCAL, local)
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the kernel did not install the routes for {local} peer {peer} within 2 s"
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn add_ptp(
        &self,
        index: u32,
        local: IpAddr,
        peer: IpAddr,
        prefix_len: u8,
    ) -> io::Result<()> {
        let mut request = self.handle.address().add(index, local, prefix_len);
        request.message_mut().attributes = vec![
            AddressAttribute::Local(local),
            AddressAttribute::Address(peer),
        ];
        request.execute().await.map_err(to_io)
    }

    /// An ordinary IPv4 address with a subnet (and broadcast for < /31).
    pub async fn add_ipv4(&self, index: u32, address: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
        self.handle
            .address()
            .add(index, IpAddr::V4(address), prefix_len)
            .execute()
            .await
            .map_err(to_io)
    }

    /// An IPv6 address with a prefix, usable at once (no duplicate address
    /// detection, see [`add_ipv6_ptp`](Self::add_ipv6_ptp)).
    pub async fn add_ipv6(&self, index: u32, address: Ipv6Addr, prefix_len: u8) -> io::Result<()> {
        let mut request = self
            .handle
            .address()
            .add(index, IpAddr::V6(address), prefix_len);
        request.message_mut().header.flags |= AddressHeaderFlags::Nodad;
        request.execute().await.map_err(to_io)
    }

    /// The addresses (IPv4 and IPv6) on link `index`, as the kernel lists
    /// them: `(local, prefix_len, peer)`, `peer` only for point-to-point ones.
    pub async fn addresses(&self, index: u32) -> io::Result<Vec<(IpAddr, u8, Option<IpAddr>)>> {
        let messages = self.address_messages(index).await?;
        Ok(messages.iter().filter_map(address_of).collect())
    }

    /// Deletes every address (IPv4 and IPv6, link-local included) of link
    /// `index`.
    pub async fn flush_addresses(&self, index: u32) -> io::Result<()> {
        for message in self.address_messages(index).await? {
            match self.handle.address().del(message).execute().await {
                Ok(()) => {}
                // Deleting an IPv4 primary address also removes its
                // secondaries, which may then be gone already.
                Err(error) => {
                    let error = to_io(error);
                    if error.raw_os_error() != Some(libc::EADDRNOTAVAIL) {
                        return Err(error);
                    }
                }
            }
        }
        Ok(())
    }

    async fn address_messages(&self, index: u32) -> io::Result<Vec<AddressMessage>> {
        self.handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(to_io)
    }

    /// `ip route add default dev X`: a device route without a gateway, as a
    /// point-to-point link needs.
    pub async fn add_default_route_v4(&self, index: u32) -> io::Result<()> {
        self.add_route_v4(Ipv4Addr::UNSPECIFIED, 0, index).await
    }

    pub async fn del_default_route_v4(&self, index: u32) -> io::Result<()> {
        let route = device_route_v4(Ipv4Addr::UNSPECIFIED, 0, index);
        self.handle
            .route()
            .del(route)
            .execute()
            .await
            .map_err(to_io)
    }

    /// `ip route add DEST/PREFIX dev X`.
    pub async fn add_route_v4(
        &self,
        destination: Ipv4Addr,
        prefix_len: u8,
        index: u32,
    ) -> io::Result<()> {
        let route = device_route_v4(destination, prefix_len, index);
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(to_io)
    }

    /// `ip -6 route add default dev X`.
    pub async fn add_default_route_v6(&self, index: u32) -> io::Result<()> {
        let route = device_route_v6(index);
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(to_io)
    }

    pub async fn del_default_route_v6(&self, index: u32) -> io::Result<()> {
        let route = device_route_v6(index);
        self.handle
            .route()
            .del(route)
            .execute()
            .await
            .map_err(to_io)
    }

    /// The IPv4 routes of the main table that leave through link `index`:
    /// `(destination, prefix_len)`.
    pub async fn routes_v4(&self, index: u32) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        let routes = self
            .route_messages(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .await?;
        Ok(main_routes_via(&routes, index)
            .map(|(destination, prefix_len)| match destination {
                Some(IpAddr::V4(address)) => (address, prefix_len),
                _ => (Ipv4Addr::UNSPECIFIED, prefix_len),
            })
            .collect())
    }

    /// The IPv6 routes of the main table that leave through link `index`.
    pub async fn routes_v6(&self, index: u32) -> io::Result<Vec<(Ipv6Addr, u8)>> {
        let routes = self
            .route_messages(RouteMessageBuilder::<Ipv6Addr>::new().build())
            .await?;
        Ok(main_routes_via(&routes, index)
            .map(|(destination, prefix_len)| match destination {
                Some(IpAddr::V6(address)) => (address, prefix_len),
                _ => (Ipv6Addr::UNSPECIFIED, prefix_len),
            })
            .collect())
    }

    /// Every route of the query's address family, all tables.
    async fn route_messages(&self, query: RouteMessage) -> io::Result<Vec<RouteMessage>> {
        self.handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(to_io)
    }

    /// Disables (or enables) IPv6 on link `name` via
    /// /proc/sys/net/ipv6/conf/<name>/disable_ipv6. /proc/sys/net shows the
    /// namespace of the *calling thread*, so this is synchronous on purpose:
    /// run from tokio's blocking pool it would reach the process namespace.
    pub fn set_ipv6_disabled(&self, name: &str, disabled: bool) -> io::Result<()> {
        write_ipv6_conf(name, "disable_ipv6", if disabled { "1\n" } else { "0\n" })
    }

    /// Stops the kernel from giving `name` a link-local address of its own
    /// (addr_gen_mode 1), for links whose address IPv6CP negotiates.
    pub fn set_ipv6_no_auto_link_local(&self, name: &str) -> io::Result<()> {
        write_ipv6_conf(name, "addr_gen_mode", "1\n")
    }

    /// Waits until link `name` exists, is up and has carrier. Returns
    /// `false` when `timeout` passes first.
    pub async fn wait_carrier(&self, name: &str, timeout: Duration) -> io::Result<bool> {
        // Subscribe before reading the state, so no change falls between.
        let mut watcher = LinkWatcher::new(name)?;
        if self.link_info(name).await?.is_some_and(|info| info.carrier) {
            return Ok(true);
        }
        let wait = async {
            loop {
                if let LinkEvent::Changed(info) = watcher.next().await? {
                    if info.carrier {
                        return Ok::<bool, io::Error>(true);
                    }
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(result) => result,
            Err(_elapsed) => Ok(false),
        }
    }
}

/// Link events of one link name, from a NETLINK_ROUTE socket of its own
/// joined to RTNLGRP_LINK. Dropping it stops its background task.
#[derive(Debug)]
pub struct LinkWatcher {
    name: String,
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    connection: JoinHandle<()>,
}

impl Drop for LinkWatcher {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl LinkWatcher {
    /// Watches link `name` in the calling thread's namespace (needs a tokio
    /// runtime). The link need not exist yet.
    pub fn new(name: &str) -> io::Result<LinkWatcher> {
        let (connection, _handle, messages) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Link])?;
        let connection = tokio::spawn(connection);
        Ok(LinkWatcher {
            name: name.to_owned(),
            messages,
            connection,
        })
    }

    /// The next event for the watched link. Errors when the event stream
    /// ends, e.g. after the kernel dropped events on an overflowing socket:
    /// create a new watcher and re-read the state then.
    pub async fn next(&mut self) -> io::Result<LinkEvent> {
        while let Some((message, _source)) = self.messages.next().await {
            let event = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    LinkEvent::Changed(LinkInfo::from_message(&link))
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    let info = LinkInfo::from_message(&link);
                    LinkEvent::Removed {
                        index: info.index,
                        name: info.name,
                    }
                }
                _ => continue,
            };
            let name = match &event {
                LinkEvent::Changed(info) => &info.name,
                LinkEvent::Removed { name, .. } => name,
            };
            if *name == self.name {
                return Ok(event);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the link event stream ended (events may have been lost)",
        ))
    }
}

fn device_route_v4(destination: Ipv4Addr, prefix_len: u8, index: u32) -> RouteMessage {
    let builder = RouteMessageBuilder::<Ipv4Addr>::new()
        .output_interface(index)
        .scope(RouteScope::Link);
    if prefix_len == 0 {
        builder.build()
    } else {
        builder.destination_prefix(destination, prefix_len).build()
    }
}

fn device_route_v6(index: u32) -> RouteMessage {
    // IPv6 routes have no link scope; the kernel uses universe for all.
    RouteMessageBuilder::<Ipv6Addr>::new()
        .output_interface(index)
        .build()
}

fn route_output_interface(route: &RouteMessage) -> Option<u32> {
    route
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            RouteAttribute::Oif(index) => Some(*index),
            _ => None,
        })
}

fn route_destination(route: &RouteMessage) -> Option<IpAddr> {
    route
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(address)) => Some(IpAddr::V4(*address)),
            RouteAttribute::Destination(RouteAddress::Inet6(address)) => Some(IpAddr::V6(*address)),
            _ => None,
        })
}

/// `(destination, prefix_len)` of the main-table routes through `index`;
/// `None` destination for a default route.
fn main_routes_via(
    routes: &[RouteMessage],
    index: u32,
) -> impl Iterator<Item = (Option<IpAddr>, u8)> + '_ {
    routes
        .iter()
        .filter(|route| route.header.table == RouteHeader::RT_TABLE_MAIN)
        .filter(move |route| route_output_interface(route) == Some(index))
        .map(|route| {
            (
                route_destination(route),
                route.header.destination_prefix_length,
            )
        })
}

fn address_of(message: &AddressMessage) -> Option<(IpAddr, u8, Option<IpAddr>)> {
    let mut local = None;
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(value) => local = Some(*value),
            AddressAttribute::Address(value) => address = Some(*value),
            _ => {}
        }
    }
    // IPv6 sends only IFA_ADDRESS unless a peer is set; IPv4 always sends
    // IFA_LOCAL, and IFA_ADDRESS differs from it only with a peer.
    let ours = local.or(address)?;
    let peer = address.filter(|peer| local.is_some() && *peer != ours);
    Some((ours, message.header.prefix_len, peer))
}

/// Keeps the kernel's errno where there is one.
fn to_io(error: rtnetlink::Error) -> io::Error {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io(),
        other => io::Error::other(other),
    }
}

/// Writes /proc/sys/net/ipv6/conf/<name>/<key> (per network namespace).
fn write_ipv6_conf(name: &str, key: &str, value: &str) -> io::Result<()> {
    let valid_name = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name.contains('/');
    if !valid_name {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not an interface name"),
        ));
    }
    let path = format!("/proc/sys/net/ipv6/conf/{name}/{key}");
    std::fs::write(&path, value)
        .map_err(|error| io::Error::new(error.kind(), format!("{path}: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::{add_veth_pair_up, in_netns_async};

    /// Reads events of the watched link until one satisfies `wanted`.
    async fn wait_for(watcher: &mut LinkWatcher, wanted: impl Fn(&LinkEvent) -> bool) -> LinkEvent {
        let wait = async {
            loop {
                let event = watcher.next().await.expect("link event");
                if wanted(&event) {
                    return event;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("the event within 5 s")
    }

    fn carrier_is(carrier: bool) -> impl Fn(&LinkEvent) -> bool {
        move |event| matches!(event, LinkEvent::Changed(info) if info.carrier == carrier)
    }

    #[test]
    fn link_events_follow_the_peer_and_wait_carrier_sees_them() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let (a, b) = add_veth_pair_up(&netlink, "pda", "pdb")
                .await
                .expect("veth");
            assert!(netlink
                .wait_carrier("pda", Duration::from_secs(5))
                .await
                .expect("wait"));
            let mut watcher = LinkWatcher::new("pda").expect("watcher");

            netlink.set_down(b).await.expect("b down");
            let LinkEvent::Changed(info) = wait_for(&mut watcher, carrier_is(false)).await else {
                unreachable!("carrier_is only accepts Changed")
            };
            assert_eq!((info.index, info.name.as_str(), info.up), (a, "pda", true));
            let no_carrier = netlink
                .wait_carrier("pda", Duration::from_millis(300))
                .await;
            assert!(!no_carrier.expect("wait"));

            netlink.set_up(b).await.expect("b up");
            wait_for(&mut watcher, carrier_is(true)).await;
            assert!(netlink
                .wait_carrier("pda", Duration::from_secs(5))
                .await
                .expect("wait"));

            // Deleting one end deletes both.
            netlink.delete_link(b).await.expect("delete");
            let removed = wait_for(&mut watcher, |event| {
                matches!(event, LinkEvent::Removed { .. })
            })
            .await;
            assert_eq!(
                removed,
                LinkEvent::Removed {
                    index: a,
                    name: "pda".to_owned()
                }
            );
            assert_eq!(netlink.link_index("pda").await.expect("query"), None);
        });
    }

    #[test]
    fn wait_carrier_sees_a_link_that_appears_later() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let missing = netlink
                .wait_carrier("pda", Duration::from_millis(200))
                .await;
            assert!(!missing.expect("wait"));
            let creator = async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                add_veth_pair_up(&netlink, "pda", "pdb")
                    .await
                    .expect("veth");
            };
            let (appeared, ()) =
                tokio::join!(netlink.wait_carrier("pda", Duration::from_secs(5)), creator);
            assert!(appeared.expect("wait"));
        });
    }

    #[test]
    fn link_settings_and_addresses() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            assert_eq!(
                netlink.link_info("nonexistent0").await.expect("query"),
                None
            );
            let (a, _) = add_veth_pair_up(&netlink, "pda", "pdb")
                .await
                .expect("veth");
            let mac = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
            netlink.set_mac(a, mac).await.expect("mac");
            netlink.set_mtu(a, 1400).await.expect("mtu");
            let info = netlink.link_info("pda").await.expect("query").expect("pda");
            assert_eq!(
                (info.index, info.mac, info.mtu, info.up),
                (a, Some(mac), 1400, true)
            );
            assert!(netlink
                .links()
                .await
                .expect("links")
                .iter()
                .any(|link| link.name == "lo"));

            netlink
                .set_ipv6_disabled("pda", true)
                .expect("disable ipv6");
            let sysctl =
                std::fs::read_to_string("/proc/sys/net/ipv6/conf/pda/disable_ipv6").expect("read");
            assert_eq!(sysctl, "1\n");
            for bad in ["", "..", "a/b", "all/../../x", "a-name-longer-than-15"] {
                let error = netlink.set_ipv6_disabled(bad, true).expect_err(bad);
                assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
            }

            let subnet_address = Ipv4Addr::new(198, 51, 100, 1);
            netlink.add_ipv4(a, subnet_address, 24).await.expect("add");
            let duplicate = netlink
                .add_ipv4(a, subnet_address, 24)
                .await
                .expect_err("twice");
            assert_eq!(duplicate.raw_os_error(), Some(libc::EEXIST));
            let (local, peer) = (Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 1));
            netlink.add_ipv4_ptp(a, local, peer).await.expect("ptp");
            let mut addresses = netlink.addresses(a).await.expect("addresses");
            addresses.sort();
            assert_eq!(
                addresses,
                [
                    (IpAddr::V4(local), 32, Some(IpAddr::V4(peer))),
                    (IpAddr::V4(subnet_address), 24, None),
                ]
            );
            assert!(netlink
                .routes_v4(a)
                .await
                .expect("routes")
                .contains(&(peer, 32)));
            netlink.flush_addresses(a).await.expect("flush");
            assert_eq!(netlink.addresses(a).await.expect("addresses"), []);

            let missing = netlink.set_up(9999).await.expect_err("no such link");
            assert_eq!(missing.raw_os_error(), Some(libc::ENODEV));
        });
    }
}
