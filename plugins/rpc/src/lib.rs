//! # aether-rpc
//!
//! The node's JSON-RPC API over HTTP and WebSocket on one port (jsonrpsee), plus `GET /health`
//! for load balancers, and the typed client that the `aether` CLI and tests use.
//!
//! Methods (namespace `aether_`): `status`, `health`, `getBlockByHeight`, `getBlockByHash`,
//! `getBlockEvents` (the events of a block's module hooks, e.g. `hook_failed`),
//! `getTransaction`, `getAccount`, `getAccountProof`, `contractQuery` (a read-only contract
//! call on the head state), `moduleQuery`, `getValidatorSet` (an epoch's set with its proof
//! from genesis), `getContractStorage`, `submitTransaction` (hex of the
//! borsh-encoded signed transaction), and the `subscribeNewHeads` subscription (WebSocket). Hashes, addresses and
//! bytes are `0x` hex; amounts are decimal strings. Rejected transactions answer with error
//! code `-32100 - n`, where `n` is [`SubmitError::code`], and a message saying what was wrong.
//!
//! ```no_run
//! # async fn demo(handle: aether_node::node::NodeHandle) -> anyhow::Result<()> {
//! use aether_rpc::{AetherApiClient, RpcServer};
//! let server = RpcServer::start(handle, &Default::default()).await?;
//! let client = jsonrpsee::http_client::HttpClientBuilder::default().build(server.http_url())?;
//! let status = client.status().await?;
//! println!("height {}", status.height);
//! server.stop().await;
//! # Ok(()) }
//! ```

mod dto;
mod metrics_endpoint;

use std::net::SocketAddr;
use std::sync::Arc;

