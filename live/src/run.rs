//! A live run, start to end: check that the infrastructure answers, set up
//! the run's own database, streams and key prefix, start the processes,
//! drive the workload while the nemesis strikes, heal, wait for every saga
//! to finish, judge the final state, report, and take everything down
//! again, whichever way the run ends.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use domain::client::RetryPolicy;
use domain::{EndState, Response, Workload};
use reports::live::{
    Answers, DeadLetters, Latency, LiveFault, LiveProcess, LiveReport, LiveViolation, LIVE_SCHEMA,
};
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;

use crate::check;
use crate::deploy::{wall_us, Deployment, Process};
use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::nemesis::{self, Action, FaultSpec, Struck};
use crate::node::Status;
use crate::process::Children;
use crate::redis::Cache;
use crate::system::{self, preflight, Spec};
use crate::trace::SpanLine;

/// How often the tables are read and checked while the run goes on.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);

/// After the heal, with the client done, nothing left to publish or
/// deliver and no commit for this long, the run stops waiting.
pub const QUIET: Duration = Duration::from_secs(5);

/// Everything a live run needs, decided before it starts.
#[derive(Clone, Debug)]
pub struct Plan {
    /// What the deployment is made from.
    pub spec: Spec,
    pub workload: Workload,
    pub policy: RetryPolicy,
    pub fault_phase_us: u64,
    pub heal_budget_us: u64,
    pub faults: FaultSpec,
    /// Fault kinds of the scenario a live run does not inject.
    pub not_injected: Vec<String>,
    /// The sagasim binary the processes run.
    pub exe: PathBuf,
    /// Keep the run's database, streams and keys (for a look afterwards).
    pub keep: bool,
}

/// What a run came to.
pub struct Outcome {
    pub report: LiveReport,
    /// The run's time origin, µs since the Unix epoch.
    pub start_us: u64,
    pub spans: Vec<SpanLine>,
    pub dir: PathBuf,
}

/// Make one live run: its own deployment, started, driven, judged, and
/// taken down again, whichever way the run ends.
pub async fn run(plan: Plan) -> Result<Outcome> {
    preflight(&plan.spec.infra).await?;
    let d = system::deployment(&plan.spec, &plan.workload, false)?;
    let set = system::set_up(&d, &plan.workload).await;
    let fleet = Arc::new(Mutex::new(Fleet::Local(Box::new(Children::new(&d, &plan.exe)))));
    let result = match set {
        Err(e) => Err(e),
        Ok(()) => {
            tokio::select! {
                r = start_and_drive(&plan, &d, &fleet) => r,
                _ = stopped() => Err(Error::Interrupted),
            }
        }
    };
    if let Fleet::Local(c) = &mut *fleet.lock().await {
        c.stop_all().await;
    }
    let problems = if plan.keep { Vec::new() } else { system::tear_down(&d).await };
    for p in &problems {
        eprintln!("warning: cleaning up run {}: {p}", d.run);
    }
    let (mut report, start_us) = result?;
    report.state = system::describe_state(&d, plan.keep);
    Ok(Outcome { report, start_us, spans: read_spans(&d), dir: d.dir.clone() })
}

async fn start_and_drive(
    plan: &Plan,
    d: &Deployment,
    fleet: &Arc<Mutex<Fleet>>,
) -> Result<(LiveReport, u64)> {
    {
        let mut f = fleet.lock().await;
        for p in Process::of(d.strategy) {
            f.start(p).await?;
        }
    }
    body(plan, d, fleet).await
}

/// Make one live run against a system `sagasim up` started, whose state
/// must still be fresh (no order taken yet). It leaves the system running.
pub async fn attach(plan: Plan, d: Deployment) -> Result<Outcome> {
    preflight(&d.infra).await?;
    let fleet = Arc::new(Mutex::new(Fleet::remote(&d)?));
    let mut db = crate::pg::connect(&d.infra, &d.database(), "sagasim-attach", None).await?;
    let snap = check::read(&mut db, &d).await?;
    let taken = snap.stores[&d.entry()].entry.next_order;
    let history: usize = snap.journals.values().map(Vec::len).sum();
    if taken > 0 || history > 0 {
        return Err(Error::Setup(format!(
            "run {} is not fresh: it has taken {taken} orders ({history} transactions); \
             start a new system with `sagasim up` for each attached run",
            d.run
        )));
    }
    let result = tokio::select! {
        r = body(&plan, &d, &fleet) => r,
        _ = stopped() => Err(Error::Interrupted),
    };
    let (mut report, start_us) = result?;
    report.state = format!(
        "attached to run {} (started by `sagasim up`; its state was fresh: no order taken); \
         database {}; left running",
        d.run,
        d.database()
    );
    Ok(Outcome { report, start_us, spans: read_spans(&d), dir: d.dir.clone() })
}

