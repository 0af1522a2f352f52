//! Running many seeds: each seed is one single-threaded, deterministic run;
//! seeds are spread over worker threads, and a panic inside one run becomes
//! that seed's failure while the others go on. [`coverage`] counts what the
//! runs exercised; [`ci`] is the sweep as CI runs it (progress, corpus,
//! formats, Ctrl-C).

pub mod ci;
pub mod coverage;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use domain::{Bug, Strategy};
use reports::{CoverageCount, Failure, SweepResult, SWEEP_SCHEMA};
use sim::End;

use crate::harness::explore::Explore;
use crate::harness::{self, RunReport, RunSpec};
use crate::scenario::Scenario;

/// What a sweep is over.
#[derive(Clone, Debug)]
pub struct SweepSpec<'a> {
    pub scenario: &'a Scenario,
    pub strategy: Strategy,
    pub bug: Option<Bug>,
    /// First inclusive, last exclusive.
    pub seeds: (u64, u64),
    pub jobs: usize,
    pub explore: Explore,
}

/// One seed's result, kept small: a sweep holds one per seed.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedResult {
    pub seed: u64,
    pub digest: u64,
    pub events: u64,
    pub faults: u64,
    pub outcomes: harness::Outcomes,
    pub failure: Option<Failure>,
    /// The coverage points the run hit (see [`coverage`]).
    pub hits: u64,
}

pub fn hex(digest: u64) -> String {
    format!("{digest:016x}")
}

/// The command line that reproduces one run.
pub fn repro(run: &RunSpec<'_>) -> String {
    let bug = run.bug.map(|b| format!(" --bug {}", b.name())).unwrap_or_default();
    let scale = match run.scenario.fault_scale {
        1.0 => String::new(),
        s => format!(" --fault-scale {s}"),
    };
    format!(
        "sagasim replay --seed {} --scenario {}{scale} --strategy {}{bug}{}",
        run.seed,
        run.scenario.origin,
        run.strategy.name(),
        run.explore.flags()
    )
}

