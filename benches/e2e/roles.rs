//! The benchmark's helper processes. The orchestrator re-executes this
//! binary as `--role NAME ...` inside a namespace (`ip netns exec`) and
//! pinned to a core (`taskset`), so each role's CPU is its own and its
//! sockets live where they must.
//!
//! Protocol with the orchestrator: a role that waits for load prints `ready`
//! (maybe with `key=value`s) once its sockets are open, runs until its stdin
//! is closed, then prints one JSON line with what it counted and exits. A
//! timed role (a generator) runs for `--seconds` and prints its JSON line.

use std::collections::HashMap;
use std::io::{self, BufRead, Read, Write};
use std::mem;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portdial::packet_socket::{PacketSocket, MAX_BATCH};
use portdial::tun::Tun;
use portdial_protocol::ethernet::MacAddr;
use portdial_protocol::ip::TcpFlags;
use serde_json::json;

use crate::frames::{self, SESSION_HEADER};

/// ETH_P_PPP_SES: the sink's socket receives PPPoE session frames only.
const ETH_P_PPP_SES: u16 = 0x8864;
/// PACKET_IGNORE_OUTGOING (linux/if_packet.h), not in libc.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// UDP_SEGMENT (linux/udp.h): the generator's GSO size.
const UDP_SEGMENT: libc::c_int = 103;
/// Socket buffers of the load roles: deep enough that a role descheduled
/// for a few milliseconds by the generator on its core does not drop.
const DEEP_BUFFER: libc::c_int = 64 << 20;
/// Most segments one UDP_SEGMENT send may carry (UDP_MAX_SEGMENTS).
const GSO_SEGMENTS: usize = 64;
/// Largest datagram one GSO send may carry.
const GSO_BYTES: usize = 65_000;

type Args = HashMap<String, String>;

fn arg<T: std::str::FromStr>(args: &Args, key: &str) -> Result<T, String> {
    let text = args.get(key).ok_or_else(|| format!("missing --{key}"))?;
    text.parse()
        .map_err(|_| format!("--{key} {text:?} is not valid"))
}

/// Parses `--key value` pairs (and bare `--flag`s as "true").
pub fn parse_args(list: &[String]) -> Args {
    let mut args = Args::new();
    let mut iter = list.iter().peekable();
    while let Some(key) = iter.next() {
        let Some(key) = key.strip_prefix("--") else {
            continue;
        };
        let value = match iter.peek() {
            Some(next) if !next.starts_with("--") => iter.next().cloned().unwrap_or_default(),
            _ => "true".to_string(),
        };
        args.insert(key.to_string(), value);
    }
    args
}

pub fn run(role: &str, args: &Args) -> Result<(), String> {
    match role {
        "sink" => sink(args),
        "inject" => inject(args),
        "udp-send" => udp_send(args),
        "udp-count" => udp_count(args),
        "null-fwd" => null_forwarder(args),
        "pppoe-pty" => pppoe_pty(args),
        "tcp-send" => tcp_send(args),
        "tcp-recv" => tcp_recv(args),
        "port-spray" => port_spray(args),
        other => Err(format!("unknown role {other}")),
    }
}

fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints `result()` and ends the process when stdin reaches EOF (the
/// orchestrator closed it).
fn finish_on_stdin_eof(result: impl FnOnce() -> serde_json::Value + Send + 'static) {
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = io::stdin().lock().read_to_end(&mut sink);
        say(&result().to_string());
        std::process::exit(0);
    });
}

fn os_error(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> Result<(), String> {
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(os_error(&format!("setsockopt {level}/{name}")));
    }
    Ok(())
}

/// Routes a socket's traffic out of `--device` only: every session's TUN
/// has a route to the same peer address, so the destination alone does not
/// pick the forwarder under test.
fn bind_to_device(fd: RawFd, args: &Args) -> Result<(), String> {
    let device: String = arg(args, "device")?;
    // SAFETY: setsockopt with a live buffer and its length.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            device.as_ptr().cast(),
            device.len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(os_error(&format!("SO_BINDTODEVICE {device}")));
    }
    Ok(())
}

