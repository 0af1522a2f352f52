//! Each service's tables, as one sum type so a simulated database (or any
//! other store) can hold any service's; the [`Store`] around them with the
//! parts every consumer has (inbox, parked dead letters); and the service
//! dispatch: which topics a service consumes and how it handles an event.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entry::{EntryTables, EntryWrite};
use crate::ids::{EventId, FixedHashSet, OrderId}; // deterministic: fixed hasher
use crate::message::{Event, Topic};
use crate::monolith::MonolithTables;
use crate::orchestrator::{SagaTables, SagaWrite};
use crate::order::{OrderTables, OrderWrite};
use crate::payment::{PaymentTables, PaymentWrite, PgCall};
use crate::pg::{PgTables, PgWrite};
use crate::platform::{PlatformTables, PlatformWrite};
use crate::ports::Tx;
use crate::product::{ProductTables, ProductWrite};
use crate::safety::Safety;
use crate::two_phase::{Intent, XaTables, XaWrite};
use crate::user::{UserTables, UserWrite};
use crate::{order, payment, platform, product, user};

/// A service of the split system, and the external systems it talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Service {
    Product,
    Order,
    Payment,
    User,
    /// The external payment gateway.
    Pg,
    /// The external data platform.
    Platform,
    /// The saga orchestrator (orchestration only).
    Orchestrator,
}

impl Service {
    pub const ALL: [Service; 7] = [
        Service::Product,
        Service::Order,
        Service::Payment,
        Service::User,
        Service::Pg,
        Service::Platform,
        Service::Orchestrator,
    ];

    /// The services of our own system (the ones that may crash).
    pub const OURS: [Service; 4] =
        [Service::Product, Service::Order, Service::Payment, Service::User];

