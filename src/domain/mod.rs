//! The pure core (the domain): no IO, no clocks, no randomness. Everything here is a function of its inputs
//! and is unit-tested directly.

pub mod allowlist;
pub mod capacity;
pub mod check;
pub mod duration;
pub mod model;
pub mod schedule;
pub mod status;
pub mod thresholds;