use aether_node::config::RpcConfig;
use aether_node::ledger::LedgerError;
use aether_node::mempool::SubmitError;
use aether_node::node::{NodeHandle, NodeMetrics, SyncStatus, TxLookup};
use aether_node::state::StateError;
use aether_primitives::types::{Address, Hash};
use jsonrpsee::core::{async_trait, RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::server::middleware::http::ProxyGetRequestLayer;
use jsonrpsee::server::{PendingSubscriptionSink, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use tokio::sync::broadcast::error::RecvError;

use aether_vm::abi::{MAX_IO_BYTES, MAX_KEY_BYTES};
use aether_vm::gas;
pub use dto::{
    AccountProofView, AccountView, BlockEventsView, BlockView, HeadView, HealthView, HookEventView, ModuleQueryView, PeersView, QueryView,
    StatusView, TransactionView, ValidatorSetView,
};
pub use metrics_endpoint::MetricsLayer;

/// First error code of rejected submissions (`-32100 - SubmitError::code()`).
pub const SUBMIT_ERROR_BASE: i32 = -32100;
/// Error code for node-side failures (storage errors).
pub const INTERNAL_ERROR: i32 = -32603;
/// Error code for a contract query refused because too many are running.
pub const QUERIES_BUSY: i32 = -32011;
/// Error code for a height this node no longer keeps (pruned) or has not reached.
pub const HISTORY_UNAVAILABLE: i32 = -32010;
/// Error code for a module query the module refused (unknown query, out of gas, a write).
pub const MODULE_QUERY_FAILED: i32 = -32012;
/// Most epoch changes one `aether_getValidatorSet` answer carries.
pub const MAX_EPOCH_CHANGES: u64 = 256;

#[rpc(server, client, namespace = "aether")]
pub trait AetherApi {
    /// Chain, head and node configuration.
    #[method(name = "status")]
    fn status(&self) -> RpcResult<StatusView>;

    /// Liveness: answered also on `GET /health`.
    #[method(name = "health")]
    fn health(&self) -> RpcResult<HealthView>;

    /// Block sync: this node's head, the best head a peer announced, whether it is catching up.
    #[method(name = "syncStatus")]
    fn sync_status(&self) -> RpcResult<SyncStatus>;

    /// Connected peers and the network's counters (bytes per topic, drops by reason, blocked
    /// peers); `null` on a node without a network.
    #[method(name = "peers")]
    fn peers(&self) -> RpcResult<Option<PeersView>>;

    #[method(name = "getBlockByHeight")]
    fn block_by_height(&self, height: u64) -> RpcResult<Option<BlockView>>;

    #[method(name = "getBlockByHash")]
    fn block_by_hash(&self, hash: Hash) -> RpcResult<Option<BlockView>>;

    /// A transaction with its receipt once committed; `status` is `committed`, `pending` or
    /// `unknown`.
    /// The events the module hooks and the ledger emitted in the committed block at `height`
    /// (`hook_failed`, `module_upgraded`, a module's slashing or jailing events), stored when
    /// it committed. Error -32010 for a height not committed yet, pruned, or whose events this
    /// node does not have (the block it started at from a snapshot).
    #[method(name = "getBlockEvents")]
    fn block_events(&self, height: u64) -> RpcResult<BlockEventsView>;

    #[method(name = "getTransaction")]
    fn transaction(&self, hash: Hash) -> RpcResult<TransactionView>;

    #[method(name = "getAccount")]
    fn account(&self, address: Address) -> RpcResult<AccountView>;

    /// The account at `height` (default: the head) with a proof against the `state_root` of
    /// that height's header; `account` is null when the address held nothing then, and the
    /// proof shows that. Check it with `aether_node::state::verify_account_proof`.
    /// Heights outside the retained window fail with [`HISTORY_UNAVAILABLE`], naming the
    /// oldest height available.
    #[method(name = "getAccountProof")]
    fn account_proof(&self, address: Address, height: Option<u64>) -> RpcResult<AccountProofView>;

    /// Submits a signed transaction (hex of its canonical encoding); returns its hash.
    /// Runs `method` of `contract` with `input` (`0x` hex) on the committed head state and
    /// returns what it returned; nothing is kept. `caller` defaults to the zero address,
    /// `gas_limit` to (and at most) the per-transaction maximum.
    #[method(name = "contractQuery", blocking)]
    fn contract_query(
        &self,
        contract: Address,
        method: String,
        input: Option<String>,
        caller: Option<Address>,
        gas_limit: Option<u64>,
    ) -> RpcResult<QueryView>;

    /// Asks runtime module `module` the read-only question `path` with `data` (`0x` hex) on
    /// the committed head. `gas_limit` defaults to (and is at most) the per-transaction
    /// maximum. The module refusing (unknown query, out of gas) is [`MODULE_QUERY_FAILED`]
    /// with its reason; an unknown module is invalid params naming the modules the chain runs.
    #[method(name = "moduleQuery", blocking)]
    fn module_query(&self, module: String, path: String, data: Option<String>, gas_limit: Option<u64>) -> RpcResult<ModuleQueryView>;

    /// The validator set of `epoch` (default: the epoch of the next block) with the epoch
    /// changes from epoch `from` (default 0, genesis) that prove it: each epoch's last header,
    /// its certificate and the set it commits to (`aether_node::light::verify_validator_set`
    /// checks them). At most [`MAX_EPOCH_CHANGES`] changes per call; an epoch not reached yet is
    /// [`HISTORY_UNAVAILABLE`].
    #[method(name = "getValidatorSet", blocking)]
    fn validator_set(&self, epoch: Option<u64>, from: Option<u64>) -> RpcResult<ValidatorSetView>;

    /// One committed entry of a contract's storage (`key` in `0x` hex); `null` if absent.
    #[method(name = "getContractStorage")]
    fn contract_storage(&self, contract: Address, key: String) -> RpcResult<Option<String>>;

    #[method(name = "submitTransaction")]
    fn submit_transaction(&self, tx_hex: String) -> RpcResult<Hash>;

    /// Each committed block's header as it commits.
    #[subscription(name = "subscribeNewHeads" => "newHead", unsubscribe = "unsubscribeNewHeads", item = HeadView)]
    async fn subscribe_new_heads(&self) -> SubscriptionResult;
}

struct Api {
    node: NodeHandle,
    /// Contract queries running now: bounded so queries can never starve block execution of
    /// VM instances or CPU.
    queries: Arc<tokio::sync::Semaphore>,
}

/// Contract queries served at once; more are refused with a "busy" error.
pub const MAX_CONCURRENT_QUERIES: usize = 16;

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INTERNAL_ERROR, format!("node error: {e}"), None::<()>)
}

