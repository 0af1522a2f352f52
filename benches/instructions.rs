//! `cargo bench --bench instructions`: the kernel's cost as an exact count
//! of instructions, under valgrind's callgrind, so that a regression shows
//! as a number even on a machine whose timings wander by ±10 %.
//!
//! Run as a bench, this program starts itself again under callgrind with
//! collection on only inside `workload`, reads the count from callgrind's
//! output, and prints instructions per seed and per event for each
//! workload. The count is the same from run to run for the same binary:
//! the runs are seeded, and nothing in them reads a clock. The last counts
//! are kept in `target/instructions.json`; the next run prints the change
//! against them.

use std::process::{Command, ExitCode};

use domain::Strategy;
use sagasim::harness::{self, RunSpec};
use sagasim::scenario::Scenario;

/// The workloads counted: (scenario, seeds). Few seeds, since valgrind
/// runs some fifty times slower than the machine.
const WORKLOADS: [(&str, u64); 2] = [("saga-bench", 8), ("default", 4)];

const CHILD: &str = "SAGASIM_INSTRUCTIONS_CHILD";

/// Runs under callgrind with collection switched on here only. Returns the
/// events taken, so the parent can divide.
#[inline(never)]
fn workload(s: &Scenario, seeds: u64) -> u64 {
    (0..seeds)
        .map(|seed| harness::run(&RunSpec::new(s, Strategy::Choreography, None, seed)).stats.steps)
        .sum()
}

fn child(name: &str, seeds: u64) -> ExitCode {
    let s = Scenario::load(name).expect("a built-in scenario");
    let events = std::hint::black_box(workload(&s, seeds));
    println!("{events}");
    ExitCode::SUCCESS
}

/// Run one workload under callgrind: (instructions, events).
fn count(exe: &std::path::Path, name: &str, seeds: u64) -> Result<(u64, u64), String> {
    let out_file = std::env::temp_dir().join(format!("sagasim-cg-{}-{name}", std::process::id()));
    let o = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=*instructions::workload*",
        ])
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(exe)
        .env(CHILD, format!("{name}:{seeds}"))
        .output()
        .map_err(|e| format!("cannot run valgrind (is it installed?): {e}"))?;
    if !o.status.success() {
        return Err(format!("valgrind failed: {}", String::from_utf8_lossy(&o.stderr)));
    }
    let events: u64 = String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("the workload printed no event count: {e}"))?;
    let text = std::fs::read_to_string(&out_file)
        .map_err(|e| format!("cannot read {}: {e}", out_file.display()))?;
    std::fs::remove_file(&out_file).ok();
    let total = text
        .lines()
        .find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")))
        .and_then(|n| n.trim().parse().ok())
        .ok_or("callgrind's output has no total")?;
    Ok((total, events))
}

fn main() -> ExitCode {
    if let Ok(spec) = std::env::var(CHILD) {
        let (name, seeds) = spec.split_once(':').expect("name:seeds");
        return child(name, seeds.parse().expect("a seed count"));
    }
    // `cargo bench` passes `--bench`; a plain `cargo test` run of benches
    // passes nothing and has nothing to do here.
    if !std::env::args().any(|a| a == "--bench") {
        return ExitCode::SUCCESS;
    }
    let exe = std::env::current_exe().expect("this program's path");
    let saved = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/instructions.json");
    let before: serde_json::Value = std::fs::read_to_string(&saved)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut now = serde_json::Map::new();
    for (name, seeds) in WORKLOADS {
        match count(&exe, name, seeds) {
            Ok((instructions, events)) => {
                let change = before[name]["instructions"].as_u64().map(|b| {
                    format!(
                        " ({:+.2} % against the last run)",
                        (instructions as f64 / b as f64 - 1.0) * 100.0
                    )
                });
                println!(
                    "{name:<12} {seeds} seeds  {instructions} instructions  {} per seed  {:.0} per event ({events} events){}",
                    instructions / seeds,
                    instructions as f64 / events as f64,
                    change.unwrap_or_default()
                );
                now.insert(
                    name.to_string(),
                    serde_json::json!({ "seeds": seeds, "instructions": instructions, "events": events }),
                );
            }
            Err(e) => {
                eprintln!("error: {name}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    std::fs::write(&saved, serde_json::Value::Object(now).to_string()).ok();
    ExitCode::SUCCESS
}
