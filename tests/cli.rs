//! The documented exit codes and messages of user errors, without the lab.
//! Commands that open sockets run in a fresh network namespace (`unshare -n`).

use std::process::{Command, Output};

fn portdial(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portdial"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs portdial in a new, empty network namespace (root needed).
fn portdial_in_netns(args: &[&str]) -> Output {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root to create a network namespace (unshare -n)"
    );
    Command::new("unshare")
        .arg("-n")
        .arg(env!("CARGO_BIN_EXE_portdial"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn temp(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("portdial-cli-{}-{name}", std::process::id()))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn missing_interface_option_is_a_usage_error() {
    let output = portdial(&["dial", "--user", "u", "--password-file", "/dev/null"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--iface"), "{}", stderr(&output));
}

#[test]
fn unknown_flag_and_unknown_config_key_are_usage_errors() {
    assert_eq!(portdial(&["dial", "--no-such-flag"]).status.code(), Some(2));
    let config = temp("bad.toml");
    std::fs::write(
        &config,
        "iface = \"eth0\"\nuser = \"u\"\npasword = \"typo\"\n",
    )
    .unwrap();
    let output = portdial(&["dial", "--config", &config]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("pasword"),
        "the message names the key: {}",
        stderr(&output)
    );
    let _ = std::fs::remove_file(&config);
}

#[test]
fn a_missing_interface_has_its_exit_code() {
    let (control, state) = (temp("ctl1"), temp("state1"));
    let output = portdial_in_netns(&[
        "dial",
        "--iface",
        "eth9",
        "--user",
        "u",
        "--password-file",
        "/dev/null",
        "--control",
        &control,
        "--state-file",
        &state,
    ]);
    assert_eq!(output.status.code(), Some(8), "{}", stderr(&output));
    assert!(stderr(&output).contains("eth9"), "{}", stderr(&output));
}

#[test]
fn a_non_ethernet_interface_is_a_configuration_error() {
    let (control, state) = (temp("ctl2"), temp("state2"));
    let output = portdial_in_netns(&[
        "dial",
        "--iface",
        "lo",
        "--user",
        "u",
        "--password-file",
        "/dev/null",
        "--control",
        &control,
        "--state-file",
        &state,
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not an Ethernet interface"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn status_without_a_daemon_says_so() {
    let output = portdial(&["status", "--control", &temp("nothing.sock")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is `portdial dial` running"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn discover_on_a_missing_interface() {
    let output = portdial_in_netns(&["discover", "--iface", "eth9"]);
    assert_eq!(output.status.code(), Some(8), "{}", stderr(&output));
}

#[test]
fn a_config_syntax_error_does_not_print_the_password() {
    let config = temp("secret.toml");
    std::fs::write(&config, "iface = \"eth0\"\npassword = \"S3cr3t\\qpass\"\n").unwrap();
    let output = portdial(&["dial", "--config", &config]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("line 2"), "{text}");
    assert!(!text.contains("S3cr3t"), "the password leaked: {text}");
    let _ = std::fs::remove_file(&config);
}