fn set_receive_timeout(fd: RawFd, timeout: Duration) -> Result<(), String> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: setsockopt with a pointer to a live timeval and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(os_error("SO_RCVTIMEO"));
    }
    Ok(())
}

/// A blocking AF_PACKET socket bound to `iface` for `protocol` (0: send
/// only), never seeing its own or other outgoing frames.
fn raw_packet_socket(iface: &str, protocol: u16) -> Result<OwnedFd, String> {
    let wire_protocol = libc::c_int::from(protocol.to_be());
    // SAFETY: plain socket(2); the result is checked.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            wire_protocol,
        )
    };
    if raw < 0 {
        return Err(os_error("AF_PACKET socket"));
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let name = std::ffi::CString::new(iface).map_err(|_| "bad interface name".to_string())?;
    // SAFETY: a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(format!("interface {iface} does not exist"));
    }
    set_int_option(fd.as_raw_fd(), libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)?;
    set_int_option(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        DEEP_BUFFER,
    )?;
    set_int_option(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_SNDBUFFORCE,
        DEEP_BUFFER,
    )?;
    // SAFETY: sockaddr_ll is plain old data.
    let mut address: libc::sockaddr_ll = unsafe { mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = protocol.to_be();
    address.sll_ifindex = index as libc::c_int;
    // SAFETY: bind with a live sockaddr_ll and its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&address as *const libc::sockaddr_ll).cast(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(os_error("bind AF_PACKET"));
    }
    Ok(fd)
}

/// Receives up to 64 messages into `bufs` (waiting for the first, up to the
/// socket's receive timeout); fills `lens` with each message's real length
/// (MSG_TRUNC: even where only a prefix was copied). 0 on timeout.
fn receive_batch(fd: RawFd, bufs: &mut [Vec<u8>], lens: &mut [usize]) -> usize {
    let count = bufs.len().min(lens.len()).min(MAX_BATCH);
    // SAFETY: iovec and mmsghdr are plain old data; zero is valid.
    let mut iovecs: [libc::iovec; MAX_BATCH] = unsafe { mem::zeroed() };
    let mut headers: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };
    for ((iovec, header), buf) in iovecs
        .iter_mut()
        .zip(headers.iter_mut())
        .zip(bufs.iter_mut())
    {
        iovec.iov_base = buf.as_mut_ptr().cast();
        iovec.iov_len = buf.len();
        header.msg_hdr.msg_iov = iovec;
        header.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `count` headers, each with one iovec over a live buffer.
    let received = unsafe {
        libc::recvmmsg(
            fd,
            headers.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_WAITFORONE | libc::MSG_TRUNC,
            std::ptr::null_mut(),
        )
    };
    let Ok(received) = usize::try_from(received) else {
        return 0;
    };
    for (len, header) in lens.iter_mut().zip(&headers).take(received) {
        *len = header.msg_len as usize;
    }
    received
}

/// Sends every frame of `frames` with sendmmsg; returns how many went.
fn send_batch(fd: RawFd, frames: &[&[u8]]) -> usize {
    let count = frames.len().min(MAX_BATCH);
    // SAFETY: plain old data; zero is valid.
    let mut iovecs: [libc::iovec; MAX_BATCH] = unsafe { mem::zeroed() };
    let mut headers: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };
    for ((iovec, header), frame) in iovecs.iter_mut().zip(headers.iter_mut()).zip(frames) {
        iovec.iov_base = frame.as_ptr() as *mut libc::c_void;
        iovec.iov_len = frame.len();
        header.msg_hdr.msg_iov = iovec;
        header.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `count` headers over live frames, which the kernel only reads.
    let sent = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), count as libc::c_uint, 0) };
    usize::try_from(sent).unwrap_or(0)
}

