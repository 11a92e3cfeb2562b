//! `cargo xtask env check-users`, a step of `cargo xtask test`: the servers
//! that run as another user work wherever the clone lives.
//!
//! 1. For each server listed in [`OTHER_USERS`]: a fresh clone path under a
//!    new 0700 directory (what `mktemp -d` makes), which the server's user is
//!    shown to be unable to enter; the server started for it on a spare port
//!    through the same code `env up` uses, asked a real query, stopped;
//!    nothing left behind.
//! 2. Survey: every process of every server of the running environment runs
//!    as the user running xtask, or as the user [`OTHER_USERS`] names for
//!    that server. A server that starts running as someone else fails here
//!    until it is listed, and so gets the check above. Every server must be
//!    running, except a fault-injection instance that a test holds (and may
//!    have stopped on purpose).

use super::{Ctx, OTHER_USERS, SERVICES, postgres, proc};
use crate::sh::{self, Res};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub fn check() -> Res {
    for (name, user) in OTHER_USERS {
        let t = Instant::now();
        let tmp = match *name {
            "postgres" => from_private_clone(user, check_postgres)?,
            // The same program, user and layout (a state directory of its
            // own under the run directory): the check above covers it.
            "postgres-fault" => continue,
            other => return Err(format!("no 0700-clone check for {other}")),
        };
        eprintln!(
            "xtask: {name} (user {user}) started, answered and stopped for a clone under {} (mode 0700) in {:.1?}",
            tmp.display(),
            t.elapsed()
        );
    }
    survey()
}

/// The session leader of each running server: daemons are started in a
/// session of their own, and their helpers stay in it.
fn leaders(ctx: &Ctx) -> Res<Vec<(&'static str, u32)>> {
    let mut out = Vec::new();
    let mut down = Vec::new();
    for name in SERVICES {
        let pid = match *name {
            "postgres" => postgres::pid(ctx),
            "postgres-fault" => postgres::Cluster::fault(ctx).pid(),
            other => proc::alive_pid(ctx, other),
        };
        match (pid, super::held_by_test(ctx, name)) {
            (Some(pid), _) => out.push((*name, pid)),
            // A fault test stopped it on purpose; it has no processes to survey.
            (None, Some(who)) => eprintln!("xtask: {name} is stopped by a fault test ({who})"),
            (None, None) => down.push(*name),
        }
    }
    if down.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "the survey of server users needs every server running; not running: {} (run `cargo xtask env up`)",
            down.join(", ")
        ))
    }
}

/// One process, from `/proc`.
struct Process {
    ppid: u32,
    sid: u32,
    /// Real, effective, saved and filesystem uids.
    uids: BTreeSet<u32>,
}

fn processes() -> BTreeMap<u32, Process> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let dir = e.path();
        let (Ok(stat), Ok(status)) = (
            std::fs::read_to_string(dir.join("stat")),
            std::fs::read_to_string(dir.join("status")),
        ) else {
            continue;
        };
        // After the parenthesised command name: state, ppid, pgrp, session.
        let fields: Vec<u32> = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .skip(1)
                    .take(3)
                    .filter_map(|f| f.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let [ppid, _pgrp, sid] = fields[..] else {
            continue;
        };
        let uids = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|u| u.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        out.insert(pid, Process { ppid, sid, uids });
    }
    out
}

/// Whether `pid` is in `leader`'s session or descends from it (PostgreSQL's
/// workers, for one, start sessions of their own).
fn belongs(procs: &BTreeMap<u32, Process>, pid: u32, leader: u32) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        let Some(info) = procs.get(&p) else {
            return false;
        };
        if p == leader || info.sid == leader {
            return true;
        }
        if info.ppid <= 1 {
            return false;
        }
        p = info.ppid;
    }
    false
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

fn survey() -> Res {
    let (root, _) = Ctx::paths();
    if !root.join("secrets.json").exists() {
        return Err("the environment is not up (no state); run `cargo xtask env up`".into());
    }
    let ctx = Ctx::load()?;
    let me = sh::euid()?;
    let leaders = leaders(&ctx)?;
    let s = judge(&leaders, &processes(), me, user_name)?;
    let per: Vec<String> = s
        .per_server
        .iter()
        .map(|(n, c)| format!("{n} {c}"))
        .collect();
    eprintln!(
        "xtask: {} servers ({} processes: {}) surveyed; running as another user: {}; the rest as uid {me}",
        leaders.len(),
        s.processes,
        per.join(", "),
        if s.listed.is_empty() {
            "none".to_string()
        } else {
            s.listed.join(", ")
        }
    );
    Ok(())
}

struct Survey {
    processes: usize,
    /// Processes of each server, in [`SERVICES`] order.
    per_server: Vec<(String, usize)>,
    /// "server as user", for the users [`OTHER_USERS`] lists.
    listed: Vec<String>,
}

