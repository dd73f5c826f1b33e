//! `portdial dial` settings: command-line flags over a TOML file over defaults.
//!
//! Every flag of `portdial dial` (see [`DialArgs`]) has a key of the same name
//! in snake_case in the file given with `--config` (`--lcp-echo-interval 30`
//! is `lcp_echo_interval = 30`); a flag given on the command line wins over
//! the file, the file over the defaults. Unknown keys are an error, so a typo
//! is not silently ignored. Relative paths in the file are taken from the
//! file's own directory. No file is read unless `--config` names one.
//!
//! ```toml
//! iface = "eth0"
//! user = "alice@isp"
//! password_file = "/etc/portdial/password"
//! mru = 1500            # RFC 4638: asks the AC for PPP-Max-Payload
//! persist = true
//! usepeerdns = true
//! ```
//!
//! [`DialConfig::resolve`] checks everything it can before anything is
//! dialed, and its [`ConfigError`] maps to the "bad configuration" exit code.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use portdial_ppp::auth::{AuthConfig, Credentials, Secret};
use portdial_ppp::discovery::DiscoveryConfig;
use portdial_ppp::fsm::FsmConfig;
use portdial_ppp::ipcp::IpcpConfig;
use portdial_ppp::lcp::{LcpConfig, PPPOE_MRU};
use portdial_ppp::session::{EchoConfig, SessionConfig};
use portdial_protocol::ethernet::MacAddr;
use serde::Deserialize;

use crate::exit;
use crate::secrets::{self, SecretWord};

/// The TUN interface's default name. Linux allows 15 bytes; `pdial0` is
/// short, and unlike `ppp0` it cannot collide with a kernel PPP unit of pppd.
pub const DEFAULT_TUN_NAME: &str = "pdial0";
/// Where the control socket listens by default.
pub const DEFAULT_CONTROL: &str = "/run/portdial.sock";
/// Where the last session is remembered by default.
pub const DEFAULT_STATE_FILE: &str = "/run/portdial.state";
/// Where the peer's DNS servers go by default: pppd's file, not the
/// system's /etc/resolv.conf.
pub const DEFAULT_RESOLV_CONF: &str = crate::resolv::DEFAULT_PATH;

const DEFAULT_MTU: u16 = PPPOE_MRU;
const DEFAULT_MRU: u16 = PPPOE_MRU;
const MTU_RANGE: std::ops::RangeInclusive<u16> = 64..=1500;
const MRU_RANGE: std::ops::RangeInclusive<u16> = 128..=1500;
/// RFC 879's minimum IPv4 MSS; rp-pppoe refuses to clamp below it too.
const MIN_MSS: u16 = 536;
/// IPv4 and TCP headers without options.
const TCP_IP_HEADERS: u16 = 40;
const DEFAULT_HOLDOFF: Duration = Duration::from_secs(5);
const DEFAULT_HOLDOFF_MAX: Duration = Duration::from_secs(300);
/// pppd's default.
const DEFAULT_MAXFAIL: u32 = 10;
const PADI_TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=60;
const PADI_ATTEMPTS_RANGE: std::ops::RangeInclusive<u32> = 1..=100;
/// Linux's IFNAMSIZ less the terminating NUL.
const MAX_IFNAME_LEN: usize = 15;

/// Which authentication protocols we agree to when the AC asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthChoice {
    /// PAP only (the password is sent in clear inside the PPPoE session).
    Pap,
    /// CHAP with MD5 only.
    Chap,
    /// Whichever the AC asks for.
    #[default]
    Any,
}

/// TCP MSS clamping on the link (`--mss-clamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MssClamp {
    Off,
    /// The negotiated link MTU less 40 (the default).
    Auto,
    /// This MSS, or less if the negotiated MTU is smaller.
    Fixed(u16),
}

/// Dial a PPPoE session and keep the link up.
///
/// Every option can also be set in the TOML file named by --config, under its
/// name in snake_case (--lcp-echo-interval is lcp_echo_interval); options
/// given on the command line win over the file.
//
// All options are optional at the clap level so that the file can supply
// them; `DialConfig::resolve` says what is missing.
#[derive(Debug, Clone, Default, Args)]
pub struct DialArgs {
    /// Read settings from this TOML file (keys are the option names in
    /// snake_case); options given on the command line win.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// The Ethernet interface the PPPoE server is reached on (required).
    #[arg(long, value_name = "NAME")]
    pub iface: Option<String>,

    /// The user name to authenticate with (required).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// The password. Other users can read it in `ps`: prefer --password-file.
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,

    /// Read the password from the first line of this file (keep it mode 600).
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,

    /// Look the password up for --user in a pppd pap-secrets file (used when
    /// no password is given; with --auth pap or any).
    #[arg(long, value_name = "PATH")]
    pub pap_secrets: Option<PathBuf>,

    /// Look the password up for --user in a pppd chap-secrets file (used when
    /// no password is given; with --auth chap or any).
    #[arg(long, value_name = "PATH")]
    pub chap_secrets: Option<PathBuf>,

    /// The PPPoE Service-Name to ask for [default: any service].
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,

    /// Only accept offers from the access concentrator with this AC-Name
    /// [default: the first to answer].
    #[arg(long, value_name = "NAME")]
    pub ac_name: Option<String>,

    /// Authentication protocols to accept [default: any].
    #[arg(long, value_enum)]
    pub auth: Option<AuthChoice>,

    /// The largest IP packet to send, 64 to 1500 [default: 1492]; the
    /// peer's MRU can lower it. Above 1492 needs RFC 4638 support from the AC.
    #[arg(long, value_name = "BYTES")]
    pub mtu: Option<u16>,

    /// The largest packet to receive, 128 to 1500 [default: 1492]. Above 1492
    /// the PADI asks for PPP-Max-Payload (RFC 4638); the Ethernet interface
    /// then needs an MTU of at least MRU + 8.
    #[arg(long, value_name = "BYTES")]
    pub mru: Option<u16>,

    /// Send an LCP Echo-Request every SECS seconds; 0 turns keepalives off
    /// [default: 20].
    #[arg(long, value_name = "SECS")]
    pub lcp_echo_interval: Option<u32>,

    /// Declare the link dead after N unanswered Echo-Requests; 0 never does
    /// [default: 3].
    #[arg(long, value_name = "N")]
    pub lcp_echo_failure: Option<u32>,

    /// Send an Echo-Request only when nothing arrived since the last one, so
    /// a busy link is not declared dead for late replies.
    #[arg(long)]
    pub lcp_echo_adaptive: bool,

    /// Re-dial after the link goes down instead of exiting.
    #[arg(long)]
    pub persist: bool,

    /// With --persist, wait SECS seconds before re-dialing; the wait doubles
    /// after each consecutive failure up to --holdoff-max [default: 5].
    #[arg(long, value_name = "SECS")]
    pub holdoff: Option<u64>,

    /// The longest wait between re-dials [default: 300].
    #[arg(long, value_name = "SECS")]
    pub holdoff_max: Option<u64>,

    /// Give up after N consecutive failed connection attempts; 0 means never
    /// (as pppd's maxfail) [default: 10].
    #[arg(long, value_name = "N")]
    pub maxfail: Option<u32>,

    /// Add a default route through the link while it is up.
    #[arg(long)]
    pub default_route: bool,