fn read_spans(d: &Deployment) -> Vec<SpanLine> {
    let mut all = Vec::new();
    for p in Process::of(d.strategy) {
        let text = std::fs::read_to_string(d.spans_path(p)).unwrap_or_default();
        all.extend(text.lines().filter_map(|l| serde_json::from_str::<SpanLine>(l).ok()));
    }
    all.sort_by_key(|s| s.start_us);
    all
}

/// The run with its processes up.
async fn body(plan: &Plan, d: &Deployment, fleet: &Arc<Mutex<Fleet>>) -> Result<(LiveReport, u64)> {
    let seed = plan.spec.seed;
    let mut db = crate::pg::connect(&d.infra, &d.database(), "sagasim-checker", None).await?;
    let start = Instant::now();
    let start_us = wall_us();
    let (stop_tx, stop_rx) = watch::channel(false);
    let driver = tokio::spawn(crate::driver::drive(
        d.url(Process::Gateway),
        plan.workload.arrivals.clone(),
        plan.policy,
        seed,
        start,
        stop_rx,
    ));
    let faults = nemesis::plan(&plan.faults, d.strategy, d.broker.partitions, seed);
    let nemesis = tokio::spawn(strike(
        d.clone(),
        faults,
        fleet.clone(),
        start,
        plan.fault_phase_us,
        stop_tx.subscribe(),
    ));
    let fault_end = start + Duration::from_micros(plan.fault_phase_us);
    let deadline = fault_end + Duration::from_micros(plan.heal_budget_us);
    let js = crate::nats::connect(&d.infra).await?;
    let http = crate::http::Client::default();
    let mut checks = 0u64;
    let mut healed = false;
    let mut violation: Option<LiveViolation> = None;
    let mut settled_at_ms = None;
    let mut mended: Vec<Struck> = Vec::new();
    let mut last_commits = (0usize, Instant::now());
    let mut stalled = false;
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let now = Instant::now();
        if !healed && now >= fault_end {
            mended.extend(heal(d, fleet, &http, start).await?);
            healed = true;
        }
        // A restart under way holds the fleet; the checks go on meanwhile.
        let revived = match fleet.try_lock() {
            Ok(mut f) => f.revive().await?,
            Err(_) => Vec::new(),
        };
        for p in revived {
            let at_us = start.elapsed().as_micros() as u64;
            let detail = "it had stopped by itself".to_string();
            mended.push(Struck { at_us, kind: "restart".into(), target: p.name().into(), detail });
        }
        let snap = snapshot(&mut db, d).await?;
        checks += 1;
        let (checker, v) = judge(|| check::check(&plan.workload, d, &snap))?;
        if let Some(v) = v {
            violation = Some(live_violation(&v, start, false));
            break;
        }
        let commits: usize = snap.journals.values().map(Vec::len).sum();
        if commits != last_commits.0 {
            last_commits = (commits, now);
        }
        if healed && driver.is_finished() && snap.outbox_backlog == 0 {
            let memory = memory_backlog(d, &http).await;
            if memory == 0 && crate::nats::lag(&js, d).await? == 0 {
                if checker.sagas_done() {
                    settled_at_ms = Some(start.elapsed().as_millis() as u64);
                    break;
                }
                // Nothing left to deliver and nothing committed for a while:
                // what is unfinished stays so (the simulation's "stalled").
                if now.duration_since(last_commits.1) >= QUIET {
                    stalled = true;
                    break;
                }
            }
        }
        if now >= deadline {
            break;
        }
    }
    let _ = stop_tx.send(true);
    if !healed {
        mended.extend(heal(d, fleet, &http, start).await?);
    }
    let mut struck = nemesis.await.map_err(|e| Error::failed(format!("the nemesis: {e}")))?;
    struck.extend(mended);
    struck.sort_by_key(|s| s.at_us);
    let seen = driver.await.map_err(|e| Error::failed(format!("the driver: {e}")))?;
    let statuses = statuses(d, &http).await;
    let snap = snapshot(&mut db, d).await?;
    let end = EndState {
        settled: settled_at_ms.is_some(),
        outbox_backlog: snap.outbox_backlog as usize,
        memory_backlog: statuses.iter().map(|s| s.memory_backlog).sum::<u64>() as usize,
        broker_lag: crate::nats::lag(&js, d).await?,
        answers: seen.answers.clone(),
        since_heal_us: Some(
            (start.elapsed().as_micros() as u64).saturating_sub(plan.fault_phase_us),
        ),
    };
    let dead_letters = crate::nats::dead_letters(&js, d).await?;
    if violation.is_none() {
        let (_, v) = judge(|| check::check_end(&plan.workload, d, &snap, &end))?;
        violation = v.map(|v| live_violation(&v, start, true));
    }
    let gave_up: Vec<_> = statuses.iter().flat_map(|s| s.gave_up.iter().copied()).collect();
    let measures = judge(|| check::measure(&plan.workload, d, &snap, start_us, &gave_up))?;
    let lives = fleet.lock().await.lives().await?;
    let report = Report { plan, d, start_us, snap: &snap, statuses: &statuses, lives: &lives };
    let parts = ReportParts {
        seen,
        struck,
        measures,
        checks,
        settled_at_ms,
        stalled,
        heal_at_ms: plan.fault_phase_us / 1000,
        violation,
        dead_letters,
    };
    Ok((report.build(parts), start_us))
}

