//! Python tools the tests run, each pinned and in a virtualenv of its own
//! under the cache directory (outside the clone, kept across clones):
//! schemathesis, which the server's tests run against `/openapi.json`.

use crate::sh::{self, Res};
use std::path::PathBuf;
use std::process::Command;

/// The schemathesis release the tests are written against.
pub const SCHEMATHESIS: &str = "4.32.5";

/// Its virtualenv.
fn schemathesis_dir() -> PathBuf {
    sh::cache_dir()
        .join("py")
        .join(format!("schemathesis-{SCHEMATHESIS}"))
}

/// The `st` command, once [`ensure`] installed it.
pub fn schemathesis() -> Option<PathBuf> {
    let dir = schemathesis_dir();
    dir.join(".complete")
        .is_file()
        .then(|| dir.join("bin").join("st"))
}

/// Installs schemathesis from PyPI into its virtualenv unless it is there.
/// A virtualenv is not relocatable, so it is built in place and marked
/// complete only after the install succeeded; a half-built one is rebuilt.
pub fn ensure() -> Res {
    if schemathesis().is_some() {
        return Ok(());
    }
    let dir = schemathesis_dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    eprintln!(
        "xtask: installing schemathesis {SCHEMATHESIS} from PyPI into {}",
        dir.display()
    );
    if !sh::on_path("python3") {
        return Err(
            "python3 is not on PATH (the server's schemathesis test needs it; \
                    install Debian's python3 and python3-venv)"
                .into(),
        );
    }
    sh::run(Command::new("python3").args(["-m", "venv"]).arg(&dir)).map_err(|e| {
        format!("creating a virtualenv for schemathesis (is python3-venv installed?): {e}")
    })?;
    sh::run(
        Command::new(dir.join("bin").join("pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .arg(format!("schemathesis=={SCHEMATHESIS}")),
    )
    .map_err(|e| format!("installing schemathesis {SCHEMATHESIS} from PyPI: {e}"))?;
    sh::run(Command::new(dir.join("bin").join("st")).arg("--version"))?;
    sh::write(&dir.join(".complete"), SCHEMATHESIS)
}
