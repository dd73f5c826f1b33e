//! Process exit codes of the `portdial` command, one constant per outcome, so
//! that scripts and service managers can branch on why the dialer stopped.
//!
//! 0 to 2 follow the usual convention (clap itself exits with 2 on a usage
//! error). The dialing outcomes are numbered after them and never reused;
//! where pppd has an equivalent status, its number is given for operators who
//! know pppd's, but the numbers differ.

/// Success: the command did what was asked (for `replay`: the capture was
/// read and decoded, even if some frames in it were malformed).
pub const OK: u8 = 0;

/// An internal error: a bug or an unexpected operating-system failure that
/// none of the other codes describes (pppd: 1, "fatal error").
pub const INTERNAL_ERROR: u8 = 1;

/// Bad usage or bad configuration: unknown flag, missing argument, invalid
/// value, unreadable or inconsistent configuration file (pppd: 2).
pub const USAGE: u8 = 2;

/// The input file cannot be used: it cannot be opened or read, or it is not
/// a capture file (neither pcap nor pcapng), or its header is cut short.
pub const BAD_INPUT: u8 = 3;

/// Discovery failed: no access concentrator answered the PADI (no PADO), or
/// none confirmed the session (no PADS), within the configured attempts.
pub const NO_ACCESS_CONCENTRATOR: u8 = 4;

/// Authentication failed: the access concentrator refused our credentials
/// (PAP Authenticate-Nak or CHAP Failure) (pppd: 19).
pub const AUTH_FAILED: u8 = 5;

/// Negotiation failed: LCP or every NCP could not agree on options, or the
/// peer terminated the link during negotiation (pppd: 10).
pub const NEGOTIATION_FAILED: u8 = 6;

/// The configured number of consecutive failed connection attempts
/// (`maxfail`) was reached, so the dialer gave up re-dialing.
pub const MAXFAIL_REACHED: u8 = 7;

/// The network interface to dial on does not exist or went away (pppd: 7
/// for a device that cannot be opened).
pub const INTERFACE_MISSING: u8 = 8;

/// The operating system refused an operation for lack of privilege: raw
/// packet sockets, TUN device or routes need `CAP_NET_RAW` / `CAP_NET_ADMIN`
/// (pppd: 3 for "not run as root").
pub const NOT_PERMITTED: u8 = 9;

/// The link was lost (PADT, LCP echo failure, the peer's Terminate-Request,
/// carrier loss, the TUN deleted under us) and `persist` was not set, so the dialer did not re-dial
/// (pppd: 16, "the link was terminated by the modem hanging up" and kin).
pub const LINK_LOST: u8 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let codes = [
            OK,
            INTERNAL_ERROR,
            USAGE,
            BAD_INPUT,
            NO_ACCESS_CONCENTRATOR,
            AUTH_FAILED,
            NEGOTIATION_FAILED,
            MAXFAIL_REACHED,
            INTERFACE_MISSING,
            NOT_PERMITTED,
            LINK_LOST,
        ];
        for (index, code) in codes.iter().enumerate() {
            assert!(!codes[index + 1..].contains(code), "{code} is used twice");
        }
    }
}
