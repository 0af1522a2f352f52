//! A service node, whatever world it runs in: how a message, an event or a
//! timer reaches the domain's handlers, which transaction it commits, and
//! what the node sends, arms or starts once the commit is in. The simulation
//! (the harness, over the kernel) and the live deployment (tokio, PostgreSQL,
//! NATS) both drive this one node through the [`Host`] port, and carry only
//! messages, timers and commits.
//!
//! - this file: the [`Host`] port, the node's [`Settings`], its volatile
//!   state [`Vol`], dispatch, and the choreography's entry and consumers;
//! - [`calls`]: Payment's calls to the payment gateway (start, settle,
//!   retry) and the gateway's own handling of them;
//! - [`steps`]: the coordinators' saga steps (commands with timeouts, asking
//!   again, giving up, the synchronous cancel's skip) and the services'
//!   command handlers, and the monolith's entry.
//!
//! Architecture invariant: a node changes its tables only through
//! [`Host::commit`], and acts on the world (sends, timers, PG calls) only
//! after the commit that decided it reported success.

mod calls;
mod steps;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, OrderId, RequestKey};
use crate::message::{CmdKind, Msg};
use crate::orchestrator::Policy;
use crate::payment::{Calls, Mode};
use crate::pg::{PgFaults, PgPort};
use crate::ports::TxBuf;
use crate::safety::Safety;
use crate::strategy::Strategy;
use crate::tables::{Consumed, Service, Store, Tables, Write};
use crate::Event;

/// Settings of the system under test: the strategy, its safety switches,
/// and the timeouts and policies of the services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub strategy: Strategy,
    pub safety: Safety,
    pub pg: PgFaults,
    pub pg_timeout_us: u64,
    /// How long the cache keeps an answered key, and an "in progress" mark.
    pub key_ttl_us: u64,
    pub in_progress_ttl_us: u64,
    /// The orchestrator's wait for a step's answer, and how many silent
    /// waits it takes before it gives a step up.
    pub step_timeout_us: u64,
    pub give_up_after: u32,
    /// Two-phase commit: how soon a step whose rows are locked is asked
    /// again, and how long a step may wait on locks, from its first "busy"
    /// answer, before the transaction aborts.
    pub lock_retry_us: u64,
    pub lock_wait_max_us: u64,
    /// What the strategy adds to the orchestrator's sagas: an apology
    /// coupon, "pay again" offers.
    pub policy: Policy,
    /// The user's think time before paying again after a decline.
    pub pay_again_after_us: u64,
    /// How often coordinators and Payment run their recovery pass, which
    /// takes up sagas and payment calls that nothing is driving any more
    /// (a commit that applied while it reported a failure leaves such).
    pub sweep_every_us: u64,
}

impl Settings {
    pub fn mode(&self) -> Mode {
        match self.strategy {
            Strategy::Choreography => Mode::Events,
            _ => Mode::Replies,
        }
    }

    /// The service where orders enter: it numbers them and keeps the
    /// durable record of keys.
    pub fn entry(&self) -> Service {
        match self.strategy {
            Strategy::Choreography | Strategy::Monolith => Service::Product,
            _ => Service::Orchestrator,
        }
    }
}

/// Whom a node talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Peer {
    /// The API gateway (the entry service answers it).
    Gateway,
    Service(Service),
}

/// Counts of what the nodes did, which a run reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub duplicates_absorbed: u64,
    pub client_retries: u64,
    pub parked: u64,
    pub pg_retries: u64,
    pub early_events: u64,
    pub steps_given_up: u64,
    pub step_retries: u64,
    /// Prepares refused because another prepared transaction held the rows.
    pub lock_waits: u64,
    /// Compensations a synchronous cancel gave up after one silent call.
    pub compensations_dropped: u64,
    /// Apology coupons issued for system-caused failures.
    pub apologies: u64,
    /// Calls our services made: saga commands and PG requests.
    pub rpcs: u64,
    /// Time coordinators waited for rows locked by another transaction.
    pub lock_wait_us: u64,
    /// Sagas and payment calls the periodic recovery pass found stuck and
    /// took up again.
    pub sagas_swept: u64,
    pub payments_swept: u64,
    /// Requests the payment gateway answered "in progress".
    pub pg_in_progress: u64,
    /// Refunds the payment gateway accepted and left pending for a while.
    pub pg_refunds_pending: u64,
    /// Charges the gateway took under a key it no longer kept.
    pub pg_keys_expired: u64,
    /// Charges Payment took up past the gateway's key retention, asking
    /// their status before charging again.
    pub pg_keys_distrusted: u64,
}

impl Counters {
    /// Add another node's counts.
    pub fn add(&mut self, o: &Counters) {
        self.duplicates_absorbed += o.duplicates_absorbed;
        self.client_retries += o.client_retries;
        self.parked += o.parked;
        self.pg_retries += o.pg_retries;
        self.early_events += o.early_events;
        self.steps_given_up += o.steps_given_up;
        self.step_retries += o.step_retries;
        self.lock_waits += o.lock_waits;
        self.compensations_dropped += o.compensations_dropped;
        self.apologies += o.apologies;
        self.rpcs += o.rpcs;
        self.lock_wait_us += o.lock_wait_us;
        self.sagas_swept += o.sagas_swept;
        self.payments_swept += o.payments_swept;
        self.pg_in_progress += o.pg_in_progress;
        self.pg_refunds_pending += o.pg_refunds_pending;
        self.pg_keys_expired += o.pg_keys_expired;
        self.pg_keys_distrusted += o.pg_keys_distrusted;
    }
}

