//! `sagasim bench`: how fast the harness runs on this machine and where the
//! time goes. Per scenario: seeds/s, ns per event, events per seed by kind
//! (stale timers apart), the largest number of pending events, setup time
//! per seed, per-step invariants on and off, allocations per event (in a
//! `count-allocs` build) and scaling over cores; then events/s as a run
//! grows from 200 to 20,000 orders. Ratios to the two anchors (the turmoil
//! peer's seeds/s, the bare event loop's events/s) come from a figures file
//! `../shared/peers/peer-bench.sh` printed in the same session: a remembered
//! figure is never used.

use std::time::Instant;

use domain::Strategy;
use serde::{Deserialize, Serialize};
use sim::queue::EventQueue;
use sim::seed::{Purpose, Stream};
use sim::world::EventKind;

use crate::harness::explore::Explore;
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
    /// A bare loop of seeded-tie-break queue pops and pushes on sagasim's
    /// own queue, one core.
    pub floor_events_per_s: f64,
    /// The anchors' figures, as read from `--peer`.
    pub anchors: Option<Anchors>,
    pub scenarios: Vec<ScenarioBench>,
    /// Events/s as the run grows (the first scenario, stock and users
    /// scaled with the orders).
    pub growth: Vec<Growth>,
}

/// What `peer-bench.sh` prints: the turmoil peer and the bare loop.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Anchors {
    pub peer: PeerFigures,
    pub floor: FloorFigures,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerFigures {
    pub seeds: u64,
    pub seeds_per_s: f64,
    pub wall_s: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FloorFigures {
    pub events: u64,
    pub events_per_s: f64,
}

impl Anchors {
    /// Read the anchors' figures; the error names the file and what is wrong.
    pub fn load(path: &std::path::Path) -> Result<Anchors, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the anchors' figures {}: {e}", path.display()))?;
        let a: Anchors = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not the output of peer-bench.sh (line {}, column {}): {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if !(a.peer.seeds_per_s > 0.0 && a.floor.events_per_s > 0.0) {
            return Err(format!("{}: the anchors' rates must be positive", path.display()));
        }
        Ok(a)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct KindCount {
    pub kind: &'static str,
    pub per_seed: f64,
    /// Of those, events that found nothing to do (stale timers, steps of a
    /// crashed incarnation or an old generation).
    pub stale_per_seed: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioBench {
    pub scenario: String,
    /// Simulated events per second on one core, invariants checked every step.
    pub events_per_s: f64,
    pub ns_per_event: f64,
    /// The same with per-step checks off.
    pub events_per_s_unchecked: f64,
    pub ns_per_event_unchecked: f64,
    /// Extra time per-step checks take, as a share of the unchecked time.
    pub invariant_overhead: f64,
    /// Seeds per second on one core.
    pub seeds_per_s: f64,
    /// Building and booting one seed's world, before its first event.
    pub setup_us_per_seed: f64,
    /// Seeds per second with every worker.
    pub seeds_per_s_all_jobs: f64,
    pub scaling: f64,
    /// Simulated events per seed, on average.
    pub events_per_seed: f64,
    pub by_kind: Vec<KindCount>,
    /// The most events pending at once, over every seed.
    pub max_pending: u64,
    /// Heap allocations per event over whole runs (setup included), in a
    /// `count-allocs` build; `None` otherwise.
    pub allocations_per_event: Option<f64>,
    /// Peak resident memory of the process (Linux), in bytes, after this
    /// scenario's runs: every run's state is dropped when it ends, so this
    /// is the largest run's footprint plus the process's own.
    pub peak_rss_bytes: Option<u64>,
    /// Against the anchors timed in the same session (`--peer`): seeds/s
    /// over the peer's, and events/s over the bare loop's.
    pub vs_peer_one_core: Option<f64>,
    pub vs_peer_all_jobs: Option<f64>,
    pub vs_bare_loop: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Growth {
    pub orders: u64,
    pub seeds: u64,
    pub events_per_seed: f64,
    pub events_per_s: f64,
    pub ns_per_event: f64,
    /// Events/s here over events/s at the smallest size.
    pub relative: f64,
}

/// The sizes `growth` measures.
pub const GROWTH_ORDERS: [u64; 3] = [200, 2_000, 20_000];

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

/// Heap allocations so far, in a `count-allocs` build.
fn allocations() -> Option<u64> {
    #[cfg(feature = "count-allocs")]
    {
        Some(crate::ALLOCATOR.stats().allocations as u64)
    }
    #[cfg(not(feature = "count-allocs"))]
    {
        None
    }
}

/// What `seeds` seeds on this thread cost.
#[derive(Default)]
struct OneCore {
    events: u64,
    wall_s: f64,
    by_kind: [u64; EventKind::COUNT],
    stale: [u64; EventKind::COUNT],
    max_pending: u64,
    allocations: Option<u64>,
}

/// Run `seeds` seeds one after another on this thread.
fn one_core(s: &Scenario, strategy: Strategy, seeds: u64, checks: bool) -> OneCore {
    let mut out = OneCore::default();
    let allocs_before = allocations();
    let started = Instant::now();
    for seed in 0..seeds {
        let spec = RunSpec { per_step_checks: checks, ..RunSpec::new(s, strategy, None, seed) };
        let stats = harness::run(&spec).stats;
        out.events += stats.steps;
        for k in 0..EventKind::COUNT {
            out.by_kind[k] += stats.by_kind[k];
            out.stale[k] += stats.stale_by_kind[k];
        }
        out.max_pending = out.max_pending.max(stats.max_pending);
    }
    out.wall_s = started.elapsed().as_secs_f64();
    out.allocations = allocs_before.and_then(|b| Some(allocations()? - b));
    out
}

/// Building and booting a seed's world, without running it: µs per seed.
fn setup_us(s: &Scenario, strategy: Strategy, seeds: u64) -> f64 {
    let started = Instant::now();
    for seed in 0..seeds {
        let mut sim = harness::build(&RunSpec::new(s, strategy, None, seed));
        sim.start();
        std::hint::black_box(sim.now_us());
    }
    started.elapsed().as_secs_f64() * 1e6 / seeds as f64
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
pub fn bench_scenario(
    s: &Scenario,
    strategy: Strategy,
    seeds: u64,
    jobs: usize,
    anchors: Option<&Anchors>,
) -> ScenarioBench {
    let on = one_core(s, strategy, seeds, true);
    let off = one_core(s, strategy, seeds, false);
    let setup_us_per_seed = setup_us(s, strategy, seeds.min(200));
    let spec = SweepSpec {
        scenario: s,
        strategy,
        bug: None,
        seeds: (0, seeds),
        jobs,
        explore: Explore::AS_WRITTEN,
    };
    let all = sweep::sweep(&spec);
    let seeds_per_s = seeds as f64 / on.wall_s;
    let events_per_s = on.events as f64 / on.wall_s;
    let by_kind = EventKind::ALL
        .iter()
        .map(|&k| KindCount {
            kind: k.name(),
            per_seed: on.by_kind[k as usize] as f64 / seeds as f64,
            stale_per_seed: on.stale[k as usize] as f64 / seeds as f64,
        })
        .collect();
    let peer = anchors.filter(|_| s.name == "saga-bench").map(|a| a.peer.seeds_per_s);
    ScenarioBench {
        scenario: s.name.clone(),
        events_per_s,
        ns_per_event: 1e9 / events_per_s,
        events_per_s_unchecked: off.events as f64 / off.wall_s,
        ns_per_event_unchecked: off.wall_s * 1e9 / off.events as f64,
        invariant_overhead: on.wall_s / off.wall_s - 1.0,
        seeds_per_s,
        setup_us_per_seed,
        seeds_per_s_all_jobs: all.seeds_per_s,
        scaling: all.seeds_per_s / seeds_per_s,
        events_per_seed: on.events as f64 / seeds as f64,
        by_kind,
        max_pending: on.max_pending,
        allocations_per_event: on.allocations.map(|a| a as f64 / on.events as f64),
        peak_rss_bytes: peak_rss_bytes(),
        vs_peer_one_core: peer.map(|p| seeds_per_s / p),
        vs_peer_all_jobs: peer.map(|p| all.seeds_per_s / p),
        vs_bare_loop: anchors.map(|a| events_per_s / a.floor.events_per_s),
    }
}

/// `s` grown to `orders` orders, with users, stock and the time and step
/// budgets grown by the same factor (the faults stay as written).
pub fn grown(s: &Scenario, orders: u64) -> Scenario {
    let mut g = s.clone();
    let base = s.workload.orders.max(1);
    let scale = |x: u64| x.saturating_mul(orders) / base;
    g.workload.orders = orders;
    g.workload.users = scale(s.workload.users).max(1);
    g.workload.stock = (scale(s.workload.stock.0), scale(s.workload.stock.1));
    g.heal_budget_us = scale(s.heal_budget_us);
    g.step_budget = scale(s.step_budget);
    g
}

/// Events/s on one core at each of `GROWTH_ORDERS`, per-step checks on:
/// about the same number of orders at each size (`seeds` seeds of 200).
pub fn growth(s: &Scenario, strategy: Strategy, seeds: u64) -> Vec<Growth> {
    let mut out: Vec<Growth> = Vec::new();
    for orders in GROWTH_ORDERS {
        let g = grown(s, orders);
        let n = (seeds * 200 / orders).max(2);
        let r = one_core(&g, strategy, n, true);
        let events_per_s = r.events as f64 / r.wall_s;
        let first = out.first().map_or(events_per_s, |f| f.events_per_s);
        out.push(Growth {
            orders,
            seeds: n,
            events_per_seed: r.events as f64 / n as f64,
            events_per_s,
            ns_per_event: 1e9 / events_per_s,
            relative: events_per_s / first,
        });
    }
    out
}

pub fn bench(
    scenarios: &[Scenario],
    strategy: Strategy,
    seeds: u64,
    jobs: usize,
    anchors: Option<Anchors>,
) -> BenchReport {
    let floor = floor_events_per_s(20_000_000);
    let measured =
        scenarios.iter().map(|s| bench_scenario(s, strategy, seeds, jobs, anchors.as_ref()));
    let scenarios_bench = measured.collect();
    let growth = scenarios.last().map(|s| growth(s, strategy, seeds)).unwrap_or_default();
    BenchReport {
        schema: "sagasim.bench/3",
        strategy: strategy.name(),
        seeds,
        jobs,
        floor_events_per_s: floor,
        anchors,
        scenarios: scenarios_bench,
        growth,
    }
}

pub fn render_text(r: &BenchReport, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let m = |x: f64| format!("{:.2} M", x / 1e6);
    writeln!(out, "bench strategy={} seeds={} jobs={}", r.strategy, r.seeds, r.jobs)?;
    writeln!(out, "floor (sagasim's queue, bare loop)   {} events/s", m(r.floor_events_per_s))?;
    if let Some(a) = &r.anchors {
        writeln!(
            out,
            "anchors (timed this session)         peer {:.1} seeds/s ({} seeds), bare loop {} events/s",
            a.peer.seeds_per_s,
            a.peer.seeds,
            m(a.floor.events_per_s)
        )?;
    }
    for s in &r.scenarios {
        writeln!(out, "scenario {} ({:.0} events per seed)", s.scenario, s.events_per_seed)?;
        writeln!(
            out,
            "  one core, per-step invariants on   {} events/s, {:.0} ns/event, {:.0} seeds/s",
            m(s.events_per_s),
            s.ns_per_event,
            s.seeds_per_s
        )?;
        writeln!(
            out,
            "  one core, per-step invariants off  {} events/s, {:.0} ns/event",
            m(s.events_per_s_unchecked),
            s.ns_per_event_unchecked
        )?;
        writeln!(
            out,
            "  per-step invariant overhead        {:.1} %",
            s.invariant_overhead * 100.0
        )?;
        writeln!(out, "  setup per seed                     {:.0} µs", s.setup_us_per_seed)?;
        writeln!(out, "  most events pending at once        {}", s.max_pending)?;
        match s.allocations_per_event {
            Some(a) => writeln!(out, "  allocations per event              {a:.3}")?,
            None => writeln!(
                out,
                "  allocations per event              (build with --features count-allocs)"
            )?,
        }
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
        if let (Some(one), Some(all)) = (s.vs_peer_one_core, s.vs_peer_all_jobs) {
            writeln!(
                out,
                "  vs the peer, same session          {one:.1}x on one core, {all:.1}x on {} jobs",
                r.jobs
            )?;
        }
        if let Some(v) = s.vs_bare_loop {
            writeln!(out, "  events/s vs the bare loop          {v:.3}x")?;
        }
        writeln!(out, "  events per seed by kind (of which stale)")?;
        for k in s.by_kind.iter().filter(|k| k.per_seed > 0.0) {
            writeln!(out, "    {:<34} {:>9.1}  ({:.1})", k.kind, k.per_seed, k.stale_per_seed)?;
        }
    }
    if !r.growth.is_empty() {
        writeln!(out, "growth (one core, invariants on, users and stock scaled with orders)")?;
        for g in &r.growth {
            writeln!(
                out,
                "  {:>6} orders  {:>3} seeds  {:>10.0} events/seed  {} events/s  {:.0} ns/event  {:.2}x",
                g.orders,
                g.seeds,
                g.events_per_seed,
                m(g.events_per_s),
                g.ns_per_event,
                g.relative
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_read_from_peer_bench_output_and_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("sagasim-anchors-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = dir.join("good.json");
        std::fs::write(
            &good,
            r#"{"peer": {"seeds":200,"orders":40000,"seeds_per_s":41.5,"wall_s":4.8},
                "floor": {"events":20000000,"wall_s":2.5,"events_per_s":7787077}}"#,
        )
        .expect("write");
        let a = Anchors::load(&good).expect("peer-bench.sh output parses");
        assert_eq!((a.peer.seeds, a.peer.seeds_per_s), (200, 41.5));
        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"{"peer": {"seeds": 1}}"#).expect("write");
        let e = Anchors::load(&bad).expect_err("a truncated file is refused");
        assert!(e.contains("bad.json") && e.contains("line"), "{e}");
        let e = Anchors::load(&dir.join("missing.json")).expect_err("a missing file");
        assert!(e.contains("cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn growing_a_scenario_scales_users_stock_and_budgets_with_the_orders() {
        let s = Scenario::load("saga-bench").expect("built in");
        let g = grown(&s, s.workload.orders * 10);
        assert_eq!(g.workload.users, s.workload.users * 10);
        assert_eq!(g.workload.stock.1, s.workload.stock.1 * 10);
        assert_eq!(g.heal_budget_us, s.heal_budget_us * 10);
    }
}
