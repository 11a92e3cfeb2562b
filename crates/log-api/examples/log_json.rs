//! Installs JSON logging to stdout once for the process and writes through
//! all three logging families.
//!
//! ```sh
//! cargo run -p kubepkg-log-api --example log_json
//! KUBEPKG_LOG_BACKEND=slog cargo run -p kubepkg-log-api --example log_json
//! KUBEPKG_LOG=debug KUBEPKG_LOG_BACKEND=log cargo run -p kubepkg-log-api --example log_json
//! ```

use kubepkg_log_api::{Format, LogConfig, Output};

fn main() -> Result<(), kubepkg_log_api::Error> {
    let mut config = LogConfig {
        format: Format::Json,
        outputs: vec![Output::Stdout],
        ..LogConfig::default()
    };
    config.apply_env()?;
    let guard = kubepkg_log_api::init(&config)?;

    // tracing, with span context on the tracing backend.
    let span = tracing::info_span!("deploy", cluster = "dev", namespace = "shop");
    span.in_scope(|| {
        tracing::info!(replicas = 3, image = "shop:1.4.2", "rolling out");
        tracing::debug!("only with KUBEPKG_LOG=debug");
    });

    // log, as kube's and bollard's dependencies use it.
    log::warn!(target: "hyper::client", "connection reset, retrying");

    // slog, through the global logger.
    let slog = kubepkg_log_api::slog_logger().new(slog::o!("component" => "store"));
    slog::info!(slog, "bucket ready"; "bucket" => "artifacts", "objects" => 12);

    // Change the filter at run time.
    kubepkg_log_api::set_filter("debug")?;
    tracing::debug!("debug is on now");

    guard.flush()?;
    Ok(())
}
