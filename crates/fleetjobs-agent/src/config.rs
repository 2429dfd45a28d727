//! The agent's settings: one shape for the JSON config file (`--config agent.json`) and for
//! the command-line overrides, resolved into an [`AgentConfig`] with defaults applied.
//!
//! Precedence: a command-line flag wins over the config file, which wins over the defaults.
//! The certificate files follow the AWS IoT Device SDK (JS) samples: a directory (`-f`)
//! holding `certificate.pem.crt`, `private.pem.key` and `root-CA.crt`, each name
//! overridable. Relative paths in a config file are relative to the file's directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The JS samples' file names inside the certificate directory.
pub const CERT_FILE: &str = "certificate.pem.crt";
pub const KEY_FILE: &str = "private.pem.key";
pub const ROOT_CA_FILE: &str = "root-CA.crt";
/// Where Linux publishes the kernel boot id (changes on every boot).
pub const BOOT_ID_FILE: &str = "/proc/sys/kernel/random/boot_id";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("missing setting: {0}")]
    Missing(&'static str),
    #[error("invalid duration {0:?} (examples: 90, 90s, 5m, 2h)")]
    Duration(String),
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Which MQTT protocol version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum MqttVersion {
    /// MQTT 5 first, 3.1.1 when the server refuses 5 (remembered for the process).
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "5")]
    V5,
    #[serde(rename = "3.1.1")]
    V311,
}

impl std::str::FromStr for MqttVersion {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "auto" => Ok(Self::Auto),
            "5" | "5.0" => Ok(Self::V5),
            "3.1.1" | "4" => Ok(Self::V311),
            other => Err(ConfigError::Invalid { name: "mqttVersion", reason: format!("{other:?}: auto, 5 or 3.1.1") }),
        }
    }
}

/// A command line: JSON array of strings, or one string split on whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    Argv(Vec<String>),
    Line(String),
}

impl CommandLine {
    pub fn argv(&self) -> Vec<String> {
        match self {
            Self::Argv(v) => v.clone(),
            Self::Line(s) => s.split_whitespace().map(str::to_owned).collect(),
        }
    }
}

/// Every setting, all optional: the config file's shape, and the command-line overlay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// MQTT host (`-H`): `localhost` for Fleetjobs, `xxxx-ats.iot.REGION.amazonaws.com` for AWS.
    pub endpoint: Option<String>,
    pub port: Option<u16>,
    /// Directory holding the three files (`-f`).
    pub cert_dir: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub root_ca: Option<PathBuf>,
    pub thing_name: Option<String>,
    pub client_id: Option<String>,
    pub handler_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// Default step timeout (a document's own timeout wins).
    pub step_timeout: Option<String>,
    pub require_signed: Option<bool>,
    pub trusted_keys: Option<PathBuf>,
    pub boot_id_file: Option<PathBuf>,
    pub reboot_command: Option<CommandLine>,
    pub shutdown_command: Option<CommandLine>,
    /// `$next/get` poll period (jittered by ±20 %).
    pub poll_interval: Option<String>,
    /// Minimum time between two progress updates of one step.
    pub progress_interval: Option<String>,
    /// How long to wait for `accepted`/`rejected`.
    pub request_timeout: Option<String>,
    pub keep_alive: Option<String>,
    /// Upper bound of the reconnect backoff.
    pub reconnect_max: Option<String>,
    pub mqtt_version: Option<MqttVersion>,
}

