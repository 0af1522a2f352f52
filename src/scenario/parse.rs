//! Reading a scenario file: the TOML into raw, spanned fields, a file or a
//! built-in name found, and a TOML error turned into one that names its
//! file, line, column and field. `validate.rs` takes it from there.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::builtin::BUILT_IN;
use super::validate::Ctx;
use super::Scenario;

/// What is wrong with a scenario file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub expected: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: field `{}`: expected {}",
            self.file, self.line, self.column, self.field, self.expected
        )
    }
}

impl std::error::Error for ScenarioError {}

/// A field as the file wrote it, with where it stands; `None` if left out.
pub(super) type S<T> = Option<Spanned<T>>;

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    pub(super) name: S<String>,
    pub(super) description: S<String>,
    #[serde(default)]
    pub(super) run: RawRun,
    #[serde(default)]
    pub(super) workload: RawWorkload,
    #[serde(default)]
    pub(super) network: RawNetwork,
    #[serde(default)]
    pub(super) client: RawClient,
    #[serde(default)]
    pub(super) broker: RawBroker,
    #[serde(default)]
    pub(super) pg: RawPg,
    #[serde(default)]
    pub(super) gateway: RawGateway,
    #[serde(default)]
    pub(super) orchestration: RawOrchestration,
    #[serde(default)]
    pub(super) availability: RawAvailability,
    #[serde(default)]
    pub(super) services: RawServices,
    #[serde(default)]
    pub(super) faults: RawFaults,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRun {
    pub(super) seeds: S<u64>,
    pub(super) expect: S<Vec<String>>,
    pub(super) fault_phase_ms: S<u64>,
    pub(super) heal_budget_ms: S<u64>,
    pub(super) step_budget: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    pub(super) users: S<u64>,
    pub(super) balance: S<[u64; 2]>,
    pub(super) products: S<u64>,
    pub(super) price: S<[u64; 2]>,
    pub(super) stock: S<[u64; 2]>,
    pub(super) orders: S<u64>,
    pub(super) quantity: S<[u64; 2]>,
    pub(super) gap_ms: S<[u64; 2]>,
    pub(super) coupons_per_user: S<[u64; 2]>,
    pub(super) coupon_discount: S<[u64; 2]>,
    pub(super) coupon_share: S<f64>,
    pub(super) points: S<[u64; 2]>,
    pub(super) double_submit: S<f64>,
    pub(super) key_reuse: S<f64>,
    pub(super) hot_products: S<u64>,
    pub(super) hot_share: S<f64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub(super) latency_ms: S<[u64; 2]>,
    pub(super) latency_mean_ms: S<f64>,
    pub(super) loss: S<f64>,
    pub(super) duplicate: S<f64>,
    pub(super) delay: S<f64>,
    pub(super) delay_max_ms: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    pub(super) timeout_ms: S<u64>,
    pub(super) backoff_base_ms: S<u64>,
    pub(super) backoff_cap_ms: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBroker {
    pub(super) partitions: S<u64>,
    pub(super) max_poll_records: S<u64>,
    pub(super) fetch_timeout_ms: S<u64>,
    pub(super) max_attempts: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPg {
    pub(super) timeout_ms: S<u64>,
    pub(super) decline: S<f64>,
    pub(super) timeout_before: S<f64>,
    pub(super) timeout_after: S<f64>,
    pub(super) slow: S<f64>,
    pub(super) slow_max_ms: S<u64>,
    pub(super) refund_fail: S<f64>,
    pub(super) processing_max_ms: S<u64>,
    pub(super) refund_pending_max_ms: S<u64>,
    pub(super) key_retention_ms: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOrchestration {
    pub(super) step_timeout_ms: S<u64>,
    pub(super) give_up_after: S<u64>,
    pub(super) lock_retry_ms: S<u64>,
    pub(super) lock_wait_max_ms: S<u64>,
    pub(super) apology_coupon: S<u64>,
    pub(super) pay_again: S<u64>,
    pub(super) pay_again_after_ms: S<u64>,
    pub(super) sweep_every_ms: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServices {
    pub(super) handler_ms: S<f64>,
    pub(super) commit_ms: S<f64>,
    pub(super) product_instances: S<u64>,
    pub(super) order_instances: S<u64>,
    pub(super) payment_instances: S<u64>,
    pub(super) user_instances: S<u64>,
    pub(super) platform_instances: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAvailability {
    pub(super) service: S<String>,
    pub(super) down_at_ms: S<u64>,
    pub(super) down_for_ms: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    pub(super) key_ttl_ms: S<u64>,
    pub(super) in_progress_ttl_ms: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFaults {
    pub(super) crashes: S<[u64; 2]>,
    pub(super) crash_at_ms: S<[u64; 2]>,
    pub(super) restart_after_ms: S<[u64; 2]>,
    pub(super) partitions: S<[u64; 2]>,
    pub(super) partition_at_ms: S<[u64; 2]>,
    pub(super) partition_for_ms: S<[u64; 2]>,
    pub(super) rebalances: S<[u64; 2]>,
    pub(super) rebalance_at_ms: S<[u64; 2]>,
    pub(super) cache_flushes: S<[u64; 2]>,
    pub(super) cache_flush_at_ms: S<[u64; 2]>,
    pub(super) poisons: S<[u64; 2]>,
    pub(super) poison_at_ms: S<[u64; 2]>,
    pub(super) commit_fail: S<f64>,
    pub(super) commit_lost_ack: S<f64>,
    pub(super) commit_hang: S<f64>,
    pub(super) commit_hang_ms: S<u64>,
    pub(super) broker_outages: S<[u64; 2]>,
    pub(super) broker_outage_at_ms: S<[u64; 2]>,
    pub(super) broker_outage_for_ms: S<[u64; 2]>,
    pub(super) pauses: S<[u64; 2]>,
    pub(super) pause_at_ms: S<[u64; 2]>,
    pub(super) pause_for_ms: S<[u64; 2]>,
    pub(super) one_way_partitions: S<[u64; 2]>,
    pub(super) one_way_partition_at_ms: S<[u64; 2]>,
    pub(super) one_way_partition_for_ms: S<[u64; 2]>,
    pub(super) db_outages: S<[u64; 2]>,
    pub(super) db_outage_at_ms: S<[u64; 2]>,
    pub(super) db_outage_for_ms: S<[u64; 2]>,
    pub(super) mark_sent_fail: S<f64>,
    pub(super) dead_letter_fail: S<f64>,
    pub(super) cache_timeout: S<f64>,
    pub(super) crash_nodes: S<Vec<String>>,
    pub(super) partition_links: S<Vec<String>>,
}

pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// The dotted name of the key on the line holding `offset`
/// (`network.loss`), found from the text since a TOML error only has a span.
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    let key = line.split('=').next().unwrap_or("").trim().trim_matches(['[', ']']).trim();
    let section = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(['[', ']']).trim().to_string());
    match section {
        Some(s) if !line.trim_start().starts_with('[') && !key.is_empty() => format!("{s}.{key}"),
        _ => key.to_string(),
    }
}

/// Turn a TOML/serde message ("invalid type: string \"x\", expected u64")
/// into what was expected and what was found.
fn expectation(message: &str) -> String {
    let message = message.trim().replace('\n', "; ");
    let plain = |t: &str| match t {
        "u64" | "u32" => "a non-negative integer".to_string(),
        "f64" => "a number".to_string(),
        "an array of length 2" => "a range [low, high]".to_string(),
        other => other.to_string(),
    };
    match message.split_once(", expected ") {
        Some((found, exp)) => format!("{}; found {found}", plain(exp)),
        None => format!("valid TOML ({message})"),
    }
}

pub(super) fn parse_raw(text: &str, file: &str) -> Result<Raw, ScenarioError> {
    toml::from_str::<Raw>(text).map_err(|e| {
        let span = e.span();
        let field = span.as_ref().map_or_else(String::new, |s| key_at(text, s.start));
        let expected = expectation(e.message());
        Ctx { file, text }.err(&span, &field, expected)
    })
}

pub(super) fn default_raw() -> Raw {
    parse_raw(BUILT_IN[0].1, "built-in default").expect("the built-in default scenario parses")
}

impl Scenario {
    /// Load a built-in scenario by name, or a file by path.
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            return Scenario::parse(text, name_or_path, name_or_path);
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: name_or_path.to_string(),
            line: 0,
            column: 0,
            field: "(file)".to_string(),
            expected: format!(
                "a built-in scenario name ({}) or a readable TOML file: {e}",
                BUILT_IN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        })?;
        Scenario::parse(&text, name_or_path, name_or_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_built_in_scenario_is_valid() {
        for (name, text) in BUILT_IN {
            let s = Scenario::parse(text, name, name).expect("valid");
            assert_eq!(&s.name, name);
            assert!(!s.description.is_empty());
        }
        let d = Scenario::load("default").expect("default");
        assert_eq!(d.workload.orders, 200);
        assert_eq!(d.network.loss_ppm, 10_000);
        assert_eq!(d.network.latency_mean_us, 4_300);
    }

    #[test]
    fn an_empty_file_is_the_default_scenario() {
        let d = Scenario::load("default").expect("default");
        let e = Scenario::parse("", "empty.toml", "default").expect("empty is valid");
        assert_eq!(e, d);
    }

    proptest! {
        /// Values written in a file are the values the scenario has.
        #[test]
        fn written_values_are_read_back(
            orders in 0u64..10_000,
            lo in 0u64..1_000, span in 0u64..1_000,
            loss in 0u32..=1_000_000,
            partitions in 1u64..64,
        ) {
            let text = format!(
                "[workload]\norders = {orders}\nprice = [{lo}, {}]\n[network]\nloss = {}\n[broker]\npartitions = {partitions}\n",
                lo + span, loss as f64 / 1e6
            );
            let s = Scenario::parse(&text, "t.toml", "t.toml").expect("valid");
            prop_assert_eq!(s.workload.orders, orders);
            prop_assert_eq!(s.workload.price, (lo, lo + span));
            prop_assert_eq!(s.network.loss_ppm, loss);
            prop_assert_eq!(s.broker.partitions, partitions as u32);
        }

        /// Scaling faults scales every fault and nothing else: ×0 leaves
        /// none, ×1 is the scenario, and more scale never means fewer
        /// faults.
        #[test]
        fn fault_scales_are_monotone(a in 0.0f64..8.0, b in 0.0f64..8.0, which in 0usize..7) {
            let (name, _) = BUILT_IN[which];
            let s = Scenario::load(name).expect("built in");
            prop_assert_eq!(&s.scaled(1.0), &s);
            let none = s.scaled(0.0);
            let f = &none.faults;
            for r in [f.crashes, f.partitions, f.rebalances, f.cache_flushes, f.poisons, f.broker_outages, f.pauses] {
                prop_assert_eq!(r, (0, 0));
            }
            prop_assert_eq!((none.network.loss_ppm, none.pg.timeout_after_ppm, f.commit_fail_ppm), (0, 0, 0));
            prop_assert_eq!(none.pg.decline_ppm, s.pg.decline_ppm);
            prop_assert_eq!(&none.workload, &s.workload);
            let (lo, hi) = (s.scaled(a.min(b)), s.scaled(a.max(b)));
            prop_assert!(lo.faults.crashes.1 <= hi.faults.crashes.1);
            prop_assert!(lo.faults.partitions.0 <= hi.faults.partitions.0);
            prop_assert!(lo.network.duplicate_ppm <= hi.network.duplicate_ppm);
            prop_assert!(lo.pg.slow_ppm <= hi.pg.slow_ppm);
            prop_assert_eq!(hi.fault_scale, a.max(b));
        }

        /// An invalid value is reported at its own line and field, wherever
        /// it stands in the file.
        #[test]
        fn an_invalid_value_is_reported_where_it_stands(
            padding in 0usize..20,
            which in 0usize..11,
        ) {
            let (section, key, value) = [
                ("network", "loss", "2.0"),
                ("faults", "crash_at_ms", "[9, 3]"),
                ("workload", "users", "0"),
                ("broker", "fetch_timeout_ms", "\"soon\""),
                ("client", "retries", "3"),
                ("availability", "service", "\"coupons\""),
                ("orchestration", "sweep_every_ms", "200"),
                ("services", "user_instances", "9"),
                ("services", "product_instances", "0"),
                ("services", "handler_ms", "-1.0"),
                ("services", "commit_ms", "\"slow\""),
            ][which];
            let text = format!("{}[{section}]\n{key} = {value}\n", "# comment\n".repeat(padding));
            let e = Scenario::parse(&text, "bad.toml", "bad.toml").expect_err("invalid");
            prop_assert_eq!(e.line, padding + 2);
            prop_assert_eq!(e.field, format!("{section}.{key}"));
            prop_assert_eq!(e.file.as_str(), "bad.toml");
            prop_assert!(!e.expected.is_empty());
        }
    }
}
