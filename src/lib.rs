//! portdial: a userspace PPPoE dialer. The library holds what the `portdial`
//! command does, so that integration tests can call it directly.

pub mod capture;
pub mod config;
pub mod control;
pub mod daemon;
pub mod datapath;
pub mod discover;
pub mod exit;
pub mod hooks;
pub mod netlink;
pub mod netns;
pub mod offload;
pub mod packet_socket;
pub mod ports;
pub mod privileges;
pub mod replay;
pub mod resolv;
pub mod secrets;
pub mod state_file;
pub mod timer;
pub mod tun;
