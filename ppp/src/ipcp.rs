//! The IPCP policy (RFC 1332, RFC 1877): ask for 0.0.0.0 and take the address
//! the peer Naks us, ask for DNS servers when wanted, refuse VJ compression,
//! and accept the peer's own address.

use std::net::Ipv4Addr;

use portdial_protocol::ipcp::IpcpOption;

use crate::fsm::{Policy, RequestVerdict};
use crate::lcp::{judge_options, named};

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
            // A configured address stays ours when the peer only refused to
            // negotiate it (pppd keeps it too).
            local: self
                .want_address
                .filter(|a| !a.is_unspecified())
                .or(self.config.local),
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

    fn option_name(&self, kind: u8) -> Option<&'static str> {
        named(portdial_protocol::ipcp::kind_name(kind))
    }

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

#[cfg(test)]
mod tests {
    //! The policy alone, through the `fsm::Policy` trait, on option lists built
    //! with portdial_protocol's `IpcpOption` (constructed, not captured).

    use super::*;

    const ASSIGNED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DNS1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
    const DNS2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 54);
    const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

    fn options(list: &[IpcpOption<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for option in list {
            option.push_to(&mut out);
        }
        out
    }

    fn our_request(policy: &mut IpcpPolicy) -> Vec<u8> {
        let mut out = Vec::new();
        policy.build_request(&mut out);
        out
    }

    fn with_dns() -> IpcpPolicy {
        IpcpPolicy::new(IpcpConfig {
            local: None,
            request_dns: true,
        })
    }

    #[test]
    fn our_request_asks_for_an_address_and_dns_when_wanted() {
        assert_eq!(
            our_request(&mut with_dns()),
            options(&[
                IpcpOption::IpAddress(ANY),
                IpcpOption::PrimaryDns(ANY),
                IpcpOption::SecondaryDns(ANY),
            ])
        );
        let mut without = IpcpPolicy::new(IpcpConfig::default());
        assert_eq!(
            our_request(&mut without),
            options(&[IpcpOption::IpAddress(ANY)])
        );
        let fixed = Ipv4Addr::new(198, 51, 100, 7);
        let mut fixed_policy = IpcpPolicy::new(IpcpConfig {
            local: Some(fixed),
            request_dns: false,
        });
        assert_eq!(
            our_request(&mut fixed_policy),
            options(&[IpcpOption::IpAddress(fixed)])
        );
    }

    #[test]
    fn a_nak_with_an_address_and_dns_is_adopted() {
        let mut ipcp = with_dns();
        let nak = options(&[
            IpcpOption::IpAddress(ASSIGNED),
            IpcpOption::PrimaryDns(DNS1),
            IpcpOption::SecondaryDns(DNS2),
        ]);
        assert_eq!(ipcp.handle_nak(&nak), Ok(()));
        assert_eq!(our_request(&mut ipcp), nak);
        assert_eq!(
            ipcp.negotiated(),
            IpcpNegotiated {
                local: Some(ASSIGNED),
                peer: None,
                dns: vec![DNS1, DNS2],
            }
        );
    }

    #[test]
    fn a_nak_with_dns_we_did_not_ask_for_is_ignored() {
        let mut ipcp = IpcpPolicy::new(IpcpConfig::default());
        let nak = options(&[
            IpcpOption::IpAddress(ASSIGNED),
            IpcpOption::PrimaryDns(DNS1),
        ]);
        assert_eq!(ipcp.handle_nak(&nak), Ok(()));
        assert_eq!(
            our_request(&mut ipcp),
            options(&[IpcpOption::IpAddress(ASSIGNED)])
        );
        assert!(ipcp.negotiated().dns.is_empty());
    }

    #[test]
    fn a_nak_with_an_unusable_address_is_an_error_naming_it() {
        for bad in [
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(224, 0, 0, 1),
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(240, 0, 0, 1),
        ] {
            let mut ipcp = with_dns();
            let before = our_request(&mut ipcp);
            let error = ipcp
                .handle_nak(&options(&[IpcpOption::IpAddress(bad)]))
                .expect_err("an unusable address must not be taken");
            assert!(error.contains("unusable"), "{bad}: {error}");
            assert!(error.contains(&bad.to_string()), "{bad}: {error}");
            assert_eq!(our_request(&mut ipcp), before, "{bad} was not adopted");
            assert_eq!(ipcp.negotiated().local, None);
        }
    }

    #[test]
    fn a_nak_offering_the_peers_own_address_is_an_error() {
        let mut ipcp = with_dns();
        let peer_request = options(&[IpcpOption::IpAddress(PEER)]);
        assert_eq!(ipcp.check_request(&peer_request, true), RequestVerdict::Ack);
        assert_eq!(ipcp.negotiated().peer, Some(PEER));
        let error = ipcp
            .handle_nak(&options(&[IpcpOption::IpAddress(PEER)]))
            .expect_err("the peer's own address is not ours");
        assert!(error.contains("its own address"), "{error}");
        assert!(error.contains(&PEER.to_string()), "{error}");
    }

    #[test]
    fn a_reject_of_ip_address_without_a_static_address_is_an_error() {
        let mut ipcp = with_dns();
        let error = ipcp
            .handle_reject(&options(&[IpcpOption::IpAddress(ANY)]))
            .expect_err("no address at all");
        assert!(error.contains("IP-Address"), "{error}");
    }

    #[test]
    fn a_reject_of_ip_address_keeps_a_static_address() {
        let fixed = Ipv4Addr::new(198, 51, 100, 7);
        let mut ipcp = IpcpPolicy::new(IpcpConfig {
            local: Some(fixed),
            request_dns: false,
        });
        assert_eq!(
            ipcp.handle_reject(&options(&[IpcpOption::IpAddress(fixed)])),
            Ok(())
        );
        // We stop asking, but the address we were configured with is still ours
        // (pppd keeps `ouraddr` when the peer will not negotiate addresses).
        assert_eq!(our_request(&mut ipcp), Vec::<u8>::new());
        assert_eq!(ipcp.negotiated().local, Some(fixed));
    }

    #[test]
    fn a_reject_of_dns_stops_asking_and_is_not_an_error() {
        let mut ipcp = with_dns();
        let reject = options(&[IpcpOption::PrimaryDns(ANY), IpcpOption::SecondaryDns(ANY)]);
        assert_eq!(ipcp.handle_reject(&reject), Ok(()));
        assert_eq!(
            our_request(&mut ipcp),
            options(&[IpcpOption::IpAddress(ANY)])
        );
        assert!(ipcp.negotiated().dns.is_empty());
        // Only the secondary rejected: the primary is still asked for.
        let mut ipcp = with_dns();
        let reject = options(&[IpcpOption::SecondaryDns(ANY)]);
        assert_eq!(ipcp.handle_reject(&reject), Ok(()));
        assert_eq!(
            our_request(&mut ipcp),
            options(&[IpcpOption::IpAddress(ANY), IpcpOption::PrimaryDns(ANY)])
        );
    }

    #[test]
    fn the_peers_vj_compression_is_rejected_and_its_address_kept_apart() {
        let mut ipcp = with_dns();
        // Van Jacobson TCP/IP compression, 16 slots, slot-id compression on (as pppd asks).
        let vj = IpcpOption::IpCompressionProtocol {
            protocol: 0x002d,
            data: &[0x0f, 0x01],
        };
        let request = options(&[IpcpOption::IpAddress(PEER), vj]);
        assert_eq!(
            ipcp.check_request(&request, true),
            RequestVerdict::Reject(options(&[vj]))
        );
        // Not agreed yet: the peer's address is only taken with the Ack.
        assert_eq!(ipcp.negotiated().peer, None);
        let request = options(&[IpcpOption::IpAddress(PEER)]);
        assert_eq!(ipcp.check_request(&request, true), RequestVerdict::Ack);
        assert_eq!(ipcp.negotiated().peer, Some(PEER));
    }

    #[test]
    fn a_peer_asking_for_an_address_is_rejected() {
        let mut ipcp = with_dns();
        let request = options(&[IpcpOption::IpAddress(ANY)]);
        assert_eq!(
            ipcp.check_request(&request, true),
            RequestVerdict::Reject(request.clone())
        );
        // Likewise an address nobody can use.
        let request = options(&[IpcpOption::IpAddress(Ipv4Addr::BROADCAST)]);
        assert_eq!(
            ipcp.check_request(&request, true),
            RequestVerdict::Reject(request.clone())
        );
    }

    #[test]
    fn the_peers_dns_and_nbns_requests_are_rejected() {
        let mut ipcp = with_dns();
        let asked = [
            IpcpOption::PrimaryDns(ANY),
            IpcpOption::SecondaryDns(ANY),
            IpcpOption::PrimaryNbns(ANY),
            IpcpOption::SecondaryNbns(ANY),
        ];
        let mut request = options(&[IpcpOption::IpAddress(PEER)]);
        request.extend_from_slice(&options(&asked));
        assert_eq!(
            ipcp.check_request(&request, true),
            RequestVerdict::Reject(options(&asked))
        );
    }
}
