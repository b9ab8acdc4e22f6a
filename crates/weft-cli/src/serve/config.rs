//! `weft serve --config weft.toml`: the server's flags as a file an operator keeps in git,
//! and the tenants it serves. Keys are the flags' long names; a flag given on the command
//! line (or its environment variable) wins over the file. Unknown keys are errors with
//! their line and column, never ignored.
//!
//! ```toml
//! listen = "0.0.0.0:7878"
//! db = "postgres://weft@db/weft"
//! allow-http = ["api.github.com"]
//! task-slots = 8
//!
//! [tenants.acme]
//! weight = 2
//! [tenants.beta]
//! ```
//!
//! Each `[tenants.NAME]` is created at start-up when missing (audited as `config`). The
//! API token is better given by `WEFT_API_TOKEN` than written in a file kept in git.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use weft_store::TenantStore;

use crate::Failure;
use crate::cli::ServeArgs;

/// The file, as read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServeConfig {
    listen: Option<String>,
    api_token: Option<String>,
    insecure_no_auth: Option<bool>,
    identities: Option<PathBuf>,
    submit_secrets: Option<Vec<String>>,
    otlp_endpoint: Option<String>,
    max_matrix_combinations: Option<usize>,
    report_allow_http: Option<Vec<String>>,
    recover_timeout: Option<String>,
    workspace_snapshots: Option<String>,
    shutdown_grace: Option<String>,
    task_slots: Option<u32>,
    allow_http: Option<Vec<String>>,
    secret: Option<Vec<String>>,
    report_timeout: Option<String>,
    allow_registry: Option<Vec<String>>,
    data_dir: Option<PathBuf>,
    db: Option<PathBuf>,
    plugins: Option<Vec<PathBuf>>,
    cache_dir: Option<PathBuf>,
    secrets_key_file: Option<PathBuf>,
    secrets_old_key_file: Option<Vec<PathBuf>>,
    /// The tenants the server serves, created when missing.
    #[serde(default)]
    tenants: BTreeMap<String, TenantConfig>,
}

