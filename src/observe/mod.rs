//! Observers: what a run records, and how it is stored.
pub mod record;
pub mod metrics;
pub mod sample;
