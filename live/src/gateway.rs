//! The API gateway (axum): `POST /orders` with an `Idempotency-Key` header,
//! `GET /orders/{id}`, and `POST /msg` for answers that come later (the
//! orchestration answers once the saga is over, §2.4.2). The domain's
//! gateway logic ([`domain::gateway`]) runs on a thread of its own, with
//! Redis as its key cache; under the choreography its answer is "accepted",
//! and the order's final state is read later.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::gateway::{self, GatewayPort, KeyEntry};
use domain::node::Peer;
use domain::{Msg, Request, RequestKey, Response};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::deploy::Deployment;
use crate::error::Result;
use crate::http::{self, Envelope, Replies};
use crate::redis::Cache;
use crate::trace::TraceCtx;

/// How long `POST /orders` waits for the system's answer before it gives up
/// (the client has given up long before).
pub const ANSWER_WAIT: Duration = Duration::from_secs(30);

enum Input {
    Submit { key: RequestKey, req: Request, ctx: TraceCtx, answer: oneshot::Sender<Response> },
    Placed { msg: Msg, ctx: TraceCtx },
}

/// The requests waiting for an answer: by the id the gateway gave the
/// request, its key and where the answer goes.
type Waiting = HashMap<u32, (RequestKey, oneshot::Sender<Response>)>;

struct Shared {
    d: Deployment,
    http: http::Client,
    inputs: mpsc::UnboundedSender<Input>,
    next: AtomicU32,
}

/// The gateway's domain port over Redis and HTTP, for one input.
struct Port<'a> {
    shared: &'a Arc<Shared>,
    rt: &'a Handle,
    cache: &'a mut Cache,
    waiting: &'a mut Waiting,
    ctx: TraceCtx,
    /// The key of the entry service's answer being passed on, if one is.
    answering: Option<RequestKey>,
}

impl Port<'_> {
    fn ttl_ms(&self, e: &KeyEntry) -> u64 {
        let s = &self.shared.d.settings;
        match e {
            KeyEntry::InProgress { .. } => s.in_progress_ttl_us / 1000,
            KeyEntry::Done { .. } => s.key_ttl_us / 1000,
        }
    }
}

impl GatewayPort for Port<'_> {
    fn cache_get(&mut self, key: RequestKey) -> Option<KeyEntry> {
        let k = self.shared.d.redis_key(key);
        // A cache that does not answer is a cache that forgot: the entry
        // service's record still answers a retry.
        self.rt.block_on(self.cache.get(&k)).ok().flatten()
    }
    fn cache_set_nx(&mut self, key: RequestKey, entry: KeyEntry) -> bool {
        let (k, ttl) = (self.shared.d.redis_key(key), self.ttl_ms(&entry));
        // Not knowing whether the claim took, the gateway claims nothing:
        // the client hears "in progress" and asks again.
        self.rt.block_on(self.cache.set_nx(&k, &entry, ttl)).unwrap_or(false)
    }
    fn cache_set(&mut self, key: RequestKey, entry: KeyEntry) {
        let (k, ttl) = (self.shared.d.redis_key(key), self.ttl_ms(&entry));
        let _ = self.rt.block_on(self.cache.set(&k, &entry, ttl));
    }
    fn forward(&mut self, msg: Msg) {
        let (shared, ctx) = (self.shared.clone(), self.ctx);
        self.rt.spawn(async move {
            let entry = shared.d.url(shared.d.entry());
            let env = Envelope { from: Peer::Gateway, msg };
            if let Ok(replies) =
                shared.http.send(&entry, &env, ctx, crate::node::CALL_TIMEOUT).await
            {
                for msg in replies {
                    let _ = shared.inputs.send(Input::Placed { msg, ctx });
                }
            }
        });
    }
    fn answer(&mut self, msg: Msg) {
        let Msg::Answer { id, response } = msg else { return };
        let Some((key, w)) = self.waiting.remove(&id) else { return };
        // An answer names the key it is for; one for another key belongs to
        // a request an earlier incarnation of the gateway forwarded under
        // the same id, and must not answer this one.
        if self.answering.is_none_or(|k| k == key) {
            let _ = w.send(response);
        } else {
            self.waiting.insert(id, (key, w));
        }
    }
}

