//! pppd's `pap-secrets` / `chap-secrets` files, read the way pppd reads them.
//!
//! The syntax (pppd(8), "AUTHENTICATION"; pppd's `getword` and
//! `scan_authfile`): a file is a sequence of words separated by white space.
//! A word may be quoted with `"` or `'` to hold spaces or `#`; a backslash
//! escapes the next character (`\n`, `\t`, `\s` for a space, `\ooo` octal,
//! `\xhh` hex, and backslash-newline joins lines); `#` outside a word or a
//! quote starts a comment to the end of the line. An entry starts with a word
//! at the beginning of a line and is
//!
//! ```text
//! client  server  secret  [acceptable local IP addresses ...]
//! ```
//!
//! `*` as client or server matches anything. When several entries match, the
//! most specific one wins (a named client beats a named server, which beats
//! `*`); among equally specific entries the first one wins. A secret of the
//! form `@/path` means "the first word of the file /path".
//!
//! As a client we look for our user name as the client. pppd also matches the
//! server column against the name the peer is known by (`remotename`); PPPoE
//! access concentrators rarely have one we know in advance, so a `None`
//! server accepts every entry for the user, preferring one whose server is
//! named — pppd's rule for an unknown server.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use portdial_ppp::auth::Secret;

/// pppd's weights: a named client counts more than a named server.
const NAMED_SERVER: u8 = 1;
const NAMED_CLIENT: u8 = 2;

/// The secret column of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretWord {
    /// The secret itself.
    Inline(Secret),
    /// `@/path`: the secret is the first word of that file.
    File(PathBuf),
}

/// One `client server secret [addresses]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEntry {
    pub client: String,
    pub server: String,
    pub secret: SecretWord,
    /// Acceptable local addresses, and options after a `--` word, as written.
    /// We do not enforce them; they are kept for diagnostics.
    pub addresses: Vec<String>,
}

/// Why a secret could not be read.
#[derive(Debug)]
pub enum SecretsError {
    /// The secrets file (or the file an `@/path` secret names) cannot be read.
    Read { path: PathBuf, source: io::Error },
    /// An `@/path` file holds no word.
    EmptyIndirect { path: PathBuf },
}

impl fmt::Display for SecretsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretsError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            SecretsError::EmptyIndirect { path } => write!(
                f,
                "{} (named by an @/path secret) holds no secret",
                path.display()
            ),
        }
    }
}

impl std::error::Error for SecretsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SecretsError::Read { source, .. } => Some(source),
            SecretsError::EmptyIndirect { .. } => None,
        }
    }
}

/// A word and whether it is the first on its line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    text: Vec<u8>,
    starts_line: bool,
}

/// Splits a secrets file into words as pppd's `getword` does.
struct Words<'a> {
    bytes: &'a [u8],
    position: usize,
    /// The first word of the file counts as starting a line.
    first: bool,
}

impl<'a> Words<'a> {
    fn new(text: &'a [u8]) -> Words<'a> {
        Words {
            bytes: text,
            position: 0,
            first: true,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.position += 1;
        Some(byte)
    }

    /// Reads the character after a backslash (already consumed) and returns
    /// the byte it stands for, or `None` for backslash-newline (ignored) and
    /// for a backslash at the end of the text.
    fn escape(&mut self) -> Option<u8> {
        let byte = self.bump()?;
        Some(match byte {
            b'\n' => return None,
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b's' => b' ',
            b't' => b'\t',
            b'0'..=b'7' => {
                // Up to three octal digits; pppd keeps the low 8 bits.
                let mut value = u32::from(byte - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(digit @ b'0'..=b'7') => {
                            value = (value << 3) | u32::from(digit - b'0');
                            self.position += 1;
                        }
                        _ => break,
                    }
                }
                value as u8
            }
            b'x' => {
                let mut value = 0u8;
                for _ in 0..2 {
                    match self.peek().and_then(|digit| (digit as char).to_digit(16)) {
                        Some(digit) => {
                            value = (value << 4) | digit as u8;
                            self.position += 1;
                        }
                        None => break,
                    }
                }
                value
            }
            other => other,
        })
    }
}

impl Iterator for Words<'_> {
    type Item = Word;

