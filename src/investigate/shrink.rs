//! Shrinking a failure: the smallest run this shrinker can find that still
//! violates the same invariant. First the fault plan, by delta debugging
//! (ddmin) over the run's fault decisions, replaying with the others
//! switched off by the kernel's fault mask; then the workload (fewer
//! orders, users and products, a shorter fault phase), keeping each cut
//! that still fails; then the faults again.
//!
//! Removing submissions moves every later fault decision (the decisions
//! are numbered in the order the run takes them), so a failure that needs
//! its faults at particular messages often stops failing when unrelated
//! orders go. When the workload is still above five submissions, a second
//! path is tried from the input: shrink the submissions with every fault
//! the seed draws left on, then shrink the faults of what remains.
//! Its result is kept if it has fewer submissions and no more faults than
//! the first path's (or at most five); either way the result is never
//! larger than the input in any dimension.
//!
//! Every candidate is a full, deterministic run, so shrinking is
//! deterministic too; a budget of runs bounds the time a shrink takes.

use std::collections::{BTreeMap, BTreeSet};

use domain::{Bug, Strategy};

use crate::harness::explore::Explore;
use crate::harness::{self, RunSpec};
use crate::scenario::Scenario;
use crate::sweep;

/// What is being shrunk, and what must keep failing.
pub struct Target {
    pub scenario: Scenario,
    pub strategy: Strategy,
    pub bug: Option<Bug>,
    pub seed: u64,
    /// The invariant every candidate must still violate.
    pub invariant: String,
    pub explore: Explore,
}

/// The workload knobs shrinking turns down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub orders: u64,
    pub users: u64,
    pub products: u64,
    pub fault_phase_us: u64,
}

impl Size {
    pub fn of(s: &Scenario) -> Size {
        Size {
            orders: s.workload.orders,
            users: s.workload.users,
            products: s.workload.products,
            fault_phase_us: s.fault_phase_us,
        }
    }

    /// `s` at this size.
    pub fn apply(self, s: &Scenario) -> Scenario {
        let mut s = s.clone();
        s.workload.orders = self.orders;
        s.workload.users = self.users;
        s.workload.products = self.products;
        s.workload.hot_products = s.workload.hot_products.min(self.products);
        s.fault_phase_us = self.fault_phase_us;
        s
    }
}

/// What one stage removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    pub what: &'static str,
    pub from: u64,
    pub to: u64,
}

/// The shrunk failure: its size, the fault decisions allowed, the
/// submissions kept, the run, and what each stage removed.
pub struct Shrunk {
    pub size: Size,
    pub mask: BTreeSet<u64>,
    pub arrivals: BTreeSet<u64>,
    pub report: harness::RunReport,
    pub stages: Vec<Stage>,
    pub runs: u64,
}

impl Shrunk {
    /// The plan that replays it: its faults, forced where they struck.
    pub fn follow(&self) -> sim::Follow {
        let known = self.report.faults.iter().filter_map(|f| Some((f.decision?, f.fault.clone())));
        plan(&self.mask, &known.collect())
    }
}

/// One candidate: a size, the fault decisions allowed (`None`: every one
/// the seed draws), the submissions kept.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Candidate {
    size: Size,
    faults: Option<BTreeSet<u64>>,
    arrivals: BTreeSet<u64>,
}

/// Which set of a candidate delta debugging varies.
#[derive(Clone, Copy)]
enum Part {
    Faults,
    Arrivals,
}

impl Candidate {
    fn with(&self, part: Part, items: &[u64]) -> Candidate {
        let set = items.iter().copied().collect();
        match part {
            Part::Faults => Candidate { faults: Some(set), ..self.clone() },
            Part::Arrivals => Candidate { arrivals: set, ..self.clone() },
        }
    }
}

/// The runs one shrink may make. Delta debugging needs O(n log n) runs
/// where a failure depends on many of its n faults; past the budget each
/// stage keeps what it has.
pub const RUN_BUDGET: u64 = 20_000;

struct Shrinker<'a> {
    t: &'a Target,
    runs: u64,
    /// What each fault decision seen so far struck with: kept faults are
    /// forced where they were decided, so they strike whatever the seed's
    /// draws do once other faults are gone.
    known: BTreeMap<u64, sim::Fault>,
    /// The last candidate seen to fail.
    last: Option<Candidate>,
}

