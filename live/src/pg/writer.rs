//! A service's one writing connection. A commit puts a handler's writes, its
//! outbox rows, its inbox row and a journal row in one transaction, checked
//! against the fence first: an incarnation whose epoch has been taken by a
//! newer one (a zombie woken after its replacement started) commits nothing.
//!
//! A connection that breaks while COMMIT is on its way leaves the outcome
//! unknown. The writer then ends the old session, waits until it is gone,
//! and reads the journal: the transaction's row is there or it is not, and
//! the caller reloads its mirror from the tables.

use std::collections::HashMap;
use std::time::Duration;

use domain::Write;
use futures::future::{join_all, try_join_all};
use tokio_postgres::{Client, Statement};

use crate::deploy::{Infra, Process};
use crate::error::{Error, Result};
use crate::pg::writes::{self, Param, Stmt};
use crate::pg::{call, connect, load, CallError, Store};

/// An outbox row to insert with the writes.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    pub aggregate_id: u32,
    pub event_type: &'static str,
    pub payload: serde_json::Value,
    pub traceparent: Option<String>,
}

/// What became of a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Commit {
    Applied,
    /// Nothing was applied, and the server said so.
    Failed(String),
    /// A newer incarnation holds the fence: this one must stop.
    Fenced,
    /// The connection broke during COMMIT; the journal then said whether it
    /// applied. The mirror must be reloaded either way.
    Resolved {
        applied: bool,
    },
    /// The outcome could not be found out (the server is unreachable).
    Unknown(String),
}

pub struct Writer {
    infra: Infra,
    database: String,
    process: Process,
    client: Client,
    /// The server process of the session, to end it when it goes silent.
    pid: i32,
    /// The fence epoch this incarnation took.
    pub epoch: i64,
    statements: HashMap<&'static str, Statement>,
    next_tx: u64,
}

const FENCE_TAKE: &str = "INSERT INTO fence (service, epoch) VALUES ($1, 1)
    ON CONFLICT (service) DO UPDATE SET epoch = fence.epoch + 1 RETURNING epoch";
const FENCE_CHECK: &str = "SELECT hold_fence($1, $2)";
const OUTBOX: &str = "INSERT INTO outbox (aggregate_id, event_type, payload, traceparent)
    VALUES ($1, $2, $3, $4)";
const JOURNAL: &str = "INSERT INTO journal (tx, writes, at) VALUES ($1, $2, clock_timestamp())";

fn failed(what: &str, e: CallError) -> Error {
    Error::failed(format!("PostgreSQL: {what}: {e}"))
}

async fn session(infra: &Infra, database: &str, p: Process) -> Result<(Client, i32)> {
    let client =
        connect(infra, database, &format!("sagasim-{}", p.name()), Some(p.schema())).await?;
    let row = call(client.query_one("SELECT pg_backend_pid()", &[]))
        .await
        .map_err(|e| failed("opening a session", e))?;
    Ok((client, row.get(0)))
}

impl Writer {
    /// Open the writing session and take the fence: from now on, older
    /// incarnations of the process commit nothing.
    pub async fn open(infra: &Infra, database: &str, p: Process) -> Result<Writer> {
        let (client, pid) = session(infra, database, p).await?;
        let row = call(client.query_one(FENCE_TAKE, &[&p.name()]))
            .await
            .map_err(|e| failed("taking the fence", e))?;
        let epoch: i64 = row.get(0);
        Ok(Writer {
            infra: infra.clone(),
            database: database.to_string(),
            process: p,
            client,
            pid,
            epoch,
            statements: HashMap::new(),
            next_tx: 0,
        })
    }

    /// The process's tables, as committed.
    pub async fn load(&self) -> Result<Store> {
        load::store(&self.client, self.process).await.map_err(|e| failed("loading the tables", e))
    }