/// The upstream sink on the server-side veth: counts the session's frames
/// that carry a UDP payload of `--size` bytes (`frames`), other session
/// frames (`other`), and every session frame's IP bytes (`ip_bytes`, for
/// the TCP flow).
fn sink(args: &Args) -> Result<(), String> {
    let iface: String = arg(args, "iface")?;
    let session: u16 = arg(args, "session")?;
    let size: usize = arg(args, "size")?;
    let expected = SESSION_HEADER + frames::IP_UDP_HEADER + size;
    let fd = raw_packet_socket(&iface, ETH_P_PPP_SES)?;
    set_receive_timeout(fd.as_raw_fd(), Duration::from_millis(100))?;
    static FRAMES: AtomicU64 = AtomicU64::new(0);
    static OTHER: AtomicU64 = AtomicU64::new(0);
    static IP_BYTES: AtomicU64 = AtomicU64::new(0);
    finish_on_stdin_eof(|| {
        json!({
            "frames": FRAMES.load(Ordering::Relaxed),
            "other": OTHER.load(Ordering::Relaxed),
            "ip_bytes": IP_BYTES.load(Ordering::Relaxed),
        })
    });
    say("ready");
    // Only the headers are copied; MSG_TRUNC reports each frame's length.
    let mut bufs = vec![vec![0u8; 64]; MAX_BATCH];
    let mut lens = [0usize; MAX_BATCH];
    let session_bytes = session.to_be_bytes();
    loop {
        let received = receive_batch(fd.as_raw_fd(), &mut bufs, &mut lens);
        let (mut matching, mut other, mut bytes) = (0, 0, 0);
        for (buf, &len) in bufs.iter().zip(&lens).take(received) {
            let ours = buf.get(12..14) == Some(&[0x88, 0x64][..])
                && buf.get(16..18) == Some(&session_bytes[..]);
            if !ours {
                continue;
            }
            bytes += len.saturating_sub(SESSION_HEADER) as u64;
            if len == expected {
                matching += 1;
            } else {
                other += 1;
            }
        }
        FRAMES.fetch_add(matching, Ordering::Relaxed);
        OTHER.fetch_add(other, Ordering::Relaxed);
        IP_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The downstream generator on the server-side veth: the same prebuilt
/// session frame (AC → client, UDP `--ip-src` → `--ip-dst`:`--port`),
/// 64 per sendmmsg, for `--seconds`.
fn inject(args: &Args) -> Result<(), String> {
    let iface: String = arg(args, "iface")?;
    let src: MacAddr = arg(args, "src-mac")?;
    let dst: MacAddr = arg(args, "dst-mac")?;
    let session: u16 = arg(args, "session")?;
    let ip_src: Ipv4Addr = arg(args, "ip-src")?;
    let ip_dst: Ipv4Addr = arg(args, "ip-dst")?;
    let port: u16 = arg(args, "port")?;
    let size: usize = arg(args, "size")?;
    let seconds: f64 = arg(args, "seconds")?;
    let packet = frames::udp_packet(ip_src, ip_dst, 40_000, port, size);
    let frame = frames::session_frame(src, dst, session, &packet);
    let batch: Vec<&[u8]> = vec![&frame[..]; MAX_BATCH];
    let fd = raw_packet_socket(&iface, 0)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut sent = 0u64;
    while Instant::now() < deadline {
        sent += send_batch(fd.as_raw_fd(), &batch) as u64;
    }
    say(&json!({"sent": sent, "seconds": start.elapsed().as_secs_f64()}).to_string());
    Ok(())
}

/// The upstream generator in the client namespace: UDP datagrams of
/// `--size` bytes to `--dst`, as fast as the socket takes them, for
/// `--seconds`. With `--gso`, UDP_SEGMENT sends up to 64 datagrams per
/// system call (the kernel segments them before the TUN unless the TUN
/// takes USO super-packets).
fn udp_send(args: &Args) -> Result<(), String> {
    let dst: SocketAddr = arg(args, "dst")?;
    let size: usize = arg(args, "size")?;
    let seconds: f64 = arg(args, "seconds")?;
    let gso = args.contains_key("gso");
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"))?;
    bind_to_device(socket.as_raw_fd(), args)?;
    socket
        .connect(dst)
        .map_err(|e| format!("connect {dst}: {e}"))?;
    set_int_option(
        socket.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_SNDBUFFORCE,
        4 << 20,
    )?;
    let segments = if gso {
        set_int_option(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            UDP_SEGMENT,
            size as libc::c_int,
        )?;
        GSO_SEGMENTS.min(GSO_BYTES / size.max(1)).max(1)
    } else {
        1
    };
    let payload: Vec<u8> = (0..size * segments)
        .map(|i| b'a' + (i % size.max(1) % 26) as u8)
        .collect();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let (mut sent, mut errors) = (0u64, 0u64);
    while Instant::now() < deadline {
        match socket.send(&payload) {
            Ok(_) => sent += segments as u64,
            Err(_) => errors += 1,
        }
    }
    say(
        &json!({"sent": sent, "errors": errors, "seconds": start.elapsed().as_secs_f64()})
            .to_string(),
    );
    Ok(())
}

/// The downstream sink in the client namespace: counts UDP datagrams of
/// `--size` bytes arriving at `--bind`.
fn udp_count(args: &Args) -> Result<(), String> {
    let bind: SocketAddr = arg(args, "bind")?;
    let size: usize = arg(args, "size")?;
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    set_int_option(
        socket.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        DEEP_BUFFER,
    )?;
    set_receive_timeout(socket.as_raw_fd(), Duration::from_millis(100))?;
    static PACKETS: AtomicU64 = AtomicU64::new(0);
    static OTHER: AtomicU64 = AtomicU64::new(0);
    finish_on_stdin_eof(
        || json!({"packets": PACKETS.load(Ordering::Relaxed), "other": OTHER.load(Ordering::Relaxed)}),
    );
    say("ready");
    let mut bufs = vec![vec![0u8; 2048]; MAX_BATCH];
    let mut lens = [0usize; MAX_BATCH];
    loop {
        let received = receive_batch(socket.as_raw_fd(), &mut bufs, &mut lens);
        let matching = lens
            .iter()
            .take(received)
            .filter(|&&len| len == size)
            .count() as u64;
        PACKETS.fetch_add(matching, Ordering::Relaxed);
        OTHER.fetch_add(received as u64 - matching, Ordering::Relaxed);
    }
}

/// The null forwarder: portdial's own TUN and packet-socket types, a fixed
/// 22-byte Ethernet + PPPoE + PPP header prepended going up and stripped
/// coming down, nothing else (no session machine, no parsing, no
/// accounting). `--batch 1`: one packet per system call both ways;
/// `--batch 64`: recvmmsg/sendmmsg on the packet socket (a TUN moves one
/// packet per read or write whatever one does).
fn null_forwarder(args: &Args) -> Result<(), String> {
    let iface: String = arg(args, "iface")?;
    let tun_name: String = arg(args, "tun")?;
    let local: Ipv4Addr = arg(args, "local")?;
    let peer: Ipv4Addr = arg(args, "peer")?;
    let our_mac: MacAddr = arg(args, "our-mac")?;
    let peer_mac: MacAddr = arg(args, "peer-mac")?;
    let session: u16 = arg(args, "session")?;
    let batch: usize = arg(args, "batch")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(async move {
        let tun = Tun::create(&tun_name).map_err(|e| format!("TUN {tun_name}: {e}"))?;
        configure_tun(&tun_name, local, peer)?;
        let socket =
            PacketSocket::open(&iface).map_err(|e| format!("packet socket on {iface}: {e}"))?;
        let mut header = [0u8; SESSION_HEADER];
        header[..6].copy_from_slice(&peer_mac.0);
        header[6..12].copy_from_slice(&our_mac.0);
        header[12..16].copy_from_slice(&[0x88, 0x64, 0x11, 0x00]);
        header[16..18].copy_from_slice(&session.to_be_bytes());
        header[20..22].copy_from_slice(&[0x00, 0x21]);
        finish_on_stdin_eof(|| json!({}));
        say("ready");
        if batch <= 1 {
            forward_one_by_one(&tun, &socket, header).await;
        } else {
            forward_batched(&tun, &socket, header).await;
        }
        Ok(())
    })
}

/// Sets the TUN up as portdial sets its own: MTU 1492, a point-to-point
/// address, IPv6 off before it is up (no router solicitations to count).
pub fn configure_tun(name: &str, local: Ipv4Addr, peer: Ipv4Addr) -> Result<(), String> {
    std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1")
        .map_err(|e| format!("disable IPv6 on {name}: {e}"))?;
    for command in [
        vec!["link", "set", name, "mtu", "1492", "up"],
        vec![
            "addr",
            "add",
            &local.to_string(),
            "peer",
            &peer.to_string(),
            "dev",
            name,
        ],
    ] {
        let owned: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        let status = Command::new("ip")
            .args(&owned)
            .status()
            .map_err(|e| format!("ip: {e}"))?;
        if !status.success() {
            return Err(format!("ip {} failed", owned.join(" ")));
        }
    }
    Ok(())
}

fn set_length(frame: &mut [u8], ip_len: usize) {
    let pppoe_len = (ip_len + 2).min(usize::from(u16::MAX)) as u16;
    frame[18..20].copy_from_slice(&pppoe_len.to_be_bytes());
}

async fn forward_one_by_one(tun: &Tun, socket: &PacketSocket, header: [u8; SESSION_HEADER]) {
    let mut up = vec![0u8; 2048];
    let mut down = vec![0u8; 2048];
    up[..SESSION_HEADER].copy_from_slice(&header);
    loop {
        tokio::select! {
            result = socket.recv(&mut down) => {
                let mut next = result.ok();
                for _ in 0..MAX_BATCH {
                    let Some(len) = next else { break };
                    if let Some(packet) = down.get(SESSION_HEADER..len) {
                        let _ = tun.try_send(packet);
                    }
                    next = socket.try_recv(&mut down).ok();
                }
            }
            result = tun.recv(&mut up[SESSION_HEADER..]) => {
                let mut next = result.ok();
                for _ in 0..MAX_BATCH {
                    let Some(len) = next else { break };
                    set_length(&mut up, len);
                    let _ = socket.try_send(&up[..SESSION_HEADER + len]);
                    next = tun.try_recv(&mut up[SESSION_HEADER..]).ok();
                }
            }
        }
    }
}

async fn forward_batched(tun: &Tun, socket: &PacketSocket, header: [u8; SESSION_HEADER]) {
    let mut ups: Vec<Vec<u8>> = (0..MAX_BATCH)
        .map(|_| {
            let mut buf = vec![0u8; 2048];
            buf[..SESSION_HEADER].copy_from_slice(&header);
            buf
        })
        .collect();
    let mut up_lens = [0usize; MAX_BATCH];
    let mut downs = vec![vec![0u8; 2048]; MAX_BATCH];
    let mut down_lens = [0usize; MAX_BATCH];
    loop {
        tokio::select! {
            result = socket.recv_batch(&mut downs, &mut down_lens) => {
                let count = result.unwrap_or(0);
                for (buf, &len) in downs.iter().zip(&down_lens).take(count) {
                    if let Some(packet) = buf.get(SESSION_HEADER..len) {
                        let _ = tun.try_send(packet);
                    }
                }
            }
            result = tun.recv(&mut ups[0][SESSION_HEADER..]) => {
                let Ok(first) = result else { continue };
                up_lens[0] = first;
                let mut count = 1;
                while count < MAX_BATCH {
                    match tun.try_recv(&mut ups[count][SESSION_HEADER..]) {
                        Ok(len) => { up_lens[count] = len; count += 1; }
                        Err(_) => break,
                    }
                }
                for (buf, &len) in ups.iter_mut().zip(&up_lens).take(count) {
                    set_length(buf, len);
                }
                let frames: Vec<&[u8]> = ups.iter().zip(&up_lens).take(count)
                    .map(|(buf, &len)| &buf[..SESSION_HEADER + len]).collect();
                let mut done = 0;
                while done < count {
                    match socket.try_send_batch(&frames[done..]) {
                        Ok(0) | Err(_) => break,
                        Ok(sent) => done += sent,
                    }
                }
            }
        }
    }
}

/// Opens a pty pair in raw mode (as pppd's `pty` option does); returns
/// (master, slave).
fn open_raw_pty() -> Result<(OwnedFd, OwnedFd), String> {
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r/open on descriptors
    // and buffers we own; every result is checked.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if master < 0 {
            return Err(os_error("posix_openpt"));
        }
        let master = OwnedFd::from_raw_fd(master);
        if libc::grantpt(master.as_raw_fd()) < 0 || libc::unlockpt(master.as_raw_fd()) < 0 {
            return Err(os_error("grantpt/unlockpt"));
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) != 0 {
            return Err(os_error("ptsname_r"));
        }
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        if slave < 0 {
            return Err(os_error("open pty slave"));
        }
        let slave = OwnedFd::from_raw_fd(slave);
        let mut termios: libc::termios = mem::zeroed();
        if libc::tcgetattr(slave.as_raw_fd(), &mut termios) < 0 {
            return Err(os_error("tcgetattr"));
        }
        libc::cfmakeraw(&mut termios);
        if libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &termios) < 0 {
            return Err(os_error("tcsetattr"));
        }
        Ok((master, slave))
    }
}

