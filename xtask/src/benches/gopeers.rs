//! The benchmarks' own Go peer programs (under `benches/peers/`), built with
//! `go build` into `~/.cache/kubepkg/bin/peer-<name>-<hash>/` (the hash
//! covers the module's sources and the Go version, so an edit rebuilds and
//! an unchanged tree reuses the binary). Nothing is written into the repo.

use crate::sh::{self, Res};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::process::Command;

/// A `package main` Go module in the repo.
pub struct GoPeer {
    /// Binary name, e.g. `ggcr-tags`.
    pub name: &'static str,
    /// Module directory relative to the workspace root.
    pub dir: &'static str,
}

/// go-containerregistry used as a library: the registry-tags peer.
pub const GGCR_TAGS: GoPeer = GoPeer {
    name: "ggcr-tags",
    dir: "benches/peers/ggcr-tags",
};

/// client-go programs for the Kubernetes benchmarks (list, apply, fan-out).
pub const CLIENT_GO: GoPeer = GoPeer {
    name: "client-go",
    dir: "benches/peers/client-go",
};

impl GoPeer {
    /// The environment variable a bench binary reads the path from.
    pub fn env_var(&self) -> String {
        format!(
            "KUBEPKG_PEER_{}",
            self.name.to_uppercase().replace('-', "_")
        )
    }

    fn source_key(&self) -> Res<u64> {
        let src = sh::workspace_root().join(self.dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&src)
            .map_err(|e| format!("reading {}: {e}", src.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                n == "go.mod" || n == "go.sum" || n.ends_with(".go")
            })
            .collect();
        files.sort();
        // DefaultHasher::new() has fixed keys: the same input gives the same key.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for f in &files {
            f.file_name().hash(&mut h);
            std::fs::read(f)
                .map_err(|e| format!("reading {}: {e}", f.display()))?
                .hash(&mut h);
        }
        let version = sh::output(Command::new("go").arg("version"))?;
        version.trim().hash(&mut h);
        Ok(h.finish())
    }

    /// Builds the program unless an up-to-date binary is cached; returns its path.
    pub fn ensure(&self) -> Res<PathBuf> {
        if !sh::on_path("go") {
            return Err(format!(
                "building the Go peer {}: the `go` toolchain is not on PATH",
                self.name
            ));
        }
        let key = self.source_key()?;
        let dir = sh::cache_dir()
            .join("bin")
            .join(format!("peer-{}-{key:016x}", self.name));
        let bin = dir.join(self.name);
        if bin.is_file() {
            return Ok(bin);
        }
        let tmp = dir.with_extension("partial");
        let _ = std::fs::remove_dir_all(&tmp);
        sh::mkdir(&tmp)?;
        eprintln!(
            "xtask: building the Go peer {} (cached in {})",
            self.name,
            dir.display()
        );
        sh::run(
            Command::new("go")
                .current_dir(sh::workspace_root().join(self.dir))
                .env("GOTOOLCHAIN", "local")
                .env("GOFLAGS", "-mod=readonly")
                .env("CGO_ENABLED", "0")
                .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
                .arg(tmp.join(self.name))
                .arg("."),
        )?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir)
            .map_err(|e| format!("moving {} into place: {e}", dir.display()))?;
        Ok(bin)
    }
}
