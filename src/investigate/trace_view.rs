//! Traces an engineer can read: a replay's trace records filtered to one
//! order, and rendered as text lines, JSON lines, a Mermaid sequence
//! diagram whose participants are the services, the broker, the PG and the
//! client, with faults drawn as notes, or a Chrome trace (Trace Event
//! Format) with a track per node and a flow per order.

use std::io::{self, Write};

use sim::{TraceKind, TraceRecord};

/// Faults that say something about any order: node and link faults. The
/// per-message ones (drop, duplicate, delay) name no order and would bury
/// it, so a filtered trace leaves them out.
fn is_node_fault(r: &TraceRecord) -> bool {
    r.kind == TraceKind::Fault
        && !["fault Drop", "fault Duplicate", "fault Delay"].iter().any(|p| r.text.starts_with(p))
}

/// The request key the entry numbered `order` under, if the trace shows it:
/// the messages before the order had a number carry only its key.
fn key_of(records: &[TraceRecord], order: u32) -> Option<String> {
    let begin = format!("Begin {{ order: OrderId({order}), key: Some(RequestKey(");
    records.iter().find_map(|r| {
        let (_, rest) = r.text.split_once(begin.as_str())?;
        Some(rest.chars().take_while(char::is_ascii_digit).collect())
    })
}

/// The records about `order` (messages, commits and notes that name it or
/// its request key), with the node and link faults around them, and the
/// last step whole: the one that broke an invariant, if one did.
pub fn filter(records: Vec<TraceRecord>, order: Option<u32>) -> Vec<TraceRecord> {
    let Some(order) = order else { return records };
    let mut needles = vec![format!("OrderId({order})"), format!("order {order}")];
    needles.extend(key_of(&records, order).map(|k| format!("RequestKey({k})")));
    let names = |r: &TraceRecord| needles.iter().any(|n| r.text.contains(n.as_str()));
    let last = records.last().map_or(0, |r| r.step);
    records.into_iter().filter(|r| is_node_fault(r) || names(r) || r.step == last).collect()
}

pub fn text(out: &mut impl Write, records: &[TraceRecord]) -> io::Result<()> {
    for r in records {
        writeln!(out, "{}", r.line())?;
    }
    Ok(())
}

pub fn json_lines(out: &mut impl Write, records: &[TraceRecord]) -> io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut *out, r).map_err(io::Error::other)?;
        writeln!(out)?;
    }
    Ok(())
}

/// A Mermaid identifier for a node name.
fn id(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// The kinds of the events a broker batch carries for `order` (for every
/// order if none is given), in order, without repeats.
fn batch_events(text: &str, order: Option<u32>) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for chunk in text.split("Event(").skip(1) {
        let kind: String = chunk.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        let about = chunk
            .split_once("OrderId(")
            .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).collect::<String>());
        let wanted = match order {
            None => true,
            Some(o) => about.as_deref() == Some(o.to_string().as_str()),
        };
        if wanted && !kind.is_empty() && !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

/// A short label for what a record shows: a message's kind, the command,
/// result or events it carries, and the order it is about; a fault's kind
/// (or, for one the application injected, its name). Mermaid gives `;`,
/// `#` and `:` meanings of their own, so only plain characters are kept.
pub fn label_for(text: &str, order: Option<u32>) -> String {
    if let Some((_, rest)) = text.split_once("what: \"") {
        return rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    }
    if text.starts_with("Produce") || text.starts_with("Deliver") {
        let kind: String = text.chars().take_while(char::is_ascii_alphabetic).collect();
        return format!("{kind} {}", batch_events(text, order).join(", "));
    }
    label(text)
}

/// A short label for a message's debug text: its kind, the command or
/// result it carries, and the order it is about.
pub fn label(text: &str) -> String {
    let body = text.strip_prefix("App(").unwrap_or(text);
    let word = |s: &str| -> String {
        s.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
    };
    let mut parts = vec![word(body)];
    for key in ["cmd: ", "result: ", "Event(", "op: "] {
        if let Some((_, rest)) = body.split_once(key) {
            parts.push(word(rest));
        }
    }
    if let Some((_, rest)) = body.split_once("OrderId(") {
        let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
        parts.push(format!("order {n}"));
    }
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

/// The participants a set of records uses, in order of appearance.
fn participants(records: &[TraceRecord]) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::new();
    for r in records {
        for n in std::iter::once(r.node.as_str()).chain(r.peer.as_deref()) {
            if !n.is_empty() && !seen.contains(&n) {
                seen.push(n);
            }
        }
    }
    seen
}