    pub fn name(self) -> &'static str {
        match self {
            Service::Product => "product",
            Service::Order => "order",
            Service::Payment => "payment",
            Service::User => "user",
            Service::Pg => "pg",
            Service::Platform => "data-platform",
            Service::Orchestrator => "orchestrator",
        }
    }

    /// The topics this service consumes in the choreography saga.
    pub fn subscriptions(self) -> &'static [Topic] {
        match self {
            Service::Product => {
                &[Topic::OrderRejected, Topic::OrderCancelled, Topic::OrderConfirmed]
            }
            Service::Order => &[
                Topic::StockDeducted,
                Topic::StockRejected,
                Topic::CouponApply,
                Topic::BalanceDeducted,
                Topic::PaymentFailed,
                Topic::PaymentCancelled,
            ],
            Service::Payment => {
                &[Topic::OrderCreated, Topic::BalanceDeducted, Topic::BalanceFailed]
            }
            Service::User => &[Topic::PaymentCreated],
            Service::Pg => &[],
            Service::Platform => &[Topic::OrderCreated, Topic::OrderConfirmed],
            Service::Orchestrator => &[],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tables {
    Product(ProductTables),
    Order(OrderTables),
    Payment(PaymentTables),
    User(UserTables),
    Pg(PgTables),
    Platform(PlatformTables),
    Saga(SagaTables),
    /// Every table of the monolith, in its one database.
    Monolith(Box<MonolithTables>),
    /// The two-phase-commit coordinator's log.
    Xa(XaTables),
}

/// The ids of the events a service has handled: a lookup per delivery and
/// an insert per handled event, on the hot path.
///
/// Most ids are a producer's sequence under its origin (`origin << 40 |
/// sequence`, as the simulation numbers them): those are bits in a bitset
/// per origin, so that an insert or a lookup touches memory next to the last
/// one. A hash set of every id would spread them over a table that, at
/// 20,000 orders a seed, outgrows the cache, and make each access a miss.
/// Ids that do not fit (the live mode's hashed ids, a sequence far past its
/// set's end, more origins than the sets kept) go to a hash set with a
/// fixed hasher. Nothing reads either part in hash order: `Debug` and `==`
/// compare the ids, sorted.
#[derive(Clone, Default)]
pub struct Inbox {
    /// (origin, bits of the sequences seen): at most [`DENSE_ORIGINS`].
    dense: Vec<(u64, Vec<u64>)>,
    sparse: FixedHashSet<EventId>, // deterministic: fixed hasher
    len: usize,
}

/// Origins kept as bitsets; the simulation has one per database and per
/// in-memory producer.
const DENSE_ORIGINS: usize = 16;
/// How far (in 64-bit words) past its set's end an id may fall and still
/// grow the set: sequences climb in small steps, hashed ids land anywhere.
const DENSE_SLACK_WORDS: u64 = 1 << 10;
const SEQUENCE_BITS: u32 = 40;

impl Inbox {
    /// An id's origin and its sequence under that origin.
    fn split(id: EventId) -> (u64, u64) {
        (id.0 >> SEQUENCE_BITS, id.0 & ((1 << SEQUENCE_BITS) - 1))
    }

    /// The bitset of an origin, if it has one.
    fn set_of(&self, origin: u64) -> Option<usize> {
        self.dense.iter().position(|(o, _)| *o == origin)
    }

    /// Whether the bitset `set` (if any) has the sequence `seq`.
    fn has_bit(&self, set: Option<usize>, seq: u64) -> bool {
        let word = (seq / 64) as usize;
        set.and_then(|s| self.dense[s].1.get(word)).is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }

    /// In the hash set; a bitset may have grown over an id kept there before.
    fn in_sparse(&self, id: &EventId) -> bool {
        !self.sparse.is_empty() && self.sparse.contains(id)
    }

    pub fn insert(&mut self, id: EventId) -> bool {
        let (origin, seq) = Inbox::split(id);
        let mut set = self.set_of(origin);
        if self.has_bit(set, seq) || self.in_sparse(&id) {
            return false;
        }
        self.len += 1;
        let word = seq / 64;
        if set.is_none() && self.dense.len() < DENSE_ORIGINS && word < DENSE_SLACK_WORDS {
            self.dense.push((origin, Vec::new()));
            set = Some(self.dense.len() - 1);
        }
        match set {
            Some(set) if word < self.dense[set].1.len() as u64 + DENSE_SLACK_WORDS => {
                let bits = &mut self.dense[set].1;
                if bits.len() as u64 <= word {
                    bits.resize(word as usize + 1, 0);
                }
                bits[word as usize] |= 1 << (seq % 64);
            }
            _ => drop(self.sparse.insert(id)),
        }
        true
    }

    pub fn contains(&self, id: &EventId) -> bool {
        let (origin, seq) = Inbox::split(*id);
        self.has_bit(self.set_of(origin), seq) || self.in_sparse(id)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ids, in order.
    fn sorted(&self) -> Vec<EventId> {
        let mut ids: Vec<EventId> = self.sparse.iter().copied().collect();
        for (origin, bits) in &self.dense {
            for (w, &word) in bits.iter().enumerate() {
                let mut rest = word;
                while rest != 0 {
                    let b = rest.trailing_zeros() as u64;
                    rest &= rest - 1;
                    ids.push(EventId(origin << SEQUENCE_BITS | (w as u64 * 64 + b)));
                }
            }
        }
        ids.sort_unstable();
        ids
    }
}

impl PartialEq for Inbox {
    fn eq(&self, other: &Inbox) -> bool {
        // Where an id is kept depends on the order ids came in: compare ids.
        self.len == other.len && self.sorted() == other.sorted()
    }
}

impl Eq for Inbox {}

impl FromIterator<EventId> for Inbox {
    fn from_iter<I: IntoIterator<Item = EventId>>(iter: I) -> Self {
        let mut inbox = Inbox::default();
        for id in iter {
            inbox.insert(id);
        }
        inbox
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.sorted()).finish()
    }
}

/// A service's database: its tables, plus the inbox of events it has handled
/// and the dead letters it parked for people to look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    pub tables: Tables,
    pub inbox: Inbox,
    /// Dead letters the recovery pass could not handle either (an alarm).
    pub parked: u64,
    /// The entry record, on the service where orders enter.
    pub entry: EntryTables,
    /// Changes prepared in a two-phase commit, waiting for the decision;
    /// they survive a crash, and so do the row locks they hold.
    pub prepared: BTreeMap<OrderId, Intent>,
    /// The schema makes the inbox's event id a unique key, checked at
    /// commit; without it (a planted bug) the inbox is only as good as the
    /// handler's read of it.
    pub unique_inbox: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Write {
    Product(ProductWrite),
    Order(OrderWrite),
    Payment(PaymentWrite),
    User(UserWrite),
    Pg(PgWrite),
    Platform(PlatformWrite),
    Saga(SagaWrite),
    Xa(XaWrite),
    Entry(EntryWrite),
    /// Stage a change in phase one of a two-phase commit.
    Prepare {
        order: OrderId,
        intent: Intent,
    },
    /// Drop a staged change: it was committed (with its writes) or aborted.
    Resolve {
        order: OrderId,
    },
    /// Record an event as handled in the service's inbox.
    Inbox(EventId),
    /// Park a dead letter that cannot be handled, raising an alarm.
    Park,
}

/// What consuming one event came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consumed {
    /// Handled; a PG call to start once the transaction commits, if any.
    Handled(Option<PgCall>),
    /// It cannot be handled yet (it belongs to a saga not seen yet): nothing
    /// was done, try again later.
    Early,
    /// The inbox had seen this event: nothing was done.
    Duplicate,
}

