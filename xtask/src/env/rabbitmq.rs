//! RabbitMQ from Debian's package: two nodes, each with its own node name,
//! ports and state: `rabbitmq`, which the tests share, and `rabbitmq-fault`,
//! which the tests that stop and start a broker use. The nodes are not
//! clustered; they share only epmd, the Erlang port mapper of the host.

use super::{Ctx, proc};
use crate::sh::{self, Res};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const USER: &str = "kubepkg";
const BIN: &str = "/usr/lib/rabbitmq/bin";

/// One broker node.
pub struct Node {
    /// The server name (`env stop|start|restart NAME`, state and log names).
    pub server: &'static str,
    /// Erlang node name.
    pub node: &'static str,
    /// AMQP port.
    pub port: u16,
    /// Erlang distribution port (rabbitmqctl talks to the node on it).
    pub dist_port: u16,
}

/// The shared broker.
pub const MAIN: Node = Node {
    server: "rabbitmq",
    node: "kubepkg@localhost",
    port: 15673,
    dist_port: 25673,
};

/// The fault-injection broker.
pub const FAULT: Node = Node {
    server: "rabbitmq-fault",
    node: "kubepkg-fault@localhost",
    port: 15674,
    dist_port: 25674,
};

/// Both nodes.
pub const NODES: &[Node] = &[MAIN, FAULT];

/// The node of a server name.
pub fn node(server: &str) -> Res<&'static Node> {
    NODES
        .iter()
        .find(|n| n.server == server)
        .ok_or_else(|| format!("{server} is not a RabbitMQ node"))
}

impl Node {
    fn envs(&self, ctx: &Ctx) -> Vec<(&'static str, String)> {
        let st = ctx.state(self.server);
        let p = |s: &str| st.join(s).display().to_string();
        vec![
            ("HOME", st.display().to_string()),
            ("RABBITMQ_NODENAME", self.node.into()),
            ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".into()),
            ("RABBITMQ_NODE_PORT", self.port.to_string()),
            ("RABBITMQ_DIST_PORT", self.dist_port.to_string()),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".into()),
            ("RABBITMQ_MNESIA_BASE", p("mnesia")),
            ("RABBITMQ_LOG_BASE", p("log")),
            ("RABBITMQ_LOGS", ctx.log(self.server).display().to_string()),
            ("RABBITMQ_PID_FILE", p("rabbitmq.pid")),
            ("RABBITMQ_CONFIG_FILE", p("rabbitmq.conf")),
            ("RABBITMQ_ADVANCED_CONFIG_FILE", p("advanced.config")),
            ("RABBITMQ_ENABLED_PLUGINS_FILE", p("enabled_plugins")),
            ("RABBITMQ_CONF_ENV_FILE", p("rabbitmq-env.conf")),
        ]
    }

    fn ctl(&self, ctx: &Ctx) -> Command {
        let mut c = Command::new(PathBuf::from(BIN).join("rabbitmqctl"));
        c.args(["-n", self.node]);
        for (k, v) in self.envs(ctx) {
            c.env(k, v);
        }
        c
    }

    /// rabbitmq.conf: loopback listeners only (AMQP and distribution).
    fn config(&self, password: &str) -> String {
        format!(
            "listeners.tcp.default = 127.0.0.1:{port}\n\
             distribution.listener.interface = 127.0.0.1\n\
             loopback_users = none\n\
             default_user = {USER}\n\
             default_pass = {password}\n\
             default_vhost = /\n\
             disk_free_limit.absolute = 50MB\n\
             log.console = false\n\
             log.file.level = info\n",
            port = self.port,
        )
    }

