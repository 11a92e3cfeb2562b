//! Integration tests against the local control plane (`cargo xtask env up`):
//! a real kube-apiserver with RBAC and kwok-simulated nodes.

mod common;

mod apply;
mod connect;
mod events;
#[cfg(feature = "exec")]
mod exec;
mod index;
mod nodes;
mod pods;
mod resources;
mod watch;
mod workloads;