    fn next(&mut self) -> Option<Word> {
        let mut starts_line = std::mem::take(&mut self.first);
        // Skip white space and comments; note line ends on the way.
        let mut comment = false;
        let mut text = Vec::new();
        loop {
            let byte = self.peek()?;
            if byte == b'\n' {
                self.position += 1;
                starts_line = true;
                comment = false;
                continue;
            }
            if comment {
                self.position += 1;
                continue;
            }
            if byte == b'\\' {
                self.position += 1;
                match self.escape() {
                    // An escaped character starts a word.
                    Some(value) => {
                        text.push(value);
                        break;
                    }
                    None if self.peek().is_none() => return None,
                    None => continue,
                }
            }
            if byte == b'#' {
                comment = true;
                self.position += 1;
                continue;
            }
            if !byte.is_ascii_whitespace() {
                break;
            }
            self.position += 1;
        }
        // The word itself, up to unquoted white space or `#`.
        let mut quote: Option<u8> = None;
        while let Some(byte) = self.peek() {
            if byte == b'\\' {
                self.position += 1;
                if let Some(value) = self.escape() {
                    text.push(value);
                }
                continue;
            }
            match quote {
                Some(open) if byte == open => quote = None,
                Some(_) => text.push(byte),
                None if byte == b'"' || byte == b'\'' => quote = Some(byte),
                None if byte.is_ascii_whitespace() || byte == b'#' => break,
                None => text.push(byte),
            }
            self.position += 1;
        }
        Some(Word { text, starts_line })
    }
}

fn word_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// Every entry of a secrets file, in order. Lines with fewer than three words
/// are skipped, as pppd skips them.
pub fn parse_entries(text: &str) -> Vec<SecretEntry> {
    let mut lines: Vec<Vec<Vec<u8>>> = Vec::new();
    for word in Words::new(text.as_bytes()) {
        match lines.last_mut() {
            Some(line) if !word.starts_line => line.push(word.text),
            _ => lines.push(vec![word.text]),
        }
    }
    lines
        .into_iter()
        .filter_map(|line| {
            let mut words = line.into_iter().map(word_string);
            let client = words.next()?;
            let server = words.next()?;
            let secret = words.next()?;
            let secret = match secret.strip_prefix('@') {
                Some(path) if path.starts_with('/') => SecretWord::File(PathBuf::from(path)),
                _ => SecretWord::Inline(Secret::new(secret)),
            };
            Some(SecretEntry {
                client,
                server,
                secret,
                addresses: words.collect(),
            })
        })
        .collect()
}

/// The entry pppd would pick for `user` talking to `server` (any server
/// when `None`): the most specific match, the first among equals.
pub fn find_entry(text: &str, user: &str, server: Option<&str>) -> Option<SecretEntry> {
    let mut best: Option<(u8, SecretEntry)> = None;
    for entry in parse_entries(text) {
        let mut weight = 0;
        if entry.client != "*" {
            if entry.client != user {
                continue;
            }
            weight |= NAMED_CLIENT;
        }
        if entry.server != "*" {
            if server.is_some_and(|server| entry.server != server) {
                continue;
            }
            weight |= NAMED_SERVER;
        }
        let better = match &best {
            Some((best_weight, _)) => weight > *best_weight,
            None => true,
        };
        if better {
            best = Some((weight, entry));
        }
    }
    best.map(|(_, entry)| entry)
}

/// Reads an `@/path` secret: the first word of the file, in the same syntax.
pub fn read_indirect(path: &Path) -> Result<Secret, SecretsError> {
    let text = fs::read(path).map_err(|source| SecretsError::Read {
        path: path.to_owned(),
        source,
    })?;
    Words::new(&text)
        .next()
        .map(|word| Secret::new(word_string(word.text)))
        .ok_or_else(|| SecretsError::EmptyIndirect {
            path: path.to_owned(),
        })
}

/// The secret for `user` in the text of a secrets file, reading an `@/path`
/// secret's file when the chosen entry has one.
pub fn find_secret(
    text: &str,
    user: &str,
    server: Option<&str>,
) -> Result<Option<Secret>, SecretsError> {
    match find_entry(text, user, server) {
        None => Ok(None),
        Some(SecretEntry {
            secret: SecretWord::Inline(secret),
            ..
        }) => Ok(Some(secret)),
        Some(SecretEntry {
            secret: SecretWord::File(path),
            ..
        }) => read_indirect(&path).map(Some),
    }
}

/// [`find_secret`] on the file at `path`.
pub fn find_secret_in_file(
    path: &Path,
    user: &str,
    server: Option<&str>,
) -> Result<Option<Secret>, SecretsError> {
    let text = read_text(path)?;
    find_secret(&text, user, server)
}

