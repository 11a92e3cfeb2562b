//! Loading a [`PlatformConfig`] with figment: the file, the `KUBEPKG_`
//! environment layer, and turning figment's errors into
//! [`Error::Config`]s that name the setting and its source without
//! showing its value.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};
use figment::providers::{Format as _, Toml, Yaml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use kubepkg_k8s_api::ClusterConfig;
use kubepkg_storage_api::{QueueConfig, StorageConfig};
use kubepkg_util::secret::Secret;

use super::{ENV_PREFIX, PlatformConfig};
use crate::{Error, Result};

/// The name of the environment layer's figment metadata.
const ENV_LAYER: &str = "environment variable";

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Toml,
    Yaml,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Toml => "TOML",
            Format::Yaml => "YAML",
        }
    }
}

/// The file layer: a file on disk or a document given as text.
pub(super) struct FileInput {
    path: Option<PathBuf>,
    text: Secret<String>,
    format: Format,
}

impl FileInput {
    /// Reads `path`, choosing the format by its extension.
    pub(super) fn path(path: &Path) -> Result<FileInput> {
        let shown = path.display().to_string();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let format = match ext.as_deref() {
            Some("toml") => Format::Toml,
            Some("yaml" | "yml") => Format::Yaml,
            _ => {
                return Err(Error::config(
                    shown,
                    "unknown config file extension: use .toml, .yaml or .yml",
                ));
            }
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(&shown, format!("cannot read the config file: {e}")))?;
        Ok(FileInput {
            path: Some(path.to_path_buf()),
            text: Secret::new(text),
            format,
        })
    }

    /// A document given as text.
    pub(super) fn text(text: &str, format: Format) -> FileInput {
        FileInput {
            path: None,
            text: Secret::new(text.to_owned()),
            format,
        }
    }

    /// How errors name this layer when no key is involved.
    fn describe(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => format!("the {} text", self.format.name()),
        }
    }
}

impl Provider for FileInput {
    fn metadata(&self) -> Metadata {
        let name = format!("{} file", self.format.name());
        match &self.path {
            Some(p) => Metadata::from(name, p.as_path()),
            None => Metadata::named(format!("{} text", self.format.name())),
        }
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        let text = self.text.expose();
        // A file holding only comments is an empty configuration (YAML
        // would otherwise read it as a null document).
        let blank = text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        if blank {
            return Ok(Map::new());
        }
        match self.format {
            Format::Toml => Toml::string(text).data(),
            Format::Yaml => Yaml::string(text).data(),
        }
    }
}

/// One `KUBEPKG_` variable that overrides a setting.
#[derive(Clone)]
struct EnvEntry {
    /// The variable's name as given.
    var: String,
    /// The setting's path, lower case.
    path: Vec<String>,
    value: Secret<String>,
    /// Read as a plain string rather than figment's typed syntax (set when
    /// the setting turned out to need a string).
    raw: bool,
}

impl EnvEntry {
    fn value(&self) -> Value {
        if self.raw {
            Value::from(self.value.expose().clone())
        } else {
            match self.value.expose().parse::<Value>() {
                Ok(v) => v,
                Err(never) => match never {},
            }
        }
    }
}

/// The environment layer.
#[derive(Clone, Default)]
struct EnvLayer {
    entries: Vec<EnvEntry>,
}