/// What a node needs from the world it runs in. The PG's own fault
/// decisions come through [`PgPort`].
pub trait Host: PgPort {
    /// The node's committed tables.
    fn store(&self) -> &Store;
    /// Commit one local transaction: its writes, its events (through the
    /// outbox, or published after the commit when the outbox is switched
    /// off) and its inbox row, all or nothing. True if it applied.
    fn commit(&mut self, tx: &TxBuf) -> bool;
    fn send(&mut self, to: Peer, msg: Msg);
    /// Send, but only after `delay_us` (a slow reply, a user's think time).
    fn send_after(&mut self, to: Peer, msg: Msg, delay_us: u64);
    /// Call [`Node::on_timer`] with `tag` after `delay_us`, unless the node
    /// crashes first.
    fn set_timer(&mut self, delay_us: u64, tag: u64);
    fn counters(&mut self) -> &mut Counters;
    /// A coordinator gave a silent step up (for the meter).
    fn gave_up(&mut self, order: OrderId, step: CmdKind);
    /// A readable line for the trace, built only if someone reads it.
    fn trace(&mut self, line: impl FnOnce() -> String);
}

/// Where the broker delivered a record from, and the event id it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The id its producer gave it (the outbox row's, under its producer):
    /// the same for every copy of one row, and for its dead letter.
    pub event: EventId,
    /// The copy's position in the broker, the same for every redelivery of
    /// one copy and another for every copy published again (a relay's
    /// repeat, a duplicated produce): the simulation's (topic,
    /// partition, offset), JetStream's (stream, sequence), folded into one
    /// number by [`Delivery::position_of`].
    pub position: u64,
    /// It comes from the node's dead-letter topic, in the recovery pass.
    pub dead_letter: bool,
}

impl Delivery {
    /// One number for a log (a topic's partition, a stream) and an offset in
    /// it: the log in bits 40 to 62, the offset in the low 40; the top bit
    /// stays clear.
    pub fn position_of(log: u64, offset: u64) -> u64 {
        (log & 0x7f_ffff) << 40 | offset & 0xff_ffff_ffff
    }
}

/// What became of a record a consumer handed to the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    Done,
    /// It failed (its commit failed, or it cannot be handled yet): the
    /// consumer tries again after a backoff, and dead-letters it after too
    /// many attempts.
    Retry,
}

/// A node's volatile state: the PG calls in flight (payment), the saga steps
/// in flight and whom to answer (coordinators). Lost at a crash, and rebuilt
/// by [`Node::boot`] from the tables.
#[derive(Clone, Debug, Default)]
pub struct Vol {
    pub calls: Calls,
    /// Per order: the command waited for, its attempt, and how many waits
    /// for it timed out.
    pub steps: BTreeMap<OrderId, (CmdKind, u32, u32)>,
    /// Per order: the gateway's request to answer when the saga finishes.
    pub answer_to: BTreeMap<OrderId, (u32, Option<RequestKey>, u64)>,
    /// At the payment gateway: charges still being processed, by key, and
    /// when each settles.
    pub pg_processing: BTreeMap<crate::ids::PgKey, u64>,
}

/// One callback on one node: its settings, its volatile state, and a
/// transaction buffer reused from call to call.
pub struct Node<'a> {
    pub settings: &'a Settings,
    pub vol: &'a mut Vol,
    pub tx: &'a mut TxBuf,
}

fn is_coordinator(settings: &Settings, s: &Store) -> bool {
    settings.strategy.coordinated() && matches!(s.tables, Tables::Saga(_) | Tables::Xa(_))
}

/// Where payments are kept and PG calls made: Payment, or the monolith.
fn makes_calls(s: &Store) -> bool {
    s.service() == Service::Payment || matches!(s.tables, Tables::Monolith(_))
}

/// The timer tag of the periodic recovery pass. No other timer has it: a
/// step's tag keeps its attempt below 2^31 in the top half, and a call's
/// keeps its operation (0 to 2) in the top four bits.
pub const SWEEP_TAG: u64 = u64::MAX;

