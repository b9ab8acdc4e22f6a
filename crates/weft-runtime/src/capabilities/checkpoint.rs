//! `weft:plugin/checkpoint`: durable values per (run, task, key). The engine hands each
//! task a store already scoped to its run and task.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use wasmtime::component::{HasData, Linker};

use crate::wit::since_v0_1_0::weft::plugin::checkpoint as wit;
use crate::wit::since_v0_2_0::weft::plugin::checkpoint as wit_v0_2;

/// Largest value a task may store under one key.
pub const MAX_CHECKPOINT_BYTES: usize = 1 << 20;

/// Storage for one task's checkpoints.
pub trait CheckpointStore: Send + Sync {
    /// The stored value, if any.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Stores a value.
    fn put(&self, key: &str, value: Vec<u8>) -> Result<(), String>;
}

/// Checkpoints kept in memory (tests; runs without a store).
#[derive(Default)]
pub struct MemoryCheckpoints {
    values: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl CheckpointStore for MemoryCheckpoints {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.values.lock().ok()?.get(key).cloned()
    }

    fn put(&self, key: &str, value: Vec<u8>) -> Result<(), String> {
        let mut values = self
            .values
            .lock()
            .map_err(|_| "checkpoint store is unavailable".to_string())?;
        values.insert(key.to_string(), value);
        Ok(())
    }
}

/// The view the checkpoint interface works on.
pub struct CheckpointView<'a> {
    pub(crate) store: &'a Arc<dyn CheckpointStore>,
}

impl CheckpointView<'_> {
    fn get_value(&self, key: &str) -> Option<Vec<u8>> {
        self.store.get(key)
    }

    fn put_value(&self, key: &str, value: Vec<u8>) -> Result<(), String> {
        if value.len() > MAX_CHECKPOINT_BYTES {
            return Err(format!(
                "checkpoint `{key}` is {} bytes; the limit is {MAX_CHECKPOINT_BYTES}",
                value.len()
            ));
        }
        self.store.put(key, value)
    }
}

impl wit::Host for CheckpointView<'_> {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.get_value(&key))
    }

    fn put(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        Ok(self.put_value(&key, value))
    }
}

impl wit_v0_2::Host for CheckpointView<'_> {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.get_value(&key))
    }

    fn put(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        Ok(self.put_value(&key, value))
    }
}

struct HasCheckpoint;

impl HasData for HasCheckpoint {
    type Data<'a> = CheckpointView<'a>;
}

/// Adds `weft:plugin/checkpoint`, every served version, to `linker`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> CheckpointView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasCheckpoint>(linker, get)?;
    wit_v0_2::add_to_linker::<T, HasCheckpoint>(linker, get)
}
