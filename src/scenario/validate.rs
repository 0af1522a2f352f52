//! Checking a scenario's every field, as the file wrote it or as the
//! default gives it, and building the [`Scenario`] from them: each error
//! names its file, line, column, field and what was expected.

use super::parse::{default_raw, line_col, parse_raw, ScenarioError, S};
use super::*;

/// Where a field's value came from: the user's file (with its span) or the
/// defaults.
type Span = Option<std::ops::Range<usize>>;

pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
}

/// A field: the user's value, the default's, and the dotted name.
type Field<'a, T> = (&'a S<T>, &'a S<T>, &'static str);

const MS: u64 = 1_000;

impl Ctx<'_> {
    pub(super) fn err(
        &self,
        span: &Span,
        field: &str,
        expected: impl Into<String>,
    ) -> ScenarioError {
        let (line, column) = span.as_ref().map_or((0, 0), |s| line_col(self.text, s.start));
        ScenarioError {
            file: self.file.to_string(),
            line,
            column,
            field: field.to_string(),
            expected: expected.into(),
        }
    }

    fn pick<T: Clone>(&self, user: &S<T>, default: &S<T>, field: &str) -> (T, Span) {
        match user {
            Some(v) => (v.get_ref().clone(), Some(v.span())),
            None => {
                let d =
                    default.as_ref().unwrap_or_else(|| panic!("the default scenario sets {field}"));
                (d.get_ref().clone(), None)
            }
        }
    }

    fn count(
        &self,
        (user, default, field): Field<'_, u64>,
        min: u64,
    ) -> Result<u64, ScenarioError> {
        let (v, span) = self.pick(user, default, field);
        if v < min {
            return Err(self.err(&span, field, format!("an integer of at least {min}, found {v}")));
        }
        Ok(v)
    }

    /// A count of milliseconds, in microseconds.
    fn ms(&self, f: Field<'_, u64>, min: u64) -> Result<u64, ScenarioError> {
        let (_, span) = self.pick(f.0, f.1, f.2);
        let v = self.count(f, min)?;
        v.checked_mul(MS).ok_or_else(|| self.err(&span, f.2, "a smaller number of milliseconds"))
    }

    /// The recovery pass's period: longer than the PG call timeout, since a
    /// call that has not moved between two passes is taken for stuck.
    fn sweep_every(&self, f: Field<'_, u64>, pg: Field<'_, u64>) -> Result<u64, ScenarioError> {
        let (pg_ms, _) = self.pick(pg.0, pg.1, pg.2);
        let (v, span) = self.pick(f.0, f.1, f.2);
        if v <= pg_ms {
            return Err(self.err(
                &span,
                f.2,
                format!(
                    "more milliseconds than pg.timeout_ms ({pg_ms}): a call that has not moved \
                     between two passes is taken for stuck; found {v}"
                ),
            ));
        }
        self.ms(f, 1)
    }

    /// Coverage points, each one `sagasim::scenario::points::POINTS` names.
    fn coverage_points(
        &self,
        (user, default, field): Field<'_, Vec<String>>,
    ) -> Result<Vec<String>, ScenarioError> {
        let (v, span) = self.pick(user, default, field);
        match v.iter().find(|p| crate::scenario::points::bit(p).is_none()) {
            Some(bad) => Err(self.err(
                &span,
                field,
                format!(
                    "coverage points from: {}; found {bad:?}",
                    crate::scenario::points::POINTS.join(", ")
                ),
            )),
            None => Ok(v),
        }
    }

    /// A non-empty list of names from `names`: which of them it holds.
    fn choice<const N: usize>(
        &self,
        (user, default, field): Field<'_, Vec<String>>,
        names: [&str; N],
    ) -> Result<[bool; N], ScenarioError> {
        let (v, span) = self.pick(user, default, field);
        let expected = || format!("a non-empty list of: {}", names.join(", "));
        if v.is_empty() {
            return Err(self.err(&span, field, format!("{}; found []", expected())));
        }
        let mut out = [false; N];
        for name in &v {
            match names.iter().position(|n| n == name) {
                Some(i) => out[i] = true,
                None => {
                    return Err(self.err(&span, field, format!("{}; found {name:?}", expected())))
                }
            }
        }
        Ok(out)
    }

    /// One of our services, by name.
    fn service(
        &self,
        (user, default, field): Field<'_, String>,
    ) -> Result<domain::Service, ScenarioError> {
        let (v, span) = self.pick(user, default, field);
        let ours = domain::Service::OURS;
        ours.iter().copied().find(|s| s.name() == v).ok_or_else(|| {
            let names: Vec<_> = ours.iter().map(|s| s.name()).collect();
            self.err(&span, field, format!("one of {}, found {v:?}", names.join(", ")))
        })
    }

    /// A service's instances: 1 to 8.
    fn instances(&self, f: Field<'_, u64>) -> Result<u16, ScenarioError> {
        let (v, span) = self.pick(f.0, f.1, f.2);
        match v {
            1..=8 => Ok(v as u16),
            _ => Err(self.err(&span, f.2, format!("between 1 and 8 instances, found {v}"))),
        }
    }

    fn small(&self, f: Field<'_, u64>, min: u64) -> Result<u32, ScenarioError> {
        let (_, span) = self.pick(f.0, f.1, f.2);
        u32::try_from(self.count(f, min)?).map_err(|_| self.err(&span, f.2, "a number below 2^32"))
    }

    fn range(
        &self,
        (user, default, field): Field<'_, [u64; 2]>,
        scale: u64,
    ) -> Result<Range, ScenarioError> {
        let ([lo, hi], span) = self.pick(user, default, field);
        if lo > hi {
            let e = format!("a range [low, high] with low <= high, found [{lo}, {hi}]");
            return Err(self.err(&span, field, e));
        }
        let big = || self.err(&span, field, "smaller numbers");
        Ok((lo.checked_mul(scale).ok_or_else(big)?, hi.checked_mul(scale).ok_or_else(big)?))
    }

    fn probability(&self, (user, default, field): Field<'_, f64>) -> Result<u32, ScenarioError> {
        let (p, span) = self.pick(user, default, field);
        if !(0.0..=1.0).contains(&p) {
            return Err(self.err(
                &span,
                field,
                format!("a probability between 0 and 1, found {p}"),
            ));
        }
        Ok((p * 1_000_000.0).round() as u32)
    }

    /// A non-negative number of milliseconds, fractions allowed, in
    /// microseconds.
    fn ms_f64(&self, (user, default, field): Field<'_, f64>) -> Result<u64, ScenarioError> {
        let (v, span) = self.pick(user, default, field);
        if !(0.0..1e9).contains(&v) {
            return Err(self.err(
                &span,
                field,
                format!("a non-negative number of milliseconds, found {v}"),
            ));
        }
        Ok((v * 1000.0).round() as u64)
    }

    /// The latency range and its mean, in microseconds; the mean may not lie
    /// below the minimum.
    fn network(
        &self,
        range: Field<'_, [u64; 2]>,
        mean: Field<'_, f64>,
    ) -> Result<(Range, u64), ScenarioError> {
        let latency = self.range(range, MS)?;
        let mean_us = self.ms_f64(mean)?;
        if mean_us < latency.0 {
            let (_, span) = self.pick(mean.0, mean.1, mean.2);
            let e = "a mean latency no lower than the minimum of network.latency_ms";
            return Err(self.err(&span, mean.2, e));
        }
        Ok((latency, mean_us))
    }
}

