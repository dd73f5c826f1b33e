//! Dropping privileges once the sockets are open.
//!
//! The daemon keeps CAP_NET_ADMIN (the TUN, addresses and routes through
//! netlink, SOCK_DESTROY of phantom ports) and CAP_NET_RAW (the packet socket,
//! reopened after carrier loss), and nothing else: not in its effective or
//! permitted set, not in the bounding set its hooks inherit. With `--run-as`
//! it also becomes that user (primary group only), keeping the same two
//! capabilities across the uid change. The two are also made ambient so that
//! the ip-up/ip-down and release hooks can configure the network the way
//! pppd's hooks can, and nothing more. With `--name-owners` it keeps
//! CAP_SYS_PTRACE as well, which reading another process's /proc/PID/fd needs
//! (the port manager's owner names), but never makes that one ambient.
//!
//! Capabilities are per thread: this runs on the daemon's only thread, before
//! the runtime starts any other (the blocking pool is spawned later, from
//! this thread, and inherits the reduced sets).

use std::fmt;

use caps::{CapSet, Capability, CapsHashSet};

use crate::config::RunAs;

/// What the daemon needs for its whole life.
const KEEP: [Capability; 2] = [Capability::CAP_NET_ADMIN, Capability::CAP_NET_RAW];

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("--run-as {user}: changing user needs root (CAP_SETUID and CAP_SETGID)")]
    CannotSwitchUser { user: String },
    #[error("--run-as {user}: {what}: {error}")]
    SwitchUser {
        user: String,
        what: &'static str,
        error: nix::Error,
    },
    #[error(
        "--run-as {user}: {user} cannot open /dev/net/tun ({error}); make it mode 0666 \
         (udev's default; under systemd: DeviceAllow=/dev/net/tun rw)"
    )]
    TunDevice { user: String, error: std::io::Error },
    #[error("dropping capabilities: {0}")]
    Capabilities(#[from] caps::errors::CapsError),
}

/// The capabilities left, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept(Vec<Capability>);

impl Kept {
    pub fn contains(&self, capability: Capability) -> bool {
        self.0.contains(&capability)
    }
}

impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<String> = self
            .0
            .iter()
            .map(|c| c.to_string().to_lowercase())
            .collect();
        f.write_str(&names.join(","))
    }
}

/// Keeps CAP_NET_ADMIN and CAP_NET_RAW (those of them we have), and
/// CAP_SYS_PTRACE if `name_owners`; drops every other capability, and becomes
/// `run_as` if given.
pub fn drop_privileges(run_as: Option<&RunAs>, name_owners: bool) -> Result<Kept, PrivilegeError> {
    let permitted = caps::read(None, CapSet::Permitted)?;
    let for_hooks: CapsHashSet = KEEP
        .into_iter()
        .filter(|capability| permitted.contains(capability))
        .collect();
    let mut keep = for_hooks.clone();
    if name_owners && permitted.contains(&Capability::CAP_SYS_PTRACE) {
        keep.insert(Capability::CAP_SYS_PTRACE);
    }

    // The bounding set limits what any program we start (hooks) can gain,
    // including a setuid-root one. Shrinking it needs CAP_SETPCAP, which a
    // daemon started with only the two capabilities lacks and does not need.
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP)? {
        for capability in caps::all() {
            if !for_hooks.contains(&capability)
                && caps::has_cap(None, CapSet::Bounding, capability).unwrap_or(false)
            {
                caps::drop(None, CapSet::Bounding, capability)?;
            }
        }
    }

    if let Some(user) = run_as {
        switch_user(user, &permitted)?;
        // Every session opens it for a new TUN: fail now, not at the first
        // dial-up, if the new user cannot.
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|error| PrivilegeError::TunDevice {
                user: user.name.clone(),
                error,
            })?;
    }

    // Effective first: it must stay a subset of permitted at every step.
    caps::set(None, CapSet::Effective, &keep)?;
    caps::set(None, CapSet::Permitted, &keep)?;
    caps::set(None, CapSet::Inheritable, &for_hooks)?;
    caps::clear(None, CapSet::Ambient)?;
    for capability in &for_hooks {
        caps::raise(None, CapSet::Ambient, *capability)?;
    }

    let effective = caps::read(None, CapSet::Effective)?;
    let mut kept: Vec<Capability> = effective.into_iter().collect();
    kept.sort_by_key(|capability| capability.index());
    Ok(Kept(kept))
}

/// setgroups/setresgid/setresuid, keeping the permitted set across the uid
/// change (PR_SET_KEEPCAPS); glibc applies each to every thread.
fn switch_user(user: &RunAs, permitted: &CapsHashSet) -> Result<(), PrivilegeError> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    if !permitted.contains(&Capability::CAP_SETUID) || !permitted.contains(&Capability::CAP_SETGID)
    {
        return Err(PrivilegeError::CannotSwitchUser {
            user: user.name.clone(),
        });
    }
    let fail = |what: &'static str| {
        move |error: nix::Error| PrivilegeError::SwitchUser {
            user: user.name.clone(),
            what,
            error,
        }
    };
    caps::securebits::set_keepcaps(true)?;
    let gid = Gid::from_raw(user.gid);
    let uid = Uid::from_raw(user.uid);
    setgroups(&[gid]).map_err(fail("setgroups"))?;
    setresgid(gid, gid, gid).map_err(fail("setresgid"))?;
    setresuid(uid, uid, uid).map_err(fail("setresuid"))?;
    caps::securebits::set_keepcaps(false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The drop itself is process-wide in effect (setresuid) and cannot be
    /// undone, so it is tested on a real daemon in tests/security.rs; here
    /// only the message the log shows.
    #[test]
    fn kept_capabilities_read_like_the_kernels_names() {
        let kept = Kept(vec![Capability::CAP_NET_ADMIN, Capability::CAP_NET_RAW]);
        assert_eq!(kept.to_string(), "cap_net_admin,cap_net_raw");
        assert_eq!(Kept(Vec::new()).to_string(), "none");
        assert!(kept.contains(Capability::CAP_NET_RAW));
    }
}
