//! Compiled-component cache: artifacts keyed by the sha256 of the wasm and the engine's
//! compatibility hash, so a component is compiled once per engine configuration.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
    max_bytes: u64,
}

/// Distinguishes temporary files of concurrent writers within one process.
static WRITE_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Extension of finished entries.
const ENTRY_EXTENSION: &str = "cwasm";

impl ComponentCache {
    /// Uses (and creates) `dir`, with a size bound of 1 GiB.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(ComponentCache {
            dir,
            max_bytes: 1 << 30,
        })
    }

    /// Sets the size bound; least recently used entries are evicted past it.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache file for `wasm` under `engine`.
    pub fn path_for(&self, engine: &Engine, wasm: &[u8]) -> PathBuf {
        let digest = hex::encode(Sha256::digest(wasm));
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir.join(format!(
            "{digest}-{:016x}.{ENTRY_EXTENSION}",
            hasher.finish()
        ))
    }

    /// Loads the compiled form of `wasm`, compiling and storing it on a miss. A corrupt
    /// entry is removed and rebuilt. Returns whether it was a hit.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, bool)> {
        let path = self.path_for(engine, wasm);
        if path.exists() {
            match load_trusted(engine, &path) {
                Ok(component) => {
                    // Mark it recently used for eviction.
                    if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                        let _ = file.set_modified(std::time::SystemTime::now());
                    }
                    return Ok((component, true));
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "corrupt compiled-component cache entry; rebuilding");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Ok(bytes) = component.serialize() {
            // Write to a unique temporary name, then rename: concurrent writers of the same
            // entry each produce a whole file and the last rename wins.
            let tmp = path.with_extension(format!(
                "tmp-{}-{}",
                std::process::id(),
                WRITE_SEQUENCE.fetch_add(1, Ordering::Relaxed)
            ));
            if std::fs::write(&tmp, &bytes).is_ok() && std::fs::rename(&tmp, &path).is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            self.evict();
        }
        Ok((component, false))
    }

    /// Removes least recently used entries until the directory fits its bound.
    fn evict(&self) {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = read
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == ENTRY_EXTENSION))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        if total <= self.max_bytes {
            return;
        }
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
            }
        }
    }
}

/// Loads a compiled component this cache wrote.
#[allow(unsafe_code)]
fn load_trusted(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: deserializing runs native code from the file. Only files this cache wrote
    // live under its directory (named by the sha256 of the source wasm and the engine's
    // compatibility hash); wasmtime also checks the header against the engine.
    unsafe { Component::deserialize_file(engine, path) }
}
