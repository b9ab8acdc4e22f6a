//! weft's wasmtime host. It loads plugin components, checks what they import against what
//! a task was granted before instantiating anything, and runs each invocation in a fresh
//! `Store` with its own limits: CPU (epoch interruption), wall clock, memory, wasm stack,
//! hostcall fuel, log bytes and result bytes. It knows nothing about pipelines.
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

mod bindings;
pub mod cache;
pub mod capabilities;
pub mod grants;
pub mod limits;
pub mod load;
pub mod plugin;
mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

pub use cache::ComponentCache;
pub use capabilities::checkpoint::{CheckpointStore, MemoryCheckpoints};
pub use capabilities::http::HttpRule;
pub use capabilities::log::{LogLevel, LogLine, LogSink, LogStream, MemorySink, NullSink};
pub use capabilities::secrets::SecretValue;
pub use grants::{Grants, WorkspaceMount};
pub use limits::{LimitKind, Limits};
pub use load::LoadError;
pub use plugin::{Plugin, PluginKind, TaskContext, TaskReport, TaskRequest};

use state::HostState;

/// How often the epoch ticks; the unit of the CPU budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The `weft:plugin` WIT version this host serves.
pub const WIT_VERSION: &str = "0.1.0";

const SUPPORTED_WIT: semver::Version = semver::Version::new(0, 1, 0);

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Maximum wasm stack per task, in bytes.
    pub max_wasm_stack: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            max_wasm_stack: 1 << 20,
        }
    }
}

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
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            .async_stack_size(config.max_wasm_stack + (1 << 20));
        let engine = Engine::new(&wasm).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let linker = build_linker(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(
                ComponentCache::new(dir).map_err(|source| RuntimeError::Cache {
                    path: dir.display().to_string(),
                    source,
                })?,
            ),
            None => None,
        };
        start_epoch_ticker(&engine);
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                cache,
            }),
        })
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

fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    capabilities::wasi::add_to_linker(&mut linker)?;
    capabilities::http::add_to_linker(&mut linker)?;
    capabilities::log::add_to_linker(&mut linker, HostState::log_view)?;
    capabilities::secrets::add_to_linker(&mut linker, HostState::secrets_view)?;
    capabilities::checkpoint::add_to_linker(&mut linker, HostState::checkpoint_view)?;
    Ok(linker)
}

/// Increments the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("weft-epoch".to_string())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "cannot start the epoch ticker; CPU budgets will not be enforced");
    }
}
