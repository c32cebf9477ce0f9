//! cloudquota: cloud provider quotas as Kubernetes objects.
//!
//! The crate is split into a pure core (no IO: parsing, normalisation, threshold evaluation,
//! status building) and thin IO shells (provider HTTP clients, the Kubernetes controller). The
//! test tools live beside it as their own workspace members: the simulated cloud (`sim/`,
//! `cloudquota-sim`) and the benchmarks (`bench/`, `cloudquota-bench`).

pub mod cli;
pub mod controller;
pub mod crd;
pub mod domain;
pub mod memory;
pub mod providers;
pub mod sign;