/// Fails when a server's processes run as a user other than `me` that
/// [`OTHER_USERS`] does not list for that server.
fn judge(
    leaders: &[(&str, u32)],
    procs: &BTreeMap<u32, Process>,
    me: u32,
    name_of: impl Fn(u32) -> String,
) -> Res<Survey> {
    let mut s = Survey {
        processes: 0,
        per_server: Vec::new(),
        listed: Vec::new(),
    };
    let mut bad = Vec::new();
    for (name, leader) in leaders {
        let mut uids = BTreeSet::new();
        let mut count = 0;
        for (pid, p) in procs {
            if belongs(procs, *pid, *leader) {
                count += 1;
                uids.extend(p.uids.iter().copied().filter(|u| *u != me));
            }
        }
        s.processes += count;
        s.per_server.push((name.to_string(), count));
        let listed = OTHER_USERS.iter().find(|(n, _)| n == name).map(|(_, u)| *u);
        for uid in uids {
            let user = name_of(uid);
            if listed == Some(user.as_str()) {
                s.listed.push(format!("{name} as {user}"));
            } else {
                bad.push(format!("{name} has processes of user {user}"));
            }
        }
    }
    if bad.is_empty() {
        Ok(s)
    } else {
        Err(format!(
            "{}; a server that runs as another user must keep its state outside the clone \
             (Ctx::other_user_state) and be listed in OTHER_USERS so its 0700-clone check runs",
            bad.join("; ")
        ))
    }
}

/// Runs `body` with the path of a clone inside a new 0700 directory that
/// `user` cannot enter, then removes everything it left: processes that
/// mention the clone's state paths, the state directories, the directory.
/// Returns the directory's path.
fn from_private_clone(user: &str, body: fn(&Path) -> Res) -> Res<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let tmp = std::env::temp_dir().join(format!("kubepkg-check-{}", sh::random_hex(6)?));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp)
        .map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let ws = tmp.join("kubepkg");
    let result = (|| {
        // Otherwise the check would prove nothing.
        if sh::succeeds(
            Command::new("runuser")
                .args(["-u", user, "--", "test", "-x"])
                .arg(&tmp),
        ) {
            return Err(format!("user {user} can enter {}", tmp.display()));
        }
        sh::mkdir(&ws)?;
        body(&ws)
    })();
    let (root, run) = Ctx::paths_for(&ws);
    proc::kill_strays(&root, &run);
    let mut left = Vec::new();
    for p in [&run, &tmp] {
        if p.exists() && std::fs::remove_dir_all(p).is_err() {
            left.push(p.display().to_string());
        }
    }
    result?;
    if left.is_empty() {
        Ok(tmp)
    } else {
        Err(format!("could not remove {}", left.join(", ")))
    }
}

fn spare_port() -> Res<u16> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

fn check_postgres(ws: &Path) -> Res {
    let ctx = Ctx::load_at(ws)?;
    let pg = postgres::Cluster::on_port(&ctx, spare_port()?);
    if pg.dir.starts_with(ws) {
        return Err(format!(
            "postgres state {} is inside the clone",
            pg.dir.display()
        ));
    }
    let r = (|| {
        pg.start()?;
        let got = pg.psql(
            postgres::DB,
            "CREATE TABLE check_users (x int); INSERT INTO check_users VALUES (42); SELECT x FROM check_users",
        )?;
        // psql prints each statement's status; the SELECT's row comes last.
        if got.lines().last() != Some("42") {
            return Err(format!("postgres answered {:?}, want 42 last", got.trim()));
        }
        Ok(())
    })();
    let stopped = pg.stop();
    r.map_err(|e| format!("{e}\n  log: {}", sh::tail(&pg.log, 15)))?;
    stopped?;
    if let Some(pid) = pg.pid() {
        return Err(format!("postmaster {pid} still running after pg_ctl stop"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ppid: u32, sid: u32, uid: u32) -> Process {
        Process {
            ppid,
            sid,
            uids: [uid].into(),
        }
    }

    fn name_of(uid: u32) -> String {
        match uid {
            0 => "root".into(),
            100 => "postgres".into(),
            other => format!("uid {other}"),
        }
    }

    #[test]
    fn survey_accepts_listed_users_and_names_the_others() {
        // rabbitmq (session 10) runs as root; postgres (20) as postgres, with
        // a worker that started a session of its own (22).
        let mut procs: BTreeMap<u32, Process> = [
            (10, p(1, 10, 0)),
            (11, p(10, 10, 0)),
            (20, p(1, 20, 100)),
            (22, p(20, 22, 100)),
            (30, p(1, 30, 500)),
        ]
        .into_iter()
        .collect();
        let leaders = [("rabbitmq", 10), ("postgres", 20)];
        let s = judge(&leaders, &procs, 0, name_of).unwrap();
        assert_eq!(s.processes, 4);
        assert_eq!(
            s.per_server,
            [("rabbitmq".to_string(), 2), ("postgres".to_string(), 2)]
        );
        assert_eq!(s.listed, ["postgres as postgres"]);
        // A helper of rabbitmq's running as some other user is refused.
        procs.insert(12, p(11, 12, 500));
        let e = judge(&leaders, &procs, 0, name_of).err().unwrap();
        assert!(e.contains("rabbitmq has processes of user uid 500"), "{e}");
        // So is postgres running as anyone but postgres.
        procs.insert(23, p(22, 23, 0));
        let e = judge(&leaders, &procs, 100, name_of).err().unwrap();
        assert!(e.contains("postgres has processes of user root"), "{e}");
    }
}