/// A snapshot of every schema. A session that broke, or a read that failed,
/// is tried again on a new session for a while before the run gives up.
async fn snapshot(db: &mut tokio_postgres::Client, d: &Deployment) -> Result<check::Snapshot> {
    let mut tries = 0;
    loop {
        match check::read(db, d).await {
            Ok(s) => return Ok(s),
            Err(e) if tries >= 10 => return Err(e),
            Err(e) => {
                tries += 1;
                eprintln!("warning: reading the tables: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Ok(c) =
                    crate::pg::connect(&d.infra, &d.database(), "sagasim-checker", None).await
                {
                    *db = c;
                }
            }
        }
    }
}

/// Ctrl-C, SIGTERM or SIGHUP: the run is to stop (and take everything
/// down on its way out).
pub async fn stopped() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::hangup()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

/// Run the checker, turning a panic in it (a history it cannot make sense
/// of) into a failed run instead of a crashed parent.
fn judge<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T> {
    std::panic::catch_unwind(f).map_err(|p| {
        let why = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Error::failed(format!("the checker could not read the history: {why}"))
    })
}

fn live_violation(v: &domain::Violation, start: Instant, at_end: bool) -> LiveViolation {
    LiveViolation {
        invariant: v.invariant.name().to_string(),
        entities: v.entities.iter().map(|e| e.to_string()).collect(),
        detail: v.detail.clone(),
        at_ms: start.elapsed().as_millis() as u64,
        at_end,
    }
}

/// The fault phase is over: every process up and running, and the payment
/// gateway well behaved. What it restarted and resumed.
async fn heal(
    d: &Deployment,
    fleet: &Arc<Mutex<Fleet>>,
    http: &crate::http::Client,
    start: Instant,
) -> Result<Vec<Struck>> {
    let done = fleet.lock().await.heal().await?;
    let at_us = start.elapsed().as_micros() as u64;
    let mended = done
        .into_iter()
        .map(|(p, what)| Struck {
            at_us,
            kind: what.to_string(),
            target: p.name().to_string(),
            detail: "the heal".to_string(),
        })
        .collect();
    // Every process stops deciding faults of its own: those running now
    // are told, and one that starts later finds the mark.
    std::fs::write(d.healed_path(), b"healed\n").map_err(Error::failed)?;
    for p in Process::of(d.strategy).into_iter().filter(|p| p.has_tables()) {
        let url = format!("{}/admin/heal", d.url(p));
        if let Err(e) = http.post(&url, Duration::from_secs(2)).await {
            // It finds the mark when it next starts; meanwhile the report
            // shows whatever it still decided.
            eprintln!("warning: telling {} the faults are over: {e}", p.name());
        }
    }
    Ok(mended)
}

async fn statuses(d: &Deployment, http: &crate::http::Client) -> Vec<Status> {
    let mut out = Vec::new();
    for p in Process::of(d.strategy).into_iter().filter(|p| p.has_tables()) {
        let url = format!("{}/status", d.url(p));
        if let Ok(body) = http.get(&url, Duration::from_secs(2)).await {
            if let Ok(s) = serde_json::from_slice::<Status>(&body) {
                out.push(s);
            }
        }
    }
    out
}

async fn memory_backlog(d: &Deployment, http: &crate::http::Client) -> u64 {
    if d.settings.safety.outbox {
        return 0;
    }
    statuses(d, http).await.iter().map(|s| s.memory_backlog).sum()
}

/// Strike the planned faults at their times; a planned restart is struck
/// whenever it falls (the heal starts whatever is still down).
async fn strike(
    d: Deployment,
    faults: Vec<nemesis::Planned>,
    fleet: Arc<Mutex<Fleet>>,
    start: Instant,
    fault_phase_us: u64,
    mut stop: watch::Receiver<bool>,
) -> Vec<Struck> {
    let mut struck = Vec::new();
    let js = crate::nats::connect(&d.infra).await.ok();
    let mut cache = Cache::connect(&d.infra.redis_url).await.ok();
    for f in faults {
        if f.at_us > fault_phase_us {
            // Past the fault phase: the heal starts and resumes whatever is
            // still down or frozen, and nothing new strikes.
            continue;
        }
        // A run that ends early (a violation) strikes nothing more.
        tokio::select! {
            _ = tokio::time::sleep_until(nemesis::until(start, f.at_us)) => {}
            _ = stop.changed() => break,
        }
        let at_us = start.elapsed().as_micros() as u64;
        let detail = match &f.action {
            Action::Kill(p) => match fleet.lock().await.kill(*p).await {
                Ok(true) => "SIGKILL".to_string(),
                Ok(false) => continue,
                Err(e) => format!("not killed: {e}"),
            },
            Action::Start(p) => {
                let mut f = fleet.lock().await;
                if f.is_up(*p).await.unwrap_or(true) {
                    continue;
                }
                match f.start(*p).await {
                    Ok(()) => {
                        let took = (start.elapsed().as_micros() as u64).saturating_sub(at_us);
                        format!("up after {} ms", took / 1000)
                    }
                    Err(e) => format!("did not start: {e}"),
                }
            }
            Action::Pause(p) => match fleet.lock().await.pause(*p).await {
                Ok(()) => "SIGSTOP".to_string(),
                Err(e) => format!("not paused: {e}"),
            },
            Action::Resume(p) => match fleet.lock().await.resume(*p).await {
                Ok(()) => "SIGCONT".to_string(),
                Err(e) => format!("not resumed: {e}"),
            },
            Action::FlushCache => match cache.as_mut() {
                Some(c) => match c.forget(&d.redis_prefix()).await {
                    Ok(n) => format!("{n} keys forgotten"),
                    Err(e) => format!("failed: {}", e.0),
                },
                None => "failed: Redis unreachable".to_string(),
            },
            Action::Poison { topic, partition } => match js.as_ref() {
                Some(js) => match nemesis::poison(js, &d, *topic, *partition).await {
                    Ok(()) => "a record no consumer can read".to_string(),
                    Err(e) => format!("failed: {e}"),
                },
                None => "failed: NATS unreachable".to_string(),
            },
            Action::EndSession(p) => match nemesis::end_session(&d, *p).await {
                Ok(1) => "its database session ended".to_string(),
                Ok(n) => format!("{n} database sessions ended"),
                Err(e) => format!("failed: {e}"),
            },
        };
        struck.push(Struck {
            at_us,
            kind: f.action.kind().to_string(),
            target: f.action.target(),
            detail,
        });
    }
    struck
}

struct Report<'a> {
    plan: &'a Plan,
    d: &'a Deployment,
    start_us: u64,
    snap: &'a check::Snapshot,
    statuses: &'a [Status],
    lives: &'a BTreeMap<Process, crate::process::Life>,
}