impl Settings {
    /// Read a config file; relative paths in it are made relative to its directory.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut s: Settings =
            serde_json::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        // With `certDir` in the file, bare `cert`/`key`/`rootCa` names are inside that directory.
        let files_in_cert_dir = s.cert_dir.is_some();
        let files = [&mut s.cert, &mut s.key, &mut s.root_ca].into_iter().filter(|_| !files_in_cert_dir);
        let dirs = [&mut s.cert_dir, &mut s.handler_dir, &mut s.state_dir, &mut s.trusted_keys, &mut s.boot_id_file];
        for p in files.chain(dirs).flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(s)
    }

    /// `self` with every field that `over` sets replaced.
    pub fn overlay(self, over: Settings) -> Settings {
        macro_rules! pick {
            ($($f:ident),*) => { Settings { $($f: over.$f.or(self.$f)),* } };
        }
        pick!(
            endpoint,
            port,
            cert_dir,
            cert,
            key,
            root_ca,
            thing_name,
            client_id,
            handler_dir,
            state_dir,
            step_timeout,
            require_signed,
            trusted_keys,
            boot_id_file,
            reboot_command,
            shutdown_command,
            poll_interval,
            progress_interval,
            request_timeout,
            keep_alive,
            reconnect_max,
            mqtt_version
        )
    }

    /// Apply the defaults and check what is required to run.
    pub fn resolve(self) -> Result<AgentConfig, ConfigError> {
        let endpoint = self.endpoint.ok_or(ConfigError::Missing("endpoint (-H)"))?;
        let thing_name = self.thing_name.ok_or(ConfigError::Missing("thingName (-T)"))?;
        check_thing_name(&thing_name)?;
        let in_cert_dir = |file: Option<PathBuf>, default: &str| -> PathBuf {
            let file = file.unwrap_or_else(|| PathBuf::from(default));
            match &self.cert_dir {
                Some(dir) => dir.join(file),
                None => file,
            }
        };
        let is_root = running_as_root();
        let state_dir = self.state_dir.unwrap_or_else(|| default_state_dir(is_root));
        let handler_dir = self.handler_dir.unwrap_or_else(|| {
            if is_root {
                PathBuf::from("/etc/fleetjobs-agent/handlers")
            } else {
                PathBuf::from("handlers")
            }
        });
        let reboot_command = self
            .reboot_command
            .map(|c| c.argv())
            .unwrap_or_else(|| vec!["/sbin/shutdown".into(), "-r".into(), "now".into()]);
        let shutdown_command = self
            .shutdown_command
            .map(|c| c.argv())
            .unwrap_or_else(|| vec!["/sbin/shutdown".into(), "-h".into(), "now".into()]);
        if reboot_command.is_empty() || shutdown_command.is_empty() {
            return Err(ConfigError::Invalid { name: "rebootCommand/shutdownCommand", reason: "empty".into() });
        }
        let require_signed = self.require_signed.unwrap_or(false);
        if require_signed && self.trusted_keys.is_none() {
            return Err(ConfigError::Invalid {
                name: "requireSigned",
                reason: "needs trustedKeys (a directory of public keys)".into(),
            });
        }
        let duration = |v: Option<String>, default: Duration| -> Result<Duration, ConfigError> {
            v.map(|s| parse_duration(&s)).transpose().map(|d| d.unwrap_or(default))
        };
        Ok(AgentConfig {
            port: self.port.unwrap_or(8883),
            cert: in_cert_dir(self.cert, CERT_FILE),
            key: in_cert_dir(self.key, KEY_FILE),
            root_ca: in_cert_dir(self.root_ca, ROOT_CA_FILE),
            client_id: self.client_id.unwrap_or_else(|| thing_name.clone()),
            endpoint,
            thing_name,
            handler_dir,
            state_dir,
            step_timeout: duration(self.step_timeout, Duration::from_secs(3600))?,
            require_signed,
            trusted_keys: self.trusted_keys,
            boot_id_file: self.boot_id_file.unwrap_or_else(|| PathBuf::from(BOOT_ID_FILE)),
            reboot_command,
            shutdown_command,
            poll_interval: duration(self.poll_interval, Duration::from_secs(300))?,
            progress_interval: duration(self.progress_interval, Duration::from_secs(5))?,
            request_timeout: duration(self.request_timeout, Duration::from_secs(10))?,
            keep_alive: duration(self.keep_alive, Duration::from_secs(60))?,
            reconnect_max: duration(self.reconnect_max, Duration::from_secs(60))?,
            mqtt_version: self.mqtt_version.unwrap_or_default(),
        })
    }
}

/// Everything the agent runs with.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub endpoint: String,
    pub port: u16,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub root_ca: PathBuf,
    pub thing_name: String,
    pub client_id: String,
    pub handler_dir: PathBuf,
    pub state_dir: PathBuf,
    pub step_timeout: Duration,
    pub require_signed: bool,
    pub trusted_keys: Option<PathBuf>,
    pub boot_id_file: PathBuf,
    pub reboot_command: Vec<String>,
    pub shutdown_command: Vec<String>,
    pub poll_interval: Duration,
    pub progress_interval: Duration,
    pub request_timeout: Duration,
    pub keep_alive: Duration,
    pub reconnect_max: Duration,
    pub mqtt_version: MqttVersion,
}

