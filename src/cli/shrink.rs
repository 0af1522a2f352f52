//! `sagasim shrink FILE`: a failure file shrunk to the fewest faults and
//! the smallest workload that still break the same invariant, written as a
//! failure file `replay` reproduces.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::files::write_atomically;
use crate::harness::{self, RunSpec};
use crate::investigate::{failure_file, shrink};
use crate::sweep;

pub fn run_shrink(path: &Path, out: Option<PathBuf>) -> Result<ExitCode, ExitCode> {
    let loaded = failure_file::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let f = &loaded.file;
    let target = shrink::Target {
        scenario: loaded.scenario.clone(),
        strategy: loaded.strategy,
        bug: loaded.bug,
        seed: f.seed,
        invariant: f.failure.invariant.clone(),
        explore: loaded.file.explore,
    };
    // The faults that struck (a file shrunk before: those its plan allows).
    let (decisions, arrivals) = sweep::run_guarded(&loaded.spec(), &harness::run)
        .map(|r| shrink::starting_point(&r, loaded.arrivals.as_ref()))
        .unwrap_or_default();
    let Some(shrunk) = shrink::shrink(&target, decisions, arrivals) else {
        eprintln!(
            "error: {} does not fail with {} any more: nothing to shrink",
            path.display(),
            f.failure.invariant
        );
        return Err(ExitCode::from(1));
    };
    let mut stdout = io::stdout().lock();
    let written: io::Result<()> = (|| {
        for s in &shrunk.stages {
            writeln!(stdout, "{:<16} {:>6} -> {}", s.what, s.from, s.to)?;
        }
        writeln!(stdout, "{} runs", shrunk.runs)
    })();
    written.map_err(|_| ExitCode::from(2))?;
    let scenario = shrunk.size.apply(&loaded.scenario);
    let run = RunSpec {
        explore: loaded.file.explore,
        ..RunSpec::new(&scenario, loaded.strategy, loaded.bug, f.seed)
    };
    let failure = sweep::failure_of(&shrunk.report, &run).expect("a shrunk run fails");
    let out = out.unwrap_or_else(|| path.with_extension("shrunk.json"));
    let mut file = f.clone();
    file.failure =
        reports::Failure { repro: format!("sagasim replay {}", out.display()), ..failure };
    file.faults = shrunk.report.faults.clone();
    file.shrunk = Some(failure_file::ShrunkPlan {
        orders: shrunk.size.orders,
        users: shrunk.size.users,
        products: shrunk.size.products,
        fault_phase_us: shrunk.size.fault_phase_us,
        fault_mask: shrunk.mask.iter().copied().collect(),
        arrivals: shrunk.arrivals.iter().copied().collect(),
    });
    let written = write_atomically(&out, |w| {
        serde_json::to_writer_pretty(&mut *w, &file).map_err(io::Error::other)?;
        writeln!(w)
    });
    written.map_err(|e| {
        eprintln!("error: cannot write {}: {e}", out.display());
        ExitCode::from(2)
    })?;
    eprintln!("shrunk failure file: {}", out.display());
    Ok(ExitCode::SUCCESS)
}