/// The failure a run report describes, if it failed.
pub fn failure_of(r: &RunReport, run: &RunSpec<'_>) -> Option<Failure> {
    let scenario = run.scenario;
    let (invariant, entities, detail) = match (&r.violation, r.end) {
        (Some(v), _) => (
            v.invariant.name().to_string(),
            v.entities.iter().map(|e| e.to_string()).collect(),
            v.detail.clone(),
        ),
        (None, End::StepBudget) => {
            let d = format!("the run took more than {} steps", scenario.step_budget);
            ("step-budget".to_string(), Vec::new(), d)
        }
        (None, _) => return None,
    };
    Some(Failure {
        seed: r.seed,
        invariant,
        step: r.step,
        time_us: r.time_us,
        digest: hex(r.digest),
        entities,
        detail,
        repro: repro(run),
    })
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// What makes one run; tests substitute one that fails on purpose.
pub type Runner = dyn Fn(&RunSpec<'_>) -> RunReport + Sync;

/// Make one run, turning a panic into its message.
pub fn run_guarded(spec: &RunSpec<'_>, runner: &Runner) -> Result<RunReport, String> {
    catch_unwind(AssertUnwindSafe(|| runner(spec))).map_err(|p| panic_message(p.as_ref()))
}

/// The failure of a run that panicked.
pub fn panic_failure(spec: &RunSpec<'_>, message: String) -> Failure {
    Failure {
        seed: spec.seed,
        invariant: "panic".to_string(),
        step: 0,
        time_us: 0,
        digest: hex(0),
        entities: Vec::new(),
        detail: message,
        repro: repro(spec),
    }
}

/// Run one seed with `runner`; a panic becomes the seed's failure.
pub fn run_seed(spec: &SweepSpec<'_>, seed: u64, runner: &Runner) -> SeedResult {
    let run = RunSpec {
        explore: spec.explore,
        ..RunSpec::new(spec.scenario, spec.strategy, spec.bug, seed)
    };
    match run_guarded(&run, runner) {
        Ok(r) => SeedResult {
            seed,
            digest: r.digest,
            events: r.stats.steps,
            faults: r.faults.len() as u64,
            outcomes: r.outcomes,
            failure: failure_of(&r, &run),
            hits: crate::sweep::coverage::hits(&r),
        },
        Err(message) => SeedResult {
            seed,
            digest: 0,
            events: 0,
            faults: 0,
            outcomes: harness::Outcomes::default(),
            failure: Some(panic_failure(&run, message)),
            hits: 0,
        },
    }
}

/// How a sweep may end early, and what it says as it goes.
#[derive(Default)]
pub struct Control<'a> {
    /// Stop taking seeds at the first failure.
    pub fail_fast: bool,
    /// Stop taking seeds at this moment.
    pub deadline: Option<Instant>,
    /// Set from outside (Ctrl-C) to stop taking seeds.
    pub interrupt: Option<&'a AtomicBool>,
    /// The share of seeds, in parts per million, run a second time to check
    /// that they give the same digest.
    pub check_determinism_ppm: u32,
    /// Called on the worker as each seed finishes: streamed output, a
    /// progress bar.
    pub on_seed: Option<&'a (dyn Fn(&SeedResult) + Sync)>,
}

/// The seeds a sweep ran, in seed order, and why it stopped early if it did.
pub struct Seeds {
    pub results: Vec<SeedResult>,
    pub stopped: Option<&'static str>,
    pub determinism_checked: u64,
}

/// Whether `seed` is one of the share `ppm` checked for determinism: a
/// fixed choice, so a rerun of the sweep checks the same seeds.
fn checked(seed: u64, ppm: u32) -> bool {
    ppm > 0 && sim::trace::stable_hash(&("determinism", seed)) % 1_000_000 < ppm as u64
}

/// Run a seed a second time; a different digest is the seed's failure.
fn check_determinism(spec: &SweepSpec<'_>, first: &mut SeedResult, runner: &Runner) {
    let again = run_seed(spec, first.seed, runner);
    // A panicked run has no digest worth comparing.
    let comparable = first.failure.as_ref().is_none_or(|f| f.invariant != "panic");
    if again.digest != first.digest && comparable {
        let run = RunSpec {
            explore: spec.explore,
            ..RunSpec::new(spec.scenario, spec.strategy, spec.bug, first.seed)
        };
        first.failure = Some(Failure {
            seed: first.seed,
            invariant: "nondeterminism".to_string(),
            step: again.events.min(first.events),
            time_us: 0,
            digest: hex(first.digest),
            entities: Vec::new(),
            detail: format!(
                "two runs of the seed gave digests {} ({} steps) and {} ({} steps)",
                hex(first.digest),
                first.events,
                hex(again.digest),
                again.events
            ),
            repro: repro(&run),
        });
    }
}

/// Run every seed of the sweep; results come back in seed order whatever the
/// number of jobs.
pub fn run_seeds(spec: &SweepSpec<'_>) -> Vec<SeedResult> {
    run_seeds_with(spec, &harness::run)
}

/// [`run_seeds`] with another runner.
pub fn run_seeds_with(spec: &SweepSpec<'_>, runner: &Runner) -> Vec<SeedResult> {
    run_controlled(spec, &Control::default(), runner).results
}

/// Run the seeds of `spec` under `control` with `runner`.
pub fn run_controlled(spec: &SweepSpec<'_>, control: &Control<'_>, runner: &Runner) -> Seeds {
    let (first, last) = spec.seeds;
    let next = AtomicU64::new(first);
    let results = Mutex::new(Vec::with_capacity((last - first) as usize));
    let stopped: Mutex<Option<&'static str>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let checked_n = AtomicU64::new(0);
    let halt = |why: &'static str| {
        stop.store(true, Ordering::Relaxed);
        stopped.lock().expect("no worker panics holding it").get_or_insert(why);
    };
    let jobs = spec.jobs.max(1).min((last - first).max(1) as usize);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    if control.interrupt.is_some_and(|i| i.load(Ordering::Relaxed)) {
                        halt("interrupted");
                    }
                    if control.deadline.is_some_and(|d| Instant::now() >= d) {
                        halt("max-time");
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= last {
                        break;
                    }
                    let mut r = run_seed(spec, seed, runner);
                    if checked(seed, control.check_determinism_ppm) {
                        checked_n.fetch_add(1, Ordering::Relaxed);
                        check_determinism(spec, &mut r, runner);
                    }
                    if r.failure.is_some() && control.fail_fast {
                        halt("fail-fast");
                    }
                    if let Some(f) = control.on_seed {
                        f(&r);
                    }
                    mine.push(r);
                }
                results.lock().expect("no worker panics while holding the lock").extend(mine);
            });
        }
    });
    let mut results = results.into_inner().expect("workers are done");
    results.sort_by_key(|r| r.seed);
    let stopped = stopped.into_inner().expect("workers are done");
    // Stopped, but every seed had already been taken: nothing was cut short.
    let stopped = stopped.filter(|_| results.len() as u64 != last - first);
    Seeds { results, stopped, determinism_checked: checked_n.into_inner() }
}