impl Shrinker<'_> {
    /// Run a candidate; its report if it still violates the invariant.
    fn run(&mut self, c: &Candidate) -> Option<harness::RunReport> {
        self.runs += 1;
        let scenario = c.size.apply(&self.t.scenario);
        let follow = c
            .faults
            .as_ref()
            .filter(|_| !self.known.is_empty())
            .map(|keys| plan(keys, &self.known));
        let spec = RunSpec {
            fault_mask: c.faults.as_ref(),
            arrivals: Some(&c.arrivals),
            explore: self.t.explore,
            follow: follow.as_ref(),
            ..RunSpec::new(&scenario, self.t.strategy, self.t.bug, self.t.seed)
        };
        let r = sweep::run_guarded(&spec, &harness::run).ok()?;
        let f = sweep::failure_of(&r, &spec)?;
        if f.invariant != self.t.invariant {
            return None;
        }
        self.last = Some(c.clone());
        for x in &r.faults {
            if let Some(key) = x.decision {
                self.known.entry(key).or_insert_with(|| x.fault.clone());
            }
        }
        Some(r)
    }

    /// Delta debugging (ddmin) of one part of `c`: a 1-minimal subset of
    /// `items` with which the candidate still fails.
    fn ddmin(&mut self, c: &Candidate, part: Part, items: Vec<u64>) -> Vec<u64> {
        if self.run(&c.with(part, &[])).is_some() {
            return Vec::new();
        }
        let mut kept = items;
        let mut n = 2usize;
        while kept.len() >= 2 && self.runs < RUN_BUDGET {
            let chunk = kept.len().div_ceil(n);
            let parts: Vec<Vec<u64>> = kept.chunks(chunk).map(<[u64]>::to_vec).collect();
            let mut next = None;
            for p in &parts {
                if self.run(&c.with(part, p)).is_some() {
                    next = Some((p.clone(), 2));
                    break;
                }
            }
            if next.is_none() && parts.len() > 2 {
                for i in 0..parts.len() {
                    let rest: Vec<u64> = parts
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .flat_map(|(_, p)| p.iter().copied())
                        .collect();
                    if self.run(&c.with(part, &rest)).is_some() {
                        next = Some((rest, (n - 1).max(2)));
                        break;
                    }
                }
            }
            match next {
                Some((smaller, granularity)) => (kept, n) = (smaller, granularity),
                None if n >= kept.len() => break,
                None => n = (2 * n).min(kept.len()),
            }
        }
        kept
    }

    /// Turn one workload knob down as far as the failure allows: the
    /// smallest of a few values below it that still fails.
    fn shrink_knob(
        &mut self,
        c: &Candidate,
        get: fn(&Size) -> u64,
        set: fn(&mut Size, u64),
    ) -> Size {
        let now = get(&c.size);
        let mut values: Vec<u64> = vec![1, 2, 3, 5, now / 8, now / 4, now / 2, now * 3 / 4];
        values.retain(|&v| v >= 1 && v < now);
        values.sort_unstable();
        values.dedup();
        for v in values {
            let mut smaller = c.size;
            set(&mut smaller, v);
            if self.run(&Candidate { size: smaller, ..c.clone() }).is_some() {
                return smaller;
            }
        }
        c.size
    }
}

/// The faults `keys` name, forced where they were decided and nowhere
/// else: the plan a shrunk failure is replayed with.
pub fn plan(keys: &BTreeSet<u64>, known: &BTreeMap<u64, sim::Fault>) -> sim::Follow {
    let faults = keys.iter().filter_map(|k| Some((*k, known.get(k)?.clone()))).collect();
    sim::Follow { faults, until: u64::MAX, strict: true }
}

/// The mask keys of the faults that struck in a run.
pub fn struck(r: &harness::RunReport) -> Vec<u64> {
    r.faults.iter().filter_map(|f| f.decision).collect()
}

/// Where shrinking a failing run starts: the faults that struck, and the
/// submissions it kept (`kept`, for a run already shrunk; else all).
pub fn starting_point(
    r: &harness::RunReport,
    kept: Option<&BTreeSet<u64>>,
) -> (Vec<u64>, Vec<u64>) {
    let arrivals = match kept {
        Some(a) => a.iter().copied().collect(),
        None => (0..r.submissions).collect(),
    };
    (struck(r), arrivals)
}

