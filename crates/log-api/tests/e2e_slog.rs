//! End to end through the real global `init` with the `slog` backend. Its
//! own test binary, so its own process: `init` is once per process.

mod common;

#[test]
fn slog_backend_end_to_end() {
    common::end_to_end(kubepkg_log_api::Backend::Slog);
}
