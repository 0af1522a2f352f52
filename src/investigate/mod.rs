//! Investigating failing seeds: a failure file (a seed that stands alone,
//! scenario inline), a corpus of them replayed before a sweep, the
//! shrinker that makes one small, and the views of its trace (text, JSON
//! lines, Mermaid, Chrome trace).

pub mod corpus;
pub mod failure_file;
pub mod shrink;
pub mod trace_view;
