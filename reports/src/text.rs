//! Terminal text renderers.

use std::io::{self, Write};

use crate::compare::{CompareResult, Estimate};
use crate::numbers::{pct, pct_interval};
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
    let shard = r
        .shard
        .map(|s| format!(" (shard {}/{} of {}..{})", s.index, s.count, s.of[0], s.of[1]))
        .unwrap_or_default();
    writeln!(
        out,
        "sweep scenario={} strategy={}{} explore={} seeds {}..{}{shard}",
        r.scenario, r.strategy, bug, r.explore, r.seeds[0], r.seeds[1]
    )?;
    for c in &r.corpus {
        match &c.failure {
            Some(f) => {
                writeln!(
                    out,
                    "corpus {} (seed {}, was {}) FAILS again:",
                    c.file, c.seed, c.recorded
                )?;
                failure(out, f)?;
            }
            None => {
                writeln!(out, "corpus {} (seed {}, was {}): passes", c.file, c.seed, c.recorded)?
            }
        }
    }
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
    if r.determinism_checked > 0 {
        writeln!(out, "determinism: {} seeds run twice", r.determinism_checked)?;
    }
    if let Some(why) = &r.stopped {
        writeln!(out, "stopped early ({why}): {} of the seeds finished", r.runs)?;
    }
    coverage(out, r)?;
    let corpus_ok = r.corpus.iter().all(|c| c.failure.is_none());
    let ok = r.violations == 0 && r.expected_missing.is_empty() && corpus_ok;
    writeln!(out, "{}", if ok { "OK: no violation" } else { "FAILED" })
}