impl EnvLayer {
    /// Picks the overrides out of `env`: names with the prefix that hold a
    /// `__` (or are `KUBEPKG_DATA_DIR`).
    fn new(env: &[(String, String)]) -> Result<EnvLayer> {
        let mut entries: Vec<EnvEntry> = Vec::new();
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if !rest.contains("__") && rest != "DATA_DIR" {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            if path.iter().any(String::is_empty) {
                return Err(Error::config(
                    var.as_str(),
                    "has an empty key between `__` separators",
                ));
            }
            entries.push(EnvEntry {
                var: var.clone(),
                path,
                value: Secret::new(value.clone()),
                raw: false,
            });
        }
        entries.sort_by(|a, b| a.var.cmp(&b.var));
        for (i, a) in entries.iter().enumerate() {
            for b in &entries[i + 1..] {
                if a.path == b.path {
                    return Err(Error::config(
                        b.var.as_str(),
                        format!("sets the same setting as {}", a.var),
                    ));
                }
                let (short, long) = if a.path.len() < b.path.len() {
                    (a, b)
                } else {
                    (b, a)
                };
                if long.path.starts_with(&short.path) {
                    return Err(Error::config(
                        long.var.as_str(),
                        format!(
                            "sets a key inside {}, which {} sets to a single value",
                            short.path.join("."),
                            short.var
                        ),
                    ));
                }
            }
        }
        Ok(EnvLayer { entries })
    }

    /// The variable that set exactly `path`, if one did.
    fn var_for(&self, path: &[String]) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.path == path)
            .map(|e| e.var.as_str())
    }

    /// The variables that set something at or below `path`.
    fn vars_under(&self, path: &[String]) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.path.starts_with(path))
            .map(|e| e.var.as_str())
            .collect()
    }

    /// When `err` says a string was expected where a variable's typed value
    /// (a number, a boolean, an array...) landed, marks that variable to be
    /// read as a plain string and returns true: the caller extracts again.
    fn coerce_to_string(&mut self, err: &figment::Error) -> bool {
        let Kind::InvalidType(actual, expected) = &err.kind else {
            return false;
        };
        if !expected.contains("string") {
            return false;
        }
        let candidates: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.raw && e.path.starts_with(&err.path))
            .filter(|(_, e)| same_value(actual, &e.value()))
            .map(|(i, _)| i)
            .collect();
        let exact = candidates
            .iter()
            .copied()
            .find(|&i| self.entries[i].path == err.path);
        match exact.or_else(|| candidates.first().copied()) {
            Some(i) => {
                self.entries[i].raw = true;
                true
            }
            None => false,
        }
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_LAYER)
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        let mut dict = Dict::new();
        for entry in &self.entries {
            insert(&mut dict, &entry.path, entry.value());
        }
        let mut map = Map::new();
        map.insert(Profile::Default, dict);
        Ok(map)
    }
}

/// Inserts `value` at `path` (checked to be non-empty and free of
/// conflicts by [`EnvLayer::new`]).
fn insert(dict: &mut Dict, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert(first.clone(), value);
        return;
    }
    let child = dict
        .entry(first.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    if let Value::Dict(_, child) = child {
        insert(child, rest, value);
    }
}

/// Whether the value figment complained about is this one.
fn same_value(actual: &Actual, value: &Value) -> bool {
    match (actual, value) {
        (Actual::Unsigned(a), Value::Num(_, n)) => n.to_u128() == Some(*a),
        (Actual::Signed(a), Value::Num(_, n)) => n.to_i128() == Some(*a),
        (Actual::Float(a), Value::Num(_, n)) => n.to_f64() == Some(*a),
        (Actual::Bool(a), Value::Bool(_, b)) => a == b,
        (Actual::Char(a), Value::Char(_, b)) => a == b,
        (Actual::Str(a), Value::String(_, b)) => a == b,
        (Actual::Seq, Value::Array(..)) => true,
        (Actual::Map, Value::Dict(..)) => true,
        _ => false,
    }
}