impl Node<'_> {
    /// Commit the buffered transaction; an empty one commits trivially.
    fn commit(&mut self, host: &mut impl Host) -> bool {
        self.tx.is_empty() || host.commit(self.tx)
    }

    /// Build the node's volatile state from its tables, at the start and
    /// after every restart: Payment takes up the calls it was making, a
    /// coordinator every unfinished saga. Both then run the recovery pass
    /// periodically, since a commit whose answer was lost can leave work
    /// that nothing drives while the node stays up.
    pub fn boot(&mut self, host: &mut impl Host) {
        let s = host.store();
        let sweeps = makes_calls(s) || is_coordinator(self.settings, s);
        if makes_calls(s) {
            let t = s.payment().expect("payment holds payments");
            for call in crate::payment::recover(t) {
                self.resume_call(host, call);
            }
            self.vol.calls.mark_swept();
        } else if is_coordinator(self.settings, s) {
            self.resume_sagas(host);
        }
        if sweeps && self.settings.safety.periodic_recovery {
            host.set_timer(self.settings.sweep_every_us, SWEEP_TAG);
        }
    }

    /// The periodic recovery pass. Payment calls again (with the same key)
    /// every payment being charged or refunded whose call is not in flight,
    /// or has not moved since the last pass; a coordinator takes up every
    /// unfinished saga with no step in flight.
    fn sweep(&mut self, host: &mut impl Host) {
        let s = host.store();
        if makes_calls(s) {
            let t = s.payment().expect("payment holds payments");
            for call in self.vol.calls.stuck(crate::payment::recover(t)) {
                host.counters().payments_swept += 1;
                host.trace(|| {
                    format!("sweep: order {}'s {:?} call was stuck", call.order, call.op)
                });
                self.resume_call(host, call);
            }
            self.vol.calls.mark_swept();
        } else if is_coordinator(self.settings, s) {
            let before = self.vol.steps.len();
            let resumed = self.resume_sagas(host);
            if resumed > 0 {
                host.counters().sagas_swept += resumed as u64;
                host.trace(|| {
                    format!("sweep: {resumed} stuck sagas taken up ({before} in flight)")
                });
            }
        }
        host.set_timer(self.settings.sweep_every_us, SWEEP_TAG);
    }

    /// A message from `from` (the client's and the gateway's own messages
    /// are theirs, not a service node's).
    pub fn on_message(&mut self, host: &mut impl Host, from: Peer, msg: Msg) {
        match msg {
            Msg::Place { id, key, req } => self.on_place(host, from, id, key, req),
            Msg::Command { order, cmd } => self.on_command(host, order, cmd),
            Msg::Done { order, cmd, result } => self.on_step_done(host, from, order, cmd, result),
            Msg::Charge { .. } | Msg::Refund { .. } | Msg::Status { .. } => {
                self.on_pg_request(host, from, &msg)
            }
            Msg::PgReply { order, key, op, result, asked_us } => {
                self.on_pg_reply(host, order, (key, op, asked_us), result)
            }
            other => panic!("a service node does not take {other:?}"),
        }
    }

    /// A record from the broker, delivered from `at`: an event, or (from a
    /// producer with another schema) one nobody can read.
    pub fn on_record(&mut self, host: &mut impl Host, msg: &Msg, at: Delivery) -> Handled {
        match msg {
            Msg::Event(ev) => self.on_event(host, ev, at),
            _ => self.on_poison(host, at.dead_letter),
        }
    }

    pub fn on_timer(&mut self, host: &mut impl Host, tag: u64) {
        if tag == SWEEP_TAG {
            self.sweep(host);
        } else if is_coordinator(self.settings, host.store()) {
            self.on_step_timeout(host, tag);
        } else if let Some(call) = self.vol.calls.timed_out(tag) {
            self.on_pg_timeout(host, call);
        }
    }

    fn on_place(
        &mut self,
        host: &mut impl Host,
        from: Peer,
        id: u32,
        key: Option<RequestKey>,
        req: crate::Request,
    ) {
        match self.settings.strategy {
            Strategy::Choreography => {}
            Strategy::Monolith => return self.monolith_place(host, from, id, key, req),
            _ => return self.orchestrate_place(host, from, id, key, req),
        }
        self.tx.clear();
        let s = host.store();
        let Tables::Product(t) = &s.tables else { panic!("orders are placed at product") };
        let response =
            crate::product::place(t, &s.entry, key, &req, &self.settings.safety, self.tx);
        if self.commit(host) {
            host.send(from, Msg::Placed { id, key, hash: req.hash(), response });
        }
    }

    fn on_event(&mut self, host: &mut impl Host, ev: &Event, at: Delivery) -> Handled {
        self.tx.clear();
        match host.store().consume(ev, &self.settings.safety, at, self.tx) {
            Consumed::Duplicate => {
                host.counters().duplicates_absorbed += 1;
                Handled::Done
            }
            Consumed::Early => {
                host.counters().early_events += 1;
                Handled::Retry
            }
            Consumed::Handled(call) => {
                if !self.commit(host) {
                    return Handled::Retry;
                }
                if let Some(call) = call {
                    self.start_call(host, call, false);
                }
                Handled::Done
            }
        }
    }

    /// A record no attempt can read: the recovery pass parks it for people
    /// to look at; before that, it is retried like any failure.
    fn on_poison(&mut self, host: &mut impl Host, dead_letter: bool) -> Handled {
        if !dead_letter {
            return Handled::Retry;
        }
        self.tx.clear();
        self.tx.writes.push(Write::Park);
        if self.commit(host) {
            host.counters().parked += 1;
            Handled::Done
        } else {
            Handled::Retry
        }
    }
}