/// Whether a packet is drawn: application messages, and the broker's
/// produce and deliver batches (not acks, commits or heartbeats).
fn drawn(r: &TraceRecord) -> bool {
    match r.kind {
        TraceKind::Packet => {
            ["App(", "Produce {", "Deliver("].iter().any(|p| r.text.starts_with(p))
        }
        TraceKind::Fault => true,
        _ => false,
    }
}

/// A Mermaid sequence diagram: a message per packet between our nodes
/// (broker batches labelled with the events they carry for `order`), a note
/// per fault over the node (or link) it struck, and the violation, if the
/// run ended in one, as the last note.
pub fn mermaid(
    out: &mut impl Write,
    records: &[TraceRecord],
    order: Option<u32>,
    violation: Option<&str>,
) -> io::Result<()> {
    let drawn: Vec<TraceRecord> = records.iter().filter(|r| drawn(r)).cloned().collect();
    writeln!(out, "sequenceDiagram")?;
    for p in participants(&drawn) {
        writeln!(out, "    participant {} as {p}", id(p))?;
    }
    for r in &drawn {
        let at = format!("{:.1} ms", r.time_us as f64 / 1000.0);
        let what = label_for(r.text.trim_start_matches("fault "), order);
        match (r.kind, &r.peer) {
            (TraceKind::Packet, Some(from)) => {
                writeln!(out, "    {}->>{}: {what} ({at})", id(from), id(&r.node))?
            }
            (_, Some(b)) => {
                writeln!(out, "    Note over {},{}: {what} ({at})", id(&r.node), id(b))?
            }
            _ => writeln!(out, "    Note over {}: {what} ({at})", id(&r.node))?,
        }
    }
    if let (Some(v), Some(last)) = (violation, drawn.last()) {
        let plain: String =
            v.chars().filter(|c| c.is_ascii_alphanumeric() || " -,.".contains(*c)).collect();
        writeln!(out, "    Note over {}: VIOLATED {plain}", id(&last.node))?;
    }
    Ok(())
}

/// How wide a step is drawn in a Chrome trace: steps take no simulated
/// time, so they get a fixed width to be seen and clicked.
const STEP_DRAWN_US: u64 = 20;

/// The order a record is about, if its label names one.
fn order_of(label: &str) -> Option<u64> {
    let (_, rest) = label.split_once("order ")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The Trace Event Format that Perfetto and chrome://tracing open: a track
/// (thread) per node, a span per step a node takes, faults as instant
/// events, and a flow per order through the steps that name it.
pub fn chrome_trace(out: &mut impl Write, records: &[TraceRecord]) -> io::Result<()> {
    let tracks = participants(records);
    let mut doc = reports::chrome::ChromeTrace::new(1);
    for r in records.iter().filter(|r| !r.node.is_empty()) {
        let tid = tracks.iter().position(|t| *t == r.node).expect("every node is a participant");
        let name = label_for(r.text.trim_start_matches("fault "), None);
        let args = serde_json::json!({ "step": r.step, "text": r.text });
        match r.kind {
            TraceKind::Fault => doc.instant(&name, "fault", r.time_us, tid, args),
            TraceKind::Note => {}
            _ => {
                let cat = if r.kind == TraceKind::Packet { "message" } else { "local" };
                doc.span(&name, cat, r.time_us, STEP_DRAWN_US, tid, args);
                if let Some(order) = order_of(&name) {
                    doc.flow(order, r.time_us, tid);
                }
            }
        }
    }
    let doc = doc.finish(&tracks, "sagasim (simulated µs)");
    serde_json::to_writer(&mut *out, &doc).map_err(io::Error::other)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_and_plain() {
        let t =
            "App(Command { order: OrderId(21), cmd: Reserve { product: ProductId(0), qty: 2 } })";
        assert_eq!(label(t), "Command Reserve order 21");
        let t = "App(Done { order: OrderId(21), cmd: Pay, result: Declined { attempt: 0 } })";
        assert_eq!(label(t), "Done Pay Declined order 21");
        assert_eq!(label("Crash { node: NodeId(5) }"), "Crash");
        let injected = "Injected { node: NodeId(8), what: \"pg-timeout-after\" }";
        assert_eq!(label_for(injected, None), "pg-timeout-after");
        let batch = "Deliver(Batch { records: [Event(StockDeducted { order: OrderId(6) }), \
                     Event(OrderCreated { order: OrderId(9) }), Event(StockDeducted { order: OrderId(9) })] })";
        assert_eq!(label_for(batch, Some(9)), "Deliver OrderCreated, StockDeducted");
        assert_eq!(label_for(batch, None), "Deliver StockDeducted, OrderCreated");
    }
}
