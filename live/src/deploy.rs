//! What a live deployment is made of: its processes, where the
//! infrastructure is, the names that keep one run's databases, streams and
//! keys apart from another's, and the settings every process shares. The
//! parent writes it as JSON; each `sagasim serve` child reads it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use domain::node::{Peer, Settings};
use domain::{Service, Strategy, Topic};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Result};

/// One process of the deployed system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Process {
    /// The API gateway: HTTP in front, idempotency keys in Redis.
    Gateway,
    /// One service of the split system, or an external system we model.
    Service(Service),
    /// Every service's tables in one schema, one transaction per step (§2).
    Monolith,
}

impl Process {
    pub fn name(self) -> &'static str {
        match self {
            Process::Gateway => "gateway",
            Process::Monolith => "monolith",
            Process::Service(s) => s.name(),
        }
    }

    pub fn parse(name: &str) -> Option<Process> {
        match name {
            "gateway" => Some(Process::Gateway),
            "monolith" => Some(Process::Monolith),
            _ => Service::ALL.into_iter().find(|s| s.name() == name).map(Process::Service),
        }
    }

    /// The processes a strategy runs, in start order: the external systems,
    /// then the services, then the gateway in front.
    pub fn of(strategy: Strategy) -> Vec<Process> {
        let mut ps = vec![Process::Service(Service::Pg)];
        match strategy {
            Strategy::Monolith => ps.push(Process::Monolith),
            s => {
                ps.push(Process::Service(Service::Platform));
                ps.extend(Service::OURS.map(Process::Service));
                if s.coordinated() {
                    ps.push(Process::Service(Service::Orchestrator));
                }
            }
        }
        ps.push(Process::Gateway);
        ps
    }

    /// The processes a strategy may crash: ours, not the external systems.
    pub fn crashable(strategy: Strategy) -> Vec<Process> {
        Process::of(strategy)
            .into_iter()
            .filter(|p| !matches!(p, Process::Service(Service::Pg | Service::Platform)))
            .collect()
    }

    /// The database schema the process owns (it names no other).
    pub fn schema(self) -> &'static str {
        match self {
            Process::Gateway => "gateway",
            Process::Monolith => "svc_monolith",
            Process::Service(Service::Product) => "svc_product",
            Process::Service(Service::Order) => "svc_order",
            Process::Service(Service::Payment) => "svc_payment",
            Process::Service(Service::User) => "svc_user",
            Process::Service(Service::Orchestrator) => "svc_orchestrator",
            Process::Service(Service::Pg) => "ext_pg",
            Process::Service(Service::Platform) => "ext_platform",
        }
    }

    /// The migration files of its schema, in order (see `migrations/`).
    pub fn migrations(self) -> Vec<(&'static str, &'static str)> {
        use crate::pg::migrations::*;
        let mut files = vec![COMMON];
        files.extend(match self {
            Process::Gateway => return Vec::new(),
            Process::Monolith => vec![PRODUCT, ORDER, PAYMENT, USER, PLATFORM],
            Process::Service(Service::Product) => vec![PRODUCT],
            Process::Service(Service::Order) => vec![ORDER],
            Process::Service(Service::Payment) => vec![PAYMENT],
            Process::Service(Service::User) => vec![USER],
            Process::Service(Service::Platform) => vec![PLATFORM],
            Process::Service(Service::Pg) => vec![PG],
            Process::Service(Service::Orchestrator) => vec![ORCHESTRATOR],
        });
        files
    }

    /// Whether the process keeps tables in PostgreSQL.
    pub fn has_tables(self) -> bool {
        self != Process::Gateway
    }
}

/// Where the infrastructure is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Infra {
    pub pg_host: String,
    pub pg_port: u16,
    pub pg_user: String,
    pub redis_url: String,
    pub nats_url: String,
}

impl Default for Infra {
    fn default() -> Infra {
        Infra {
            pg_host: "127.0.0.1".to_string(),
            pg_port: 5432,
            pg_user: "postgres".to_string(),
            redis_url: "redis://127.0.0.1:6379/".to_string(),
            nats_url: "127.0.0.1:4222".to_string(),
        }
    }
}

impl Infra {
    pub fn pg_at(&self) -> String {
        format!("{}:{}", self.pg_host, self.pg_port)
    }
}

