//! Guard: the backend tests of this crate must never be compiled out in
//! silence. The crate's own dev-dependency on itself turns on
//! `distribution`, `harbor` and `docker` for every test build, so a plain
//! `cargo test -p kubepkg-image-api` runs the fixture and server-backed
//! tests; if that line is ever dropped, this test says so.

#[test]
fn backend_tests_are_compiled_in() {
    let missing: Vec<&str> = [
        ("distribution", cfg!(feature = "distribution")),
        ("harbor", cfg!(feature = "harbor")),
        ("docker", cfg!(feature = "docker")),
    ]
    .into_iter()
    .filter_map(|(name, on)| (!on).then_some(name))
    .collect();
    assert!(
        missing.is_empty(),
        "features {missing:?} are off, so the tests needing them were skipped; \
         run `cargo test -p kubepkg-image-api --all-features` (or restore the \
         crate's dev-dependency on itself in Cargo.toml)"
    );
}
