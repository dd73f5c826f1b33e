//! The `portdial` command line: one subcommand per task, each returning one
//! of the documented [`portdial::exit`] codes.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use portdial::config::{DialArgs, DialConfig};
use portdial::control::{self, Request, Response};
use portdial::packet_socket::{PacketSocket, PacketSocketError};
use portdial::ports::manager::{render as render_rows, PortRow};
use portdial::{daemon, discover, exit, replay};
use portdial_ppp::discovery::DiscoveryConfig;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "portdial", version, about = "A userspace PPPoE dialer")]
struct Cli {
    /// What to log on stderr: a level (error, warn, info, debug, trace) or
    /// a tracing filter such as `portdial=debug` [default: info for dial,
    /// warn otherwise].
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Dial a PPPoE session and run it: TUN interface, addresses, routes,
    /// DNS, re-dial on loss (what pppd + rp-pppoe do).
    Dial(Box<DialArgs>),
    /// Show the state of a running `portdial dial`.
    Status(StatusArgs),
    /// Send PADI and list every access concentrator that answers.
    Discover(DiscoverArgs),
    /// The session's ports: traffic, owner, class, verdict and why.
    Ports(JsonArgs),
    /// Scan and judge the session's ports now, releasing phantoms.
    Scan(JsonArgs),
    /// Release a port (destroy its socket, reset both ends), or every phantom.
    Release(ReleaseArgs),
    /// Tell the port manager the terminal sleeps (`on`) or woke up (`off`).
    Sleep(SleepArgs),
    /// Port manager events: released ports, scans, link loss, re-dials.
    Events(EventsArgs),
    /// Decode a pcap or pcapng capture of PPPoE/PPP traffic and summarize
    /// its sessions.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// The daemon's control socket.
    #[arg(long, value_name = "PATH", default_value = "/run/portdial.sock")]
    control: PathBuf,

    /// Print the status as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct JsonArgs {
    /// The daemon's control socket.
    #[arg(long, value_name = "PATH", default_value = "/run/portdial.sock")]
    control: PathBuf,

    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ReleaseArgs {
    /// The local port to release.
    #[arg(required_unless_present = "phantoms", conflicts_with = "phantoms")]
    port: Option<u16>,

    /// Only this protocol's socket on the port.
    #[arg(long, value_parser = ["tcp", "udp"])]
    proto: Option<String>,

    /// Release every port judged phantom now.
    #[arg(long)]
    phantoms: bool,

    /// The daemon's control socket.
    #[arg(long, value_name = "PATH", default_value = "/run/portdial.sock")]
    control: PathBuf,
}

#[derive(Debug, Args)]
struct SleepArgs {
    #[arg(value_parser = ["on", "off"])]
    state: String,

    /// The daemon's control socket.
    #[arg(long, value_name = "PATH", default_value = "/run/portdial.sock")]
    control: PathBuf,
}

#[derive(Debug, Args)]
struct EventsArgs {
    /// Keep printing events as they happen (otherwise: the last ones, then exit).
    #[arg(long)]
    follow: bool,

    /// One JSON object per line.
    #[arg(long)]
    json: bool,

    /// The daemon's control socket.
    #[arg(long, value_name = "PATH", default_value = "/run/portdial.sock")]
    control: PathBuf,
}

#[derive(Debug, Args)]
struct DiscoverArgs {
    /// The Ethernet interface to probe.
    #[arg(long)]
    iface: String,

    /// Ask for this Service-Name (default: any).
    #[arg(long, default_value = "")]
    service: String,

    /// Seconds to wait for offers after the first PADI (doubling per retry).
    #[arg(long, default_value_t = 3)]
    timeout: u64,

    /// PADIs to send when nobody answers.
    #[arg(long, default_value_t = 3)]
    attempts: u32,

    /// Print a JSON array of the offers.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The capture file (pcap or pcapng).
    file: PathBuf,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,

    /// Run the port manager's accounting and judge over the capture's data
    /// traffic (capture timestamps, no owners) and print the port table.
    #[arg(long)]
    ports: bool,

