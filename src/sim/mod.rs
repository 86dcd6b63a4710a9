//! The model of MODEL.md: tissue, treatment, fields, matrix and fibroblast agents.
pub mod diffusion;
pub mod smoothing;
