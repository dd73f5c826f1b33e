//! `portdial replay` against every capture in `captures/public/`, through the
//! library and through the built binary.
//!
//! The expected values were checked by hand against tshark 4.x once
//! (`tshark -r F -V`, `-T fields -e pppoe.session_id -e ppp.protocol -e
//! pppoe.payload_length`, `-x`); each test says what tshark shows.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use portdial::exit;
use portdial::replay::{self, Decoder, RawFrame, Report, SessionSummary};
use proptest::prelude::*;

fn capture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures/public")
        .join(name)
}

fn read_capture(name: &str) -> Vec<u8> {
    std::fs::read(capture_path(name)).unwrap()
}

fn decode(name: &str) -> Report {
    replay::decode(&read_capture(name)).unwrap()
}

fn only_session(report: &Report) -> &SessionSummary {
    assert_eq!(report.sessions.len(), 1, "{:#?}", report.sessions);
    &report.sessions[0]
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portdial"))
        .args(args)
        .output()
        .unwrap()
}

fn scratch_file(name: &str, contents: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn every_public_capture_decodes_with_the_manifest_frame_count() {
    // MANIFEST.tsv's `frames` column is tshark's frame count per file.
    let manifest = std::fs::read_to_string(capture_path("MANIFEST.tsv")).unwrap();
    let mut checked = 0;
    for line in manifest.lines().skip(1) {
        let columns: Vec<&str> = line.split('\t').collect();
        let (file, frames) = (columns[3], columns[4].parse::<u64>().unwrap());
        let report = decode(file);
        assert_eq!(report.frames, frames, "{file}");
        assert_eq!(report.lines.len() as u64, frames, "{file}");
        checked += 1;
    }
    let on_disk = ["suricata-verify", "tcpdump", "zeek"]
        .iter()
        .map(|dir| std::fs::read_dir(capture_path(dir)).unwrap().count())
        .sum::<usize>();
    assert_eq!(checked, on_disk, "a capture is missing from MANIFEST.tsv");
}

#[test]
fn zeek_pppoe_happy_path() {
    // tshark: PADI(1) PADO(2, empty Service-Name, AC-Name "BRAS", AC-Cookie
    // 16 bytes) PADR(3) PADS(4, session 0x0011, empty Service-Name,
    // Host-Uniq 64138518) from
    // ca:01:0e:88:00:06 to cc:05:0e:88:00:00. LCP: the client's request (5)
    // carries only magic 0x05fcd459 and is acked (7); the AC asks MRU 1492 +
    // PAP (6), the client Naks MRU 1500 (8), the AC asks again (9), acked
    // (10). PAP Authenticate-Request peer "cisco" (11), Authenticate-Ack
    // (12). IPCP: AC asks 10.0.0.1 (13, acked 17); the client asks 0.0.0.0
    // (15), Nak 10.0.2.16 (19), asks again (21), Ack (27); no DNS options.
    // IPv6CP: the client's id ce05:0eff:fe88:0000 (16) is acked (20), the
    // AC's c801:0eff:fe88:0008 (14) acked (18). 25 IPv6 frames (22-26,
    // 30-39, 54-63) whose PPPoE lengths sum to 2332, i.e. 2282 bytes after
    // the 2-byte protocol fields. No PADT, no Terminate-Request.
    let report = decode("zeek/pppoe.pcap");
    assert_eq!((report.frames, report.malformed), (65, 0));
    assert!(report.errors.is_empty());
    let expected = SessionSummary {
        session_id: Some(0x0011),
        ac_mac: Some("ca:01:0e:88:00:06".into()),
        client_mac: Some("cc:05:0e:88:00:00".into()),
        ac_name: Some("BRAS".into()),
        service_name: Some(String::new()),
        auth: Some("pap".into()),
        auth_result: Some("success".into()),
        // The client's acked LCP request carried no MRU option.
        mru: None,
        local_ip: Some("10.0.2.16".into()),
        peer_ip: Some("10.0.0.1".into()),
        dns: vec![],
        ipv6_interface_id: Some("ce05:0eff:fe88:0000".into()),
        terminated_by: None,
        data_packets: 25,
        data_bytes: 2282,
        notes: only_session(&report).notes.clone(),
    };
    assert_eq!(only_session(&report), &expected);
    assert!(expected.notes.contains(&"roles from discovery".to_string()));
    assert!(expected
        .notes
        .contains(&"the AC's acknowledged LCP request carried MRU 1500".to_string()));
    assert!(expected
        .notes
        .contains(&"discovery frames 1, 2, 3, 4".to_string()));

    let line = |number: usize| report.lines[number - 1].text.as_str();
    assert_eq!(
        line(2),
        "ca:01:0e:88:00:06 > cc:05:0e:88:00:00 PADO sid 0x0000 Service-Name=\"\" \
         Host-Uniq=4B AC-Name=\"BRAS\" AC-Cookie=16B"
    );
    assert_eq!(
        line(9),
        "ca:01:0e:88:00:06 > cc:05:0e:88:00:00 sid 0x0011 LCP Configure-Request id=2 \
         <mru 1500> <auth pap> <magic 0x1fccbfb>"
    );
    // The PAP password ("cisco") is never printed.
    assert_eq!(
        line(11),
        "cc:05:0e:88:00:00 > ca:01:0e:88:00:06 sid 0x0011 PAP id=1 AuthReq \
         user=\"cisco\" password=<hidden>"
    );
    assert_eq!(
        line(19),
        "ca:01:0e:88:00:06 > cc:05:0e:88:00:00 sid 0x0011 IPCP Configure-Nak id=1 \
         <addr 10.0.2.16>"
    );
    assert_eq!(
        line(54),
        "cc:05:0e:88:00:00 > ca:01:0e:88:00:06 sid 0x0011 IPv6 fc00:0:2:100::1:1 > fc00::1 \
         ICMPv6 type 128 code 0"
    );
    assert_eq!(report.lines[1].relative_ns, Some(37_000_000));
}

#[test]
fn suricata_two_sessions_one_terminated() {
    // tshark: client 00:00:cd:38:13:43, AC ee:86:e2:f9:70:57.
    // Session 0x0001: PADI/PADO (AC-Name "test", Service-Name "test")/PADR/
    // PADS (1-4); LCP requests both ways (5, 7) but no Ack; the client's
    // Terminate-Request "User request" (6) comes before the PADTs (9
    // "pppd terminated", 10 "Received PADT"); a stale Terminate-Request on
    // 0x0001 follows (11, 19).
    // Session 0x0002: PADI..PADS (12-15, Service-Name "test"); LCP without
    // authentication: the AC's MRU 1492 request (17) acked (18), the
    // client's MRU 1492 request (20) acked (21); IPCP: the client asks
    // 192.168.2.45 (23), acked (28); the AC asks VJ + 192.168.1.1 (26),
    // VJ rejected (33), asks 192.168.1.1 (34), acked (37); the client
    // Protocol-Rejects IPv6CP (35); CCP options 26/24/21 rejected (31).
    let report = decode("suricata-verify/pppoe_input.pcap");
    assert_eq!((report.frames, report.malformed), (37, 0));
    assert_eq!(report.sessions.len(), 2);
    let first = &report.sessions[0];
    assert_eq!(first.session_id, Some(1));
    assert_eq!(first.ac_mac.as_deref(), Some("ee:86:e2:f9:70:57"));
    assert_eq!(first.client_mac.as_deref(), Some("00:00:cd:38:13:43"));
    assert_eq!(first.ac_name.as_deref(), Some("test"));
    assert_eq!(first.service_name.as_deref(), Some("test"));
    assert_eq!(first.terminated_by.as_deref(), Some("lcp-terminate"));
    assert_eq!((first.auth.as_deref(), first.mru), (None, None));
    assert!(first
        .notes
        .contains(&"opened at frame 4; 8 PPP/PADT frames".to_string()));

    let second = &report.sessions[1];
    let expected = SessionSummary {
        session_id: Some(2),
        ac_mac: Some("ee:86:e2:f9:70:57".into()),
        client_mac: Some("00:00:cd:38:13:43".into()),
        ac_name: Some("test".into()),
        service_name: Some("test".into()),
        auth: Some("none".into()),
        auth_result: None,
        mru: Some(1492),
        local_ip: Some("192.168.2.45".into()),
        peer_ip: Some("192.168.1.1".into()),
        dns: vec![],
        ipv6_interface_id: None,
        terminated_by: None,
        data_packets: 0,
        data_bytes: 0,
        notes: second.notes.clone(),
    };
    assert_eq!(second, &expected);
    assert!(report.lines[9]
        .text
        .ends_with("PADT sid 0x0001 Generic-Error=\"Received PADT\""));
}

#[test]
fn bug_4810_one_byte_protocol_field() {
    // tshark: 30 frames, all PPPoE session 0x002d carrying IPv4 with the
    // protocol field compressed to the single byte 0x21; PPPoE lengths sum
    // to 17114, so 17084 bytes of IP. Frame 1 is the SYN from 10.100.0.0
    // (00:0c:29:20:8e:a1) to 142.250.179.131:80 (00:0c:29:39:f3:c3).
    let report = decode("suricata-verify/bug-4810_pppoe-session-http.pcap");
    assert_eq!((report.frames, report.malformed), (30, 0));
    let session = only_session(&report);
    assert_eq!(session.session_id, Some(0x002d));
    assert_eq!((session.data_packets, session.data_bytes), (30, 17084));
    assert_eq!(session.client_mac.as_deref(), Some("00:0c:29:20:8e:a1"));
    assert_eq!(session.ac_mac.as_deref(), Some("00:0c:29:39:f3:c3"));
    assert_eq!(session.auth, None);
    assert!(session.notes[0].starts_with("roles guessed"));
    assert_eq!(
        report.lines[0].text,
        "00:0c:29:20:8e:a1 > 00:0c:29:39:f3:c3 sid 0x002d IPv4 10.100.0.0 > 142.250.179.131 \
         TCP 57013 > 80 [S] len 0"
    );
}

#[test]
fn pppoe_over_qinq_length_mismatches_are_not_errors() {
    // tshark: 86 frames in VLANs 3704/2474 (two 0x8100 tags), session
    // 0x0f07, IPv4 TCP 1.1.1.1:20394 <-> 2.2.2.2:443 only; PPPoE lengths sum
    // to 38420 (38248 bytes after the 2-byte protocol fields). Frames 19,
    // 33, 41, 47, 63 and 81 have PPPoE length 42 with 48 bytes after the
    // header ("Possible bad payload length 42 != 48", IPv4 total length 46).
    // Every frame's source MAC is 00:00:00:00:00:00; 1.1.1.1's frames go to
    // 00:00:00:00:00:01, 2.2.2.2's to bc:d1:77:17:75:0d. Frame 1 is 1.1.1.1's
    // SYN.
    let report = decode("zeek/pppoe-over-qinq.pcap");
    assert_eq!((report.frames, report.malformed), (86, 0));
    let session = only_session(&report);
    assert_eq!(session.session_id, Some(0x0f07));
    assert_eq!((session.data_packets, session.data_bytes), (86, 38248));
    assert_eq!(session.client_mac.as_deref(), Some("00:00:00:00:00:00"));
    assert_eq!(session.ac_mac.as_deref(), Some("00:00:00:00:00:01"));
    assert!(session.notes.contains(
        &"6 frames carry more bytes than their PPPoE length (the PPPoE length was used)"
            .to_string()
    ));
    let mismatched: Vec<u64> = report
        .lines
        .iter()
        .filter(|line| line.text.contains("PPPoE length 42 < 48"))
        .map(|line| line.number)
        .collect();
    assert_eq!(mismatched, vec![19, 33, 41, 47, 63, 81]);
    assert!(report.lines[0].text.contains("vlan 3704.2474 sid 0x0f07"));
}

#[test]
fn tcpdump_lone_padi_opens_no_session() {
    // tshark: one PADI from 00:0c:29:90:3a:8b with an empty Service-Name,
    // PPP-Max-Payload 1500 and a 4-byte Host-Uniq; nothing answers.
    let report = decode("tcpdump/pppoe.pcap");
    assert_eq!((report.frames, report.malformed), (1, 0));
    assert!(report.sessions.is_empty());
    assert_eq!(
        report.unconcluded_discovery,
        vec!["frame 1: PADI from 00:0c:29:90:3a:8b".to_string()]
    );
    assert!(report.lines[0]
        .text
        .ends_with("PADI sid 0x0000 Service-Name=\"\" PPP-Max-Payload=1500 Host-Uniq=4B"));
}

#[test]
fn tcpdump_two_sessions_by_id() {
    // tshark: two LCP Echo-Requests from 00:04:23:a9:5d:8e, on sessions
    // 0x0017 (to 00:02:18:03:00:07) and 0x003b (to 00:02:18:03:00:08).
    let report = decode("tcpdump/pppoes.pcap");
    let ids: Vec<Option<u16>> = report.sessions.iter().map(|s| s.session_id).collect();
    assert_eq!(ids, vec![Some(0x0017), Some(0x003b)]);
    assert_eq!(report.malformed, 0);
}

#[test]
fn tcpdump_bcm_li_is_counted_not_sessioned() {
    // tshark: 71 frames of Ethernet/IPv4/UDP 49152 -> 49153 (a Broadcom
    // lawful-intercept shim tshark does not decode); PPPoE only inside it.
    let report = decode("tcpdump/bcm-li.pcap");
    assert_eq!((report.frames, report.malformed), (71, 0));
    assert!(report.sessions.is_empty());
    assert!(report.lines[0].text.contains("UDP 49152 > 49153"));
}

#[test]
fn tcpdump_fuzz_files_report_errors() {
    // Each holds one frame; tshark: 0x3030 / 0x7e80 / 0x7e08 "PPP Unknown",
    // a CCP request cut at 7 of 15 bytes, an IPCP Configure-Nak whose
    // options overrun, an MP (0x3d) fragment of 4 bytes.
    let cases: [(&str, u64, Option<&str>); 6] = [
        (
            // Link type 0x30000032 (FCS bits), snaplen 2, caplen 2, orig 262144.
            "tcpdump/heapoverflow-ppp_hdlc_if_print.pcap",
            1,
            Some("PPP protocol field 0x3030 is invalid (its last byte must be odd)"),
        ),
        (
            // HDLC address ff, control 0x60; snaplen 16778295, caplen 51.
            "tcpdump/ppp_error_hexdump.pcap",
            1,
            Some("PPP protocol field 0x7e80 is invalid (its last byte must be odd)"),
        ),
        (
            "tcpdump/ppp_ip_udp_dns.pcap",
            1,
            Some("PPP protocol field 0x7e08 is invalid (its last byte must be odd)"),
        ),
        (
            // EtherType 0x880b, caplen 23 of 125699.
            "tcpdump/ppp_ccp_config_deflate_option_asan.pcap",
            1,
            Some("CCP code 1 length 15 exceeds the 7 bytes captured"),
        ),
        (
            // Link type 9, header snaplen 942984, caplen 9014, orig 58454.
            "tcpdump/ppp-invalid-lengths.pcap",
            1,
            Some("IPCP Configure-Nak: option 230 at byte 8409 claims 230 bytes, 38 remain"),
        ),
        // Link type 0x30000009, snaplen 4, orig 262144: `ff 03 3d 30` is a
        // well-formed one-byte MP protocol field; MP is not decoded.
        ("tcpdump/mlppp-oobr.pcap", 0, None),
    ];
    for (file, malformed, error) in cases {
        let report = decode(file);
        assert_eq!((report.frames, report.malformed), (1, malformed), "{file}");
        let errors: Vec<&str> = report.errors.iter().map(|e| e.error.as_str()).collect();
        assert_eq!(errors, error.into_iter().collect::<Vec<_>>(), "{file}");
        assert!(report.errors.iter().all(|error| error.frame == 1));
    }
    // Raw PPP without direction: one session without id or addresses.
    let report = decode("tcpdump/ppp-invalid-lengths.pcap");
    let session = only_session(&report);
    assert_eq!(
        (session.session_id, session.ac_mac.as_deref()),
        (None, None)
    );
    let report = decode("tcpdump/ppp_ccp_config_deflate_option_asan.pcap");
    assert_eq!(only_session(&report).session_id, None);
}

/// zeek/pppoe.pcap rewritten as pcapng with pcap-file's writer: one
/// Ethernet interface with nanosecond timestamps, one Enhanced Packet Block
/// per frame.
fn zeek_as_pcapng() -> Vec<u8> {
    use pcap_file::pcap::PcapReader;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::DataLink;

    let pcap = read_capture("zeek/pppoe.pcap");
    let mut reader = PcapReader::new(&pcap[..]).unwrap();
    let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
    writer
        .write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            // pcap-file writes timestamps in nanoseconds; say so.
            options: vec![InterfaceDescriptionOption::IfTsResol(9)],
        })
        .unwrap();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.unwrap();
        writer
            .write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: packet.timestamp,
                original_len: packet.orig_len,
                data: packet.data,
                options: vec![],
            })
            .unwrap();
    }
    writer.into_inner()
}

