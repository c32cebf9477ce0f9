//! cloudquota: cloud provider quotas as Kubernetes objects.
//!
//! The crate is split into a pure core (no IO: parsing, normalisation, threshold evaluation,
//! status building) and thin IO shells (provider HTTP clients, the Kubernetes controller, the
//! simulated cloud used by tests and the demo).

pub mod cli;
pub mod controller;
pub mod domain;
pub mod crd;
pub mod providers;
pub mod sign;
pub mod sim;
