//! The handle a harness drives: build the world, start it, and run the two
//! phases of a run. First the fault phase, with every per-step invariant
//! checked; then the heal phase: faults stop, crashed nodes restart,
//! partitions heal, and the system has a bounded budget of simulated time to
//! settle before the end-of-run checks are judged.

use crate::app::{App, AppDb};
use crate::broker::{FetchTimer, StreamId, TopicId};
use crate::cx::{Cx, View};
use crate::fault::{Fault, FaultRecord};
use crate::net::Network;
use crate::node::{Node, NodeId, Role};
use crate::pct::{Pct, Schedule};
use crate::queue::Due;
use crate::trace::{stable_hash, TraceKind};
use crate::world::{
    Core, Decision, Event, EventKind, KernelOptions, Local, Packet, Runtime, Stats, World,
};

/// The time and step limits of a run.
#[derive(Clone, Copy, Debug)]
pub struct Phases {
    /// Faults happen only before this time.
    pub fault_phase_us: u64,
    /// After the fault phase, the system must settle within this long.
    pub heal_budget_us: u64,
    /// A run taking more steps than this is a liveness failure.
    pub step_budget: u64,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Everything finished after the faults healed.
    Settled,
    /// The heal budget ran out before everything finished.
    Deadline,
    /// Nothing was left to do, yet the system had not settled.
    Stalled,
    /// An invariant was violated.
    Violation,
    /// The step budget ran out.
    StepBudget,
}

#[derive(Debug)]
pub struct Outcome<V> {
    pub end: End,
    pub violation: Option<V>,
    pub digest: u64,
    pub time_us: u64,
    /// When the faults healed; `None` if the run stopped in the fault phase.
    pub heal_at_us: Option<u64>,
    pub stats: Stats,
    pub faults: Vec<FaultRecord>,
    pub trace: Vec<crate::trace::TraceRecord>,
    /// Following a recording: where it stopped applying, if it did.
    pub divergence: Option<crate::world::Divergence>,
}

pub struct Sim<A: App> {
    pub app: A,
    pub world: World<A>,
    healed: bool,
}

impl<A: App> Sim<A> {
    pub fn new(app: A, seed: u64, options: KernelOptions) -> Sim<A> {
        let core = Core::new(seed, options);
        let world = World {
            core,
            dbs: Vec::new(),
            db_of: Vec::new(),
            instances: Vec::new(),
            caches: Vec::new(),
            vols: Vec::new(),
        };
        Sim { app, world, healed: false }
    }

    pub fn add_node(&mut self, name: &str, role: Role, db: Option<AppDb<A>>) -> NodeId {
        let id = self.world.core.add_node(Node::new(name, role));
        if role == Role::Broker {
            self.world.core.broker_node = id;
        }
        let db = db.map(|db| {
            self.world.dbs.push(db);
            self.world.instances.push(vec![id]);
            self.world.dbs.len() - 1
        });
        self.world.db_of.push(db);
        self.world.caches.push((role == Role::Cache).then(crate::cache::Cache::default));
        self.world.vols.push(None);
        id
    }

    /// Add another instance of the service `of` runs: a node of its own
    /// (its own volatile state, relay and consumers) that shares `of`'s
    /// database and joins its consumer groups. Add instances before
    /// subscribing. From now on the handlers of every instance of that
    /// service read when their input arrives and commit in a later step.
    pub fn add_instance(&mut self, name: &str, of: NodeId) -> NodeId {
        let db = self.world.db_of[of.index()].expect("instances share a service's database");
        let id = self.world.core.add_node(Node::new(name, Role::Service));
        self.world.db_of.push(Some(db));
        self.world.instances[db].push(id);
        self.world.caches.push(None);
        self.world.vols.push(None);
        id
    }

    /// Take an earlier run's broker buffers; call before creating topics.
    pub fn reuse(&mut self, buffers: crate::broker::Buffers<A::Msg>) {
        self.world.core.broker.reuse(buffers);
    }

