//! Finding plugins by `taskRef.name`: built-in plugins first, then plugin directories in
//! the order given; a name `oci://HOST/NAME@sha256:...` is pulled from a registry (when
//! the process has one: [`PluginRegistry::set_oci`]) and verified against its digest
//! before it is compiled. Each plugin is loaded and described once per process.
//!
//! A tenant's own plugins (uploaded to `weft serve`, kept in its store by digest) are
//! found only through [`PluginRegistry::for_tenant`]: a view of the registry with the
//! tenant's names added after every first-party one, so one tenant's upload never
//! shadows a first-party plugin nor reaches another tenant.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use weft_core::PluginCatalog;
use weft_core::contract::PluginInfo;
use weft_runtime::{LoadError, Plugin, PluginKind, Runtime};

/// Why a plugin could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// No built-in and no file in the plugin directories has that name.
    #[error("no plugin named `{0}`")]
    NotFound(String),
    /// It exists but could not be loaded.
    #[error("{0}")]
    Load(String),
    /// Pulled from a registry, it did not match its digest: refused before compiling.
    #[error("{0}")]
    Integrity(String),
    /// It loaded but `describe()` failed.
    #[error("plugin `{name}` could not describe itself: {detail}")]
    Describe {
        /// Plugin name.
        name: String,
        /// What went wrong.
        detail: String,
    },
}

/// Where tenants' uploaded plugins come from (the server's store).
pub trait TenantPlugins: Send + Sync {
    /// The plugins of `tenant`: name -> digest (`sha256:<hex>`).
    fn plugins_of(&self, tenant: &str) -> Result<BTreeMap<String, String>, String>;
    /// The component whose digest is `digest`.
    fn bytes(&self, digest: &str) -> Result<Vec<u8>, String>;
}

/// Where a plugin's bytes come from.
#[derive(Debug, Clone)]
enum Source {
    Builtin(&'static [u8]),
    File(PathBuf),
    /// A tenant's upload, by digest.
    Stored(String),
}

/// A loaded plugin with its description.
#[derive(Debug, Clone)]
pub struct ResolvedPlugin {
    /// The loaded component.
    pub plugin: Plugin,
    /// What it said about itself.
    pub info: PluginInfo,
    /// For a form decorator, the JSON Schema (text) of its input; `None` for other kinds.
    pub input_schema: Option<String>,
}

/// The plugins one process can use. Cloning shares what was loaded.
#[derive(Clone)]
pub struct PluginRegistry {
    runtime: Runtime,
    sources: BTreeMap<String, Source>,
    /// Built-in plugins, then the directories added, in search order (for messages).
    builtins: usize,
    dirs: Vec<PathBuf>,
    /// Loaded plugins by [`PluginRegistry::cache_key`], shared by every view.
    resolved: Arc<Mutex<HashMap<String, Result<ResolvedPlugin, PluginError>>>>,
    /// Where `oci://` plugins are pulled from; `None`: such names are not found.
    oci: Option<weft_oci::Registry>,
    /// Where tenants' uploads come from; `None`: there are none.
    stored: Option<Arc<dyn TenantPlugins>>,
}

impl PluginRegistry {
    /// A registry with the given built-in plugins (name, component bytes).
    pub fn new(runtime: Runtime, builtins: &[(&str, &'static [u8])]) -> Self {
        let sources = builtins
            .iter()
            .map(|(name, bytes)| ((*name).to_string(), Source::Builtin(bytes)))
            .collect();
        PluginRegistry {
            runtime,
            sources,
            builtins: builtins.len(),
            dirs: Vec::new(),
            resolved: Arc::new(Mutex::new(HashMap::new())),
            oci: None,
            stored: None,
        }
    }

    /// Finds tenants' uploads through `source` ([`PluginRegistry::for_tenant`]).
    pub fn set_tenant_plugins(&mut self, source: Arc<dyn TenantPlugins>) {
        self.stored = Some(source);
    }

    /// The registry as `tenant` sees it: every first-party plugin, then the tenant's own
    /// uploads under their names (a name already taken keeps its first-party plugin).
    pub fn for_tenant(&self, tenant: &str) -> Result<std::borrow::Cow<'_, PluginRegistry>, String> {
        let Some(stored) = &self.stored else {
            return Ok(std::borrow::Cow::Borrowed(self));
        };
        let own = stored.plugins_of(tenant)?;
        if own.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(self));
        }
        let mut view = self.clone();
        for (name, digest) in own {
            view.sources.entry(name).or_insert(Source::Stored(digest));
        }
        Ok(std::borrow::Cow::Owned(view))
    }

    /// Whether `name` is a first-party plugin (built-in or in a plugin directory).
    pub fn is_first_party(&self, name: &str) -> bool {
        matches!(
            self.sources.get(name),
            Some(Source::Builtin(_) | Source::File(_))
        )
    }

    /// The key `name`'s loaded plugin is kept under: an upload by its digest too, so
    /// tenants' views sharing the cache never mix two uploads of one name.
    fn cache_key(&self, name: &str) -> String {
        match self.sources.get(name) {
            Some(Source::Stored(digest)) => format!("{name}@{digest}"),
            _ => name.to_string(),
        }
    }

