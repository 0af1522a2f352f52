//! What travels: the client's request and the gateway's answer, the RPCs to
//! the entry service and the payment gateway, and the saga's events (§2.4.1
//! of the design report, extended with coupons, card payments and the side
//! effects of §3.1).

use serde::{Deserialize, Serialize};

use crate::ids::{CouponId, OrderId, PgKey, ProductId, RequestKey, UserId};

/// An order as a client asks for it. The system, not the client, numbers the
/// order: a retry that is not recognised as one becomes a second order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Request {
    pub user: UserId,
    pub product: ProductId,
    pub qty: u32,
    pub coupon: Option<CouponId>,
    /// Points the user wants to spend; the rest is charged to the card.
    pub points: u64,
}

impl Request {
    /// The request hash stored with its idempotency key (§2.4.4). A fixed mix,
    /// so it is the same on every machine.
    pub fn hash(&self) -> u64 {
        let words = [
            self.user.0 as u64,
            self.product.0 as u64,
            self.qty as u64,
            self.coupon.map_or(u64::MAX, |c| c.0 as u64),
            self.points,
        ];
        words.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, w| {
            let h = (h ^ w).wrapping_mul(0x0100_0000_01b3);
            h ^ (h >> 29)
        })
    }
}

/// Why an order was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Refusal {
    OutOfStock,
    CouponUnusable,
    CardDeclined,
    PointsShort,
    /// A step did not answer in time and the saga gave up on it.
    Unavailable,
}

/// The system's answer to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Response {
    /// The order was taken (its saga goes on).
    Accepted { order: OrderId },
    /// The order was refused at once.
    Refused { order: OrderId, why: Refusal },
    /// The idempotency key was used before with another payload.
    KeyConflict,
    /// A request with this key is still being handled: ask again later.
    InProgress,
}

impl Response {
    /// A final answer (not "in progress").
    pub fn is_final(self) -> bool {
        self != Response::InProgress
    }
}

/// What the payment gateway answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PgResult {
    Approved,
    Declined,
    Refunded,
    /// A status query for a key the gateway never saw.
    Unknown,
    /// The gateway could not make a refund (a processor error): nothing was
    /// refunded; the caller may ask again.
    RefundFailed,
    /// A charge under this key is still being processed: ask again later.
    InProgress,
}

/// The saga's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Event {
    /// Product held the stock for a new order.
    StockDeducted {
        order: OrderId,
        key: Option<RequestKey>,
        req: Request,
        price: u64,
    },
    /// Product refused a new order: out of stock.
    StockRejected {
        order: OrderId,
        key: Option<RequestKey>,
        req: Request,
    },
    /// Order saved the order and used its coupon: the amount is split into
    /// card and points.
    OrderCreated {
        order: OrderId,
        user: UserId,
        card: u64,
        points: u64,
    },
    /// Order refused the order (its coupon was not usable): stock goes back.
    OrderRejected {
        order: OrderId,
        product: ProductId,
        qty: u32,
    },
    /// Payment charged the card (or there was nothing to charge).
    PaymentCreated {
        order: OrderId,
        user: UserId,
        points: u64,
    },
    /// The card was declined.
    PaymentFailed {
        order: OrderId,
    },
    BalanceDeducted {
        order: OrderId,
        user: UserId,
        points: u64,
    },
    BalanceFailed {
        order: OrderId,
        user: UserId,
        points: u64,
    },
    /// Payment refunded the card after the balance fell short.
    PaymentCancelled {
        order: OrderId,
    },
    /// Order cancelled the order and restored its coupon: stock goes back.
    OrderCancelled {
        order: OrderId,
        product: ProductId,
        qty: u32,
    },
    /// The order is confirmed: the side effects of §3.1 follow.
    OrderConfirmed {
        order: OrderId,
        product: ProductId,
        qty: u32,
        amount: u64,
    },
    /// Use a coupon validated earlier, in a transaction of its own (only the
    /// planted check-then-act bug publishes this).
    CouponApply {
        order: OrderId,
        coupon: CouponId,
    },
}

/// A topic of the broker: one per kind of event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Topic {
    StockDeducted,
    StockRejected,
    OrderCreated,
    OrderRejected,
    PaymentCreated,
    PaymentFailed,
    BalanceDeducted,
    BalanceFailed,
    PaymentCancelled,
    OrderCancelled,
    OrderConfirmed,
    CouponApply,
}

