//! A secret's value ([`SecretValue`], zeroized, never printed) and the host side of a
//! guest's handle to one ([`SecretHandle`]): plain types that the grants, the generated
//! bindings (which map the WIT resource to [`SecretHandle`]) and the secrets capability
//! all share.

use std::sync::Arc;

use zeroize::Zeroizing;

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

/// What a guest's secret handle points at: the host type of the WIT resource
/// `weft:plugin/secrets.secret` (the bindings map the resource to it).
pub struct SecretHandle {
    pub(crate) name: String,
    pub(crate) value: SecretValue,
}