    /// The run's broker buffers, emptied, for the next run's
    /// [`Sim::reuse`].
    pub fn into_buffers(self) -> crate::broker::Buffers<A::Msg> {
        self.world.core.broker.into_buffers()
    }

    pub fn create_topic(&mut self, name: &str) -> TopicId {
        self.world.core.broker.create_topic(name)
    }

    /// Subscribe `member` to `topic`. With dead-lettering on, its first
    /// subscription also subscribes it to its own dead-letter topic.
    /// Subscribe `member` (with every instance that shares its database,
    /// as one consumer group) to `topic`. With dead-lettering on, its first
    /// subscription also subscribes the group to its own dead-letter topic.
    pub fn subscribe(&mut self, member: NodeId, topic: TopicId) -> Vec<StreamId> {
        let members = self.world.instances_of(member).to_vec();
        let core = &mut self.world.core;
        if core.options.max_attempts.is_some() && core.broker.dead_letter_topic(member).is_none() {
            let name = format!("{}.dead-letter", core.nodes[member.index()].name);
            let dlq = core.broker.create_dead_letter_topic(&members, &name);
            core.broker.subscribe_group(&members, dlq);
        }
        core.broker.subscribe_group(&members, topic)
    }

    /// Scheduled faults (from [`crate::fault::draw_schedule`]), applied when
    /// their time comes during the fault phase.
    pub fn schedule_faults(&mut self, plan: Vec<FaultRecord>) {
        let core = &mut self.world.core;
        for r in plan {
            let i = core.scheduled.len();
            let t = r.time_us;
            core.scheduled.push(r);
            core.push(t, Event::Fault(i));
        }
    }

    /// Boot every node. Call once, after adding nodes, topics and
    /// subscriptions.
    pub fn start(&mut self) {
        let core = &mut self.world.core;
        let n = core.nodes.len();
        core.net = Network::new(core.options.net.clone(), n);
        if let Schedule::Pct { depth, window_us } = core.options.schedule {
            let horizon = core.options.schedule_horizon_us;
            core.start_pct(Pct::new(core.streams.seed, depth.max(1), window_us, n, horizon));
        }
        for i in 0..n {
            self.boot(NodeId(i as u16));
        }
    }

    fn boot(&mut self, node: NodeId) {
        if matches!(self.world.core.role(node), Role::Broker | Role::Cache) {
            return;
        }
        let vol = self.app.boot(&mut self.world.cx(node));
        self.world.vols[node.index()] = Some(vol);
        self.world.kick(node, crate::world::Source::Outbox);
    }

