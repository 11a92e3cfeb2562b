//! Advisory file locks (`flock`) under `target/kubepkg-env/locks/`.
//!
//! Two kinds, per server:
//! - `<server>.lock`, held by xtask while it starts, stops or restarts the
//!   server, so that two xtask processes (an `env up` of one engineer and
//!   an `env restart` run by a test) never act on one server at once;
//! - `<server>.test.lock`, held by a test through `kubepkg-testenv` while
//!   it uses a fault-injection instance. xtask never takes it; `env up`
//!   only looks whether someone holds it, and then leaves the server alone,
//!   since the test stops and starts it on purpose.
//!
//! A lock is released when its file is closed, also when its process dies.

use super::Ctx;
use crate::sh::{self, Res};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The directory of the lock files.
pub fn dir(ctx: &Ctx) -> PathBuf {
    ctx.root.join("locks")
}

/// The lock xtask holds while acting on `server`.
pub fn server_lock(ctx: &Ctx, server: &str) -> PathBuf {
    dir(ctx).join(format!("{server}.lock"))
}

/// The lock a test holds while it uses `server` (see `kubepkg-testenv`).
pub fn test_lock(ctx: &Ctx, server: &str) -> PathBuf {
    dir(ctx).join(format!("{server}.test.lock"))
}

/// A held lock; dropping it releases it.
pub struct Held(#[allow(dead_code)] File);

fn open(path: &Path) -> Res<File> {
    if let Some(d) = path.parent() {
        sh::mkdir(d)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))
}

/// Takes the lock at `path`, waiting while another process (or another
/// open file of this one) holds it.
pub fn exclusive(path: &Path) -> Res<Held> {
    let f = open(path)?;
    match f.try_lock() {
        Ok(()) => return Ok(Held(f)),
        Err(TryLockError::WouldBlock) => {
            eprintln!("xtask: waiting for {}", path.display());
        }
        Err(TryLockError::Error(e)) => return Err(format!("locking {}: {e}", path.display())),
    }
    f.lock()
        .map_err(|e| format!("locking {}: {e}", path.display()))?;
    Ok(Held(f))
}

/// Who holds the lock at `path`, when someone does: the holder's note
/// (testenv writes its pid and test name into the file), or "someone".
pub fn holder(path: &Path) -> Option<String> {
    if !path.exists() {
        return None;
    }
    let f = open(path).ok()?;
    match f.try_lock() {
        Ok(()) => None,
        Err(_) => {
            let note = std::fs::read_to_string(path).unwrap_or_default();
            let note = note.trim();
            Some(if note.is_empty() {
                "someone".to_string()
            } else {
                note.to_string()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_seen_and_released_on_drop() {
        let dir = std::env::temp_dir().join(format!("xtask-lock-{}", std::process::id()));
        let p = dir.join("x.test.lock");
        assert_eq!(holder(&p), None);
        let held = exclusive(&p).unwrap();
        std::fs::write(&p, "pid 1 (some test)\n").unwrap();
        // Another open file of the same process conflicts, as another
        // process would.
        assert_eq!(holder(&p).as_deref(), Some("pid 1 (some test)"));
        drop(held);
        assert_eq!(holder(&p), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
