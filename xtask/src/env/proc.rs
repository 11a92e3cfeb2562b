//! Daemon processes: started in their own session so they outlive xtask,
//! tracked by pid files, stopped with their whole process group.

use super::Ctx;
use crate::sh::{self, Res};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn pidfile(ctx: &Ctx, name: &str) -> PathBuf {
    ctx.root.join("pids").join(format!("{name}.pid"))
}

/// Starts `program args` detached, output appended to the server's log.
pub fn spawn(
    ctx: &Ctx,
    name: &str,
    program: &Path,
    args: &[String],
    envs: &[(&str, String)],
) -> Res<u32> {
    let log = ctx.log(name);
    if let Some(dir) = log.parent() {
        sh::mkdir(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("opening {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    // `setsid PROGRAM` execs PROGRAM as the leader of a new session, so the
    // pid we get is the server's and its group can be signalled as a whole.
    let mut cmd = Command::new("setsid");
    cmd.arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", program.display()))?;
    let pid = child.id();
    // The child is never waited for: it is re-parented when xtask exits.
    std::mem::forget(child);
    sh::write(&pidfile(ctx, name), pid.to_string())?;
    Ok(pid)
}

/// The recorded pid of a server, if its process is alive.
pub fn alive_pid(ctx: &Ctx, name: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pidfile(ctx, name))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    is_alive(pid).then_some(pid)
}

/// Alive and not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Sends a signal to a whole process group.
fn signal_group(pid: u32, sig: &str) {
    let _ = sh::succeeds(Command::new("kill").args([&format!("-{sig}"), "--", &format!("-{pid}")]));
    let _ = sh::succeeds(Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]));
}

/// Stops a daemon started by [`spawn`]: TERM, then KILL after a grace period.
pub fn stop(ctx: &Ctx, name: &str) -> Res {
    let pf = pidfile(ctx, name);
    let Some(pid) = alive_pid(ctx, name) else {
        let _ = std::fs::remove_file(&pf);
        return Ok(());
    };
    stop_pid(pid, Duration::from_secs(20));
    if is_alive(pid) || !group_members(pid).is_empty() {
        return Err(format!("{name} (pid {pid}) did not stop"));
    }
    let _ = std::fs::remove_file(&pf);
    Ok(())
}

/// TERM a process group, wait, then KILL it. Done when the leader and
/// every other live member of its group are gone: a helper that outlives
/// the leader (an Erlang port program, a shell's child) would otherwise
/// hold a port or a lock against the next start.
pub fn stop_pid(pid: u32, grace: Duration) {
    signal_group(pid, "TERM");
    let gone = || !is_alive(pid) && group_members(pid).is_empty();
    if !sh::wait_until(grace, gone) {
        signal_group(pid, "KILL");
        sh::wait_until(Duration::from_secs(5), gone);
    }
}

/// Live processes of the process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| pgrp_of(&stat))
                == Some(pgid)
                && is_alive(*pid)
        })
        .collect()
}

/// The process group in a `/proc/PID/stat` line.
fn pgrp_of(stat: &str) -> Option<u32> {
    // After the parenthesised command name: state, ppid, pgrp.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Kills any process whose command line mentions one of our state paths.
pub fn kill_strays(root: &Path, run: &Path) {
    let markers = [
        root.to_string_lossy().into_owned(),
        run.to_string_lossy().into_owned(),
    ];
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if markers.iter().any(|m| cmdline.contains(m.as_str())) && is_alive(pid) {
            eprintln!("xtask: stopping stray process {pid}: {}", cmdline.trim());
            stop_pid(pid, Duration::from_secs(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgrp_is_read_after_the_command_name() {
        // A command name may hold spaces and parentheses.
        let stat = "4242 (a (b) c) S 1 4240 4240 0 -1 4194560";
        assert_eq!(pgrp_of(stat), Some(4240));
        assert_eq!(pgrp_of("garbage"), None);
        let me = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(pgrp_of(&me).is_some());
    }
}