    /// Ask the peer for DNS servers and write them to --resolv-conf.
    #[arg(long)]
    pub usepeerdns: bool,

    /// Where --usepeerdns writes the peer's servers; the file is removed (or
    /// the previous one restored) when the link goes down
    /// [default: /etc/ppp/resolv.conf, like pppd; never /etc/resolv.conf
    /// unless named here].
    #[arg(long, value_name = "PATH")]
    pub resolv_conf: Option<PathBuf>,

    /// Clamp the MSS of TCP SYNs through the link to N bytes, 536 to MTU - 40;
    /// 0 turns it off [default: the negotiated MTU - 40].
    #[arg(long, value_name = "N")]
    pub mss_clamp: Option<u16>,

    /// Negotiate IPv6CP (the default).
    #[arg(long, conflicts_with = "no_ipv6")]
    pub ipv6: bool,

    /// Do not negotiate IPv6CP.
    #[arg(long)]
    pub no_ipv6: bool,

    /// TUN segmentation offloads (the default): the kernel hands over
    /// TCP/UDP super-packets that portdial cuts into session frames, and
    /// received segments are merged before they reach the TUN; a kernel
    /// that refuses them gets a plain TUN.
    #[arg(long, conflicts_with = "no_tun_offload")]
    pub tun_offload: bool,

    /// One packet per TUN read and write, no offloads.
    #[arg(long)]
    pub no_tun_offload: bool,

    /// The name of the TUN interface carrying the link, at most 15 bytes
    /// [default: pdial0].
    #[arg(long, value_name = "NAME")]
    pub tun_name: Option<String>,

    /// The control socket `portdial status` and friends talk to
    /// [default: /run/portdial.sock].
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,

    /// Let members of this group use every command of the control socket,
    /// including those that change state (scan, release, sleep); it is
    /// root-only otherwise.
    #[arg(long, value_name = "NAME")]
    pub control_group: Option<String>,

    /// Let members of this group use the read-only commands of the control
    /// socket (status, ports, events).
    #[arg(long, value_name = "NAME")]
    pub control_read_group: Option<String>,

    /// After opening its sockets, run as this user (with only CAP_NET_ADMIN
    /// and CAP_NET_RAW, which the daemon always keeps and nothing else).
    #[arg(long, value_name = "USER")]
    pub run_as: Option<String>,

    /// Let the port manager name the process owning each socket: keeps
    /// CAP_SYS_PTRACE to read other processes' /proc/PID/fd. Without it a
    /// socket's owner is known by its uid only, and classes match by uid and
    /// remote port.
    #[arg(long)]
    pub name_owners: bool,

    /// Write every frame sent and received to this pcap file (PAP passwords
    /// masked unless --capture-secrets).
    #[arg(long, value_name = "FILE.pcap")]
    pub capture: Option<PathBuf>,

    /// Keep PAP passwords in the --capture file.
    #[arg(long)]
    pub capture_secrets: bool,

    /// Run this script when IPv4 comes up, with pppd's ip-up arguments and
    /// environment.
    #[arg(long, value_name = "PATH")]
    pub ip_up: Option<PathBuf>,

    /// Run this script when IPv4 goes down, with pppd's ip-down arguments and
    /// environment.
    #[arg(long, value_name = "PATH")]
    pub ip_down: Option<PathBuf>,

    /// Remember the session here, so a restart can end a stale one with a
    /// PADT [default: /run/portdial.state].
    #[arg(long, value_name = "PATH")]
    pub state_file: Option<PathBuf>,

    /// The global `--log-level`, copied in by the command line before
    /// resolving (one flag for every subcommand) [default for dial: info].
    #[arg(skip)]
    pub log_level: Option<String>,

    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub json_logs: bool,

    /// Wait SECS seconds for an answer to the first PADI (and PADR); the wait
    /// doubles with each retry [default: 5].
    #[arg(long, value_name = "SECS")]
    pub padi_timeout: Option<u64>,

    /// Send at most N PADIs (and N PADRs) before giving up [default: 3].
    #[arg(long, value_name = "N")]
    pub padi_attempts: Option<u32>,

    /// Seed for every random choice (Host-Uniq, magic numbers, ...), as up to
    /// 64 hex digits, for reproducible test runs.
    #[arg(long, value_name = "HEX", hide = true)]
    pub seed: Option<String>,

    /// Turn the port manager off (no per-port accounting, no scans).
    #[arg(long)]
    pub no_port_manager: bool,

    /// Scan the session's ports every SECS seconds (0 = only after dial-up,
    /// on occupancy and on request) [default: 60].
    #[arg(long, value_name = "SECS")]
    pub scan_interval: Option<u64>,

    /// Scan when more than PCT percent of the local port range is in use
    /// (0 = off) [default: 80].
    #[arg(long, value_name = "PCT")]
    pub occupancy_threshold: Option<f64>,

    /// `release` phantom ports (default) or only `observe` and report them;
    /// overrides every class's mode.
    #[arg(long, value_name = "MODE")]
    pub port_mode: Option<crate::ports::classes::Mode>,

    /// The judging window of ports no class claims, e.g. `5m` [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub port_window: Option<Duration>,

    /// Run PATH for every released port, with the event in its environment
    /// (PORTDIAL_EVENT, PORTDIAL_PROTO, PORTDIAL_PORT, PORTDIAL_PID,
    /// PORTDIAL_APP, PORTDIAL_REASON, PORTDIAL_RECONNECT).
    #[arg(long, value_name = "PATH")]
    pub on_release: Option<PathBuf>,
}

/// The config file: the same settings as [`DialArgs`], in snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    iface: Option<String>,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    pap_secrets: Option<PathBuf>,
    chap_secrets: Option<PathBuf>,
    service: Option<String>,
    ac_name: Option<String>,
    auth: Option<AuthChoice>,
    mtu: Option<u16>,
    mru: Option<u16>,
    lcp_echo_interval: Option<u32>,
    lcp_echo_failure: Option<u32>,
    lcp_echo_adaptive: Option<bool>,
    persist: Option<bool>,
    holdoff: Option<u64>,
    holdoff_max: Option<u64>,
    maxfail: Option<u32>,
    default_route: Option<bool>,
    usepeerdns: Option<bool>,
    resolv_conf: Option<PathBuf>,
    mss_clamp: Option<u16>,
    ipv6: Option<bool>,
    tun_offload: Option<bool>,
    tun_name: Option<String>,
    control: Option<PathBuf>,
    control_group: Option<String>,
    control_read_group: Option<String>,
    run_as: Option<String>,
    capture: Option<PathBuf>,
    capture_secrets: Option<bool>,
    name_owners: Option<bool>,
    ip_up: Option<PathBuf>,
    ip_down: Option<PathBuf>,
    state_file: Option<PathBuf>,
    log_level: Option<String>,
    json_logs: Option<bool>,
    padi_timeout: Option<u64>,
    padi_attempts: Option<u32>,
    seed: Option<String>,
    ports: Option<PortsFile>,
}

/// `[ports]` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortsFile {
    enabled: Option<bool>,
    scan_on_up: Option<bool>,
    /// Seconds; 0 = no periodic scan.
    scan_interval: Option<u64>,
    /// Percent; 0 = off.
    occupancy_threshold: Option<f64>,
    max_entries: Option<usize>,
    mode: Option<crate::ports::classes::Mode>,
    #[serde(default, with = "humantime_serde")]
    default_window: Option<Duration>,
    on_release: Option<PathBuf>,
    /// `[[ports.class]]` tables, tried in order before the built-in classes.
    #[serde(default)]
    class: Vec<crate::ports::classes::AppClass>,
}