struct ReportParts {
    seen: crate::driver::Seen,
    struck: Vec<Struck>,
    measures: domain::meter::Measures,
    checks: u64,
    settled_at_ms: Option<u64>,
    stalled: bool,
    heal_at_ms: u64,
    violation: Option<LiveViolation>,
    /// Records in the dead-letter streams at the end.
    dead_letters: u64,
}

/// How fast orders went, from a run's measures (simulated or live): the
/// latency from an order's first submission to its final state, and the
/// orders finished per second from the start to the last of them.
pub fn order_speed(m: &domain::meter::Measures) -> (Latency, f64) {
    let mut h = hdrhistogram::Histogram::<u64>::new(3).expect("3 digits");
    let mut last_done = 0;
    for t in &m.orders {
        if let Some(done) = t.done_us {
            let _ = h.record(done.saturating_sub(t.arrived_us).max(1));
            last_done = last_done.max(done);
        }
    }
    let per_s = if last_done > 0 { h.len() as f64 / (last_done as f64 / 1e6) } else { 0.0 };
    (latency_of(&h), per_s)
}

fn latency_of(h: &hdrhistogram::Histogram<u64>) -> Latency {
    let ms = |us: u64| us as f64 / 1000.0;
    Latency {
        count: h.len(),
        p50_ms: ms(h.value_at_quantile(0.5)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
    }
}

impl Report<'_> {
    fn build(&self, parts: ReportParts) -> LiveReport {
        let (seen, measures) = (&parts.seen, &parts.measures);
        let plan = self.plan;
        let spec = &plan.spec;
        let view = check::View { d: self.d, snap: self.snap };
        let store = domain::StateView::store(&view, domain::Service::Order);
        let entry = &self.snap.stores[&self.d.entry()].entry;
        let orders = entry.next_order as u64;
        let outcomes = store.order().expect("order tables").tally(entry.next_order);
        let (order_latency, orders_per_s) = order_speed(measures);
        let last_done = measures.orders.iter().filter_map(|t| t.done_us).max().unwrap_or(0);
        let mut answers = Answers::default();
        for a in &seen.answers {
            match a {
                Some(Response::Accepted { .. }) => answers.accepted += 1,
                Some(Response::Refused { .. }) => answers.refused += 1,
                Some(Response::KeyConflict) => answers.key_conflict += 1,
                Some(Response::InProgress) | None => answers.none += 1,
            }
        }
        let answered_during_faults =
            seen.answered_at_us.iter().flatten().filter(|t| **t <= plan.fault_phase_us).count();
        let fault_end_us = self.start_us + plan.fault_phase_us;
        let committed_during_faults = self
            .snap
            .journals
            .values()
            .flatten()
            .filter(|c| (self.start_us..=fault_end_us).contains(&c.at_us))
            .count();
        let mut faults: Vec<LiveFault> = parts
            .struck
            .iter()
            .map(|s| LiveFault {
                at_ms: s.at_us / 1000,
                kind: s.kind.clone(),
                target: s.target.clone(),
                detail: s.detail.clone(),
            })
            .collect();
        for s in self.statuses {
            faults.extend(s.injected.iter().map(|i| LiveFault {
                at_ms: i.at_us.saturating_sub(self.start_us) / 1000,
                kind: i.what.clone(),
                target: s.process.clone(),
                detail: String::new(),
            }));
        }
        faults.sort_by_key(|f| f.at_ms);
        let processes = self
            .lives
            .iter()
            .map(|(p, l)| {
                let s = self.statuses.iter().find(|s| s.process == p.name());
                LiveProcess {
                    name: p.name().to_string(),
                    starts: l.starts,
                    kills: l.kills,
                    pauses: l.pauses,
                    exits: l.exits,
                    commits: s.map_or(0, |s| s.commits),
                    failed_commits: s.map_or(0, |s| s.failed_commits),
                    unknown_commits: s.map_or(0, |s| s.unknown_commits),
                }
            })
            .collect();
        let parked = self.snap.stores.values().map(|s| s.parked).sum();
        let written = parts.dead_letters;
        let duration_s = last_done as f64 / 1e6;
        LiveReport {
            schema: LIVE_SCHEMA.to_string(),
            scenario: spec.scenario.clone(),
            strategy: spec.strategy.name().to_string(),
            bug: spec.bug.map(|b| b.name().to_string()),
            seed: spec.seed,
            run: self.d.run.clone(),
            state: String::new(),
            processes,
            submissions: plan.workload.arrivals.len() as u64,
            orders,
            duration_s,
            orders_per_s,
            latency: latency_of(&seen.latency_us),
            order_latency,
            outcomes,
            answers,
            requests: seen.requests,
            failed_requests: seen.failed_requests,
            retries: seen.retries,
            faults,
            not_injected: plan.not_injected.clone(),
            checks: parts.checks,
            settled: parts.settled_at_ms.is_some(),
            stalled: parts.stalled,
            heal_at_ms: parts.heal_at_ms,
            settled_at_ms: parts.settled_at_ms,
            dead_letters: DeadLetters { written, parked },
            answered_during_faults: answered_during_faults as u64,
            committed_during_faults: committed_during_faults as u64,
            vacuous: committed_during_faults == 0,
            violation: parts.violation,
            sim: None,
        }
    }
}
