//! `weft:plugin/secrets`: default deny. Only names in the task's grants resolve; the
//! guest gets a handle and must `reveal` it; revealed values are masked in the task's log.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use zeroize::Zeroizing;

use super::log::{LogLevel, SharedOutput};
use crate::bindings::weft::plugin::secrets as wit;

/// A secret's value. Zeroized when the last copy is dropped; never printed by `Debug`.
#[derive(Clone)]
pub struct SecretValue(Arc<Zeroizing<String>>);

impl SecretValue {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(Arc::new(Zeroizing::new(value.into())))
    }

    /// The value in clear. Callers must not log it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

/// What a guest's secret handle points at.
pub struct SecretHandle {
    name: String,
    value: SecretValue,
}

/// The view the secrets interface works on.
pub struct SecretsView<'a> {
    pub(crate) granted: &'a BTreeMap<String, SecretValue>,
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) output: &'a SharedOutput,
}

impl wit::Host for SecretsView<'_> {
    fn get(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<SecretHandle>, wit::SecretError>> {
        let Some(value) = self.granted.get(&name) else {
            // The name is the task's choice, not a secret; saying it helps the operator.
            self.output.host_line(
                LogLevel::Warn,
                format!("secret `{name}` was requested but is not granted to this task"),
            );
            tracing::warn!(secret = %name, "task asked for a secret it was not granted");
            return Ok(Err(wit::SecretError::NotGranted));
        };
        let handle = SecretHandle {
            name,
            value: value.clone(),
        };
        Ok(Ok(self.table.push(handle)?))
    }
}

impl wit::HostSecret for SecretsView<'_> {
    fn name(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(&secret)?.name.clone())
    }

    fn reveal(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<String> {
        let handle = self.table.get(&secret)?;
        // Mask before the guest can print it.
        self.output.add_mask(handle.value.expose());
        Ok(handle.value.expose().to_string())
    }

    fn drop(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<()> {
        self.table.delete(secret)?;
        Ok(())
    }
}

struct HasSecrets;

impl HasData for HasSecrets {
    type Data<'a> = SecretsView<'a>;
}

/// Adds `weft:plugin/secrets` to `linker`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> SecretsView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSecrets>(linker, get)
}