impl FileConfig {
    fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = fs::read_to_string(path).map_err(|error| {
            ConfigError::new(format!(
                "cannot read config file {}: {error}",
                path.display()
            ))
        })?;
        // toml's own message quotes the offending line, which may hold the
        // password: report the position and the message only.
        let mut file: FileConfig = toml::from_str(&text).map_err(|error| {
            let position = error.span().map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {column}: ")
            });
            ConfigError::new(format!(
                "config file {}: {}{}",
                path.display(),
                position.unwrap_or_default(),
                error.message().trim_end()
            ))
        })?;
        if let Some(base) = path.parent() {
            file.make_paths_absolute(base);
        }
        Ok(file)
    }

    fn make_paths_absolute(&mut self, base: &Path) {
        let paths = [
            &mut self.password_file,
            &mut self.pap_secrets,
            &mut self.chap_secrets,
            &mut self.resolv_conf,
            &mut self.control,
            &mut self.capture,
            &mut self.ip_up,
            &mut self.ip_down,
            &mut self.state_file,
        ];
        let on_release = self
            .ports
            .as_mut()
            .and_then(|ports| ports.on_release.as_mut());
        for path in paths.into_iter().flatten().chain(on_release) {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }
}

/// A configuration the dialer cannot run with. The message says what and
/// where; the process exits with [`exit::USAGE`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    fn new(message: impl Into<String>) -> ConfigError {
        ConfigError {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The process exit code for a bad configuration.
    pub fn exit_code(&self) -> u8 {
        exit::USAGE
    }
}

/// Every `portdial dial` setting, resolved and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DialConfig {
    pub iface: String,
    pub credentials: Credentials,
    pub service: String,
    pub ac_name: Option<String>,
    pub auth: AuthChoice,
    /// The cap on the TUN's MTU (the negotiated one may be lower).
    pub mtu: u16,
    pub mru: u16,
    pub echo: EchoConfig,
    pub persist: bool,
    pub holdoff: Duration,
    pub holdoff_max: Duration,
    /// Consecutive failed attempts before giving up; 0 = never.
    pub maxfail: u32,
    pub default_route: bool,
    pub usepeerdns: bool,
    pub resolv_conf: PathBuf,
    pub mss_clamp: MssClamp,
    pub ipv6: bool,
    /// Open the TUN with segmentation offloads (IFF_VNET_HDR).
    pub tun_offload: bool,
    pub tun_name: String,
    pub control: PathBuf,
    /// May use every control command.
    pub control_group: Option<String>,
    /// May use the read-only control commands.
    pub control_read_group: Option<String>,
    /// The user the daemon becomes once its sockets are open.
    pub run_as: Option<RunAs>,
    pub capture: Option<PathBuf>,
    /// Keep PAP passwords in the capture.
    pub capture_secrets: bool,
    /// Keep CAP_SYS_PTRACE so the port manager can name sockets' processes.
    pub name_owners: bool,
    pub ip_up: Option<PathBuf>,
    pub ip_down: Option<PathBuf>,
    pub state_file: PathBuf,
    pub log_level: String,
    pub json_logs: bool,
    pub padi_timeout: Duration,
    pub padi_attempts: u32,
    /// `None`: the caller seeds from the operating system's entropy.
    pub seed: Option<[u8; 32]>,
    /// The port manager's settings; `None` when it is turned off.
    pub ports: Option<crate::ports::manager::ManagerConfig>,
    /// Things to tell the operator, for the caller to log once logging is up.
    pub warnings: Vec<String>,
}

impl DialConfig {
    /// Merges the flags over the config file (if `--config` names one) over
    /// the defaults, and checks the result.
    pub fn resolve(args: &DialArgs) -> Result<DialConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        resolve_layers(args, &file, args.config.as_deref())
    }

    /// The sans-IO session's configuration for a dial from `our_mac`.
    pub fn session_config(&self, our_mac: MacAddr) -> SessionConfig {
        // RFC 4638: above 1492 bytes either way, ask the AC for a larger
        // payload; the session raises the link limit only if it confirms.
        let link_wanted = self.mtu.max(self.mru);
        let discovery = DiscoveryConfig {
            service_name: self.service.clone(),
            ac_name: self.ac_name.clone(),
            ppp_max_payload: (link_wanted > PPPOE_MRU).then_some(link_wanted),
            timeout: self.padi_timeout,
            attempts: self.padi_attempts,
            ..DiscoveryConfig::default()
        };
        let lcp = LcpConfig {
            mru: self.mru,
            link_max: PPPOE_MRU,
            allow_pap: matches!(self.auth, AuthChoice::Pap | AuthChoice::Any),
            allow_chap: matches!(self.auth, AuthChoice::Chap | AuthChoice::Any),
            ..LcpConfig::default()
        };
        SessionConfig {
            our_mac,
            discovery,
            fsm: FsmConfig::default(),
            lcp,
            credentials: self.credentials.clone(),
            auth: AuthConfig::default(),
            ipcp: IpcpConfig {
                local: None,
                request_dns: self.usepeerdns,
            },
            ipv6: self.ipv6,
            echo: self.echo,
        }
    }

    /// How long to wait before re-dial number `consecutive_failures` (1 for
    /// the first failure): `holdoff`, doubled per further failure, at most
    /// `holdoff_max`.
    pub fn holdoff_after(&self, consecutive_failures: u32) -> Duration {
        let doublings = consecutive_failures.saturating_sub(1).min(31);
        self.holdoff
            .checked_mul(1u32 << doublings)
            .unwrap_or(Duration::MAX)
            .min(self.holdoff_max)
    }

    /// Whether `consecutive_failures` reaches `maxfail` (never when it is 0).
    pub fn maxfail_reached(&self, consecutive_failures: u32) -> bool {
        self.maxfail != 0 && consecutive_failures >= self.maxfail
    }

    /// The TUN's MTU for a negotiated one: never above `--mtu`.
    pub fn tun_mtu(&self, negotiated: u16) -> u16 {
        negotiated.min(self.mtu)
    }

    /// The MSS to clamp TCP SYNs to on a link with this MTU, if any: never
    /// more than fits in the MTU.
    pub fn mss_for(&self, link_mtu: u16) -> Option<u16> {
        let fits = link_mtu.saturating_sub(TCP_IP_HEADERS);
        let mss = match self.mss_clamp {
            MssClamp::Off => return None,
            MssClamp::Auto => fits,
            MssClamp::Fixed(mss) => mss.min(fits),
        };
        (mss > 0).then_some(mss)
    }
}

