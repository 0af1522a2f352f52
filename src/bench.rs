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

/// `sagasim bench`: the floor, then each scenario measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub schema: &'static str,
    pub strategy: &'static str,
    pub seeds: u64,
    pub jobs: usize,
    /// A bare loop of seeded-tie-break queue pops and pushes, one core.
    pub floor_events_per_s: f64,
    pub scenarios: Vec<ScenarioBench>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioBench {
    pub scenario: String,
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
    /// Simulated events per seed, on average.
    pub events_per_seed: f64,
    /// Peak resident memory of the process (Linux), in bytes, after this
    /// scenario's runs: every run's state is dropped when it ends, so this
    /// is the largest run's footprint plus the process's own.
    pub peak_rss_bytes: Option<u64>,
    /// For `saga-bench`: the peer's seeds/s on one thread of this kind of
    /// machine (../shared/peers/saga-bench.md, 1,000 seeds), and our
    /// one-core and all-core seeds/s as multiples of it.
    pub peer_seeds_per_s: Option<f64>,
    pub vs_peer_one_core: Option<f64>,
    pub vs_peer_all_jobs: Option<f64>,
}

/// The peer's seeds/s on the saga-bench workload, one thread, 1,000 seeds.
pub const PEER_SEEDS_PER_S: f64 = 44.3;

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

/// Measure one scenario: `seeds` seeds on one core with per-step checks on
/// and off, then on `jobs` workers. The scenario runs as written (no swarm:
/// the peer's faults are fixed).
pub fn bench_scenario(s: &Scenario, strategy: Strategy, seeds: u64, jobs: usize) -> ScenarioBench {
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
    let peer = (s.name == "saga-bench").then_some(PEER_SEEDS_PER_S);
    ScenarioBench {
        scenario: s.name.clone(),
        events_per_s: events_on as f64 / wall_on,
        events_per_s_unchecked: events_off as f64 / wall_off,
        invariant_overhead: wall_on / wall_off - 1.0,
        seeds_per_s,
        seeds_per_s_all_jobs: all.seeds_per_s,
        scaling: all.seeds_per_s / seeds_per_s,
        events_per_seed: events_on as f64 / seeds as f64,
        peak_rss_bytes: peak_rss_bytes(),
        peer_seeds_per_s: peer,
        vs_peer_one_core: peer.map(|p| seeds_per_s / p),
        vs_peer_all_jobs: peer.map(|p| all.seeds_per_s / p),
    }
}

pub fn bench(scenarios: &[Scenario], strategy: Strategy, seeds: u64, jobs: usize) -> BenchReport {
    let floor = floor_events_per_s(20_000_000);
    BenchReport {
        schema: "sagasim.bench/2",
        strategy: strategy.name(),
        seeds,
        jobs,
        floor_events_per_s: floor,
        scenarios: scenarios.iter().map(|s| bench_scenario(s, strategy, seeds, jobs)).collect(),
    }
}

pub fn render_text(r: &BenchReport, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let m = |x: f64| format!("{:.2} M", x / 1e6);
    writeln!(out, "bench strategy={} seeds={} jobs={}", r.strategy, r.seeds, r.jobs)?;
    writeln!(out, "floor (bare seeded event loop)       {} events/s", m(r.floor_events_per_s))?;
    for s in &r.scenarios {
        writeln!(out, "scenario {} ({:.0} events per seed)", s.scenario, s.events_per_seed)?;
        writeln!(
            out,
            "  one core, per-step invariants on   {} events/s, {:.0} seeds/s",
            m(s.events_per_s),
            s.seeds_per_s
        )?;
        writeln!(
            out,
            "  one core, per-step invariants off  {} events/s",
            m(s.events_per_s_unchecked)
        )?;
        writeln!(
            out,
            "  per-step invariant overhead        {:.1} %",
            s.invariant_overhead * 100.0
        )?;
        writeln!(
            out,
            "  {} jobs                             {:.0} seeds/s ({:.2}x one core)",
            r.jobs, s.seeds_per_s_all_jobs, s.scaling
        )?;
        if let Some(b) = s.peak_rss_bytes {
            writeln!(
                out,
                "  peak RSS of the process            {:.1} MiB",
                b as f64 / (1024.0 * 1024.0)
            )?;
        }
        if let (Some(p), Some(one), Some(all)) =
            (s.peer_seeds_per_s, s.vs_peer_one_core, s.vs_peer_all_jobs)
        {
            writeln!(
                out,
                "  vs the peer ({p} seeds/s, one thread): {one:.1}x on one core, {all:.1}x on {} jobs",
                r.jobs
            )?;
        }
    }
    Ok(())
}
