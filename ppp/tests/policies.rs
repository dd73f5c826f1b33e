//! PPPoE discovery through its public API, one frame at a time: what a PADR
//! echoes, and which PADO, PADS and PADT frames are not ours to act on. The
//! frames are built with portdial_protocol's `DiscoveryRepr` and `Tag`
//! (constructed, not captured).

use std::time::{Duration, Instant};

use portdial_ppp::discovery::{Discovery, DiscoveryConfig, DiscoveryError, DiscoveryInput};
use portdial_protocol::ethernet::{self, MacAddr, VlanStack};
use portdial_protocol::pppoe::{Code, DiscoveryRepr, Tag};

const OURS: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, 0x02]);
const AC: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
const OTHER_AC: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x53, 0x03]);
const HOST_UNIQ: &[u8] = &[0xde, 0xad, 0xbe, 0xef];
const COOKIE: &[u8] = b"cookie-1234";
const RELAY: &[u8] = &[0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];

/// Discovery started, its PADI already taken off the queue.
fn started(now: Instant) -> Discovery {
    let mut discovery = Discovery::new(OURS, DiscoveryConfig::default(), HOST_UNIQ.to_vec());
    discovery.start(now);
    let padi = discovery.poll_transmit().expect("a PADI");
    assert_eq!(parse(&padi).1.code, Code::Padi);
    assert!(discovery.poll_transmit().is_none());
    discovery
}

fn feed(
    discovery: &mut Discovery,
    now: Instant,
    src: MacAddr,
    code: Code,
    session_id: u16,
    tags: Vec<Tag<'_>>,
) -> DiscoveryInput {
    let ethernet = ethernet::Repr {
        dst: OURS,
        src,
        vlans: VlanStack::default(),
        ethertype: ethernet::ethertype::PPPOE_DISCOVERY,
    };
    let repr = DiscoveryRepr {
        code,
        session_id,
        tags,
    };
    discovery.handle_frame(now, &ethernet, &repr)
}

fn parse(frame: &[u8]) -> (ethernet::Repr, DiscoveryRepr<'_>) {
    let (ethernet, offset) = ethernet::Repr::parse(frame).expect("an Ethernet frame");
    let repr = DiscoveryRepr::parse_bytes(&frame[offset..]).expect("a discovery packet");
    (ethernet, repr)
}

/// The usual offer: AC-Name, any service, cookie, our Host-Uniq.
fn offer_tags<'a>() -> Vec<Tag<'a>> {
    vec![
        Tag::AcName(b"sim-ac"),
        Tag::ServiceName(b""),
        Tag::AcCookie(COOKIE),
        Tag::HostUniq(HOST_UNIQ),
    ]
}

/// Discovery with the usual offer accepted and its PADR taken off the queue.
fn requesting(now: Instant) -> Discovery {
    let mut discovery = started(now);
    feed(&mut discovery, now, AC, Code::Pado, 0, offer_tags());
    let padr = discovery.poll_transmit().expect("a PADR");
    assert_eq!(parse(&padr).1.code, Code::Padr);
    discovery
}

#[test]
fn padr_echoes_the_relay_session_id_and_the_cookie() {
    let now = Instant::now();
    let mut discovery = started(now);
    let mut tags = offer_tags();
    tags.push(Tag::RelaySessionId(RELAY));
    feed(&mut discovery, now, AC, Code::Pado, 0, tags);
    let padr = discovery.poll_transmit().expect("a PADR");
    let (ethernet, repr) = parse(&padr);
    assert_eq!(ethernet.dst, AC, "the PADR goes to the AC that offered");
    assert_eq!(ethernet.src, OURS);
    assert_eq!(repr.code, Code::Padr);
    assert_eq!(repr.session_id, 0);
    assert_eq!(repr.relay_session_id(), Some(RELAY));
    assert_eq!(repr.ac_cookie(), Some(COOKIE));
    assert_eq!(repr.host_uniq(), Some(HOST_UNIQ));
    assert_eq!(repr.service_name(), Some(&b""[..]));
    assert_eq!(
        discovery.offers()[0].relay_session_id.as_deref(),
        Some(RELAY)
    );
}

#[test]
fn padr_without_relay_session_id_carries_none() {
    let now = Instant::now();
    let mut discovery = started(now);
    feed(&mut discovery, now, AC, Code::Pado, 0, offer_tags());
    let padr = discovery.poll_transmit().expect("a PADR");
    let (_, repr) = parse(&padr);
    assert_eq!(repr.relay_session_id(), None);
    assert_eq!(repr.ac_cookie(), Some(COOKIE));
}

#[test]
fn pado_without_ac_name_is_ignored() {
    let now = Instant::now();
    let mut discovery = started(now);
    let tags = vec![
        Tag::ServiceName(b""),
        Tag::AcCookie(COOKIE),
        Tag::HostUniq(HOST_UNIQ),
    ];
    feed(&mut discovery, now, AC, Code::Pado, 0, tags);
    assert!(discovery.poll_transmit().is_none(), "no PADR");
    assert!(discovery.offers().is_empty());
    assert_eq!(discovery.stats().ignored, 1);
    assert_eq!(discovery.stats().offers_seen, 0);
    assert!(discovery.is_pending());
    // A proper offer after it is still taken.
    feed(&mut discovery, now, AC, Code::Pado, 0, offer_tags());
    assert!(discovery.poll_transmit().is_some());
}

