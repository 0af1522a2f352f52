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

/// The ids of the events a service has handled. A hash set, because a
/// lookup per delivery and an insert per handled event are on the hot path
/// and an ordered set costs a tree walk for each; its hasher is fixed (no
/// random seed), and nothing reads it in hash order: `Debug` sorts.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Inbox(FixedHashSet<EventId>); // deterministic: fixed hasher

impl Inbox {
    pub fn insert(&mut self, id: EventId) -> bool {
        self.0.insert(id)
    }

    pub fn contains(&self, id: &EventId) -> bool {
        self.0.contains(id)
    }

    /// Room for `n` more ids without rehashing.
    pub fn reserve(&mut self, n: usize) {
        self.0.reserve(n);
    }

    /// The ids, in order.
    fn sorted(&self) -> Vec<EventId> {
        let mut ids: Vec<EventId> = self.0.iter().copied().collect();
        ids.sort_unstable();
        ids
    }
}

impl FromIterator<EventId> for Inbox {
    fn from_iter<I: IntoIterator<Item = EventId>>(iter: I) -> Self {
        Inbox(iter.into_iter().collect())
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