/// A secrets file as text (invalid UTF-8 replaced, so a stray byte in some
/// other entry does not make the whole file unreadable).
pub fn read_text(path: &Path) -> Result<String, SecretsError> {
    let bytes = fs::read(path).map_err(|source| SecretsError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(word_string(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(String, bool)> {
        Words::new(text.as_bytes())
            .map(|word| (word_string(word.text), word.starts_line))
            .collect()
    }

    fn inline(entry: &SecretEntry) -> &str {
        match &entry.secret {
            SecretWord::Inline(secret) => secret.expose(),
            SecretWord::File(path) => panic!("expected an inline secret, got @{}", path.display()),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("portdial-secrets-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn splits_words_and_lines() {
        assert_eq!(
            words("a b\n  c\td # comment x y\n\ne"),
            [
                ("a".into(), true),
                ("b".into(), false),
                ("c".into(), true),
                ("d".into(), false),
                ("e".into(), true),
            ]
        );
    }

    #[test]
    fn quotes_hold_spaces_and_hashes() {
        assert_eq!(
            words(r#""my user" * 'pass # word' "" x"y z"w"#),
            [
                ("my user".into(), true),
                ("*".into(), false),
                ("pass # word".into(), false),
                ("".into(), false),
                ("xy zw".into(), false),
            ]
        );
    }

    #[test]
    fn hash_ends_an_unquoted_word() {
        assert_eq!(
            words("abc#def\nx"),
            [("abc".into(), true), ("x".into(), true)]
        );
    }

    #[test]
    fn backslash_escapes() {
        assert_eq!(
            words(r"a\sb \101\x42 \#x \\ q\n"),
            [
                ("a b".into(), true),
                ("AB".into(), false),
                ("#x".into(), false),
                ("\\".into(), false),
                ("q\n".into(), false),
            ]
        );
        // Backslash-newline continues the entry on the next line.
        assert_eq!(
            words("user * \\\n  secret"),
            [
                ("user".into(), true),
                ("*".into(), false),
                ("secret".into(), false),
            ]
        );
        // A lone backslash at the end is ignored.
        assert_eq!(words("a \\"), [("a".into(), true)]);
    }

    #[test]
    fn parses_entries_with_addresses() {
        // The layout pppd(8) shows for /etc/ppp/pap-secrets.
        let text = "# Secrets for authentication using PAP\n\
                    # client\tserver\tsecret\t\t\tIP addresses\n\
                    \"alice@isp\"\t*\t\"s3cr et\"\t10.0.0.1 10.0.0.2\n\
                    bob isp hunter2\n\
                    incomplete *\n";
        let entries = parse_entries(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].client, "alice@isp");
        assert_eq!(entries[0].server, "*");
        assert_eq!(inline(&entries[0]), "s3cr et");
        assert_eq!(entries[0].addresses, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(entries[1].client, "bob");
        assert_eq!(inline(&entries[1]), "hunter2");
        assert!(entries[1].addresses.is_empty());
    }

    #[test]
    fn at_path_is_an_indirect_secret() {
        let entries = parse_entries("u * @/etc/ppp/u.secret\nv * @relative\n");
        assert_eq!(
            entries[0].secret,
            SecretWord::File(PathBuf::from("/etc/ppp/u.secret"))
        );
        // pppd only treats "@/" as a path.
        assert_eq!(inline(&entries[1]), "@relative");
    }

    #[test]
    fn most_specific_entry_wins() {
        let text = "* * anyone\n\
                    * isp wildclient\n\
                    alice * named\n\
                    alice isp exact\n\
                    alice isp later\n";
        let secret = |user, server| {
            find_secret(text, user, server)
                .unwrap()
                .map(|secret| secret.expose().to_owned())
        };
        assert_eq!(secret("alice", Some("isp")).as_deref(), Some("exact"));
        assert_eq!(secret("alice", Some("other")).as_deref(), Some("named"));
        // Unknown server: every server matches, a named one is preferred.
        assert_eq!(secret("alice", None).as_deref(), Some("exact"));
        assert_eq!(secret("bob", Some("isp")).as_deref(), Some("wildclient"));
        assert_eq!(secret("bob", Some("x")).as_deref(), Some("anyone"));
    }

    #[test]
    fn first_of_equals_wins_and_no_match_is_none() {
        let text = "alice * first\nalice * second\n";
        assert_eq!(
            find_secret(text, "alice", None).unwrap().unwrap().expose(),
            "first"
        );
        assert!(find_secret(text, "bob", None).unwrap().is_none());
        assert!(find_secret("", "bob", None).unwrap().is_none());
        assert!(find_secret("# only a comment", "bob", None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn reads_indirect_and_file_secrets() {
        let dir = temp_dir("indirect");
        let indirect = dir.join("alice.secret");
        fs::write(&indirect, "\"pass word\"\nignored\n").unwrap();
        let secrets = dir.join("pap-secrets");
        fs::write(
            &secrets,
            format!("alice * @{}\nbob * plain\n", indirect.display()),
        )
        .unwrap();
        let found = find_secret_in_file(&secrets, "alice", None).unwrap();
        assert_eq!(found.unwrap().expose(), "pass word");
        let found = find_secret_in_file(&secrets, "bob", None).unwrap();
        assert_eq!(found.unwrap().expose(), "plain");

        fs::write(&indirect, "  # nothing\n").unwrap();
        let error = find_secret_in_file(&secrets, "alice", None).unwrap_err();
        assert!(
            matches!(error, SecretsError::EmptyIndirect { .. }),
            "{error}"
        );

        let missing = dir.join("missing");
        let error = find_secret_in_file(&missing, "alice", None).unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "\\", "\"", "'", "\\x", "\\7", "a \"b", "#", "\n\n", "\\\n", "a\\", "é * ü",
        ] {
            let _ = parse_entries(text);
            let _ = find_entry(text, "a", None);
        }
    }
}
