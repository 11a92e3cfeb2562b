//! Small helpers for running commands and waiting on conditions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Result type of every xtask step: the error is a message for the user.
pub type Res<T = ()> = Result<T, String>;

/// The workspace root (parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// `~/.cache/kubepkg` (or `$KUBEPKG_CACHE`): builds and downloads, kept across `down`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KUBEPKG_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("kubepkg")
}

/// Runs a command to completion, inheriting stdio; fails with a message naming it.
pub fn run(cmd: &mut Command) -> Res {
    let desc = describe(cmd);
    let status = cmd
        .status()
        .map_err(|e| format!("could not run `{desc}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{desc}` failed with {status}"))
    }
}

/// Runs a command and returns its stdout; stderr is included in the error.
pub fn output(cmd: &mut Command) -> Res<String> {
    let desc = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run `{desc}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{desc}` failed with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

/// [`output`], with `input` written to the command's stdin (for a secret
/// that must not be in its command line). The error does not include
/// `input`.
pub fn output_with_input(cmd: &mut Command, input: &str) -> Res<String> {
    use std::io::Write;
    let desc = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run `{desc}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("writing to `{desc}`: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for `{desc}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{desc}` failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs a command quietly and tells whether it succeeded.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A readable form of a command line.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Polls `check` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `n` random bytes as lowercase hex, from the kernel's generator.
pub fn random_hex(n: usize) -> Res<String> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The effective uid of this process (the owner of `/proc/self`).
pub fn euid() -> Res<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("/proc/self: {e}"))
}

/// Numeric uid and gid of a local user, from `id`.
pub fn user_ids(user: &str) -> Res<(u32, u32)> {
    let id = |flag: &str| -> Res<u32> {
        output(Command::new("id").arg(flag).arg(user))?
            .trim()
            .parse()
            .map_err(|e| format!("id {flag} {user}: {e}"))
    };
    Ok((id("-u")?, id("-g")?))
}

/// Whether an executable named `name` is on `PATH`.
pub fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// Creates a directory and its parents.
pub fn mkdir(p: &Path) -> Res {
    std::fs::create_dir_all(p).map_err(|e| format!("creating {}: {e}", p.display()))
}

/// Writes a file, creating parent directories. The contents go to a
/// temporary file beside it that is then renamed over it, so a server (or
/// another xtask) reading the file never sees it half written.
pub fn write(p: &Path, contents: impl AsRef<[u8]>) -> Res {
    write_with_mode(p, contents.as_ref(), 0o644)
}

/// [`write()`] for a file that holds a credential: mode 0600 from the moment
/// it is created, so no other user can ever read it.
pub fn write_private(p: &Path, contents: impl AsRef<[u8]>) -> Res {
    write_with_mode(p, contents.as_ref(), 0o600)
}

fn write_with_mode(p: &Path, contents: &[u8], mode: u32) -> Res {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let parent = p.parent().unwrap_or(Path::new("."));
    mkdir(parent)?;
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // Unique per process and call: concurrent writers never share one.
    let tmp = parent.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode; the caller's mode stands.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        std::fs::rename(&tmp, p)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map_err(|e| format!("writing {}: {e}", p.display()))
}

/// Reads a file to a string.
pub fn read(p: &Path) -> Res<String> {
    std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(p: &Path, n: usize) -> String {
    match std::fs::read_to_string(p) {
        Ok(s) => {
            let lines: Vec<&str> = s.lines().collect();
            let start = lines.len().saturating_sub(n);
            lines[start..].join("\n")
        }
        Err(_) => String::from("(no log)"),
    }
}

/// HTTP status of a GET over HTTPS with curl, the server's certificate
/// verified against `ca` (a PEM file) and the URL's host. `Err` is curl's
/// own message when nothing answered or the TLS handshake failed (an
/// unverifiable certificate, for one). `extra` are curl args.
pub fn https_status(url: &str, ca: &Path, extra: &[&str]) -> Res<u16> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "3",
        "--proto",
        "=https",
        "--cacert",
    ])
    .arg(ca)
    .args(extra)
    .arg(url);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run curl: {e}"))?;
    if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .parse()
            .map_err(|_| format!("GET {url}: curl printed {:?}", text.trim()))
    } else {
        Err(format!(
            "GET {url}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// HTTP status of a GET with curl (0 when nothing answered). `extra` are curl args.
pub fn http_status(url: &str, extra: &[&str]) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "3",
    ])
    .args(extra)
    .arg(url);
    output(&mut cmd)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}
