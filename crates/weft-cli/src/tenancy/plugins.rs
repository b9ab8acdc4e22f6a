//! Tenants' own plugins: a component uploaded by a tenant's admin (`POST /api/v1/plugins`,
//! `weft plugin push FILE --tenant T`) is checked before anything keeps it (a real
//! component of a supported contract version, a task or a gate, importing nothing the
//! tenant could never be granted), then kept once by its SHA-256 and named within the
//! tenant. Only that tenant's runs find it by name ([`weft_engine::runs::PluginRegistry::
//! for_tenant`]); a first-party plugin's name cannot be taken.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use weft_engine::runs::{PluginRegistry, TenantPlugins};
use weft_runtime::PluginKind;
use weft_store::{TenantPluginRecord, TenantStore, Timestamp};

use super::TenancyError;
use super::settings::TenantSettings;

/// Largest component a tenant may upload.
pub const MAX_PLUGIN_BYTES: usize = 32 << 20;

/// Most plugins one tenant may keep.
const MAX_PLUGINS_PER_TENANT: usize = 200;

/// Tenants' uploads for the engine's registry, read from the store.
pub struct StoredPlugins {
    /// The store.
    pub store: Arc<dyn TenantStore>,
}

impl TenantPlugins for StoredPlugins {
    fn plugins_of(&self, tenant: &str) -> Result<BTreeMap<String, String>, String> {
        Ok(self
            .store
            .tenant_plugins(Some(tenant))
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|p| (p.name, p.digest))
            .collect())
    }

    fn bytes(&self, digest: &str) -> Result<Vec<u8>, String> {
        self.store
            .plugin_bytes(digest)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no uploaded plugin {digest}"))
    }
}

/// Whether `name` can name an uploaded plugin: lowercase letters, digits and `-`.
fn check_name(name: &str) -> Result<(), TenancyError> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.starts_with('-')
        || name.ends_with('-')
    {
        return Err(TenancyError::Invalid(format!(
            "`{name}` cannot name a plugin: lowercase letters, digits and `-`, at most 63 characters"
        )));
    }
    Ok(())
}

/// Checks `bytes` and keeps them as `tenant`'s plugin `name`, as `actor` (audited).
pub fn upload(
    store: &dyn TenantStore,
    registry: &PluginRegistry,
    tenant: &str,
    name: &str,
    bytes: &[u8],
    actor: &str,
) -> Result<TenantPluginRecord, TenancyError> {
    check_name(name)?;
    if registry.is_first_party(name) {
        return Err(TenancyError::Exists(format!(
            "`{name}` is a first-party plugin every tenant uses: pick another name"
        )));
    }
    if bytes.is_empty() || bytes.len() > MAX_PLUGIN_BYTES {
        return Err(TenancyError::Invalid(format!(
            "a plugin is a component of 1 byte to {} MiB; this one is {} bytes",
            MAX_PLUGIN_BYTES >> 20,
            bytes.len()
        )));
    }
    let settings = store
        .tenants()?
        .into_iter()
        .find(|t| t.name == tenant)
        .ok_or_else(|| TenancyError::NotFound(format!("no tenant `{tenant}`")))
        .and_then(|t| TenantSettings::from_stored(&t.settings_json).map_err(TenancyError::Store))?;
    // Loading checks that it is a component of a contract version this weft speaks, and
    // compiles it into the cache once.
    let plugin = registry
        .runtime()
        .load_bytes(name, bytes)
        .map_err(|e| TenancyError::Invalid(format!("not a weft plugin: {e}")))?;
    let kind = plugin.kind();
    if !(kind.is_task() || kind == PluginKind::Gate) {
        return Err(TenancyError::Invalid(format!(
            "`{name}` is a {}: a tenant uploads tasks and gates",
            kind.as_str()
        )));
    }
    // A capability the tenant can never be granted would only fail every run later.
    let may_reach = tenant == weft_store::DEFAULT_TENANT
        || settings
            .egress
            .as_ref()
            .is_some_and(|rules| !rules.is_empty());
    if let Some(http) = plugin
        .imports()
        .iter()
        .find(|import| import.starts_with("wasi:http/"))
        .filter(|_| !may_reach)
    {
        return Err(TenancyError::Invalid(format!(
            "`{name}` imports `{http}`, and tenant {tenant} may reach no host (no egress allow-list): ask the operator for one, or build the plugin without outbound HTTP"
        )));
    }
    if let Some(mib) = settings.stored_mib {
        let kept = store.stored_bytes(tenant)?;
        if kept.saturating_add(bytes.len() as u64) > mib.saturating_mul(1 << 20) {
            return Err(TenancyError::Quota(format!(
                "tenant {tenant}'s quota stored-mib ({mib}) would be passed: it keeps {} MiB, and this plugin is {} bytes",
                kept.div_ceil(1 << 20),
                bytes.len()
            )));
        }
    }
    let existing = store.tenant_plugins(Some(tenant))?;
    if existing.len() >= MAX_PLUGINS_PER_TENANT && !existing.iter().any(|p| p.name == name) {
        return Err(TenancyError::Invalid(format!(
            "tenant {tenant} keeps {MAX_PLUGINS_PER_TENANT} plugins already: delete one first"
        )));
    }
    let record = TenantPluginRecord {
        tenant: tenant.to_string(),
        name: name.to_string(),
        digest: weft_oci::sha256_digest(bytes),
        kind: kind.as_str().to_string(),
        size: bytes.len() as u64,
        uploaded_at: Timestamp::now(),
    };
    store.put_plugin(&record, bytes)?;
    super::record(
        store,
        tenant,
        actor,
        "plugin.upload",
        name,
        json!({"digest": record.digest, "size": record.size, "kind": record.kind}),
    )?;
    Ok(record)
}

/// Forgets `tenant`'s plugin `name`, as `actor`.
pub fn delete(
    store: &dyn TenantStore,
    tenant: &str,
    name: &str,
    actor: &str,
) -> Result<(), TenancyError> {
    if !store.delete_plugin(tenant, name)? {
        return Err(TenancyError::NotFound(format!(
            "no uploaded plugin `{name}`"
        )));
    }
    super::record(store, tenant, actor, "plugin.delete", name, json!({}))?;
    Ok(())
}

/// An uploaded plugin as listed.
pub fn listed(record: &TenantPluginRecord) -> serde_json::Value {
    json!({
        "name": record.name,
        "digest": record.digest,
        "kind": record.kind,
        "size": record.size,
        "uploadedAt": record.uploaded_at.millis(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_dns_labels() {
        for good in ["tool", "my-tool-2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Tool",
            "-x",
            "x-",
            "a_b",
            "a/b",
            "../x",
            &"x".repeat(64),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
