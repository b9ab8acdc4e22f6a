//! Secrets on the host side: where their values come from, which task may have which,
//! Tekton's secret workspaces, and masking of every known value in the run's logs.
//!
//! # Names
//!
//! A secret has a name and one or more keys, as a Tekton (Kubernetes) secret does. A task
//! asks for `NAME.KEY`, or for `NAME` alone when the secret has a single key. A secret
//! given without a key (`--secret gitlab-token=env:TOKEN`, or a string in `secrets.json`)
//! has the single key `token`, so `gitlab-token` and `gitlab-token.token` both name it.
//! The key is what follows the **last** `.`: `--secret my.app.token=...` is secret
//! `my.app`, key `token`.
//!
//! # Sources
//!
//! - The embedded store, `secrets.json` in weft's data directory: a JSON object whose
//!   values are either a string (a single-key secret) or an object of key -> string.
//!   weft creates it empty with mode 0600 when it is missing and warns when it is readable
//!   by others.
//! - `--secret NAME[.KEY]=env:VAR|file:PATH|literal:VALUE` on the command line (wins over
//!   the file).
//!
//! Values shorter than [`weft_runtime::masking::MIN_SECRET_CHARS`] characters cannot be
//! masked reliably: they are refused with a warning (the secret is left out).
//!
//! # Grants (default deny)
//!
//! Which plugin gets which secret is the grant builder's decision ([`crate::grants`]): a
//! task gets only the secrets its `secrets:` list names and those granted to it by name
//! (`--grant TASK=SECRET`, so an unmodified Tekton pipeline can be granted without
//! editing it). Anything else it asks for is refused with a log line naming the task and
//! the secret (the runtime's `not-granted`).
//!
//! # Secret workspaces
//!
//! `--workspace NAME=secret:SECRET` writes each key of `SECRET` as a file into a private
//! directory (mode 0700, files 0400, removed when the [`SecretMount`] is dropped) and binds
//! it read-only. Its values are masked in every task's log, like every secret value the run
//! knows ([`crate::mask`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weft_runtime::SecretValue;

/// The key a secret given without one has.
pub const DEFAULT_KEY: &str = "token";

/// The embedded store's file name, in the data directory.
pub const SECRETS_FILE: &str = "secrets.json";

/// Where a tenant's own secrets come from (the server decrypts them from its store).
pub trait TenantSecrets: Send + Sync {
    /// The secrets of `tenant`.
    fn secrets_of(&self, tenant: &str) -> Result<SecretStore, String>;
}

/// Secret values by name and key. `Debug` never shows values.
#[derive(Clone, Default)]
pub struct SecretStore {
    secrets: BTreeMap<String, BTreeMap<String, SecretValue>>,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .secrets
            .iter()
            .flat_map(|(name, keys)| keys.keys().map(move |key| format!("{name}.{key}")))
            .collect();
        f.debug_struct("SecretStore").field("keys", &names).finish()
    }
}

/// Splits `NAME.KEY` at the last `.`; no `.` is the [`DEFAULT_KEY`].
pub fn split_name(full: &str) -> (&str, &str) {
    match full.rsplit_once('.') {
        Some((name, key)) if !name.is_empty() && !key.is_empty() => (name, key),
        _ => (full, DEFAULT_KEY),
    }
}

impl SecretStore {
    /// An empty store.
    pub fn new() -> Self {
        SecretStore::default()
    }

