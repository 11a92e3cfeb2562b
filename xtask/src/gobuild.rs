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
    /// Extra `-X` link flags (version stamps).
    pub xflags: &'static [&'static str],
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

/// A module build has no git metadata: stamp the release into the binaries so
/// `/version` answers like a released server (clients check it).
const K8S_VERSION_FLAGS: &[&str] = &[
    "k8s.io/component-base/version.gitVersion=v1.35.4",
    "k8s.io/component-base/version.gitMajor=1",
    "k8s.io/component-base/version.gitMinor=35",
    "k8s.io/component-base/version.gitTreeState=clean",
    "k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z",
    "k8s.io/client-go/pkg/version.gitVersion=v1.35.4",
    "k8s.io/client-go/pkg/version.gitMajor=1",
    "k8s.io/client-go/pkg/version.gitMinor=35",
];

pub const KUBERNETES: GoTool = GoTool {
    key: "kubernetes-v1.35.4",
    bins: &[
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ],
    xflags: K8S_VERSION_FLAGS,
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
    xflags: K8S_VERSION_FLAGS,
    how: How::Module {
        dir: "xtask/go/kubernetes",
        pkgs: &["k8s.io/kubernetes/cmd/kubectl"],
    },
};

pub const KWOK: GoTool = GoTool {
    key: "kwok-v0.7.0",
    bins: &["kwok"],
    xflags: &[],
    how: How::Install(&["sigs.k8s.io/kwok/cmd/kwok@v0.7.0"]),
};

/// MinIO publishes no semver tags; this pseudo-version is its 2026-02-12 head.
pub const MINIO: GoTool = GoTool {
    key: "minio-20260212201848",
    bins: &["minio"],
    xflags: &[],
    how: How::Install(&["github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"]),
};

/// MinIO's client, the peer of the object-storage benchmarks.
pub const MC: GoTool = GoTool {
    key: "mc-20250313080218",
    bins: &["mc"],
    xflags: &[],
    how: How::Install(&["github.com/minio/mc@v0.0.0-20250313080218-cf909e1063a9"]),
};

/// go-containerregistry's `crane`, the peer of the registry benchmarks.
pub const CRANE: GoTool = GoTool {
    key: "crane-v0.22.1",
    bins: &["crane"],
    xflags: &[],
    how: How::Install(&["github.com/google/go-containerregistry/cmd/crane@v0.22.1"]),
};

/// Peers the benchmarks compare against.
pub const PEERS: &[&GoTool] = &[&KUBECTL, &MC, &CRANE];

impl GoTool {
    /// The cache directory holding this tool's binaries.
    pub fn dir(&self) -> PathBuf {
        sh::cache_dir().join("bin").join(self.key)
    }

    /// Path of one of its binaries.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    /// Whether every binary is already in the cache, built by this recipe.
    pub fn is_built(&self) -> bool {
        self.bins.iter().all(|b| self.bin(b).is_file())
            && std::fs::read_to_string(self.dir().join(".recipe"))
                .ok()
                .as_deref()
                == Some(&self.recipe())
    }

    fn ldflags(&self) -> String {
        let mut f = String::from("-ldflags=-s -w");
        for x in self.xflags {
            f.push_str(" -X ");
            f.push_str(x);
        }
        f
    }

    /// What was built and how: a change invalidates the cached binaries.
    fn recipe(&self) -> String {
        let what = match &self.how {
            How::Install(p) => p.join(" "),
            How::Module { dir, pkgs } => format!("{dir}: {}", pkgs.join(" ")),
        };
        format!("{}\n{what}\n{}\n", self.key, self.ldflags())
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
                        .args(["install", "-v", "-trimpath", &self.ldflags(), p]);
                    cmds.push(c);
                }
            }
            How::Module { dir: mdir, pkgs } => {
                let mut c = go();
                c.current_dir(sh::workspace_root().join(mdir))
                    .args(["build", "-v", "-trimpath", &self.ldflags(), "-o"])
                    .arg(format!("{}/", tmp.display()))
                    .args(*pkgs);
                cmds.push(c);
            }
        }
        for mut c in cmds {
            let desc = sh::describe(&c);
            let total = count_packages(&c);
            let logf = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| format!("opening {}: {e}", log.display()))?;
            let errf = logf.try_clone().map_err(|e| e.to_string())?;
            // `-v` (in the build's arguments) names each package as it is
            // compiled, on stderr: the progress lines count them against
            // the build's package list.
            let mut child = c
                .stdout(logf)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| format!("could not run `{desc}`: {e}"))?;
            if let Some(stderr) = child.stderr.take() {
                report_progress(self.key, stderr, errf, total, started);
            }
            let status = child
                .wait()
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
        sh::write(&tmp.join(".recipe"), self.recipe())?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir)
            .map_err(|e| format!("moving {} into place: {e}", dir.display()))?;
        eprintln!("xtask: built {} in {:.0?}", self.key, started.elapsed());
        Ok(())
    }
}

/// How many packages `cmd` (a `go build` / `go install`) compiles at
/// most: its packages and their dependencies, standard library included
/// (`go list -deps`; 0 when that cannot be asked). Also downloads the
/// modules, so the build after it only compiles.
fn count_packages(cmd: &Command) -> usize {
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // The package arguments: after the flags (and after `-o DIR`).
    let mut pkgs = Vec::new();
    let mut skip_next = false;
    for a in args.iter().skip(1) {
        if skip_next {
            skip_next = false;
        } else if a == "-o" {
            skip_next = true;
        } else if !a.starts_with('-') {
            pkgs.push(a.clone());
        }
    }
    let mut list = go();
    if let Some(d) = cmd.get_current_dir() {
        list.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            list.env(k, v);
        }
    }
    list.args(["list", "-deps"]).args(&pkgs);
    eprintln!("xtask:   resolving and downloading the Go modules it needs");
    match list.stderr(std::process::Stdio::null()).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).lines().count(),
        _ => 0,
    }
}

/// Copies the build's `-v` output into the log and prints a progress line
/// each time another tenth of the packages is compiled (or a minute passed).
fn report_progress(
    key: &str,
    stderr: std::process::ChildStderr,
    mut log: std::fs::File,
    total: usize,
    started: std::time::Instant,
) {
    use std::io::{BufRead, Write};
    let mut done = 0usize;
    let mut last_tenth = 0usize;
    let mut last_print = std::time::Instant::now();
    for line in std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
    {
        let _ = writeln!(log, "{line}");
        // Package lines are bare import paths; anything else is a message.
        if line.contains(' ') || line.is_empty() {
            continue;
        }
        done += 1;
        let tenth = (done * 10).checked_div(total).unwrap_or(0);
        if tenth > last_tenth || last_print.elapsed() > std::time::Duration::from_secs(60) {
            last_tenth = tenth;
            last_print = std::time::Instant::now();
            if total > 0 {
                eprintln!(
                    "xtask:   {key}: {done} of at most {total} packages compiled ({:.0?})",
                    started.elapsed()
                );
            } else {
                eprintln!(
                    "xtask:   {key}: {done} packages compiled ({:.0?})",
                    started.elapsed()
                );
            }
        }
    }
}

fn go() -> Command {
    let mut c = Command::new("go");
    // Never download another toolchain; use the machine's Go.
    c.env("GOTOOLCHAIN", "local").env("GOFLAGS", "-mod=mod");
    c
}
