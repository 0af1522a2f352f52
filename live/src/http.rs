//! HTTP: how processes call each other. Every domain message from one
//! process to another is one `POST /msg`; whatever the receiver sends back
//! to the sender while handling it rides on the response (an RPC's answer),
//! and anything later is a call of its own. The client's `POST /orders`
//! and `GET /orders/{id}` are the gateway's API. Every call has a timeout.

use std::time::Duration;

use bytes::Bytes;
use domain::node::Peer;
use domain::Msg;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use crate::trace::TraceCtx;

/// A message between processes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub from: Peer,
    pub msg: Msg,
}

/// What the receiver sent back to the sender while handling a message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replies {
    pub replies: Vec<Msg>,
}

pub const TRACEPARENT: &str = "traceparent";
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A call that got no usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallFailed {
    /// No answer in time (the request may or may not have been handled).
    Timeout,
    /// The connection failed (refused, reset).
    Connection(String),
    /// An answer with an error status.
    Status(u16, String),
}

impl std::fmt::Display for CallFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailed::Timeout => f.write_str("no answer in time"),
            CallFailed::Connection(e) => write!(f, "connection failed: {e}"),
            CallFailed::Status(s, body) => write!(f, "status {s}: {body}"),
        }
    }
}

/// An HTTP client with keep-alive connections, shared by a process.
#[derive(Clone)]
pub struct Client {
    inner: Hyper<HttpConnector, Full<Bytes>>,
}

impl Default for Client {
    fn default() -> Client {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        connector.set_nodelay(true);
        let inner = Hyper::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Client { inner }
    }
}

impl Client {
    /// One request, with the headers given, bounded by `timeout`.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, CallFailed> {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body))).expect("requests are well formed");
        let call = async {
            let resp =
                self.inner.request(req).await.map_err(|e| CallFailed::Connection(e.to_string()))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| CallFailed::Connection(e.to_string()))?
                .to_bytes();
            if status != StatusCode::OK {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                return Err(CallFailed::Status(status.as_u16(), text));
            }
            Ok(bytes)
        };
        tokio::time::timeout(timeout, call).await.map_err(|_| CallFailed::Timeout)?
    }

    /// Send a domain message to the process at `base`; the replies that
    /// came back on the response.
    pub async fn send(
        &self,
        base: &str,
        env: &Envelope,
        ctx: TraceCtx,
        timeout: Duration,
    ) -> Result<Vec<Msg>, CallFailed> {
        let body = serde_json::to_vec(env).expect("envelopes serialise");
        let url = format!("{base}/msg");
        let headers = [(TRACEPARENT, ctx.header())];
        let bytes = self.request(Method::POST, &url, &headers, body, timeout).await?;
        let r: Replies = serde_json::from_slice(&bytes)
            .map_err(|e| CallFailed::Status(200, format!("not replies: {e}")))?;
        Ok(r.replies)
    }

    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Bytes, CallFailed> {
        self.request(Method::GET, url, &[], Vec::new(), timeout).await
    }

    pub async fn post(&self, url: &str, timeout: Duration) -> Result<Bytes, CallFailed> {
        self.request(Method::POST, url, &[], Vec::new(), timeout).await
    }

    /// POST a JSON body with the headers given.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, CallFailed> {
        self.request(Method::POST, url, headers, body, timeout).await
    }
}

/// The trace context of an incoming request, or a new trace.
pub fn trace_of(headers: &axum::http::HeaderMap) -> TraceCtx {
    headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceCtx::parse)
        .unwrap_or_else(TraceCtx::root)
}

/// Bind a process's port, or say that it is taken.
pub async fn bind(process: &str, port: u16) -> crate::Result<tokio::net::TcpListener> {
    let at = format!("127.0.0.1:{port}");
    tokio::net::TcpListener::bind(&at).await.map_err(|e| crate::Error::PortTaken {
        process: process.to_string(),
        at: at.clone(),
        why: e.to_string(),
    })
}
