//! `sagasim bench`: the kernel's speed against its anchors, or, with
//! `--bugs`, the detection power of each planted bug (held to a baseline
//! if one is given).

use std::io;
use std::path::Path;
use std::process::ExitCode;

use domain::{Bug, Strategy};

use crate::cli::args::{all_cores, scenario_named, Format};
use crate::measure::{bench, detection};
use crate::scenario::Scenario;

pub fn run_bench(
    scenarios: &[String],
    strategy: Strategy,
    seeds: u64,
    jobs: Option<usize>,
    format: Format,
    peer: Option<&Path>,
) -> Result<ExitCode, ExitCode> {
    let loaded: Vec<Scenario> =
        scenarios.iter().map(|s| scenario_named(s)).collect::<Result<_, _>>()?;
    let anchors = peer
        .map(|p| {
            bench::Anchors::load(p).map_err(|e| {
                eprintln!("error: {e}");
                ExitCode::from(2)
            })
        })
        .transpose()?;
    let jobs = jobs.unwrap_or_else(all_cores);
    let r = bench::bench(&loaded, strategy, seeds.max(1), jobs, anchors);
    let mut out = io::stdout().lock();
    let written = match format {
        Format::Text => bench::render_text(&r, &mut out),
        Format::Json => reports::json::write(&mut out, &r),
    };
    written.map(|_| ExitCode::SUCCESS).map_err(|_| ExitCode::from(2))
}

pub fn run_detection(
    only: Option<Bug>,
    seeds: u64,
    jobs: Option<usize>,
    format: Format,
    baseline: Option<&Path>,
) -> Result<ExitCode, ExitCode> {
    let baseline = baseline
        .map(|p| {
            detection::load_baseline(p).map_err(|e| {
                eprintln!("error: {e}");
                ExitCode::from(2)
            })
        })
        .transpose()?;
    let jobs = jobs.unwrap_or_else(all_cores);
    let ds: Vec<detection::Detection> = Bug::ALL
        .iter()
        .filter(|b| only.is_none_or(|o| o == **b))
        .flat_map(|&b| detection::EXPLORES.map(|e| detection::detect(b, seeds.max(1), jobs, e)))
        .collect();
    let mut out = io::stdout().lock();
    let written = match format {
        Format::Text => detection::render_text(&ds, &mut out),
        Format::Json => reports::json::write(&mut out, &ds),
    };
    written.map_err(|_| ExitCode::from(2))?;
    let Some(b) = baseline else { return Ok(ExitCode::SUCCESS) };
    // With JSON on standard output, the verdicts go to standard error.
    let lost = match format {
        Format::Text => detection::render_against(&ds, &b, &mut out),
        Format::Json => detection::render_against(&ds, &b, &mut io::stderr().lock()),
    }
    .map_err(|_| ExitCode::from(2))?;
    Ok(if lost > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