/// Ledger errors: pruned or future heights are the caller's to fix, the rest is the node's.
fn ledger_error(e: LedgerError) -> ErrorObjectOwned {
    match e {
        LedgerError::BlockPruned { .. }
        | LedgerError::HookEventsNotStored { .. }
        | LedgerError::State(StateError::Pruned { .. } | StateError::Future { .. }) => {
            ErrorObjectOwned::owned(HISTORY_UNAVAILABLE, e.to_string(), None::<()>)
        }
        e => internal(e),
    }
}

fn invalid_params(message: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(jsonrpsee::types::error::INVALID_PARAMS_CODE, message, None::<()>)
}

/// `0x` hex of at most `max` bytes.
fn decode_hex(what: &str, text: &str, max: usize) -> Result<Vec<u8>, ErrorObjectOwned> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.len() > max * 2 {
        return Err(invalid_params(format!("{what} is {} bytes; the limit is {max}", digits.len() / 2)));
    }
    hex::decode(digits).map_err(|e| invalid_params(format!("{what} is not hex: {e}")))
}

fn submit_error(e: SubmitError) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(SUBMIT_ERROR_BASE - e.code(), format!("transaction rejected: {e}"), None::<()>)
}

#[async_trait]
impl AetherApiServer for Api {
    fn status(&self) -> RpcResult<StatusView> {
        Ok(StatusView::from(self.node.status().map_err(ledger_error)?))
    }

    fn health(&self) -> RpcResult<HealthView> {
        let s = self.node.status().map_err(ledger_error)?;
        Ok(HealthView { ok: true, height: s.head.height })
    }

    fn sync_status(&self) -> RpcResult<SyncStatus> {
        Ok(self.node.sync_status())
    }

    fn peers(&self) -> RpcResult<Option<PeersView>> {
        Ok(self.node.network().map(|(peers, stats)| PeersView { peers, stats }))
    }

    fn block_by_height(&self, height: u64) -> RpcResult<Option<BlockView>> {
        Ok(self.node.block_by_height(height).map_err(ledger_error)?.map(|(b, c)| BlockView::new(b, c)))
    }

    fn block_by_hash(&self, hash: Hash) -> RpcResult<Option<BlockView>> {
        Ok(self.node.block_by_hash(&hash).map_err(internal)?.map(|(b, c)| BlockView::new(b, c)))
    }

    fn block_events(&self, height: u64) -> RpcResult<BlockEventsView> {
        let ledger = self.node.ledger().map_err(ledger_error)?;
        match ledger.block_events(height).map_err(ledger_error)? {
            Some(found) => Ok(BlockEventsView::new(found, |emitter| ledger.module_named_by(emitter).map(str::to_string))),
            None => Err(ErrorObjectOwned::owned(
                HISTORY_UNAVAILABLE,
                format!("block {height} is not committed yet (the head is at height {})", ledger.head().block.height),
                None::<()>,
            )),
        }
    }

    fn transaction(&self, hash: Hash) -> RpcResult<TransactionView> {
        Ok(match self.node.transaction(&hash).map_err(internal)? {
            TxLookup::Committed(tx) => TransactionView::committed(*tx),
            TxLookup::Pending => TransactionView::status_only(hash, "pending"),
            TxLookup::Unknown => TransactionView::status_only(hash, "unknown"),
        })
    }

    fn account(&self, address: Address) -> RpcResult<AccountView> {
        // Head first: the account then reflects this height or a later one.
        let height = self.node.ledger().map_err(ledger_error)?.head().block.height;
        let account = self.node.account(&address).map_err(internal)?;
        let next_nonce = self.node.next_nonce(&address).map_err(internal)?;
        Ok(AccountView::new(address, account, next_nonce, height))
    }

    fn account_proof(&self, address: Address, height: Option<u64>) -> RpcResult<AccountProofView> {
        let ledger = self.node.ledger().map_err(ledger_error)?;
        let height = height.unwrap_or_else(|| ledger.head().block.height);
        let (account, proof, header) = ledger.account_with_proof(&address, height).map_err(ledger_error)?;
        Ok(AccountProofView {
            address,
            height,
            block_hash: header.hash(),
            state_root: header.state_root,
            account,
            proof: format!("0x{}", hex::encode(proof.to_bytes())),
        })
    }

