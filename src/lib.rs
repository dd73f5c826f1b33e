//! portdial: a userspace PPPoE dialer. The library holds what the `portdial`
//! command does, so that integration tests can call it directly.

pub mod exit;
pub mod replay;
pub mod netns;
pub mod packet_socket;
pub mod tun;
pub mod netlink;
pub mod config;
pub mod secrets;
pub mod hooks;
pub mod resolv;
pub mod state_file;
pub mod capture;
