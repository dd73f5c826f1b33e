//! An application that cooperates with portdial's port manager: it keeps a TCP
//! connection to a server, subscribes to the daemon's events, and when the
//! manager releases its port (`port_released` with its pid and port, and
//! `reconnect: "advised"`) it connects again at once instead of waiting for
//! its own timeouts.
//!
//!   cargo run --example reconnect -- --control /run/portdial.sock --server 192.0.2.1:7
//!
//! It prints one line per event it acts on, so tests and people can follow it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

struct Args {
    control: PathBuf,
    server: SocketAddr,
}

fn args() -> Result<Args, String> {
    let mut control = PathBuf::from("/run/portdial.sock");
    let mut server = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--control" => control = args.next().ok_or("--control needs a path")?.into(),
            "--server" => {
                let text = args.next().ok_or("--server needs ADDRESS:PORT")?;
                server = Some(text.parse().map_err(|e| format!("--server {text}: {e}"))?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        control,
        server: server.ok_or("give --server ADDRESS:PORT")?,
    })
}

async fn connect(server: SocketAddr) -> TcpStream {
    loop {
        match TcpStream::connect(server).await {
            Ok(stream) => {
                let port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
                println!("connected local_port={port}");
                return stream;
            }
            Err(error) => {
                println!("connect_failed error={error:?}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("reconnect: {message}");
            std::process::exit(2);
        }
    };
    // Events arrive on their own task; the connection loop picks them up.
    let (events, mut released) = mpsc::unbounded_channel::<u16>();
    let control = args.control.clone();
    let pid = std::process::id();
    tokio::spawn(async move {
        let result = portdial::control::follow_events(&control, |line| {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                return;
            };
            let ours =
                event["event"] == "port_released" && event["pid"].as_u64() == Some(u64::from(pid));
            if ours && event["reconnect"] == "advised" {
                if let Some(port) = event["port"].as_u64() {
                    let _ = events.send(port as u16);
                }
            }
        })
        .await;
        if let Err(error) = result {
            eprintln!("reconnect: events: {error}");
        }
    });

    let mut stream = connect(args.server).await;
    let mut buf = [0u8; 1024];
    loop {
        let local_port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
        tokio::select! {
            Some(port) = released.recv() => {
                if port == local_port {
                    println!("released local_port={port}: reconnecting as advised");
                    stream = connect(args.server).await;
                }
            }
            read = stream.read(&mut buf) => match read {
                Ok(0) => {
                    println!("closed_by_peer local_port={local_port}");
                    stream = connect(args.server).await;
                }
                Ok(n) => println!("received bytes={n}"),
                Err(error) => {
                    // SOCK_DESTROY shows up here as ECONNABORTED, usually
                    // just before the event: either way, connect again.
                    println!("read_error local_port={local_port} error={:?}", error.kind());
                    stream = connect(args.server).await;
                }
            },
            _ = tokio::time::sleep(Duration::from_secs(30)) => {
                let _ = stream.write_all(b"ping\n").await;
            }
        }
    }
}
