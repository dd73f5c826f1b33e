//! The raw Ethernet side: an AF_PACKET socket bound to one interface that
//! sees only PPPoE frames.
//!
//! Frames are whole Ethernet frames without FCS. Short frames are sent as
//! they are: the kernel does not pad to 60 bytes (a veth delivers them
//! short), the NIC driver or hardware pads on real Ethernet, so we do not.
//!
//! Kernel behaviour worth knowing:
//! - The kernel moves the outermost VLAN tag of a received frame into packet
//!   metadata before packet sockets see it (`skb_vlan_untag` in
//!   `__netif_receive_skb_core`, and hardware VLAN offload does the same),
//!   so a frame tagged once arrives *untagged* in `recv`; only an inner tag
//!   of a double-tagged frame stays in the bytes. Use a VLAN interface
//!   (`eth0.7`) as `--iface` for a tagged service. Tags in sent frames go
//!   out as written.
//! - When the interface goes down, the next receive fails once with
//!   ENETDOWN and nothing arrives until it is up again (the socket stays
//!   bound). When the interface is deleted, the next receive fails once
//!   with ENETDOWN too and then nothing ever arrives, even if a link of the
//!   same name comes back: reopen the socket. Watch the link with
//!   `netlink::LinkWatcher` rather than rely on these errors.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use portdial_protocol::ethernet::{ethertype, MacAddr};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// `PACKET_IGNORE_OUTGOING` from linux/if_packet.h (Linux 4.20), not in libc.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// Socket errors (ENETDOWN when the link goes down or away) wake only
/// EPOLLERR; waiting for errors too lets a pending receive return them.
const RECEIVE_INTEREST: Interest = Interest::READABLE.add(Interest::ERROR);

/// Most frames one batch call moves; the headers live on the stack.
pub const MAX_BATCH: usize = 64;

/// Why a packet socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PacketSocketError {
    #[error("interface {0} does not exist")]
    InterfaceMissing(String),
    #[error("opening a packet socket needs CAP_NET_RAW (run as root)")]
    NotPermitted,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An AF_PACKET SOCK_RAW socket on one interface, non-blocking and
/// registered with tokio. Receives only PPPoE discovery and session frames
/// (untagged or behind one VLAN tag still in the bytes), and never frames
/// going out of the interface: the kernel never loops a socket's own frames
/// back to it, and PACKET_IGNORE_OUTGOING plus the filter drop those that
/// other sockets and the kernel itself send there.
///
/// The `try_` methods make the system call right away, whatever tokio last
/// saw, so they work before the first wake-up too; the async ones wait for
/// readiness and retry, so mixing both is fine.
#[derive(Debug)]
pub struct PacketSocket {
    fd: AsyncFd<OwnedFd>,
    ifindex: u32,
    name: String,
    mac: MacAddr,
    truncated: AtomicU64,
}