type Knob = (&'static str, fn(&Size) -> u64, fn(&mut Size, u64));

const KNOBS: [Knob; 3] = [
    ("users", |z| z.users, |z, v| z.users = v),
    ("products", |z| z.products, |z, v| z.products = v),
    ("fault phase (ms)", |z| z.fault_phase_us / 1000, |z, v| z.fault_phase_us = v * 1000),
];

/// Shrink `t`: start from the fault decisions `faults` allowed and the
/// `arrivals` submissions kept.
pub fn shrink(t: &Target, faults: Vec<u64>, arrivals: Vec<u64>) -> Option<Shrunk> {
    let mut s = Shrinker { t, runs: 0, known: BTreeMap::new(), last: None };
    let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
    let mut c = Candidate {
        size: Size::of(&t.scenario),
        faults: Some(set(&faults)),
        arrivals: set(&arrivals),
    };
    let input = c.clone();
    s.run(&c)?;
    let mut stages = Vec::new();
    let mut stage = |what, from: usize, to: usize| {
        stages.push(Stage { what, from: from as u64, to: to as u64 })
    };
    let kept = s.ddmin(&c, Part::Faults, faults.clone());
    stage("faults", faults.len(), kept.len());
    c = c.with(Part::Faults, &kept);
    let kept = s.ddmin(&c, Part::Arrivals, arrivals.clone());
    stage("submissions", arrivals.len(), kept.len());
    c = c.with(Part::Arrivals, &kept);
    let start = c.size;
    c.size = shrink_knobs(&mut s, &c);
    for (what, get, _) in KNOBS {
        stage(what, get(&start) as usize, get(&c.size) as usize);
    }
    // A smaller workload takes other decisions: shrink both sets again.
    let struck_now = s.run(&c).map(|r| struck(&r)).unwrap_or_default();
    let kept = s.ddmin(&c, Part::Faults, struck_now.clone());
    c = c.with(Part::Faults, &kept);
    let arrivals_now: Vec<u64> = c.arrivals.iter().copied().collect();
    let kept_arrivals = s.ddmin(&c, Part::Arrivals, arrivals_now.clone());
    c = c.with(Part::Arrivals, &kept_arrivals);
    // Each stage keeps only what it saw fail, but a set a stage started
    // from is not run again; should it not fail, the last that did stands.
    if s.run(&c).is_none() {
        c = s.last.clone().expect("the input was seen to fail");
    }
    let report = s.run(&c).expect("this candidate was seen to fail");
    let mask: BTreeSet<u64> = struck(&report).into_iter().collect();
    stage("faults, again", struck_now.len(), mask.len());
    stage("submissions, again", arrivals_now.len(), c.arrivals.len());
    let mut shrunk =
        Shrunk { size: c.size, mask, arrivals: c.arrivals.clone(), report, stages, runs: 0 };
    if shrunk.arrivals.len() > 5 {
        if let Some(other) = fresh_faults(&mut s, &input, faults.len()) {
            // Fewer submissions, at no more faults than the first path
            // kept (or five, the size a reader takes in at a glance).
            if other.arrivals.len() < shrunk.arrivals.len()
                && other.mask.len() <= shrunk.mask.len().max(5)
            {
                // The second path starts again from the input.
                shrunk.stages.push(Stage {
                    what: "submissions, faults on",
                    from: input.arrivals.len() as u64,
                    to: other.arrivals.len() as u64,
                });
                shrunk.stages.push(Stage {
                    what: "faults, of those",
                    from: faults.len() as u64,
                    to: other.mask.len() as u64,
                });
                for (what, get, _) in KNOBS {
                    let (from, to) = (get(&input.size), get(&other.size));
                    shrunk.stages.push(Stage { what, from, to });
                }
                (shrunk.size, shrunk.mask, shrunk.arrivals, shrunk.report) =
                    (other.size, other.mask, other.arrivals, other.report);
            }
        }
    }
    shrunk.runs = s.runs;
    Some(shrunk)
}

/// Turn the workload knobs down in rounds: a smaller value of one can let
/// another go lower, so go round until nothing moves (each round only
/// lowers, so this ends).
fn shrink_knobs(s: &mut Shrinker<'_>, c: &Candidate) -> Size {
    let mut c = c.clone();
    loop {
        let before = c.size;
        for (_, get, set) in KNOBS {
            c.size = s.shrink_knob(&c, get, set);
        }
        if c.size == before {
            return c.size;
        }
    }
}

/// The second path: from the input `c`, shrink the submissions with every
/// fault the seed draws on, then the faults of the smallest workload that
/// still fails. `None` if that does not fail, or needs more than
/// `max_faults`.
fn fresh_faults(s: &mut Shrinker<'_>, c: &Candidate, max_faults: usize) -> Option<Shrunk> {
    let open = Candidate { faults: None, ..c.clone() };
    // Its runs strike other faults under the same keys: learn them afresh.
    s.known.clear();
    s.run(&open)?;
    let arrivals: Vec<u64> = c.arrivals.iter().copied().collect();
    let kept = s.ddmin(&open, Part::Arrivals, arrivals);
    let small = open.with(Part::Arrivals, &kept);
    let drawn = struck(&s.run(&small)?);
    let kept_faults = s.ddmin(&small, Part::Faults, drawn);
    let mut c = small.with(Part::Faults, &kept_faults);
    c.size = shrink_knobs(s, &c);
    let report = s.run(&c)?;
    let mask: BTreeSet<u64> = struck(&report).into_iter().collect();
    (mask.len() <= max_faults).then(|| Shrunk {
        size: c.size,
        mask,
        arrivals: c.arrivals,
        report,
        stages: Vec::new(),
        runs: 0,
    })
}
