//! `sagasim sweep`: its flags, and their translation into a sweep (shards,
//! a corpus first, early stops, determinism spot checks), its report and
//! its exit code.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;
use reports::Shard;

use crate::cli::args::{all_cores, load, SeedRange, Target};
use crate::files::write_atomically;
use crate::harness::RunSpec;
use crate::investigate::corpus::replay_corpus;
use crate::investigate::failure_file::{failure_dir, save_failure};
use crate::sweep::ci::{interrupted, render, seed_line, Progress, SweepFormat};
use crate::sweep::{self, Control, SeedResult, SweepSpec};

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub target: Target,
    /// N (seeds 0..N) or A..B (seeds A to B-1); default: the scenario's.
    #[arg(long)]
    pub seeds: Option<SeedRange>,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub jobs: Option<usize>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: SweepFormat,
    /// Where the report goes (atomically: a temporary file, then a rename)
    /// instead of standard output. A folder (one that exists, a path
    /// ending in `/`, or one without an extension) is where failure files
    /// go instead, as with `--failures`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write a failure file per failing seed into this folder (default
    /// under `CI`: `failures/`).
    #[arg(long)]
    pub failures: Option<PathBuf>,
    /// Run only the K-th of N disjoint slices of the seed range (K from 1);
    /// `sagasim merge` combines the N results.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Stop at the first failing seed (seeds already running finish).
    #[arg(long)]
    pub fail_fast: bool,
    /// End cleanly after this long (e.g. 90s, 10m, 1h), reporting the
    /// seeds that finished.
    #[arg(long, value_parser = parse_duration)]
    pub max_time: Option<Duration>,
    /// Replay every failure file in this folder first: each must pass now.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Run this share of the seeds (0 to 1) twice and fail on any digest
    /// that differs.
    #[arg(long, value_parser = parse_rate)]
    pub check_determinism: Option<f64>,
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("`{s}` is not a shard: expected K/N with 1 <= K <= N");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n) =
        (k.trim().parse::<u64>().map_err(|_| bad())?, n.trim().parse::<u64>().map_err(|_| bad())?);
    if k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("`{s}` is not a duration: expected a number with s, m or h (90s, 10m, 1h)");
    let t = s.trim();
    let (num, unit) =
        t.split_at(t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len()));
    let x: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" | "" => x,
        "m" => x * 60.0,
        "h" => x * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("`{s}` is not a share of seeds: expected a number from 0 to 1")),
    }
}

/// Whether a path names a folder (failure files) rather than a report
/// file: an existing folder, a path ending in `/`, or one without an
/// extension (reports are `.txt`, `.json`, `.xml`, `.jsonl`).
fn is_folder(p: &Path) -> bool {
    p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/') || p.extension().is_none()
}

pub fn run_sweep(args: SweepArgs) -> Result<ExitCode, ExitCode> {
    let scenario = load(&args.target)?;
    let SeedRange(first, last) = args.seeds.unwrap_or(SeedRange(0, scenario.seeds));
    let shard = args.shard.map(|(index, count)| Shard { index, count, of: [first, last] });
    let [a, b] = shard.map_or([first, last], |s| s.seeds());
    let (report, folder) = match args.out {
        Some(p) if is_folder(&p) => (None, Some(p)),
        other => (other, args.failures),
    };
    let corpus = match &args.corpus {
        Some(dir) => replay_corpus(dir)?,
        None => Vec::new(),
    };
    let explore = args.target.explore();
    let spec = SweepSpec {
        scenario: &scenario,
        strategy: args.target.strategy,
        bug: args.target.bug,
        seeds: (a, b),
        jobs: args.jobs.unwrap_or_else(all_cores),
        explore,
    };
    let progress = Progress::new(b - a);
    // JSON lines stream to standard output as seeds finish; into a file
    // they go at the end, in seed order, with the rest of the report.
    let streaming = args.format == SweepFormat::Jsonl && report.is_none();
    let kept: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let on_seed = |r: &SeedResult| {
        progress.seed_done(r);
        match (args.format, streaming) {
            (SweepFormat::Jsonl, true) => {
                let _ = writeln!(io::stdout().lock(), "{}", seed_line(r));
            }
            (SweepFormat::Jsonl, false) => {
                kept.lock().expect("no panic holding it").push((r.seed, seed_line(r)))
            }
            _ => {}
        }
    };
    let control = Control {
        fail_fast: args.fail_fast,
        deadline: args.max_time.map(|d| Instant::now() + d),
        interrupt: Some(interrupted()),
        check_determinism_ppm: args.check_determinism.map_or(0, |x| (x * 1e6).round() as u32),
        on_seed: Some(&on_seed),
    };
    let mut result = sweep::sweep_controlled(&spec, &control);
    progress.finish();
    result.shard = shard;
    result.corpus = corpus;
    let mut kept = kept.into_inner().expect("the sweep is done");
    kept.sort_unstable_by_key(|(seed, _)| *seed);
    let lines: Vec<String> = kept.into_iter().map(|(_, line)| line).collect();
    let written = match &report {
        Some(path) => {
            write_atomically(path, |w| render(w, args.format, &result, &lines)).map_err(|e| {
                eprintln!("error: cannot write {}: {e}", path.display());
            })
        }
        None => render(&mut io::stdout().lock(), args.format, &result, &lines).map_err(|_| ()),
    };
    written.map_err(|_| ExitCode::from(2))?;
    if let Some(dir) = failure_dir(folder) {
        let run = RunSpec {
            explore,
            ..RunSpec::new(&scenario, args.target.strategy, args.target.bug, 0)
        };
        for f in result.failures.iter().filter(|f| f.invariant != "nondeterminism") {
            save_failure(&dir, &run, f)?;
        }
    }
    if let Some(why) = &result.stopped {
        eprintln!("stopped early ({why}) after {} of {} seeds", result.runs, b - a);
    }
    let corpus_failed = result.corpus.iter().any(|c| c.failure.is_some());
    // A shard or a cut-short sweep cannot judge what no seed hit: the
    // merged or complete sweep does.
    let missing =
        shard.is_none() && result.stopped.is_none() && !result.expected_missing.is_empty();
    let failed = result.violations > 0 || corpus_failed || missing;
    Ok(ExitCode::from(match (failed, result.stopped.as_deref()) {
        (true, _) => 1,
        (false, Some("interrupted")) => 130,
        _ => 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_shards_and_rates_parse_or_say_what_was_expected() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("10 parsecs").unwrap_err().contains("90s, 10m, 1h"));
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
        assert!(
            parse_shard("0/3").is_err() && parse_shard("4/3").is_err() && parse_shard("x").is_err()
        );
        assert_eq!(parse_rate("0.01"), Ok(0.01));
        assert!(parse_rate("2").is_err());
    }
}
