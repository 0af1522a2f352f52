//! Failure files: one failing seed as a JSON file that stands alone. It
//! carries the scenario's TOML inline (so a changed or missing scenario file
//! does not matter), the strategy, the planted bug, the seed, the fault
//! decisions the run took, and the violation with its trace digest.
//! `sagasim replay FILE` reruns it following the recorded decisions rather
//! than the seed's draws, as far as they still apply, and says whether it
//! reproduced and where it parted from the recording.
//!
//! Version 2 names counted fault decisions by their opportunity (every
//! message, commit or application fault point), so a recorded fault can be
//! forced; version 1 numbered only the faults drawn, and is refused.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use domain::{Bug, Strategy};
use reports::Failure;
use serde::{Deserialize, Serialize};
use sim::FaultRecord;

use crate::harness::explore::Explore;
use crate::harness::{self, RunSpec};
use crate::scenario::{Scenario, BUILT_IN};
use crate::sweep;

pub const FAILURE_SCHEMA: &str = "sagasim.failure/2";

/// The scenario of a failure, inline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InlineScenario {
    pub name: String,
    /// How it was named when the failure was found: a built-in or a path.
    pub origin: String,
    pub fault_scale: f64,
    /// The scenario file's text (fields it leaves out come from `default`).
    pub toml: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureFile {
    pub schema: String,
    pub scenario: InlineScenario,
    pub strategy: String,
    pub bug: Option<String>,
    pub seed: u64,
    /// Swarm testing and the scheduling strategy the run explored with.
    pub explore: Explore,
    pub failure: Failure,
    /// Every fault that struck in the failing run, in order.
    pub faults: Vec<FaultRecord>,
    /// Set by `sagasim shrink`: the smaller workload, and the fault
    /// decisions (numbered in the order the run takes them) still allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrunk: Option<ShrunkPlan>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShrunkPlan {
    pub orders: u64,
    pub users: u64,
    pub products: u64,
    pub fault_phase_us: u64,
    pub fault_mask: Vec<u64>,
    /// The submissions kept, by index in the drawn workload.
    pub arrivals: Vec<u64>,
}

/// Why a failure file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    pub what: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.what)
    }
}

/// The text of a scenario as `--scenario` named it.
fn scenario_text(origin: &str) -> std::io::Result<String> {
    match BUILT_IN.iter().find(|(n, _)| *n == origin) {
        Some((_, text)) => Ok(text.to_string()),
        None => std::fs::read_to_string(origin),
    }
}

/// The failure file of one failing run. It is run again to record its
/// fault decisions (runs are deterministic, so it fails the same way).
pub fn record(spec: &RunSpec<'_>, failure: &Failure) -> std::io::Result<FailureFile> {
    let (scenario, strategy, bug, seed) = (spec.scenario, spec.strategy, spec.bug, spec.seed);
    let faults = sweep::run_guarded(spec, &harness::run).map(|r| r.faults).unwrap_or_default();
    Ok(FailureFile {
        schema: FAILURE_SCHEMA.to_string(),
        scenario: InlineScenario {
            name: scenario.name.clone(),
            origin: scenario.origin.clone(),
            fault_scale: scenario.fault_scale,
            toml: scenario_text(&scenario.origin)?,
        },
        strategy: strategy.name().to_string(),
        bug: bug.map(|b| b.name().to_string()),
        seed,
        explore: spec.explore,
        failure: failure.clone(),
        faults,
        shrunk: None,
    })
}

/// Where a failure's file goes in `dir`.
pub fn path_in(dir: &Path, f: &FailureFile) -> PathBuf {
    let bug = f.bug.as_deref().map(|b| format!("-{b}")).unwrap_or_default();
    let name: String = format!("{}-{}{bug}-seed{}.json", f.scenario.name, f.strategy, f.seed)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .collect();
    dir.join(name)
}

