//! The invariants against the real state: every service's tables and
//! journal read from PostgreSQL in one snapshot (one repeatable-read
//! transaction over every schema, so what one service did and what another
//! did in answer are seen together or not at all), and judged by the
//! domain's own [`Checker`], the same code the simulation runs.
//!
//! The checker learns each order's history from the journals (every
//! committed transaction's writes) and compares it with the tables as they
//! are. The meter replays the same history in commit-time order to measure
//! latency and inconsistency windows, as it does in the simulation.

use std::collections::BTreeMap;

use domain::message::CmdKind;
use domain::meter::{Measures, Meter};
use domain::node::Peer;
use domain::{Checker, EndState, OrderId, Service, StateView, Store, Violation, Workload, Write};
use tokio_postgres::Client;

use crate::deploy::{Deployment, Process};
use crate::error::{Error, Result};
use crate::pg::{call, load};

/// One committed transaction, from a journal.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    pub process: Process,
    /// Commit time, µs since the Unix epoch.
    pub at_us: u64,
    pub writes: Vec<Write>,
}

/// Every service's tables and history at one instant.
pub struct Snapshot {
    pub stores: BTreeMap<Process, Store>,
    /// Per process, its transactions in commit order.
    pub journals: BTreeMap<Process, Vec<Committed>>,
    /// Outbox rows not yet published, over all services.
    pub outbox_backlog: u64,
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::failed(format!("PostgreSQL: reading the snapshot: {what}: {e}"))
}

/// Read a snapshot of every process's schema.
pub async fn read(client: &mut Client, d: &Deployment) -> Result<Snapshot> {
    let tx = call(
        client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start(),
    )
    .await
    .map_err(|e| failed("begin", e))?;
    let mut snap =
        Snapshot { stores: BTreeMap::new(), journals: BTreeMap::new(), outbox_backlog: 0 };
    for p in Process::of(d.strategy).into_iter().filter(|p| p.has_tables()) {
        let path = format!("SET LOCAL search_path = {}", p.schema());
        call(tx.batch_execute(&path)).await.map_err(|e| failed(p.name(), e))?;
        snap.stores.insert(p, load::store(&tx, p).await.map_err(|e| failed(p.name(), e))?);
        let q = "SELECT writes, (extract(epoch FROM at) * 1000000)::int8 FROM journal ORDER BY id";
        let rows = call(tx.query(q, &[])).await.map_err(|e| failed(p.name(), e))?;
        let journal = rows
            .iter()
            .map(|r| {
                let writes = serde_json::from_value(r.get(0)).map_err(|e| {
                    failed(p.name(), format!("a journal row is not domain writes: {e}"))
                })?;
                Ok(Committed { process: p, at_us: r.get::<_, i64>(1) as u64, writes })
            })
            .collect::<Result<Vec<_>>>()?;
        snap.journals.insert(p, journal);
        let q = "SELECT count(*) FROM outbox WHERE status = 'PENDING'";
        let row = call(tx.query_one(q, &[])).await.map_err(|e| failed(p.name(), e))?;
        snap.outbox_backlog += row.get::<_, i64>(0) as u64;
    }
    call(tx.commit()).await.map_err(|e| failed("end", e))?;
    Ok(snap)
}

/// The snapshot as the checker reads it: each service's store, wherever the
/// strategy keeps it.
pub struct View<'a> {
    pub d: &'a Deployment,
    pub snap: &'a Snapshot,
}

impl StateView for View<'_> {
    fn store(&self, service: Service) -> &Store {
        let p = self.d.process_of(Peer::Service(service));
        self.snap.stores.get(&p).expect("every process with tables is in the snapshot")
    }
}

/// The journals in the order the checker learns them: where orders enter
/// first (every order's number is written there before anything else
/// happens to it), then each other process in commit order.
fn history<'a>(d: &Deployment, snap: &'a Snapshot) -> impl Iterator<Item = &'a Committed> {
    let entry = d.entry();
    let first = snap.journals.get(&entry).into_iter().flatten();
    let rest = snap.journals.iter().filter(move |(p, _)| **p != entry).flat_map(|(_, j)| j);
    first.chain(rest)
}

/// Judge a snapshot: the checker learns every committed write, then checks
/// every order, product and user against the tables.
pub fn check(w: &Workload, d: &Deployment, snap: &Snapshot) -> (Checker, Option<Violation>) {
    let mut checker = Checker::new(w, d.settings.strategy);
    for c in history(d, snap) {
        for write in &c.writes {
            checker.observe(write);
        }
    }
    let v = checker.after_step(&View { d, snap });
    (checker, v)
}

/// Judge the end of the run: the same, then the checks made once the faults
/// have healed (every saga finished, every answer given, outboxes drained,
/// consumers and dead letters caught up).
pub fn check_end(
    w: &Workload,
    d: &Deployment,
    snap: &Snapshot,
    end: &EndState,
) -> (Checker, Option<Violation>) {
    let (checker, v) = check(w, d, snap);
    let v = v.or_else(|| checker.at_end(end, &View { d, snap }));
    (checker, v)
}

/// What the run measured, from its history replayed in commit-time order:
/// `start_us` is the run's time origin, `gave_up` the steps coordinators
/// gave up as silent.
pub fn measure(
    w: &Workload,
    d: &Deployment,
    snap: &Snapshot,
    start_us: u64,
    gave_up: &[(OrderId, CmdKind)],
) -> Measures {
    let mut all: Vec<&Committed> = history(d, snap).collect();
    // Stable: where times tie, the entry's transactions stay first.
    all.sort_by_key(|c| c.at_us);
    let mut checker = Checker::new(w, d.settings.strategy);
    let mut meter = Meter::new(&w.arrivals);
    for &(order, step) in gave_up {
        meter.gave_up(order, step);
    }
    let mut last = 0;
    for c in all {
        for write in &c.writes {
            checker.observe(write);
            meter.observe(write);
        }
        last = c.at_us.saturating_sub(start_us);
        meter.after_step(last, &checker);
        checker.skip_step();
    }
    meter.finish(last, &checker)
}