    /// Prepare (once per session) every statement not yet prepared.
    async fn prepare(&mut self, sqls: &[&'static str]) -> std::result::Result<(), CallError> {
        let mut missing: Vec<&'static str> =
            sqls.iter().copied().filter(|s| !self.statements.contains_key(s)).collect();
        missing.sort_unstable();
        missing.dedup();
        let client = &self.client;
        let prepared = try_join_all(missing.iter().map(|s| call(client.prepare(s)))).await?;
        self.statements.extend(missing.into_iter().zip(prepared));
        Ok(())
    }

    /// Commit one transaction: the writes, the outbox rows, the inbox row
    /// (one of the writes) and the journal row, after checking the fence.
    pub async fn commit(&mut self, ws: &[Write], outbox: &[OutboxRow]) -> Commit {
        // A session that ended while idle (a terminated backend) is known
        // closed: open a new one first rather than fail a commit on it.
        if self.client.is_closed() {
            if let Err(why) = self.reopen(self.pid).await {
                return Commit::Failed(format!("the database session had ended: {why}"));
            }
        }
        let mut stmts: Vec<Stmt> = Vec::new();
        for w in ws {
            if let Err(e) = writes::statements(w, &mut stmts) {
                return Commit::Failed(e);
            }
        }
        let journal = serde_json::to_value(ws).expect("writes serialise");
        self.next_tx += 1;
        let tx_id = self.epoch << 32 | self.next_tx as i64;
        stmts.extend(outbox.iter().map(|r| Stmt {
            sql: OUTBOX,
            params: vec![
                Param::I64(r.aggregate_id as i64),
                Param::Text(r.event_type),
                Param::Json(r.payload.clone()),
                Param::OptText(r.traceparent.clone()),
            ],
        }));
        stmts.push(Stmt { sql: JOURNAL, params: vec![Param::I64(tx_id), Param::Json(journal)] });
        let mut sqls: Vec<&'static str> = stmts.iter().map(|s| s.sql).collect();
        sqls.push(FENCE_CHECK);
        if let Err(e) = self.prepare(&sqls).await {
            return self.broken(e, None).await;
        }
        match self.run(&stmts).await {
            Ok(()) => Commit::Applied,
            Err(Step::Refused(why)) => Commit::Failed(why),
            Err(Step::Fenced) => Commit::Fenced,
            Err(Step::CommitLost(e)) => self.broken(e, Some(tx_id)).await,
        }
    }

    /// The transaction itself, in one round trip: BEGIN, the fence, every
    /// statement and COMMIT go out at once. A statement that fails aborts
    /// the transaction, and the COMMIT behind it then rolls back, while
    /// still answering "ok" (rust-postgres #1334): so every result is read,
    /// and the first error decides.
    async fn run(&mut self, stmts: &[Stmt]) -> std::result::Result<(), Step> {
        let (c, st) = (&self.client, &self.statements);
        let (name, epoch) = (self.process.name(), self.epoch);
        let fence_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&name, &epoch];
        let begin = call(c.batch_execute("BEGIN"));
        let fence = call(c.execute(&st[FENCE_CHECK], &fence_params));
        let writes = join_all(stmts.iter().map(|s| {
            let params: Vec<_> = s.params.iter().map(Param::as_sql).collect();
            let statement = &st[s.sql];
            async move { call(c.execute(statement, &params)).await.map(drop) }
        }));
        let commit = call(c.batch_execute("COMMIT"));
        let (begin, fence, writes, commit) = futures::join!(begin, fence, writes, commit);
        let first = std::iter::once(begin)
            .chain(std::iter::once(fence.map(drop)))
            .chain(writes)
            .find_map(|r| r.err());
        match first.map(Err).unwrap_or(commit) {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("SGFEN") => Err(Step::Fenced),
            Err(e) if e.is_answer() => Err(Step::Refused(e.to_string())),
            // Silence, or a broken connection: COMMIT may have been applied.
            Err(e) => Err(Step::CommitLost(e)),
        }
    }

    /// The session failed. Before COMMIT was sent nothing can have applied;
    /// after, find out from the journal. Either way, start a new session.
    async fn broken(&mut self, e: CallError, sent_commit: Option<i64>) -> Commit {
        if e.is_answer() {
            // The server answered with an error (to COMMIT too: a refused
            // COMMIT rolled back). The session is still good.
            return Commit::Failed(e.to_string());
        }
        let old = self.pid;
        if let Err(why) = self.reopen(old).await {
            return Commit::Unknown(format!("{e}; then {why}"));
        }
        let Some(tx_id) = sent_commit else { return Commit::Failed(e.to_string()) };
        let q = "SELECT 1 FROM journal WHERE tx = $1";
        match call(self.client.query_opt(q, &[&tx_id])).await {
            Ok(row) => Commit::Resolved { applied: row.is_some() },
            Err(e2) => Commit::Unknown(format!("{e}; then {e2}")),
        }
    }

    /// A new session, once the old one's server process has ended (so no
    /// transaction of it can still commit behind the new one's back).
    async fn reopen(&mut self, old_pid: i32) -> std::result::Result<(), String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match session(&self.infra, &self.database, self.process).await {
                Ok((client, pid)) => {
                    let end = "SELECT pg_terminate_backend($1)";
                    let _ = call(client.query_opt(end, &[&old_pid])).await;
                    loop {
                        let alive = call(client.query_opt(
                            "SELECT 1 FROM pg_stat_activity WHERE pid = $1",
                            &[&old_pid],
                        ))
                        .await
                        .map_err(|e| e.to_string())?;
                        if alive.is_none() {
                            break;
                        }
                        if tokio::time::Instant::now() > deadline {
                            return Err(format!("session {old_pid} would not end"));
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    (self.client, self.pid) = (client, pid);
                    self.statements.clear();
                    return Ok(());
                }
                Err(e) if tokio::time::Instant::now() > deadline => return Err(e.to_string()),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The session's server process (for tests that break it on purpose).
    pub fn backend_pid(&self) -> i32 {
        self.pid
    }
}

/// How a transaction attempt failed.
enum Step {
    /// The server refused it: nothing applied.
    Refused(String),
    Fenced,
    /// No answer, or the connection broke, with COMMIT sent.
    CommitLost(CallError),
}
