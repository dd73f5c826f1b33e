//! The text output of `portdial replay`: one line per frame, like a
//! focused tshark, then one block per session.

use std::io::{self, Write};

use super::{Report, SessionSummary};

const NANOS_PER_MICRO: i128 = 1_000;
const MICROS_PER_SECOND: i128 = 1_000_000;

/// Writes the report as text.
pub fn write_text(report: &Report, out: &mut impl Write) -> io::Result<()> {
    for line in &report.lines {
        let time = line
            .relative_ns
            .map_or_else(|| "-".to_string(), relative_time);
        writeln!(out, "{:>5} {time:>11} {}", line.number, line.text)?;
        for error in &line.errors {
            writeln!(out, "{:>17} error: {error}", "")?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} frames, {} malformed, {} sessions",
        report.frames,
        report.malformed,
        report.sessions.len()
    )?;
    for session in &report.sessions {
        writeln!(out)?;
        write_session(session, out)?;
    }
    if !report.unconcluded_discovery.is_empty() {
        writeln!(out)?;
        writeln!(out, "discovery without a PADS:")?;
        for discovery in &report.unconcluded_discovery {
            writeln!(out, "  {discovery}")?;
        }
    }
    for error in &report.file_errors {
        writeln!(out)?;
        writeln!(
            out,
            "file error (before frame {}): {}",
            error.frame, error.error
        )?;
    }
    Ok(())
}

/// Seconds with microseconds, as tshark's relative time column.
fn relative_time(nanos: i128) -> String {
    let micros = nanos / NANOS_PER_MICRO;
    let sign = if micros < 0 { "-" } else { "" };
    let micros = micros.abs();
    format!(
        "{sign}{}.{:06}",
        micros / MICROS_PER_SECOND,
        micros % MICROS_PER_SECOND
    )
}

fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

fn write_session(session: &SessionSummary, out: &mut impl Write) -> io::Result<()> {
    let id = session
        .session_id
        .map_or_else(|| "(no PPPoE)".to_string(), |id| format!("0x{id:04x}"));
    writeln!(
        out,
        "session {id}  AC {}  client {}",
        or_dash(session.ac_mac.as_deref()),
        or_dash(session.client_mac.as_deref())
    )?;
    let quoted = |value: &Option<String>| {
        value
            .as_ref()
            .map_or_else(|| "-".to_string(), |text| format!("{text:?}"))
    };
    writeln!(
        out,
        "  AC-Name {}  Service-Name {}",
        quoted(&session.ac_name),
        quoted(&session.service_name)
    )?;
    writeln!(
        out,
        "  auth {} ({})  MRU {}",
        or_dash(session.auth.as_deref()),
        or_dash(session.auth_result.as_deref()),
        session
            .mru
            .map_or_else(|| "-".to_string(), |mru| mru.to_string())
    )?;
    let dns = if session.dns.is_empty() {
        "-".to_string()
    } else {
        session.dns.join(", ")
    };
    writeln!(
        out,
        "  IPv4 local {}  peer {}  DNS {dns}",
        or_dash(session.local_ip.as_deref()),
        or_dash(session.peer_ip.as_deref())
    )?;
    writeln!(
        out,
        "  IPv6 interface id {}",
        or_dash(session.ipv6_interface_id.as_deref())
    )?;
    writeln!(
        out,
        "  data {} packets, {} bytes  terminated by {}",
        session.data_packets,
        session.data_bytes,
        or_dash(session.terminated_by.as_deref())
    )?;
    for note in &session.notes {
        writeln!(out, "  note: {note}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_print_like_tshark() {
        assert_eq!(relative_time(0), "0.000000");
        assert_eq!(relative_time(2_053_000_000), "2.053000");
        assert_eq!(relative_time(-1_500), "-0.000001");
    }
}
