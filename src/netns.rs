//! Network namespaces for tests, benchmarks and the lab.
//!
//! `unshare(CLONE_NEWNET)` and `setns` change the namespace of the calling
//! *thread* only, and a socket belongs to the namespace of the thread that
//! created it. So everything here runs the caller's closure on a fresh std
//! thread that enters the namespace first, and the closure should build a
//! current-thread tokio runtime when it needs one: a multi-thread runtime's
//! workers, and tokio's blocking pool (`tokio::fs`), live in the namespace
//! of the process, not of this thread.
//!
//! An anonymous namespace disappears with its last thread, socket or open
//! namespace file, so there is nothing to clean up, even after a panic.

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::thread;

use nix::sched::CloneFlags;

use crate::netlink::Netlink;

/// The namespace file of the calling thread (not of the process: threads of
/// one process can sit in different namespaces).
const THREAD_NETNS_PATH: &str = "/proc/thread-self/ns/net";

/// Runs `f` on a new thread inside a new, empty network namespace whose
/// loopback is up, and returns its result. A panic in `f` panics the caller.
///
/// Errors: creating the namespace needs root (`CAP_SYS_ADMIN`); without it
/// the error says so.
pub fn run_in_new_netns<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    join(spawn_named("netns", move || {
        unshare_netns()?;
        set_loopback_up()?;
        Ok(f())
    })?)
}

/// [`run_in_new_netns`] for async code: `make_future` is called inside the
/// namespace and driven by a current-thread runtime (timers and I/O enabled)
/// that lives on the namespace's thread.
pub fn run_async_in_new_netns<T, Fut>(
    make_future: impl FnOnce() -> Fut + Send + 'static,
) -> io::Result<T>
where
    T: Send + 'static,
    Fut: Future<Output = T>,
{
    run_in_new_netns(move || -> io::Result<T> {
        let runtime = current_thread_runtime()?;
        Ok(runtime.block_on(make_future()))
    })?
}

/// A network namespace kept alive by an open namespace file, so that other
/// namespaces can move links into it (`Netlink::move_link_to_netns`) and
/// code can be run in it repeatedly.
#[derive(Debug)]
pub struct NetNs {
    file: OwnedFd,
}

impl NetNs {
    /// Creates a new namespace with its loopback up.
    pub fn new() -> io::Result<NetNs> {
        let file = join(spawn_named("netns-new", || {
            unshare_netns()?;
            set_loopback_up()?;
            Ok(OwnedFd::from(File::open(THREAD_NETNS_PATH)?))
        })?)?;
        Ok(NetNs { file })
    }

    /// The namespace the calling thread is in.
    pub fn current() -> io::Result<NetNs> {
        Ok(NetNs {
            file: OwnedFd::from(File::open(THREAD_NETNS_PATH)?),
        })
    }

    /// Runs `f` on a new thread that has entered this namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
        let file = self.file.try_clone()?;
        join(spawn_named("netns-run", move || {
            nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                .map_err(|errno| privilege_error(errno, "entering a network namespace (setns)"))?;
            Ok(f())
        })?)
    }

    /// [`NetNs::run`] for async code, like [`run_async_in_new_netns`].
    pub fn run_async<T, Fut>(
        &self,
        make_future: impl FnOnce() -> Fut + Send + 'static,
    ) -> io::Result<T>
    where
        T: Send + 'static,
        Fut: Future<Output = T>,
    {
        self.run(move || -> io::Result<T> {
            let runtime = current_thread_runtime()?;
            Ok(runtime.block_on(make_future()))
        })?
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Creates the veth pair `a`–`b` in the current namespace, brings both ends
/// up and returns their indexes `(a, b)`.
pub async fn add_veth_pair_up(netlink: &Netlink, a: &str, b: &str) -> io::Result<(u32, u32)> {
    netlink.add_veth(a, b).await?;
    let index_a = required_index(netlink, a).await?;
    let index_b = required_index(netlink, b).await?;
    netlink.set_up(index_a).await?;
    netlink.set_up(index_b).await?;
    Ok((index_a, index_b))
}

async fn required_index(netlink: &Netlink, name: &str) -> io::Result<u32> {
    netlink.link_index(name).await?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{name} is missing right after it was created"),
        )
    })
}

