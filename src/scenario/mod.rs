//! Scenario files: a raw serde mirror of the TOML file, validated into a typed [`Scenario`].
//!
//! [`load`] / [`parse`] turn a file into a [`Scenario`] or into every problem found
//! ([`ScenarioErrors`], each located at line:column with the key path, the value and what is
//! allowed). [`template`] writes the commented file of `fibrosim init`, [`to_toml`] the resolved
//! scenario for manifests, and [`estimate`] what a run will need.
pub mod error;
pub mod estimate;
mod locate;
mod raw;
pub mod read;
pub mod types;
mod validate;
pub mod write;

pub use error::{ScenarioError, ScenarioErrors};
pub use estimate::{Estimate, estimate};
pub use read::{MAX_FILE_BYTES, load, parse};
pub use types::*;
pub use write::{template, to_toml};