/// The share of seeds that hit each coverage point, and the points none hit.
fn coverage(out: &mut impl Write, r: &SweepResult) -> io::Result<()> {
    let share = |n: u64| crate::numbers::pct(n as f64 / r.runs.max(1) as f64);
    let hit: Vec<String> = r
        .coverage
        .iter()
        .filter(|c| c.seeds > 0)
        .map(|c| format!("{} {}", c.point, share(c.seeds)))
        .collect();
    writeln!(out, "coverage (share of seeds): {}", hit.join(", "))?;
    let never: Vec<&str> =
        r.coverage.iter().filter(|c| c.seeds == 0).map(|c| c.point.as_str()).collect();
    if !never.is_empty() {
        writeln!(out, "warning: no seed hit: {}", never.join(", "))?;
    }
    for e in &r.expected_missing {
        writeln!(
            out,
            "FAILED: the scenario expects \"{e}\" to be hit (run.expect), and no seed hit it"
        )?;
    }
    Ok(())
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

fn est(e: &Estimate, digits: usize) -> String {
    format!("{:.*} ±{:.*}", digits, e.mean, digits, (e.hi - e.lo) / 2.0)
}

/// The comparison as terminal tables: one row per strategy.
pub fn compare(out: &mut impl Write, r: &CompareResult) -> io::Result<()> {
    writeln!(
        out,
        "compare scenario={} seeds {}..{}: {} runs in {:.1} s{}",
        r.scenario,
        r.seeds[0],
        r.seeds[1],
        r.total_runs,
        r.wall_s,
        if r.same_workload { "" } else { " (WARNING: workloads differ across strategies)" }
    )?;
    writeln!(
        out,
        "\n{:<20} {:>22} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9}",
        "strategy",
        "success [95% interval]",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "settle p99",
        "windowed",
        "win p99"
    )?;
    for s in &r.strategies {
        writeln!(
            out,
            "{:<20} {:>22} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>10} {:>9.1}",
            s.strategy,
            pct_interval(&s.success_rate),
            s.latency_ms.p50,
            s.latency_ms.p90,
            s.latency_ms.p99,
            s.latency_ms.max,
            s.time_to_consistency_ms.p99,
            pct(s.windowed_share.mean),
            s.window_ms.p99,
        )?;
    }
    writeln!(
        out,
        "\n{:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9}",
        "strategy",
        "msgs/ord",
        "rpcs/ord",
        "evts/ord",
        "comp/ord",
        "false",
        "refunds",
        "DLQ",
        "coupons",
        "lock ms"
    )?;
    for s in &r.strategies {
        writeln!(
            out,
            "{:<20} {:>9.1} {:>9.2} {:>9.2} {:>9.3} {:>9} {:>9} {:>9} {:>11} {:>9.2}",
            s.strategy,
            s.messages_per_order.mean,
            s.rpcs_per_order.mean,
            s.events_per_order.mean,
            s.compensations_per_order.mean,
            pct(s.false_compensation_share),
            s.refunds,
            s.dead_letters,
            format!("{} ({})", s.coupons_issued, s.coupon_value),
            s.lock_wait_ms_per_order.mean,
        )?;
    }
    writeln!(
        out,
        "\n{:<20} {:>14} {:>14} {:>14} {:>14} {:>12} {:>10} {:>8}",
        "strategy",
        "exposure ord·s",
        "stock unit·s",
        "money ·s",
        "coupon ·s",
        "revenue",
        "lost",
        "clean"
    )?;
    for s in &r.strategies {
        writeln!(
            out,
            "{:<20} {:>14} {:>14} {:>14} {:>14} {:>12.0} {:>10} {:>8}",
            s.strategy,
            est(&s.exposure_orders, 3),
            est(&s.exposure_stock, 2),
            est(&s.exposure_money, 1),
            est(&s.exposure_coupons, 3),
            s.revenue.mean,
            pct(s.revenue_lost_share.mean),
            pct(s.clean_share),
        )?;
    }
    writeln!(out, "\ncontention: {} of the orders on one product, no fault", pct(r.hot_share))?;
    for c in &r.contention {
        writeln!(
            out,
            "  {:<20} success {:>22}, {:>7.1} confirmed/s, p99 {:>7.1} ms, {:>7} lock waits, {:.2} ms lock wait per order",
            c.strategy,
            pct_interval(&c.success_rate),
            c.throughput_per_s.mean,
            c.latency_p99_ms,
            c.lock_waits,
            c.lock_wait_ms_per_order.mean
        )?;
    }
    writeln!(out, "\nviolations:")?;
    let mut any = false;
    for s in &r.strategies {
        for v in &s.violations {
            any = true;
            writeln!(
                out,
                "  {:<20} {:<24} {:>5} seeds {:>8.2}/10k orders  {}",
                s.strategy, v.invariant, v.seeds, v.per_10k_orders, v.repro
            )?;
        }
    }
    if !any {
        writeln!(out, "  none")?;
    }
    writeln!(
        out,
        "\navailability: {} down at {:.0} ms for {:.0} ms, no other fault",
        r.outage_service, r.outage_at_ms, r.outage_for_ms
    )?;
    for a in &r.availability {
        writeln!(
            out,
            "  {:<20} {:>6} orders: {:>6} failed fast, {:>6} finished late, {:>6} unaffected; drain p50 {:.0} ms, max {:.0} ms",
            a.strategy,
            a.orders,
            pct(a.failed_fast_share),
            pct(a.finished_late_share),
            pct(a.unaffected_share),
            a.drain_ms.p50,
            a.drain_ms.max
        )?;
    }
    if r.fault_scales.len() > 1 {
        writeln!(out, "\nfault intensity (success / p99 ms / violations per 10k orders):")?;
        for s in &r.strategies {
            let points: Vec<String> = r
                .curves
                .iter()
                .filter(|p| p.strategy == s.strategy)
                .map(|p| {
                    format!(
                        "×{}: {} / {:.0} / {:.1}",
                        p.scale,
                        pct(p.success_rate.mean),
                        p.latency_p99_ms,
                        p.violations_per_10k_orders
                    )
                })
                .collect();
            writeln!(out, "  {:<20} {}", s.strategy, points.join("   "))?;
        }
    }
    writeln!(out, "\nrobustness frontier (highest fault scale with no violation):")?;
    for (strategy, scale) in &r.frontier {
        let at = scale.map_or("none measured".to_string(), |f| format!("×{f}"));
        writeln!(out, "  {strategy:<20} {at}")?;
    }
    Ok(())
}
