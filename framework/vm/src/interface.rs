//! The contract interface: the names, numbers and limits a WebAssembly contract and the host
//! agree on. A leaf module (it imports nothing of this crate): validation checks code against
//! it, instrumentation adds its globals, the ABI implements its functions, and backends look
//! its exports up by these names.

/// Largest storage key, storage value, event topic, event data, call input and return data.
pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
pub const MAX_TOPIC_BYTES: usize = 64;
pub const MAX_EVENT_DATA_BYTES: usize = 4 * 1024;
pub const MAX_EVENTS_PER_TX: usize = 256;
pub const MAX_IO_BYTES: usize = 64 * 1024;
pub const MAX_METHOD_BYTES: usize = 64;

/// Status codes of the `call` host function.
pub const CALL_RETURNED: i32 = 0;
pub const CALL_REVERTED: i32 = 1;
pub const CALL_TRAPPED: i32 = 2;
pub const CALL_OUT_OF_GAS: i32 = 3;
pub const CALL_REFUSED: i32 = 4;

/// A WebAssembly value type of the host interface (only i32 and i64 are used).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiType {
    I32,
    I64,
}

macro_rules! host_functions {
    ($($variant:ident = $name:literal ($($p:ident),*) -> [$($r:ident)?];)*) => {
        /// One host function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum HostFn { $($variant),* }
        impl HostFn {
            pub const ALL: &'static [HostFn] = &[$(HostFn::$variant),*];
            pub fn name(self) -> &'static str { match self { $(HostFn::$variant => $name),* } }
            pub fn params(self) -> &'static [AbiType] { match self { $(HostFn::$variant => &[$(AbiType::$p),*]),* } }
            pub fn results(self) -> &'static [AbiType] { match self { $(HostFn::$variant => &[$(AbiType::$r)?]),* } }
        }
    };
}

host_functions! {
    InputLen = "input_len" () -> [I32];
    InputRead = "input_read" (I32) -> [];
    StorageRead = "storage_read" (I32, I32, I32, I32) -> [I32];
    StorageWrite = "storage_write" (I32, I32, I32, I32) -> [];
    StorageRemove = "storage_remove" (I32, I32) -> [];
    Caller = "caller" (I32) -> [];
    SelfAddress = "self_address" (I32) -> [];
    Value = "value" (I32) -> [];
    Balance = "balance" (I32, I32) -> [];
    BlockHeight = "block_height" () -> [I64];
    BlockTimeMs = "block_time_ms" () -> [I64];
    EmitEvent = "emit_event" (I32, I32, I32, I32) -> [];
    Transfer = "transfer" (I32, I32) -> [I32];
    Call = "call" (I32, I32, I32, I32, I32, I32, I64) -> [I32];
    ReturnDataLen = "return_data_len" () -> [I32];
    ReturnDataRead = "return_data_read" (I32) -> [];
    Sha256 = "sha256" (I32, I32, I32) -> [];
    Ed25519Verify = "ed25519_verify" (I32, I32, I32, I32) -> [I32];
    SetReturn = "set_return" (I32, I32) -> [];
    Revert = "revert" (I32, I32) -> [];
}

impl HostFn {
    pub const MODULE: &'static str = "env";

    pub fn by_name(module: &str, name: &str) -> Option<HostFn> {
        (module == Self::MODULE).then(|| Self::ALL.iter().copied().find(|f| f.name() == name)).flatten()
    }

    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|f| f.name()).collect()
    }

    pub fn signature_text(self) -> String {
        let list = |ts: &[AbiType]| ts.iter().map(|t| format!("{t:?}").to_lowercase()).collect::<Vec<_>>().join(", ");
        format!("({}) -> ({})", list(self.params()), list(self.results()))
    }
}

/// Export names starting with this are the instrumentation's; contracts may not use them.
pub const RESERVED_PREFIX: &str = "aether_";
/// The exported i64 global holding the gas left.
pub const GAS_GLOBAL: &str = "aether_gas";
/// The exported i32 global saying why the module trapped itself (0: it did not).
pub const ABORT_GLOBAL: &str = "aether_abort";
/// The module's memory, exported under this name for the host functions.
pub const MEMORY_EXPORT: &str = "aether_memory";
pub const ABORT_OUT_OF_GAS: i32 = 1;
pub const ABORT_STACK: i32 = 2;