impl Topic {
    pub const ALL: [Topic; 12] = [
        Topic::StockDeducted,
        Topic::StockRejected,
        Topic::OrderCreated,
        Topic::OrderRejected,
        Topic::PaymentCreated,
        Topic::PaymentFailed,
        Topic::BalanceDeducted,
        Topic::BalanceFailed,
        Topic::PaymentCancelled,
        Topic::OrderCancelled,
        Topic::OrderConfirmed,
        Topic::CouponApply,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Topic::StockDeducted => "stock-deducted",
            Topic::StockRejected => "stock-rejected",
            Topic::OrderCreated => "order-created",
            Topic::OrderRejected => "order-rejected",
            Topic::PaymentCreated => "payment-created",
            Topic::PaymentFailed => "payment-failed",
            Topic::BalanceDeducted => "balance-deducted",
            Topic::BalanceFailed => "balance-failed",
            Topic::PaymentCancelled => "payment-cancelled",
            Topic::OrderCancelled => "order-cancelled",
            Topic::OrderConfirmed => "order-confirmed",
            Topic::CouponApply => "coupon-apply",
        }
    }
}

impl Event {
    pub fn topic(&self) -> Topic {
        match self {
            Event::StockDeducted { .. } => Topic::StockDeducted,
            Event::StockRejected { .. } => Topic::StockRejected,
            Event::OrderCreated { .. } => Topic::OrderCreated,
            Event::OrderRejected { .. } => Topic::OrderRejected,
            Event::PaymentCreated { .. } => Topic::PaymentCreated,
            Event::PaymentFailed { .. } => Topic::PaymentFailed,
            Event::BalanceDeducted { .. } => Topic::BalanceDeducted,
            Event::BalanceFailed { .. } => Topic::BalanceFailed,
            Event::PaymentCancelled { .. } => Topic::PaymentCancelled,
            Event::OrderCancelled { .. } => Topic::OrderCancelled,
            Event::OrderConfirmed { .. } => Topic::OrderConfirmed,
            Event::CouponApply { .. } => Topic::CouponApply,
        }
    }

    pub fn order(&self) -> OrderId {
        match *self {
            Event::StockDeducted { order, .. }
            | Event::StockRejected { order, .. }
            | Event::OrderCreated { order, .. }
            | Event::OrderRejected { order, .. }
            | Event::PaymentCreated { order, .. }
            | Event::PaymentFailed { order }
            | Event::BalanceDeducted { order, .. }
            | Event::BalanceFailed { order, .. }
            | Event::PaymentCancelled { order }
            | Event::OrderCancelled { order, .. }
            | Event::OrderConfirmed { order, .. }
            | Event::CouponApply { order, .. } => order,
        }
    }

    /// The partition key: all of an order's events share a partition number.
    pub fn key(&self) -> u64 {
        self.order().0 as u64
    }
}

/// Everything a node can receive.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// Client → gateway: submission `id` (the client's own connection), with
    /// its idempotency key.
    Submit { id: u32, key: RequestKey, req: Request },
    /// Gateway → client: the answer to submission `id`.
    Answer { id: u32, response: Response },
    /// Gateway → the entry service: place an order. `key` is absent when the
    /// gateway does not pass idempotency keys on.
    Place { id: u32, key: Option<RequestKey>, req: Request },
    /// Entry service → gateway.
    Placed { id: u32, key: Option<RequestKey>, hash: u64, response: Response },
    /// Payment → payment gateway: charge an order's card amount.
    /// A charge. The caller stops waiting at `deadline_us`: a gateway
    /// that gets to it later drops it, as a server drops a call past its
    /// deadline, so a charge never lands after the caller has given up on
    /// it (and, past the gateway's key retention, charged again).
    Charge { key: Option<PgKey>, order: OrderId, amount: u64, deadline_us: u64 },
    /// Payment → payment gateway: refund the charge made under `key`.
    Refund { key: PgKey, order: OrderId },
    /// Payment → payment gateway: what became of the charge under `key`?
    /// `asked_us` (when Payment asked) comes back with the answer.
    Status { key: PgKey, order: OrderId, asked_us: u64 },
    /// Payment gateway → Payment.
    /// The PG's answer, naming the key it was asked under, as real PGs echo
    /// the idempotency key: an answer about an earlier attempt is told apart.
    /// A status answer echoes when it was asked (0 for other answers), so
    /// that a late "never seen" is told apart from the current one.
    PgReply { order: OrderId, key: Option<PgKey>, op: PgOp, result: PgResult, asked_us: u64 },
    /// Orchestrator → a service: take a step of an order's saga.
    Command { order: OrderId, cmd: Command },
    /// A service → orchestrator: the step's result. `cmd` names the command
    /// answered.
    Done { order: OrderId, cmd: CmdKind, result: CmdResult },
    /// A saga event, carried by the broker.
    Event(Event),
    /// A record no consumer can read (a producer with another schema, a
    /// corrupted write): a poison message.
    Malformed { id: u64 },
}