/// One tenant of the file: its settings.
pub type TenantConfig = crate::tenancy::settings::TenantSettings;

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads `path`: what is wrong says where (file, line, column, key).
pub fn load(path: &Path) -> Result<ServeConfig, Failure> {
    let size = std::fs::metadata(path)
        .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", path.display())))?
        .len();
    if size > MAX_CONFIG_BYTES {
        return Err(Failure::invalid(format!(
            "{}: {size} bytes, more than a configuration file's {MAX_CONFIG_BYTES}",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", path.display())))?;
    let config: ServeConfig = toml::from_str(&text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|span| line_column(&text, span.start))
            .unwrap_or((1, 1));
        // The parser's message, without its own rendering of the source (it may quote a
        // token): what is wrong, and where.
        Failure::invalid(format!(
            "{}:{line}:{column}: {}",
            path.display(),
            e.message().trim()
        ))
    })?;
    for (name, settings) in &config.tenants {
        if let Err(err) = settings.check() {
            return Err(Failure::invalid(format!(
                "{}: [tenants.{name}]: {err}",
                path.display()
            )));
        }
    }
    if let Some(bad) = config
        .tenants
        .keys()
        .find(|name| !weft_store::tenants::is_tenant_name(name))
    {
        return Err(Failure::invalid(format!(
            "{}: [tenants.{bad}]: a tenant's name is a DNS-1123 label (lowercase letters, digits, `-`) of at most {} characters",
            path.display(),
            weft_store::tenants::MAX_TENANT_CHARS
        )));
    }
    Ok(config)
}

/// The 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl ServeConfig {
    /// Fills `args` from the file where no flag (nor its environment variable) was given:
    /// `explicit` holds the ids of those that were.
    pub fn apply(&self, args: &mut ServeArgs, explicit: &BTreeSet<String>) {
        fn set<T: Clone>(field: &mut T, value: &Option<T>, id: &str, explicit: &BTreeSet<String>) {
            if let Some(value) = value
                && !explicit.contains(id)
            {
                *field = value.clone();
            }
        }
        fn set_opt<T: Clone>(
            field: &mut Option<T>,
            value: &Option<T>,
            id: &str,
            explicit: &BTreeSet<String>,
        ) {
            if value.is_some() && !explicit.contains(id) {
                field.clone_from(value);
            }
        }
        set(&mut args.listen, &self.listen, "listen", explicit);
        set_opt(&mut args.api_token, &self.api_token, "api_token", explicit);
        set(
            &mut args.insecure_no_auth,
            &self.insecure_no_auth,
            "insecure_no_auth",
            explicit,
        );
        set_opt(
            &mut args.identities,
            &self.identities,
            "identities",
            explicit,
        );
        set(
            &mut args.submit_secrets,
            &self.submit_secrets,
            "submit_secrets",
            explicit,
        );
        set_opt(
            &mut args.otlp_endpoint,
            &self.otlp_endpoint,
            "otlp_endpoint",
            explicit,
        );
        set(
            &mut args.max_matrix_combinations,
            &self.max_matrix_combinations,
            "max_matrix_combinations",
            explicit,
        );
        set(
            &mut args.report_allow_http,
            &self.report_allow_http,
            "report_allow_http",
            explicit,
        );
        set(
            &mut args.recover_timeout,
            &self.recover_timeout,
            "recover_timeout",
            explicit,
        );
        set_opt(
            &mut args.workspace_snapshots,
            &self.workspace_snapshots,
            "workspace_snapshots",
            explicit,
        );
        set(
            &mut args.shutdown_grace,
            &self.shutdown_grace,
            "shutdown_grace",
            explicit,
        );
        set_opt(
            &mut args.task_slots,
            &self.task_slots,
            "task_slots",
            explicit,
        );
        set(
            &mut args.allow_http,
            &self.allow_http,
            "allow_http",
            explicit,
        );
        set(&mut args.secrets, &self.secret, "secrets", explicit);
        set(
            &mut args.report_timeout,
            &self.report_timeout,
            "report_timeout",
            explicit,
        );
        set(
            &mut args.allow_registries,
            &self.allow_registry,
            "allow_registries",
            explicit,
        );
        set_opt(&mut args.data_dir, &self.data_dir, "data_dir", explicit);
        set_opt(&mut args.db, &self.db, "db", explicit);
        set(
            &mut args.plugins.plugin_dirs,
            &self.plugins,
            "plugin_dirs",
            explicit,
        );
        set_opt(
            &mut args.plugins.cache_dir,
            &self.cache_dir,
            "cache_dir",
            explicit,
        );
        set_opt(
            &mut args.secrets_key.key_file,
            &self.secrets_key_file,
            "key_file",
            explicit,
        );
        set(
            &mut args.secrets_key.old_key_files,
            &self.secrets_old_key_file,
            "old_key_files",
            explicit,
        );
    }

    /// Creates the file's tenants that the store does not have yet, and gives each the
    /// file's settings (the file is the operator's word: a change is audited).
    pub fn ensure_tenants(&self, store: &dyn TenantStore) -> Result<(), Failure> {
        let env = |e: weft_store::StoreError| Failure::environment(format!("run store: {e}"));
        let existing: BTreeMap<String, String> = store
            .tenants()
            .map_err(env)?
            .into_iter()
            .map(|t| (t.name, t.settings_json))
            .collect();
        for (name, settings) in &self.tenants {
            if !existing.contains_key(name) {
                match crate::tenancy::create_tenant(store, name, "config") {
                    // Another server sharing the store created it first.
                    Ok(_) | Err(crate::tenancy::TenancyError::Exists(_)) => {}
                    Err(err) => {
                        return Err(Failure::environment(format!(
                            "cannot create tenant {name}: {err}"
                        )));
                    }
                }
                eprintln!("weft serve: tenant {name} created (from the configuration file)");
            }
            let stored = settings.to_stored();
            if existing.get(name) != Some(&stored) {
                store.set_tenant_settings(name, &stored).map_err(env)?;
                crate::tenancy::record(
                    store,
                    name,
                    "config",
                    "tenant.settings",
                    name,
                    serde_json::from_str(&stored).unwrap_or_default(),
                )
                .map_err(|e| Failure::environment(e.to_string()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn read(text: &str) -> Result<ServeConfig, Failure> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weft.toml");
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    #[test]
    fn keys_are_the_flags_and_mistakes_say_where() {
        let config = read(
            "listen = \"0.0.0.0:9000\"\nallow-http = [\"api.github.com\"]\n\n[tenants.acme]\n[tenants.beta]\n",
        )
        .unwrap();
        assert_eq!(config.listen.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(config.tenants.len(), 2);
        let err = read("listen = \"x\"\nlisten-on = 1\n").unwrap_err();
        assert!(
            err.message.contains(":2:1:") && err.message.contains("listen-on"),
            "{}",
            err.message
        );
        let err = read("shutdown-grace = 30\n").unwrap_err();
        assert!(err.message.contains(":1:"), "{}", err.message);
        let err = read("[tenants.Bad_Name]\n").unwrap_err();
        assert!(err.message.contains("Bad_Name"), "{}", err.message);
        let err = read("[tenants.acme]\nquota = 3\n").unwrap_err();
        assert!(err.message.contains("quota"), "{}", err.message);
        let err = read("api-token = \"secret-token-123456\"\nnope = [\n").unwrap_err();
        assert!(!err.message.contains("secret-token"), "{}", err.message);
    }

    #[test]
    fn flags_given_win_over_the_file() {
        let config = read(
            "listen = \"0.0.0.0:9000\"\nshutdown-grace = \"5s\"\nallow-http = [\"a.example\"]\ntask-slots = 3\n",
        )
        .unwrap();
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let mut args = <Serve as clap::Parser>::parse_from(["serve"]).args;
        args.listen = "127.0.0.1:1".into();
        let explicit: BTreeSet<String> = ["listen".to_string()].into();
        config.apply(&mut args, &explicit);
        assert_eq!(args.listen, "127.0.0.1:1");
        assert_eq!(args.shutdown_grace, "5s");
        assert_eq!(args.allow_http, ["a.example"]);
        assert_eq!(args.task_slots, Some(3));
    }
}