fn resolve_layers(
    args: &DialArgs,
    file: &FileConfig,
    config_path: Option<&Path>,
) -> Result<DialConfig, ConfigError> {
    let mut warnings = Vec::new();

    let iface = args
        .iface
        .clone()
        .or_else(|| file.iface.clone())
        .ok_or_else(|| {
            ConfigError::new("no interface to dial on: give --iface NAME (e.g. --iface eth0)")
        })?;
    check_ifname("iface", &iface)?;

    let auth = args.auth.or(file.auth).unwrap_or_default();
    let pap_secrets = args
        .pap_secrets
        .clone()
        .or_else(|| file.pap_secrets.clone());
    let chap_secrets = args
        .chap_secrets
        .clone()
        .or_else(|| file.chap_secrets.clone());
    let user = args
        .user
        .clone()
        .or_else(|| file.user.clone())
        .ok_or_else(|| {
            ConfigError::new("no user name: give --user NAME (the name your ISP gave you)")
        })?;
    let password = resolve_password(
        args,
        file,
        config_path,
        &user,
        auth,
        pap_secrets.as_deref(),
        chap_secrets.as_deref(),
        &mut warnings,
    )?;

    let mtu = args.mtu.or(file.mtu).unwrap_or(DEFAULT_MTU);
    if !MTU_RANGE.contains(&mtu) {
        return Err(ConfigError::new(format!(
            "mtu {mtu} is out of range: it must be {} to {}",
            MTU_RANGE.start(),
            MTU_RANGE.end()
        )));
    }
    let mru = args.mru.or(file.mru).unwrap_or(DEFAULT_MRU);
    if !MRU_RANGE.contains(&mru) {
        return Err(ConfigError::new(format!(
            "mru {mru} is out of range: it must be {} to {}",
            MRU_RANGE.start(),
            MRU_RANGE.end()
        )));
    }
    let link_wanted = mtu.max(mru);
    if link_wanted > PPPOE_MRU {
        warnings.push(format!(
            "mtu/mru {link_wanted} is above {PPPOE_MRU}: it takes effect only if the access \
             concentrator confirms PPP-Max-Payload (RFC 4638), and {iface} needs an MTU of \
             at least {}",
            u32::from(link_wanted) + 8
        ));
    }

    let echo_interval = args.lcp_echo_interval.or(file.lcp_echo_interval);
    let default_echo = EchoConfig::default();
    let echo = EchoConfig {
        interval: match echo_interval {
            Some(0) => None,
            Some(secs) => Some(Duration::from_secs(u64::from(secs))),
            None => default_echo.interval,
        },
        failure: args
            .lcp_echo_failure
            .or(file.lcp_echo_failure)
            .unwrap_or(default_echo.failure),
        adaptive: flag(args.lcp_echo_adaptive, file.lcp_echo_adaptive),
    };

    let holdoff = args
        .holdoff
        .or(file.holdoff)
        .map_or(DEFAULT_HOLDOFF, Duration::from_secs);
    let holdoff_max = args
        .holdoff_max
        .or(file.holdoff_max)
        .map_or(DEFAULT_HOLDOFF_MAX.max(holdoff), Duration::from_secs);
    if holdoff_max < holdoff {
        return Err(ConfigError::new(format!(
            "holdoff-max ({} s) is shorter than holdoff ({} s)",
            holdoff_max.as_secs(),
            holdoff.as_secs()
        )));
    }

    let mss_clamp = match args.mss_clamp.or(file.mss_clamp) {
        Some(0) => MssClamp::Off,
        Some(mss) => {
            let max = mtu.saturating_sub(TCP_IP_HEADERS);
            if !(MIN_MSS..=max).contains(&mss) {
                return Err(ConfigError::new(format!(
                    "mss-clamp {mss} is out of range: it must be 0 (off) or {MIN_MSS} to {max} \
                     (the MTU {mtu} less 40)"
                )));
            }
            MssClamp::Fixed(mss)
        }
        None => MssClamp::Auto,
    };

    if args.ipv6 && args.no_ipv6 {
        return Err(ConfigError::new(
            "--ipv6 and --no-ipv6 contradict each other: give one",
        ));
    }
    let ipv6 = if args.ipv6 {
        true
    } else if args.no_ipv6 {
        false
    } else {
        file.ipv6.unwrap_or(true)
    };

    if args.tun_offload && args.no_tun_offload {
        return Err(ConfigError::new(
            "--tun-offload and --no-tun-offload contradict each other: give one",
        ));
    }
    let tun_offload = if args.tun_offload {
        true
    } else if args.no_tun_offload {
        false
    } else {
        file.tun_offload.unwrap_or(true)
    };

    let tun_name = args
        .tun_name
        .clone()
        .or_else(|| file.tun_name.clone())
        .unwrap_or_else(|| DEFAULT_TUN_NAME.to_owned());
    check_ifname("tun-name", &tun_name)?;
    if tun_name == iface {
        return Err(ConfigError::new(format!(
            "tun-name {tun_name} is the Ethernet interface itself: choose another name"
        )));
    }

    let usepeerdns = flag(args.usepeerdns, file.usepeerdns);
    let resolv_conf = args
        .resolv_conf
        .clone()
        .or_else(|| file.resolv_conf.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RESOLV_CONF));
    if usepeerdns && resolv_conf == Path::new("/etc/resolv.conf") {
        warnings.push(
            "resolv-conf is /etc/resolv.conf: the system's resolver configuration will be \
             replaced while the link is up (pppd writes /etc/ppp/resolv.conf instead)"
                .to_owned(),
        );
    }

    let control_group = args
        .control_group
        .clone()
        .or_else(|| file.control_group.clone());
    if let Some(group) = &control_group {
        group_id("control-group", group)?;
    }
    let control_read_group = args
        .control_read_group
        .clone()
        .or_else(|| file.control_read_group.clone());
    if let Some(group) = &control_read_group {
        group_id("control-read-group", group)?;
    }
    let run_as = match args.run_as.as_ref().or(file.run_as.as_ref()) {
        Some(name) => Some(RunAs::lookup(name)?),
        None => None,
    };

    let ip_up = args.ip_up.clone().or_else(|| file.ip_up.clone());
    let ip_down = args.ip_down.clone().or_else(|| file.ip_down.clone());
    for (name, script) in [("ip-up", &ip_up), ("ip-down", &ip_down)] {
        if let Some(script) = script {
            check_script(name, script)?;
        }
    }

    let log_level = args
        .log_level
        .clone()
        .or_else(|| file.log_level.clone())
        .unwrap_or_else(|| "info".to_owned());
    if let Err(error) = tracing_subscriber::EnvFilter::try_new(&log_level) {
        return Err(ConfigError::new(format!(
            "log-level {log_level:?} is not a level or tracing filter: {error}"
        )));
    }

    let padi_timeout = args.padi_timeout.or(file.padi_timeout).unwrap_or(5);
    if !PADI_TIMEOUT_RANGE.contains(&padi_timeout) {
        return Err(ConfigError::new(format!(
            "padi-timeout {padi_timeout} is out of range: it must be {} to {} seconds",
            PADI_TIMEOUT_RANGE.start(),
            PADI_TIMEOUT_RANGE.end()
        )));
    }
    let padi_attempts = args.padi_attempts.or(file.padi_attempts).unwrap_or(3);
    if !PADI_ATTEMPTS_RANGE.contains(&padi_attempts) {
        return Err(ConfigError::new(format!(
            "padi-attempts {padi_attempts} is out of range: it must be {} to {}",
            PADI_ATTEMPTS_RANGE.start(),
            PADI_ATTEMPTS_RANGE.end()
        )));
    }

    let seed = match args.seed.as_deref().or(file.seed.as_deref()) {
        Some(hex) => Some(parse_seed(hex)?),
        None => None,
    };

    Ok(DialConfig {
        iface,
        credentials: Credentials { user, password },
        service: args
            .service
            .clone()
            .or_else(|| file.service.clone())
            .unwrap_or_default(),
        ac_name: args.ac_name.clone().or_else(|| file.ac_name.clone()),
        auth,
        mtu,
        mru,
        echo,
        persist: flag(args.persist, file.persist),
        holdoff,
        holdoff_max,
        maxfail: args.maxfail.or(file.maxfail).unwrap_or(DEFAULT_MAXFAIL),
        default_route: flag(args.default_route, file.default_route),
        usepeerdns,
        resolv_conf,
        mss_clamp,
        ipv6,
        tun_offload,
        tun_name,
        control: args
            .control
            .clone()
            .or_else(|| file.control.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL)),
        control_group,
        control_read_group,
        run_as,
        capture: args.capture.clone().or_else(|| file.capture.clone()),
        capture_secrets: flag(args.capture_secrets, file.capture_secrets),
        name_owners: flag(args.name_owners, file.name_owners),
        ip_up,
        ip_down,
        state_file: args
            .state_file
            .clone()
            .or_else(|| file.state_file.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_FILE)),
        log_level,
        json_logs: flag(args.json_logs, file.json_logs),
        padi_timeout: Duration::from_secs(padi_timeout),
        padi_attempts,
        seed,
        ports: resolve_ports(args, file.ports.as_ref())?,
        warnings,
    })
}