/// rp-pppoe user mode as deployed: `pppoe -I IF -e SESSION:MAC` (session id
/// in decimal) in its default async-HDLC mode with a raw pty as stdin and
/// stdout, the way pppd's `pty` option runs it, pinned to `--core`. This
/// role stands where pppd would: `--mode up` writes HDLC-framed PPP into
/// the pty after a `go` line on stdin, for `--seconds`; `--mode down`
/// counts the HDLC frames coming out. pppoe is ended with SIGKILL (its
/// SIGTERM handler can deadlock).
fn pppoe_pty(args: &Args) -> Result<(), String> {
    let iface: String = arg(args, "iface")?;
    let session: u16 = arg(args, "session")?;
    let ac_mac: MacAddr = arg(args, "ac-mac")?;
    let mode: String = arg(args, "mode")?;
    let size: usize = arg(args, "size")?;
    let core: String = arg(args, "core")?;
    let (master, slave) = open_raw_pty()?;
    let stdin_end = slave.try_clone().map_err(|e| format!("dup: {e}"))?;
    let mut child = Command::new("taskset")
        .args([
            "-c",
            &core,
            "pppoe",
            "-I",
            &iface,
            "-e",
            &format!("{session}:{ac_mac}"),
        ])
        .stdin(Stdio::from(stdin_end))
        .stdout(Stdio::from(slave))
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn pppoe: {e}"))?;
    let pid = child.id();
    // pppoe opens its packet socket right after start.
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(Some(status)) = child.try_wait() {
        return Err(format!("pppoe exited at once: {status}"));
    }
    let ip_len = frames::IP_UDP_HEADER + size;
    let counted = Arc::new(Mutex::new(frames::HdlcCounter::default()));
    let reader = master.try_clone().map_err(|e| format!("dup: {e}"))?;
    {
        let counted = Arc::clone(&counted);
        // Drains (and in down mode counts) what pppoe writes, so it never
        // blocks on a full pty.
        std::thread::spawn(move || {
            let mut file = std::fs::File::from(reader);
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = file.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut counter) = counted.lock() {
                    counter.feed(&buf[..n], frames::hdlc_unescaped_len(ip_len));
                }
            }
        });
    }
    say(&format!("ready pid={pid}"));
    let stdin = io::stdin();
    let mut line = String::new();
    if mode == "up" {
        let _ = stdin.lock().read_line(&mut line);
        let seconds: f64 = arg(args, "seconds")?;
        let packet = frames::udp_packet(
            Ipv4Addr::new(198, 51, 100, 2),
            Ipv4Addr::new(198, 51, 100, 1),
            40_000,
            9,
            size,
        );
        let framed = frames::hdlc_frame(&packet);
        let per_write = (65_536 / framed.len()).max(1);
        let block: Vec<u8> = framed
            .iter()
            .copied()
            .cycle()
            .take(framed.len() * per_write)
            .collect();
        let mut writer = std::fs::File::from(master);
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(seconds);
        let mut bytes = 0u64;
        while Instant::now() < deadline {
            match writer.write(&block) {
                Ok(n) => bytes += n as u64,
                Err(_) => break,
            }
        }
        let sent = bytes / framed.len() as u64;
        say(&json!({"sent": sent, "seconds": start.elapsed().as_secs_f64()}).to_string());
    }
    let mut rest = Vec::new();
    let _ = stdin.lock().read_to_end(&mut rest);
    let _ = child.kill();
    let _ = child.wait();
    let (frames_out, other) = counted
        .lock()
        .map(|c| (c.frames, c.other))
        .unwrap_or_default();
    say(&json!({"packets": frames_out, "other": other}).to_string());
    Ok(())
}

