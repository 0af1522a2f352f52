//! Terminal text renderers.

use std::io::{self, Write};

use crate::result::{Failure, RunResult, SweepResult};

fn failure(out: &mut impl Write, f: &Failure) -> io::Result<()> {
    writeln!(
        out,
        "seed {} violated {} at step {} ({:.3} ms simulated), digest {}",
        f.seed,
        f.invariant,
        f.step,
        f.time_us as f64 / 1000.0,
        f.digest
    )?;
    if !f.detail.is_empty() {
        writeln!(out, "  {}", f.detail)?;
    }
    writeln!(out, "  reproduce: {}", f.repro)
}

pub fn sweep(out: &mut impl Write, r: &SweepResult) -> io::Result<()> {
    let bug = r.bug.as_deref().map(|b| format!(" bug={b}")).unwrap_or_default();
    writeln!(
        out,
        "sweep scenario={} strategy={}{} seeds {}..{}",
        r.scenario, r.strategy, bug, r.seeds[0], r.seeds[1]
    )?;
    for f in &r.failures {
        failure(out, f)?;
    }
    let o = &r.outcomes;
    writeln!(
        out,
        "{} runs, {} with violations; {} events, {} faults injected; orders: {} confirmed, {} cancelled, {} rejected, {} unfinished",
        r.runs, r.violations, r.events, r.faults, o.confirmed, o.cancelled, o.rejected, o.unfinished
    )?;
    writeln!(
        out,
        "{:.2} s wall, {:.0} seeds/s, {:.0} events/s",
        r.wall_s, r.seeds_per_s, r.events_per_s
    )?;
    writeln!(out, "{}", if r.violations == 0 { "OK: no violation" } else { "FAILED" })
}

pub fn run(out: &mut impl Write, r: &RunResult) -> io::Result<()> {
    let bug = r.bug.as_deref().map(|b| format!(" bug={b}")).unwrap_or_default();
    writeln!(out, "run scenario={} strategy={}{} seed={}", r.scenario, r.strategy, bug, r.seed)?;
    let o = &r.outcomes;
    let healed = match r.heal_at_us {
        Some(t) => format!("faults healed at {:.3} ms", t as f64 / 1000.0),
        None => "still in the fault phase".to_string(),
    };
    writeln!(
        out,
        "ended {} after {} steps at {:.3} ms simulated ({healed}), {} faults, digest {}",
        r.end,
        r.steps,
        r.time_us as f64 / 1000.0,
        r.faults,
        r.digest
    )?;
    writeln!(
        out,
        "orders: {} confirmed, {} cancelled, {} rejected, {} unfinished",
        o.confirmed, o.cancelled, o.rejected, o.unfinished
    )?;
    match &r.failure {
        Some(f) => failure(out, f),
        None => writeln!(out, "OK: no violation"),
    }
}