    /// Adds (or replaces) `name.key`. Values too short to mask are refused: the error is
    /// the warning to show (it names the secret, never the value).
    pub fn insert(&mut self, name: &str, key: &str, value: String) -> Result<(), String> {
        let full = format!("{name}.{key}");
        let value = SecretValue::checked(&full, value).map_err(|e| format!("{e}; ignored"))?;
        self.secrets
            .entry(name.to_string())
            .or_default()
            .insert(key.to_string(), value);
        Ok(())
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The keys of secret `name`.
    pub fn keys(&self, name: &str) -> Option<&BTreeMap<String, SecretValue>> {
        self.secrets.get(name)
    }

    /// What a task asking for `requested` gets: `NAME` of a single-key secret, or
    /// `NAME.KEY`.
    pub fn resolve(&self, requested: &str) -> Option<SecretValue> {
        if let Some(keys) = self.secrets.get(requested)
            && keys.len() == 1
        {
            return keys.values().next().cloned();
        }
        let (name, key) = split_name(requested);
        self.secrets.get(name)?.get(key).cloned()
    }

    /// Every name a task may ask for, with its value: `NAME.KEY` for every key, and `NAME`
    /// for single-key secrets. This is what `RunOptions::secrets` takes.
    pub fn flatten(&self) -> BTreeMap<String, SecretValue> {
        let mut out = BTreeMap::new();
        for (name, keys) in &self.secrets {
            for (key, value) in keys {
                out.insert(format!("{name}.{key}"), value.clone());
            }
            if keys.len() == 1
                && let Some(value) = keys.values().next()
            {
                out.insert(name.clone(), value.clone());
            }
        }
        out
    }

    /// Every value, for masking.
    pub fn values(&self) -> impl Iterator<Item = &SecretValue> {
        self.secrets.values().flat_map(BTreeMap::values)
    }

    /// Every secret's name (without keys), sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.secrets.keys().map(String::as_str)
    }

    /// Keeps only the secrets `keep(NAME, KEY)` says yes to; returns those taken out.
    pub fn retain(&mut self, keep: impl Fn(&str, &str) -> bool) -> SecretStore {
        let mut removed = SecretStore::new();
        for (name, keys) in &mut self.secrets {
            let gone: Vec<String> = keys
                .keys()
                .filter(|key| !keep(name, key))
                .cloned()
                .collect();
            for key in gone {
                if let Some(value) = keys.remove(&key) {
                    removed
                        .secrets
                        .entry(name.clone())
                        .or_default()
                        .insert(key, value);
                }
            }
        }
        self.secrets.retain(|_, keys| !keys.is_empty());
        removed
    }

    /// Adds every key of `other` (e.g. a run's decorator secrets), replacing keys this
    /// store already has under the same names.
    pub fn extend(&mut self, other: &SecretStore) {
        for (name, keys) in &other.secrets {
            let entry = self.secrets.entry(name.clone()).or_default();
            for (key, value) in keys {
                entry.insert(key.clone(), value.clone());
            }
        }
    }

    /// Loads the embedded store from `dir/secrets.json`, creating it (empty, mode 0600)
    /// when missing. Returns the store and warnings (short values, loose permissions).
    pub fn load_file(dir: &Path) -> Result<(SecretStore, Vec<String>), String> {
        Self::ensure_file(dir)?;
        Self::read_file(dir)
    }

    /// Creates `dir/secrets.json` (empty, mode 0600) when it is missing.
    pub fn ensure_file(dir: &Path) -> Result<(), String> {
        let path = dir.join(SECRETS_FILE);
        if !path.exists() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            write_private(&path, b"{}\n")
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Reads `dir/secrets.json` without creating anything: a missing file holds no
    /// secrets. Returns the store and warnings (short values, loose permissions).
    pub fn read_file(dir: &Path) -> Result<(SecretStore, Vec<String>), String> {
        let path = dir.join(SECRETS_FILE);
        let mut warnings = Vec::new();
        if !path.exists() {
            return Ok((SecretStore::new(), warnings));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(&path)
                && meta.permissions().mode() & 0o077 != 0
            {
                warnings.push(format!(
                    "{} is readable by other users (mode {:o}); chmod 600 it",
                    path.display(),
                    meta.permissions().mode() & 0o777
                ));
            }
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        // Never echo the parser's message: it may quote the file's content.
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not valid JSON (line {}, column {})",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        let serde_json::Value::Object(entries) = doc else {
            return Err(format!(
                "{} must hold a JSON object of secrets",
                path.display()
            ));
        };
        let mut store = SecretStore::new();
        for (name, value) in entries {
            let keys: Vec<(String, String)> = match value {
                serde_json::Value::String(v) => vec![(DEFAULT_KEY.to_string(), v)],
                serde_json::Value::Object(keys) => {
                    let mut out = Vec::new();
                    for (key, v) in keys {
                        match v {
                            serde_json::Value::String(v) => out.push((key, v)),
                            _ => warnings.push(format!(
                                "{}: secret `{name}.{key}` is not a string; ignored",
                                path.display()
                            )),
                        }
                    }
                    out
                }
                _ => {
                    warnings.push(format!(
                        "{}: secret `{name}` must be a string or an object of strings; ignored",
                        path.display()
                    ));
                    continue;
                }
            };
            for (key, v) in keys {
                if let Err(warning) = store.insert(&name, &key, v) {
                    warnings.push(warning);
                }
            }
        }
        Ok((store, warnings))
    }
}

/// Writes `data` to a new file only its owner may read and write.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(data)
}