/// How the services use the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerSettings {
    pub partitions: u32,
    /// Records a consumer fetches at once; they are handled one by one and
    /// acknowledged together once the batch is done (its "offset commit").
    pub max_poll_records: u32,
    /// Attempts at a record before it goes to the dead-letter stream;
    /// `None`: retried for ever (the planted no-dlq bug).
    pub max_attempts: Option<u32>,
    pub retry_backoff_ms: u64,
    /// The recovery pass's wait before it tries a dead letter again.
    pub dead_letter_retry_ms: u64,
    /// How long the broker waits for an acknowledgement before it delivers
    /// a record again.
    pub ack_wait_ms: u64,
    /// How long a fetch waits for records when there are none.
    pub fetch_wait_ms: u64,
    /// A dual write's producer holds records this long before it publishes
    /// them (a crash meanwhile loses them).
    pub linger_ms: u64,
    /// Share of a consumer's acknowledgements lost during the fault phase
    /// (the scenario's network loss), in parts per million.
    pub ack_loss_ppm: u32,
    /// How long a stream remembers a `Nats-Msg-Id` to drop a second copy.
    pub dedupe_window_ms: u64,
    /// Test knob: the relay waits this long before it publishes rows it
    /// took, and this long after they were acknowledged before it marks
    /// them sent, so a test can kill a process in between. 0 in real runs.
    pub relay_hold_ms: (u64, u64),
}

/// How many products and users the run's database holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub products: u32,
    pub users: u32,
}

/// A deployment: everything a process needs to know to take its place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The run's name: its database, its streams' and keys' prefix.
    pub run: String,
    /// The scenario (as named on the command line), the planted bug and
    /// the seed whose workload the database was set up with.
    pub scenario: String,
    pub bug: Option<domain::Bug>,
    pub seed: u64,
    pub strategy: Strategy,
    pub settings: Settings,
    pub infra: Infra,
    pub broker: BrokerSettings,
    /// Each process's HTTP port on 127.0.0.1, by process name (and, under
    /// `sagasim up`, the supervisor's, as "control").
    pub ports: BTreeMap<String, u16>,
    /// Seeds the processes' own fault streams.
    pub pg_seed: u64,
    /// What the workload set up: requests naming other products or users
    /// are refused at the gateway.
    pub catalog: Catalog,
    /// Where processes write their logs and spans.
    pub dir: PathBuf,
}

impl Deployment {
    pub fn database(&self) -> String {
        format!("sagasim_{}", self.run)
    }

    pub fn port(&self, p: Process) -> u16 {
        self.ports[p.name()]
    }

    pub fn url(&self, p: Process) -> String {
        format!("http://127.0.0.1:{}", self.port(p))
    }

    /// The process that runs a peer of the domain.
    pub fn process_of(&self, peer: Peer) -> Process {
        match peer {
            Peer::Gateway => Process::Gateway,
            Peer::Service(Service::Pg) => Process::Service(Service::Pg),
            Peer::Service(_) if self.strategy == Strategy::Monolith => Process::Monolith,
            Peer::Service(s) => Process::Service(s),
        }
    }

    /// The process where orders enter.
    pub fn entry(&self) -> Process {
        self.process_of(Peer::Service(self.settings.entry()))
    }

    /// The subject a topic's partition is published on.
    pub fn subject(&self, topic: Topic, partition: u32) -> String {
        format!("{}.{}.{partition}", self.run, topic.name())
    }

    pub fn stream(&self, topic: Topic) -> String {
        format!("{}_{}", self.run, topic.name()).to_uppercase().replace('-', "_")
    }

    /// A process's dead-letter stream, and its subject.
    pub fn dead_letter_stream(&self, p: Process) -> String {
        format!("{}_DLQ_{}", self.run, p.name()).to_uppercase().replace('-', "_")
    }

    pub fn dead_letter_subject(&self, p: Process) -> String {
        format!("{}.dlq.{}", self.run, p.name())
    }

    /// Where the gateway keeps an idempotency key in Redis.
    pub fn redis_key(&self, key: domain::RequestKey) -> String {
        format!("{}{:016x}", self.redis_prefix(), key.0)
    }

    pub fn redis_prefix(&self) -> String {
        format!("sagasim:{}:key:", self.run)
    }

    /// The partition of an event key.
    pub fn partition(&self, key: u64) -> u32 {
        (key % self.broker.partitions as u64) as u32
    }

    pub fn log_path(&self, p: Process) -> PathBuf {
        self.dir.join(format!("{}.log", p.name()))
    }

    pub fn spans_path(&self, p: Process) -> PathBuf {
        self.dir.join(format!("{}.spans.jsonl", p.name()))
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("deployment.json")
    }

    /// Present once the fault phase is over.
    pub fn healed_path(&self) -> PathBuf {
        self.dir.join("healed")
    }

    pub fn write(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a deployment serialises");
        std::fs::write(self.path(), text).context(|| format!("writing {}", self.path().display()))
    }

    /// Read a deployment file; a missing or damaged one is a set-up error.
    pub fn read(path: &std::path::Path) -> Result<Deployment> {
        let bad = |why: String| crate::Error::Setup(format!("{}: {why}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let d: Deployment =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a deployment file: {e}")))?;
        if let Some(p) =
            Process::of(d.strategy).into_iter().find(|p| !d.ports.contains_key(p.name()))
        {
            return Err(bad(format!("no port for {}", p.name())));
        }
        Ok(d)
    }
}

/// Microseconds since the Unix epoch, by the wall clock.
pub fn wall_us() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_micros() as u64)
}
