//! The result of a live run (`sagasim live`), as plain data with a
//! versioned schema, and its terminal text.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::result::Outcomes;

pub const LIVE_SCHEMA: &str = "sagasim.live/1";

/// Latency percentiles, in ms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What the client was told, by kind of final answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answers {
    pub accepted: u64,
    pub refused: u64,
    pub key_conflict: u64,
    /// Submissions that never got a final answer.
    pub none: u64,
}

/// One fault the run injected, or one a process decided itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveFault {
    /// ms from the start of the run.
    pub at_ms: u64,
    pub kind: String,
    pub target: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveProcess {
    pub name: String,
    pub starts: u32,
    pub kills: u32,
    pub pauses: u32,
    /// Times it stopped by itself and was started again.
    pub exits: u32,
    pub commits: u64,
    pub failed_commits: u64,
    pub unknown_commits: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveViolation {
    pub invariant: String,
    pub entities: Vec<String>,
    pub detail: String,
    /// ms from the start of the run, when the snapshot that showed it was
    /// taken; and whether it was a snapshot during the run or the end.
    pub at_ms: u64,
    pub at_end: bool,
}

/// Dead letters: written to a dead-letter stream (each with an alarm),
/// parked by the recovery pass (it could not handle them either), and not
/// yet read back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetters {
    pub written: u64,
    pub parked: u64,
}

/// The simulation's figures for the same scenario, strategy, bug and seed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimFigures {
    /// Orders per second of simulated time, from the first arrival to the
    /// last final state.
    pub orders_per_s: f64,
    /// From an order's first submission to its final state.
    pub order_latency: Latency,
    pub outcomes: Outcomes,
    pub violation: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveReport {
    pub schema: String,
    pub scenario: String,
    pub strategy: String,
    pub bug: Option<String>,
    pub seed: u64,
    /// The run's name, and how its state was set up ("fresh database …").
    pub run: String,
    pub state: String,
    pub processes: Vec<LiveProcess>,
    pub submissions: u64,
    pub orders: u64,
    /// From the first arrival to the last order's final state, in s.
    pub duration_s: f64,
    pub orders_per_s: f64,
    /// From a submission's arrival to its final answer.
    pub latency: Latency,
    /// From an order's first submission to its final state (confirmed,
    /// cancelled, rejected), read from the commit times.
    pub order_latency: Latency,
    pub outcomes: Outcomes,
    pub answers: Answers,
    pub requests: u64,
    pub failed_requests: u64,
    pub retries: u64,
    pub faults: Vec<LiveFault>,
    /// Fault kinds of the scenario a live run does not inject (yet).
    pub not_injected: Vec<String>,
    /// Snapshots of every service's tables checked during the run.
    pub checks: u64,
    pub settled: bool,
    /// It stopped waiting before the heal budget ran out: after the heal,
    /// nothing was left to publish or deliver and nothing was committed
    /// for a while, with sagas unfinished.
    pub stalled: bool,
    /// When the fault phase ended, and when every saga had finished, in ms.
    pub heal_at_ms: u64,
    pub settled_at_ms: Option<u64>,
    pub dead_letters: DeadLetters,
    /// Final answers the client got, and transactions the services
    /// committed, while the faults were on.
    pub answered_during_faults: u64,
    pub committed_during_faults: u64,
    /// Nothing was committed while the faults were on: the system did no
    /// work under them, and the run proves nothing.
    pub vacuous: bool,
    pub violation: Option<LiveViolation>,
    pub sim: Option<SimFigures>,
}

impl LiveReport {
    /// The exit code of `sagasim live`: that of `run`, with a vacuous run
    /// failing too.
    pub fn exit_code(&self) -> u8 {
        (self.violation.is_some() || self.vacuous) as u8
    }
}

fn latency(l: &Latency) -> String {
    format!("p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", l.p50_ms, l.p99_ms, l.max_ms)
}