/// The classic BPF program attached to the socket. Accepts a frame when it
/// is not one we sent and its EtherType is PPPoE, at offset 12 or behind
/// one VLAN tag (TPID 0x8100, 0x88a8 or 0x9100 at 12, EtherType at 16).
/// A load beyond the frame's end makes classic BPF return 0: short frames
/// are dropped. The accept value is the number of bytes kept: all of them.
fn pppoe_filter() -> [libc::sock_filter; PPPOE_FILTER_LEN] {
    const LOAD_WORD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const LOAD_HALF_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
    const JUMP_IF_EQUAL: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    // Ancillary load: skb->pkt_type instead of frame bytes. It drops our
    // own frames on kernels without PACKET_IGNORE_OUTGOING too.
    const PACKET_TYPE: u32 = (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32;

    // Instruction indexes, so each jump below reads as "go to X".
    const REJECT: u8 = 11;
    const ACCEPT: u8 = 12;
    const TAGGED: u8 = 8;
    let statement = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    // Jump offsets are relative to the next instruction.
    let jump = |at: u8, k: u32, if_true: u8, if_false: u8| libc::sock_filter {
        code: JUMP_IF_EQUAL,
        jt: if_true - at - 1,
        jf: if_false - at - 1,
        k,
    };
    [
        /* 0 */ statement(LOAD_WORD_ABS, PACKET_TYPE),
        /* 1 */ jump(1, u32::from(libc::PACKET_OUTGOING), REJECT, 2),
        /* 2 */ statement(LOAD_HALF_ABS, 12),
        /* 3 */ jump(3, u32::from(ethertype::PPPOE_DISCOVERY), ACCEPT, 4),
        /* 4 */ jump(4, u32::from(ethertype::PPPOE_SESSION), ACCEPT, 5),
        /* 5 */ jump(5, u32::from(ethertype::VLAN), TAGGED, 6),
        /* 6 */ jump(6, u32::from(ethertype::QINQ), TAGGED, 7),
        /* 7 */ jump(7, u32::from(ethertype::QINQ_LEGACY), TAGGED, REJECT),
        /* 8 */ statement(LOAD_HALF_ABS, 16),
        /* 9 */ jump(9, u32::from(ethertype::PPPOE_DISCOVERY), ACCEPT, 10),
        /* 10 */ jump(10, u32::from(ethertype::PPPOE_SESSION), ACCEPT, REJECT),
        /* 11 */ statement(RETURN, 0),
        /* 12 */ statement(RETURN, u32::MAX),
    ]
}

const PPPOE_FILTER_LEN: usize = 13;

impl PacketSocket {
    /// Opens the socket on `iface`, in the calling thread's network
    /// namespace. Must be called inside a tokio runtime.
    ///
    /// The socket is created with protocol 0, which receives nothing; the
    /// filter and options are set, and only then does `bind` with ETH_P_ALL
    /// start delivery. So no unfiltered frame can be queued before the
    /// filter is in place, and no drain is needed.
    pub fn open(iface: &str) -> Result<PacketSocket, PacketSocketError> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            let error = io::Error::last_os_error();
            return Err(match error.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => PacketSocketError::NotPermitted,
                _ => PacketSocketError::Io(error),
            });
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let (ifindex, mac) = interface_index_and_mac(fd.as_raw_fd(), iface)?;
        attach_filter(fd.as_raw_fd(), &pppoe_filter())?;
        ignore_outgoing(fd.as_raw_fd())?;
        bind_to_interface(fd.as_raw_fd(), ifindex).map_err(|error| {
            if error.raw_os_error() == Some(libc::ENODEV) {
                PacketSocketError::InterfaceMissing(iface.to_owned())
            } else {
                PacketSocketError::Io(error)
            }
        })?;

        // SAFETY: an OwnedFd keeps one descriptor open and unchanged until
        // it is dropped, and the AsyncFd owns it from here on.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(PacketSocket {
            fd,
            ifindex,
            name: iface.to_owned(),
            mac,
            truncated: AtomicU64::new(0),
        })
    }

    /// The interface's MAC address, read when the socket was opened.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many received frames were longer than the buffer given for them
    /// and were cut to its length (the parser then sees them as truncated).
    pub fn truncated_frames(&self) -> u64 {
        self.truncated.load(Ordering::Relaxed)
    }

    /// Receives one frame into `buf`, waiting for it. Returns its length; a
    /// longer frame is cut to `buf.len()` and counted in
    /// [`truncated_frames`](Self::truncated_frames).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .async_io(RECEIVE_INTEREST, |fd| self.recv_raw(fd.as_raw_fd(), buf))
            .await
    }

    /// Receives one frame if one is queued, else fails with `WouldBlock`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_raw(self.fd.as_raw_fd(), buf)
    }

    fn recv_raw(&self, fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
        // MSG_TRUNC makes recv return the frame's real length.
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let len = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) };
        let len = usize::try_from(len).map_err(|_| io::Error::last_os_error())?;
        if len > buf.len() {
            self.truncated.fetch_add(1, Ordering::Relaxed);
        }
        Ok(len.min(buf.len()))
    }

    /// Sends one whole frame, waiting while the socket's send buffer is
    /// full. ENOBUFS means the interface queue dropped it.
    pub async fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.fd
            .async_io(Interest::WRITABLE, |fd| send_raw(fd.as_raw_fd(), frame))
            .await
    }

    /// Sends one frame now, or fails with `WouldBlock`.
    pub fn try_send(&self, frame: &[u8]) -> io::Result<()> {
        send_raw(self.fd.as_raw_fd(), frame)
    }

    /// Receives up to `min(bufs.len(), lens.len(), MAX_BATCH)` queued frames
    /// with one `recvmmsg`, frame `i` into `bufs[i]` with its length in
    /// `lens[i]`; returns how many. `WouldBlock` when none is queued.
    /// Allocates nothing; lengths and truncation as in [`recv`](Self::recv).
    pub fn try_recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        lens: &mut [usize],
    ) -> io::Result<usize> {
        self.recv_batch_raw(self.fd.as_raw_fd(), bufs, lens)
    }

    /// [`try_recv_batch`](Self::try_recv_batch) that waits for the first
    /// frame.
    pub async fn recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        lens: &mut [usize],
    ) -> io::Result<usize> {
        self.fd
            .async_io(RECEIVE_INTEREST, |fd| {
                self.recv_batch_raw(fd.as_raw_fd(), bufs, lens)
            })
            .await
    }

    fn recv_batch_raw<B: AsMut<[u8]>>(
        &self,
        fd: RawFd,
        bufs: &mut [B],
        lens: &mut [usize],
    ) -> io::Result<usize> {
        let count = bufs.len().min(lens.len()).min(MAX_BATCH);
        if count == 0 {
            return Ok(0);
        }
        // SAFETY: iovec and mmsghdr are plain old data; zero is valid.
        let mut iovecs: [libc::iovec; MAX_BATCH] = unsafe { mem::zeroed() };
        let mut headers: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };
        for ((iovec, header), buf) in iovecs
            .iter_mut()
            .zip(headers.iter_mut())
            .zip(bufs.iter_mut())
        {
            let buf = buf.as_mut();
            iovec.iov_base = buf.as_mut_ptr().cast();
            iovec.iov_len = buf.len();
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `count` headers each point at one iovec over a live,
        // exclusively borrowed buffer; no name or control buffers.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                count as libc::c_uint,
                0,
                std::ptr::null_mut(),
            )
        };
        let received = usize::try_from(received).map_err(|_| io::Error::last_os_error())?;
        for ((len, header), iovec) in lens.iter_mut().zip(&headers).zip(&iovecs).take(received) {
            // msg_len is the copied length; MSG_TRUNC says the frame was longer.
            *len = (header.msg_len as usize).min(iovec.iov_len);
            if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                self.truncated.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(received)
    }

    /// Sends up to `min(frames.len(), MAX_BATCH)` frames with one
    /// `sendmmsg`; returns how many the kernel took (a prefix of `frames`).
    /// `WouldBlock` when it took none. Allocates nothing.
    pub fn try_send_batch<B: AsRef<[u8]>>(&self, frames: &[B]) -> io::Result<usize> {
        send_batch_raw(self.fd.as_raw_fd(), frames)
    }

    /// [`try_send_batch`](Self::try_send_batch) that waits until at least
    /// one frame could be sent.
    pub async fn send_batch<B: AsRef<[u8]>>(&self, frames: &[B]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::WRITABLE, |fd| {
                send_batch_raw(fd.as_raw_fd(), frames)
            })
            .await
    }
}

