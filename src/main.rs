//! The `portdial` command line: one subcommand per task, each returning one
//! of the documented [`portdial::exit`] codes.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use portdial::{exit, replay};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "portdial", version, about = "A userspace PPPoE dialer")]
struct Cli {
    /// What to log on stderr: a level (error, warn, info, debug, trace) or
    /// a tracing filter such as `portdial=debug`.
    #[arg(long, global = true, value_name = "FILTER", default_value = "warn")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a pcap or pcapng capture of PPPoE/PPP traffic and summarize
    /// its sessions.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The capture file (pcap or pcapng).
    file: PathBuf,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
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
    if let Err(message) = init_logging(&cli.log_level) {
        eprintln!(
            "portdial: invalid --log-level {:?}: {message}",
            cli.log_level
        );
        return ExitCode::from(exit::USAGE);
    }
    let code = match cli.command {
        Command::Replay(args) => run_replay(&args),
    };
    ExitCode::from(code)
}

fn init_logging(filter: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter).map_err(|error| error.to_string())?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .try_init()
        .map_err(|error| error.to_string())
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
    let written = if args.json {
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