#[test]
fn pcapng_gives_the_same_report_as_pcap() {
    let pcap = read_capture("zeek/pppoe.pcap");
    let pcapng = zeek_as_pcapng();
    let from_pcap = replay::decode(&pcap).unwrap();
    let from_pcapng = replay::decode(&pcapng).unwrap();
    assert_eq!(from_pcapng.sessions, from_pcap.sessions);
    assert_eq!(from_pcapng.lines, from_pcap.lines);
    // Cut inside the last block: the frames before it still decode.
    let cut = replay::decode(&pcapng[..pcapng.len() - 10]).unwrap();
    assert_eq!(cut.frames, 64);
    assert_eq!(cut.errors.len(), 1);
    assert_eq!(cut.errors[0].frame, 65);
}

#[test]
fn files_that_are_not_captures_are_capture_errors() {
    assert!(matches!(
        replay::decode(b""),
        Err(replay::CaptureError::Empty)
    ));
    assert!(matches!(
        replay::decode(b"[package]\nname = \"portdial\""),
        Err(replay::CaptureError::NotACapture { .. })
    ));
    let pcap = read_capture("zeek/pppoe.pcap");
    assert!(matches!(
        replay::decode(&pcap[..20]),
        Err(replay::CaptureError::TruncatedHeader {
            format: "pcap",
            len: 20
        })
    ));
}