fn send_raw(fd: RawFd, frame: &[u8]) -> io::Result<()> {
    // SAFETY: the kernel reads at most `frame.len()` bytes from `frame`.
    let sent = unsafe { libc::send(fd, frame.as_ptr().cast(), frame.len(), 0) };
    let sent = usize::try_from(sent).map_err(|_| io::Error::last_os_error())?;
    if sent == frame.len() {
        Ok(())
    } else {
        // A packet socket sends a frame whole or not at all.
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "frame sent partially",
        ))
    }
}

fn send_batch_raw<B: AsRef<[u8]>>(fd: RawFd, frames: &[B]) -> io::Result<usize> {
    let count = frames.len().min(MAX_BATCH);
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: iovec and mmsghdr are plain old data; zero is valid.
    let mut iovecs: [libc::iovec; MAX_BATCH] = unsafe { mem::zeroed() };
    let mut headers: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };
    for ((iovec, header), frame) in iovecs.iter_mut().zip(headers.iter_mut()).zip(frames) {
        let frame = frame.as_ref();
        // The kernel only reads through iov_base for sending.
        iovec.iov_base = frame.as_ptr().cast_mut().cast();
        iovec.iov_len = frame.len();
        header.msg_hdr.msg_iov = iovec;
        header.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `count` headers each point at one iovec over a live buffer.
    let sent = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), count as libc::c_uint, 0) };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