/// The port manager's settings: flags over the `[ports]` table over defaults.
fn resolve_ports(
    args: &DialArgs,
    file: Option<&PortsFile>,
) -> Result<Option<crate::ports::manager::ManagerConfig>, ConfigError> {
    use crate::ports::classes::Classes;
    use crate::ports::manager::ManagerConfig;
    let empty = PortsFile::default();
    let file = file.unwrap_or(&empty);
    if args.no_port_manager || file.enabled == Some(false) {
        return Ok(None);
    }
    let defaults = ManagerConfig::default();
    let scan_interval = match args.scan_interval.or(file.scan_interval) {
        Some(0) => None,
        Some(seconds) => Some(Duration::from_secs(seconds)),
        None => defaults.scan_interval,
    };
    let occupancy_threshold = match args.occupancy_threshold.or(file.occupancy_threshold) {
        Some(pct) if !(0.0..=100.0).contains(&pct) => {
            return Err(ConfigError::new(format!(
                "occupancy-threshold {pct} is not a percentage (0 to 100)"
            )))
        }
        Some(0.0) => None,
        Some(pct) => Some(pct),
        None => defaults.occupancy_threshold,
    };
    let mut names = std::collections::HashSet::new();
    for class in &file.class {
        if class.window.is_zero() {
            return Err(ConfigError::new(format!(
                "port class {:?}: window must be longer than 0",
                class.name
            )));
        }
        if !names.insert(class.name.as_str()) {
            return Err(ConfigError::new(format!(
                "port class {:?} is defined twice",
                class.name
            )));
        }
    }
    let mut classes = Classes::new(
        file.class.clone(),
        args.port_window.or(file.default_window),
        file.mode,
    );
    if let Some(mode) = args.port_mode {
        classes = classes.with_mode(mode);
    }
    let on_release = args.on_release.clone().or_else(|| file.on_release.clone());
    Ok(Some(ManagerConfig {
        scan_on_up: file.scan_on_up.unwrap_or(defaults.scan_on_up),
        scan_interval,
        occupancy_threshold,
        occupancy_check: defaults.occupancy_check,
        max_entries: file
            .max_entries
            .unwrap_or(defaults.max_entries)
            .clamp(16, 65_536 * 2),
        classes,
        on_release,
    }))
}

/// A boolean flag given on the command line turns the setting on; otherwise
/// the file decides.
fn flag(on_command_line: bool, in_file: Option<bool>) -> bool {
    on_command_line || in_file.unwrap_or(false)
}

/// The password, from (first found) the command line, the config file, or
/// the secrets files; within one layer, an inline password and a password
/// file are a conflict.
#[allow(clippy::too_many_arguments)]
fn resolve_password(
    args: &DialArgs,
    file: &FileConfig,
    config_path: Option<&Path>,
    user: &str,
    auth: AuthChoice,
    pap_secrets: Option<&Path>,
    chap_secrets: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Result<Secret, ConfigError> {
    let config_name = config_path
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| "the config file".to_owned());
    let layers = [
        (
            args.password.as_ref(),
            args.password_file.as_ref(),
            true,
            "the command line".to_owned(),
        ),
        (
            file.password.as_ref(),
            file.password_file.as_ref(),
            false,
            config_name,
        ),
    ];
    for (password, password_file, on_command_line, layer) in layers {
        match (password, password_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(format!(
                    "{layer} gives both a password and a password file: give one"
                )))
            }
            (Some(password), None) => {
                if on_command_line {
                    warnings.push(
                        "the password was given on the command line, where other users can \
                         read it (ps, /proc): use --password-file instead"
                            .to_owned(),
                    );
                } else if let Some(config_path) = config_path {
                    warn_if_exposed(
                        config_path,
                        "the config file holding the password",
                        warnings,
                    );
                }
                return Ok(Secret::new(password.clone()));
            }
            (None, Some(path)) => return read_password_file(path, warnings),
            (None, None) => {}
        }
    }

    let mut candidates = Vec::new();
    if matches!(auth, AuthChoice::Pap | AuthChoice::Any) {
        candidates.extend(pap_secrets);
    }
    if matches!(auth, AuthChoice::Chap | AuthChoice::Any) {
        candidates.extend(chap_secrets);
    }
    if candidates.is_empty() {
        let hint = match (auth, pap_secrets, chap_secrets) {
            (AuthChoice::Chap, Some(_), _) => " (--pap-secrets is not used with --auth chap)",
            (AuthChoice::Pap, _, Some(_)) => " (--chap-secrets is not used with --auth pap)",
            _ => "",
        };
        return Err(ConfigError::new(format!(
            "no password for user {user}: give --password-file PATH, or a pppd secrets file \
             with --pap-secrets / --chap-secrets{hint}"
        )));
    }
    let mut found: Vec<Secret> = Vec::new();
    for path in &candidates {
        if let Some(secret) = secret_from_file(path, user, warnings)? {
            found.push(secret);
        }
    }
    match found.as_slice() {
        [] => {
            let files: Vec<String> = candidates
                .iter()
                .map(|path| path.display().to_string())
                .collect();
            Err(ConfigError::new(format!(
                "no secret for user {user} in {}",
                files.join(" or ")
            )))
        }
        [first, rest @ ..] => {
            if rest.iter().any(|other| other != first) {
                return Err(ConfigError::new(format!(
                    "pap-secrets and chap-secrets hold different secrets for {user}: choose \
                     one with --auth pap or --auth chap"
                )));
            }
            Ok(first.clone())
        }
    }
}

/// The first line of a password file, without its line ending.
fn read_password_file(path: &Path, warnings: &mut Vec<String>) -> Result<Secret, ConfigError> {
    let text = fs::read(path).map_err(|error| {
        ConfigError::new(format!(
            "cannot read password file {}: {error}",
            path.display()
        ))
    })?;
    let line = text.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let password = String::from_utf8(line.to_vec()).map_err(|_| {
        ConfigError::new(format!(
            "password file {}: the first line is not UTF-8 text",
            path.display()
        ))
    })?;
    if password.is_empty() {
        warnings.push(format!(
            "password file {}: the first line is empty, so the password is empty",
            path.display()
        ));
    }
    warn_if_exposed(path, "password file", warnings);
    Ok(Secret::new(password))
}

