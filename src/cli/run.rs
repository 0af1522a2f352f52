//! `sagasim run` (one seed, its result and, if asked, its trace), and the
//! printing of one run that `replay` shares: a run's result, its trace in
//! the chosen view, the state of the entities a violation names, and its
//! failure file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use reports::{RunResult, RUN_SCHEMA};

use crate::cli::args::{load, ReplayFormat, Target};
use crate::harness::{self, RunSpec};
use crate::investigate::failure_file::{failure_dir, save_failure};
use crate::investigate::trace_view;
use crate::sweep;

/// The result of one run (or of its panic), and its trace lines.
fn run_result(
    spec: &RunSpec<'_>,
    run: Result<harness::RunReport, String>,
) -> (RunResult, Vec<sim::TraceRecord>) {
    let mut result = RunResult {
        schema: RUN_SCHEMA.to_string(),
        scenario: spec.scenario.name.clone(),
        strategy: spec.strategy.name().to_string(),
        bug: spec.bug.map(|b| b.name().to_string()),
        seed: spec.seed,
        digest: sweep::hex(0),
        end: "panic".to_string(),
        steps: 0,
        time_us: 0,
        heal_at_us: None,
        outcomes: reports::Outcomes::default(),
        faults: 0,
        failure: None,
    };
    match run {
        Ok(r) => {
            result.failure = sweep::failure_of(&r, spec);
            result.digest = sweep::hex(r.digest);
            result.end = end_name(r.end).to_string();
            result.steps = r.step;
            result.time_us = r.time_us;
            result.heal_at_us = r.heal_at_us;
            result.outcomes = r.outcomes;
            result.faults = r.faults.len() as u64;
            (result, r.trace)
        }
        Err(message) => {
            result.failure = Some(sweep::panic_failure(spec, message));
            (result, Vec::new())
        }
    }
}

fn end_name(end: sim::End) -> &'static str {
    match end {
        sim::End::Settled => "settled",
        sim::End::Deadline => "deadline",
        sim::End::Stalled => "stalled",
        sim::End::Violation => "violation",
        sim::End::StepBudget => "step-budget",
    }
}

/// How a seed's run is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Print {
    /// The result as text, after the trace's lines if asked.
    Text {
        trace: bool,
    },
    /// The result as one JSON object (`run --format json`).
    Result,
    /// A JSON line per trace record, then the result.
    Steps,
    Mermaid,
    ChromeTrace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Show {
    pub print: Print,
    /// Keep only the trace records about this order.
    pub order: Option<u32>,
}

impl Show {
    pub fn replay(format: ReplayFormat, order: Option<u32>) -> Show {
        let print = match format {
            ReplayFormat::Text => Print::Text { trace: true },
            ReplayFormat::Json => Print::Steps,
            ReplayFormat::Mermaid => Print::Mermaid,
            ReplayFormat::ChromeTrace => Print::ChromeTrace,
        };
        Show { print, order }
    }
}

/// The entities a violation names, before and after the step that broke
/// it (each run again to that point: runs are deterministic).
fn entity_states(
    out: &mut impl Write,
    spec: &RunSpec<'_>,
    entities: &[domain::Entity],
    step: u64,
) -> io::Result<()> {
    let before = harness::entity_states(spec, entities, step.saturating_sub(1));
    let after = harness::entity_states(spec, entities, step);
    writeln!(out, "state before step {step}:")?;
    for line in before {
        writeln!(out, "  {line}")?;
    }
    writeln!(out, "state after step {step}:")?;
    for line in after {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// What a printed run leaves for its caller: its result, the faults that
/// struck, and where it parted from a recording it followed.
pub struct Printed {
    pub result: RunResult,
    pub faults: Vec<sim::FaultRecord>,
    pub divergence: Option<sim::Divergence>,
}

/// One run: make it, print it, and save its failure.
pub fn run_seed_and_print(
    spec: RunSpec<'_>,
    show: Show,
    out_dir: Option<&Path>,
) -> Result<Printed, ExitCode> {
    let trace = !matches!(show.print, Print::Text { trace: false } | Print::Result);
    let spec = RunSpec { trace, ..spec };
    let run = sweep::run_guarded(&spec, &harness::run);
    let entities = run.as_ref().ok().and_then(|r| r.violation.as_ref()).map(|v| v.entities.clone());
    let faults = run.as_ref().map(|r| r.faults.clone()).unwrap_or_default();
    let divergence = run.as_ref().ok().and_then(|r| r.divergence.clone());
    let (result, records) = run_result(&spec, run);
    let records = trace_view::filter(records, show.order);
    let mut out = io::stdout().lock();
    let written = match show.print {
        Print::Text { trace } => trace_view::text(&mut out, &records)
            .and_then(|_| reports::text::run(&mut out, &result))
            .and_then(|_| match (trace, entities, &result.failure) {
                (true, Some(ents), Some(f)) if !ents.is_empty() => {
                    entity_states(&mut out, &spec, &ents, f.step)
                }
                _ => Ok(()),
            }),
        Print::Result => reports::json::write(&mut out, &result),
        Print::Steps => trace_view::json_lines(&mut out, &records).and_then(|_| {
            serde_json::to_writer(&mut out, &result).map_err(io::Error::other)?;
            writeln!(out)
        }),
        Print::ChromeTrace => trace_view::chrome_trace(&mut out, &records),
        Print::Mermaid => {
            let violated =
                result.failure.as_ref().map(|f| format!("{}: {}", f.invariant, f.detail));
            trace_view::mermaid(&mut out, &records, show.order, violated.as_deref())
        }
    };
    written.map_err(|_| ExitCode::from(2))?;
    if let (Some(dir), Some(f)) = (out_dir, &result.failure) {
        save_failure(dir, &spec, f)?;
    }
    Ok(Printed { result, faults, divergence })
}

pub fn exit_of(result: &RunResult) -> ExitCode {
    ExitCode::from(if result.failure.is_some() { 1 } else { 0 })
}

pub fn run_one(
    target: &Target,
    seed: u64,
    show: Show,
    out: Option<PathBuf>,
) -> Result<ExitCode, ExitCode> {
    let scenario = load(target)?;
    let dir = failure_dir(out);
    let spec = RunSpec {
        explore: target.explore(),
        ..RunSpec::new(&scenario, target.strategy, target.bug, seed)
    };
    run_seed_and_print(spec, show, dir.as_deref()).map(|p| exit_of(&p.result))
}
