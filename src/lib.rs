//! sagasim: the command line and the harness that runs the order domain on
//! the deterministic kernel (and, live, on real services).
//!
//! Map, from the bottom up (a folder imports only from those above it in
//! this list; `tests/layout.rs` checks it):
//! - [`files`]: writing a file atomically.
//! - [`scenario`]: scenario files parsed with located errors, validated
//!   once, the built-ins, and the coverage points a scenario may expect.
//! - [`harness`]: one run: the workload drawn from the seed, the domain
//!   wired onto kernel nodes, how the run explores (swarm, schedule), the
//!   run's report; and, beside it, the same run as a live plan.
//! - [`sweep`]: many seeds over worker threads, panics isolated per seed,
//!   coverage counted, and the formats and progress CI sees.
//! - [`investigate`]: failure files, a corpus of them, shrinking, trace
//!   views.
//! - [`measure`]: strategies compared, speed against the anchors,
//!   detection power, and the simulation's figures beside a live run.
//! - [`cli`]: the clap definitions and one file per command, each
//!   translating arguments into calls and results into output and exit
//!   codes.

/// A bench build counts heap allocations (`sagasim bench` reports them per
/// event); every other build uses the system allocator untouched.
#[cfg(feature = "count-allocs")]
#[global_allocator]
pub(crate) static ALLOCATOR: &stats_alloc::StatsAlloc<std::alloc::System> =
    &stats_alloc::INSTRUMENTED_SYSTEM;

pub mod cli;
pub mod files;
pub mod harness;
pub mod investigate;
pub mod measure;
pub mod scenario;
pub mod sweep;
