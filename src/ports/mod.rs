//! The port manager (CN102905292A): account every packet of the data path to
//! its local (protocol, port), scan the kernel's sockets and their owners,
//! judge each port over its application class's window, release the phantom
//! ones (the kernel socket destroyed, both ends reset), tell the application,
//! and on link loss release everything bound to the lost address.

pub mod classes;
pub mod judge;
pub mod manager;
pub mod release;
pub mod sockets;
pub mod table;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The transport protocols the manager tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn from_ip_protocol(protocol: u8) -> Option<Proto> {
        match protocol {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a packet crossed the data path, seen from the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a local socket out through the session (TUN → PPPoE).
    Tx,
    /// From the session to a local socket (PPPoE → TUN).
    Rx,
}

/// A remote endpoint, as the table records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Remote {
    pub ip: IpAddr,
    pub port: u16,
}

/// Milliseconds on the manager's own monotonic clock (the daemon's start is
/// 0). Compact, so entries stay small; 2^32 ms is 49 days, and ages are
/// computed with wrapping arithmetic.
pub type Tick = u32;
