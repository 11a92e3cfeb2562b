//! RabbitMQ from Debian's package, on its own node name and ports.

use super::{Ctx, proc};
use crate::sh::{self, Res};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub const PORT: u16 = 15673;
const DIST_PORT: u16 = 25673;
const NODE: &str = "kubepkg@localhost";
const USER: &str = "kubepkg";
const BIN: &str = "/usr/lib/rabbitmq/bin";

fn envs(ctx: &Ctx) -> Vec<(&'static str, String)> {
    let st = ctx.state("rabbitmq");
    let p = |s: &str| st.join(s).display().to_string();
    vec![
        ("HOME", st.display().to_string()),
        ("RABBITMQ_NODENAME", NODE.into()),
        ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".into()),
        ("RABBITMQ_NODE_PORT", PORT.to_string()),
        ("RABBITMQ_DIST_PORT", DIST_PORT.to_string()),
        ("ERL_EPMD_ADDRESS", "127.0.0.1".into()),
        ("RABBITMQ_MNESIA_BASE", p("mnesia")),
        ("RABBITMQ_LOG_BASE", p("log")),
        ("RABBITMQ_LOGS", ctx.log("rabbitmq").display().to_string()),
        ("RABBITMQ_PID_FILE", p("rabbitmq.pid")),
        ("RABBITMQ_CONFIG_FILE", p("rabbitmq.conf")),
        ("RABBITMQ_ADVANCED_CONFIG_FILE", p("advanced.config")),
        ("RABBITMQ_ENABLED_PLUGINS_FILE", p("enabled_plugins")),
        ("RABBITMQ_CONF_ENV_FILE", p("rabbitmq-env.conf")),
    ]
}

fn ctl(ctx: &Ctx) -> Command {
    let mut c = Command::new(PathBuf::from(BIN).join("rabbitmqctl"));
    c.args(["-n", NODE]);
    for (k, v) in envs(ctx) {
        c.env(k, v);
    }
    c
}

pub fn start(ctx: &Ctx) -> Res {
    let st = ctx.state("rabbitmq");
    for d in ["mnesia", "log"] {
        sh::mkdir(&st.join(d))?;
    }
    sh::write(
        &st.join("rabbitmq.conf"),
        format!(
            "listeners.tcp.default = 127.0.0.1:{PORT}\nloopback_users = none\ndefault_user = {USER}\ndefault_pass = {}\ndefault_vhost = /\ndisk_free_limit.absolute = 50MB\nlog.console = false\nlog.file.level = info\n",
            ctx.secrets.rabbitmq_password
        ),
    )?;
    sh::write(&st.join("advanced.config"), "[].\n")?;
    sh::write(&st.join("enabled_plugins"), "[].\n")?;
    sh::write(&st.join("rabbitmq-env.conf"), "")?;
    let cookie = st.join(".erlang.cookie");
    if !cookie.exists() {
        sh::write(&cookie, sh::random_hex(16)?)?;
        super::set_mode(&cookie, 0o400)?;
    }
    proc::spawn(
        ctx,
        "rabbitmq",
        &PathBuf::from(BIN).join("rabbitmq-server"),
        &[],
        &envs(ctx),
    )?;
    // `rabbitmqctl await_startup` fails (status 69) when asked before the node
    // has registered with epmd, so it is retried until the broker answers AMQP.
    let mut last = String::new();
    let ok = sh::wait_until(Duration::from_secs(120), || {
        if proc::alive_pid(ctx, "rabbitmq").is_none() {
            last = "the rabbitmq-server process exited".into();
            return true;
        }
        let mut c = ctl(ctx);
        c.args(["await_startup", "--timeout", "10"]);
        if let Err(e) = sh::output(&mut c) {
            last = format!("rabbitmqctl await_startup: {e}");
            return false;
        }
        match health(ctx) {
            Ok(_) => true,
            Err(e) => {
                last = e;
                false
            }
        }
    });
    if ok && health(ctx).is_ok() {
        Ok(())
    } else {
        Err(last)
    }
}

pub fn stop(ctx: &Ctx) -> Res {
    if proc::alive_pid(ctx, "rabbitmq").is_some() {
        let mut c = ctl(ctx);
        c.args(["stop", "--idle-timeout", "30"]);
        let _ = sh::output(&mut c);
    }
    proc::stop(ctx, "rabbitmq")
}

/// Stops epmd, the Erlang port mapper: `erl` starts it as a daemon of its
/// own, outside the broker's session, so stopping the broker leaves it
/// running. `epmd -kill` refuses while any node is registered with it.
pub fn stop_epmd() {
    let _ = sh::succeeds(
        Command::new("epmd")
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .arg("-kill"),
    );
}

/// An AMQP 0-9-1 protocol header answered by a Connection.Start method frame.
pub fn health(_ctx: &Ctx) -> Result<String, String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], PORT));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connecting to 127.0.0.1:{PORT}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"AMQP\x00\x00\x09\x01")
        .map_err(|e| e.to_string())?;
    let mut frame = [0u8; 11];
    s.read_exact(&mut frame)
        .map_err(|e| format!("reading Connection.Start from 127.0.0.1:{PORT}: {e}"))?;
    // type 1 (method), channel 0, then class 10 / method 10 (connection.start).
    if frame[0] == 1 && frame[7..11] == [0, 10, 0, 10] {
        Ok(format!("amqp://127.0.0.1:{PORT} (AMQP 0-9-1, node {NODE})"))
    } else {
        Err(format!("unexpected AMQP answer {frame:?}"))
    }
}

pub fn env_section(ctx: &Ctx) -> Value {
    json!({
        "url": format!("amqp://{USER}:{}@127.0.0.1:{PORT}/%2f", ctx.secrets.rabbitmq_password),
        "host": "127.0.0.1",
        "port": PORT,
        "username": USER,
        "password": ctx.secrets.rabbitmq_password,
        "vhost": "/",
        "node": NODE,
    })
}
