//! Application classes: each has its own judging window and mode, because an
//! instant messenger legitimately sits silent for long stretches while a video
//! or a download that stops moving data is dead within a minute.
//!
//! A port's class comes from the first class that matches its owner's process
//! name, its owner's uid, or its remote port; otherwise the default class.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the manager does with a phantom port of the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Destroy the socket and reset both ends.
    #[default]
    Release,
    /// Judge and report only; change nothing.
    Observe,
}

/// One class as the TOML config gives it:
/// `[[ports.class]] name = "im", window = "30m", processes = ["signal"], remote_ports = [5222]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppClass {
    pub name: String,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    #[serde(default)]
    pub mode: Mode,
    /// Process names (`comm`, as /proc/PID/comm shows it, at most 15 bytes).
    #[serde(default)]
    pub processes: Vec<String>,
    #[serde(default)]
    pub uids: Vec<u32>,
    #[serde(default)]
    pub remote_ports: Vec<u16>,
}

impl AppClass {
    fn matches(&self, comm: Option<&str>, uid: Option<u32>, remote_port: Option<u16>) -> bool {
        comm.is_some_and(|comm| self.processes.iter().any(|p| p == comm))
            || uid.is_some_and(|uid| self.uids.contains(&uid))
            || remote_port.is_some_and(|port| self.remote_ports.contains(&port))
    }
}

/// The classes in match order, and the default for everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classes {
    classes: Vec<AppClass>,
    default: AppClass,
}

/// The window of ports no class claims.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);

impl Default for Classes {
    /// Instant messaging 30 min, video and download 1 min, everything else 5 min.
    fn default() -> Self {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        Classes {
            classes: vec![
                AppClass {
                    name: "im".into(),
                    window: Duration::from_secs(30 * 60),
                    mode: Mode::Release,
                    processes: names(&[
                        "signal-desktop",
                        "telegram-deskt",
                        "element",
                        "slack",
                        "pidgin",
                        "wechat",
                        "qq",
                    ]),
                    uids: Vec::new(),
                    // XMPP client and TLS, MQTT and MQTT over TLS.
                    remote_ports: vec![5222, 5223, 1883, 8883],
                },
                AppClass {
                    name: "video-download".into(),
                    window: Duration::from_secs(60),
                    mode: Mode::Release,
                    processes: names(&[
                        "vlc",
                        "mpv",
                        "ffmpeg",
                        "wget",
                        "curl",
                        "aria2c",
                        "transmission-da",
                    ]),
                    uids: Vec::new(),
                    // RTSP, RTMP.
                    remote_ports: vec![554, 1935],
                },
            ],
            default: AppClass {
                name: "default".into(),
                window: DEFAULT_WINDOW,
                mode: Mode::Release,
                processes: Vec::new(),
                uids: Vec::new(),
                remote_ports: Vec::new(),
            },
        }
    }
}

impl Classes {
    /// Configured classes (tried first, in order), then the built-in ones;
    /// `default_window` / `default_mode` set the catch-all class.
    pub fn new(
        configured: Vec<AppClass>,
        default_window: Option<Duration>,
        default_mode: Option<Mode>,
    ) -> Classes {
        let mut classes = Classes::default();
        let builtin = std::mem::take(&mut classes.classes);
        classes.classes = configured;
        for class in builtin {
            if !classes.classes.iter().any(|c| c.name == class.name) {
                classes.classes.push(class);
            }
        }
        if let Some(window) = default_window {
            classes.default.window = window;
        }
        if let Some(mode) = default_mode {
            classes.default.mode = mode;
        }
        classes
    }

    /// Every class's mode set to `mode` (the global `observe` switch).
    pub fn with_mode(mut self, mode: Mode) -> Classes {
        for class in &mut self.classes {
            class.mode = mode;
        }
        self.default.mode = mode;
        self
    }

    pub fn classify(
        &self,
        comm: Option<&str>,
        uid: Option<u32>,
        remote_port: Option<u16>,
    ) -> &AppClass {
        self.classes
            .iter()
            .find(|class| class.matches(comm, uid, remote_port))
            .unwrap_or(&self.default)
    }

    pub fn iter(&self) -> impl Iterator<Item = &AppClass> {
        self.classes.iter().chain(std::iter::once(&self.default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_patent() {
        let classes = Classes::default();
        assert_eq!(
            classes.classify(Some("wget"), None, None).window,
            Duration::from_secs(60)
        );
        assert_eq!(
            classes.classify(None, None, Some(5222)).window,
            Duration::from_secs(1800)
        );
        assert_eq!(
            classes
                .classify(Some("firefox"), Some(1000), Some(443))
                .name,
            "default"
        );
        assert_eq!(classes.classify(None, None, None).window, DEFAULT_WINDOW);
    }

    #[test]
    fn configured_classes_come_first_and_parse_from_toml() {
        #[derive(Deserialize)]
        struct File {
            class: Vec<AppClass>,
        }
        let file: File = toml::from_str(
            r#"
            [[class]]
            name = "probe"
            window = "90s"
            mode = "observe"
            uids = [1234]
            remote_ports = [5222]
            "#,
        )
        .unwrap();
        let classes = Classes::new(file.class, Some(Duration::from_secs(120)), None);
        let probe = classes.classify(None, None, Some(5222));
        assert_eq!(
            (probe.name.as_str(), probe.window, probe.mode),
            ("probe", Duration::from_secs(90), Mode::Observe)
        );
        assert_eq!(classes.classify(None, Some(1234), None).name, "probe");
        assert_eq!(
            classes.classify(Some("mpv"), None, None).name,
            "video-download"
        );
        assert_eq!(
            classes.classify(None, None, None).window,
            Duration::from_secs(120)
        );
        assert!(classes
            .clone()
            .with_mode(Mode::Observe)
            .iter()
            .all(|c| c.mode == Mode::Observe));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let error =
            toml::from_str::<AppClass>("name = \"x\"\nwindow = \"1m\"\nprocess = [\"a\"]\n")
                .unwrap_err();
        assert!(error.to_string().contains("process"), "{error}");
    }
}
