//! `kubepkg-server` end to end through HTTP: a real server process over the
//! local environment (`cargo xtask env up`).

mod auth;
mod bad_input;
mod common;
mod flow;
mod instances;
mod requests;
mod schemathesis;
mod storage;
mod tls;
