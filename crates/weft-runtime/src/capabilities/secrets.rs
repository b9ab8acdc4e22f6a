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

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::log::{LogLevel, SharedOutput};
use crate::masking::MIN_SECRET_CHARS;
use crate::secret::SecretHandle;
use crate::wit::since_v0_1_0::weft::plugin::secrets as wit;
use crate::wit::since_v0_2_0::weft::plugin::secrets as wit_v0_2;

pub use crate::secret::{SecretError, SecretValue};

/// The view the secrets interface works on.
pub struct SecretsView<'a> {
    pub(crate) granted: &'a BTreeMap<String, SecretValue>,
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) output: &'a SharedOutput,
}

/// Why `get` handed out no secret (the WIT `secret-error`, whichever version).
enum Refused {
    NotGranted,
}

impl SecretsView<'_> {
    /// `get`: a handle to a granted, maskable secret.
    fn get_handle(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<SecretHandle>, Refused>> {
        let Some(value) = self.granted.get(&name) else {
            // The name is the task's choice, not a secret; saying it helps the operator.
            self.output.host_line(
                LogLevel::Warn,
                format!("secret `{name}` was requested but is not granted to this task"),
            );
            tracing::warn!(secret = %name, "task asked for a secret it was not granted");
            return Ok(Err(Refused::NotGranted));
        };
        if !value.is_maskable() {
            self.output.host_line(
                LogLevel::Warn,
                format!(
                    "secret `{name}` is shorter than {MIN_SECRET_CHARS} characters, so it cannot be masked in logs; it is not granted to this task"
                ),
            );
            tracing::warn!(secret = %name, "a granted secret is too short to mask; refused");
            return Ok(Err(Refused::NotGranted));
        }
        let handle = SecretHandle {
            name,
            value: value.clone(),
        };
        Ok(Ok(self.table.push(handle)?))
    }

    fn handle_name(&mut self, secret: &Resource<SecretHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(secret)?.name.clone())
    }

    fn reveal_value(&mut self, secret: &Resource<SecretHandle>) -> wasmtime::Result<String> {
        let handle = self.table.get(secret)?;
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

    fn drop_handle(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<()> {
        self.table.delete(secret)?;
        Ok(())
    }
}

impl wit::Host for SecretsView<'_> {
    fn get(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<SecretHandle>, wit::SecretError>> {
        Ok(self
            .get_handle(name)?
            .map_err(|Refused::NotGranted| wit::SecretError::NotGranted))
    }
}

impl wit::HostSecret for SecretsView<'_> {
    fn name(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<String> {
        self.handle_name(&secret)
    }

    fn reveal(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<String> {
        self.reveal_value(&secret)
    }

    fn drop(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<()> {
        self.drop_handle(secret)
    }
}

impl wit_v0_2::Host for SecretsView<'_> {
    fn get(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<SecretHandle>, wit_v0_2::SecretError>> {
        Ok(self
            .get_handle(name)?
            .map_err(|Refused::NotGranted| wit_v0_2::SecretError::NotGranted))
    }
}

impl wit_v0_2::HostSecret for SecretsView<'_> {
    fn name(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<String> {
        self.handle_name(&secret)
    }

    fn reveal(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<String> {
        self.reveal_value(&secret)
    }

    fn drop(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<()> {
        self.drop_handle(secret)
    }
}

struct HasSecrets;

impl HasData for HasSecrets {
    type Data<'a> = SecretsView<'a>;
}

/// Adds `weft:plugin/secrets`, every served version, to `linker`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> SecretsView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSecrets>(linker, get)?;
    wit_v0_2::add_to_linker::<T, HasSecrets>(linker, get)
}
