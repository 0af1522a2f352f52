//! A deployment's state, from nothing and back: the infrastructure checked,
//! a name for the run, ports for its processes, a fresh database with every
//! schema migrated and the workload's rows, the streams and consumers; and
//! all of it removed again. Shared by `sagasim live` and `sagasim up`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use domain::node::Settings;
use domain::{Bug, Strategy, Workload};

use crate::deploy::{wall_us, BrokerSettings, Catalog, Deployment, Infra, Process};
use crate::error::{Error, Result};
use crate::redis::Cache;

/// What a deployment is made from.
#[derive(Clone, Debug)]
pub struct Spec {
    pub scenario: String,
    pub strategy: Strategy,
    pub bug: Option<Bug>,
    pub seed: u64,
    pub settings: Settings,
    pub broker: BrokerSettings,
    pub infra: Infra,
    /// Ports from here on, one per process; `None`: free ones.
    pub base_port: Option<u16>,
    /// Where logs and spans go; `None`: a new folder under the temp dir.
    pub dir: Option<PathBuf>,
}

/// Check that PostgreSQL, Redis and NATS answer, all at once, within a few
/// seconds; name the first that does not.
pub async fn preflight(infra: &Infra) -> Result<()> {
    let (pg, redis, nats) = tokio::join!(
        crate::pg::connect(infra, "postgres", "sagasim-preflight", None),
        Cache::connect(&infra.redis_url),
        crate::nats::connect(infra),
    );
    pg?;
    redis?;
    nats?;
    Ok(())
}

/// A name no other run shares: the time, the process, and a count of the
/// runs this process has made (two may start in the same microsecond).
fn run_name() -> String {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = wall_us() & 0xff_ffff_ffff;
    format!("r{t:010x}p{:x}n{n}", std::process::id())
}

/// The ports of the processes (and of the supervisor): from `base` on,
/// each checked free; or, with no base, a free run of them below the
/// ephemeral range (32768 up on Linux), where the system's own outgoing
/// connections, and earlier picks released, do not land.
fn ports(names: &[&str], base: Option<u16>) -> Result<BTreeMap<String, u16>> {
    let try_from = |first: u16| -> Result<BTreeMap<String, u16>> {
        let mut held = Vec::new();
        let mut out = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            let taken = |why: String| Error::PortTaken {
                process: name.to_string(),
                at: format!("127.0.0.1:{}", first as usize + i),
                why,
            };
            let port = first.checked_add(i as u16).ok_or_else(|| taken("past 65535".into()))?;
            let l = std::net::TcpListener::bind(("127.0.0.1", port))
                .map_err(|e| taken(e.to_string()))?;
            out.insert(name.to_string(), port);
            held.push(l);
        }
        Ok(out)
    };
    if let Some(b) = base {
        return try_from(b);
    }
    let mut last = None;
    for attempt in 0..50u64 {
        let spread = (wall_us() ^ (std::process::id() as u64) << 20).wrapping_add(attempt * 7919);
        let first = 20_000 + (spread % 12_000) as u16;
        match try_from(first) {
            Ok(p) => return Ok(p),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("tried at least once"))
}

/// A new deployment of `spec`: its name, folder and ports, written to its
/// folder. `control`: it has a supervisor with a control port.
pub fn deployment(spec: &Spec, w: &Workload, control: bool) -> Result<Deployment> {
    let run = run_name();
    let dir = spec
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("sagasim-live-{run}")));
    std::fs::create_dir_all(&dir).map_err(|e| Error::failed(format!("{}: {e}", dir.display())))?;
    let mut names: Vec<&str> = Process::of(spec.strategy).iter().map(|p| p.name()).collect();
    if control {
        names.push("control");
    }
    let d = Deployment {
        run,
        scenario: spec.scenario.clone(),
        bug: spec.bug,
        seed: spec.seed,
        strategy: spec.strategy,
        settings: spec.settings,
        infra: spec.infra.clone(),
        broker: spec.broker,
        ports: ports(&names, spec.base_port)?,
        pg_seed: spec.seed,
        catalog: Catalog { products: w.products.len() as u32, users: w.balances.len() as u32 },
        dir,
    };
    d.write()?;
    Ok(d)
}

/// Set up the run's state: a fresh database with every schema migrated and
/// the workload's rows, and the streams and consumers.
pub async fn set_up(d: &Deployment, w: &Workload) -> Result<()> {
    crate::pg::create_database(&d.infra, &d.database()).await?;
    let mut admin = crate::pg::connect(&d.infra, &d.database(), "sagasim-setup", None).await?;
    for p in Process::of(d.strategy).into_iter().filter(|p| p.has_tables()) {
        crate::pg::migrate(&mut admin, p).await?;
        crate::pg::seed(&mut admin, p, w).await?;
    }
    let js = crate::nats::connect(&d.infra).await?;
    crate::nats::create_streams(&js, d).await?;
    crate::nats::create_consumers(&js, d).await
}

/// Remove the run's state: database, streams, keys. What could not be
/// removed, said in sentences.
pub async fn tear_down(d: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = crate::pg::drop_database(&d.infra, &d.database()).await {
        problems.push(e.to_string());
    }
    match crate::nats::connect(&d.infra).await {
        Ok(js) => {
            if let Err(e) = crate::nats::delete_streams(&js, &d.run).await {
                problems.push(e.to_string());
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    match Cache::connect(&d.infra.redis_url).await {
        Ok(mut c) => {
            if let Err(e) = c.forget(&format!("sagasim:{}:", d.run)).await {
                problems.push(format!("Redis: {}", e.0));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    problems
}

/// How the run's state was set up, for the report.
pub fn describe_state(d: &Deployment, kept: bool) -> String {
    let fate = if kept { "kept (--keep)" } else { "removed at the end" };
    format!(
        "fresh database {}, streams {}_*, keys sagasim:{}:*; {fate}; logs in {}",
        d.database(),
        d.run.to_uppercase(),
        d.run,
        d.dir.display()
    )
}