/// A step the orchestrator asks a service to take for an order, over RPC.
/// Every service handles a repeated command as the first one (the
/// orchestrator retries on timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    /// Product: hold stock.
    Reserve {
        product: ProductId,
        qty: u32,
    },
    /// Product: give stock back (compensation).
    Release {
        product: ProductId,
        qty: u32,
    },
    /// Product: record the sale (§3.1).
    RecordSale {
        product: ProductId,
        qty: u32,
    },
    /// Order: validate and use the coupon, save the order.
    Create {
        req: Request,
        price: u64,
    },
    /// Order: save a refused order.
    RecordRejected {
        req: Request,
    },
    Confirm,
    /// Order: cancel and restore the coupon (compensation).
    Cancel,
    /// Payment: charge the card; answered once the PG has answered.
    Pay {
        user: UserId,
        card: u64,
        points: u64,
        /// 0, then one more for each "pay again" after a decline.
        attempt: u32,
    },
    /// Payment: refund the card (compensation).
    Refund,
    Complete,
    /// User: deduct points.
    Deduct {
        user: UserId,
        points: u64,
    },
    /// Data platform: take the confirmed order in.
    Receive {
        amount: u64,
    },
    /// Two-phase commit, phase one: validate, lock the rows, and stage the
    /// change durably; vote.
    PrepareStock {
        product: ProductId,
        qty: u32,
    },
    PrepareOrder {
        req: Request,
        price: u64,
    },
    PreparePoints {
        user: UserId,
        points: u64,
    },
    /// Order: issue the user a coupon, in apology for a failure the system
    /// caused (once per order).
    IssueCoupon {
        user: UserId,
        discount: u64,
    },
    /// Phase two: apply the staged change, or drop it; release the locks.
    CommitTx,
    AbortTx,
}

/// What a service answers to a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CmdResult {
    Ok,
    Reserved {
        price: u64,
    },
    OutOfStock,
    Created {
        points: u64,
        card: u64,
    },
    CouponUnusable,
    Paid,
    /// The charge attempt declined: a late answer about an earlier attempt
    /// is told apart from the attempt the saga waits for.
    Declined {
        attempt: u32,
    },
    Short,
    /// The rows are locked by another prepared transaction: ask again.
    Busy,
}

/// The kind of a command, which a reply names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CmdKind {
    Reserve,
    Release,
    RecordSale,
    Create,
    RecordRejected,
    Confirm,
    Cancel,
    Pay,
    Refund,
    Complete,
    Deduct,
    Receive,
    PrepareStock,
    PrepareOrder,
    PreparePoints,
    CommitTx,
    AbortTx,
    IssueCoupon,
}

impl Command {
    pub fn kind(&self) -> CmdKind {
        match self {
            Command::Reserve { .. } => CmdKind::Reserve,
            Command::Release { .. } => CmdKind::Release,
            Command::RecordSale { .. } => CmdKind::RecordSale,
            Command::Create { .. } => CmdKind::Create,
            Command::RecordRejected { .. } => CmdKind::RecordRejected,
            Command::Confirm => CmdKind::Confirm,
            Command::Cancel => CmdKind::Cancel,
            Command::Pay { .. } => CmdKind::Pay,
            Command::Refund => CmdKind::Refund,
            Command::Complete => CmdKind::Complete,
            Command::Deduct { .. } => CmdKind::Deduct,
            Command::Receive { .. } => CmdKind::Receive,
            Command::PrepareStock { .. } => CmdKind::PrepareStock,
            Command::PrepareOrder { .. } => CmdKind::PrepareOrder,
            Command::PreparePoints { .. } => CmdKind::PreparePoints,
            Command::CommitTx => CmdKind::CommitTx,
            Command::AbortTx => CmdKind::AbortTx,
            Command::IssueCoupon { .. } => CmdKind::IssueCoupon,
        }
    }
}

/// Which call a payment-gateway reply answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PgOp {
    Charge,
    Refund,
    Status,
}