/// Looks `user` up in a pppd secrets file, reading an `@/path` secret.
fn secret_from_file(
    path: &Path,
    user: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Secret>, ConfigError> {
    let text = secrets::read_text(path).map_err(|error| ConfigError::new(error.to_string()))?;
    let Some(entry) = secrets::find_entry(&text, user, None) else {
        return Ok(None);
    };
    warn_if_exposed(path, "secrets file", warnings);
    match entry.secret {
        SecretWord::Inline(secret) => Ok(Some(secret)),
        SecretWord::File(indirect) => {
            let secret = secrets::read_indirect(&indirect).map_err(|error| {
                ConfigError::new(format!("{} for {user}: {error}", path.display()))
            })?;
            warn_if_exposed(&indirect, "secret file", warnings);
            Ok(Some(secret))
        }
    }
}

/// Warns when a file holding a secret can be read by group or others.
/// The gid of a configured group; `key` names the option in the message.
pub fn group_id(key: &str, name: &str) -> Result<u32, ConfigError> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(ConfigError::new(format!("{key} {name}: no such group"))),
        Err(error) => Err(ConfigError::new(format!(
            "{key} {name}: cannot look it up: {error}"
        ))),
    }
}

/// The user `--run-as` names, looked up once at start (the daemon may not
/// be able to read /etc/passwd later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    /// The user's primary group; the daemon keeps no supplementary groups.
    pub gid: u32,
}

impl RunAs {
    fn lookup(name: &str) -> Result<RunAs, ConfigError> {
        match nix::unistd::User::from_name(name) {
            Ok(Some(user)) => Ok(RunAs {
                name: name.to_owned(),
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            }),
            Ok(None) => Err(ConfigError::new(format!("run-as {name}: no such user"))),
            Err(error) => Err(ConfigError::new(format!(
                "run-as {name}: cannot look it up: {error}"
            ))),
        }
    }
}

fn warn_if_exposed(path: &Path, what: &str, warnings: &mut Vec<String>) {
    if let Ok(metadata) = fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warnings.push(format!(
                "{what} {} is readable by group or others (mode {mode:03o}): chmod 600 it",
                path.display()
            ));
        }
    }
}

/// Linux's rules for interface names (`dev_valid_name`).
fn check_ifname(option: &str, name: &str) -> Result<(), ConfigError> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_IFNAME_LEN {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is not a valid name")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("contains '/', ':' or white space")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ConfigError::new(format!(
            "{option} {name:?} {problem}: not a valid interface name"
        ))),
        None => Ok(()),
    }
}

/// A hook script must exist and be executable, or it would fail only when
/// the link comes up.
fn check_script(option: &str, path: &Path) -> Result<(), ConfigError> {
    let metadata = fs::metadata(path).map_err(|error| {
        ConfigError::new(format!("{option} script {}: {error}", path.display()))
    })?;
    if !metadata.is_file() {
        return Err(ConfigError::new(format!(
            "{option} script {}: not a regular file",
            path.display()
        )));
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err(ConfigError::new(format!(
            "{option} script {}: not executable (chmod +x it)",
            path.display()
        )));
    }
    Ok(())
}