/// Write a failure file into `dir` (created if missing); returns its path.
pub fn write(dir: &Path, f: &FailureFile) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = path_in(dir, f);
    crate::files::write_atomically(&path, |out| {
        serde_json::to_writer_pretty(&mut *out, f).map_err(std::io::Error::other)?;
        writeln!(out)
    })?;
    Ok(path)
}

/// What a failure file asks to run again.
pub struct Loaded {
    pub file: FailureFile,
    /// The scenario, at the shrunk size if the file was shrunk.
    pub scenario: Scenario,
    pub strategy: Strategy,
    pub bug: Option<Bug>,
    /// The fault decisions allowed and the submissions kept, if the file
    /// was shrunk.
    pub mask: Option<BTreeSet<u64>>,
    pub arrivals: Option<BTreeSet<u64>>,
    /// The recorded fault decisions, to follow before the seed.
    pub follow: sim::Follow,
}

impl Loaded {
    /// The run the file asks for: its scenario, strategy, bug, seed and
    /// exploration, the plan of a shrunk file, and the recorded decisions
    /// to follow.
    pub fn spec(&self) -> RunSpec<'_> {
        RunSpec { follow: Some(&self.follow), ..self.seed_spec() }
    }

    /// The same run decided by the seed alone, as `replay --seed` would.
    pub fn seed_spec(&self) -> RunSpec<'_> {
        RunSpec {
            fault_mask: self.mask.as_ref(),
            arrivals: self.arrivals.as_ref(),
            explore: self.file.explore,
            ..RunSpec::new(&self.scenario, self.strategy, self.bug, self.file.seed)
        }
    }
}

