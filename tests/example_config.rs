//! The example config file in examples/ stays valid.

use clap::Parser;
use portdial::config::{DialArgs, DialConfig};

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    dial: DialArgs,
}

#[test]
fn the_example_config_resolves() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/portdial.toml");
    let args = Wrapper::parse_from(["portdial", "--config", path, "--password", "test-only"]).dial;
    let config = DialConfig::resolve(&args).expect("examples/portdial.toml resolves");
    assert_eq!(config.iface, "eth0");
    assert!(config.persist && config.usepeerdns && config.default_route);
    let ports = config.ports.expect("the port manager is on");
    assert_eq!(
        ports.scan_interval,
        Some(std::time::Duration::from_secs(60))
    );
    let classes = &ports.classes;
    assert_eq!(classes.classify(Some("element"), None, None).name, "chat");
    assert_eq!(
        classes.classify(None, Some(1001), None).mode,
        portdial::ports::classes::Mode::Observe
    );
    assert_eq!(
        classes.classify(Some("wget"), None, None).name,
        "video-download"
    );
}
