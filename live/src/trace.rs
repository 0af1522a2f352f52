//! Tracing across processes (§3 of the design report): a W3C `traceparent`
//! travels with every HTTP call and every NATS message, each process opens
//! a `tracing` span under it for each thing it handles, and a layer writes
//! the closed spans to the process's spans file, which `sagasim live
//! --trace` turns into a Chrome trace.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Mutex;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::deploy::wall_us;

/// The trace an operation belongs to and the span that caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TraceCtx {
    pub trace_id: u128,
    pub span_id: u64,
}

impl TraceCtx {
    /// A new trace, rooted at a new span.
    pub fn root() -> TraceCtx {
        let mut rng = rand::thread_rng();
        let trace_id = (rng.next_u64() as u128) << 64 | rng.next_u64() as u128;
        TraceCtx { trace_id: trace_id.max(1), span_id: rng.next_u64().max(1) }
    }

    /// A trace whose id is derived from a number (an idempotency key), so
    /// every retry of one submission lands in one trace.
    pub fn for_key(key: u64) -> TraceCtx {
        let mix = |x: u64| {
            let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        let trace_id = (mix(key) as u128) << 64 | mix(key ^ 0x5a5a) as u128;
        TraceCtx { trace_id: trace_id.max(1), span_id: rand::thread_rng().next_u64().max(1) }
    }

    /// A child span of this one, in the same trace.
    pub fn child(self) -> TraceCtx {
        TraceCtx { span_id: rand::thread_rng().next_u64().max(1), ..self }
    }

    /// The `traceparent` header: version, trace id, parent span id, flags.
    pub fn header(self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.span_id)
    }

    pub fn parse(h: &str) -> Option<TraceCtx> {
        let mut parts = h.trim().split('-');
        let (v, t, s) = (parts.next()?, parts.next()?, parts.next()?);
        if v != "00" || t.len() != 32 || s.len() != 16 {
            return None;
        }
        let trace_id = u128::from_str_radix(t, 16).ok()?;
        let span_id = u64::from_str_radix(s, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(TraceCtx { trace_id, span_id })
    }

    pub fn trace_hex(self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

/// One closed span, as a line of a spans file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanLine {
    pub process: String,
    pub name: String,
    /// What was handled, and the order it was about (if one).
    pub what: String,
    pub order: Option<u32>,
    pub trace: String,
    pub span: String,
    pub parent: String,
    /// Wall-clock µs since the Unix epoch.
    pub start_us: u64,
    pub end_us: u64,
}

/// The fields a span records, by name: `what`, `order`, `trace`, `span`,
/// `parent`.
#[derive(Default)]
struct Fields {
    what: String,
    order: Option<u32>,
    trace: String,
    span: String,
    parent: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let v = format!("{value:?}").trim_matches('"').to_string();
        match field.name() {
            "what" => self.what = v,
            "trace" => self.trace = v,
            "span" => self.span = v,
            "parent" => self.parent = v,
            _ => {}
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &value)
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "order" {
            self.order = Some(value as u32);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value as u64)
    }
}

/// A layer that writes every span carrying a `trace` field, when it
/// closes, as a JSON line.
pub struct SpanFile {
    process: String,
    out: Mutex<BufWriter<File>>,
}

impl SpanFile {
    pub fn create(process: &str, path: &std::path::Path) -> std::io::Result<SpanFile> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(SpanFile { process: process.to_string(), out: Mutex::new(BufWriter::new(f)) })
    }
}

struct Open {
    fields: Fields,
    start_us: u64,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanFile {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Open { fields, start_us: wall_us() });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(open) = span.extensions_mut().get_mut::<Open>() {
                values.record(&mut open.fields);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let ext = span.extensions();
        let Some(open) = ext.get::<Open>() else { return };
        if open.fields.trace.is_empty() {
            return;
        }
        let line = SpanLine {
            process: self.process.clone(),
            name: span.name().to_string(),
            what: open.fields.what.clone(),
            order: open.fields.order,
            trace: open.fields.trace.clone(),
            span: open.fields.span.clone(),
            parent: open.fields.parent.clone(),
            start_us: open.start_us,
            end_us: wall_us(),
        };
        let mut out = self.out.lock().expect("the spans file is not poisoned");
        let _ = serde_json::to_writer(&mut *out, &line);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
}

/// Install the process's subscriber: spans to its spans file.
pub fn install(process: &str, spans: &std::path::Path) -> std::io::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    let layer = SpanFile::create(process, spans)?;
    let subscriber = tracing_subscriber::registry().with(layer);
    // A second install in one process (tests) keeps the first.
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(())
}

/// The spans of a run as a Chrome trace (the Trace Event Format Perfetto
/// opens, in the shape `sagasim replay --format chrome-trace` writes): a
/// track per process, a span per thing handled, and a flow per order
/// through the spans that name it. With `order`, only the traces that
/// touch that order. Times are µs from `start_us`.
pub fn chrome_trace(spans: &[SpanLine], order: Option<u32>, start_us: u64) -> serde_json::Value {
    let traces: std::collections::BTreeSet<&str> = match order {
        Some(o) => spans.iter().filter(|s| s.order == Some(o)).map(|s| s.trace.as_str()).collect(),
        None => spans.iter().map(|s| s.trace.as_str()).collect(),
    };
    let kept: Vec<&SpanLine> = spans.iter().filter(|s| traces.contains(s.trace.as_str())).collect();
    let mut tracks: Vec<&str> = kept.iter().map(|s| s.process.as_str()).collect();
    tracks.sort_unstable();
    tracks.dedup();
    let mut doc = reports::chrome::ChromeTrace::new(2);
    for s in &kept {
        let tid = tracks.iter().position(|t| *t == s.process).expect("every process has a track");
        let ts = s.start_us.saturating_sub(start_us);
        let name = match s.order {
            Some(o) => format!("{} order {o}", s.what),
            None => s.what.clone(),
        };
        let args = serde_json::json!({ "trace": s.trace, "span": s.span, "parent": s.parent });
        doc.span(&name, "live", ts, s.end_us.saturating_sub(s.start_us).max(1), tid, args);
        if let Some(o) = s.order {
            doc.flow(o as u64, ts, tid);
        }
    }
    doc.finish(&tracks, "sagasim live (wall µs)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_garbage() {
        let c = TraceCtx::root();
        assert_eq!(TraceCtx::parse(&c.header()), Some(c));
        assert_eq!(TraceCtx::parse("00-abc-def-01"), None);
        assert_eq!(TraceCtx::parse(&format!("01-{:032x}-{:016x}-01", 5, 6)), None);
        assert_eq!(TraceCtx::parse(&format!("00-{:032x}-{:016x}-01", 0, 6)), None);
        let k = TraceCtx::for_key(42);
        assert_eq!(k.trace_id, TraceCtx::for_key(42).trace_id);
        assert_eq!(k.child().trace_id, k.trace_id);
    }
}
