//! Go programs the environment and the benchmarks need, built once from the Go
//! module proxy and cached under `~/.cache/kubepkg/bin/<name>-<version>/`.

use crate::sh::{self, Res};
use std::path::PathBuf;
use std::process::Command;

/// A Go program (or several from one module) pinned to a version.
pub struct GoTool {
    /// Cache key, e.g. `kubernetes-v1.35.4`.
    pub key: &'static str,
    /// Binaries the build produces.
    pub bins: &'static [&'static str],
    /// How to build it.
    pub how: How,
}

/// Where the source comes from.
pub enum How {
    /// `go install PKG@VERSION` for each listed package.
    Install(&'static [&'static str]),
    /// `go build` of these packages inside a module directory under `xtask/go/`.
    Module {
        dir: &'static str,
        pkgs: &'static [&'static str],
    },
}

/// Kubernetes release the control plane is built from (k8s-openapi feature `v1_35`).
pub const KUBERNETES_VERSION: &str = "v1.35.4";

pub const KUBERNETES: GoTool = GoTool {
    key: "kubernetes-v1.35.4",
    bins: &[
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ],
    how: How::Module {
        dir: "xtask/go/kubernetes",
        pkgs: &[
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
        ],
    },
};

pub const KUBECTL: GoTool = GoTool {
    key: "kubectl-v1.35.4",
    bins: &["kubectl"],
    how: How::Module {
        dir: "xtask/go/kubernetes",
        pkgs: &["k8s.io/kubernetes/cmd/kubectl"],
    },
};

pub const KWOK: GoTool = GoTool {
    key: "kwok-v0.7.0",
    bins: &["kwok"],
    how: How::Install(&["sigs.k8s.io/kwok/cmd/kwok@v0.7.0"]),
};

/// MinIO publishes no semver tags; this pseudo-version is its 2026-02-12 head.
pub const MINIO: GoTool = GoTool {
    key: "minio-20260212201848",
    bins: &["minio"],
    how: How::Install(&["github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"]),
};

impl GoTool {
    /// The cache directory holding this tool's binaries.
    pub fn dir(&self) -> PathBuf {
        sh::cache_dir().join("bin").join(self.key)
    }

    /// Path of one of its binaries.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    /// Whether every binary is already in the cache.
    pub fn is_built(&self) -> bool {
        self.bins.iter().all(|b| self.bin(b).is_file())
    }

    /// Builds into the cache unless already there.
    pub fn ensure(&self) -> Res {
        if self.is_built() {
            return Ok(());
        }
        if !sh::on_path("go") {
            return Err(format!(
                "building {}: the `go` toolchain is not on PATH (install Go 1.25 or newer)",
                self.key
            ));
        }
        let dir = self.dir();
        let tmp = dir.with_extension("partial");
        let _ = std::fs::remove_dir_all(&tmp);
        sh::mkdir(&tmp)?;
        let log = sh::cache_dir()
            .join("logs")
            .join(format!("build-{}.log", self.key));
        sh::mkdir(log.parent().unwrap_or(&tmp))?;
        eprintln!(
            "xtask: building {} with Go (first time only, cached in {}; log {})",
            self.key,
            dir.display(),
            log.display()
        );
        let started = std::time::Instant::now();
        let mut cmds: Vec<Command> = Vec::new();
        match &self.how {
            How::Install(pkgs) => {
                for p in *pkgs {
                    let mut c = go();
                    c.env("GOBIN", &tmp)
                        .args(["install", "-trimpath", "-ldflags=-s -w", p]);
                    cmds.push(c);
                }
            }
            How::Module { dir: mdir, pkgs } => {
                let mut c = go();
                c.current_dir(sh::workspace_root().join(mdir))
                    .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
                    .arg(format!("{}/", tmp.display()))
                    .args(*pkgs);
                cmds.push(c);
            }
        }
        for mut c in cmds {
            let desc = sh::describe(&c);
            let logf = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| format!("opening {}: {e}", log.display()))?;
            let errf = logf.try_clone().map_err(|e| e.to_string())?;
            let status = c
                .stdout(logf)
                .stderr(errf)
                .status()
                .map_err(|e| format!("could not run `{desc}`: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "building {} failed: `{desc}` exited with {status}; log {}:\n{}",
                    self.key,
                    log.display(),
                    sh::tail(&log, 20)
                ));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir)
            .map_err(|e| format!("moving {} into place: {e}", dir.display()))?;
        eprintln!("xtask: built {} in {:.0?}", self.key, started.elapsed());
        Ok(())
    }
}

fn go() -> Command {
    let mut c = Command::new("go");
    // Never download another toolchain; use the machine's Go.
    c.env("GOTOOLCHAIN", "local").env("GOFLAGS", "-mod=mod");
    c
}