    /// With --ports: judge every port over this window (e.g. `30s`) instead of
    /// its class's.
    #[arg(long, requires = "ports", value_parser = humantime::parse_duration)]
    window: Option<std::time::Duration>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version also come this way, on stdout.
            let _ = error.print();
            let code = if error.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Dial(mut args) => {
            args.log_level = cli.log_level;
            run_dial(&args)
        }
        other => {
            let level = cli.log_level.as_deref().unwrap_or("warn");
            if let Err(message) = init_logging(level, false) {
                eprintln!("portdial: invalid --log-level {level:?}: {message}");
                return ExitCode::from(exit::USAGE);
            }
            match other {
                Command::Status(args) => run_status(&args),
                Command::Discover(args) => run_discover(&args),
                Command::Ports(args) => run_control(&args.control, &Request::Ports, |data| {
                    if args.json {
                        println!("{data}");
                    } else {
                        let rows: Vec<PortRow> =
                            serde_json::from_value(data.clone()).unwrap_or_default();
                        print!("{}", render_rows(&rows));
                    }
                }),
                Command::Scan(args) => run_control(&args.control, &Request::Scan, |data| {
                    if args.json {
                        println!("{data}");
                    } else {
                        let rows: Vec<PortRow> =
                            serde_json::from_value(data["ports"].clone()).unwrap_or_default();
                        print!("{}", render_rows(&rows));
                        print_events(&data["events"], false);
                    }
                }),
                Command::Release(args) => {
                    let request = Request::Release {
                        port: args.port,
                        proto: args.proto.clone(),
                        phantoms: args.phantoms,
                    };
                    run_control(&args.control, &request, |data| {
                        print_events(&data["events"], false)
                    })
                }
                Command::Sleep(args) => {
                    let request = Request::Sleep {
                        on: args.state == "on",
                    };
                    run_control(&args.control, &request, |data| {
                        println!("asleep: {}", data["asleep"])
                    })
                }
                Command::Events(args) if args.follow => run_follow(&args.control, args.json),
                Command::Events(args) => run_control(&args.control, &Request::History, |data| {
                    print_events(data, args.json)
                }),
                Command::Replay(args) => run_replay(&args),
                Command::Dial(_) => unreachable!("handled above"),
            }
        }
    };
    ExitCode::from(code)
}

fn init_logging(filter: &str, json: bool) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter).map_err(|error| error.to_string())?;
    // Colours only on a terminal: logs in files and journals stay plain text.
    let ansi = io::IsTerminal::is_terminal(&io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(ansi);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|error| error.to_string())
}

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    // One thread: the daemon is one task by design, and hooks run on the
    // blocking pool.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn run_dial(args: &DialArgs) -> u8 {
    let config = match DialConfig::resolve(args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("portdial: {}", error.message());
            return error.exit_code();
        }
    };
    if let Err(message) = init_logging(&config.log_level, config.json_logs) {
        eprintln!("portdial: invalid log level: {message}");
        return exit::USAGE;
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("portdial: cannot start the runtime: {error}");
            return exit::INTERNAL_ERROR;
        }
    };
    let outcome = runtime.block_on(daemon::run(config));
    if let Some(message) = &outcome.message {
        tracing::error!("{message}");
        eprintln!("portdial: {message}");
    }
    outcome.code
}

/// One request to the daemon; `show` prints a successful answer's data.
fn run_control(
    path: &std::path::Path,
    request: &Request,
    show: impl FnOnce(&serde_json::Value),
) -> u8 {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("portdial: cannot start the runtime: {error}");
            return exit::INTERNAL_ERROR;
        }
    };
    match runtime.block_on(control::request(path, request)) {
        Ok(Response::Data { data, .. }) => {
            show(&data);
            exit::OK
        }
        Ok(Response::Error { error, .. }) => {
            eprintln!("portdial: {error}");
            control_error_code(&error)
        }
        Ok(Response::Status { .. }) => {
            eprintln!("portdial: unexpected answer from the daemon");
            exit::INTERNAL_ERROR
        }
        Err(error) => {
            eprintln!("portdial: {error}");
            exit::INTERNAL_ERROR
        }
    }
}

fn run_follow(path: &std::path::Path, json: bool) -> u8 {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("portdial: cannot start the runtime: {error}");
            return exit::INTERNAL_ERROR;
        }
    };
    let result = runtime.block_on(control::follow_events(path, |line| {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or(serde_json::Value::Null);
        print_events(&serde_json::Value::Array(vec![event]), json);
        let _ = io::stdout().flush();
    }));
    match result {
        Ok(()) => exit::OK,
        Err(error) => {
            eprintln!("portdial: {error}");
            exit::INTERNAL_ERROR
        }
    }
}

