//! The load driver: the domain's own client ([`domain::client::Client`]:
//! each submission at its time, retried with the same key on a timeout or
//! an "in progress" answer, with capped, jittered backoff; double submits
//! and reused keys as the workload has them) talking HTTP to the gateway.
//! It records, like Jepsen's client, when each submission was sent and what
//! came back.

use std::sync::Arc;
use std::time::Duration;

use domain::client::{Arrival, Client, RetryPolicy};
use domain::ports::ClientPort;
use domain::{Msg, Response};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::http::{self, IDEMPOTENCY_KEY, TRACEPARENT};
use crate::trace::TraceCtx;

enum In {
    Timer(u64),
    Answer { id: u32, response: Response },
}

/// What the client saw.
#[derive(Debug)]
pub struct Seen {
    /// The final answer to each submission (by submission id).
    pub answers: Vec<Option<Response>>,
    /// When each final answer came, in µs from the start.
    pub answered_at_us: Vec<Option<u64>>,
    /// From each submission's arrival to its final answer, in µs.
    pub latency_us: Histogram<u64>,
    pub retries: u64,
    /// Requests sent, and those that got no answer (timeout, connection
    /// refused or reset, an error status).
    pub requests: u64,
    pub failed_requests: u64,
}

struct Port {
    inputs: mpsc::UnboundedSender<In>,
    start: Instant,
    rng: ChaCha8Rng,
    http: http::Client,
    url: String,
    timeout: Duration,
    stats: Arc<std::sync::Mutex<(u64, u64)>>,
}

impl ClientPort for Port {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn send(&mut self, msg: Msg) {
        let Msg::Submit { id, key, req } = msg else { panic!("the client only submits") };
        let (http, url, timeout, tx) =
            (self.http.clone(), self.url.clone(), self.timeout, self.inputs.clone());
        let stats = self.stats.clone();
        tokio::spawn(async move {
            let body = serde_json::to_vec(&req).expect("requests serialise");
            let ctx = TraceCtx::for_key(key.0).child();
            let headers = [(IDEMPOTENCY_KEY, format!("{:x}", key.0)), (TRACEPARENT, ctx.header())];
            let got = http.request(hyper::Method::POST, &url, &headers, body, timeout).await;
            let response = got.ok().and_then(|b| serde_json::from_slice::<Response>(&b).ok());
            let mut s = stats.lock().expect("stats are not poisoned");
            s.0 += 1;
            match response {
                Some(response) => drop(tx.send(In::Answer { id, response })),
                // No answer: the client's own timeout decides what next.
                None => s.1 += 1,
            }
        });
    }

    fn set_timer(&mut self, delay_us: u64, tag: u64) {
        let tx = self.inputs.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_micros(delay_us)).await;
            let _ = tx.send(In::Timer(tag));
        });
    }

    fn jitter_us(&mut self, max_us: u64) -> u64 {
        self.rng.gen_range(0..=max_us)
    }
}

/// Drive the arrivals through the gateway at `url` until every submission
/// has its final answer, or `stop` says the time is up.
pub async fn drive(
    url: String,
    arrivals: Vec<Arrival>,
    policy: RetryPolicy,
    seed: u64,
    start: Instant,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stats = Arc::new(std::sync::Mutex::new((0, 0)));
    let mut port = Port {
        inputs: tx,
        start,
        rng: ChaCha8Rng::seed_from_u64(seed ^ 0x00c1_1e47),
        http: http::Client::default(),
        url: format!("{url}/orders"),
        // The HTTP call waits as long as the client does.
        timeout: Duration::from_micros(policy.timeout_us),
        stats: stats.clone(),
    };
    let mut client = Client::new(policy, arrivals.clone());
    let n = arrivals.len();
    let mut answered_at_us = vec![None; n];
    let mut latency_us = Histogram::<u64>::new(3).expect("a histogram of 3 digits");
    client.start(&mut port);
    while !client.is_idle() {
        let input = tokio::select! {
            i = rx.recv() => i,
            _ = stop.changed() => None,
        };
        match input {
            None => break,
            Some(In::Timer(tag)) => client.on_timer(tag, &mut port),
            Some(In::Answer { id, response }) => {
                client.on_answer(id, response, &mut port);
                let i = id as usize;
                if answered_at_us[i].is_none() && client.answers[i].is_some() {
                    let now = port.now_us();
                    answered_at_us[i] = Some(now);
                    let _ = latency_us.record(now.saturating_sub(arrivals[i].at_us).max(1));
                }
            }
        }
    }
    let (requests, failed_requests) = *stats.lock().expect("stats are not poisoned");
    Seen {
        answers: client.answers.clone(),
        answered_at_us,
        latency_us,
        retries: client.retries,
        requests,
        failed_requests,
    }
}
