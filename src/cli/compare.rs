//! `sagasim compare`: strategies measured on the same seeds, rendered as
//! text, Markdown, JSON or HTML.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::args::{all_cores, scenario_named, ReportFormat, SeedRange, StrategyList};
use crate::files::write_atomically;
use crate::measure::compare;

pub fn run_compare(
    scenario: &str,
    strategies: StrategyList,
    seeds: SeedRange,
    jobs: Option<usize>,
    scales: Vec<f64>,
    format: ReportFormat,
    out: Option<PathBuf>,
) -> Result<ExitCode, ExitCode> {
    let s = scenario_named(scenario)?;
    let spec = compare::CompareSpec {
        scenario: &s,
        strategies: strategies.0,
        seeds: (seeds.0, seeds.1),
        jobs: jobs.unwrap_or_else(all_cores),
        scales,
    };
    let r = compare::compare(&spec);
    let render = |w: &mut dyn Write| -> io::Result<()> {
        let mut w = w;
        match format {
            ReportFormat::Text => reports::text::compare(&mut w, &r),
            ReportFormat::Md => reports::markdown::compare(&mut w, &r),
            ReportFormat::Json => reports::json::write(&mut w, &r),
            ReportFormat::Html => reports::html::compare(&mut w, &r),
        }
    };
    let written = match &out {
        Some(path) => write_atomically(path, render).map_err(|e| {
            eprintln!("error: cannot write {}: {e}", path.display());
        }),
        None => render(&mut io::stdout().lock()).map_err(|_| ()),
    };
    written.map(|_| ExitCode::SUCCESS).map_err(|_| ExitCode::from(2))
}