/// A secret's keys written as files in a private directory, removed on drop.
#[derive(Debug)]
pub struct SecretMount {
    dir: PathBuf,
}

impl SecretMount {
    /// Writes every key of `secret` from `store` into a new private directory under
    /// `parent` (the system temp dir when `None`).
    pub fn create(
        store: &SecretStore,
        secret: &str,
        parent: Option<&Path>,
    ) -> Result<SecretMount, String> {
        let keys = store
            .keys(secret)
            .ok_or_else(|| format!("no secret `{secret}` is defined"))?;
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let nonce = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            h.finish()
        };
        let dir = parent.join(format!("weft-secret-{}-{nonce:016x}", std::process::id()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mount = SecretMount { dir };
        for (key, value) in keys {
            if key.contains('/') || key.contains('\\') || key == "." || key == ".." {
                return Err(format!(
                    "secret `{secret}` has a key `{key}` that is not a file name"
                ));
            }
            let path = mount.dir.join(key);
            write_private(&path, value.expose().as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400));
            }
        }
        Ok(mount)
    }

    /// The directory to bind.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SecretMount {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %err, "cannot remove a secret workspace");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys() {
        assert_eq!(split_name("gitlab-token"), ("gitlab-token", "token"));
        assert_eq!(split_name("api.token"), ("api", "token"));
        assert_eq!(split_name("my.app.key"), ("my.app", "key"));
        let mut store = SecretStore::new();
        assert!(store.insert("single", "token", "abcdefgh1".into()).is_ok());
        assert!(store.insert("multi", "user", "user-name-1".into()).is_ok());
        assert!(store.insert("multi", "pass", "pass-word-1".into()).is_ok());
        assert_eq!(
            store.resolve("single").map(|v| v.expose().to_string()),
            Some("abcdefgh1".into())
        );
        assert!(store.resolve("single.token").is_some());
        assert!(store.resolve("multi").is_none(), "ambiguous without a key");
        assert!(store.resolve("multi.pass").is_some());
        let flat = store.flatten();
        assert!(flat.contains_key("single") && flat.contains_key("multi.user"));
        assert!(!flat.contains_key("multi"));
    }

    #[test]
    fn short_values_are_refused_without_the_value() {
        let mut store = SecretStore::new();
        let warning = store
            .insert("tiny", "token", "abc12".into())
            .expect_err("refused");
        assert!(warning.contains("tiny") && !warning.contains("abc12"));
        assert!(store.is_empty());
    }

    #[test]
    fn file_store_is_created_private_and_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, warnings) = SecretStore::load_file(dir.path()).expect("created");
        assert!(store.is_empty() && warnings.is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRETS_FILE))
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(
            dir.path().join(SECRETS_FILE),
            r#"{"gitlab-token": "glpat-0123456789", "db": {"user": "admin-user", "password": "short"}}"#,
        )
        .expect("write");
        let (store, warnings) = SecretStore::load_file(dir.path()).expect("read");
        assert!(store.resolve("gitlab-token").is_some());
        assert!(store.resolve("db.user").is_some());
        assert!(store.resolve("db.password").is_none());
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("db.password") && !w.contains("short\""))
        );
    }

    #[test]
    fn secret_mount_is_private_and_removed() {
        let mut store = SecretStore::new();
        store
            .insert("creds", "token", "tok-123456789".into())
            .expect("ok");
        let parent = tempfile::tempdir().expect("tempdir");
        let mount = SecretMount::create(&store, "creds", Some(parent.path())).expect("mount");
        let path = mount.path().to_path_buf();
        assert_eq!(
            std::fs::read_to_string(path.join("token")).expect("file"),
            "tok-123456789"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("dir").permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        drop(mount);
        assert!(!path.exists());
        assert!(SecretMount::create(&store, "missing", Some(parent.path())).is_err());
    }
}