fn run(
    mut cache: Cache,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    shared: Arc<Shared>,
    rt: Handle,
) {
    let safety = shared.d.settings.safety;
    let mut waiting: Waiting = HashMap::new();
    while let Some(input) = inputs.blocking_recv() {
        // Answers nobody waits for any more (the client gave up) go.
        waiting.retain(|_, (_, w)| !w.is_closed());
        let (what, ctx, answering) = match &input {
            Input::Submit { ctx, .. } => ("Submit", *ctx, None),
            Input::Placed { msg: Msg::Placed { key, .. }, ctx } => ("Placed", *ctx, *key),
            Input::Placed { .. } => continue,
        };
        // The gateway's own span: what it forwards carries it as parent.
        let me = ctx.child();
        let span = span(what, ctx, me);
        let _e = span.enter();
        let ctx = me;
        let (shared, rt, cache) = (&shared, &rt, &mut cache);
        let mut port = Port { shared, rt, cache, waiting: &mut waiting, ctx, answering };
        match input {
            Input::Submit { key, req, answer, .. } => {
                let id = shared.next.fetch_add(1, Ordering::Relaxed);
                port.waiting.insert(id, (key, answer));
                gateway::on_submit(id, key, req, &safety, &mut port);
            }
            Input::Placed { msg: Msg::Placed { id, key, hash, response }, .. } => {
                gateway::on_placed(id, key, hash, response, &mut port);
            }
            Input::Placed { .. } => {}
        }
    }
}

fn span(what: &str, parent: TraceCtx, me: TraceCtx) -> tracing::Span {
    tracing::info_span!(
        "handle",
        what = what,
        trace = parent.trace_hex().as_str(),
        span = format!("{:016x}", me.span_id).as_str(),
        parent = format!("{:016x}", parent.span_id).as_str(),
    )
}

/// Serve the gateway until it is stopped.
pub async fn serve(d: Deployment, listener: tokio::net::TcpListener) -> Result<()> {
    let cache = Cache::connect(&d.infra.redis_url).await?;
    let (inputs, rx) = mpsc::unbounded_channel();
    // Request ids start where no earlier incarnation's are likely to be:
    // answers to those may still arrive.
    let first = (crate::deploy::wall_us() as u32).wrapping_mul(0x9e37_79b9);
    let shared =
        Arc::new(Shared { d, http: http::Client::default(), inputs, next: AtomicU32::new(first) });
    let (s, rt) = (shared.clone(), Handle::current());
    std::thread::Builder::new()
        .name("gateway".to_string())
        .spawn(move || run(cache, rx, s, rt))
        .map_err(crate::Error::failed)?;
    let app = Router::new()
        .route("/orders", post(on_orders))
        .route("/orders/{id}", get(on_order))
        .route("/msg", post(on_msg))
        .route("/health", get(on_health))
        .with_state(shared);
    axum::serve(listener, app).await.map_err(crate::Error::failed)
}

/// The key of a request: the `Idempotency-Key` header, in hex.
pub fn key_of(headers: &HeaderMap) -> Option<RequestKey> {
    let v = headers.get(http::IDEMPOTENCY_KEY)?.to_str().ok()?;
    u64::from_str_radix(v.trim(), 16).ok().map(RequestKey)
}

async fn on_orders(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(req): Json<Request>,
) -> HttpResponse {
    let Some(key) = key_of(&headers) else {
        let why = "an Idempotency-Key header (hexadecimal) is required";
        return (StatusCode::BAD_REQUEST, why).into_response();
    };
    let c = shared.d.catalog;
    if req.product.0 >= c.products || req.user.0 >= c.users || req.qty == 0 {
        let why = format!(
            "no such order: products are 0..{}, users 0..{}, and qty is at least 1",
            c.products, c.users
        );
        return (StatusCode::BAD_REQUEST, why).into_response();
    }
    let ctx = http::trace_of(&headers);
    let (answer, rx) = oneshot::channel();
    let _ = shared.inputs.send(Input::Submit { key, req, ctx, answer });
    match tokio::time::timeout(ANSWER_WAIT, rx).await {
        Ok(Ok(r)) => Json(r).into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "no answer").into_response(),
    }
}

async fn on_health(State(shared): State<Arc<Shared>>) -> String {
    crate::service::identity(&shared.d, crate::deploy::Process::Gateway)
}

async fn on_order(State(shared): State<Arc<Shared>>, Path(id): Path<u32>) -> HttpResponse {
    let d = &shared.d;
    let owner = d.process_of(Peer::Service(domain::Service::Order));
    let url = format!("{}/orders/{id}", d.url(owner));
    match shared.http.get(&url, Duration::from_secs(2)).await {
        Ok(body) => ([("content-type", "application/json")], body).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn on_msg(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(env): Json<Envelope>,
) -> Json<Replies> {
    let ctx = http::trace_of(&headers);
    let _ = shared.inputs.send(Input::Placed { msg: env.msg, ctx });
    Json(Replies::default())
}
