//! The compare report as content without markup: its header facts and its
//! sections with their tables, chart slots and findings (the data series
//! behind them are [`crate::series`]'s). The HTML and Markdown renderers both walk
//! [`sections`], so the two formats always say the same things.

use crate::compare::{CompareResult, StrategyReport};
use crate::findings;
use crate::numbers::{count, fixed, num, pct, pct_interval, percentile, scale, MISSING};
use crate::series::{curve_series, Curve};

/// A table cell. Figures align right; code is shown verbatim.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Num(String),
    Code(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub caption: String,
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
    /// Said instead of the table when it has no rows.
    pub empty: String,
}

/// The figures drawn against fault intensity, one small chart each.
/// The charts of the HTML report, in the order they appear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chart {
    LatencyCdf,
    Outcomes,
    Heatmap,
    Windows,
    Curve(Curve),
}

impl Chart {
    pub fn title(self) -> &'static str {
        match self {
            Chart::LatencyCdf => "Latency distribution per strategy (cumulative)",
            Chart::Outcomes => "Order outcomes per strategy",
            Chart::Heatmap => "Invariant violations per 10,000 orders",
            Chart::Windows => "How long orders' effects disagreed (inconsistency windows)",
            Chart::Curve(c) => c.title(),
        }
    }

    /// A document-unique identifier, for anchors and accessible titles.
    pub fn id(self) -> &'static str {
        match self {
            Chart::LatencyCdf => "chart-latency-cdf",
            Chart::Outcomes => "chart-outcomes",
            Chart::Heatmap => "chart-violations",
            Chart::Windows => "chart-windows",
            Chart::Curve(Curve::Success) => "chart-curve-success",
            Chart::Curve(Curve::LatencyP99) => "chart-curve-latency",
            Chart::Curve(Curve::Violations) => "chart-curve-violations",
        }
    }
}

/// A chart with what it shows, in words.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub chart: Chart,
    pub finding: String,
}

/// A part of a section: a table, or a row of charts.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    Table(Table),
    Figures(Vec<Figure>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub id: &'static str,
    pub title: &'static str,
    pub finding: String,
    /// In reading order.
    pub blocks: Vec<Block>,
}

/// How to read the figures; the same for every comparison.
pub const READING_NOTE: &str = "Per-seed figures are means over the seeds; [a, b] is a 95% \
interval for the mean. Latencies and windows are pooled over all orders of all seeds. \
Exposure integrates over time what disagreeing orders held (order·s, unit·s, money·s, coupon·s). \
– marks a figure with no data.";

