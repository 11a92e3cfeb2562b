//! [`LogConfig`]: the logging section of an application's config file.
//!
//! Every field has a default, so an empty section (or `LogConfig::default()`)
//! is a working configuration: `tracing` backend, `info` level, human text to
//! stdout, a buffer of 8192 records that drops (and counts) records when full.
//!
//! In TOML:
//!
//! ```toml
//! backend = "tracing"               # or "slog", "log"
//! filter = "info,kube=warn,my_crate::db=debug"
//! format = "json"                   # or "text"
//! outputs = [
//!   "stderr",
//!   { type = "file", path = "/var/log/app/app.log", rotation = "daily", keep = 7 },
//!   { type = "file", path = "/var/log/app/big.log", rotation = "size", max_bytes = 10485760, keep = 3 },
//! ]
//! buffer = { capacity = 8192, on_full = "drop" }
//! ```
//!
//! Environment variables override the file (see [`LogConfig::apply_env`]):
//! `KUBEPKG_LOG` (the filter; `RUST_LOG` when `KUBEPKG_LOG` is unset),
//! `KUBEPKG_LOG_FORMAT`, `KUBEPKG_LOG_BACKEND`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Environment variable holding the filter directives, e.g. `info,kube=warn`.
pub const ENV_FILTER: &str = "KUBEPKG_LOG";
/// The conventional filter variable of Rust programs, read when
/// [`ENV_FILTER`] is unset or empty.
pub const ENV_RUST_LOG: &str = "RUST_LOG";
/// Environment variable selecting the format: `json` or `text`.
pub const ENV_FORMAT: &str = "KUBEPKG_LOG_FORMAT";
/// Environment variable selecting the backend: `tracing`, `slog` or `log`.
pub const ENV_BACKEND: &str = "KUBEPKG_LOG_BACKEND";

/// The logging configuration. See the [module docs](self) for the file format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Which logging family owns the output. Records of the other two
    /// families are forwarded into it.
    pub backend: Backend,
    /// Level and per-target filter directives, comma separated: a bare level
    /// is the default (`info`), `target=level` overrides it for a target and
    /// everything below it in the module tree (`kube=warn`,
    /// `my_crate::db=debug`). Levels: `off`, `error`, `warn`, `info`, `debug`,
    /// `trace`; a target without a level (`my_crate`) means all levels.
    /// Without a bare level, targets not named are off. Span directives
    /// work as in tracing-subscriber's `EnvFilter`:
    /// `target[span{field=value}]=level` enables `level` for events inside
    /// a matching span (target, span name and fields are each optional);
    /// they apply to `tracing` events only (see the
    /// [crate docs](crate#filters)).
    #[serde(alias = "level")]
    pub filter: String,
    /// Human text or JSON lines.
    pub format: Format,
    /// Where records go; every record is written to each output.
    pub outputs: Vec<Output>,
    /// The bounded buffer between the logging threads and the writer thread.
    pub buffer: BufferConfig,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            backend: Backend::default(),
            filter: "info".to_owned(),
            format: Format::default(),
            outputs: vec![Output::Stdout],
            buffer: BufferConfig::default(),
        }
    }
}

impl LogConfig {
    /// Overrides fields from the process environment: [`ENV_FILTER`]
    /// (`KUBEPKG_LOG`, or [`ENV_RUST_LOG`] — `RUST_LOG` — when it is unset
    /// or empty; `KUBEPKG_LOG` wins when both are set), [`ENV_FORMAT`] and
    /// [`ENV_BACKEND`]. Unset or empty variables leave the field as it is.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the variable when a value does not parse;
    /// `self` is then unchanged.
    pub fn apply_env(&mut self) -> Result<()> {
        self.apply_env_from(|name| std::env::var(name).ok())
    }

