//! `LogConfig` from TOML and YAML, defaults and typed errors.

use kubepkg_log_api::{
    Backend, BufferConfig, FileOutput, Format, LogConfig, OnFull, Output, Rotation,
};
use kubepkg_util::ErrorKind;

fn full_expected() -> LogConfig {
    let mut daily = FileOutput::new("/var/log/app/app.log");
    daily.rotation = Rotation::Daily;
    daily.keep = 7;
    let mut sized = FileOutput::new("/var/log/app/big.log");
    sized.rotation = Rotation::Size;
    sized.max_bytes = Some(10_485_760);
    sized.keep = 3;
    LogConfig {
        backend: Backend::Slog,
        filter: "info,kube=warn,my_crate::db=debug".to_owned(),
        format: Format::Json,
        outputs: vec![Output::Stderr, Output::File(daily), Output::File(sized)],
        buffer: BufferConfig {
            capacity: 1024,
            on_full: OnFull::Block,
        },
    }
}

#[test]
fn toml_section_parses() {
    let text = r#"
        backend = "slog"
        filter = "info,kube=warn,my_crate::db=debug"
        format = "json"
        outputs = [
          "stderr",
          { type = "file", path = "/var/log/app/app.log", rotation = "daily", keep = 7 },
          { type = "file", path = "/var/log/app/big.log", rotation = "size", max_bytes = 10485760, keep = 3 },
        ]
        buffer = { capacity = 1024, on_full = "block" }
    "#;
    assert_eq!(LogConfig::from_toml_str(text).unwrap(), full_expected());
    // Also as part of a bigger application config, through plain serde.
    #[derive(serde::Deserialize)]
    struct App {
        log: LogConfig,
    }
    let app: App = toml::from_str(&format!("[log]\n{text}")).unwrap();
    assert_eq!(app.log, full_expected());
}

#[test]
fn yaml_section_parses() {
    let text = r#"
backend: slog
level: info,kube=warn,my_crate::db=debug
format: json
outputs:
  - stderr
  - type: file
    path: /var/log/app/app.log
    rotation: daily
  - { type: file, path: /var/log/app/big.log, rotation: size, max_bytes: 10485760, keep: 3 }
buffer:
  capacity: 1024
  on_full: block
"#;
    assert_eq!(LogConfig::from_yaml_str(text).unwrap(), full_expected());
}

#[test]
fn empty_section_is_the_default() {
    let config = LogConfig::from_toml_str("").unwrap();
    assert_eq!(config, LogConfig::default());
    assert_eq!(config.backend, Backend::Tracing);
    assert_eq!(config.filter, "info");
    assert_eq!(config.outputs, vec![Output::Stdout]);
    assert_eq!(config.buffer.on_full, OnFull::Drop);
    // Round trip through serde.
    let json = serde_json::to_string(&full_expected()).unwrap();
    let back: LogConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, full_expected());
}

#[test]
fn bad_sections_are_invalid() {
    let cases = [
        ("backend = \"zerolog\"", "zerolog"),
        ("format = \"xml\"", "xml"),
        ("filter = \"info,kube=noisy\"", "kube=noisy"),
        ("outputs = [\"syslog\"]", "outputs"),
        ("colour = true", "colour"),
        (
            "outputs = [{ type = \"file\", path = \"/x.log\", rotation = \"size\" }]",
            "max_bytes",
        ),
        ("outputs = []", "outputs"),
    ];
    for (text, mention) in cases {
        let err = LogConfig::from_toml_str(text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{text}");
        assert!(err.to_string().contains(mention), "{text}: {err}");
    }
    let err = LogConfig::from_yaml_str("backend: zerolog").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("zerolog"), "{err}");
}