    pub fn view(&self) -> View<'_, A> {
        View { world: &self.world }
    }

    pub fn now_us(&self) -> u64 {
        self.world.core.now_us
    }

    /// Take one step. Returns a violation if the step broke an invariant, and
    /// `None` as well when there was nothing to do.
    pub fn step(&mut self) -> Option<A::Violation> {
        self.step_before(u64::MAX).now().flatten()
    }

    /// Run the next event if it is due before `limit`, and say what its
    /// step found.
    fn step_before(&mut self, limit: u64) -> Due<Option<A::Violation>> {
        let (t, ev) = match self.world.core.next_event_before(limit) {
            Due::Now(next) => next,
            Due::Later => return Due::Later,
            Due::Empty => return Due::Empty,
        };
        debug_assert!(t >= self.world.core.now_us, "time never runs backwards");
        self.world.core.now_us = t;
        self.world.core.stats.steps += 1;
        self.world.core.stats.by_kind[ev.kind() as usize] += 1;
        self.fold_event(&ev);
        self.dispatch(ev);
        Due::Now(self.app.after_step(&View { world: &self.world }))
    }

    fn fold_event(&mut self, ev: &Event<A::Msg>) {
        let core = &mut self.world.core;
        core.trace.fold(core.now_us);
        let word = match ev {
            // A batch's records are copies of log entries whose content the
            // produce requests that appended them were folded with: its
            // position and length say the rest, for a fraction of the cost.
            Event::Packet { from, to, packet: Packet::Deliver(b) } => {
                let n = b.records.len();
                stable_hash(&(0u8, from, to, 5u8, b.stream, b.generation, b.first_offset, n))
            }
            Event::Packet { from, to, packet } => stable_hash(&(0u8, from, to, packet)),
            Event::Local { node, incarnation, local } => {
                stable_hash(&(1u8, node, incarnation, local))
            }
            Event::FetchTimeout { stream, timer } => stable_hash(&(2u8, stream, timer)),
            Event::Fault(i) => stable_hash(&(3u8, i)),
            Event::Free { node, incarnation } => stable_hash(&(4u8, node, incarnation)),
        };
        core.trace.fold(word);
        if core.trace.is_recording() {
            core.trace.begin_step(core.stats.steps, core.now_us);
            let name = |n: &NodeId| core.nodes[n.index()].name.as_str();
            let t = &mut core.trace;
            match ev {
                Event::Packet { from, to, packet } => {
                    t.record(TraceKind::Packet, name(to), Some(name(from)), || {
                        format!("{packet:?}")
                    })
                }
                Event::Local { node, local, .. } => {
                    t.record(TraceKind::Local, name(node), None, || format!("{local:?}"))
                }
                Event::FetchTimeout { stream, timer } => {
                    t.record(TraceKind::FetchTimeout, "broker", None, || {
                        format!("fetch timer {stream:?} #{timer}")
                    })
                }
                Event::Fault(i) => {
                    t.record(TraceKind::Scheduled, "", None, || format!("fault #{i}"))
                }
                Event::Free { node, .. } => {
                    t.record(TraceKind::Local, name(node), None, || "free: next in line".into())
                }
            }
        }
    }

    fn dispatch(&mut self, ev: Event<A::Msg>) {
        // A frozen node takes nothing in until it wakes: what reaches it waits.
        let target = match &ev {
            Event::Packet { to, .. } => Some(*to),
            Event::Local { node, .. } | Event::Free { node, .. } => Some(*node),
            _ => None,
        };
        if let Some(n) = target {
            let until = self.world.core.nodes[n.index()].paused_until;
            if until > self.world.core.now_us {
                self.world.core.push(until, ev);
                return;
            }
            // A busy node takes the next thing only when its handler is
            // done, in arrival order: what reaches it waits in line.
            let core = &mut self.world.core;
            let busy = core.nodes[n.index()].busy_until > core.now_us;
            let queued = !core.runtime[n.index()].waiting.is_empty();
            let own_step =
                matches!(ev, Event::Free { .. } | Event::Local { local: Local::CommitStep, .. });
            if !own_step && (busy || queued) {
                core.runtime[n.index()].waiting.push_back(ev);
                core.stats.queued += 1;
                self.free_later(n);
                return;
            }
        }
        self.dispatch_now(ev);
    }

    /// Schedule the `Free` event that lets a busy node take what waits for
    /// it, unless one is due already.
    fn free_later(&mut self, n: NodeId) {
        let core = &mut self.world.core;
        let rt = &mut core.runtime[n.index()];
        // Mid-handler between a read step and its commit step, the commit
        // step lets the node go on.
        if rt.free_pending || rt.waiting.is_empty() || rt.deferred.is_some() {
            return;
        }
        rt.free_pending = true;
        let node = &core.nodes[n.index()];
        let (at, incarnation) = (node.busy_until.max(core.now_us), node.incarnation);
        core.push(at, Event::Free { node: n, incarnation });
    }

    fn dispatch_now(&mut self, ev: Event<A::Msg>) {
        match ev {
            Event::Packet { from, to, packet } => {
                let core = &mut self.world.core;
                if !core.nodes[to.index()].up || core.net.is_cut(from, to) {
                    return;
                }
                core.stats.packets_delivered += 1;
                if to == core.broker_node {
                    self.world.broker_receives(from, packet);
                } else if matches!(packet, Packet::App(_)) && self.world.shares_db(to) {
                    self.read_step(to, Event::Packet { from, to, packet });
                } else {
                    self.node_receives(to, from, packet);
                }
            }
            Event::Local { node, incarnation, local } => {
                let n = &self.world.core.nodes[node.index()];
                if !n.up || n.incarnation != incarnation {
                    let kind = Event::<A::Msg>::Local { node, incarnation, local }.kind();
                    self.world.core.stale(kind);
                    return;
                }
                self.run_local(node, incarnation, local);
            }
            Event::FetchTimeout { stream, timer } => {
                let core = &mut self.world.core;
                match core.broker.fetch_timer(stream, core.now_us, timer) {
                    FetchTimer::Reset => core.pump(stream),
                    FetchTimer::Rearm(at, timer) => {
                        core.stale(EventKind::FetchTimeout);
                        core.push(at, Event::FetchTimeout { stream, timer });
                    }
                    FetchTimer::Stale => core.stale(EventKind::FetchTimeout),
                }
            }
            Event::Fault(i) => {
                if !self.healed {
                    let fault = self.world.core.scheduled[i].fault.clone();
                    self.strike(fault, Some(i));
                }
            }
            Event::Free { node, incarnation } => {
                let core = &mut self.world.core;
                if core.nodes[node.index()].incarnation != incarnation {
                    core.stale(EventKind::Free);
                    return;
                }
                let rt = &mut core.runtime[node.index()];
                rt.free_pending = false;
                if rt.deferred.is_some() {
                    // A handler read since this was scheduled: its commit
                    // step takes the next in line.
                    return;
                }
                // One waiting event per step, so that a crash can still fall
                // between any two of them.
                if let Some(next) = rt.waiting.pop_front() {
                    self.dispatch_now(next);
                }
                self.free_later(node);
            }
        }
    }

    /// The read step of a handler on an instance that shares its database:
    /// it reads now (the database keeps what it read if another instance
    /// commits meanwhile) and is busy until its commit step, a handler's
    /// time later, where the handler runs on what it read.
    fn read_step(&mut self, node: NodeId, input: Event<A::Msg>) {
        let core = &mut self.world.core;
        let commit_us = core.options.commit_us;
        // Drawn only when set, so scenarios without it keep their streams.
        let extra_us = if commit_us > 0 { core.streams.latency.range(0, commit_us) } else { 0 };
        let service_us = core.options.service_us + extra_us;
        let rt = &mut core.runtime[node.index()];
        debug_assert!(rt.deferred.is_none(), "one handler at a time");
        rt.deferred = Some(input);
        core.nodes[node.index()].busy_until = u64::MAX;
        core.local(node, service_us, Local::CommitStep);
        self.world.db_mut(node).expect("instances have a database").begin_read(node);
    }

    /// The commit step: run the handler whose read step came before, then
    /// let the node take what waited for it.
    fn commit_step(&mut self, node: NodeId) {
        let Some(input) = self.world.core.runtime[node.index()].deferred.take() else { return };
        match input {
            Event::Packet { from, to, packet } => self.node_receives(to, from, packet),
            Event::Local { local, .. } => self.local_step(node, local),
            _ => unreachable!("only packets and local steps are deferred"),
        }
        if let Some(db) = self.world.db_mut(node) {
            db.end_read(node);
        }
        let core = &mut self.world.core;
        core.nodes[node.index()].busy_until = core.now_us;
        self.free_later(node);
    }

    /// Reassign the partitions of `node`'s consumer groups among their live
    /// instances (up and not paused) and send the moved streams' batches;
    /// only for services with several instances.
    fn reassign(&mut self, node: NodeId) {
        if !self.world.shares_db(node) {
            return;
        }
        let core = &mut self.world.core;
        let (nodes, now) = (&core.nodes, core.now_us);
        let live = |m: NodeId| nodes[m.index()].up && nodes[m.index()].paused_until <= now;
        let moved = core.broker.assign(node, live);
        core.stats.reassignments += moved.len() as u64;
        for s in moved {
            core.pump(s);
        }
    }

    /// Run `f` on a node's application code with its volatile state.
    pub(crate) fn with_node(
        &mut self,
        node: NodeId,
        f: impl FnOnce(&mut A, &mut A::Volatile, &mut Cx<'_, A>),
    ) {
        let committed = {
            let (mut cx, vol) = self.world.cx_and_vol(node);
            f(&mut self.app, vol, &mut cx);
            cx.committed
        };
        let core = &mut self.world.core;
        // An instance that shares its database spent its service time
        // between its read step and this, its commit step.
        let split = core.nodes[node.index()].busy_until == u64::MAX;
        if core.options.service_us > 0 && core.role(node) == Role::Service && !split {
            let n = &mut core.nodes[node.index()];
            n.busy_until = n.busy_until.max(core.now_us + core.options.service_us);
        }
        if committed {
            self.world.kick(node, crate::world::Source::Outbox);
        }
    }

    /// Apply a fault now and record it: the schedule's fault number
    /// `scheduled` unless the fault mask switches it off, or, with none, a
    /// heal-phase restart, which always happens.
    fn strike(&mut self, fault: Fault, scheduled: Option<usize>) {
        let core = &mut self.world.core;
        let admit = |core: &mut Core<A::Msg>, fault: Fault| match scheduled {
            Some(i) => {
                let fits = |f: &Fault| *f == fault;
                core.decide(Decision::Scheduled(i), Some(fault.clone()), fits).is_some()
            }
            None => {
                core.record(fault, None);
                true
            }
        };
        match fault {
            Fault::Crash { node } => {
                if !core.nodes[node.index()].up {
                    return;
                }
                if admit(core, fault) {
                    self.crash(node);
                }
            }
            Fault::Restart { node } => {
                if core.nodes[node.index()].up {
                    return;
                }
                if admit(core, fault) {
                    self.restart(node);
                }
            }
            Fault::Partition { a, b } => {
                if admit(core, fault) {
                    core.net.partition(a, b);
                }
            }
            Fault::Heal { a, b } => {
                if admit(core, fault) {
                    core.net.heal(a, b);
                }
            }
            Fault::OneWay { from, to } => {
                if admit(core, fault) {
                    core.net.cut_one_way(from, to);
                }
            }
            Fault::HealOneWay { from, to } => {
                if admit(core, fault) {
                    core.net.heal_one_way(from, to);
                }
            }
            Fault::DbOutage { node, for_us } => {
                if admit(core, fault) {
                    // The database is down for every instance that shares it.
                    let until = self.world.core.now_us + for_us;
                    for i in self.world.instances_of(node).to_vec() {
                        let n = &mut self.world.core.nodes[i.index()];
                        n.db_down_until = n.db_down_until.max(until);
                    }
                }
            }
            Fault::Rebalance { node } => {
                if admit(core, fault) {
                    for s in core.broker.reset_member(node) {
                        core.pump(s);
                    }
                }
            }
            Fault::Pause { node, for_us } => {
                if !core.nodes[node.index()].up {
                    return;
                }
                if !admit(core, fault) {
                    return;
                }
                core.nodes[node.index()].paused_until = core.now_us + for_us;
                if self.world.shares_db(node) {
                    // Its session expires: its partitions move to the other
                    // instances, and it rejoins when it wakes.
                    self.reassign(node);
                    self.world.core.local(node, for_us, Local::Rejoin);
                    return;
                }
                // Its session expires: its partitions go to a new generation.
                let core = &mut self.world.core;
                for s in core.broker.reset_member(node) {
                    core.pump(s);
                }
            }
            Fault::Flush { node } => {
                if !admit(core, fault) {
                    return;
                }
                if let Some(c) = &mut self.world.caches[node.index()] {
                    c.restart();
                }
            }
            Fault::Drop { .. }
            | Fault::Duplicate { .. }
            | Fault::Delay { .. }
            | Fault::CommitFail { .. }
            | Fault::CommitLostAck { .. }
            | Fault::CommitHang { .. }
            | Fault::MarkSentFail { .. }
            | Fault::DeadLetterFail { .. }
            | Fault::Injected { .. } => {
                unreachable!("message, commit and application faults are decided as they happen")
            }
        }
    }

    fn crash(&mut self, node: NodeId) {
        let core = &mut self.world.core;
        let n = &mut core.nodes[node.index()];
        n.up = false;
        if n.role == Role::Broker {
            // An outage: the replicated log and committed offsets survive.
            return;
        }
        n.ended_at.push(core.now_us);
        n.incarnation += 1;
        n.crashes += 1;
        // Producer sequence numbers carry over: an acknowledgement of a batch
        // sent before the crash must not be taken for one sent after it.
        let rt = &mut core.runtime[node.index()];
        // So do in-memory record ids: they are event ids, and an
        // acknowledgement names them.
        let (relay_seq, direct_seq, memory_id) = (rt.relay.seq, rt.direct.seq, rt.next_memory_id);
        *rt = Runtime::default();
        rt.relay.seq = relay_seq;
        rt.direct.seq = direct_seq;
        rt.next_memory_id = memory_id;
        if n.busy_until == u64::MAX {
            n.busy_until = core.now_us;
        }
        self.world.vols[node.index()] = None;
        let shared = self.world.shares_db(node);
        if let Some(db) = self.world.db_mut(node) {
            db.crash();
            db.end_read(node);
            db.release(node);
        }
        if shared {
            // Its partitions move to the live instances, whose relays take
            // up the outbox rows it had in flight.
            self.reassign(node);
            for i in self.world.instances_of(node).to_vec() {
                if self.world.core.nodes[i.index()].up {
                    self.world.kick(i, crate::world::Source::Outbox);
                }
            }
        }
    }

    fn restart(&mut self, node: NodeId) {
        self.world.core.nodes[node.index()].up = true;
        if self.world.core.role(node) == Role::Broker {
            // Every group rejoins the broker that came back.
            let core = &mut self.world.core;
            for i in 0..core.broker.streams().len() {
                let s = crate::broker::StreamId(i as u32);
                core.broker.reset(s);
                core.pump(s);
            }
            return;
        }
        self.boot(node);
        if self.world.shares_db(node) {
            // It rejoins its groups: some partitions move back to it. (What
            // it still held, with no live instance to take it, starts a new
            // generation below, as a lone member's streams do.)
            self.reassign(node);
        }
        let core = &mut self.world.core;
        for s in core.broker.reset_member(node) {
            core.pump(s);
        }
    }

    /// End the fault phase: no more message faults, every partition healed,
    /// every crashed node restarted.
    pub fn heal(&mut self) {
        self.healed = true;
        let now = self.world.core.now_us;
        self.world.core.healed_at_us = Some(now);
        for n in &mut self.world.core.nodes {
            n.paused_until = n.paused_until.min(now);
            n.db_down_until = n.db_down_until.min(now);
        }
        self.world.core.net.faults_on = false;
        self.world.core.net.heal_all();
        for i in 0..self.world.core.nodes.len() {
            if !self.world.core.nodes[i].up {
                self.strike(Fault::Restart { node: NodeId(i as u16) }, None);
            }
        }
    }

    /// The kernel's part of quiescence plus the application's.
    pub fn settled(&self) -> bool {
        let core = &self.world.core;
        self.app.is_settled()
            && core.broker.lag() == 0
            && core.nodes.iter().all(|n| n.up)
            && core.runtime.iter().all(|r| r.memory.is_empty())
            && self.world.dbs.iter().all(|d| d.outbox_len() == 0)
    }

    /// Run both phases to the end.
    pub fn run(&mut self, phases: Phases) -> Outcome<A::Violation> {
        let mut heal_at_us = None;
        let (mut end, mut violation) = match self.run_fault_phase(&phases) {
            Some(stopped) => stopped,
            None => {
                let at = phases.fault_phase_us.max(self.world.core.now_us);
                heal_at_us = Some(at);
                self.world.core.now_us = at;
                self.heal();
                self.run_heal_phase(&phases, at)
            }
        };
        if matches!(end, End::Settled | End::Deadline | End::Stalled) {
            violation = self.app.at_end(&View { world: &self.world }, end == End::Settled);
            if violation.is_some() {
                end = End::Violation;
            }
        }
        let core = &mut self.world.core;
        Outcome {
            end,
            violation,
            digest: core.trace.digest(),
            time_us: core.now_us,
            heal_at_us,
            stats: core.stats,
            faults: std::mem::take(&mut core.faults),
            trace: core.trace.take_records(),
            divergence: core.divergence.take(),
        }
    }

    /// Step until the fault phase is over (`None`), or until a violation or
    /// the step budget stops the run.
    fn run_fault_phase(&mut self, p: &Phases) -> Option<(End, Option<A::Violation>)> {
        loop {
            if self.world.core.stats.steps >= p.step_budget {
                let due = self.world.core.peek_time().is_some_and(|t| t < p.fault_phase_us);
                return due.then_some((End::StepBudget, None));
            }
            match self.step_before(p.fault_phase_us) {
                Due::Now(None) => {}
                Due::Now(Some(v)) => return Some((End::Violation, Some(v))),
                Due::Later | Due::Empty => return None,
            }
        }
    }

    /// Step until the system settles, stalls, runs out of heal budget, breaks
    /// an invariant or exhausts the step budget.
    fn run_heal_phase(&mut self, p: &Phases, heal_at_us: u64) -> (End, Option<A::Violation>) {
        let deadline = heal_at_us + p.heal_budget_us;
        loop {
            if self.settled() {
                return (End::Settled, None);
            }
            if self.world.core.stats.steps >= p.step_budget {
                return match self.world.core.peek_time() {
                    None => (End::Stalled, None),
                    Some(t) if t > deadline => (End::Deadline, None),
                    Some(_) => (End::StepBudget, None),
                };
            }
            match self.step_before(deadline.saturating_add(1)) {
                Due::Now(None) => {}
                Due::Now(Some(v)) => return (End::Violation, Some(v)),
                Due::Later => return (End::Deadline, None),
                Due::Empty => return (End::Stalled, None),
            }
        }
    }
}