#[test]
fn pado_with_another_host_uniq_is_ignored() {
    let now = Instant::now();
    let mut discovery = started(now);
    let tags = vec![
        Tag::AcName(b"sim-ac"),
        Tag::ServiceName(b""),
        Tag::HostUniq(&[0x01, 0x02, 0x03, 0x04]),
    ];
    feed(&mut discovery, now, AC, Code::Pado, 0, tags);
    // No Host-Uniq at all, when we sent one, is not ours either.
    let tags = vec![Tag::AcName(b"sim-ac"), Tag::ServiceName(b"")];
    feed(&mut discovery, now, AC, Code::Pado, 0, tags);
    assert!(discovery.poll_transmit().is_none(), "no PADR");
    assert!(discovery.offers().is_empty());
    assert_eq!(discovery.stats().ignored, 2);
    // The PADI is retried as if nothing came.
    discovery.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(
        parse(&discovery.poll_transmit().unwrap()).1.code,
        Code::Padi
    );
}

#[test]
fn pads_from_another_mac_is_ignored() {
    let now = Instant::now();
    let mut discovery = requesting(now);
    let tags = vec![Tag::ServiceName(b""), Tag::HostUniq(HOST_UNIQ)];
    feed(
        &mut discovery,
        now,
        OTHER_AC,
        Code::Pads,
        0x1234,
        tags.clone(),
    );
    assert_eq!(discovery.established(), None);
    assert_eq!(discovery.failure(), None);
    assert!(discovery.is_pending());
    assert_eq!(discovery.stats().ignored, 1);
    // The chosen AC's PADS still establishes the session.
    feed(&mut discovery, now, AC, Code::Pads, 0x0011, tags);
    let established = discovery.established().expect("established");
    assert_eq!(established.ac_mac, AC);
    assert_eq!(established.session_id, 0x0011);
    assert_eq!(established.ac_name.as_deref(), Some("sim-ac"));
}

#[test]
fn pads_with_another_host_uniq_is_ignored() {
    let now = Instant::now();
    let mut discovery = requesting(now);
    let tags = vec![Tag::ServiceName(b""), Tag::HostUniq(b"someone else")];
    feed(&mut discovery, now, AC, Code::Pads, 0x1234, tags);
    assert_eq!(discovery.established(), None);
    assert!(discovery.is_pending());
}

#[test]
fn pads_with_session_id_zero_and_no_error_is_a_generic_error() {
    let now = Instant::now();
    let mut discovery = requesting(now);
    let tags = vec![Tag::ServiceName(b""), Tag::HostUniq(HOST_UNIQ)];
    feed(&mut discovery, now, AC, Code::Pads, 0, tags);
    match discovery.failure() {
        Some(DiscoveryError::GenericError { ac_mac, message }) => {
            assert_eq!(*ac_mac, AC);
            assert!(message.contains("session id 0"), "{message}");
        }
        other => panic!("expected GenericError, got {other:?}"),
    }
    assert_eq!(discovery.established(), None);
    assert!(!discovery.is_pending());
    assert_eq!(discovery.poll_timeout(), None, "no PADR retry after it");
}

#[test]
fn padt_before_pads_is_ignored() {
    let now = Instant::now();
    let mut discovery = requesting(now);
    let tags = vec![Tag::GenericError(b"go away")];
    assert_eq!(
        feed(&mut discovery, now, AC, Code::Padt, 0x0011, tags.clone()),
        DiscoveryInput::Handled
    );
    assert_eq!(discovery.failure(), None);
    assert!(discovery.is_pending());
    assert_eq!(discovery.stats().ignored, 1);
    // Likewise while still looking for offers.
    let mut discovery = started(now);
    assert_eq!(
        feed(&mut discovery, now, AC, Code::Padt, 0x0011, tags),
        DiscoveryInput::Handled
    );
    assert!(discovery.is_pending());
    // And the session the PADS then gives is ended by a PADT for it.
    let mut discovery = requesting(now);
    let pads = vec![Tag::ServiceName(b""), Tag::HostUniq(HOST_UNIQ)];
    feed(&mut discovery, now, AC, Code::Pads, 0x0011, pads);
    assert!(discovery.established().is_some());
    assert_eq!(
        feed(&mut discovery, now, AC, Code::Padt, 0x0011, Vec::new()),
        DiscoveryInput::Terminated { message: None }
    );
}

#[test]
fn pads_confirming_ppp_max_payload_is_recorded() {
    let now = Instant::now();
    let mut discovery = Discovery::new(
        OURS,
        DiscoveryConfig {
            ppp_max_payload: Some(1500),
            ..DiscoveryConfig::default()
        },
        HOST_UNIQ.to_vec(),
    );
    discovery.start(now);
    let padi = discovery.poll_transmit().unwrap();
    assert_eq!(parse(&padi).1.ppp_max_payload(), Some(1500));
    feed(&mut discovery, now, AC, Code::Pado, 0, offer_tags());
    let padr = discovery.poll_transmit().unwrap();
    assert_eq!(parse(&padr).1.ppp_max_payload(), Some(1500));
    let pads = vec![
        Tag::ServiceName(b""),
        Tag::HostUniq(HOST_UNIQ),
        Tag::PppMaxPayload(1500),
    ];
    feed(&mut discovery, now, AC, Code::Pads, 0x0011, pads);
    assert_eq!(discovery.established().unwrap().ppp_max_payload, Some(1500));
}