/// One TCP flow's sender: writes 128 KiB chunks to `--dst` for `--seconds`.
fn tcp_send(args: &Args) -> Result<(), String> {
    let dst: SocketAddr = arg(args, "dst")?;
    let seconds: f64 = arg(args, "seconds")?;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| format!("socket: {e}"))?;
    bind_to_device(socket.as_raw_fd(), args)?;
    socket
        .connect_timeout(&dst.into(), Duration::from_secs(5))
        .map_err(|e| format!("connect {dst}: {e}"))?;
    let mut stream = TcpStream::from(socket);
    let chunk = vec![b'x'; 128 << 10];
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut bytes = 0u64;
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| format!("timeout: {e}"))?;
    while Instant::now() < deadline {
        match stream.write(&chunk) {
            Ok(n) => bytes += n as u64,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
            }
            Err(e) => return Err(format!("send: {e}")),
        }
    }
    say(&json!({"sent_bytes": bytes, "seconds": start.elapsed().as_secs_f64()}).to_string());
    Ok(())
}

/// One TCP flow's receiver: counts the bytes of every connection to `--bind`.
fn tcp_recv(args: &Args) -> Result<(), String> {
    let bind: SocketAddr = arg(args, "bind")?;
    let listener = TcpListener::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    static BYTES: AtomicU64 = AtomicU64::new(0);
    finish_on_stdin_eof(|| json!({"bytes": BYTES.load(Ordering::Relaxed)}));
    say("ready");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 << 10];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                BYTES.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
    }
    Ok(())
}

