//! fibrosim: skin remodelling after microneedling.
pub mod app;
pub mod bench;
pub mod cli;
pub mod fsutil;
pub mod guard;
pub mod observe;
pub mod plot;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sensitivity;
pub mod sim;
pub mod sweep;
pub mod validate;