/// Run a sweep and summarise it.
pub fn sweep(spec: &SweepSpec<'_>) -> SweepResult {
    sweep_controlled(spec, &Control::default())
}

/// Run a sweep under `control` and summarise it.
pub fn sweep_controlled(spec: &SweepSpec<'_>, control: &Control<'_>) -> SweepResult {
    let started = Instant::now();
    let seeds = run_controlled(spec, control, &harness::run);
    let wall_s = started.elapsed().as_secs_f64();
    let mut r = summarise(spec, &seeds.results, wall_s);
    r.stopped = seeds.stopped.map(str::to_string);
    r.determinism_checked = seeds.determinism_checked;
    r
}

pub fn summarise(spec: &SweepSpec<'_>, results: &[SeedResult], wall_s: f64) -> SweepResult {
    let mut outcomes = harness::Outcomes::default();
    let (mut events, mut faults) = (0, 0);
    for r in results {
        outcomes += r.outcomes;
        events += r.events;
        faults += r.faults;
    }
    let failures: Vec<Failure> = results.iter().filter_map(|r| r.failure.clone()).collect();
    let coverage: Vec<CoverageCount> = crate::scenario::points::POINTS
        .iter()
        .enumerate()
        .map(|(i, p)| CoverageCount {
            point: p.to_string(),
            seeds: results.iter().filter(|r| r.hits & (1u64 << i) != 0).count() as u64,
        })
        .collect();
    let hit = |name: &String| coverage.iter().any(|c| &c.point == name && c.seeds > 0);
    let expected_missing: Vec<String> =
        spec.scenario.expect.iter().filter(|e| !hit(e)).cloned().collect();
    let per_s = |x: f64| if wall_s > 0.0 { x / wall_s } else { 0.0 };
    SweepResult {
        schema: SWEEP_SCHEMA.to_string(),
        scenario: spec.scenario.name.clone(),
        strategy: spec.strategy.name().to_string(),
        bug: spec.bug.map(|b| b.name().to_string()),
        explore: spec.explore.label(),
        seeds: [spec.seeds.0, spec.seeds.1],
        shard: None,
        stopped: None,
        runs: results.len() as u64,
        violations: failures.len() as u64,
        failures,
        events,
        faults,
        outcomes,
        coverage,
        expected_missing,
        corpus: Vec::new(),
        determinism_checked: 0,
        wall_s,
        events_per_s: per_s(events as f64),
        seeds_per_s: per_s(results.len() as f64),
    }
}