fn current_thread_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn spawn_named<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<thread::JoinHandle<io::Result<T>>> {
    thread::Builder::new().name(name.to_owned()).spawn(f)
}

fn join<T>(handle: thread::JoinHandle<io::Result<T>>) -> io::Result<T> {
    match handle.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn unshare_netns() -> io::Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|errno| privilege_error(errno, "creating a network namespace (unshare)"))
}

/// Turns EPERM into an error that names the missing privilege, so a test run
/// without root fails with a message saying why.
fn privilege_error(errno: nix::errno::Errno, what: &str) -> io::Error {
    let error = io::Error::from(errno);
    if matches!(errno, nix::errno::Errno::EPERM | nix::errno::Errno::EACCES) {
        io::Error::new(
            error.kind(),
            format!("{what} needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW): {error}"),
        )
    } else {
        io::Error::new(error.kind(), format!("{what}: {error}"))
    }
}

/// Brings `lo` up with SIOCGIFFLAGS/SIOCSIFFLAGS: a new namespace has its
/// loopback down, and this needs no runtime.
fn set_loopback_up() -> io::Result<()> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let socket = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: the ioctls read and write only `request`, which outlives them.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// For tests of the OS modules: runs `make_future` in a new namespace and
/// fails (never skips) with the missing privilege named when not root.
#[cfg(test)]
pub(crate) fn in_netns_async<T, Fut>(make_future: impl FnOnce() -> Fut + Send + 'static) -> T
where
    T: Send + 'static,
    Fut: Future<Output = T>,
{
    run_async_in_new_netns(make_future).unwrap_or_else(|error| panic!("{error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test that needs namespaces fails, naming the privilege, when it is
    /// run without root; it never passes by skipping.
    fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        run_in_new_netns(f).unwrap_or_else(|error| panic!("{error}"))
    }

    fn root_namespace_id() -> std::path::PathBuf {
        std::fs::read_link("/proc/self/ns/net").expect("read /proc/self/ns/net")
    }

    #[test]
    fn closure_runs_in_a_different_namespace_with_loopback_up() {
        let outer = std::fs::read_link(THREAD_NETNS_PATH).expect("read own netns");
        let inner = in_netns(|| std::fs::read_link(THREAD_NETNS_PATH).expect("read netns"));
        assert_ne!(outer, inner);
        // A UDP datagram to oneself over 127.0.0.1 only arrives with lo up.
        let echoed = in_netns(|| {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
            let address = socket.local_addr().expect("local addr");
            socket.send_to(b"ping", address).expect("send to self");
            let mut buffer = [0u8; 8];
            let (len, _) = socket.recv_from(&mut buffer).expect("recv from self");
            buffer.get(..len).map(<[u8]>::to_vec)
        });
        assert_eq!(echoed.as_deref(), Some(&b"ping"[..]));
        assert_eq!(root_namespace_id(), outer);
    }

    #[test]
    fn panics_propagate_to_the_caller() {
        let result = std::panic::catch_unwind(|| {
            in_netns(|| panic!("inner panic"));
        });
        let payload = result.expect_err("the panic must reach the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"inner panic"));
    }

    #[test]
    fn a_link_moved_to_another_namespace_leaves_this_one() {
        let target = NetNs::new().unwrap_or_else(|error| panic!("{error}"));
        let (seen_here, seen_there) = run_async_in_new_netns(move || async move {
            let netlink = Netlink::connect().expect("netlink");
            let (_, index_b) = add_veth_pair_up(&netlink, "va", "vb").await.expect("veth");
            netlink
                .move_link_to_netns(index_b, target.as_fd())
                .await
                .expect("move vb");
            let seen_here = netlink.link_index("vb").await.expect("query vb");
            // Checked while this namespace (and so the veth pair) is alive.
            let seen_there = target
                .run_async(|| async {
                    let netlink = Netlink::connect().expect("netlink");
                    netlink.link_index("vb").await.expect("query vb")
                })
                .expect("run in target");
            (seen_here, seen_there)
        })
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(seen_here, None);
        assert!(seen_there.is_some());
    }
}
