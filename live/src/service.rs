//! `sagasim serve SERVICE`: one service (or the payment gateway, the data
//! platform, the orchestrator, the monolith) as a process of its own. It
//! binds its port, applies its migrations, takes the fence, loads its
//! tables into the mirror, starts the node thread, the relay and its
//! consumers, and serves HTTP:
//!
//! - `POST /msg`: a domain message (the answers ride on the response);
//! - `GET /orders/{id}`: an order as the Order service holds it;
//! - `GET /status`: counters, dead letters, the faults it decided itself;
//! - `GET /health`, and `POST /admin/heal` (the fault phase is over).
//!
//! It stops when its standard input closes, so a parent that dies takes
//! its children with it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::{Msg, OrderId, Service, Strategy};
use tokio::sync::{mpsc, oneshot};

use crate::deploy::{Deployment, Process};
use crate::error::Result;
use crate::http::{self, Envelope, Replies};
use crate::node::{self, Input, Shared, Status};
use crate::pg::writer::Writer;

/// How long the payment gateway keeps a caller waiting when it will never
/// answer (it lost the request, or acted and lost the answer): longer than
/// any caller waits.
pub const SILENCE: Duration = Duration::from_secs(3);

/// A panic anywhere in the process (its node thread, a consumer, the
/// relay) stops it, as a crash would: a process that only seemed to run
/// would hold its partitions and answer nothing. Its supervisor starts it
/// again, from its tables.
pub fn fail_stop(name: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("{name}: stopping: {info}");
        std::process::exit(101);
    }));
}

/// The environment variable a parent names itself in, for its children.
pub const PARENT: &str = "SAGASIM_PARENT_PID";

/// Die with the parent: the kernel sends this process SIGKILL when its
/// parent ends, which stops it even while it is frozen (SIGSTOP), when it
/// reads no input. If the parent ended before that was set, stop now.
pub fn die_with_parent(name: &'static str) {
    use nix::sys::signal::Signal;
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let parent = std::env::var(PARENT).ok().and_then(|p| p.parse::<i32>().ok());
    if parent.is_some_and(|p| nix::unistd::getppid().as_raw() != p) {
        eprintln!("{name}: the parent that started it is gone; stopping");
        std::process::exit(0);
    }
}

/// Exit when standard input reaches its end (the parent is gone).
pub fn watch_stdin(name: &'static str) {
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        eprintln!("{name}: standard input closed; stopping");
        std::process::exit(0);
    });
}

/// Whether the process takes part in the choreography's events.
fn uses_broker(d: &Deployment, p: Process) -> bool {
    d.strategy == Strategy::Choreography && matches!(p, Process::Service(s) if s != Service::Pg)
}

/// Serve one process until it is stopped.
pub async fn serve(d: Deployment, p: Process) -> Result<()> {
    let listener = http::bind(p.name(), d.port(p)).await?;
    let _ = crate::trace::install(p.name(), &d.spans_path(p));
    if p == Process::Gateway {
        return crate::gateway::serve(d, listener).await;
    }
    let mut admin =
        crate::pg::connect(&d.infra, &d.database(), &format!("sagasim-{}-boot", p.name()), None)
            .await?;
    crate::pg::migrate(&mut admin, p).await?;
    drop(admin);
    let writer = Writer::open(&d.infra, &d.database(), p).await?;
    let store = writer.load().await?;
    let js = match uses_broker(&d, p) {
        true => Some(crate::nats::connect(&d.infra).await?),
        false => None,
    };
    let (inputs, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::new(d.clone(), p, writer.epoch, inputs));
    let state = node::State::new(store, writer, &shared);
    let (s, rt) = (shared.clone(), tokio::runtime::Handle::current());
    std::thread::Builder::new()
        .name(format!("{}-node", p.name()))
        .spawn(move || node::run(state, rx, s, rt))
        .map_err(crate::Error::failed)?;
    let _ = shared.inputs.send(Input::Boot);
    if let Some(js) = js {
        tokio::spawn(crate::relay::run(shared.clone(), js.clone()));
        if !d.settings.safety.outbox {
            tokio::spawn(crate::relay::memory(shared.clone(), js.clone()));
        }
        for (q, topic, part) in crate::nats::all_consumers(&d) {
            if q == p {
                tokio::spawn(crate::consumer::run(shared.clone(), js.clone(), topic, part));
            }
        }
    }
    let app = Router::new()
        .route("/msg", post(on_msg))
        .route("/orders/{id}", get(on_order))
        .route("/status", get(on_status))
        .route("/health", get(on_health))
        .route("/admin/heal", post(on_heal))
        .with_state(shared);
    axum::serve(listener, app).await.map_err(crate::Error::failed)
}

async fn on_msg(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(env): Json<Envelope>,
) -> std::result::Result<Json<Replies>, (StatusCode, String)> {
    // What one service sends another; the client's and the gateway's own
    // messages, and events (they come through the broker), are not.
    let taken = matches!(
        env.msg,
        Msg::Place { .. }
            | Msg::Command { .. }
            | Msg::Done { .. }
            | Msg::Charge { .. }
            | Msg::Refund { .. }
            | Msg::Status { .. }
            | Msg::PgReply { .. }
    );
    if !taken {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("{} takes no {:?}", shared.p.name(), env.msg),
        ));
    }
    let ctx = http::trace_of(&headers);
    let (tx, rx) = oneshot::channel();
    let input = Input::Message { from: env.from, msg: env.msg, ctx, replies: Some(tx) };
    if shared.inputs.send(input).is_err() {
        return Ok(Json(Replies::default()));
    }
    let replies = rx.await.unwrap_or_default();
    let hold_us = replies.iter().map(|(_, d)| *d).max().unwrap_or(0);
    if replies.is_empty() && shared.p == Process::Service(Service::Pg) {
        // An external gateway that does not answer keeps the line open.
        tokio::time::sleep(SILENCE).await;
    } else if hold_us > 0 {
        tokio::time::sleep(Duration::from_micros(hold_us)).await;
    }
    Ok(Json(Replies { replies: replies.into_iter().map(|(m, _)| m).collect() }))
}

async fn on_order(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u32>,
) -> Json<Option<domain::order::Order>> {
    let (tx, rx) = oneshot::channel();
    let _ = shared.inputs.send(Input::Order(OrderId(id), tx));
    Json(rx.await.ok().flatten())
}

async fn on_status(State(shared): State<Arc<Shared>>) -> Json<Status> {
    let (tx, rx) = oneshot::channel();
    let _ = shared.inputs.send(Input::Status(tx));
    Json(rx.await.unwrap_or_default())
}

/// Who answers: the run and the process, so a parent never takes another
/// run's process on the same port for its own.
pub fn identity(d: &Deployment, p: Process) -> String {
    format!("{} {}", d.run, p.name())
}

async fn on_health(State(shared): State<Arc<Shared>>) -> String {
    identity(&shared.d, shared.p)
}

async fn on_heal(State(shared): State<Arc<Shared>>) -> &'static str {
    let _ = shared.inputs.send(Input::Heal);
    "healed"
}