/// The terminal text of a live run.
pub fn text(out: &mut impl Write, r: &LiveReport) -> io::Result<()> {
    let bug = r.bug.as_ref().map(|b| format!(" bug={b}")).unwrap_or_default();
    writeln!(
        out,
        "live scenario={} strategy={}{bug} seed={} run={}",
        r.scenario, r.strategy, r.seed, r.run
    )?;
    writeln!(out, "state: {}", r.state)?;
    let procs: Vec<String> = r
        .processes
        .iter()
        .map(|p| {
            let mut s = p.name.clone();
            let mut extra = Vec::new();
            if p.kills > 0 {
                extra.push(format!("killed {}", p.kills));
            }
            if p.pauses > 0 {
                extra.push(format!("paused {}", p.pauses));
            }
            if p.exits > 0 {
                extra.push(format!("stopped itself {}", p.exits));
            }
            if p.unknown_commits > 0 {
                let s = if p.unknown_commits == 1 { "" } else { "s" };
                extra.push(format!("{} commit{s} of unknown outcome", p.unknown_commits));
            }
            if !extra.is_empty() {
                s.push_str(&format!(" ({})", extra.join(", ")));
            }
            s
        })
        .collect();
    writeln!(out, "processes: {}", procs.join(", "))?;
    writeln!(
        out,
        "{} submissions, {} orders in {:.2} s: {:.1} orders/s",
        r.submissions, r.orders, r.duration_s, r.orders_per_s
    )?;
    writeln!(out, "answer latency {}", latency(&r.latency))?;
    writeln!(out, "order latency (to its final state) {}", latency(&r.order_latency))?;
    let o = &r.outcomes;
    let a = &r.answers;
    writeln!(
        out,
        "orders: {} confirmed, {} cancelled, {} rejected, {} unfinished; answers: {} accepted, \
         {} refused, {} key conflicts, {} none",
        o.confirmed,
        o.cancelled,
        o.rejected,
        o.unfinished,
        a.accepted,
        a.refused,
        a.key_conflict,
        a.none
    )?;
    writeln!(
        out,
        "client: {} requests, {} without an answer, {} retries; while the faults were on, {} \
         final answers and {} commits",
        r.requests,
        r.failed_requests,
        r.retries,
        r.answered_during_faults,
        r.committed_during_faults
    )?;
    let mut kinds: Vec<(String, u64)> = Vec::new();
    for f in &r.faults {
        match kinds.iter_mut().find(|(k, _)| *k == f.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((f.kind.clone(), 1)),
        }
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    writeln!(out, "faults: {}", if kinds.is_empty() { "none".into() } else { kinds.join(", ") })?;
    // The nemesis's strikes, one by one; those a process decided itself
    // (the payment gateway's, lost acknowledgements) only in the counts.
    for f in r.faults.iter().filter(|f| !f.kind.starts_with("pg-") && f.kind != "ack-lost") {
        let detail = if f.detail.is_empty() { String::new() } else { format!(" ({})", f.detail) };
        writeln!(out, "  {:>6} ms  {} {}{detail}", f.at_ms, f.kind, f.target)?;
    }
    if !r.not_injected.is_empty() {
        writeln!(out, "not injected live: {}", r.not_injected.join(", "))?;
    }
    writeln!(
        out,
        "dead letters: {} written, {} parked",
        r.dead_letters.written, r.dead_letters.parked
    )?;
    let settled = match (r.settled_at_ms, r.stalled) {
        (Some(t), _) => format!("every saga finished at {t} ms"),
        (None, true) => {
            "NOT every saga finished: after the heal nothing was left to deliver and nothing \
             moved for 5 s"
                .to_string()
        }
        (None, false) => "NOT every saga finished within the heal budget".to_string(),
    };
    writeln!(
        out,
        "checked {} snapshots of every service's tables during the run, and the end; faults \
         healed at {} ms, {settled}",
        r.checks, r.heal_at_ms
    )?;
    if let Some(s) = &r.sim {
        writeln!(
            out,
            "simulation, same seed: {:.1} orders/s (simulated time); order latency {}; {} \
             confirmed, {} cancelled, {} rejected, {} unfinished; {}",
            s.orders_per_s,
            latency(&s.order_latency),
            s.outcomes.confirmed,
            s.outcomes.cancelled,
            s.outcomes.rejected,
            s.outcomes.unfinished,
            s.violation.as_deref().unwrap_or("no violation")
        )?;
    }
    if r.vacuous {
        writeln!(out, "VACUOUS: no service committed anything while the faults were on")?;
    }
    match &r.violation {
        None => writeln!(out, "OK: no violation"),
        Some(v) => {
            let when = if v.at_end { "at the end" } else { "during the run" };
            writeln!(out, "VIOLATION {} ({when}, {} ms): {}", v.invariant, v.at_ms, v.detail)?;
            writeln!(out, "  entities: {}", v.entities.join(", "))
        }
    }
}
