//! The last PPPoE session, remembered on disk so that a restarted dialer can
//! end it with a PADT before dialing again (an AC that still holds the old
//! session may refuse a new one for the same account until it times out).
//!
//! The file is one JSON object:
//!
//! ```json
//! {"iface":"eth0","ac_mac":"00:11:22:33:44:55","session_id":17,
//!  "our_mac":"02:00:00:00:00:01","since":1700000000}
//! ```
//!
//! `since` is when the session was established, in seconds since the Unix
//! epoch. The file is replaced atomically (a temporary file in the same
//! directory, then `rename`), so a crash leaves the old or the new contents,
//! never half of either.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portdial_protocol::ethernet::MacAddr;
use serde::{Deserialize, Serialize};

/// The session a previous run left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    /// The Ethernet interface the session ran on.
    pub iface: String,
    /// The access concentrator's MAC address.
    pub ac_mac: MacAddr,
    pub session_id: u16,
    /// Our MAC address (the PADT must come from it).
    pub our_mac: MacAddr,
    /// When the session was established.
    pub since: SystemTime,
}

/// The JSON shape; MAC addresses as text so the file is readable by people.
/// Unknown keys are ignored, so a newer version's file still loads.
#[derive(Serialize, Deserialize)]
struct Stored {
    iface: String,
    ac_mac: String,
    session_id: u16,
    our_mac: String,
    since: u64,
}

/// Why the state file could not be read or written.
#[derive(Debug)]
pub enum StateFileError {
    Io { path: PathBuf, source: io::Error },
    Corrupt { path: PathBuf, reason: String },
}

impl fmt::Display for StateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateFileError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            StateFileError::Corrupt { path, reason } => {
                write!(f, "{} is not a valid state file: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for StateFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateFileError::Io { source, .. } => Some(source),
            StateFileError::Corrupt { .. } => None,
        }
    }
}

impl SessionState {
    fn to_json(&self) -> String {
        let since = self
            .since
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let stored = Stored {
            iface: self.iface.clone(),
            ac_mac: self.ac_mac.to_string(),
            session_id: self.session_id,
            our_mac: self.our_mac.to_string(),
            since,
        };
        // Serializing plain strings and integers cannot fail.
        let mut json = serde_json::to_string(&stored).unwrap_or_default();
        json.push('\n');
        json
    }

    fn from_json(text: &str) -> Result<SessionState, String> {
        let stored: Stored = serde_json::from_str(text).map_err(|error| error.to_string())?;
        let mac = |name: &str, text: &str| {
            text.parse::<MacAddr>()
                .map_err(|error| format!("{name}: {error}"))
        };
        Ok(SessionState {
            ac_mac: mac("ac_mac", &stored.ac_mac)?,
            our_mac: mac("our_mac", &stored.our_mac)?,
            iface: stored.iface,
            session_id: stored.session_id,
            since: UNIX_EPOCH
                .checked_add(Duration::from_secs(stored.since))
                .ok_or_else(|| "since: out of range".to_owned())?,
        })
    }
}

/// Writes `contents` to `path` atomically: a temporary file with `mode` in
/// the same directory, synced, then renamed over `path`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".tmp.{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    // A temporary file left by an earlier crash of this same pid is stale.
    let _ = fs::remove_file(&temp);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Saves the session atomically (mode 0644: nothing in it is secret).
pub fn save(path: &Path, state: &SessionState) -> Result<(), StateFileError> {
    write_atomic(path, state.to_json().as_bytes(), 0o644).map_err(|source| StateFileError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads the state file: `Ok(None)` when there is none.
pub fn try_load(path: &Path) -> Result<Option<SessionState>, StateFileError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.kind() == io::ErrorKind::InvalidData => {
            return Err(StateFileError::Corrupt {
                path: path.to_owned(),
                reason: "not UTF-8".to_owned(),
            })
        }
        Err(source) => {
            return Err(StateFileError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    SessionState::from_json(&text)
        .map(Some)
        .map_err(|reason| StateFileError::Corrupt {
            path: path.to_owned(),
            reason,
        })
}

/// Reads the state file for the stale-session PADT. A missing file is
/// `None`; an unreadable or corrupt one is also `None`, with a warning logged,
/// because a bad state file must not stop the dialer from dialing.
pub fn load(path: &Path) -> Option<SessionState> {
    match try_load(path) {
        Ok(state) => state,
        Err(error) => {
            tracing::warn!(%error, "ignoring the session state file");
            None
        }
    }
}

/// Removes the state file (the session ended cleanly); a missing file is fine.
pub fn clear(path: &Path) -> Result<(), StateFileError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateFileError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("portdial-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sample() -> SessionState {
        SessionState {
            iface: "eth0".into(),
            ac_mac: "00:11:22:33:44:55".parse().unwrap(),
            session_id: 0x0011,
            our_mac: "02:00:00:00:00:01".parse().unwrap(),
            since: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    #[test]
    fn save_load_clear() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("portdial.state");
        assert_eq!(try_load(&path).unwrap(), None);
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path), Some(sample()));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // Only the state file is left: the temporary file was renamed.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);

        let mut newer = sample();
        newer.session_id = 0x1234;
        save(&path, &newer).unwrap();
        assert_eq!(load(&path), Some(newer));

        clear(&path).unwrap();
        assert_eq!(load(&path), None);
        clear(&path).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_format_is_the_documented_json() {
        let json: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "iface": "eth0",
                "ac_mac": "00:11:22:33:44:55",
                "session_id": 17,
                "our_mac": "02:00:00:00:00:01",
                "since": 1_700_000_000u64,
            })
        );
    }

    #[test]
    fn corrupt_files_load_as_none() {
        let dir = temp_dir("corrupt");
        let path = dir.join("state");
        for contents in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"iface\":\"eth0\"}",
            b"\xff\xfe",
            br#"{"iface":"eth0","ac_mac":"zz","session_id":1,"our_mac":"02:00:00:00:00:01","since":0}"#,
            br#"{"iface":"eth0","ac_mac":"00:11:22:33:44:55","session_id":70000,"our_mac":"02:00:00:00:00:01","since":0}"#,
        ] {
            fs::write(&path, contents).unwrap();
            assert!(
                matches!(try_load(&path), Err(StateFileError::Corrupt { .. })),
                "{:?}",
                String::from_utf8_lossy(contents)
            );
            assert_eq!(load(&path), None);
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn save_into_a_missing_directory_fails_cleanly() {
        let dir = temp_dir("missing");
        let path = dir.join("no/such/dir/state");
        let error = save(&path, &sample()).unwrap_err();
        assert!(error.to_string().contains("no/such/dir"), "{error}");
        fs::remove_dir_all(dir).unwrap();
    }
}
