//! Rendering sagasim's results. Pure functions from result data to an
//! `impl Write`; nothing here runs a simulation.
//!
//! Map:
//! - [`result`]: the result types with their versioned JSON schema names;
//!   [`compare`]: the result of comparing strategies.
//! - [`text`]: terminal text.
//! - [`json`]: pretty-printed JSON; [`junit`]: a sweep as JUnit XML;
//!   [`merge`]: shard results combined into one sweep result.
//! - [`html`]: the compare result as one self-contained HTML page with SVG
//!   charts (drawn by the private `charts` on the private `svg` primitives);
//!   [`markdown`]: the same as GitHub-flavoured Markdown.
//! - [`view`]: the compare report's sections, tables and chart slots,
//!   shared by both; [`series`]: the data series, buckets and columns the
//!   charts, tables and findings are drawn from; [`findings`]: the "what
//!   this shows" sentences generated from the numbers; [`numbers`]: number formatting for all of them; the
//!   test-only `fixture` builds comparisons for their tests.

mod charts;
pub mod chrome;
pub mod compare;
pub mod findings;
#[cfg(test)]
mod fixture;
pub mod html;
pub mod json;
pub mod junit;
pub mod live;
pub mod markdown;
pub mod merge;
pub mod numbers;
pub mod result;
pub mod series;
mod svg;
pub mod text;
pub mod view;

pub use result::{
    CorpusResult, CoverageCount, Failure, Outcomes, RunResult, Shard, SweepResult, RUN_SCHEMA,
    SWEEP_SCHEMA,
};
