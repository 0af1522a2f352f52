//! `sagasim bench`: how fast the harness runs on this machine, measured
//! against the floor (a bare seeded event loop) — simulated events per second
//! per core, seeds per second, what the per-step invariants cost, and how the
//! sweep scales from one worker to all.

use std::time::Instant;

use domain::Strategy;
use serde::Serialize;
use sim::queue::EventQueue;
use sim::seed::{Purpose, Stream};

use crate::explore::Explore;
use crate::harness::{self, RunSpec};
use crate::scenario::Scenario;
use crate::sweep::{self, SweepSpec};

#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub schema: &'static str,
    pub scenario: String,
    pub strategy: &'static str,
    pub seeds: u64,
    pub jobs: usize,
    /// A bare loop of seeded-tie-break queue pops and pushes, one core.
    pub floor_events_per_s: f64,
    /// Simulated events per second on one core, invariants checked every step.
    pub events_per_s: f64,
    /// The same with per-step checks off.
    pub events_per_s_unchecked: f64,
    /// Extra time per-step checks take, as a share of the unchecked time.
    pub invariant_overhead: f64,
    /// Seeds per second on one core.
    pub seeds_per_s: f64,
    /// Seeds per second with every worker.
    pub seeds_per_s_all_jobs: f64,
    pub scaling: f64,
    /// Peak resident memory of the process (Linux), in bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// The floor: pop an event, push one at a later time with a seeded
/// tie-break, as the kernel's loop does with nothing else to do.
fn floor_events_per_s(events: u64) -> f64 {
    let mut q: EventQueue<u64> = EventQueue::default();
    let mut s = Stream::new(1, Purpose::Schedule);
    for i in 0..256 {
        let tb = s.next_u64();
        q.push(s.range(0, 10_000), tb, i);
    }
    let started = Instant::now();
    let mut sum = 0u64;
    for _ in 0..events {
        let (t, e) = q.pop().expect("the loop keeps 256 events queued");
        sum = sum.wrapping_add(e);
        let tb = s.next_u64();
        let delay = s.range(1, 10_000);
        q.push(t + delay, tb, e);
    }
    std::hint::black_box(sum);
    events as f64 / started.elapsed().as_secs_f64()
}

/// Run `seeds` seeds one after another on this thread; returns (events, wall).
fn one_core(s: &Scenario, strategy: Strategy, seeds: u64, checks: bool) -> (u64, f64) {
    let started = Instant::now();
    let mut events = 0;
    for seed in 0..seeds {
        let spec = RunSpec { per_step_checks: checks, ..RunSpec::new(s, strategy, None, seed) };
        events += harness::run(&spec).stats.steps;
    }
    (events, started.elapsed().as_secs_f64())
}

fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

pub fn bench(s: &Scenario, strategy: Strategy, seeds: u64, jobs: usize) -> BenchResult {
    let floor = floor_events_per_s(20_000_000);
    let (events_on, wall_on) = one_core(s, strategy, seeds, true);
    let (events_off, wall_off) = one_core(s, strategy, seeds, false);
    let spec = SweepSpec {
        scenario: s,
        strategy,
        bug: None,
        seeds: (0, seeds),
        jobs,
        explore: Explore::AS_WRITTEN,
    };
    let all = sweep::sweep(&spec);
    let seeds_per_s = seeds as f64 / wall_on;
    BenchResult {
        schema: "sagasim.bench/1",
        scenario: s.name.clone(),
        strategy: strategy.name(),
        seeds,
        jobs,
        floor_events_per_s: floor,
        events_per_s: events_on as f64 / wall_on,
        events_per_s_unchecked: events_off as f64 / wall_off,
        invariant_overhead: wall_on / wall_off - 1.0,
        seeds_per_s,
        seeds_per_s_all_jobs: all.seeds_per_s,
        scaling: all.seeds_per_s / seeds_per_s,
        peak_rss_bytes: peak_rss_bytes(),
    }
}

pub fn render_text(r: &BenchResult, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let m = |x: f64| format!("{:.2} M", x / 1e6);
    writeln!(
        out,
        "bench scenario={} strategy={} seeds={} jobs={}",
        r.scenario, r.strategy, r.seeds, r.jobs
    )?;
    writeln!(out, "  floor (bare seeded event loop)     {} events/s", m(r.floor_events_per_s))?;
    writeln!(
        out,
        "  one core, per-step invariants on   {} events/s, {:.0} seeds/s",
        m(r.events_per_s),
        r.seeds_per_s
    )?;
    writeln!(out, "  one core, per-step invariants off  {} events/s", m(r.events_per_s_unchecked))?;
    writeln!(out, "  per-step invariant overhead        {:.1} %", r.invariant_overhead * 100.0)?;
    writeln!(
        out,
        "  {} jobs                             {:.0} seeds/s ({:.2}x one core)",
        r.jobs, r.seeds_per_s_all_jobs, r.scaling
    )?;
    if let Some(b) = r.peak_rss_bytes {
        writeln!(
            out,
            "  peak RSS of the process            {:.1} MiB",
            b as f64 / (1024.0 * 1024.0)
        )?;
    }
    Ok(())
}