#[test]
fn a_capture_cut_mid_record_reports_what_it_read() {
    // zeek/pppoe.pcap: 24-byte header, then 16-byte record headers and
    // 60-byte frames; cutting 30 bytes into the fourth record's data.
    let pcap = read_capture("zeek/pppoe.pcap");
    let cut = 24 + 3 * (16 + 60) + 16 + 30;
    let report = replay::decode(&pcap[..cut]).unwrap();
    assert_eq!((report.frames, report.malformed), (3, 0));
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].frame, 4);
    assert_eq!(
        report.errors[0].error,
        "capture file ends inside a record at byte 252: the record claims 60 bytes, 30 are present"
    );
}

#[test]
fn binary_text_output() {
    let path = capture_path("zeek/pppoe.pcap");
    let output = run(&["replay", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(i32::from(exit::OK)));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout
        .starts_with("    1    0.000000 cc:05:0e:88:00:00 > ff:ff:ff:ff:ff:ff PADI sid 0x0000"));
    assert!(stdout.contains("\n65 frames, 0 malformed, 1 sessions\n"));
    assert!(stdout.contains("session 0x0011  AC ca:01:0e:88:00:06  client cc:05:0e:88:00:00"));
    assert!(stdout.contains("  IPv4 local 10.0.2.16  peer 10.0.0.1  DNS -\n"));
    assert!(!stdout.contains("password=\"cisco\""));
}