/// Prints events, one per line: JSON, or `event key=value ...`.
fn print_events(events: &serde_json::Value, json: bool) {
    for event in events.as_array().into_iter().flatten() {
        if json {
            println!("{event}");
            continue;
        }
        let Some(fields) = event.as_object() else {
            continue;
        };
        let name = fields
            .get("event")
            .and_then(|e| e.as_str())
            .unwrap_or("event");
        let rest: Vec<String> = fields
            .iter()
            .filter(|(k, _)| k.as_str() != "event")
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s:?}"),
                other => format!("{k}={other}"),
            })
            .collect();
        println!("{name} {}", rest.join(" "));
    }
}

fn run_status(args: &StatusArgs) -> u8 {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("portdial: cannot start the runtime: {error}");
            return exit::INTERNAL_ERROR;
        }
    };
    match runtime.block_on(daemon::status(&args.control)) {
        Ok(status) if args.json => {
            println!("{}", serde_json::to_string(&status).unwrap_or_default());
            exit::OK
        }
        Ok(status) => {
            print!("{}", daemon::render_status(&status));
            exit::OK
        }
        Err(message) => {
            eprintln!("portdial: {message}");
            control_error_code(&message)
        }
    }
}

/// The daemon refusing a peer is "not permitted", not an internal error.
fn control_error_code(message: &str) -> u8 {
    if message.to_ascii_lowercase().contains("permission denied") {
        exit::NOT_PERMITTED
    } else {
        exit::INTERNAL_ERROR
    }
}

fn run_discover(args: &DiscoverArgs) -> u8 {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("portdial: cannot start the runtime: {error}");
            return exit::INTERNAL_ERROR;
        }
    };
    runtime.block_on(async {
        let socket = match PacketSocket::open(&args.iface) {
            Ok(socket) => socket,
            Err(PacketSocketError::InterfaceMissing(name)) => {
                eprintln!("portdial: interface {name} does not exist");
                return exit::INTERFACE_MISSING;
            }
            Err(PacketSocketError::NotPermitted) => {
                eprintln!("portdial: a packet socket needs CAP_NET_RAW (run as root)");
                return exit::NOT_PERMITTED;
            }
            Err(error) => {
                eprintln!("portdial: {}: {error}", args.iface);
                return exit::INTERNAL_ERROR;
            }
        };
        let config = DiscoveryConfig {
            service_name: args.service.clone(),
            timeout: std::time::Duration::from_secs(args.timeout.max(1)),
            attempts: args.attempts.max(1),
            ..DiscoveryConfig::default()
        };
        let offers = match discover::discover(&socket, config).await {
            Ok(offers) => offers,
            Err(error) => {
                eprintln!("portdial: {}: {error}", args.iface);
                return exit::INTERNAL_ERROR;
            }
        };
        if args.json {
            println!("{}", serde_json::to_string(&offers).unwrap_or_default());
        } else if offers.is_empty() {
            eprintln!(
                "portdial: no access concentrator answered on {}",
                args.iface
            );
        } else {
            print!("{}", discover::render(&offers));
        }
        if offers.is_empty() {
            exit::NO_ACCESS_CONCENTRATOR
        } else {
            exit::OK
        }
    })
}

fn run_replay(args: &ReplayArgs) -> u8 {
    let path = args.file.display();
    let capture = match std::fs::read(&args.file) {
        Ok(capture) => capture,
        Err(error) => {
            eprintln!("portdial: cannot read {path}: {error}");
            return exit::BAD_INPUT;
        }
    };
    let report = match replay::decode(&capture) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("portdial: {path}: {error}");
            return exit::BAD_INPUT;
        }
    };
    tracing::info!(
        frames = report.frames,
        malformed = report.malformed,
        sessions = report.sessions.len(),
        "decoded {path}"
    );
    let mut out = BufWriter::new(io::stdout().lock());
    let written = if args.ports {
        match replay::ports::ports(&capture, &report, args.window) {
            Ok(rows) if args.json => serde_json::to_writer(&mut out, &rows)
                .map_err(io::Error::from)
                .and_then(|()| writeln!(out)),
            Ok(rows) => out.write_all(render_rows(&rows).as_bytes()),
            Err(error) => {
                eprintln!("portdial: {path}: {error}");
                return exit::BAD_INPUT;
            }
        }
    } else if args.json {
        serde_json::to_writer(&mut out, &report)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        replay::write_text(&report, &mut out)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        // `portdial replay f | head` is not a failure.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(error) => {
            eprintln!("portdial: cannot write the report: {error}");
            exit::INTERNAL_ERROR
        }
    }
}