/// The interface's index and MAC address, asked on our own socket so that
/// the answer comes from the socket's namespace.
fn interface_index_and_mac(fd: RawFd, iface: &str) -> Result<(u32, MacAddr), PacketSocketError> {
    let missing = || PacketSocketError::InterfaceMissing(iface.to_owned());
    // IFNAMSIZ counts the terminating NUL; longer names cannot exist.
    if iface.is_empty() || iface.len() >= libc::IFNAMSIZ || iface.contains('\0') {
        return Err(missing());
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(iface.bytes()) {
        *slot = byte as libc::c_char;
    }
    // SAFETY: the ioctls read and write only `request`, which outlives them,
    // and the union field read is the one the ioctl just filled.
    let index = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFINDEX, &mut request) < 0 {
            let error = io::Error::last_os_error();
            return Err(match error.raw_os_error() {
                Some(libc::ENODEV) => missing(),
                _ => PacketSocketError::Io(error),
            });
        }
        request.ifr_ifru.ifru_ifindex
    };
    // SAFETY: as above.
    let hwaddr = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut request) < 0 {
            let error = io::Error::last_os_error();
            return Err(match error.raw_os_error() {
                Some(libc::ENODEV) => missing(),
                _ => PacketSocketError::Io(error),
            });
        }
        request.ifr_ifru.ifru_hwaddr
    };
    if hwaddr.sa_family != libc::ARPHRD_ETHER {
        return Err(PacketSocketError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{iface} is not an Ethernet interface (ARPHRD {})",
                hwaddr.sa_family
            ),
        )));
    }
    let mut mac = [0u8; 6];
    for (byte, data) in mac.iter_mut().zip(hwaddr.sa_data.iter()) {
        *byte = *data as u8;
    }
    let index = u32::try_from(index).map_err(|_| missing())?;
    Ok((index, MacAddr(mac)))
}

fn attach_filter(fd: RawFd, program: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: the kernel copies the program during the call.
    let result = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks the kernel not to hand us frames that others send out of the
/// interface (saves a clone and a filter run per such frame). Kernels
/// before 4.20 answer ENOPROTOOPT; the filter drops those frames there.
fn ignore_outgoing(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the kernel reads one c_int.
    let result = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result < 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ENOPROTOOPT) {
            return Err(error);
        }
        tracing::debug!("PACKET_IGNORE_OUTGOING unsupported; the BPF filter drops own frames");
    }
    Ok(())
}