#[test]
fn binary_json_output() {
    let path = capture_path("suricata-verify/pppoe_input.pcap");
    let output = run(&[
        "--log-level",
        "error",
        "replay",
        "--json",
        path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(i32::from(exit::OK)));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, vec!["errors", "frames", "malformed", "sessions"]);
    assert_eq!(json["frames"], 37);
    let second = &json["sessions"][1];
    assert_eq!(
        second,
        &serde_json::json!({
            "session_id": 2,
            "ac_mac": "ee:86:e2:f9:70:57",
            "client_mac": "00:00:cd:38:13:43",
            "ac_name": "test",
            "service_name": "test",
            "auth": "none",
            "auth_result": null,
            "mru": 1492,
            "local_ip": "192.168.2.45",
            "peer_ip": "192.168.1.1",
            "dns": [],
            "ipv6_interface_id": null,
            "terminated_by": null,
            "data_packets": 0,
            "data_bytes": 0
        })
    );
    let fuzz = capture_path("tcpdump/ppp_ccp_config_deflate_option_asan.pcap");
    let output = run(&["replay", "--json", fuzz.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(i32::from(exit::OK)));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["malformed"], 1);
    assert_eq!(
        json["errors"],
        serde_json::json!([{"frame": 1, "error": "CCP code 1 length 15 exceeds the 7 bytes captured"}])
    );
}

