//! fibrosim: skin remodelling after microneedling.
pub mod sim;
