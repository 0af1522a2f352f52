//! The checks a commit passes when its handler read before another
//! instance committed (`domain::commit_check`): each table's check refuses
//! the commit it exists for, and lets through what does not touch it.

use domain::commit_check::conflicts;
use domain::entry::EntryWrite;
use domain::platform::PlatformWrite;
use domain::product::{Product, ProductTables, ProductWrite};
use domain::user::{UserTables, UserWrite};
use domain::{EventId, OrderId, ProductId, RequestKey, Store, Tables, UserId, Write};

const P0: ProductId = ProductId(0);
const O1: OrderId = OrderId(1);
const O2: OrderId = OrderId(2);

fn product(stock: u64) -> Store {
    Store::new(Tables::Product(ProductTables::new(vec![Product { price: 10, stock }])))
}

fn user(balance: u64) -> Store {
    Store::new(Tables::User(UserTables { balances: vec![balance], ..Default::default() }))
}

fn after(s: &Store, writes: &[Write]) -> Store {
    let mut s = s.clone();
    writes.iter().for_each(|w| s.apply(w));
    s
}

fn deduct(order: OrderId, qty: u32) -> Write {
    Write::Product(ProductWrite::Deduct { order, product: P0, qty })
}

#[test]
fn the_inbox_is_a_unique_key_unless_the_schema_drops_it() {
    let read = product(5);
    let mine = [Write::Inbox(EventId(7))];
    let now = after(&read, &mine);
    assert!(conflicts(&read, &now, &mine), "another instance handled event 7 first");
    assert!(!conflicts(&read, &after(&read, &[Write::Inbox(EventId(8))]), &mine));
    let mut loose = read.clone();
    loose.unique_inbox = false;
    let now = after(&loose, &mine);
    assert!(!conflicts(&loose, &now, &mine), "no unique key: the repeat goes through");
}

#[test]
fn stock_is_a_guarded_decrement_and_the_reservation_has_a_version() {
    let read = product(5);
    // Another order took 2: 3 left, enough for this order's 3.
    let now = after(&read, &[deduct(O2, 2)]);
    assert!(!conflicts(&read, &now, &[deduct(O1, 3)]), "concurrent deductions commute");
    // Another order took 4: 1 left, not enough.
    let now = after(&read, &[deduct(O2, 4)]);
    assert!(conflicts(&read, &now, &[deduct(O1, 3)]));
    // The same order's reservation changed since the read (a duplicate
    // command handled by the other instance).
    let now = after(&read, &[deduct(O1, 1)]);
    assert!(conflicts(&read, &now, &[deduct(O1, 1)]));
    // The planted stale-read update is checked on its reservation only: it
    // writes over the other order's deduction.
    let stale = Write::Product(ProductWrite::SetStock { order: O1, product: P0, qty: 3, stock: 2 });
    let now = after(&read, &[deduct(O2, 2)]);
    assert!(!conflicts(&read, &now, &[stale]));
    let lost = after(&now, &[stale]);
    assert_eq!(lost.product().map(|t| t.products[0].stock), Some(2), "2 units lost");
}

#[test]
fn points_are_a_guarded_decrement_and_each_order_is_decided_once() {
    let read = user(100);
    let take = |order, amount| Write::User(UserWrite::Deduct { user: UserId(0), order, amount });
    let now = after(&read, &[take(O2, 40)]);
    assert!(!conflicts(&read, &now, &[take(O1, 60)]));
    assert!(conflicts(&read, &now, &[take(O1, 61)]), "61 > 60 left");
    let now = after(&read, &[take(O1, 10)]);
    assert!(conflicts(&read, &now, &[take(O1, 10)]), "order 1 was decided meanwhile");
}

#[test]
fn the_entry_record_numbers_orders_in_sequence_and_keys_are_unique() {
    let read = product(5);
    let begin = |order: OrderId, key| {
        Write::Entry(EntryWrite::Begin { order, key, hash: 1, product: P0, qty: 1 })
    };
    let now = after(&read, &[begin(OrderId(0), Some(RequestKey(9)))]);
    assert!(conflicts(&read, &now, &[begin(OrderId(0), Some(RequestKey(8)))]), "same number");
    // Read after that commit: the next number, and another key, pass.
    assert!(!conflicts(&now, &now, &[begin(OrderId(1), Some(RequestKey(8)))]));
    let mut with_key = now.clone();
    with_key.entry.next_order = read.entry.next_order;
    assert!(conflicts(&read, &with_key, &[begin(OrderId(0), Some(RequestKey(9)))]), "key taken");
}

#[test]
fn the_data_platforms_ingest_has_no_check_of_its_own() {
    let read = Store::new(Tables::Platform(Default::default()));
    let recv = [Write::Platform(PlatformWrite::Receive { order: O1, amount: 5 })];
    let now = after(&read, &recv);
    assert!(!conflicts(&read, &now, &recv), "only the inbox makes a receipt happen once");
}