/// The process environment as UTF-8 pairs (other entries cannot be
/// overrides: every setting is UTF-8).
pub(super) fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Loads, checks for keys serde lets through, applies the logging
/// overrides and validates.
pub(super) fn extract(
    file: Option<FileInput>,
    env: Vec<(String, String)>,
) -> Result<PlatformConfig> {
    let mut layer = EnvLayer::new(&env)?;
    loop {
        let mut figment = Figment::new();
        if let Some(file) = &file {
            figment = figment.merge(file);
        }
        let figment = figment.merge(&layer);
        match figment.extract::<PlatformConfig>() {
            Ok(mut config) => {
                let ctx = Context {
                    figment: &figment,
                    layer: &layer,
                    file: file.as_ref(),
                };
                ctx.check_unlisted_keys(&config)?;
                let vars: BTreeMap<&str, &str> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                config
                    .log
                    .apply_env_from(|name| vars.get(name).map(|v| (*v).to_owned()))
                    .map_err(|e| Error::config("log", e.to_string()))?;
                config.validate().map_err(|e| ctx.locate(e))?;
                return Ok(config);
            }
            Err(err) => {
                let first = err.into_iter().next();
                let Some(first) = first else {
                    return Err(Error::config("config", "could not be read"));
                };
                if layer.coerce_to_string(&first) {
                    continue;
                }
                let ctx = Context {
                    figment: &figment,
                    layer: &layer,
                    file: file.as_ref(),
                };
                return Err(ctx.describe(first));
            }
        }
    }
}

/// What error messages need to say where a value came from.
struct Context<'a> {
    figment: &'a Figment,
    layer: &'a EnvLayer,
    file: Option<&'a FileInput>,
}

