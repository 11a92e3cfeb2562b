//! Integration tests against the local control plane (`cargo xtask env up`):
//! a real kube-apiserver with RBAC and kwok-simulated nodes. Exec and
//! port-forward (feature `exec`) are tested in tests/exec.rs.

mod common;

mod apply;
mod connect;
mod events;
mod index;
mod nodes;
mod pods;
mod resources;
mod watch;
mod workloads;