    pub fn start(&self, ctx: &Ctx) -> Res {
        let st = ctx.state(self.server);
        for d in ["mnesia", "log"] {
            sh::mkdir(&st.join(d))?;
        }
        sh::write_private(
            &st.join("rabbitmq.conf"),
            self.config(&ctx.secrets.rabbitmq_password),
        )?;
        sh::write(&st.join("advanced.config"), "[].\n")?;
        sh::write(&st.join("enabled_plugins"), "[].\n")?;
        sh::write(&st.join("rabbitmq-env.conf"), "")?;
        let cookie = st.join(".erlang.cookie");
        if !cookie.exists() {
            sh::write_private(&cookie, sh::random_hex(16)?)?;
            super::set_mode(&cookie, 0o400)?;
        }
        proc::spawn(
            ctx,
            self.server,
            &PathBuf::from(BIN).join("rabbitmq-server"),
            &[],
            &self.envs(ctx),
        )?;
        // The AMQP listener opens last in the boot, so an answer on it means
        // the broker is up. (Polling `rabbitmqctl await_startup` instead
        // boots an Erlang VM per try, which costs seconds of CPU while two
        // nodes and the rest of the environment start on a small machine.)
        let mut last = String::new();
        let ok = sh::wait_until(Duration::from_secs(120), || {
            if proc::alive_pid(ctx, self.server).is_none() {
                last = "the rabbitmq-server process exited".into();
                return true;
            }
            match self.health() {
                Ok(_) => true,
                Err(e) => {
                    last = e;
                    false
                }
            }
        });
        if ok && self.health().is_ok() {
            Ok(())
        } else {
            Err(last)
        }
    }

    /// `rabbitmqctl stop`, then the whole process group; done when no
    /// process of the node is left, so a `start` right after never meets
    /// the old node still holding its name or ports.
    pub fn stop(&self, ctx: &Ctx) -> Res {
        if proc::alive_pid(ctx, self.server).is_some() {
            let mut c = self.ctl(ctx);
            c.args(["stop", "--idle-timeout", "30"]);
            let _ = sh::output(&mut c);
        }
        proc::stop(ctx, self.server)
    }

    /// An AMQP 0-9-1 protocol header answered by a Connection.Start method frame.
    pub fn health(&self) -> Result<String, String> {
        let port = self.port;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| format!("connecting to 127.0.0.1:{port}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        s.write_all(b"AMQP\x00\x00\x09\x01")
            .map_err(|e| e.to_string())?;
        let mut frame = [0u8; 11];
        s.read_exact(&mut frame)
            .map_err(|e| format!("reading Connection.Start from 127.0.0.1:{port}: {e}"))?;
        // type 1 (method), channel 0, then class 10 / method 10 (connection.start).
        if frame[0] == 1 && frame[7..11] == [0, 10, 0, 10] {
            Ok(format!(
                "amqp://127.0.0.1:{port} (AMQP 0-9-1, node {})",
                self.node
            ))
        } else {
            Err(format!("unexpected AMQP answer {frame:?}"))
        }
    }

    /// The env.json section of this node.
    pub fn env_section(&self, ctx: &Ctx) -> Value {
        let pw = &ctx.secrets.rabbitmq_password;
        json!({
            "url": format!("amqp://{USER}:{pw}@127.0.0.1:{}/%2f", self.port),
            "host": "127.0.0.1",
            "port": self.port,
            "username": USER,
            "password": pw,
            "vhost": "/",
            "node": self.node,
        })
    }
}

/// Stops epmd, the Erlang port mapper: `erl` starts it as a daemon of its
/// own, outside the broker's session, so stopping the brokers leaves it
/// running. `epmd -kill` refuses while any node is registered with it, so
/// this comes after both nodes are stopped.
pub fn stop_epmd() {
    let _ = sh::succeeds(
        Command::new("epmd")
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .arg("-kill"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nodes_share_nothing_but_epmd() {
        let (a, b) = (&MAIN, &FAULT);
        assert_ne!(a.server, b.server);
        assert_ne!(a.node, b.node);
        let ports = [a.port, a.dist_port, b.port, b.dist_port];
        for (i, p) in ports.iter().enumerate() {
            assert!(!ports[i + 1..].contains(p), "port {p} used twice");
        }
        // The node names differ before the @, as each node registers that
        // part with the shared epmd.
        let short = |n: &Node| n.node.split('@').next().unwrap_or("").to_string();
        assert_ne!(short(a), short(b));
    }

    #[test]
    fn listeners_are_on_loopback() {
        let c = FAULT.config("pw");
        assert!(c.contains("listeners.tcp.default = 127.0.0.1:15674\n"));
        assert!(c.contains("distribution.listener.interface = 127.0.0.1\n"));
    }
}