impl Store {
    pub fn new(tables: Tables) -> Store {
        Store {
            tables,
            inbox: Inbox::default(),
            parked: 0,
            entry: EntryTables::default(),
            prepared: BTreeMap::new(),
            unique_inbox: true,
        }
    }
    /// Product's tables, wherever they live.
    pub fn product(&self) -> Option<&ProductTables> {
        match &self.tables {
            Tables::Product(t) => Some(t),
            Tables::Monolith(m) => Some(&m.product),
            _ => None,
        }
    }

    /// User's tables, wherever they live.
    pub fn user(&self) -> Option<&UserTables> {
        match &self.tables {
            Tables::User(t) => Some(t),
            Tables::Monolith(m) => Some(&m.user),
            _ => None,
        }
    }

    /// Payment's tables, wherever they live.
    pub fn payment(&self) -> Option<&PaymentTables> {
        match &self.tables {
            Tables::Payment(t) => Some(t),
            Tables::Monolith(m) => Some(&m.payment),
            _ => None,
        }
    }

    /// Order's tables, wherever they live.
    pub fn order(&self) -> Option<&OrderTables> {
        match &self.tables {
            Tables::Order(t) => Some(t),
            Tables::Monolith(m) => Some(&m.order),
            _ => None,
        }
    }

    pub fn service(&self) -> Service {
        match self.tables {
            Tables::Product(_) => Service::Product,
            Tables::Order(_) => Service::Order,
            Tables::Payment(_) => Service::Payment,
            Tables::User(_) => Service::User,
            Tables::Pg(_) => Service::Pg,
            Tables::Platform(_) => Service::Platform,
            Tables::Saga(_) => Service::Orchestrator,
            Tables::Monolith(_) => Service::Product,
            Tables::Xa(_) => Service::Orchestrator,
        }
    }

    /// Apply one committed write. A write for another service's tables is a
    /// wiring bug.
    pub fn apply(&mut self, w: &Write) {
        match (&mut self.tables, w) {
            (_, Write::Inbox(id)) => drop(self.inbox.insert(*id)),
            (_, Write::Park) => self.parked += 1,
            (_, Write::Entry(w)) => self.entry.apply(w),
            (_, Write::Prepare { order, intent }) => drop(self.prepared.insert(*order, *intent)),
            (_, Write::Resolve { order }) => drop(self.prepared.remove(order)),
            (Tables::Xa(t), Write::Xa(w)) => t.apply(w),
            (Tables::Product(t), Write::Product(w)) => t.apply(w),
            (Tables::Order(t), Write::Order(w)) => t.apply(w),
            (Tables::Payment(t), Write::Payment(w)) => t.apply(w),
            (Tables::User(t), Write::User(w)) => t.apply(w),
            (Tables::Pg(t), Write::Pg(w)) => t.apply(w),
            (Tables::Platform(t), Write::Platform(w)) => t.apply(w),
            (Tables::Saga(t), Write::Saga(w)) => t.apply(w),
            (Tables::Monolith(m), Write::Product(w)) => m.product.apply(w),
            (Tables::Monolith(m), Write::Order(w)) => m.order.apply(w),
            (Tables::Monolith(m), Write::Payment(w)) => m.payment.apply(w),
            (Tables::Monolith(m), Write::User(w)) => m.user.apply(w),
            (Tables::Monolith(m), Write::Platform(w)) => m.platform.apply(w),
            (t, w) => panic!("write {w:?} does not belong to {t:?}"),
        }
    }

