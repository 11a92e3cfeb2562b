//! Debian packages the environment needs, installed with apt-get when missing.

use crate::sh::{self, Res};
use std::path::Path;
use std::process::Command;

/// (package, a file it provides)
const PACKAGES: &[(&str, &str)] = &[
    ("docker.io", "/usr/sbin/dockerd"),
    ("docker-registry", "/usr/bin/docker-registry"),
    ("rabbitmq-server", "/usr/lib/rabbitmq/bin/rabbitmq-server"),
    ("postgresql", "/usr/bin/pg_ctlcluster"),
    ("busybox-static", "/bin/busybox"),
    ("apache2-utils", "/usr/bin/htpasswd"),
    ("openssl", "/usr/bin/openssl"),
    ("curl", "/usr/bin/curl"),
    // peak-RSS measurements of the benchmarks
    ("time", "/usr/bin/time"),
    // the load generator of the server benchmark
    ("wrk", "/usr/bin/wrk"),
];

/// Installs whichever packages are missing.
pub fn ensure() -> Res {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, f)| !Path::new(f).exists())
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return busybox_is_static();
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    let apt = |args: &[&str]| {
        let mut c = Command::new("apt-get");
        c.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        c
    };
    sh::run(&mut apt(&["update", "-qq"])).map_err(|e| {
        format!(
            "apt-get update (needed to install {}): {e}",
            missing.join(" ")
        )
    })?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing.iter().copied());
    sh::run(&mut apt(&args)).map_err(|e| {
        format!(
            "installing {} with apt-get failed (are you root?): {e}",
            missing.join(" ")
        )
    })?;
    busybox_is_static()
}

fn busybox_is_static() -> Res {
    // A dynamically linked busybox would not run in a FROM scratch image.
    let out = sh::output(Command::new("ldd").arg("/bin/busybox")).unwrap_or_default();
    if out.contains("=>") {
        return Err("/bin/busybox is dynamically linked; install Debian's busybox-static".into());
    }
    Ok(())
}

/// The PostgreSQL server binaries directory (`/usr/lib/postgresql/<major>/bin`).
pub fn postgres_bin() -> Res<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e} (install Debian's postgresql)"))?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_ctl").is_file())
        .collect();
    dirs.sort();
    dirs.pop().ok_or_else(|| {
        "no pg_ctl under /usr/lib/postgresql/*/bin (install Debian's postgresql)".into()
    })
}
