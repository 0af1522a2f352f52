//! The sweep's pieces that CI sees: the formats CI systems read (text,
//! JSON, JUnit XML, JSON lines), Ctrl-C as an early stop that still
//! reports what finished, failure lines printed the moment a seed fails, and a progress
//! bar on a terminal (plain progress lines under CI). `cli/sweep.rs` turns
//! the command's flags into these; `cli/merge.rs` combines shard results.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use reports::SweepResult;

use crate::sweep::{self, SeedResult};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepFormat {
    Text,
    Json,
    /// JUnit XML: a failing test case per failing seed.
    Junit,
    /// A JSON line per seed as it finishes, then the summary as one line.
    Jsonl,
}

/// Set by Ctrl-C: sweeps stop taking seeds and report what finished.
pub fn interrupted() -> &'static AtomicBool {
    static FLAG: AtomicBool = AtomicBool::new(false);
    static HANDLER: OnceLock<()> = OnceLock::new();
    HANDLER.get_or_init(|| {
        // Without a handler Ctrl-C kills the process, which is still a
        // correct if less helpful end: nothing to report if it fails.
        let _ = ctrlc::set_handler(|| FLAG.store(true, Ordering::Relaxed));
    });
    &FLAG
}

/// Progress on stderr: a bar on a terminal, else a line every ten seconds.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    done: AtomicU64,
    failing: AtomicU64,
    last_line: Mutex<Instant>,
    total: u64,
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        let terminal = io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds, {rate}, {msg}, eta {eta}",
            )
            .expect("the template is valid")
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} seeds/s", state.per_sec());
                },
            );
            bar.set_style(style);
            bar.set_message("0 failing");
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            started: now,
            done: AtomicU64::new(0),
            failing: AtomicU64::new(0),
            last_line: Mutex::new(now),
            total,
        }
    }

    /// Print a line to stderr without tearing the bar.
    pub fn say(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    pub fn seed_done(&self, r: &SeedResult) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let failing = self.failing.load(Ordering::Relaxed) + u64::from(r.failure.is_some());
        if let Some(f) = &r.failure {
            self.failing.fetch_add(1, Ordering::Relaxed);
            // Printed now, so a CI job killed later still shows it.
            self.say(&format!(
                "FAILED seed {}: {} at step {}: {}\n  reproduce: {}",
                f.seed, f.invariant, f.step, f.detail, f.repro
            ));
        }
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                if r.failure.is_some() {
                    bar.set_message(format!("{failing} failing"));
                }
            }
            None => {
                let mut last = self.last_line.lock().expect("no panic holding it");
                if last.elapsed() >= Duration::from_secs(10) {
                    *last = Instant::now();
                    let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                    eprintln!(
                        "progress: {done}/{} seeds, {failing} failing, {rate:.0} seeds/s",
                        self.total
                    );
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One line of `--format jsonl`.
#[derive(serde::Serialize)]
struct SeedLine<'a> {
    seed: u64,
    digest: String,
    events: u64,
    faults: u64,
    outcomes: reports::Outcomes,
    failure: Option<&'a reports::Failure>,
}

pub fn seed_line(r: &SeedResult) -> String {
    let line = SeedLine {
        seed: r.seed,
        digest: sweep::hex(r.digest),
        events: r.events,
        faults: r.faults,
        outcomes: r.outcomes,
        failure: r.failure.as_ref(),
    };
    serde_json::to_string(&line).expect("plain data serialises")
}

/// A sweep result in one of the formats CI systems read.
pub fn render(
    out: &mut dyn Write,
    format: SweepFormat,
    r: &SweepResult,
    lines: &[String],
) -> io::Result<()> {
    let mut out = out;
    match format {
        SweepFormat::Text => reports::text::sweep(&mut out, r),
        SweepFormat::Json => reports::json::write(&mut out, r),
        SweepFormat::Junit => reports::junit::sweep(&mut out, r),
        SweepFormat::Jsonl => {
            for l in lines {
                writeln!(out, "{l}")?;
            }
            writeln!(out, "{}", serde_json::to_string(r).map_err(io::Error::other)?)
        }
    }
}