    /// Like [`apply_env`](Self::apply_env) with the variables looked up by
    /// `lookup` instead of the process environment (handy in tests).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the variable when a value does not parse;
    /// `self` is then unchanged.
    pub fn apply_env_from(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<()> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut next = self.clone();
        let filter = get(ENV_FILTER)
            .map(|f| (ENV_FILTER, f))
            .or_else(|| get(ENV_RUST_LOG).map(|f| (ENV_RUST_LOG, f)));
        if let Some((name, filter)) = filter {
            crate::filter::parse(&filter).map_err(|e| Error::invalid(format!("{name}: {e}")))?;
            next.filter = filter;
        }
        if let Some(format) = get(ENV_FORMAT) {
            next.format = format
                .parse()
                .map_err(|e| Error::invalid(format!("{ENV_FORMAT}: {e}")))?;
        }
        if let Some(backend) = get(ENV_BACKEND) {
            next.backend = backend
                .parse()
                .map_err(|e| Error::invalid(format!("{ENV_BACKEND}: {e}")))?;
        }
        *self = next;
        Ok(())
    }

    /// Checks everything that can be checked without touching the file
    /// system: the filter parses, there is at least one output, sizes and
    /// capacities are positive.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] describing the first problem.
    pub fn validate(&self) -> Result<()> {
        crate::filter::parse(&self.filter)?;
        if self.outputs.is_empty() {
            return Err(Error::invalid(
                "`outputs` is empty: name at least one output",
            ));
        }
        for output in &self.outputs {
            if let Output::File(file) = output {
                file.validate()?;
            }
        }
        if self.buffer.capacity == 0 {
            return Err(Error::invalid("`buffer.capacity` must be at least 1"));
        }
        Ok(())
    }

    /// Parses a TOML document holding a `LogConfig` (the fields at the top
    /// level), mapping parse errors to [`Error::Invalid`].
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] with the parser's message (unknown backend, unknown
    /// field, wrong type...) or a failed [`validate`](Self::validate).
    #[cfg(feature = "toml")]
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let config: LogConfig =
            toml::from_str(text).map_err(|e| Error::invalid(format!("TOML: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a YAML document holding a `LogConfig`, mapping parse errors to
    /// [`Error::Invalid`].
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] with the parser's message or a failed
    /// [`validate`](Self::validate).
    #[cfg(feature = "yaml")]
    pub fn from_yaml_str(text: &str) -> Result<Self> {
        let config: LogConfig =
            serde_yaml::from_str(text).map_err(|e| Error::invalid(format!("YAML: {e}")))?;
        config.validate()?;
        Ok(config)
    }
}

/// The logging family that owns the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// `tracing-subscriber` formats and writes; `log` and `slog` records are
    /// turned into `tracing` events. The only backend with span context.
    #[default]
    Tracing,
    /// A `slog` drain (`slog-json` / `slog-term`) formats and writes;
    /// `tracing` events and `log` records become `slog` records.
    Slog,
    /// A `log::Log` logger formats and writes; `tracing` events and `slog`
    /// records become `log` records (with their fields as key-values).
    Log,
}

impl Backend {
    /// The config-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Tracing => "tracing",
            Backend::Slog => "slog",
            Backend::Log => "log",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tracing" => Ok(Backend::Tracing),
            "slog" => Ok(Backend::Slog),
            "log" => Ok(Backend::Log),
            other => Err(Error::invalid(format!(
                "unknown backend `{other}`: expected `tracing`, `slog` or `log`"
            ))),
        }
    }
}

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One line per record for people: timestamp, level, target, message,
    /// fields. Coloured only when every output is a terminal.
    #[default]
    #[serde(alias = "human")]
    Text,
    /// One JSON object per line: `timestamp` (RFC 3339, UTC), `level`,
    /// `target`, `message`, each field as its own key, and for the `tracing`
    /// backend `span` (the current span) and `spans` (root first).
    Json,
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "human" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(Error::invalid(format!(
                "unknown format `{other}`: expected `text` or `json`"
            ))),
        }
    }
}

