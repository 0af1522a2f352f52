//! The nemesis: the faults a live run injects, drawn from the seed and
//! struck at their times during the fault phase. A process is killed with
//! SIGKILL and started again; paused with SIGSTOP and resumed; the key
//! cache forgets every key; a record no consumer can read is published;
//! a service's database session is ended under it (its commit fails, or its
//! outcome is unknown). The payment gateway decides its own faults (see
//! the `[pg]` rates), and reports them.

use std::time::Duration;

use domain::{Strategy, Topic};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::deploy::{Deployment, Process};

pub type Range = (u64, u64);

/// How many faults of each kind, and when: the scenario's `[faults]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSpec {
    pub crashes: Range,
    pub crash_at_us: Range,
    pub restart_after_us: Range,
    pub pauses: Range,
    pub pause_at_us: Range,
    pub pause_for_us: Range,
    pub cache_flushes: Range,
    pub cache_flush_at_us: Range,
    pub poisons: Range,
    pub poison_at_us: Range,
    /// Database sessions ended under a service.
    pub session_kills: Range,
    pub session_kill_at_us: Range,
    /// Crashes strike the services only, never the gateway (the scenario's
    /// `faults.crash_nodes` without "gateway").
    pub spare_gateway: bool,
    /// Crashes strike the gateway only (`faults.crash_nodes` without
    /// "services").
    pub spare_services: bool,
}

/// One fault to strike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Kill(Process),
    Start(Process),
    Pause(Process),
    Resume(Process),
    FlushCache,
    Poison { topic: Topic, partition: u32 },
    EndSession(Process),
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Kill(_) => "kill",
            Action::Start(_) => "restart",
            Action::Pause(_) => "pause",
            Action::Resume(_) => "resume",
            Action::FlushCache => "cache-flush",
            Action::Poison { .. } => "poison",
            Action::EndSession(_) => "session-ended",
        }
    }

    pub fn target(&self) -> String {
        match self {
            Action::Kill(p)
            | Action::Start(p)
            | Action::Pause(p)
            | Action::Resume(p)
            | Action::EndSession(p) => p.name().to_string(),
            Action::FlushCache => "redis".to_string(),
            Action::Poison { topic, partition } => format!("{}.{partition}", topic.name()),
        }
    }
}

/// A fault at its time, in µs from the start of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    pub at_us: u64,
    pub action: Action,
}

fn draw(rng: &mut ChaCha8Rng, r: Range) -> u64 {
    rng.gen_range(r.0..=r.1.max(r.0))
}

/// The faults of a seed, in time order. Their own stream of the seed, so
/// the same seed strikes the same faults at the same times.
pub fn plan(spec: &FaultSpec, strategy: Strategy, partitions: u32, seed: u64) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7321);
    let all = Process::crashable(strategy);
    let crashable: Vec<Process> = all
        .iter()
        .copied()
        .filter(|&p| if p == Process::Gateway { !spec.spare_gateway } else { !spec.spare_services })
        .collect();
    // A paused gateway only stalls the client; pause the services.
    let pausable: Vec<Process> = all.iter().copied().filter(|p| *p != Process::Gateway).collect();
    let mut out = Vec::new();
    for _ in 0..draw(&mut rng, spec.crashes) {
        if crashable.is_empty() {
            break;
        }
        let at_us = draw(&mut rng, spec.crash_at_us);
        let p = crashable[rng.gen_range(0..crashable.len())];
        let back = at_us + draw(&mut rng, spec.restart_after_us);
        out.push(Planned { at_us, action: Action::Kill(p) });
        out.push(Planned { at_us: back, action: Action::Start(p) });
    }
    for _ in 0..draw(&mut rng, spec.pauses) {
        let at_us = draw(&mut rng, spec.pause_at_us);
        let p = pausable[rng.gen_range(0..pausable.len())];
        let back = at_us + draw(&mut rng, spec.pause_for_us);
        out.push(Planned { at_us, action: Action::Pause(p) });
        out.push(Planned { at_us: back, action: Action::Resume(p) });
    }
    for _ in 0..draw(&mut rng, spec.cache_flushes) {
        out.push(Planned {
            at_us: draw(&mut rng, spec.cache_flush_at_us),
            action: Action::FlushCache,
        });
    }
    if strategy == Strategy::Choreography {
        for _ in 0..draw(&mut rng, spec.poisons) {
            let at_us = draw(&mut rng, spec.poison_at_us);
            // As in the simulation: any topic but the last two.
            let topic = Topic::ALL[rng.gen_range(0..Topic::ALL.len() - 2)];
            let partition = rng.gen_range(0..partitions.max(1));
            out.push(Planned { at_us, action: Action::Poison { topic, partition } });
        }
    }
    let writers: Vec<Process> =
        Process::of(strategy).into_iter().filter(|p| p.has_tables()).collect();
    for _ in 0..draw(&mut rng, spec.session_kills) {
        let at_us = draw(&mut rng, spec.session_kill_at_us);
        let p = writers[rng.gen_range(0..writers.len())];
        out.push(Planned { at_us, action: Action::EndSession(p) });
    }
    out.sort_by_key(|f| f.at_us);
    out
}

