//! sagasim: the command line and the harness that runs the order domain on
//! the deterministic kernel.
//!
//! Map:
//! - [`cli`]: arguments, commands, exit codes; [`ci`]: the sweep as CI
//!   runs it (shards, JUnit, JSON lines, corpus, early stops, progress)
//!   and `merge`.
//! - [`scenario`]: scenario files, parsed and validated once.
//! - [`harness`]: one run: workload drawn from the seed, the domain wired
//!   onto kernel nodes, the run's report; [`explore`]: swarm testing and
//!   the scheduling strategy a run explores with.
//! - [`sweep`]: many seeds over worker threads, panics isolated per seed;
//!   [`coverage`]: the saga paths and fault kinds a run hit;
//!   [`failure_file`]: a failing seed as a file that stands alone;
//!   [`shrink`]: the smallest fault plan and workload that still fail;
//!   [`trace_view`]: a replay's trace filtered and rendered (text, JSON
//!   lines, Mermaid).
//! - [`compare`]: strategies measured on the same seeds, at several fault
//!   scales, with a fault-free baseline and an availability probe.
//! - [`live_cmd`]: `sagasim live` and `sagasim serve`: the same domain
//!   deployed for real (the `live` crate), and its report.
//! - [`bench`]: speed against the floor of a bare event loop;
//!   [`detection`]: detection power, per planted bug.

/// A bench build counts heap allocations (`sagasim bench` reports them per
/// event); every other build uses the system allocator untouched.
#[cfg(feature = "count-allocs")]
#[global_allocator]
pub(crate) static ALLOCATOR: &stats_alloc::StatsAlloc<std::alloc::System> =
    &stats_alloc::INSTRUMENTED_SYSTEM;

pub mod bench;
pub mod ci;
pub mod cli;
pub mod compare;
pub mod coverage;
pub mod detection;
pub mod explore;
pub mod failure_file;
pub mod harness;
pub mod live_cmd;
pub mod scenario;
pub mod shrink;
pub mod sweep;
pub mod trace_view;
