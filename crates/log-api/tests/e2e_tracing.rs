//! End to end through the real global `init` with the `tracing` backend. Its
//! own test binary, so its own process: `init` is once per process.

mod common;

#[test]
fn tracing_backend_end_to_end() {
    common::end_to_end(kubepkg_log_api::Backend::Tracing);
}
