//! A regression corpus: a folder of failure files, each replayed before a
//! sweep's seeds (`sweep --corpus DIR`), so that a bug once found stays
//! found.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use reports::CorpusResult;

use crate::harness;
use crate::investigate::failure_file;
use crate::sweep;

/// Replay every failure file in `dir`, in name order.
pub fn replay_corpus(dir: &Path) -> Result<Vec<CorpusResult>, ExitCode> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        eprintln!("error: cannot read the corpus {}: {e}", dir.display());
        ExitCode::from(2)
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let loaded = failure_file::load(&path).map_err(|e| {
            eprintln!("error: corpus: {e}");
            ExitCode::from(2)
        })?;
        let spec = loaded.spec();
        let failure = match sweep::run_guarded(&spec, &harness::run) {
            Ok(r) => sweep::failure_of(&r, &spec),
            Err(message) => Some(sweep::panic_failure(&spec, message)),
        };
        let file = path.display().to_string();
        if let Some(f) = &failure {
            eprintln!("FAILED corpus {file}: {} at step {}: {}", f.invariant, f.step, f.detail);
            eprintln!("  reproduce: sagasim replay {file}");
        }
        out.push(CorpusResult {
            file,
            seed: loaded.file.seed,
            recorded: loaded.file.failure.invariant.clone(),
            failure,
        });
    }
    Ok(out)
}
