//! The vendor-adapter layer: each adapter against its in-process
//! simulator (`kubepkg-vendor-sim`, started on 127.0.0.1:0: **the vendor
//! endpoints are simulated**) and against fixtures written from the
//! vendor's API reference; a provider-agnostic conformance suite; the whole
//! flow end to end against the local control plane (`cargo xtask env up`):
//! create, wait, kubeconfig, import, nodes joined with instance ids, add
//! nodes, delete. The registry providers run their own conformance suite
//! (harbor, tkestack, acr on their simulators; the distribution provider
//! on the real local registry). Simulated kwok nodes never outlive their
//! cluster or their simulator. No credential may show in a log line,
//! error or `Debug`.

#[path = "../core/common.rs"]
#[allow(dead_code)]
mod core_common;

mod ack;
mod acr;
mod common;
mod conformance;
mod flow;
mod harbor;
mod kwok_cleanup;
mod rancher;
mod registry_conformance;
mod tke;
mod tkestack;