#[test]
fn binary_rejects_bad_input_with_exit_3() {
    let not_a_capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let empty = scratch_file("replay-empty.pcap", b"");
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay-does-not-exist.pcap");
    for (path, message) in [
        (not_a_capture, "not a capture file"),
        (empty, "the file is empty"),
        (missing, "cannot read"),
    ] {
        let output = run(&["replay", path.to_str().unwrap()]);
        assert_eq!(
            output.status.code(),
            Some(i32::from(exit::BAD_INPUT)),
            "{path:?}"
        );
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(message), "{stderr}");
    }
}

#[test]
fn binary_reads_a_truncated_capture_with_exit_0() {
    let pcap = read_capture("suricata-verify/pppoe_input.pcap");
    let path = scratch_file("replay-truncated.pcap", &pcap[..pcap.len() - 7]);
    let output = run(&["replay", "--json", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(i32::from(exit::OK)));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["frames"], 36);
    assert_eq!(json["malformed"], 0);
    assert_eq!(json["errors"][0]["frame"], 37);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("capture file ends inside a record"),
        "{stderr}"
    );
}

#[test]
fn binary_usage_errors_exit_2() {
    assert_eq!(run(&["replay"]).status.code(), Some(i32::from(exit::USAGE)));
    assert_eq!(
        run(&["frobnicate"]).status.code(),
        Some(i32::from(exit::USAGE))
    );
    let path = capture_path("tcpdump/pppoe.pcap");
    let output = run(&["--log-level", "=[", "replay", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(i32::from(exit::USAGE)));
}

/// Link types replay decodes, plus one it does not, with FCS bits.
fn link_type() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(1u32),
        Just(9),
        Just(50),
        Just(113),
        Just(204),
        Just(276),
        Just(0x3000_0032),
        Just(105),
    ]
}