/// One destination for records.
///
/// In a config file: the strings `"stdout"` / `"stderr"`, or a table with a
/// `type` key: `{ type = "stdout" }`, `{ type = "file", path = "...", ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", try_from = "OutputRepr")]
pub enum Output {
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
    /// A file, optionally rotated.
    File(FileOutput),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OutputRepr {
    Name(String),
    Table(OutputTable),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum OutputTable {
    Stdout,
    Stderr,
    File(FileOutput),
}

impl TryFrom<OutputRepr> for Output {
    type Error = String;

    fn try_from(repr: OutputRepr) -> std::result::Result<Self, String> {
        match repr {
            OutputRepr::Name(name) => match name.as_str() {
                "stdout" => Ok(Output::Stdout),
                "stderr" => Ok(Output::Stderr),
                other => Err(format!(
                    "unknown output `{other}`: expected `stdout`, `stderr` or a table \
                     `{{ type = \"file\", path = ... }}`"
                )),
            },
            OutputRepr::Table(OutputTable::Stdout) => Ok(Output::Stdout),
            OutputRepr::Table(OutputTable::Stderr) => Ok(Output::Stderr),
            OutputRepr::Table(OutputTable::File(file)) => Ok(Output::File(file)),
        }
    }
}

/// A file output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutput {
    /// The active file. Rotated files sit beside it with a suffix:
    /// `.1`, `.2`... (newest first) for size rotation, `.YYYY-MM-DD` or
    /// `.YYYY-MM-DD-HH` (UTC, the period the file covers) for time rotation.
    /// Missing parent directories are created.
    pub path: PathBuf,
    /// When to start a new file.
    #[serde(default)]
    pub rotation: Rotation,
    /// With `rotation = "size"`: the largest a file may grow. A record is
    /// never split, so a file holds at most this many bytes unless a single
    /// record is bigger.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// How many rotated (old) files to keep beside the active one; older
    /// ones are deleted.
    #[serde(default = "default_keep")]
    pub keep: usize,
}

fn default_keep() -> usize {
    7
}

impl FileOutput {
    /// A file output at `path` that is never rotated.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileOutput {
            path: path.into(),
            rotation: Rotation::Never,
            max_bytes: None,
            keep: default_keep(),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::invalid("file output has an empty `path`"));
        }
        match (self.rotation, self.max_bytes) {
            (Rotation::Size, None | Some(0)) => Err(Error::invalid(format!(
                "file output {}: `rotation = \"size\"` needs `max_bytes` > 0",
                self.path.display()
            ))),
            (Rotation::Size, Some(_)) => Ok(()),
            (_, Some(_)) => Err(Error::invalid(format!(
                "file output {}: `max_bytes` only applies to `rotation = \"size\"`",
                self.path.display()
            ))),
            (_, None) => Ok(()),
        }
    }
}

/// When a file output starts a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    /// One file that grows forever.
    #[default]
    Never,
    /// When the next record would make the file larger than `max_bytes`.
    Size,
    /// At the first record of each new UTC hour.
    Hourly,
    /// At the first record of each new UTC day.
    Daily,
}

/// The bounded buffer between logging threads and the writer thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BufferConfig {
    /// How many formatted records may wait for the writer thread.
    pub capacity: usize,
    /// What a logging thread does when the buffer is full.
    pub on_full: OnFull,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            capacity: 8192,
            on_full: OnFull::Drop,
        }
    }
}

/// The policy when the buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFull {
    /// Drop the new record and count it; logging never waits for the output.
    /// The count is available from [`LogGuard::dropped`](crate::LogGuard::dropped)
    /// and is written as a `WARN` record by the writer thread once it has
    /// room (when it catches up, at every flush and when the guard drops).
    #[default]
    Drop,
    /// Wait until the writer thread makes room; nothing is lost, but a
    /// stalled output stalls the threads that log.
    Block,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_apply_and_reject_bad_values() {
        let mut config = LogConfig::default();
        config
            .apply_env_from(|name| match name {
                ENV_FILTER => Some("debug,kube=warn".into()),
                ENV_FORMAT => Some("json".into()),
                ENV_BACKEND => Some("slog".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.filter, "debug,kube=warn");
        assert_eq!(config.format, Format::Json);
        assert_eq!(config.backend, Backend::Slog);

        let before = config.clone();
        let err = config
            .apply_env_from(|name| (name == ENV_BACKEND).then(|| "zerolog".to_owned()))
            .unwrap_err();
        assert_eq!(err.kind(), kubepkg_util::ErrorKind::Invalid);
        assert!(err.to_string().contains(ENV_BACKEND), "{err}");
        assert_eq!(config, before, "a failed override changes nothing");
    }

    #[test]
    fn validate_rejects_size_rotation_without_size() {
        let mut file = FileOutput::new("/tmp/x.log");
        file.rotation = Rotation::Size;
        let config = LogConfig {
            outputs: vec![Output::File(file)],
            ..LogConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("max_bytes")
        );
    }
}