    /// Adds every `*.wasm` in `dir`. Names already known (built-ins, earlier directories)
    /// keep their first source.
    pub fn add_dir(&mut self, dir: &Path) -> std::io::Result<()> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .collect();
        found.sort();
        self.dirs.push(dir.to_path_buf());
        for path in found {
            if let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) {
                self.sources.entry(stem).or_insert(Source::File(path));
            }
        }
        Ok(())
    }

    /// Pulls `oci://` plugins through `registry` (its policy says which registries).
    pub fn set_oci(&mut self, registry: weft_oci::Registry) {
        self.oci = Some(registry);
    }

    /// The runtime plugins are loaded into.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Every known plugin name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.sources.keys().cloned().collect()
    }

    /// Where plugins are looked for, in order, for people: the built-ins, then each
    /// directory added (`--plugins`).
    pub fn searched(&self) -> Vec<String> {
        let builtins = match self.builtins {
            0 => "the built-in plugins (none in this build)".to_string(),
            1 => "the 1 built-in plugin".to_string(),
            n => format!("the {n} built-in plugins"),
        };
        std::iter::once(builtins)
            .chain(self.dirs.iter().map(|dir| format!("`{}`", dir.display())))
            .collect()
    }

    /// How to make plugin `name` known, for people (a hint, starting in lower case).
    pub fn how_to_add(name: &str) -> String {
        format!(
            "put `{}.wasm` (a plugin is a `NAME.wasm` component) in a directory and pass it with `--plugins DIR` (repeatable, searched after the built-ins); `weft plugin list` shows every plugin weft finds",
            weft_core::diag::shown(name)
        )
    }

    /// Where `name` comes from, for people (`built-in` or the file path).
    pub fn origin(&self, name: &str) -> Option<String> {
        self.sources.get(name).map(|source| match source {
            Source::Builtin(_) => "built-in".to_string(),
            Source::File(path) => path.display().to_string(),
            Source::Stored(digest) => format!("uploaded ({digest})"),
        })
    }

    /// Loads and describes `name` (once; later calls reuse the result). A registry
    /// plugin that could not be had is tried again next time: a registry that was down,
    /// or served a tampered blob, must not keep a long-lived server from using it later.
    pub async fn resolve(&self, name: &str) -> Result<ResolvedPlugin, PluginError> {
        let key = self.cache_key(name);
        if let Some(done) = self.lock().get(&key) {
            return done.clone();
        }
        let result = self.load_and_describe(name).await;
        if result.is_ok() || !weft_core::plugin_ref::is_oci_name(name) {
            self.lock().insert(key, result.clone());
        }
        result
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Result<ResolvedPlugin, PluginError>>> {
        self.resolved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pulls (or reads from the cache) and verifies an `oci://` plugin.
    async fn pull(&self, name: &str) -> Result<Vec<u8>, PluginError> {
        let reference = weft_core::plugin_ref::OciRef::parse(name)
            .map_err(|e| PluginError::Load(e.to_string()))?;
        let Some(oci) = &self.oci else {
            return Err(PluginError::Load(format!(
                "`{reference}` names a registry, and this weft pulls no plugins from registries"
            )));
        };
        match oci.fetch_pinned(&reference).await {
            Ok(pulled) => Ok(pulled.component),
            Err(err) if err.is_integrity() => Err(PluginError::Integrity(err.to_string())),
            Err(err) => Err(PluginError::Load(format!(
                "cannot pull plugin `{reference}`: {err}"
            ))),
        }
    }

    async fn load_and_describe(&self, name: &str) -> Result<ResolvedPlugin, PluginError> {
        let loaded: Result<Plugin, LoadError> = if weft_core::plugin_ref::is_oci_name(name) {
            let component = self.pull(name).await?;
            self.runtime.load_bytes(name, &component)
        } else {
            let source = self
                .sources
                .get(name)
                .ok_or_else(|| PluginError::NotFound(name.to_string()))?;
            match source {
                Source::Builtin(bytes) => self.runtime.load_bytes(name, bytes),
                Source::File(path) => self.runtime.load_file(path),
                Source::Stored(digest) => {
                    let bytes = self
                        .stored
                        .as_ref()
                        .ok_or_else(|| PluginError::NotFound(name.to_string()))?
                        .bytes(digest)
                        .map_err(PluginError::Load)?;
                    // What the store gave back is what was uploaded, or nothing runs.
                    if weft_oci::sha256_digest(&bytes) != *digest {
                        return Err(PluginError::Integrity(format!(
                            "uploaded plugin `{name}` does not match its digest {digest}"
                        )));
                    }
                    self.runtime.load_bytes(name, &bytes)
                }
            }
        };
        let plugin = loaded.map_err(|e| PluginError::Load(e.to_string()))?;
        let failed = |report: weft_runtime::TaskReport| PluginError::Describe {
            name: name.to_string(),
            detail: format!("{:?}", report.ending),
        };
        let (info, input_schema) = if plugin.kind() == PluginKind::FormDecorator {
            let described = plugin.describe_decorator().await.map_err(failed)?;
            (described.info, Some(described.input_schema))
        } else {
            (plugin.describe().await.map_err(failed)?, None)
        };
        Ok(ResolvedPlugin {
            plugin,
            info,
            input_schema,
        })
    }
}

/// The plugins a pipeline uses, described, as validation sees them.
pub struct Catalog {
    /// Described plugins by name.
    pub described: BTreeMap<String, PluginInfo>,
    /// Every known name (for "did you mean").
    pub known: Vec<String>,
    /// Where plugins were looked for, in order ([`PluginRegistry::searched`]).
    pub searched: Vec<String>,
}

impl PluginCatalog for Catalog {
    fn lookup(&self, name: &str) -> Option<&PluginInfo> {
        self.described.get(name)
    }

    fn names(&self) -> Vec<&str> {
        self.known.iter().map(String::as_str).collect()
    }

    fn searched(&self) -> Vec<String> {
        self.searched.clone()
    }

    fn how_to_add(&self, name: &str) -> Option<String> {
        Some(PluginRegistry::how_to_add(name))
    }
}