/// `/var/lib/fleetjobs-agent` for root, `./fleetjobs-agent-state` otherwise.
pub fn default_state_dir(is_root: bool) -> PathBuf {
    if is_root {
        PathBuf::from("/var/lib/fleetjobs-agent")
    } else {
        PathBuf::from("fleetjobs-agent-state")
    }
}

/// Whether the process runs as uid 0 (the owner of `/proc/self` is the effective uid).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// `90`, `90s`, `1500ms`, `5m`, `2h`, `1d`.
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| ConfigError::Duration(s.to_owned()))?;
    let ms = match unit.trim() {
        "" | "s" => n.checked_mul(1000),
        "ms" => Some(n),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    };
    ms.map(Duration::from_millis).ok_or_else(|| ConfigError::Duration(s.to_owned()))
}

/// AWS thing names: `[a-zA-Z0-9:_-]{1,128}` (they are also MQTT topic levels here).
fn check_thing_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid { name: "thingName", reason: format!("{name:?} is not [a-zA-Z0-9:_-]{{1,128}}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Settings {
        Settings { endpoint: Some("localhost".into()), thing_name: Some("Pi".into()), ..Settings::default() }
    }

    #[test]
    fn cert_dir_prefixes_the_js_sample_file_names() {
        let cfg = Settings { cert_dir: Some("/certs".into()), ..minimal() }.resolve().unwrap();
        assert_eq!(cfg.cert, PathBuf::from("/certs/certificate.pem.crt"));
        assert_eq!(cfg.key, PathBuf::from("/certs/private.pem.key"));
        assert_eq!(cfg.root_ca, PathBuf::from("/certs/root-CA.crt"));
        assert_eq!(cfg.client_id, "Pi");
        assert_eq!(cfg.port, 8883);
        assert_eq!(cfg.mqtt_version, MqttVersion::Auto);
    }

    #[test]
    fn flags_win_over_the_file() {
        let file: Settings =
            serde_json::from_str(r#"{"endpoint":"a.example","port":443,"thingName":"T","stepTimeout":"2m"}"#).unwrap();
        let cli = Settings { port: Some(8883), ..Settings::default() };
        let cfg = file.overlay(cli).resolve().unwrap();
        assert_eq!(cfg.endpoint, "a.example");
        assert_eq!(cfg.port, 8883);
        assert_eq!(cfg.step_timeout, Duration::from_secs(120));
    }

    #[test]
    fn file_paths_are_relative_to_the_file() {
        let dir = std::env::temp_dir().join(format!("fja-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.json");
        std::fs::write(
            &path,
            r#"{"endpoint":"x-ats.iot.eu-west-1.amazonaws.com","thingName":"T","cert":"c.pem","key":"/abs/k.pem",
                "rootCa":"AmazonRootCA1.pem","stateDir":"state","rebootCommand":"sudo reboot","mqttVersion":"3.1.1"}"#,
        )
        .unwrap();
        let cfg = Settings::from_file(&path).unwrap().resolve().unwrap();
        assert_eq!(cfg.cert, dir.join("c.pem"));
        assert_eq!(cfg.key, PathBuf::from("/abs/k.pem"));
        assert_eq!(cfg.state_dir, dir.join("state"));
        assert_eq!(cfg.reboot_command, vec!["sudo", "reboot"]);
        assert_eq!(cfg.mqtt_version, MqttVersion::V311);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_keys_and_missing_settings_are_errors() {
        assert!(serde_json::from_str::<Settings>(r#"{"endpont":"x"}"#).is_err());
        assert!(matches!(Settings::default().resolve(), Err(ConfigError::Missing(_))));
        let bad = Settings { thing_name: Some("a/b".into()), ..minimal() };
        assert!(matches!(bad.resolve(), Err(ConfigError::Invalid { .. })));
        let unsigned = Settings { require_signed: Some(true), ..minimal() };
        assert!(unsigned.resolve().is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
