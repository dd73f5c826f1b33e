//! The IPCP policy (RFC 1332, RFC 1877): ask for 0.0.0.0 and take the address
//! the peer Naks us, ask for DNS servers when wanted, refuse VJ compression,
//! and accept the peer's own address.

use std::net::Ipv4Addr;

use portdial_protocol::ipcp::IpcpOption;

use crate::fsm::{Policy, RequestVerdict};
use crate::lcp::judge_options;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpcpConfig {
    /// An address to ask for; `None` asks the peer to assign one.
    pub local: Option<Ipv4Addr>,
    /// Ask for Primary/Secondary DNS (pppd's `usepeerdns`).
    pub request_dns: bool,
}

/// What IPCP settled on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpcpNegotiated {
    pub local: Option<Ipv4Addr>,
    pub peer: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
}

/// An address usable as one end of the link: not 0.0.0.0, broadcast,
/// multicast, loopback or class E.
pub fn is_usable_address(address: Ipv4Addr) -> bool {
    !(address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || address.is_loopback()
        || address.octets()[0] >= 240)
}

#[derive(Debug)]
pub struct IpcpPolicy {
    config: IpcpConfig,
    want_address: Option<Ipv4Addr>,
    want_dns: [Option<Ipv4Addr>; 2],
    peer: Option<Ipv4Addr>,
}

impl IpcpPolicy {
    pub fn new(config: IpcpConfig) -> IpcpPolicy {
        let mut policy = IpcpPolicy {
            config,
            want_address: None,
            want_dns: [None; 2],
            peer: None,
        };
        policy.reset();
        policy
    }

    /// The result so far; complete once the layer is up.
    pub fn negotiated(&self) -> IpcpNegotiated {
        IpcpNegotiated {
            local: self.want_address.filter(|a| !a.is_unspecified()),
            peer: self.peer,
            dns: self
                .want_dns
                .iter()
                .flatten()
                .copied()
                .filter(|a| !a.is_unspecified())
                .collect(),
        }
    }
}

impl Policy for IpcpPolicy {
    fn name(&self) -> &'static str {
        "IPCP"
    }

    fn reset(&mut self) {
        self.want_address = Some(self.config.local.unwrap_or(Ipv4Addr::UNSPECIFIED));
        let dns = self.config.request_dns.then_some(Ipv4Addr::UNSPECIFIED);
        self.want_dns = [dns, dns];
        self.peer = None;
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(address) = self.want_address {
            IpcpOption::IpAddress(address).push_to(out);
        }
        if let Some(dns) = self.want_dns[0] {
            IpcpOption::PrimaryDns(dns).push_to(out);
        }
        if let Some(dns) = self.want_dns[1] {
            IpcpOption::SecondaryDns(dns).push_to(out);
        }
    }

    fn check_request(&mut self, options: &[u8], _nak_allowed: bool) -> RequestVerdict {
        let mut peer = None;
        let verdicts =
            judge_options(
                options,
                IpcpOption::parse,
                |option, raw, verdicts| match option {
                    // We have no address to hand the peer, so a peer asking for one (0.0.0.0)
                    // or naming an unusable one is rejected: it then runs without telling us.
                    IpcpOption::IpAddress(address) if is_usable_address(address) => {
                        peer = Some(address)
                    }
                    // VJ compression, the deprecated IP-Addresses, DNS/NBNS requests we have
                    // no answer for, and anything unknown.
                    _ => verdicts.reject_raw(raw),
                },
            );
        let verdict = verdicts.into_verdict();
        if matches!(verdict, RequestVerdict::Ack) {
            self.peer = peer;
        }
        verdict
    }

    fn handle_ack(&mut self, _options: &[u8]) {}

    fn handle_nak(&mut self, options: &[u8]) -> Result<(), String> {
        for option in IpcpOption::iter(options).flatten() {
            match option {
                IpcpOption::IpAddress(address) if self.want_address.is_some() => {
                    if !is_usable_address(address) {
                        return Err(format!("the peer offered an unusable address {address}"));
                    }
                    if self.peer == Some(address) {
                        return Err(format!(
                            "the peer offered its own address {address} as ours"
                        ));
                    }
                    self.want_address = Some(address);
                }
                IpcpOption::PrimaryDns(dns) if self.want_dns[0].is_some() => {
                    self.want_dns[0] = Some(dns)
                }
                IpcpOption::SecondaryDns(dns) if self.want_dns[1].is_some() => {
                    self.want_dns[1] = Some(dns)
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn handle_reject(&mut self, options: &[u8]) -> Result<(), String> {
        for option in IpcpOption::iter(options).flatten() {
            match option {
                IpcpOption::IpAddress(_) => match self.want_address {
                    Some(address) if !address.is_unspecified() => self.want_address = None,
                    _ => {
                        return Err("the peer rejected IP-Address and so gives us no address".into())
                    }
                },
                // No DNS from this peer; not fatal.
                IpcpOption::PrimaryDns(_) => self.want_dns[0] = None,
                IpcpOption::SecondaryDns(_) => self.want_dns[1] = None,
                _ => {}
            }
        }
        Ok(())
    }
}
