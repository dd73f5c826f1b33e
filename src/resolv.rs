//! DNS servers from the peer (`usepeerdns`), written as a resolv.conf.
//!
//! Like pppd, we write `nameserver` lines for the (at most two, distinct)
//! addresses IPCP gave us to a file of our own — by default
//! `/etc/ppp/resolv.conf`, not the system's `/etc/resolv.conf`; a hook or the
//! system's resolver manager decides what to do with it. The file is replaced
//! atomically (temporary file in the same directory, then `rename`).
//!
//! Unlike pppd, which leaves the file behind, we undo it when the link goes
//! down: the file that was there before is put back, or ours is deleted if
//! there was none, so stale servers of a dead link are not used. If someone
//! else replaced the file meanwhile, it is left alone.

use std::fmt;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::state_file::write_atomic;

/// pppd's default file for `usepeerdns`.
pub const DEFAULT_PATH: &str = "/etc/ppp/resolv.conf";

/// pppd writes at most two servers.
const MAX_SERVERS: usize = 2;

/// The file's contents for the peer's servers: one `nameserver` line for
/// each of the first two distinct, non-zero addresses.
pub fn contents(dns: &[Ipv4Addr]) -> String {
    let mut servers: Vec<Ipv4Addr> = Vec::with_capacity(MAX_SERVERS);
    for server in dns {
        if servers.len() < MAX_SERVERS && !server.is_unspecified() && !servers.contains(server) {
            servers.push(*server);
        }
    }
    servers
        .iter()
        .map(|server| format!("nameserver {server}\n"))
        .collect()
}

#[derive(Debug)]
pub struct ResolvError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl fmt::Display for ResolvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for ResolvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The peer's servers as installed in a file; [`PeerDns::remove`] undoes it.
#[derive(Debug)]
pub struct PeerDns {
    path: PathBuf,
    /// What the file held before we wrote it, if it existed.
    previous: Option<Vec<u8>>,
    written: String,
}

impl PeerDns {
    /// Writes the servers to `path`. Returns `None` (and writes nothing) when
    /// the peer gave no usable address, as pppd does.
    pub fn install(path: &Path, dns: &[Ipv4Addr]) -> Result<Option<PeerDns>, ResolvError> {
        let written = contents(dns);
        if written.is_empty() {
            return Ok(None);
        }
        let error = |source| ResolvError {
            path: path.to_owned(),
            source,
        };
        let previous = match fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(source) if source.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(error(source)),
        };
        write_atomic(path, written.as_bytes(), 0o644).map_err(error)?;
        Ok(Some(PeerDns {
            path: path.to_owned(),
            previous,
            written,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Undoes [`PeerDns::install`]: restores the previous file or deletes
    /// ours, unless the file no longer holds what we wrote.
    pub fn remove(self) -> Result<(), ResolvError> {
        let error = |source| ResolvError {
            path: self.path.clone(),
            source,
        };
        match fs::read(&self.path) {
            Ok(current) if current == self.written.as_bytes() => {}
            Ok(_) => return Ok(()),
            Err(source) if source.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(error(source)),
        }
        match &self.previous {
            Some(previous) => write_atomic(&self.path, previous, 0o644).map_err(error),
            None => match fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(source) if source.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(error(source)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("portdial-resolv-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
    const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
    const C: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 53);

    #[test]
    fn contents_like_pppd() {
        assert_eq!(
            contents(&[A, B]),
            "nameserver 192.0.2.53\nnameserver 198.51.100.53\n"
        );
        // A repeated address is written once, and at most two are written.
        assert_eq!(contents(&[A, A]), "nameserver 192.0.2.53\n");
        assert_eq!(
            contents(&[Ipv4Addr::UNSPECIFIED, B, C, A]),
            "nameserver 198.51.100.53\nnameserver 203.0.113.53\n"
        );
        assert_eq!(contents(&[]), "");
    }

    #[test]
    fn install_then_remove_deletes_our_file() {
        let dir = temp_dir("fresh");
        let path = dir.join("resolv.conf");
        let installed = PeerDns::install(&path, &[A, B]).unwrap().unwrap();
        assert_eq!(installed.path(), path);
        assert_eq!(fs::read_to_string(&path).unwrap(), contents(&[A, B]));
        installed.remove().unwrap();
        assert!(!path.exists());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn remove_restores_the_previous_file() {
        let dir = temp_dir("restore");
        let path = dir.join("resolv.conf");
        fs::write(&path, "nameserver 127.0.0.1\n").unwrap();
        let installed = PeerDns::install(&path, &[C]).unwrap().unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "nameserver 203.0.113.53\n"
        );
        installed.remove().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "nameserver 127.0.0.1\n");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn remove_leaves_a_file_someone_else_replaced() {
        let dir = temp_dir("replaced");
        let path = dir.join("resolv.conf");
        let installed = PeerDns::install(&path, &[A]).unwrap().unwrap();
        fs::write(&path, "nameserver 10.0.0.1\n").unwrap();
        installed.remove().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "nameserver 10.0.0.1\n");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn no_servers_writes_nothing() {
        let dir = temp_dir("none");
        let path = dir.join("resolv.conf");
        assert!(PeerDns::install(&path, &[Ipv4Addr::UNSPECIFIED])
            .unwrap()
            .is_none());
        assert!(!path.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unwritable_directory_is_an_error_naming_the_path() {
        let dir = temp_dir("missing");
        let path = dir.join("nonexistent/resolv.conf");
        let error = PeerDns::install(&path, &[A]).unwrap_err();
        assert!(error.to_string().contains("nonexistent"), "{error}");
        fs::remove_dir_all(dir).unwrap();
    }
}