    /// Consume an event delivered from `at`: skip it if the inbox has seen
    /// it, otherwise handle it and record it in the inbox within the same
    /// transaction.
    pub fn consume(
        &self,
        ev: &Event,
        safety: &Safety,
        at: crate::node::Delivery,
        tx: &mut impl Tx,
    ) -> Consumed {
        let recovery = at.dead_letter;
        // The planted bug keys the inbox on the copy's broker position:
        // redeliveries of one copy are caught, a copy published again is not.
        // The top bit keeps those keys apart from event ids.
        let key = if safety.inbox_on_event_id { at.event } else { EventId(1 << 63 | at.position) };
        let checks = safety.inbox && (safety.user_inbox_check || self.service() != Service::User);
        if checks && self.inbox.contains(&key) {
            return Consumed::Duplicate;
        }
        let call = match &self.tables {
            Tables::Product(t) => {
                product::on_event(t, ev, tx);
                None
            }
            Tables::Order(t) => {
                order::on_event(t, ev, safety, tx);
                None
            }
            Tables::Payment(t) => payment::on_event(t, ev, tx),
            Tables::User(t) => {
                user::on_event(t, ev, tx);
                None
            }
            Tables::Platform(t) => {
                if platform::on_event(t, ev, safety, recovery, tx) == platform::Taken::Early {
                    return Consumed::Early;
                }
                None
            }
            Tables::Pg(_) | Tables::Saga(_) | Tables::Monolith(_) | Tables::Xa(_) => {
                panic!("{:?} consumes no events", self.service())
            }
        };
        if safety.inbox {
            tx.write(Write::Inbox(key));
        }
        Consumed::Handled(call)
    }
}

#[cfg(test)]
mod inbox_tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// An id as the simulation numbers them (a few origins, sequences
    /// climbing in blocks), as the live mode hashes them, or far past a
    /// set's end.
    fn id() -> impl Strategy<Value = EventId> {
        prop_oneof![
            4 => (0u64..4, 0u64..3_000).prop_map(|(o, seq)| EventId(o << 40 | seq)),
            1 => any::<u64>().prop_map(|h| EventId(h >> 1)),
            1 => (0u64..20, 0u64..1 << 22).prop_map(|(o, seq)| EventId(o << 40 | seq)),
        ]
    }

    proptest! {
        /// The inbox answers as a set of ids would, wherever it keeps each
        /// one, and two inboxes of the same ids are equal whatever order
        /// they came in.
        #[test]
        fn the_inbox_is_a_set_of_ids(ids in prop::collection::vec(id(), 0..400)) {
            let (mut inbox, mut model) = (Inbox::default(), BTreeSet::new());
            for &id in &ids {
                prop_assert_eq!(inbox.insert(id), model.insert(id));
                prop_assert!(inbox.contains(&id));
                prop_assert_eq!(inbox.len(), model.len());
            }
            for &id in &ids {
                let other = EventId(id.0 ^ 1);
                prop_assert_eq!(inbox.contains(&other), model.contains(&other));
            }
            prop_assert_eq!(inbox.sorted(), model.iter().copied().collect::<Vec<_>>());
            let reversed: Inbox = ids.iter().rev().copied().collect();
            prop_assert_eq!(&reversed, &inbox);
            let mut fewer = model.clone();
            if let Some(&last) = model.iter().next_back() {
                fewer.remove(&last);
                prop_assert_ne!(&fewer.iter().copied().collect::<Inbox>(), &inbox);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use crate::node::Delivery;
    use crate::ports::TxBuf;
    use crate::safety::Safety;
    use crate::user::UserTables;

    /// The inbox records the id the producer gave the row, not the event's
    /// content: a copy of one row is a duplicate, and the same event staged
    /// in a second row (a handler that ran twice) is handled again, as
    /// with a real outbox.
    #[test]
    fn the_inbox_knows_a_row_by_its_event_id() {
        let ev = Event::PaymentCreated { order: OrderId(3), user: UserId(0), points: 5 };
        let users = UserTables { balances: vec![10], ..UserTables::default() };
        let mut store = Store::new(Tables::User(users));
        let at = |event, position| Delivery { event: EventId(event), position, dead_letter: false };
        let safety = Safety::ALL_ON;
        let mut tx = TxBuf::default();
        assert!(matches!(store.consume(&ev, &safety, at(7, 1), &mut tx), Consumed::Handled(_)));
        tx.writes.iter().for_each(|w| store.apply(w));
        let copy = store.consume(&ev, &safety, at(7, 2), &mut TxBuf::default());
        assert_eq!(copy, Consumed::Duplicate, "a copy published again");
        let second_row = store.consume(&ev, &safety, at(8, 3), &mut TxBuf::default());
        assert!(matches!(second_row, Consumed::Handled(_)), "another row of the same event");
    }
}