/// A pcap file: header (little-endian, microseconds) and records whose
/// lengths may lie.
fn pcap_file(
    link_type: u32,
    snaplen: u32,
    records: &[(u32, u32, Vec<u8>)],
    tail: &[u8],
) -> Vec<u8> {
    let mut file = Vec::new();
    file.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    file.extend_from_slice(&2u16.to_le_bytes());
    file.extend_from_slice(&4u16.to_le_bytes());
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&snaplen.to_le_bytes());
    file.extend_from_slice(&link_type.to_le_bytes());
    for (seconds, original_len, data) in records {
        file.extend_from_slice(&seconds.to_le_bytes());
        file.extend_from_slice(&999_999u32.to_le_bytes());
        file.extend_from_slice(&(data.len() as u32).to_le_bytes());
        file.extend_from_slice(&original_len.to_le_bytes());
        file.extend_from_slice(data);
    }
    file.extend_from_slice(tail);
    file
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = replay::decode(&bytes);
        let mut pcapng = vec![0x0a, 0x0d, 0x0d, 0x0a];
        pcapng.extend_from_slice(&bytes);
        let _ = replay::decode(&pcapng);
    }

    #[test]
    fn pcap_files_with_arbitrary_records_never_panic(
        link_type in link_type(),
        snaplen in any::<u32>(),
        records in proptest::collection::vec(
            (any::<u32>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..160)),
            0..6,
        ),
        tail in proptest::collection::vec(any::<u8>(), 0..24),
    ) {
        let file = pcap_file(link_type, snaplen, &records, &tail);
        let report = replay::decode(&file).unwrap();
        prop_assert_eq!(report.frames, records.len() as u64);
        prop_assert!(report.malformed <= report.frames);
    }

    #[test]
    fn arbitrary_frames_never_panic(
        frames in proptest::collection::vec(
            (link_type(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..300)),
            1..12,
        ),
    ) {
        let mut decoder = Decoder::new();
        for (link_type, original_len, data) in &frames {
            decoder.push_frame(RawFrame {
                link_type: *link_type,
                timestamp_ns: Some(i128::from(*original_len)),
                original_len: *original_len,
                data,
            });
        }
        let report = decoder.finish();
        prop_assert_eq!(report.frames, frames.len() as u64);
    }

    #[test]
    fn mutated_real_captures_never_panic(
        file in prop::sample::select(vec![
            "zeek/pppoe.pcap",
            "suricata-verify/pppoe_input.pcap",
            "zeek/pppoe-over-qinq.pcap",
        ]),
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24),
    ) {
        let mut bytes = read_capture(file);
        for (index, value) in mutations {
            // Leave the file header alone so that frames get decoded.
            let at = 24 + index.index(bytes.len() - 24);
            bytes[at] = value;
        }
        let _ = replay::decode(&bytes);
    }

    #[test]
    fn mutated_pcapng_never_panics(
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = zeek_as_pcapng();
        for (index, value) in mutations {
            // Past the section header block (28 bytes) so that blocks get read.
            let at = 28 + index.index(bytes.len() - 28);
            bytes[at] = value;
        }
        let _ = replay::decode(&bytes);
        let _ = replay::decode(&bytes[..cut.index(bytes.len())]);
    }
}

#[test]
fn timestamps_are_relative_to_the_first_frame() {
    let mut decoder = Decoder::new();
    for seconds in [10u64, 12, 9] {
        decoder.push_frame(RawFrame {
            link_type: 9,
            timestamp_ns: Some(Duration::from_secs(seconds).as_nanos() as i128),
            original_len: 0,
            data: &[],
        });
    }
    let report = decoder.finish();
    let times: Vec<Option<i128>> = report.lines.iter().map(|line| line.relative_ns).collect();
    assert_eq!(
        times,
        vec![Some(0), Some(2_000_000_000), Some(-1_000_000_000)]
    );
}
