//! Observers: what a run records, and how it is stored.
pub mod metrics;
pub mod record;
pub mod sample;
