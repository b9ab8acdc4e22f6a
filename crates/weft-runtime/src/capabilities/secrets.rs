//! `weft:plugin/secrets`: default deny. Only names in the task's grants resolve; the
//! guest gets a handle and must `reveal` it; revealed values are masked in the task's log
//! (see [`crate::masking`]).
//!
//! Values shorter than [`MIN_SECRET_CHARS`] characters cannot be masked reliably. Build
//! grants with [`SecretValue::checked`] to refuse them up front; a short value that
//! reaches a task anyway (built with [`SecretValue::new`]) is **not granted**: `get`
//! answers `not-granted` and the task's log has a warning line naming the secret. It is
//! never revealed, so there is nothing to mask.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use zeroize::Zeroizing;

use super::log::{LogLevel, SharedOutput};
use crate::bindings::weft::plugin::secrets as wit;
use crate::masking::{MIN_SECRET_CHARS, check_secret};

/// A secret's value. Zeroized when the last copy is dropped; never printed by `Debug`.
#[derive(Clone)]
pub struct SecretValue(Arc<Zeroizing<String>>);

impl SecretValue {
    /// Wraps a value. A value shorter than [`MIN_SECRET_CHARS`] characters is accepted
    /// here but never granted to a task; prefer [`SecretValue::checked`].
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(Arc::new(Zeroizing::new(value.into())))
    }

    /// Wraps a value, refusing one shorter than [`MIN_SECRET_CHARS`] characters. `name`
    /// is only used in the error message (never the value).
    pub fn checked(name: &str, value: impl Into<String>) -> Result<Self, SecretError> {
        let value = Zeroizing::new(value.into());
        check_secret(&value).map_err(|short| SecretError::TooShort {
            name: name.to_string(),
            chars: short.chars,
        })?;
        Ok(SecretValue(Arc::new(value)))
    }

    /// Whether the value is long enough to be granted and masked.
    pub fn is_maskable(&self) -> bool {
        check_secret(self.expose()).is_ok()
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

/// Why a secret value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The value is too short to be masked in logs.
    #[error(
        "secret `{name}` is {chars} characters long; secrets must have at least {MIN_SECRET_CHARS} characters so they can be masked in logs"
    )]
    TooShort {
        /// The secret's name.
        name: String,
        /// Its length in characters.
        chars: usize,
    },
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
        if !value.is_maskable() {
            self.output.host_line(
                LogLevel::Warn,
                format!(
                    "secret `{name}` is shorter than {MIN_SECRET_CHARS} characters, so it cannot be masked in logs; it is not granted to this task"
                ),
            );
            tracing::warn!(secret = %name, "a granted secret is too short to mask; refused");
            return Ok(Err(wit::SecretError::NotGranted));
        }
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
        // Mask before the guest can print it. `get` only hands out maskable values; if
        // masking is refused anyway, so is the value.
        if self.output.add_mask(handle.value.expose()).is_err() {
            wasmtime::bail!(
                "secret `{}` cannot be masked; it is not revealed",
                handle.name
            );
        }
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