/// The comparison's identity and size, as (label, value) pairs.
pub fn header(r: &CompareResult) -> Vec<(&'static str, String)> {
    let [first, last] = r.seeds;
    let workload = if r.same_workload {
        "yes: every seed gave the same submissions under every strategy"
    } else {
        "NO: submissions differed between strategies, so the comparison is not like for like"
    };
    let names: Vec<&str> = r.strategies.iter().map(|s| s.strategy.as_str()).collect();
    vec![
        ("Scenario", r.scenario.clone()),
        ("Description", r.description.clone()),
        ("Seeds", format!("{first}..{last} ({} seeds)", count(last.saturating_sub(first)))),
        ("Strategies", if names.is_empty() { MISSING.to_string() } else { names.join(", ") }),
        ("Runs", count(r.total_runs)),
        ("Wall time", format!("{} s", fixed(r.wall_s, 2))),
        ("Same workload", workload.to_string()),
    ]
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

fn per_strategy(
    r: &CompareResult,
    caption: &str,
    headers: Vec<&'static str>,
    row: impl Fn(&StrategyReport) -> Vec<Cell>,
) -> Table {
    Table {
        caption: caption.to_string(),
        headers,
        rows: r.strategies.iter().map(row).collect(),
        empty: "No strategy was measured.".to_string(),
    }
}

fn outcomes_table(r: &CompareResult) -> Table {
    let headers = vec![
        "Strategy",
        "Orders",
        "Success rate [95% CI]",
        "User-visible failures",
        "Latency p50 (ms)",
        "p90 (ms)",
        "p99 (ms)",
        "max (ms)",
    ];
    per_strategy(r, "Outcomes and latency", headers, |s| {
        let l = &s.latency_ms;
        vec![
            text(&s.strategy),
            Cell::Num(count(s.orders)),
            Cell::Num(pct_interval(&s.success_rate)),
            Cell::Num(pct(s.user_failures.mean)),
            Cell::Num(percentile(l, l.p50)),
            Cell::Num(percentile(l, l.p90)),
            Cell::Num(percentile(l, l.p99)),
            Cell::Num(percentile(l, l.max)),
        ]
    })
}

fn consistency_table(r: &CompareResult) -> Table {
    let headers = vec![
        "Strategy",
        "Clean seeds",
        "Time to consistency p50 (ms)",
        "p99 (ms)",
        "Orders with a window",
        "Window p50 (ms)",
        "Window p99 (ms)",
        "Exposure: orders (order·s)",
        "stock (unit·s)",
        "money (·s)",
        "coupons (·s)",
    ];
    per_strategy(r, "Consistency", headers, |s| {
        let (t, w) = (&s.time_to_consistency_ms, &s.window_ms);
        vec![
            text(&s.strategy),
            Cell::Num(pct(s.clean_share)),
            Cell::Num(percentile(t, t.p50)),
            Cell::Num(percentile(t, t.p99)),
            Cell::Num(pct(s.windowed_share.mean)),
            Cell::Num(percentile(w, w.p50)),
            Cell::Num(percentile(w, w.p99)),
            Cell::Num(num(s.exposure_orders.mean)),
            Cell::Num(num(s.exposure_stock.mean)),
            Cell::Num(num(s.exposure_money.mean)),
            Cell::Num(num(s.exposure_coupons.mean)),
        ]
    })
}

fn work_table(r: &CompareResult) -> Table {
    let headers = vec![
        "Strategy",
        "Messages / order",
        "RPCs / order",
        "Events / order",
        "Compensations",
        "False compensations",
        "Refunds",
        "Refunded amount",
        "Dead letters",
    ];
    per_strategy(r, "Work per order", headers, |s| {
        vec![
            text(&s.strategy),
            Cell::Num(num(s.messages_per_order.mean)),
            Cell::Num(num(s.rpcs_per_order.mean)),
            Cell::Num(num(s.events_per_order.mean)),
            Cell::Num(count(s.compensations)),
            Cell::Num(pct(s.false_compensation_share)),
            Cell::Num(count(s.refunds)),
            Cell::Num(count(s.refunded)),
            Cell::Num(count(s.dead_letters)),
        ]
    })
}

fn cost_table(r: &CompareResult) -> Table {
    let headers = vec![
        "Strategy",
        "Throughput (confirmed/s)",
        "Lock waits",
        "Lock wait / order (ms)",
        "Coupons issued",
        "Coupon value",
        "Revenue",
        "Revenue lost",
    ];
    per_strategy(r, "Contention and business cost", headers, |s| {
        vec![
            text(&s.strategy),
            Cell::Num(num(s.throughput_per_s.mean)),
            Cell::Num(count(s.lock_waits)),
            Cell::Num(num(s.lock_wait_ms_per_order.mean)),
            Cell::Num(count(s.coupons_issued)),
            Cell::Num(count(s.coupon_value)),
            Cell::Num(num(s.revenue.mean)),
            Cell::Num(pct(s.revenue_lost_share.mean)),
        ]
    })
}

fn contention_table(r: &CompareResult) -> Table {
    let rows = r
        .contention
        .iter()
        .map(|c| {
            vec![
                text(&c.strategy),
                Cell::Num(pct_interval(&c.success_rate)),
                Cell::Num(num(c.throughput_per_s.mean)),
                Cell::Num(num(c.latency_p99_ms)),
                Cell::Num(count(c.lock_waits)),
                Cell::Num(num(c.lock_wait_ms_per_order.mean)),
            ]
        })
        .collect();
    Table {
        caption: format!("Contention: {} of the orders on one product, no fault", pct(r.hot_share)),
        headers: vec![
            "Strategy",
            "Success rate [95% CI]",
            "Throughput (confirmed/s)",
            "Latency p99 (ms)",
            "Lock waits",
            "Lock wait / order (ms)",
        ],
        rows,
        empty: "No contention probe was run.".to_string(),
    }
}

fn violations_table(r: &CompareResult) -> Table {
    let rows = r
        .strategies
        .iter()
        .flat_map(|s| s.violations.iter().map(move |v| (s, v)))
        .map(|(s, v)| {
            vec![
                text(&s.strategy),
                text(&v.invariant),
                Cell::Num(count(v.seeds)),
                Cell::Num(num(v.per_10k_orders)),
                Cell::Code(v.repro.clone()),
            ]
        })
        .collect();
    Table {
        caption: "Invariant violations".to_string(),
        headers: vec!["Strategy", "Invariant", "Seeds", "Per 10k orders", "Reproduce"],
        rows,
        empty: "No invariant was violated.".to_string(),
    }
}

fn availability_table(r: &CompareResult) -> Table {
    let rows = r
        .availability
        .iter()
        .map(|a| {
            let d = &a.drain_ms;
            vec![
                text(&a.strategy),
                Cell::Num(count(a.orders)),
                Cell::Num(pct(a.failed_fast_share)),
                Cell::Num(pct(a.finished_late_share)),
                Cell::Num(pct(a.unaffected_share)),
                Cell::Num(percentile(d, d.p50)),
                Cell::Num(percentile(d, d.p99)),
                Cell::Num(percentile(d, d.max)),
            ]
        })
        .collect();
    Table {
        caption: format!(
            "Availability: {} down for {} ms from {} ms",
            r.outage_service,
            num(r.outage_for_ms),
            num(r.outage_at_ms)
        ),
        headers: vec![
            "Strategy",
            "Orders during outage",
            "Failed fast",
            "Finished late",
            "Unaffected",
            "Drain p50 (ms)",
            "Drain p99 (ms)",
            "Drain max (ms)",
        ],
        rows,
        empty: "No availability probe was run.".to_string(),
    }
}

fn frontier_table(r: &CompareResult) -> Table {
    let rows = r
        .frontier
        .iter()
        .map(|(s, f)| {
            let clean = f.map_or_else(|| "none".to_string(), scale);
            vec![text(s), Cell::Num(clean)]
        })
        .collect();
    Table {
        caption: "Robustness frontier".to_string(),
        headers: vec!["Strategy", "Highest fault scale with no violation"],
        rows,
        empty: "No robustness frontier was measured.".to_string(),
    }
}

fn curves_table(r: &CompareResult) -> Table {
    let rows = curve_series(r)
        .into_iter()
        .flat_map(|s| s.points)
        .map(|p| {
            vec![
                text(&p.strategy),
                Cell::Num(scale(p.scale)),
                Cell::Num(pct_interval(&p.success_rate)),
                Cell::Num(num(p.latency_p99_ms)),
                Cell::Num(num(p.violations_per_10k_orders)),
                Cell::Num(pct(p.clean_share)),
            ]
        })
        .collect();
    Table {
        caption: "Fault-intensity curves".to_string(),
        headers: vec![
            "Strategy",
            "Fault scale",
            "Success rate [95% CI]",
            "p99 latency (ms)",
            "Violations / 10k orders",
            "Clean seeds",
        ],
        rows,
        empty: "No fault-intensity curve was measured.".to_string(),
    }
}

fn figure(r: &CompareResult, chart: Chart) -> Figure {
    let finding = match chart {
        Chart::LatencyCdf => findings::latency_distribution(r),
        Chart::Outcomes => findings::outcome_mix(r),
        Chart::Heatmap => findings::violation_spread(r),
        Chart::Windows => findings::window_distribution(r),
        Chart::Curve(c) => findings::curve(r, c),
    };
    Figure { chart, finding }
}

fn figures(r: &CompareResult, charts: &[Chart]) -> Block {
    Block::Figures(charts.iter().map(|&c| figure(r, c)).collect())
}

/// The report's sections, in reading order.
pub fn sections(r: &CompareResult) -> Vec<Section> {
    let curves: Vec<Chart> = Curve::ALL.iter().map(|&c| Chart::Curve(c)).collect();
    let section = |id, title, finding, blocks| Section { id, title, finding, blocks };
    vec![
        section(
            "outcomes",
            "Outcomes and latency",
            findings::outcomes_latency(r),
            vec![
                Block::Table(outcomes_table(r)),
                figures(r, &[Chart::LatencyCdf, Chart::Outcomes]),
            ],
        ),
        section(
            "consistency",
            "Consistency",
            findings::consistency(r),
            vec![Block::Table(consistency_table(r)), figures(r, &[Chart::Windows])],
        ),
        section("work", "Work per order", findings::work(r), vec![Block::Table(work_table(r))]),
        section(
            "cost",
            "Contention and business cost",
            findings::business_cost(r),
            vec![Block::Table(cost_table(r))],
        ),
        section(
            "contention",
            "Contention under a hot product",
            findings::contention(r),
            vec![Block::Table(contention_table(r))],
        ),
        section(
            "violations",
            "Invariant violations",
            findings::violations(r),
            vec![Block::Table(violations_table(r)), figures(r, &[Chart::Heatmap])],
        ),
        section(
            "faults",
            "Fault intensity and robustness",
            findings::frontier(r),
            vec![
                Block::Table(frontier_table(r)),
                figures(r, &curves),
                Block::Table(curves_table(r)),
            ],
        ),
        section(
            "availability",
            "Availability",
            findings::availability(r),
            vec![Block::Table(availability_table(r))],
        ),
    ]
}
