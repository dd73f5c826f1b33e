//! `portdial replay --ports`: the port manager's accounting and judge over a
//! capture's data traffic, with the capture's own timestamps.

use std::process::Command;

fn replay_ports(file: &str, extra: &[&str]) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let output = Command::new(env!("CARGO_BIN_EXE_portdial"))
        .args(["replay", "--ports", "--json"])
        .args(extra)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn an_http_exchange_is_one_alive_port() {
    // bug-4810: one HTTP GET from 10.100.0.0:57013 to 142.250.179.131:80 and its
    // response, closed by both sides (tshark: 16 frames from the client, 14 to it).
    let rows = replay_ports(
        "captures/public/suricata-verify/bug-4810_pppoe-session-http.pcap",
        &[],
    );
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["proto"], "tcp");
    assert_eq!(row["local_ip"], "10.100.0.0");
    assert_eq!(row["local_port"], 57013);
    assert_eq!(row["remotes"][0], "142.250.179.131:80");
    assert_eq!(
        (row["tx_packets"].as_u64(), row["rx_packets"].as_u64()),
        (Some(16), Some(14))
    );
    assert_eq!(
        (
            row["tx_data_packets"].as_u64(),
            row["rx_data_packets"].as_u64()
        ),
        (Some(1), Some(11))
    );
    assert_eq!(row["state"], "TIME-WAIT", "both sides sent FIN");
    assert_eq!(row["verdict"], "alive");
    assert_eq!(row["reason"], "sent and received data within 5m");
}

#[test]
fn captures_without_tcp_or_udp_have_no_ports() {
    let rows = replay_ports("captures/lab/chap.pcap", &["--window", "30s"]);
    assert_eq!(rows, serde_json::json!([]));
}

#[test]
fn window_requires_ports() {
    let output = Command::new(env!("CARGO_BIN_EXE_portdial"))
        .args(["replay", "--window", "5s", "captures/lab/chap.pcap"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