    fn contract_query(
        &self,
        contract: Address,
        method: String,
        input: Option<String>,
        caller: Option<Address>,
        gas_limit: Option<u64>,
    ) -> RpcResult<QueryView> {
        let input = decode_hex("input", input.as_deref().unwrap_or(""), MAX_IO_BYTES)?;
        let gas_limit = gas_limit.unwrap_or(gas::MAX_TX_GAS);
        if gas_limit > gas::MAX_TX_GAS {
            return Err(invalid_params(format!("gas_limit {gas_limit} is above the per-transaction maximum {}", gas::MAX_TX_GAS)));
        }
        let _slot = self.queries.try_acquire().map_err(|_| {
            ErrorObjectOwned::owned(QUERIES_BUSY, format!("{MAX_CONCURRENT_QUERIES} contract queries are running; try again"), None::<()>)
        })?;
        let ledger = self.node.ledger().map_err(ledger_error)?;
        if ledger.vm().is_none() {
            return Err(invalid_params("this node runs no VM backend (no [vm] section in its config)".into()));
        }
        let height = ledger.head().block.height;
        let (outcome, events) = ledger.query(caller.unwrap_or_default(), contract, &method, &input, gas_limit).map_err(ledger_error)?;
        Ok(QueryView::new(outcome, events, height))
    }

    fn module_query(&self, module: String, path: String, data: Option<String>, gas_limit: Option<u64>) -> RpcResult<ModuleQueryView> {
        let data = decode_hex("data", data.as_deref().unwrap_or(""), MAX_IO_BYTES)?;
        let gas_limit = gas_limit.unwrap_or(gas::MAX_TX_GAS);
        if gas_limit > gas::MAX_TX_GAS {
            return Err(invalid_params(format!("gas_limit {gas_limit} is above the per-transaction maximum {}", gas::MAX_TX_GAS)));
        }
        let _slot = self.queries.try_acquire().map_err(|_| {
            ErrorObjectOwned::owned(QUERIES_BUSY, format!("{MAX_CONCURRENT_QUERIES} queries are running; try again"), None::<()>)
        })?;
        let ledger = self.node.ledger().map_err(ledger_error)?;
        let aether_node::ledger::ModuleAnswer { answer, gas_used, height } =
            ledger.module_query(&module, &path, &data, gas_limit).map_err(|e| match e {
                e @ LedgerError::UnknownModule { .. } => invalid_params(e.to_string()),
                e => ledger_error(e),
            })?;
        match answer {
            Ok(output) => Ok(ModuleQueryView { output, gas_used, height }),
            Err(e) => Err(ErrorObjectOwned::owned(MODULE_QUERY_FAILED, format!("module {module}: {e}"), None::<()>)),
        }
    }

    fn validator_set(&self, epoch: Option<u64>, from: Option<u64>) -> RpcResult<ValidatorSetView> {
        let ledger = self.node.ledger().map_err(ledger_error)?;
        let epoch = epoch.unwrap_or_else(|| ledger.epoch_of(ledger.head().block.height + 1));
        let from = from.unwrap_or(0);
        if from > epoch || epoch - from > MAX_EPOCH_CHANGES {
            return Err(invalid_params(format!(
                "from {from} must be at most epoch {epoch}, and within {MAX_EPOCH_CHANGES} epochs of it (ask in steps)"
            )));
        }
        let unavailable = || {
            ErrorObjectOwned::owned(
                HISTORY_UNAVAILABLE,
                format!("epoch {epoch} has not begun on this node's chain, or its proof is pruned"),
                None::<()>,
            )
        };
        let validators = ledger.validator_set(epoch).map_err(ledger_error)?.ok_or_else(unavailable)?;
        let changes = ledger.epoch_changes(from, epoch).map_err(ledger_error)?.ok_or_else(unavailable)?;
        let (first_height, last_height) = match ledger.epoch_timeline() {
            Some(s) => (s.first_height(epoch), Some(s.last_height(epoch))),
            None => (1, None),
        };
        Ok(ValidatorSetView { epoch, first_height, last_height, validators, changes })
    }

