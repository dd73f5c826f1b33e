//! `portdial discover`: broadcast PADI and list every access concentrator that
//! answers, like rp-pppoe's `pppoe -A`.

use std::time::Instant;

use portdial_ppp::discovery::{Discovery, DiscoveryConfig, Offer};
use portdial_protocol::ethernet::{self, ethertype};
use portdial_protocol::pppoe::DiscoveryRepr;
use rand::RngCore;
use serde::Serialize;

use crate::packet_socket::PacketSocket;

/// One AC as `--json` prints it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct AcOffer {
    pub ac_mac: String,
    pub ac_name: Option<String>,
    pub services: Vec<String>,
    /// The AC-Cookie in hex.
    pub cookie: Option<String>,
    pub relay_session_id: Option<String>,
    pub ppp_max_payload: Option<u16>,
}

impl From<&Offer> for AcOffer {
    fn from(offer: &Offer) -> AcOffer {
        AcOffer {
            ac_mac: offer.ac_mac.to_string(),
            ac_name: offer.ac_name.clone(),
            services: offer.service_names.clone(),
            cookie: offer.cookie.as_deref().map(hex),
            relay_session_id: offer.relay_session_id.as_deref().map(hex),
            ppp_max_payload: offer.ppp_max_payload,
        }
    }
}

/// Send failures that pass by themselves (queues full, memory short).
fn is_transient(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::WouldBlock
        || matches!(
            error.raw_os_error(),
            Some(libc::ENOBUFS) | Some(libc::ENOMEM)
        )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Probes `socket`'s segment; returns every offer seen.
pub async fn discover(
    socket: &PacketSocket,
    config: DiscoveryConfig,
) -> std::io::Result<Vec<AcOffer>> {
    let mut host_uniq = vec![0; 8];
    rand::rngs::OsRng.fill_bytes(&mut host_uniq);
    let mut discovery = Discovery::new(socket.mac(), config, host_uniq);
    discovery.probe(Instant::now());
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(frame) = discovery.poll_transmit() {
            match socket.send(&frame).await {
                Ok(_) => {}
                // A full queue loses the PADI as the wire could; the
                // discovery timer sends it again.
                Err(error) if is_transient(&error) => {
                    tracing::debug!(%error, "PADI not sent; retrying on the timer");
                }
                Err(error) => return Err(error),
            }
        }
        if discovery.probe_done() {
            break;
        }
        let Some(deadline) = discovery.poll_timeout() else {
            break;
        };
        tokio::select! {
            received = socket.recv(&mut buf) => {
                let len = received?;
                let Some(frame) = buf.get(..len) else { continue };
                let Ok((eth, offset)) = ethernet::Repr::parse(frame) else { continue };
                if eth.ethertype != ethertype::PPPOE_DISCOVERY {
                    continue;
                }
                let Ok(repr) = DiscoveryRepr::parse_bytes(&frame[offset..]) else { continue };
                discovery.handle_frame(Instant::now(), &eth, &repr);
            }
            _ = tokio::time::sleep_until(deadline.into()) => discovery.handle_timeout(Instant::now()),
        }
    }
    Ok(discovery.offers().iter().map(AcOffer::from).collect())
}

/// The human-readable listing, one block per AC, like `pppoe -A`.
pub fn render(offers: &[AcOffer]) -> String {
    let mut out = String::new();
    for offer in offers {
        out.push_str(&format!(
            "Access-Concentrator: {}\n",
            offer.ac_name.as_deref().unwrap_or("(no name)")
        ));
        for service in &offer.services {
            out.push_str(&format!(
                "       Service-Name: {}\n",
                if service.is_empty() { "(any)" } else { service }
            ));
        }
        if let Some(cookie) = &offer.cookie {
            out.push_str(&format!("Got a cookie: {cookie}\n"));
        }
        if let Some(relay) = &offer.relay_session_id {
            out.push_str(&format!("Relay-Session-Id: {relay}\n"));
        }
        if let Some(max) = offer.ppp_max_payload {
            out.push_str(&format!("PPP-Max-Payload: {max}\n"));
        }
        out.push_str(&format!("AC-Ethernet-Address: {}\n", offer.ac_mac));
        out.push_str("--------------------------------------------------\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_full_queues_and_short_memory_are_retried() {
        for errno in [libc::ENOBUFS, libc::ENOMEM, libc::EAGAIN] {
            assert!(is_transient(&std::io::Error::from_raw_os_error(errno)));
        }
        for errno in [libc::ENETDOWN, libc::ENXIO, libc::EPERM] {
            assert!(!is_transient(&std::io::Error::from_raw_os_error(errno)));
        }
    }
}
