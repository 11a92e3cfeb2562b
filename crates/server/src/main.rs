//! `kubepkg-server`: the platform's REST service.
//!
//! ```sh
//! kubepkg-server [--config FILE]     # default: $KUBEPKG_CONFIG, else ./kubepkg.toml
//! ```
//!
//! Stops on SIGTERM or Ctrl-C, letting in-flight requests finish.

use kubepkg_platform::PlatformConfig;
use std::process::ExitCode;

const USAGE: &str = "usage: kubepkg-server [--config FILE]\n\
    \n\
    Serves the kubepkg platform over HTTP. The config file is the platform's\n\
    (TOML or YAML; the [server] section sets listen, limits and the bootstrap\n\
    token); KUBEPKG_<SECTION>__<KEY> variables override it. Default file:\n\
    $KUBEPKG_CONFIG, else ./kubepkg.toml.";

fn config_path() -> Result<std::path::PathBuf, String> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-c" => {
                path = Some(args.next().ok_or("--config needs a file")?.into());
            }
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(path
        .or_else(|| std::env::var_os("KUBEPKG_CONFIG").map(Into::into))
        .unwrap_or_else(|| "kubepkg.toml".into()))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let path = match config_path() {
        Ok(p) => p,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("kubepkg-server: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match PlatformConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kubepkg-server: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    match kubepkg_server::run(config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kubepkg-server: {e}");
            ExitCode::FAILURE
        }
    }
}