impl Scenario {
    /// Parse and validate scenario text; `file` names it in errors.
    pub fn parse(text: &str, file: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let raw = parse_raw(text, file)?;
        let d = default_raw();
        let cx = Ctx { file, text };
        // A field of the user's file, its default, and its dotted name.
        macro_rules! f {
            ($section:ident . $field:ident) => {
                (
                    &raw.$section.$field,
                    &d.$section.$field,
                    concat!(stringify!($section), ".", stringify!($field)),
                )
            };
        }
        let (name, _) = cx.pick(&raw.name, &d.name, "name");
        let (description, _) = cx.pick(&raw.description, &d.description, "description");
        let network = cx.network(f!(network.latency_ms), f!(network.latency_mean_ms))?;
        Ok(Scenario {
            name,
            description,
            origin: origin.to_string(),
            fault_scale: 1.0,
            seeds: cx.count(f!(run.seeds), 1)?,
            expect: cx.coverage_points(f!(run.expect))?,
            fault_phase_us: cx.ms(f!(run.fault_phase_ms), 0)?,
            heal_budget_us: cx.ms(f!(run.heal_budget_ms), 1)?,
            step_budget: cx.count(f!(run.step_budget), 1)?,
            workload: WorkloadSpec {
                users: cx.count(f!(workload.users), 1)?,
                balance: cx.range(f!(workload.balance), 1)?,
                products: cx.count(f!(workload.products), 1)?,
                price: cx.range(f!(workload.price), 1)?,
                stock: cx.range(f!(workload.stock), 1)?,
                orders: cx.count(f!(workload.orders), 0)?,
                quantity: cx.range(f!(workload.quantity), 1)?,
                gap_us: cx.range(f!(workload.gap_ms), MS)?,
                coupons_per_user: cx.range(f!(workload.coupons_per_user), 1)?,
                coupon_discount: cx.range(f!(workload.coupon_discount), 1)?,
                coupon_ppm: cx.probability(f!(workload.coupon_share))?,
                points: cx.range(f!(workload.points), 1)?,
                double_submit_ppm: cx.probability(f!(workload.double_submit))?,
                key_reuse_ppm: cx.probability(f!(workload.key_reuse))?,
                hot_products: cx.count(f!(workload.hot_products), 0)?,
                hot_ppm: cx.probability(f!(workload.hot_share))?,
            },
            network: NetworkSpec {
                latency_us: network.0,
                latency_mean_us: network.1,
                loss_ppm: cx.probability(f!(network.loss))?,
                duplicate_ppm: cx.probability(f!(network.duplicate))?,
                delay_ppm: cx.probability(f!(network.delay))?,
                delay_max_us: cx.ms(f!(network.delay_max_ms), 1)?,
            },
            client: ClientSpec {
                timeout_us: cx.ms(f!(client.timeout_ms), 1)?,
                backoff_base_us: cx.ms(f!(client.backoff_base_ms), 0)?,
                backoff_cap_us: cx.ms(f!(client.backoff_cap_ms), 0)?,
            },
            broker: BrokerSpec {
                partitions: cx.small(f!(broker.partitions), 1)?,
                max_poll_records: cx.small(f!(broker.max_poll_records), 1)?,
                fetch_timeout_us: cx.ms(f!(broker.fetch_timeout_ms), 1)?,
                max_attempts: cx.small(f!(broker.max_attempts), 1)?,
            },
            pg: PgSpec {
                timeout_us: cx.ms(f!(pg.timeout_ms), 1)?,
                decline_ppm: cx.probability(f!(pg.decline))?,
                timeout_before_ppm: cx.probability(f!(pg.timeout_before))?,
                timeout_after_ppm: cx.probability(f!(pg.timeout_after))?,
                slow_ppm: cx.probability(f!(pg.slow))?,
                slow_max_us: cx.ms(f!(pg.slow_max_ms), 0)?,
                refund_fail_ppm: cx.probability(f!(pg.refund_fail))?,
                processing_max_us: cx.ms(f!(pg.processing_max_ms), 0)?,
                refund_pending_max_us: cx.ms(f!(pg.refund_pending_max_ms), 0)?,
                key_retention_us: cx.ms(f!(pg.key_retention_ms), 0)?,
            },
            gateway: GatewaySpec {
                key_ttl_us: cx.ms(f!(gateway.key_ttl_ms), 1)?,
                in_progress_ttl_us: cx.ms(f!(gateway.in_progress_ttl_ms), 1)?,
            },
            orchestration: OrchestrationSpec {
                step_timeout_us: cx.ms(f!(orchestration.step_timeout_ms), 1)?,
                give_up_after: cx.small(f!(orchestration.give_up_after), 1)?,
                lock_retry_us: cx.ms(f!(orchestration.lock_retry_ms), 1)?,
                lock_wait_max_us: cx.ms(f!(orchestration.lock_wait_max_ms), 1)?,
                apology_coupon: cx.count(f!(orchestration.apology_coupon), 1)?,
                pay_again: cx.small(f!(orchestration.pay_again), 0)?,
                pay_again_after_us: cx.ms(f!(orchestration.pay_again_after_ms), 0)?,
                sweep_every_us: cx
                    .sweep_every(f!(orchestration.sweep_every_ms), f!(pg.timeout_ms))?,
            },
            faults: FaultSpec {
                crashes: cx.range(f!(faults.crashes), 1)?,
                crash_at_us: cx.range(f!(faults.crash_at_ms), MS)?,
                restart_after_us: cx.range(f!(faults.restart_after_ms), MS)?,
                partitions: cx.range(f!(faults.partitions), 1)?,
                partition_at_us: cx.range(f!(faults.partition_at_ms), MS)?,
                partition_for_us: cx.range(f!(faults.partition_for_ms), MS)?,
                rebalances: cx.range(f!(faults.rebalances), 1)?,
                rebalance_at_us: cx.range(f!(faults.rebalance_at_ms), MS)?,
                cache_flushes: cx.range(f!(faults.cache_flushes), 1)?,
                cache_flush_at_us: cx.range(f!(faults.cache_flush_at_ms), MS)?,
                poisons: cx.range(f!(faults.poisons), 1)?,
                poison_at_us: cx.range(f!(faults.poison_at_ms), MS)?,
                commit_fail_ppm: cx.probability(f!(faults.commit_fail))?,
                commit_lost_ack_ppm: cx.probability(f!(faults.commit_lost_ack))?,
                commit_hang_ppm: cx.probability(f!(faults.commit_hang))?,
                commit_hang_us: cx.ms(f!(faults.commit_hang_ms), 1)?,
                broker_outages: cx.range(f!(faults.broker_outages), 1)?,
                broker_outage_at_us: cx.range(f!(faults.broker_outage_at_ms), MS)?,
                broker_outage_for_us: cx.range(f!(faults.broker_outage_for_ms), MS)?,
                pauses: cx.range(f!(faults.pauses), 1)?,
                pause_at_us: cx.range(f!(faults.pause_at_ms), MS)?,
                pause_for_us: cx.range(f!(faults.pause_for_ms), MS)?,
                one_way_partitions: cx.range(f!(faults.one_way_partitions), 1)?,
                one_way_partition_at_us: cx.range(f!(faults.one_way_partition_at_ms), MS)?,
                one_way_partition_for_us: cx.range(f!(faults.one_way_partition_for_ms), MS)?,
                db_outages: cx.range(f!(faults.db_outages), 1)?,
                db_outage_at_us: cx.range(f!(faults.db_outage_at_ms), MS)?,
                db_outage_for_us: cx.range(f!(faults.db_outage_for_ms), MS)?,
                mark_sent_fail_ppm: cx.probability(f!(faults.mark_sent_fail))?,
                dead_letter_fail_ppm: cx.probability(f!(faults.dead_letter_fail))?,
                cache_timeout_ppm: cx.probability(f!(faults.cache_timeout))?,
                crash_nodes: {
                    let [services, gateway] =
                        cx.choice(f!(faults.crash_nodes), CrashNodes::NAMES)?;
                    CrashNodes { services, gateway }
                },
                partition_links: {
                    let [services, gateway, pg] =
                        cx.choice(f!(faults.partition_links), PartitionLinks::NAMES)?;
                    PartitionLinks { services, gateway, pg }
                },
            },
            handler_us: cx.ms_f64(f!(services.handler_ms))?,
            commit_us: cx.ms_f64(f!(services.commit_ms))?,
            instances: [
                cx.instances(f!(services.product_instances))?,
                cx.instances(f!(services.order_instances))?,
                cx.instances(f!(services.payment_instances))?,
                cx.instances(f!(services.user_instances))?,
                1,
                cx.instances(f!(services.platform_instances))?,
                1,
            ],
            availability: AvailabilitySpec {
                service: cx.service(f!(availability.service))?,
                down_at_us: cx.ms(f!(availability.down_at_ms), 0)?,
                down_for_us: cx.ms(f!(availability.down_for_ms), 1)?,
            },
        })
    }
}
