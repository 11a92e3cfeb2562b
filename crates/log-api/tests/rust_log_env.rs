//! `LogConfig::apply_env` against the real process environment: `RUST_LOG`
//! when `KUBEPKG_LOG` is unset, `KUBEPKG_LOG` when both are set. One test
//! in its own binary, since it changes the process environment.

use kubepkg_log_api::LogConfig;

#[test]
fn the_process_environment_rust_log_then_kubepkg_log() {
    // SAFETY: the only test of this binary, so no other thread reads the
    // environment while it changes.
    unsafe {
        std::env::remove_var("KUBEPKG_LOG");
        std::env::set_var("RUST_LOG", "debug,hyper=warn");
    }
    let mut config = LogConfig::default();
    config.apply_env().expect("RUST_LOG parses");
    assert_eq!(config.filter, "debug,hyper=warn");

    unsafe {
        std::env::set_var("KUBEPKG_LOG", "warn,kube=info");
    }
    let mut config = LogConfig::default();
    config.apply_env().expect("KUBEPKG_LOG parses");
    assert_eq!(config.filter, "warn,kube=info");

    unsafe {
        std::env::remove_var("KUBEPKG_LOG");
        std::env::remove_var("RUST_LOG");
    }
    let mut config = LogConfig::default();
    config.apply_env().expect("nothing to parse");
    assert_eq!(config.filter, "info");
}
