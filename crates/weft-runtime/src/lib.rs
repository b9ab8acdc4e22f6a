//! weft's wasmtime host. It loads plugin components, checks what they import against what
//! a task was granted before instantiating anything, and runs each invocation in a fresh
//! `Store`, on a thread of its own (never the caller's async runtime), with its own limits:
//! CPU (epoch interruption), wall clock, memory, wasm stack, hostcall fuel, log bytes and
//! result bytes. It knows nothing about pipelines.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use weft_runtime::{Runtime, RuntimeConfig, TaskRequest};
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let plugin = runtime.load_file("echo.wasm")?;
//! let mut request = TaskRequest::new("greet");
//! request.params.insert("message".into(), weft_core::contract::ParamValue::Str("hi".into()));
//! let report = plugin.run(request).await;
//! println!("{:?} {:?}", report.ending, report.results);
//! # Ok(()) }
//! ```

pub mod cache;
pub mod capabilities;
pub mod grants;
mod guest;
mod hooks;
pub mod limits;
pub mod load;
pub mod masking;
pub mod plugin;
mod secret;
mod state;
mod wit;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

pub use cache::ComponentCache;
pub use capabilities::checkpoint::{CheckpointStore, MemoryCheckpoints};
pub use capabilities::http::{AddressClass, EgressLimits, HttpRule, classify_ip};
pub use capabilities::log::{LogLevel, LogLine, LogSink, LogStream, MemorySink, NullSink};
pub use grants::{Grants, WorkspaceMount};
pub use limits::{LimitKind, Limits};
pub use load::LoadError;
pub use masking::Masker;
pub use plugin::{
    Decorated, DecoratorInfo, GateContext, GateResult, Instantiated, Plugin, PluginKind,
    TaskContext, TaskReport, TaskRequest,
};
pub use secret::{SecretError, SecretValue};
pub use wit::WIT_VERSION;

use state::HostState;

/// How often the epoch ticks; the unit of the CPU budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How instance memory is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// A pool of pre-reserved slots with copy-on-write memory images: instantiation is a
    /// few microseconds. Falls back to [`Allocator::OnDemand`] (with a log line) when the
    /// machine cannot reserve the address space.
    Pooling {
        /// Component instances (tasks running at once); also the size of the task gate.
        instances: u32,
        /// Largest linear memory a slot holds, in bytes.
        max_memory_bytes: usize,
    },
    /// mmap per instance: slower to instantiate, no up-front reservation.
    OnDemand,
}

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Size bound of the cache directory; the least recently used entries are evicted.
    pub cache_max_bytes: u64,
    /// Maximum wasm stack per task, in bytes.
    pub max_wasm_stack: usize,
    /// How instances are allocated.
    pub allocator: Allocator,
}

/// Instance slots of the default pool: what a server running many runs at once needs.
/// Setting up a slot costs time (a guard page per stack), so a process that runs one
/// pipeline asks for fewer.
pub const DEFAULT_POOL_INSTANCES: u32 = 1000;

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            cache_max_bytes: 1 << 30,
            max_wasm_stack: 1 << 20,
            allocator: Allocator::Pooling {
                instances: DEFAULT_POOL_INSTANCES,
                max_memory_bytes: 1 << 30,
            },
        }
    }
}

/// Task gate size with the on-demand allocator (it has no slots to run out of).
const ON_DEMAND_CONCURRENCY: usize = 10_000;

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the configuration.
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
    /// The cache directory is unusable.
    #[error("cannot use cache directory {path}: {source}")]
    Cache {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ComponentCache>,
    allocator: Allocator,
    /// One permit per pool slot: excess tasks wait here instead of failing to instantiate.
    slots: Arc<tokio::sync::Semaphore>,
    /// Epoch ticks of the ticker alone (the epoch is also bumped to stop a guest at once;
    /// CPU budgets count only these).
    ticks: Arc<AtomicU64>,
}