/// Up to 32 bytes of hex (an optional `0x`, an even number of digits); the
/// rest of the seed is zero.
fn parse_seed(text: &str) -> Result<[u8; 32], ConfigError> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let bad = || {
        ConfigError::new(format!(
            "seed {text:?}: expected up to 64 hex digits, an even number of them"
        ))
    };
    if digits.is_empty() || digits.len() > 64 || digits.len() % 2 == 1 {
        return Err(bad());
    }
    let mut seed = [0u8; 32];
    for (byte, pair) in seed.iter_mut().zip(digits.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        dial: DialArgs,
    }

    fn parse(flags: &[&str]) -> DialArgs {
        Cli::try_parse_from(std::iter::once("dial").chain(flags.iter().copied()))
            .unwrap()
            .dial
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("portdial-config-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_private(path: &Path, contents: &str) {
        fs::write(path, contents).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// The minimal valid command line, with a password file in `dir`.
    fn minimal(dir: &Path) -> Vec<String> {
        let password = dir.join("password");
        write_private(&password, "s3cret\n");
        ["--iface", "eth0", "--user", "alice", "--password-file"]
            .iter()
            .map(|flag| flag.to_string())
            .chain(std::iter::once(password.display().to_string()))
            .collect()
    }

    fn resolve_flags(flags: &[String]) -> Result<DialConfig, ConfigError> {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        DialConfig::resolve(&parse(&flags))
    }

    fn error_of(flags: &[String]) -> String {
        resolve_flags(flags).unwrap_err().message().to_owned()
    }

    fn with(mut flags: Vec<String>, more: &[&str]) -> Vec<String> {
        flags.extend(more.iter().map(|flag| flag.to_string()));
        flags
    }

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        for flag in [
            "--lcp-echo-adaptive",
            "--holdoff-max",
            "--capture-secrets",
            "--mss-clamp",
        ] {
            assert!(help.contains(flag), "{flag} is not in --help");
        }
        assert!(!help.contains("--seed"), "--seed must be hidden");
    }

    #[test]
    fn defaults() {
        let dir = temp_dir("defaults");
        let config = resolve_flags(&minimal(&dir)).unwrap();
        assert_eq!(config.iface, "eth0");
        assert_eq!(config.credentials.user, "alice");
        assert_eq!(config.credentials.password.expose(), "s3cret");
        assert_eq!(config.auth, AuthChoice::Any);
        assert_eq!((config.mtu, config.mru), (1492, 1492));
        assert_eq!(config.echo, EchoConfig::default());
        assert!(!config.persist);
        assert_eq!(config.holdoff, Duration::from_secs(5));
        assert_eq!(config.holdoff_max, Duration::from_secs(300));
        assert_eq!(config.maxfail, 10);
        assert_eq!(config.resolv_conf, Path::new("/etc/ppp/resolv.conf"));
        assert_eq!(config.mss_clamp, MssClamp::Auto);
        assert_eq!(config.mss_for(1492), Some(1452));
        assert!(config.ipv6);
        assert!(config.tun_offload, "offloads are on by default");
        assert_eq!(config.tun_name, "pdial0");
        assert_eq!(config.control, Path::new("/run/portdial.sock"));
        assert_eq!(config.state_file, Path::new("/run/portdial.state"));
        assert_eq!(config.log_level, "info");
        assert_eq!(config.padi_timeout, Duration::from_secs(5));
        assert_eq!(config.padi_attempts, 3);
        assert_eq!(config.seed, None);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn file_supplies_and_flags_win() {
        let dir = temp_dir("layers");
        write_private(&dir.join("pw"), "from-file\r\nsecond line\n");
        let config_path = dir.join("portdial.toml");
        fs::write(
            &config_path,
            r#"
iface = "eth1"
user = "bob"
password_file = "pw"          # relative to the config file
auth = "chap"
mru = 1500
lcp_echo_interval = 0
persist = true
holdoff = 2
usepeerdns = true
ipv6 = false
tun_offload = false
tun_name = "wan0"
state_file = "state.json"
seed = "0102"
"#,
        )
        .unwrap();
        let config_flag = config_path.display().to_string();
        let config = resolve_flags(&[
            "--config".into(),
            config_flag.clone(),
            "--iface".into(),
            "eth2".into(),
            "--holdoff".into(),
            "7".into(),
        ])
        .unwrap();
        assert_eq!(config.iface, "eth2");
        assert_eq!(config.credentials.user, "bob");
        assert_eq!(config.credentials.password.expose(), "from-file");
        assert_eq!(config.auth, AuthChoice::Chap);
        assert_eq!(config.mru, 1500);
        assert_eq!(config.echo.interval, None);
        assert!(config.persist && config.usepeerdns);
        assert_eq!(config.holdoff, Duration::from_secs(7));
        assert!(!config.ipv6);
        assert!(!config.tun_offload);
        assert_eq!(config.tun_name, "wan0");
        assert_eq!(config.state_file, dir.join("state.json"));
        let mut seed = [0u8; 32];
        seed[..2].copy_from_slice(&[1, 2]);
        assert_eq!(config.seed, Some(seed));
        // Only the RFC 4638 note; the file is mode 644 but holds no password.
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(config.warnings[0].contains("RFC 4638"));

        // --ipv6 on the command line beats the file's ipv6 = false.
        let config = resolve_flags(&[
            "--config".into(),
            config_flag,
            "--ipv6".into(),
            "--tun-offload".into(),
        ])
        .unwrap();
        assert!(config.ipv6 && config.tun_offload);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_key_is_an_error_naming_key_and_line() {
        let dir = temp_dir("typo");
        let config_path = dir.join("portdial.toml");
        fs::write(&config_path, "iface = \"eth0\"\n\nmtuu = 1400\n").unwrap();
        let error = error_of(&["--config".into(), config_path.display().to_string()]);
        assert!(error.contains("mtuu"), "{error}");
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("portdial.toml"), "{error}");

        fs::write(&config_path, "mtu = \"big\"\n").unwrap();
        let error = error_of(&["--config".into(), config_path.display().to_string()]);
        assert!(error.contains("line 1"), "{error}");

        let missing = dir.join("missing.toml").display().to_string();
        let error = error_of(&["--config".into(), missing]);
        assert!(error.contains("cannot read config file") && error.contains("missing.toml"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_settings_are_explained() {
        let dir = temp_dir("missing");
        assert!(error_of(&[]).contains("--iface"));
        assert!(error_of(&["--iface".into(), "eth0".into()]).contains("--user"));
        let error = error_of(&[
            "--iface".into(),
            "eth0".into(),
            "--user".into(),
            "alice".into(),
        ]);
        assert!(error.contains("no password for user alice"), "{error}");
        let error = error_of(&with(minimal(&dir), &["--password", "x"]));
        assert!(
            error.contains("both a password and a password file"),
            "{error}"
        );
        let missing = dir.join("nope").display().to_string();
        let error = error_of(&[
            "--iface".into(),
            "eth0".into(),
            "--user".into(),
            "alice".into(),
            "--password-file".into(),
            missing,
        ]);
        assert!(error.contains("cannot read password file") && error.contains("nope"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn run_as_and_control_groups_are_looked_up_at_start() {
        let dir = temp_dir("run-as");
        let base = minimal(&dir);
        let config = resolve_flags(&with(
            base.clone(),
            &["--run-as", "nobody", "--control-read-group", "nogroup"],
        ))
        .unwrap();
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        assert_eq!(
            config.run_as,
            Some(RunAs {
                name: "nobody".into(),
                uid: nobody.uid.as_raw(),
                gid: nobody.gid.as_raw(),
            })
        );
        assert_eq!(config.control_read_group.as_deref(), Some("nogroup"));
        for (flags, expected) in [
            (
                &["--run-as", "no-such-user-here"][..],
                "run-as no-such-user-here: no such user",
            ),
            (
                &["--control-read-group", "no-such-group"],
                "control-read-group no-such-group: no such group",
            ),
            (
                &["--control-group", "no-such-group"],
                "control-group no-such-group: no such group",
            ),
        ] {
            let error = error_of(&with(base.clone(), flags));
            assert!(error.contains(expected), "{flags:?}: {error}");
        }
    }

    #[test]
    fn range_and_conflict_errors() {
        let dir = temp_dir("ranges");
        let base = minimal(&dir);
        for (flags, expected) in [
            (&["--mtu", "63"][..], "mtu 63 is out of range"),
            (&["--mtu", "1501"], "mtu 1501 is out of range"),
            (&["--mru", "127"], "mru 127 is out of range"),
            (&["--mru", "1501"], "mru 1501 is out of range"),
            (&["--mss-clamp", "100"], "mss-clamp 100"),
            (&["--mss-clamp", "1453"], "mss-clamp 1453"),
            (&["--holdoff", "60", "--holdoff-max", "30"], "holdoff-max"),
            (&["--tun-name", "a-name-longer-than-15"], "longer than 15"),
            (&["--tun-name", "eth0"], "the Ethernet interface itself"),
            (&["--padi-attempts", "0"], "padi-attempts 0"),
            (&["--padi-timeout", "0"], "padi-timeout 0"),
            (&["--seed", "xyz"], "seed"),
            (&["--seed", "123"], "seed"),
        ] {
            let error = error_of(&with(base.clone(), flags));
            assert!(error.contains(expected), "{flags:?}: {error}");
        }
        // clap refuses --ipv6 with --no-ipv6; resolve does too when built by hand.
        let both = with(base.clone(), &["--ipv6", "--no-ipv6"]);
        let flags = both.iter().map(String::as_str);
        assert!(Cli::try_parse_from(std::iter::once("dial").chain(flags)).is_err());
        let mut args = parse(&base.iter().map(String::as_str).collect::<Vec<_>>());
        args.ipv6 = true;
        args.no_ipv6 = true;
        let error = DialConfig::resolve(&args).unwrap_err();
        assert!(error.message().contains("--no-ipv6"));
        assert_eq!(error.exit_code(), exit::USAGE);
        // 0 turns the clamp off.
        let config = resolve_flags(&with(base, &["--mss-clamp", "0"])).unwrap();
        assert_eq!(config.mss_clamp, MssClamp::Off);
        assert_eq!(config.mss_for(1492), None);
        let config = resolve_flags(&with(minimal(&dir), &["--mss-clamp", "1400"])).unwrap();
        assert_eq!(config.mss_clamp, MssClamp::Fixed(1400));
        assert_eq!(config.mss_for(1492), Some(1400));
        assert_eq!(config.mss_for(1400), Some(1360));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn password_warnings() {
        let dir = temp_dir("warnings");
        let config = resolve_flags(&[
            "--iface".into(),
            "eth0".into(),
            "--user".into(),
            "alice".into(),
            "--password".into(),
            "hunter2".into(),
        ])
        .unwrap();
        assert_eq!(config.credentials.password.expose(), "hunter2");
        assert!(config
            .warnings
            .iter()
            .any(|w| w.contains("--password-file")));

        let password = dir.join("password");
        fs::write(&password, "open\n").unwrap();
        fs::set_permissions(&password, fs::Permissions::from_mode(0o644)).unwrap();
        let config = resolve_flags(&[
            "--iface".into(),
            "eth0".into(),
            "--user".into(),
            "alice".into(),
            "--password-file".into(),
            password.display().to_string(),
        ])
        .unwrap();
        assert_eq!(config.warnings.len(), 1);
        assert!(
            config.warnings[0].contains("mode 644"),
            "{:?}",
            config.warnings
        );

        // A password in a config file that others can read.
        let config_path = dir.join("portdial.toml");
        fs::write(
            &config_path,
            "iface = \"eth0\"\nuser = \"alice\"\npassword = \"pw\"\n",
        )
        .unwrap();
        fs::set_permissions(&config_path, fs::Permissions::from_mode(0o604)).unwrap();
        let config =
            resolve_flags(&["--config".into(), config_path.display().to_string()]).unwrap();
        assert_eq!(config.credentials.password.expose(), "pw");
        assert_eq!(config.warnings.len(), 1);
        assert!(config.warnings[0].contains("config file holding the password"));
        assert!(
            config.warnings[0].contains("mode 604"),
            "{:?}",
            config.warnings
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn secrets_files_supply_the_password() {
        let dir = temp_dir("secrets");
        let pap = dir.join("pap-secrets");
        let chap = dir.join("chap-secrets");
        write_private(&pap, "# client server secret\n\"alice\" * \"pap pw\"\n");
        write_private(&chap, "alice * \"chap pw\"\n");
        let base = |auth: &str| -> Vec<String> {
            [
                "--iface",
                "eth0",
                "--user",
                "alice",
                "--auth",
                auth,
                "--pap-secrets",
                pap.to_str().unwrap(),
                "--chap-secrets",
                chap.to_str().unwrap(),
            ]
            .iter()
            .map(|flag| flag.to_string())
            .collect()
        };
        let pw = |auth: &str| {
            resolve_flags(&base(auth)).map(|config| config.credentials.password.expose().to_owned())
        };
        assert_eq!(pw("pap").unwrap(), "pap pw");
        assert_eq!(pw("chap").unwrap(), "chap pw");
        let error = pw("any").unwrap_err();
        assert!(error.message().contains("different secrets"), "{error}");

        write_private(&chap, "alice * \"pap pw\"\n");
        assert_eq!(pw("any").unwrap(), "pap pw");

        // An @/path secret, in a file others can read.
        let indirect = dir.join("alice.pw");
        fs::write(&indirect, "indirect\n").unwrap();
        fs::set_permissions(&indirect, fs::Permissions::from_mode(0o640)).unwrap();
        write_private(&chap, &format!("alice * @{}\n", indirect.display()));
        let config = resolve_flags(&base("chap")).unwrap();
        assert_eq!(config.credentials.password.expose(), "indirect");
        assert!(config.warnings.iter().any(|w| w.contains("alice.pw")));

        let mut other_user = base("pap");
        other_user[3] = "bob".into();
        let error = resolve_flags(&other_user).unwrap_err();
        assert!(
            error.message().contains("no secret for user bob"),
            "{error}"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn hook_scripts_must_be_executable() {
        let dir = temp_dir("hooks");
        let script = dir.join("ip-up");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
        let flags = with(minimal(&dir), &["--ip-up", script.to_str().unwrap()]);
        assert!(error_of(&flags).contains("not executable"));
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(resolve_flags(&flags).unwrap().ip_up, Some(script));
        let flags = with(minimal(&dir), &["--ip-down", "/nonexistent/ip-down"]);
        assert!(error_of(&flags).contains("ip-down script /nonexistent/ip-down"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn session_config_follows_the_settings() {
        let dir = temp_dir("session");
        let mac: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        let config = resolve_flags(&minimal(&dir)).unwrap();
        let session = config.session_config(mac);
        assert_eq!(session.our_mac, mac);
        assert_eq!(session.discovery.ppp_max_payload, None);
        assert_eq!(session.lcp.mru, 1492);
        assert_eq!(session.lcp.link_max, 1492);
        assert!(session.lcp.allow_pap && session.lcp.allow_chap);
        assert_eq!(session.credentials.user, "alice");
        assert!(!session.ipcp.request_dns);
        assert!(session.ipv6);

        let config = resolve_flags(&with(
            minimal(&dir),
            &[
                "--mru",
                "1500",
                "--auth",
                "pap",
                "--usepeerdns",
                "--no-ipv6",
                "--lcp-echo-interval",
                "10",
                "--lcp-echo-failure",
                "0",
                "--lcp-echo-adaptive",
                "--service",
                "internet",
                "--ac-name",
                "BRAS",
                "--padi-timeout",
                "2",
                "--padi-attempts",
                "5",
            ],
        ))
        .unwrap();
        let session = config.session_config(mac);
        assert_eq!(session.discovery.ppp_max_payload, Some(1500));
        assert_eq!(session.discovery.service_name, "internet");
        assert_eq!(session.discovery.ac_name.as_deref(), Some("BRAS"));
        assert_eq!(session.discovery.timeout, Duration::from_secs(2));
        assert_eq!(session.discovery.attempts, 5);
        // The session raises link_max only when the AC confirms RFC 4638.
        assert_eq!((session.lcp.mru, session.lcp.link_max), (1500, 1492));
        assert!(session.lcp.allow_pap && !session.lcp.allow_chap);
        assert!(session.ipcp.request_dns);
        assert!(!session.ipv6);
        assert_eq!(
            session.echo,
            EchoConfig {
                interval: Some(Duration::from_secs(10)),
                failure: 0,
                adaptive: true,
            }
        );
        // A large MTU alone also asks for PPP-Max-Payload.
        let config = resolve_flags(&with(minimal(&dir), &["--mtu", "1500"])).unwrap();
        assert_eq!(
            config.session_config(mac).discovery.ppp_max_payload,
            Some(1500)
        );
        assert_eq!(config.tun_mtu(1492), 1492);
        // The MSS follows the MTU actually negotiated.
        assert_eq!(config.mss_for(config.tun_mtu(1492)), Some(1452));
        assert_eq!(config.mss_for(config.tun_mtu(1500)), Some(1460));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn holdoff_backs_off_and_maxfail_follows_pppd() {
        let dir = temp_dir("holdoff");
        let config = resolve_flags(&with(
            minimal(&dir),
            &["--holdoff", "3", "--holdoff-max", "20", "--maxfail", "4"],
        ))
        .unwrap();
        let waits: Vec<u64> = (1..=6)
            .map(|failures| config.holdoff_after(failures).as_secs())
            .collect();
        assert_eq!(waits, [3, 6, 12, 20, 20, 20]);
        assert_eq!(config.holdoff_after(u32::MAX), Duration::from_secs(20));
        assert!(!config.maxfail_reached(3));
        assert!(config.maxfail_reached(4));
        let unlimited = DialConfig {
            maxfail: 0,
            ..config
        };
        assert!(!unlimited.maxfail_reached(u32::MAX));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn seeds_parse() {
        assert_eq!(parse_seed("0xff").unwrap()[0], 0xff);
        let full = "ab".repeat(32);
        assert_eq!(parse_seed(&full).unwrap(), [0xab; 32]);
        assert!(parse_seed(&"ab".repeat(33)).is_err());
        assert!(parse_seed("").is_err());
        assert!(parse_seed("é1").is_err());
    }
}
