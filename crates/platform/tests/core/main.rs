//! The core layer against the local environment's real control plane
//! (kube-apiserver with RBAC and kwok nodes): import, credentials, health,
//! queries and multi-cluster search. Every test opens its own in-memory
//! SQLite store; names in the cluster are unique per test and cleaned up.

mod common;
mod health;
mod import;
mod open;
mod search;
