//! Adapters from the kernel's context to the domain's ports: the client's,
//! the gateway's and the payment gateway's.

use domain::gateway::{GatewayPort, KeyEntry};
use domain::pg::PgPort;
use domain::ports::ClientPort;
use domain::{Msg, RequestKey, Service, StateView, Store};
use sim::{Cx, NodeId, View};

use crate::harness::app::{Nodes, SagaApp, Settings};

pub struct ClientAdapter<'c, 'a> {
    pub cx: &'c mut Cx<'a, SagaApp>,
    pub gateway: NodeId,
}

impl ClientPort for ClientAdapter<'_, '_> {
    fn now_us(&self) -> u64 {
        self.cx.now_us()
    }
    fn send(&mut self, msg: Msg) {
        self.cx.send(self.gateway, msg);
    }
    fn set_timer(&mut self, delay_us: u64, tag: u64) {
        self.cx.set_timer(delay_us, tag);
    }
    fn jitter_us(&mut self, max_us: u64) -> u64 {
        self.cx.random().range(0, max_us)
    }
}

pub struct GatewayAdapter<'c, 'a> {
    pub cx: &'c mut Cx<'a, SagaApp>,
    pub nodes: Nodes,
    pub settings: Settings,
}

impl GatewayAdapter<'_, '_> {
    fn ttl_us(&self, entry: &KeyEntry) -> u64 {
        match entry {
            KeyEntry::InProgress { .. } => self.settings.in_progress_ttl_us,
            KeyEntry::Done { .. } => self.settings.key_ttl_us,
        }
    }
}

impl GatewayPort for GatewayAdapter<'_, '_> {
    fn cache_get(&mut self, key: RequestKey) -> Option<KeyEntry> {
        let now = self.cx.now_us();
        self.cx.cache(self.nodes.cache).get(key.0, now).copied()
    }
    fn cache_set_nx(&mut self, key: RequestKey, entry: KeyEntry) -> bool {
        let (now, ttl) = (self.cx.now_us(), self.ttl_us(&entry));
        self.cx.cache(self.nodes.cache).set_nx(key.0, entry, ttl, now)
    }
    fn cache_set(&mut self, key: RequestKey, entry: KeyEntry) {
        let (now, ttl) = (self.cx.now_us(), self.ttl_us(&entry));
        self.cx.cache(self.nodes.cache).set(key.0, entry, ttl, now)
    }
    fn forward(&mut self, msg: Msg) {
        self.cx.send(self.nodes.entry, msg);
    }
    fn answer(&mut self, msg: Msg) {
        self.cx.send(self.nodes.client, msg);
    }
}

pub struct PgAdapter<'c, 'a> {
    pub cx: &'c mut Cx<'a, SagaApp>,
}

impl PgPort for PgAdapter<'_, '_> {
    fn fault(&mut self, what: &str, ppm: u32) -> bool {
        self.cx.inject(what, ppm)
    }
    fn random_us(&mut self, max_us: u64) -> u64 {
        self.cx.random().range(0, max_us)
    }
}

/// The services' stores, as the invariant checker reads them.
pub struct Stores<'v, 'a> {
    pub view: &'v View<'a, SagaApp>,
    pub nodes: Nodes,
}

impl StateView for Stores<'_, '_> {
    fn store(&self, service: Service) -> &Store {
        self.view.db(self.nodes.of(service)).expect("services have databases").state()
    }
}