/// Read and check a failure file: its schema, its inline scenario, its
/// strategy and bug.
pub fn load(path: &Path) -> Result<Loaded, FileError> {
    let name = path.display().to_string();
    let err = |what: String| FileError { file: name.clone(), what };
    let text =
        std::fs::read_to_string(path).map_err(|e| err(format!("cannot read the file: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| err(format!("not a failure file: {e}")))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(FAILURE_SCHEMA) => {}
        Some(other) => {
            return Err(err(format!(
                "schema `{other}` is not `{FAILURE_SCHEMA}`, the one this sagasim reads"
            )))
        }
        None => return Err(err(format!("no `schema` field: expected `{FAILURE_SCHEMA}`"))),
    }
    let file: FailureFile = serde_json::from_value(value)
        .map_err(|e| err(format!("damaged {FAILURE_SCHEMA} file: {e}")))?;
    let inline = format!("{name} (inline scenario)");
    let scenario = Scenario::parse(&file.scenario.toml, &inline, &file.scenario.origin)
        .map_err(|e| err(format!("its scenario is invalid: {e}")))?
        .scaled(file.scenario.fault_scale);
    let strategy = Strategy::parse(&file.strategy)
        .ok_or_else(|| err(format!("unknown strategy `{}`", file.strategy)))?;
    let bug = match &file.bug {
        Some(b) => Some(Bug::parse(b).ok_or_else(|| err(format!("unknown bug `{b}`")))?),
        None => None,
    };
    if bug.is_some_and(|b| !b.strategies().contains(&strategy)) {
        return Err(err(format!("bug `{:?}` does not apply to {}", file.bug, file.strategy)));
    }
    let (scenario, mask, arrivals) = match &file.shrunk {
        Some(p) if [p.orders, p.users, p.products].contains(&0) => {
            return Err(err(
                "damaged shrunk plan: orders, users and products must be at least 1".into()
            ))
        }
        Some(p) => {
            let size = crate::investigate::shrink::Size {
                orders: p.orders,
                users: p.users,
                products: p.products,
                fault_phase_us: p.fault_phase_us,
            };
            let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
            (size.apply(&scenario), Some(set(&p.fault_mask)), Some(set(&p.arrivals)))
        }
        None => (scenario, None, None),
    };
    let follow = sim::Follow {
        faults: file.faults.iter().filter_map(|f| Some((f.decision?, f.fault.clone()))).collect(),
        until: file.failure.step,
        strict: false,
    };
    Ok(Loaded { file, scenario, strategy, bug, mask, arrivals, follow })
}

/// Where a run's faults first part from the ones a failure file recorded:
/// `None` if the run took exactly the recorded faults, else a sentence
/// naming the step and both faults. A seed stops reproducing when the code
/// changes; this says where.
pub fn divergence(recorded: &[FaultRecord], got: &[FaultRecord]) -> Option<String> {
    let same = |a: &FaultRecord, b: &FaultRecord| {
        (a.step, a.time_us, &a.fault) == (b.step, b.time_us, &b.fault)
    };
    let i = recorded.iter().zip(got).take_while(|(a, b)| same(a, b)).count();
    let show = |f: &FaultRecord| format!("{:?} at step {}", f.fault, f.step);
    match (recorded.get(i), got.get(i)) {
        (None, None) => None,
        (Some(r), Some(g)) => Some(format!(
            "the run diverged from the recording at step {}: fault #{i} was {}, now {}",
            r.step.min(g.step),
            show(r),
            show(g)
        )),
        (Some(r), None) => Some(format!(
            "the run diverged from the recording at step {}: fault #{i}, {}, never came",
            r.step,
            show(r)
        )),
        (None, Some(g)) => Some(format!(
            "the run diverged from the recording at step {}: an extra fault #{i}, {}",
            g.step,
            show(g)
        )),
    }
}

/// Where failure files go: `--out`, or `failures/` under CI, or nowhere.
pub fn failure_dir(out: Option<PathBuf>) -> Option<PathBuf> {
    out.or_else(|| std::env::var_os("CI").map(|_| PathBuf::from("failures")))
}

/// Write the failure file of a failing seed; say where on stderr.
pub fn save_failure(
    dir: &Path,
    spec: &RunSpec<'_>,
    failure: &reports::Failure,
) -> Result<(), ExitCode> {
    let run = RunSpec { seed: failure.seed, trace: false, ..*spec };
    let saved = record(&run, failure).and_then(|f| write(dir, &f));
    match saved {
        Ok(path) => {
            eprintln!("failure file: {}", path.display());
            Ok(())
        }
        Err(e) => {
            eprintln!("error: cannot write a failure file into {}: {e}", dir.display());
            Err(ExitCode::from(2))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergence_names_the_first_fault_that_differs() {
        let f = |step, node| FaultRecord {
            step,
            time_us: step * 10,
            fault: sim::Fault::Crash { node: sim::NodeId(node) },
            decision: None,
        };
        let recorded = vec![f(5, 1), f(9, 2), f(12, 3)];
        assert_eq!(divergence(&recorded, &recorded), None);
        let moved = vec![f(5, 1), f(8, 2), f(12, 3)];
        let d = divergence(&recorded, &moved).expect("diverged");
        assert!(d.contains("at step 8") && d.contains("fault #1"), "{d}");
        let short = divergence(&recorded, &recorded[..2]).expect("diverged");
        assert!(short.contains("at step 12") && short.contains("never came"), "{short}");
    }

    #[test]
    fn file_names_are_safe_and_say_what_failed() {
        let f = FailureFile {
            schema: FAILURE_SCHEMA.to_string(),
            scenario: InlineScenario {
                name: "default×0.5".to_string(),
                origin: "default".to_string(),
                fault_scale: 0.5,
                toml: String::new(),
            },
            strategy: "choreography".to_string(),
            bug: Some("no-inbox".to_string()),
            seed: 7,
            explore: Explore::default(),
            failure: Failure {
                seed: 7,
                invariant: "no-double-charge".to_string(),
                step: 1,
                time_us: 2,
                digest: "0".repeat(16),
                entities: Vec::new(),
                detail: String::new(),
                repro: String::new(),
            },
            faults: Vec::new(),
            shrunk: None,
        };
        let p = path_in(Path::new("failures"), &f);
        assert_eq!(p, Path::new("failures/default_0.5-choreography-no-inbox-seed7.json"));
    }
}
