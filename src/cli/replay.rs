//! `sagasim replay FILE`: a failure file run again, printed, and judged:
//! did the same violation and digest come back, and where did the run part
//! from the recorded faults. (`replay --seed N` is `run` with a trace.)

use std::path::Path;
use std::process::ExitCode;

use crate::cli::run::{exit_of, run_seed_and_print, Printed, Show};
use crate::investigate::failure_file;

/// Replay a failure file, and say whether it reproduced.
pub fn replay_file(path: &Path, show: Show) -> Result<ExitCode, ExitCode> {
    let loaded = failure_file::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let Printed { result, faults, divergence } = run_seed_and_print(loaded.spec(), show, None)?;
    let want = &loaded.file.failure;
    let same = |f: &reports::Failure| f.invariant == want.invariant && f.digest == want.digest;
    match &result.failure {
        Some(f) if same(f) => eprintln!(
            "reproduced: {} at step {}, digest {}, as {} records",
            f.invariant,
            f.step,
            f.digest,
            path.display()
        ),
        got => eprintln!(
            "NOT reproduced: {} records {} at step {} with digest {}; this run {}",
            path.display(),
            want.invariant,
            want.step,
            want.digest,
            got.as_ref().map_or("violated nothing".to_string(), |f| format!(
                "gave {} at step {} with digest {}",
                f.invariant, f.step, f.digest
            ))
        ),
    }
    if let Some(d) = divergence {
        eprintln!(
            "followed the recording to step {} ({} µs); there its fault decision {:#x} was {:?}, \
             but this run was deciding {}: from there the seed decided",
            d.step, d.time_us, d.key, d.recorded, d.found
        );
    }
    match failure_file::divergence(&loaded.file.faults, &faults) {
        Some(d) => eprintln!("{d}"),
        None => eprintln!("the run took the {} recorded faults, in order", faults.len()),
    }
    Ok(exit_of(&result))
}
