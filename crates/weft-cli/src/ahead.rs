//! What `weft run` starts on other threads before it reads the pipeline: the plugin
//! runtime (the wasm engine and its instance pool) and, when the SQLite store is already
//! there, the opened store. Neither depends on the pipeline, and the parse needs only one
//! core: built beside it, they take their milliseconds off every run's start.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use weft_engine::runs::{PluginRegistry, StoreOpener};
use weft_store::BatchingStore;

use crate::Failure;
use crate::cli::PluginArgs;
use crate::store::StoreLocation;

type Opening = JoinHandle<Result<Arc<BatchingStore>, Failure>>;

/// The runtime and store being built for one `weft run`.
pub(crate) struct Ahead {
    registry: Option<JoinHandle<Result<PluginRegistry, Failure>>>,
    store: Option<Opening>,
}

impl Ahead {
    /// Starts building the registry of `plugins` with a pool of `instances`, and opening
    /// the store at `location` if it is a SQLite file that exists: a run refused for bad
    /// input still creates nothing.
    pub(crate) fn start(
        plugins: &PluginArgs,
        instances: u32,
        location: Option<&StoreLocation>,
    ) -> Self {
        let plugins = plugins.clone();
        let registry = std::thread::Builder::new()
            .name("weft-start".into())
            .spawn(move || crate::registry(&plugins, instances))
            .ok();
        let store = match location {
            Some(StoreLocation::Sqlite(path)) if path.is_file() => {
                let location = StoreLocation::Sqlite(path.clone());
                std::thread::Builder::new()
                    .name("weft-start".into())
                    .spawn(move || crate::store::open_store(&location))
                    .ok()
            }
            _ => None,
        };
        Ahead { registry, store }
    }

    /// The registry (built here if its thread could not be started).
    pub(crate) fn registry(
        &mut self,
        plugins: &PluginArgs,
        instances: u32,
    ) -> Result<PluginRegistry, Failure> {
        match self.registry.take().map(JoinHandle::join) {
            Some(Ok(built)) => built,
            // Its thread could not start or panicked: build it here, reporting what fails.
            Some(Err(_)) | None => crate::registry(plugins, instances),
        }
    }

    /// An opener of the store at `location` that hands out the store opened ahead, if
    /// there is one, the first time it is asked.
    pub(crate) fn opener(&mut self, location: StoreLocation) -> StoreOpener {
        let opening = Mutex::new(self.store.take());
        Box::new(move || {
            let ahead = opening
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            match ahead.map(JoinHandle::join) {
                Some(Ok(opened)) => opened,
                Some(Err(_)) | None => crate::store::open_store(&location),
            }
            .map_err(|failure| failure.message)
        })
    }
}
