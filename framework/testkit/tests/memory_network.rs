//! The in-process hub keeps the `Network` contract (the libp2p plugin runs the same suite on
//! real sockets).

use std::sync::Arc;

use aether_api::network::memory::MemoryHub;
use aether_api::network::Network;
use aether_primitives::types::Keypair;
use aether_testkit::{network_conformance, NetworkHarness};

struct Hub(Arc<MemoryHub>);

impl NetworkHarness for Hub {
    fn start(&mut self, i: usize) -> Arc<dyn Network> {
        self.0.join(Keypair::from_seed([i as u8 + 1; 32]).public())
    }
    fn stop(&mut self, _i: usize) {}
}

#[test]
fn the_memory_hub_passes_the_network_conformance_suite() {
    network_conformance(&mut Hub(MemoryHub::new()));
}