/// One per process: the engine, the linker with every host capability, the epoch ticker
/// and the compiled-component cache. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl Runtime {
    /// Builds the engine and linker and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let (engine, allocator) = build_engine(&config)?;
        let linker = build_linker(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(
                ComponentCache::new(dir)
                    .map_err(|source| RuntimeError::Cache {
                        path: dir.display().to_string(),
                        source,
                    })?
                    .with_max_bytes(config.cache_max_bytes),
            ),
            None => None,
        };
        let permits = match allocator {
            Allocator::Pooling { instances, .. } => instances as usize,
            Allocator::OnDemand => ON_DEMAND_CONCURRENCY,
        };
        let ticks = Arc::new(AtomicU64::new(0));
        start_epoch_ticker(&engine, ticks.clone());
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                cache,
                allocator,
                slots: Arc::new(tokio::sync::Semaphore::new(permits)),
                ticks,
            }),
        })
    }

    /// The allocator in effect (pooling may have fallen back to on-demand).
    pub fn allocator(&self) -> Allocator {
        self.inner.allocator
    }

    /// The effective memory limit of a task: its own, capped by what a pool slot holds,
    /// so hitting it is always reported as the task's memory limit.
    pub(crate) fn memory_ceiling(&self, requested: usize) -> usize {
        match self.inner.allocator {
            Allocator::Pooling {
                max_memory_bytes, ..
            } => requested.min(max_memory_bytes),
            Allocator::OnDemand => requested,
        }
    }

    /// Waits for a free instance slot; the permit is held for the whole invocation.
    pub(crate) async fn slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.inner.slots.clone().acquire_owned().await.ok()
    }

    /// The ticker's count of epoch ticks.
    pub(crate) fn ticks(&self) -> Arc<AtomicU64> {
        self.inner.ticks.clone()
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// The compiled-component cache, if configured.
    pub fn cache(&self) -> Option<&ComponentCache> {
        self.inner.cache.as_ref()
    }

    /// Loads a plugin from a `.wasm` file; its name is the file stem.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Plugin, LoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        self.load_bytes(&name, &bytes)
    }

    /// Loads a plugin from bytes (a component binary, or WAT text).
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Plugin, LoadError> {
        load::load(self, name, bytes)
    }
}

/// The cores this process may use (its CPU affinity and cgroup quota), read once: the
/// standard library reads the cgroup files again on every call.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn base_config(config: &RuntimeConfig) -> Config {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack)
        .async_stack_size(config.max_wasm_stack + (1 << 20));
    wasm
}

/// Builds the engine with the configured allocator, falling back to on-demand allocation
/// when the pool's address space cannot be reserved (e.g. under a tight `ulimit -v`).
fn build_engine(config: &RuntimeConfig) -> Result<(Engine, Allocator), RuntimeError> {
    if let Allocator::Pooling {
        instances,
        max_memory_bytes,
    } = config.allocator
    {
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(8))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(8))
            .total_stacks(instances)
            .max_core_instances_per_component(32)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_memory_size(max_memory_bytes)
            .max_unused_warm_slots(instances.min(100))
            // A slot given back is zeroed with `memset` up to these sizes instead of
            // `madvise`, which would shoot down every core's TLB once per task; what is
            // past them is decommitted in batches (one shootdown per batch). Either way a
            // slot is zero before its next tenant sees it. Measured (B1): 64 KiB takes the
            // cycle of `exit` from about 31 to 16 µs; 1 MiB made it 80 µs (the memset).
            .linear_memory_keep_resident(64 << 10)
            .table_keep_resident(16 << 10)
            .decommit_batch_size(16)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut wasm = base_config(config);
        wasm.allocation_strategy(pool);
        match Engine::new(&wasm) {
            Ok(engine) => return Ok((engine, config.allocator)),
            Err(err) => tracing::warn!(
                error = %format!("{err:#}"),
                "cannot reserve the instance pool; falling back to on-demand allocation"
            ),
        }
    }
    let engine =
        Engine::new(&base_config(config)).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
    Ok((engine, Allocator::OnDemand))
}

fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    capabilities::wasi::add_to_linker(&mut linker)?;
    capabilities::links::add_to_linker(&mut linker, HostState::links_view)?;
    capabilities::http::add_to_linker(&mut linker)?;
    capabilities::log::add_to_linker(&mut linker, HostState::log_view)?;
    capabilities::secrets::add_to_linker(&mut linker, HostState::secrets_view)?;
    capabilities::checkpoint::add_to_linker(&mut linker, HostState::checkpoint_view)?;
    Ok(linker)
}

/// Increments the engine's epoch (and `ticks`) every [`EPOCH_TICK`] until the engine is
/// dropped.
fn start_epoch_ticker(engine: &Engine, ticks: Arc<AtomicU64>) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("weft-epoch".to_string())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                ticks.fetch_add(1, Ordering::Relaxed);
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "cannot start the epoch ticker; CPU budgets will not be enforced");
    }
}