/// Drives distinct local ports through the session: from `--src`, one UDP
/// datagram from each of `--udp` source ports and one TCP SYN from each of
/// `--tcp` source ports to `--dst`, through a raw IPv4 socket (no kernel
/// socket is bound to them), paced so that the TUN's queue never overflows.
fn port_spray(args: &Args) -> Result<(), String> {
    let src: Ipv4Addr = arg(args, "src")?;
    let dst: Ipv4Addr = arg(args, "dst")?;
    let udp_ports: u32 = arg(args, "udp")?;
    let tcp_ports: u32 = arg(args, "tcp")?;
    // SAFETY: plain socket(2); IPPROTO_RAW implies IP_HDRINCL.
    let raw = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        )
    };
    if raw < 0 {
        return Err(os_error("raw socket"));
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    bind_to_device(fd.as_raw_fd(), args)?;
    // SAFETY: sockaddr_in is plain old data.
    let mut to: libc::sockaddr_in = unsafe { mem::zeroed() };
    to.sin_family = libc::AF_INET as libc::sa_family_t;
    to.sin_addr.s_addr = u32::from(dst).to_be();
    let mut sent = 0u64;
    let packets = (0..udp_ports)
        .map(|i| (false, i))
        .chain((0..tcp_ports).map(|i| (true, i)));
    for (tcp, index) in packets {
        let port = (index % 65_535 + 1) as u16;
        let packet = if tcp {
            frames::tcp_packet(src, dst, port, 80, TcpFlags::SYN)
        } else {
            frames::udp_packet(src, dst, port, 53, 8)
        };
        // SAFETY: sendto with a live buffer and a live sockaddr_in.
        let rc = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&to as *const libc::sockaddr_in).cast(),
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc >= 0 {
            sent += 1;
        }
        if sent.is_multiple_of(100) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    say(&json!({"sent": sent}).to_string());
    Ok(())
}
