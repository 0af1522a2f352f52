//! Rendering sagasim's results. Pure functions from result data to an
//! `impl Write`; nothing here runs a simulation.
//!
//! Map:
//! - [`result`]: the result types with their versioned JSON schema names.
//! - [`text`]: terminal text.
//! - [`json`]: pretty-printed JSON.

pub mod json;
pub mod result;
pub mod text;

pub use result::{Failure, Outcomes, RunResult, SweepResult, RUN_SCHEMA, SWEEP_SCHEMA};
