//! `sagasim merge`: shard results (`sweep --shard K/N --format json`)
//! combined into the result of the whole sweep.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use reports::SweepResult;

use crate::files::write_atomically;
use crate::sweep::ci::{render, SweepFormat};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeFormat {
    Text,
    Json,
    Junit,
}

/// `sagasim merge`: read shard results (`sweep --format json`), merge them,
/// and report the whole sweep; exit 1 if it has a failure.
pub fn run_merge(
    files: &[PathBuf],
    format: MergeFormat,
    out: Option<PathBuf>,
) -> Result<ExitCode, ExitCode> {
    let mut parts = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| {
            eprintln!("error: {}: cannot read: {e}", f.display());
            ExitCode::from(2)
        })?;
        let r: SweepResult = serde_json::from_str(&text).map_err(|e| {
            eprintln!("error: {}: not a sweep result (`sweep --format json`): {e}", f.display());
            ExitCode::from(2)
        })?;
        parts.push(r);
    }
    let merged = reports::merge::merge(&parts).map_err(|e| {
        eprintln!("error: cannot merge: {e}");
        ExitCode::from(2)
    })?;
    let format = match format {
        MergeFormat::Text => SweepFormat::Text,
        MergeFormat::Json => SweepFormat::Json,
        MergeFormat::Junit => SweepFormat::Junit,
    };
    let written = match &out {
        Some(path) => write_atomically(path, |w| render(w, format, &merged, &[])).map_err(|e| {
            eprintln!("error: cannot write {}: {e}", path.display());
        }),
        None => render(&mut io::stdout().lock(), format, &merged, &[]).map_err(|_| ()),
    };
    written.map_err(|_| ExitCode::from(2))?;
    let failed = merged.violations > 0
        || !merged.expected_missing.is_empty()
        || merged.corpus.iter().any(|c| c.failure.is_some());
    Ok(ExitCode::from(u8::from(failed)))
}
