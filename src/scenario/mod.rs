//! Scenario files: a raw serde mirror of the TOML file, validated into a typed [`Scenario`].
pub mod types;
pub use types::*;