impl Context<'_> {
    /// The value at `path` in the merged configuration.
    fn value_at(&self, path: &[String]) -> Option<Value> {
        let (first, rest) = path.split_first()?;
        let mut value = self.figment.find_value(first).ok()?;
        for key in rest {
            value = match value {
                Value::Dict(_, mut dict) => dict.remove(key)?,
                _ => return None,
            };
        }
        Some(value)
    }

    /// " in <file>" / " from KUBEPKG_..." for the value at `path`, else for
    /// the metadata figment attached to the error.
    fn origin(&self, path: &[String], fallback: Option<&Metadata>) -> String {
        let own = self
            .value_at(path)
            .and_then(|v| self.figment.get_metadata(v.tag()).cloned());
        match own.as_ref().or(fallback) {
            Some(md) => self.describe_metadata(md, path),
            None => String::new(),
        }
    }

    fn describe_metadata(&self, md: &Metadata, path: &[String]) -> String {
        if md.name == ENV_LAYER {
            if let Some(var) = self.layer.var_for(path) {
                return format!(" (from environment variable {var})");
            }
            let vars = self.layer.vars_under(path);
            if !vars.is_empty() {
                return format!(" (from environment variable {})", vars.join(", "));
            }
            return " (from the environment)".to_owned();
        }
        match &md.source {
            Some(Source::File(p)) => format!(" (in {})", p.display()),
            _ => format!(" (in the {})", md.name),
        }
    }

    /// Turns figment's error into ours, never quoting the value.
    fn describe(&self, err: figment::Error) -> Error {
        let path = err.path.clone();
        let md = err.metadata.as_ref();
        let joined = |p: &[String]| {
            if p.is_empty() {
                self.file
                    .map(FileInput::describe)
                    .unwrap_or_else(|| "config".to_owned())
            } else {
                p.join(".")
            }
        };
        match &err.kind {
            Kind::UnknownField(field, expected) => {
                // figment's path usually ends with the key already; serde's
                // buffered (tagged, flattened) sections stop at the table.
                let mut p = path.clone();
                if p.last() != Some(field) {
                    p.push(field.clone());
                }
                let origin = self.origin(&p, md);
                let hint = if expected.is_empty() {
                    "this section takes no keys".to_owned()
                } else {
                    format!("expected one of: {}", expected.join(", "))
                };
                Error::config(joined(&p), format!("unknown key{origin}; {hint}"))
            }
            Kind::MissingField(field) => {
                let mut p = path.clone();
                p.push(field.to_string());
                let origin = match md {
                    Some(md) => self.describe_metadata(md, &path),
                    None => String::new(),
                };
                Error::config(joined(&p), format!("is required but missing{origin}"))
            }
            Kind::DuplicateField(field) => {
                let mut p = path.clone();
                p.push((*field).to_owned());
                let origin = self.origin(&p, md);
                Error::config(joined(&p), format!("is given more than once{origin}"))
            }
            Kind::InvalidType(actual, expected) => {
                let path = self.refine(&path, actual);
                let origin = self.origin(&path, md);
                Error::config(
                    joined(&path),
                    format!("expected {expected}, found {}{origin}", kind_of(actual)),
                )
            }
            Kind::InvalidValue(actual, expected) => {
                let path = self.refine(&path, actual);
                let origin = self.origin(&path, md);
                Error::config(
                    joined(&path),
                    format!(
                        "invalid value ({}): expected {expected}{origin}",
                        kind_of(actual)
                    ),
                )
            }
            Kind::InvalidLength(len, expected) => {
                let origin = self.origin(&path, md);
                Error::config(
                    joined(&path),
                    format!("has {len} elements, expected {expected}{origin}"),
                )
            }
            Kind::UnknownVariant(variant, expected) => {
                let origin = self.origin(&path, md);
                Error::config(
                    joined(&path),
                    format!(
                        "unknown variant {variant:?}{origin}; expected one of: {}",
                        expected.join(", ")
                    ),
                )
            }
            Kind::Message(message) => {
                let origin = if path.is_empty() {
                    String::new()
                } else {
                    self.origin(&path, md)
                };
                Error::config(joined(&path), format!("{}{origin}", sanitize(message)))
            }
            Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => {
                let origin = self.origin(&path, md);
                Error::config(joined(&path), format!("number out of range{origin}"))
            }
            Kind::Unsupported(actual) => {
                let origin = self.origin(&path, md);
                Error::config(
                    joined(&path),
                    format!("{} is not supported here{origin}", kind_of(actual)),
                )
            }
            Kind::UnsupportedKey(actual, need) => {
                let origin = self.origin(&path, md);
                Error::config(
                    joined(&path),
                    format!("keys must be {need}, found {}{origin}", kind_of(actual)),
                )
            }
        }
    }

    /// When serde raised the error for a whole table (it buffers tagged
    /// and flattened sections, losing the key), the key below `path` that
    /// holds exactly the offending value, if only one does.
    fn refine(&self, path: &[String], actual: &Actual) -> Vec<String> {
        fn find(value: &Value, actual: &Actual, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            if let Value::Dict(_, dict) = value {
                for (key, child) in dict {
                    at.push(key.clone());
                    if same_value(actual, child) {
                        out.push(at.clone());
                    }
                    if at.len() < 8 {
                        find(child, actual, at, out);
                    }
                    at.pop();
                }
            }
        }
        let Some(value) = self.value_at(path) else {
            return path.to_vec();
        };
        if same_value(actual, &value) {
            return path.to_vec();
        }
        let mut found = Vec::new();
        find(&value, actual, &mut path.to_vec(), &mut found);
        match found.as_slice() {
            [only] => only.clone(),
            _ => path.to_vec(),
        }
    }

    /// Adds the origin of a validation error's setting to its message.
    fn locate(&self, err: Error) -> Error {
        match err {
            Error::Config { setting, message } => {
                let path: Vec<String> = setting.split('.').map(str::to_owned).collect();
                let origin = match self.value_at(&path) {
                    Some(_) => self.origin(&path, None),
                    None => String::new(),
                };
                Error::Config {
                    setting,
                    message: format!("{message}{origin}"),
                }
            }
            other => other,
        }
    }

    /// Keys serde cannot reject itself: the `kubernetes` section
    /// (k8s-api's `ClusterConfig` flattens its source, which rules out
    /// `deny_unknown_fields`) and the `memory` backends of object stores and
    /// queues (unit variants ignore extra keys).
    fn check_unlisted_keys(&self, config: &PlatformConfig) -> Result<()> {
        let section = |path: &[String]| match self.value_at(path) {
            Some(Value::Dict(_, dict)) => Some(dict),
            _ => None,
        };
        if config.kubernetes.is_some() {
            let path = vec!["kubernetes".to_owned()];
            if let Some(dict) = section(&path) {
                let source = dict
                    .get("source")
                    .and_then(|v| v.as_str().map(str::to_owned));
                if let Some(known) = source.as_deref().and_then(kubernetes_keys) {
                    self.reject_unlisted(&path, &dict, &known)?;
                }
            }
        }
        let only_backend: BTreeSet<String> = ["backend".to_owned()].into();
        for (name, store) in &config.object_stores {
            if matches!(store, StorageConfig::Memory) {
                let path = vec!["object_stores".to_owned(), name.clone()];
                if let Some(dict) = section(&path) {
                    self.reject_unlisted(&path, &dict, &only_backend)?;
                }
            }
        }
        for (name, queue) in &config.queues {
            if matches!(queue, QueueConfig::Memory) {
                let path = vec!["queues".to_owned(), name.clone()];
                if let Some(dict) = section(&path) {
                    self.reject_unlisted(&path, &dict, &only_backend)?;
                }
            }
        }
        Ok(())
    }

    fn reject_unlisted(
        &self,
        path: &[String],
        dict: &Dict,
        known: &BTreeSet<String>,
    ) -> Result<()> {
        for key in dict.keys() {
            if !known.contains(key) {
                let mut p = path.to_vec();
                p.push(key.clone());
                let origin = self.origin(&p, None);
                let expected: Vec<&str> = known.iter().map(String::as_str).collect();
                return Err(Error::config(
                    p.join("."),
                    format!(
                        "unknown key{origin}; expected one of: {}",
                        expected.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The keys a `kubernetes` section with `source = <source>` may hold,
/// learnt from k8s-api's own serialisation of a config of that source with
/// every optional field set, so the list follows that crate. `None` for a
/// source this list does not know (then nothing is checked).
fn kubernetes_keys(source: &str) -> Option<BTreeSet<String>> {
    let samples = [
        ClusterConfig::default_chain().with_context("c"),
        ClusterConfig::in_cluster(),
        ClusterConfig::kubeconfig_file("f").with_context("c"),
        ClusterConfig::kubeconfig_text("t").with_context("c"),
        ClusterConfig::kubeconfig_base64("d").with_context("c"),
        ClusterConfig::token("https://h", Some("ca".to_owned()), "t"),
    ];
    samples.into_iter().find_map(|sample| {
        let value = serde_json::to_value(sample.with_namespace("n")).ok()?;
        let object = value.as_object()?;
        (object.get("source")?.as_str()? == source).then(|| object.keys().cloned().collect())
    })
}

/// A value's type in words, never the value itself.
fn kind_of(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) => "a character",
        Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit => "an empty value",
        Actual::Option => "an optional value",
        Actual::Seq => "an array",
        Actual::Map => "a table",
        Actual::NewtypeStruct => "a value",
        Actual::Enum
        | Actual::UnitVariant
        | Actual::NewtypeVariant
        | Actual::TupleVariant
        | Actual::StructVariant => "an enum",
        Actual::Other(_) => "another kind of value",
    }
}

/// A parser's message without the excerpt of the document some parsers
/// add (TOML quotes the offending line, which may hold a secret): the lines
/// that are part of a `N | text` / `  | ^` block are dropped.
fn sanitize(message: &str) -> String {
    let excerpt = |line: &str| {
        let t = line.trim_start();
        if t.starts_with('|') {
            return true;
        }
        match t.split_once('|') {
            Some((gutter, _)) => {
                let gutter = gutter.trim();
                !gutter.is_empty() && gutter.chars().all(|c| c.is_ascii_digit())
            }
            None => false,
        }
    };
    let kept: Vec<&str> = message
        .lines()
        .filter(|l| !excerpt(l))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    kept.join(": ")
}