fn bind_to_interface(fd: RawFd, ifindex: u32) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut address: libc::sockaddr_ll = unsafe { mem::zeroed() };
    address.sll_family = libc::AF_PACKET as libc::c_ushort;
    address.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    address.sll_ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index out of range"))?;
    // SAFETY: `address` is a valid sockaddr_ll of the given size.
    let result = unsafe {
        libc::bind(
            fd,
            (&address as *const libc::sockaddr_ll).cast(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::netlink::Netlink;
    use crate::netns::in_netns_async;

    /// Documentation MACs (RFC 7042), set on the veth ends so frames can be
    /// addressed before the sockets are open.
    const MAC_A: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, 0x0a]);
    const MAC_B: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, 0x0b]);

    fn ethernet(
        destination: MacAddr,
        source: MacAddr,
        tags: &[(u16, u16)],
        ethertype: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut frame = Vec::new();
        frame.extend_from_slice(destination.as_bytes());
        frame.extend_from_slice(source.as_bytes());
        for (tpid, vid) in tags {
            frame.extend_from_slice(&tpid.to_be_bytes());
            frame.extend_from_slice(&vid.to_be_bytes());
        }
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    /// Built, not captured: a PADI with an empty Service-Name tag.
    const PADI: [u8; 10] = [0x11, 0x09, 0x00, 0x00, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00];

    /// Built, not captured: a session frame (id 0x1234) carrying an LCP
    /// Echo-Request (id 1, magic 0x01020304); `marker` varies the magic.
    fn session_payload(marker: u8) -> Vec<u8> {
        vec![
            0x11, 0x00, 0x12, 0x34, 0x00, 0x0a, // PPPoE, length 10
            0xc0, 0x21, // PPP: LCP
            0x09, 0x01, 0x00, 0x08, 0x01, 0x02, 0x03, marker,
        ]
    }

    async fn veth_with_sockets(netlink: &Netlink) -> (PacketSocket, PacketSocket) {
        netlink.add_veth("pda", "pdb").await.expect("veth");
        let a = netlink
            .link_index("pda")
            .await
            .expect("query")
            .expect("pda");
        let b = netlink
            .link_index("pdb")
            .await
            .expect("query")
            .expect("pdb");
        netlink.set_mac(a, MAC_A).await.expect("mac a");
        netlink.set_mac(b, MAC_B).await.expect("mac b");
        netlink.set_up(a).await.expect("up a");
        netlink.set_up(b).await.expect("up b");
        for name in ["pda", "pdb"] {
            let ready = netlink.wait_carrier(name, Duration::from_secs(5)).await;
            assert!(
                ready.expect("wait_carrier"),
                "{name} has no carrier after 5 s"
            );
        }
        let socket_a = PacketSocket::open("pda").unwrap_or_else(|error| panic!("{error}"));
        let socket_b = PacketSocket::open("pdb").unwrap_or_else(|error| panic!("{error}"));
        (socket_a, socket_b)
    }

    /// Every frame that arrives until the socket has been quiet for 300 ms.
    async fn drain(socket: &PacketSocket) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut buffer = [0u8; 2048];
        while let Ok(result) =
            tokio::time::timeout(Duration::from_millis(300), socket.recv(&mut buffer)).await
        {
            let len = result.expect("recv");
            frames.push(buffer.get(..len).expect("len within buffer").to_vec());
        }
        frames
    }

    /// Reads `count` frames from `socket` with `recv_batch`, in order.
    async fn recv_batches(socket: &PacketSocket, count: usize) -> Vec<Vec<u8>> {
        let mut buffers = vec![vec![0u8; 2048]; MAX_BATCH];
        let mut lens = [0usize; MAX_BATCH];
        let mut frames = Vec::new();
        while frames.len() < count {
            let received = tokio::time::timeout(
                Duration::from_secs(2),
                socket.recv_batch(&mut buffers, &mut lens),
            )
            .await
            .expect("frames within 2 s")
            .expect("recv_batch");
            for (buffer, len) in buffers.iter().zip(&lens).take(received) {
                frames.push(buffer.get(..*len).expect("len within buffer").to_vec());
            }
        }
        frames
    }

    #[test]
    fn pppoe_frames_arrive_other_frames_and_own_frames_do_not() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let (a, b) = veth_with_sockets(&netlink).await;
            // A second socket on the sending interface stands for anyone
            // else sending there (the kernel never loops a socket's own
            // frames back to itself, PACKET_IGNORE_OUTGOING or not).
            let neighbour = PacketSocket::open("pda").unwrap_or_else(|error| panic!("{error}"));
            // Built, not captured: an IPv4/UDP header and an ARP request.
            let ipv4 = [
                0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 192, 0, 2,
                1, 192, 0, 2, 2, 0x30, 0x39, 0x00, 0x09, 0x00, 0x08, 0x00, 0x00,
            ];
            let arp = [
                0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x00, 0x00, 0x5e, 0x00, 0x53, 0x0a,
                192, 0, 2, 1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 0, 2, 2,
            ];
            let padi = ethernet(
                MacAddr::BROADCAST,
                MAC_A,
                &[],
                ethertype::PPPOE_DISCOVERY,
                &PADI,
            );
            let session = ethernet(
                MAC_B,
                MAC_A,
                &[],
                ethertype::PPPOE_SESSION,
                &session_payload(1),
            );
            let not_pppoe = [
                ethernet(MAC_B, MAC_A, &[], ethertype::IPV4, &ipv4),
                ethernet(MacAddr::BROADCAST, MAC_A, &[], 0x0806, &arp),
                ethernet(
                    MAC_B,
                    MAC_A,
                    &[(ethertype::VLAN, 7)],
                    ethertype::IPV4,
                    &ipv4,
                ),
                ethernet(
                    MAC_B,
                    MAC_A,
                    &[(ethertype::QINQ, 7), (ethertype::VLAN, 8)],
                    ethertype::IPV4,
                    &ipv4,
                ),
            ];
            for frame in not_pppoe.iter().chain([&padi, &session]) {
                a.send(frame).await.expect("send");
            }
            let tagged_padi = ethernet(
                MacAddr::BROADCAST,
                MAC_A,
                &[(ethertype::VLAN, 7)],
                ethertype::PPPOE_DISCOVERY,
                &PADI,
            );
            let double_tagged_session = ethernet(
                MAC_B,
                MAC_A,
                &[(ethertype::QINQ, 7), (ethertype::VLAN, 8)],
                ethertype::PPPOE_SESSION,
                &session_payload(2),
            );
            a.send(&tagged_padi).await.expect("send");
            a.send(&double_tagged_session).await.expect("send");

            // The kernel strips the outermost tag before packet sockets see
            // a frame (see the module documentation).
            let expected = [
                padi.clone(),
                session,
                padi,
                ethernet(
                    MAC_B,
                    MAC_A,
                    &[(ethertype::VLAN, 8)],
                    ethertype::PPPOE_SESSION,
                    &session_payload(2),
                ),
            ];
            assert_eq!(drain(&b).await, expected);
            // Nothing came back on the sending side.
            let mut buffer = [0u8; 2048];
            for socket in [&a, &neighbour] {
                let own = socket
                    .try_recv(&mut buffer)
                    .expect_err("outgoing frames must not be read");
                assert_eq!(own.kind(), io::ErrorKind::WouldBlock);
            }
        });
    }

    #[test]
    fn filter_alone_drops_outgoing_frames() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let (a, b) = veth_with_sockets(&netlink).await;
            let neighbour = PacketSocket::open("pda").unwrap_or_else(|error| panic!("{error}"));
            // Undo PACKET_IGNORE_OUTGOING, as on a kernel before 4.20.
            let off: libc::c_int = 0;
            // SAFETY: the kernel reads one c_int.
            let result = unsafe {
                libc::setsockopt(
                    neighbour.fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    PACKET_IGNORE_OUTGOING,
                    (&off as *const libc::c_int).cast(),
                    mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(result, 0, "{}", io::Error::last_os_error());
            let session = ethernet(
                MAC_B,
                MAC_A,
                &[],
                ethertype::PPPOE_SESSION,
                &session_payload(3),
            );
            a.send(&session).await.expect("send");
            assert_eq!(drain(&b).await, [session]);
            assert_eq!(drain(&neighbour).await, Vec::<Vec<u8>>::new());
        });
    }

    #[test]
    fn batches_of_64_frames_round_trip_in_order() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let (a, b) = veth_with_sockets(&netlink).await;
            let frames: Vec<Vec<u8>> = (0..MAX_BATCH as u8)
                .map(|marker| {
                    ethernet(
                        MAC_B,
                        MAC_A,
                        &[],
                        ethertype::PPPOE_SESSION,
                        &session_payload(marker),
                    )
                })
                .collect();
            let mut sent = 0;
            while let Some(rest) = frames.get(sent..).filter(|rest| !rest.is_empty()) {
                sent += a.send_batch(rest).await.expect("send_batch");
            }
            assert_eq!(recv_batches(&b, frames.len()).await, frames);
            // And back, with the try_ variants.
            let replies: Vec<Vec<u8>> = (0..MAX_BATCH as u8)
                .map(|marker| {
                    ethernet(
                        MAC_A,
                        MAC_B,
                        &[],
                        ethertype::PPPOE_SESSION,
                        &session_payload(!marker),
                    )
                })
                .collect();
            assert_eq!(
                b.try_send_batch(&replies).expect("try_send_batch"),
                replies.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut buffers = vec![[0u8; 128]; MAX_BATCH];
            let mut lens = [0usize; MAX_BATCH];
            let mut received = Vec::new();
            while received.len() < replies.len() {
                let count = match a.try_recv_batch(&mut buffers, &mut lens) {
                    Ok(count) => count,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        a.fd.readable().await.expect("readable").clear_ready();
                        continue;
                    }
                    Err(error) => panic!("try_recv_batch: {error}"),
                };
                for (buffer, len) in buffers.iter().zip(&lens).take(count) {
                    received.push(buffer.get(..*len).expect("len within buffer").to_vec());
                }
            }
            assert_eq!(received, replies);
            assert_eq!(a.truncated_frames(), 0);
        });
    }

    #[test]
    fn short_frames_arrive_unpadded_and_long_ones_are_cut_and_counted() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let (a, b) = veth_with_sockets(&netlink).await;
            // 14 + 6 bytes: a PADT-sized header alone, far below 60.
            let short = ethernet(
                MAC_B,
                MAC_A,
                &[],
                ethertype::PPPOE_DISCOVERY,
                &[0x11, 0xa7, 0x12, 0x34, 0, 0],
            );
            a.try_send(&short).expect("try_send");
            assert_eq!(drain(&b).await, [short]);

            let long = ethernet(
                MAC_B,
                MAC_A,
                &[],
                ethertype::PPPOE_SESSION,
                &session_payload(4),
            );
            a.send(&long).await.expect("send");
            a.send(&long).await.expect("send");
            let mut small = [0u8; 16];
            let len = tokio::time::timeout(Duration::from_secs(2), b.recv(&mut small))
                .await
                .expect("a frame within 2 s")
                .expect("recv");
            assert_eq!(
                (len, &small[..], b.truncated_frames()),
                (16, &long[..16], 1)
            );
            let mut smalls = [[0u8; 16]; 2];
            let mut lens = [0usize; 2];
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(b.try_recv_batch(&mut smalls, &mut lens).expect("batch"), 1);
            assert_eq!(
                (lens[0], &smalls[0][..], b.truncated_frames()),
                (16, &long[..16], 2)
            );
        });
    }

    #[test]
    fn identity_matches_netlink() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let (a, _b) = veth_with_sockets(&netlink).await;
            let info = netlink.link_info("pda").await.expect("query").expect("pda");
            assert_eq!(
                (a.name(), a.ifindex(), Some(a.mac())),
                ("pda", info.index, info.mac)
            );
            assert_eq!(a.mac(), MAC_A);
        });
    }

    #[test]
    fn open_errors_name_the_problem() {
        in_netns_async(|| async {
            assert!(matches!(
                PacketSocket::open("nonexistent0"),
                Err(PacketSocketError::InterfaceMissing(name)) if name == "nonexistent0"
            ));
            assert!(matches!(
                PacketSocket::open("a-name-longer-than-15"),
                Err(PacketSocketError::InterfaceMissing(_))
            ));
            // Loopback exists but is not Ethernet.
            assert!(matches!(
                PacketSocket::open("lo"),
                Err(PacketSocketError::Io(error)) if error.kind() == io::ErrorKind::InvalidInput
            ));
        });
    }

    #[test]
    fn link_down_and_removal_show_up_as_receive_errors() {
        in_netns_async(|| async {
            let netlink = Netlink::connect().expect("netlink");
            let (a, b) = veth_with_sockets(&netlink).await;
            let index_b = b.ifindex();
            let mut buffer = [0u8; 2048];
            netlink.set_down(index_b).await.expect("down");
            let down = tokio::time::timeout(Duration::from_secs(2), b.recv(&mut buffer))
                .await
                .expect("an error within 2 s")
                .expect_err("recv on a downed link");
            assert_eq!(down.raw_os_error(), Some(libc::ENETDOWN));
            // Reported once; the socket stays bound and works after up.
            netlink.set_up(index_b).await.expect("up");
            assert!(netlink
                .wait_carrier("pda", Duration::from_secs(5))
                .await
                .expect("wait"));
            let session = ethernet(
                MAC_B,
                MAC_A,
                &[],
                ethertype::PPPOE_SESSION,
                &session_payload(5),
            );
            a.send(&session).await.expect("send");
            assert_eq!(drain(&b).await, [session]);

            netlink.delete_link(index_b).await.expect("delete");
            let gone = tokio::time::timeout(Duration::from_secs(2), b.recv(&mut buffer))
                .await
                .expect("an error within 2 s")
                .expect_err("recv on a deleted link");
            assert_eq!(gone.raw_os_error(), Some(libc::ENETDOWN));
            let after = b.try_recv(&mut buffer).expect_err("nothing more");
            assert_eq!(after.kind(), io::ErrorKind::WouldBlock);
        });
    }

    /// A classic BPF interpreter for the four instructions the filter uses,
    /// so the program's logic is checked without root.
    fn run_filter(frame: &[u8], packet_type: u8) -> u32 {
        let program = pppoe_filter();
        let mut accumulator: u32 = 0;
        let mut pc = 0usize;
        loop {
            let instruction = program.get(pc).expect("jump inside the program");
            let k = instruction.k;
            let load = |width: usize| -> Option<u32> {
                let offset = usize::try_from(k).ok()?;
                let bytes = frame.get(offset..offset.checked_add(width)?)?;
                Some(
                    bytes
                        .iter()
                        .fold(0u32, |value, byte| value << 8 | u32::from(*byte)),
                )
            };
            match u32::from(instruction.code) {
                code if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    if k == (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32 {
                        accumulator = u32::from(packet_type);
                    } else {
                        match load(4) {
                            Some(value) => accumulator = value,
                            None => return 0,
                        }
                    }
                }
                code if code == libc::BPF_LD | libc::BPF_H | libc::BPF_ABS => match load(2) {
                    Some(value) => accumulator = value,
                    None => return 0,
                },
                code if code == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    let skip = if accumulator == k {
                        instruction.jt
                    } else {
                        instruction.jf
                    };
                    pc += usize::from(skip);
                }
                code if code == libc::BPF_RET | libc::BPF_K => return k,
                code => panic!("unexpected BPF opcode {code:#x}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn filter_program_accepts_exactly_pppoe() {
        let host = libc::PACKET_HOST;
        let pppoe =
            |tags: &[(u16, u16)], ethertype: u16| ethernet(MAC_B, MAC_A, tags, ethertype, &PADI);
        for tags in [&[][..], &[(0x8100, 7)], &[(0x88a8, 7)], &[(0x9100, 7)]] {
            for ethertype in [ethertype::PPPOE_DISCOVERY, ethertype::PPPOE_SESSION] {
                assert_eq!(
                    run_filter(&pppoe(tags, ethertype), host),
                    u32::MAX,
                    "{tags:?} {ethertype:#x}"
                );
                assert_eq!(
                    run_filter(&pppoe(tags, ethertype), libc::PACKET_BROADCAST),
                    u32::MAX
                );
                assert_eq!(
                    run_filter(&pppoe(tags, ethertype), libc::PACKET_OUTGOING),
                    0
                );
            }
            for ethertype in [ethertype::IPV4, ethertype::IPV6, 0x0806, ethertype::PPP] {
                assert_eq!(
                    run_filter(&pppoe(tags, ethertype), host),
                    0,
                    "{tags:?} {ethertype:#x}"
                );
            }
        }
        // Two tags before the PPPoE type: beyond what the filter looks at.
        assert_eq!(
            run_filter(
                &pppoe(&[(0x88a8, 7), (0x8100, 8)], ethertype::PPPOE_SESSION),
                host
            ),
            0
        );
        // Too short to hold an EtherType, or a tag and no EtherType.
        assert_eq!(run_filter(&[0xff; 13], host), 0);
        assert_eq!(
            run_filter(&ethernet(MAC_B, MAC_A, &[], 0x8100, &[0x00]), host),
            0
        );
    }
}
