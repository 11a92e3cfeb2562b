//! `cargo xtask`: the project's task runner.
//!
//! ```text
//! cargo xtask env up|down|status      the local environment of real servers
//! cargo xtask env start|stop|restart NAME
//! cargo xtask env check-users         servers of other users work from a 0700 clone
//! cargo xtask test [--down]           env up + check-users + fmt + clippy + doc + tests
//! cargo xtask demo                    env up, kubepkg-server started, the HTTP tour
//! cargo xtask bench NAME              one benchmark, kubepkg vs its peer
//! cargo xtask fuzz [SECONDS]          every fuzz target for a bounded time
//! ```

mod benches;
mod demo;
mod env;
mod gobuild;
mod sh;
mod tasks;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  env up [NAME...]          start the local environment (all servers, or the named ones)
  env down                  stop every server and remove its state
  env status                each server with its health
  env start|stop|restart NAME
                            act on one server (etcd, kube-apiserver, kube-apiserver-fault,
                            kube-controller-manager, kube-scheduler, kwok, minio, minio-tls,
                            rabbitmq, rabbitmq-fault, docker, registry, registry-tls, postgres)
  env check-users           servers that run as another user (postgres) work from a clone
                            under a 0700 directory; a step of `test`
  env build                 only build / download what the servers need (into ~/.cache/kubepkg)
  test [--down]             env up, check-users, fmt check, clippy -D warnings, doc, cargo test --workspace
  demo                      env up, start kubepkg-server, tour it over HTTP
  bench NAME                run one benchmark with its peer and print the ratio (`bench list`)
  fuzz [SECONDS]            run every fuzz target for SECONDS (default 30) each
  peers                     build the benchmark peers (kubectl, mc, crane) into ~/.cache/kubepkg
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["env", rest @ ..] => env::command(rest),
        ["test", rest @ ..] => tasks::test(rest),
        ["demo", rest @ ..] => tasks::demo(rest),
        ["bench", rest @ ..] => tasks::bench(rest),
        ["fuzz", rest @ ..] => tasks::fuzz(rest),
        ["peers"] => gobuild::PEERS.iter().try_for_each(|t| t.ensure()),
        ["help"] | ["--help"] | ["-h"] | [] => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown command {:?}\n\n{USAGE}", args.join(" "))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