/// A fault as struck (or failed to strike), for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Struck {
    pub at_us: u64,
    pub kind: String,
    pub target: String,
    pub detail: String,
}

/// End a process's writing database session (what a broken connection or
/// a database restart does to it).
pub async fn end_session(d: &Deployment, p: Process) -> Result<u64, String> {
    let c = crate::pg::connect(&d.infra, &d.database(), "sagasim-nemesis", None)
        .await
        .map_err(|e| e.to_string())?;
    let q = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = $1";
    let name = format!("sagasim-{}", p.name());
    let row = crate::pg::call(c.query_one(q, &[&name])).await.map_err(|e| e.to_string())?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Publish a record no consumer can read.
pub async fn poison(
    js: &async_nats::jetstream::Context,
    d: &Deployment,
    topic: Topic,
    partition: u32,
) -> Result<(), String> {
    let subject = d.subject(topic, partition);
    let body = bytes::Bytes::from_static(b"\x00\x01 not an event");
    crate::nats::publish(js, subject, body, (None, None), None).await
}

/// How long until `at_us` past `start`.
pub fn until(start: tokio::time::Instant, at_us: u64) -> tokio::time::Instant {
    start + Duration::from_micros(at_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_plan_and_every_kill_is_followed_by_its_restart() {
        let spec = FaultSpec {
            crashes: (2, 3),
            crash_at_us: (100_000, 800_000),
            restart_after_us: (50_000, 500_000),
            pauses: (1, 1),
            pause_at_us: (0, 900_000),
            pause_for_us: (200_000, 600_000),
            poisons: (1, 1),
            poison_at_us: (0, 900_000),
            ..FaultSpec::default()
        };
        let a = plan(&spec, Strategy::Choreography, 4, 7);
        assert_eq!(a, plan(&spec, Strategy::Choreography, 4, 7));
        assert_ne!(a, plan(&spec, Strategy::Choreography, 4, 8));
        assert!(a.windows(2).all(|w| w[0].at_us <= w[1].at_us));
        for (i, f) in a.iter().enumerate() {
            if let Action::Kill(p) = f.action {
                assert!(a[i..].iter().any(|g| g.action == Action::Start(p)), "{a:?}");
                assert_ne!(p, Process::Service(domain::Service::Pg));
            }
        }
        // No poison where nothing consumes.
        let o = plan(&spec, Strategy::Orchestration, 4, 7);
        assert!(!o.iter().any(|f| matches!(f.action, Action::Poison { .. })));
    }

    /// The scenario's crash nodes hold live too: a spared gateway is never
    /// killed, spared services never are, and the plan draws only from
    /// what is left.
    #[test]
    fn a_spared_node_is_never_killed() {
        let kills = |spec: &FaultSpec| -> Vec<Process> {
            (0..200)
                .flat_map(|seed| plan(spec, Strategy::Choreography, 4, seed))
                .filter_map(|f| match f.action {
                    Action::Kill(p) => Some(p),
                    _ => None,
                })
                .collect()
        };
        let base = FaultSpec {
            crashes: (1, 1),
            crash_at_us: (100_000, 800_000),
            restart_after_us: (50_000, 500_000),
            ..FaultSpec::default()
        };
        let all = kills(&base);
        assert!(all.contains(&Process::Gateway), "the gateway may crash by default");
        let services = kills(&FaultSpec { spare_gateway: true, ..base.clone() });
        assert_eq!(services.len(), 200);
        assert!(!services.contains(&Process::Gateway), "{services:?}");
        let gateway = kills(&FaultSpec { spare_services: true, ..base });
        assert!(gateway.iter().all(|p| *p == Process::Gateway), "{gateway:?}");
    }
}
