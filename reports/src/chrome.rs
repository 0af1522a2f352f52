//! The Trace Event Format that Perfetto and chrome://tracing open: named
//! tracks (threads) of one process, spans, instant events, and a flow per
//! order through the spans that name it. The simulated trace (`replay
//! --format chrome-trace`) and the live one (`live --trace`) are both
//! written with it, so they open the same way side by side.

use serde_json::{json, Value};

pub struct ChromeTrace {
    pid: u32,
    events: Vec<Value>,
    /// Orders whose flow has started.
    flows: Vec<u64>,
}

impl ChromeTrace {
    /// A trace of process `pid` (give each file its own, so two open side
    /// by side do not merge).
    pub fn new(pid: u32) -> ChromeTrace {
        ChromeTrace { pid, events: Vec::new(), flows: Vec::new() }
    }

    /// A span on track `tid`, from `ts` µs for `dur` µs.
    pub fn span(&mut self, name: &str, cat: &str, ts: u64, dur: u64, tid: usize, args: Value) {
        let pid = self.pid;
        self.events.push(json!({
            "name": name, "cat": cat, "ph": "X", "ts": ts, "dur": dur,
            "pid": pid, "tid": tid, "args": args,
        }));
    }

    /// An instant event (a fault) on track `tid`.
    pub fn instant(&mut self, name: &str, cat: &str, ts: u64, tid: usize, args: Value) {
        let pid = self.pid;
        self.events.push(json!({
            "name": name, "cat": cat, "ph": "i", "s": "t", "ts": ts,
            "pid": pid, "tid": tid, "args": args,
        }));
    }

    /// The flow of `order` passes through track `tid` at `ts` (it starts
    /// at its first point).
    pub fn flow(&mut self, order: u64, ts: u64, tid: usize) {
        let ph = if self.flows.contains(&order) { "t" } else { "s" };
        if ph == "s" {
            self.flows.push(order);
        }
        let pid = self.pid;
        self.events.push(json!({
            "name": format!("order {order}"), "cat": "order", "ph": ph, "id": order,
            "ts": ts, "pid": pid, "tid": tid, "bp": "e",
        }));
    }

    /// The document, with the tracks named in order and the process named.
    pub fn finish(mut self, tracks: &[&str], process: &str) -> Value {
        let pid = self.pid;
        for (tid, name) in tracks.iter().enumerate() {
            self.events.push(json!({
                "name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                "args": { "name": name },
            }));
        }
        self.events.push(json!({
            "name": "process_name", "ph": "M", "pid": pid, "args": { "name": process },
        }));
        json!({ "traceEvents": self.events, "displayTimeUnit": "ms" })
    }
}