    fn contract_storage(&self, contract: Address, key: String) -> RpcResult<Option<String>> {
        let key = decode_hex("key", &key, MAX_KEY_BYTES)?;
        let value = self.node.ledger().map_err(ledger_error)?.contract_storage(&contract, &key).map_err(ledger_error)?;
        Ok(value.map(|v| format!("0x{}", hex::encode(v))))
    }

    fn submit_transaction(&self, tx_hex: String) -> RpcResult<Hash> {
        let digits = tx_hex.strip_prefix("0x").unwrap_or(&tx_hex);
        let max_hex = self.node.max_tx_bytes().saturating_mul(2);
        if digits.len() > max_hex {
            return Err(submit_error(self.node.refused(SubmitError::Oversize { len: digits.len() / 2, max: max_hex / 2 })));
        }
        let bytes = hex::decode(digits).map_err(|e| submit_error(self.node.refused(SubmitError::Undecodable(format!("not hex: {e}")))))?;
        self.node.submit(&bytes).map_err(submit_error)
    }

    async fn subscribe_new_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut heads = self.node.subscribe_heads();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                _ = sink.closed() => return Ok(()),
                head = heads.recv() => match head {
                    Ok(h) => {
                        let msg = serde_json::value::to_raw_value(&HeadView::from(h.as_ref()))?;
                        if sink.send(msg).await.is_err() {
                            return Ok(());
                        }
                    }
                    // A slow subscriber skips heads rather than slowing the node.
                    Err(RecvError::Lagged(n)) => tracing::debug!(skipped = n, "head subscriber lagging"),
                    Err(RecvError::Closed) => return Ok(()),
                },
            }
        }
    }
}

/// A running RPC server.
pub struct RpcServer {
    handle: ServerHandle,
    addr: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("cannot listen for RPC on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// An RPC listener that is bound but not yet serving: binding before the node opens its
/// storage means a port in use is reported before anything is written.
pub struct BoundRpc {
    server: jsonrpsee::server::Server<HttpLayers>,
    addr: SocketAddr,
}

/// `/metrics` outermost, then `/health`, then JSON-RPC.
type HttpLayers = tower::layer::util::Stack<ProxyGetRequestLayer, tower::layer::util::Stack<MetricsLayer, tower::layer::util::Identity>>;

impl BoundRpc {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts serving `node`.
    pub fn serve(self, node: NodeHandle) -> RpcServer {
        let handle = self.server.start(Api { node, queries: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_QUERIES)) }.into_rpc());
        tracing::info!(addr = %self.addr, "JSON-RPC listening (HTTP and WebSocket)");
        RpcServer { handle, addr: self.addr }
    }
}

impl RpcServer {
    /// Binds `config.listen` (port 0 picks a free port; see [`BoundRpc::local_addr`]).
    /// `metrics` are served at `GET /metrics`; pass the ones the node will update.
    pub async fn bind(config: &RpcConfig, metrics: Arc<NodeMetrics>) -> Result<BoundRpc, RpcError> {
        let server_config =
            ServerConfig::builder().max_connections(config.max_connections).max_request_body_size(config.max_request_bytes).build();
        #[allow(clippy::expect_used)] // the path is a constant that starts with '/', the one requirement
        let health = ProxyGetRequestLayer::new([("/health", "aether_health")]).expect("static path starts with /");
        let server = jsonrpsee::server::Server::builder()
            .set_config(server_config)
            .set_http_middleware(tower::ServiceBuilder::new().layer(MetricsLayer(metrics)).layer(health))
            .build(config.listen)
            .await
            .map_err(|source| RpcError::Bind { addr: config.listen, source })?;
        let addr = server.local_addr().map_err(|source| RpcError::Bind { addr: config.listen, source })?;
        Ok(BoundRpc { server, addr })
    }

    /// Binds and serves `node` in one step.
    pub async fn start(node: NodeHandle, config: &RpcConfig) -> Result<RpcServer, RpcError> {
        Ok(Self::bind(config, node.metrics().clone()).await?.serve(node))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Stops accepting requests and waits for the server to finish.
    pub async fn stop(self) {
        let _ = self.handle.stop();
        self.handle.stopped().await;
    }
}
