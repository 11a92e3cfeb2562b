//! `test`, `demo`, `bench`, `fuzz`.

use crate::env;
use crate::sh::{self, Res};
use std::process::Command;
use std::time::Instant;

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(sh::workspace_root());
    c
}

fn step(name: &str, cmd: &mut Command) -> Res {
    let t = Instant::now();
    eprintln!("xtask: == {name}: {}", sh::describe(cmd));
    sh::run(cmd).map_err(|e| format!("{name} failed: {e}"))?;
    eprintln!("xtask: == {name} ok in {:.1?}", t.elapsed());
    Ok(())
}

/// A step done by xtask itself rather than by a command.
fn step_in(name: &str, f: impl FnOnce() -> Res) -> Res {
    let t = Instant::now();
    eprintln!("xtask: == {name}");
    f().map_err(|e| format!("{name} failed: {e}"))?;
    eprintln!("xtask: == {name} ok in {:.1?}", t.elapsed());
    Ok(())
}

/// `cargo xtask test [--down]`: the README's test command and what CI runs.
pub fn test(args: &[&str]) -> Res {
    let down = match args {
        [] => false,
        ["--down"] => true,
        _ => return Err("usage: cargo xtask test [--down]".into()),
    };
    let t = Instant::now();
    env::up(&[])?;
    let result = (|| {
        // Servers that run as another user, from a clone under a 0700 directory.
        step_in("check-users", env::check_users)?;
        step("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
        step(
            "clippy",
            cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
        step(
            "doc",
            cargo().env("RUSTDOCFLAGS", "-D warnings").args([
                "doc",
                "--workspace",
                "--no-deps",
                "--all-features",
            ]),
        )?;
        step(
            "test",
            cargo().args(["test", "--workspace", "--all-features"]),
        )
    })();
    if down {
        env::down()?;
    }
    result?;
    eprintln!("xtask: all checks passed in {:.1?}", t.elapsed());
    Ok(())
}

/// `cargo xtask demo`: bring up the environment, start the server, run the
/// HTTP tour against it (see `demo.rs`).
pub fn demo(args: &[&str]) -> Res {
    if !args.is_empty() {
        return Err("usage: cargo xtask demo".into());
    }
    crate::demo::run()
}

/// `cargo xtask bench NAME`.
pub fn bench(args: &[&str]) -> Res {
    crate::benches::run(args)
}

/// `cargo xtask fuzz [SECONDS]`: every target of `fuzz/` for a bounded time.
pub fn fuzz(args: &[&str]) -> Res {
    let secs: u64 = match args {
        [] => 30,
        [s] => s
            .parse()
            .map_err(|_| format!("SECONDS must be a number, got {s:?}"))?,
        _ => return Err("usage: cargo xtask fuzz [SECONDS]".into()),
    };
    if !sh::succeeds(Command::new("cargo").args(["fuzz", "--version"])) {
        step(
            "install cargo-fuzz",
            Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]),
        )?;
    }
    let root = sh::workspace_root();
    let list = sh::output(
        Command::new("cargo")
            .current_dir(&root)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "list"]),
    )?;
    for target in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // New inputs go to a scratch corpus under target/ (libFuzzer writes to
        // the first directory); the committed seeds in fuzz/corpus are read only.
        let scratch = root.join("target").join("fuzz-corpus").join(target);
        sh::mkdir(&scratch)?;
        let seeds = root.join("fuzz").join("corpus").join(target);
        // Stable rustc with RUSTC_BOOTSTRAP accepts the sanitizer flags cargo-fuzz passes.
        step(
            &format!("fuzz {target}"),
            Command::new("cargo")
                .current_dir(&root)
                .env("RUSTC_BOOTSTRAP", "1")
                .args(["fuzz", "run", target])
                .arg(&scratch)
                .arg(&seeds)
                .args(["--", &format!("-max_total_time={secs}")]),
        )?;
    }
    Ok(())
}