impl<A: App> Sim<A> {
    fn node_receives(&mut self, to: NodeId, from: NodeId, packet: crate::world::Packet<A::Msg>) {
        use crate::world::Packet;
        match packet {
            Packet::App(msg) => {
                self.with_node(to, |app, vol, cx| app.on_message(vol, cx, from, msg))
            }
            Packet::ProduceAck { source, seq, ids } => {
                self.world.producer_ack(to, source, seq, &ids);
                self.world.core.spares.keep_ids(ids);
            }
            Packet::Deliver(batch) => {
                if let Some((stream, generation)) = self.world.consumer_receives(to, batch) {
                    let incarnation = self.world.core.nodes[to.index()].incarnation;
                    let local = Local::Process { stream, generation };
                    self.run_local(to, incarnation, local);
                }
            }
            Packet::Produce { .. } | Packet::Commit { .. } | Packet::Heartbeat { .. } => {
                unreachable!("only the broker receives produce and commit requests")
            }
        }
    }

    /// Run a local step of the node's current incarnation: a handler on an
    /// instance that shares its database reads now and commits later.
    fn run_local(&mut self, node: NodeId, incarnation: u32, local: crate::world::Local) {
        use crate::world::Local;
        let handler = matches!(local, Local::Timer(_) | Local::Process { .. });
        if handler && self.world.shares_db(node) {
            self.read_step(node, Event::Local { node, incarnation, local });
        } else {
            self.local_step(node, local);
        }
    }

    fn local_step(&mut self, node: NodeId, local: crate::world::Local) {
        use crate::world::Local;
        match local {
            Local::Timer(tag) => self.with_node(node, |app, vol, cx| app.on_timer(vol, cx, tag)),
            Local::Process { stream, generation } => self.process_next(node, stream, generation),
            Local::ProduceTimeout { source, timer } => {
                self.world.produce_timer(node, source, timer)
            }
            Local::Linger => {
                self.world.core.runtime[node.index()].linger_pending = false;
                self.world.kick(node, crate::world::Source::Memory);
            }
            Local::CommitStep => self.commit_step(node),
            Local::Rejoin => self.reassign(node),
        }
    }
}
