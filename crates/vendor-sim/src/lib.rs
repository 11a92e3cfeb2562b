//! # kubepkg-vendor-sim
//!
//! Simulators of the vendor APIs behind `kubepkg-platform`'s adapters, so
//! the whole vendor flow runs on one machine: **every endpoint here is
//! simulated; no vendor cloud is contacted.**
//!
//! Each module starts one vendor's API in-process on `127.0.0.1:0`
//! ([`tke::start`], …) and returns a [`SimHandle`] with the endpoint and
//! the credentials it accepts. A simulator:
//!
//! - checks the signature (TC3, ACS3) or key (bearer token, basic auth) of
//!   every request and answers a bad one in the vendor's own error shape;
//! - keeps state: a new cluster is creating for [`SimOptions::polls_to_ready`]
//!   polls, then running; a deleted one goes away after
//!   [`SimOptions::polls_to_gone`] polls;
//! - answers throttling ([`SimHandle::throttle_next`]), canned fixture
//!   answers ([`SimHandle::respond_next`]) and failing creations
//!   ([`SimHandle::fail_next_create`]) in the vendor's documented shapes;
//! - hands out, as a created cluster's kubeconfig, one that reaches the
//!   local control plane (`cargo xtask env up`, read through
//!   `kubepkg-testenv`), and creates kwok nodes there for added nodes
//!   (tainted `kubepkg.io/vendor-sim=true:NoSchedule`, so no other test's
//!   pods land on them), deleting them again when their cluster is
//!   deleted or they are removed, the rest when the handle is dropped, and
//!   sweeping the ones an aborted run left behind (see [`kube`]).
//!
//! The registry simulators ([`tkestack`], [`acr`], [`harbor`]) keep
//! namespaces (projects) and robot accounts in memory and serve the images
//! a test records with [`SimHandle::push_image`] as repositories and tags.
//!
//! When the local control plane is not running, the first call that needs
//! it panics with a message naming the server and `cargo xtask env up`.
#![warn(missing_docs)]

pub mod ack;
pub mod acr;
pub mod harbor;
pub mod kube;
pub mod rancher;
mod server;
pub mod tke;
pub mod tkestack;

pub use server::{Canned, SimHandle, SimOptions};
