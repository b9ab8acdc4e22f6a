//! Secrets, default deny: only names granted to this task resolve.
//!
//! ```no_run
//! match weft_sdk::secrets::get("registry-token") {
//!     Ok(secret) => {
//!         let token: String = secret.reveal(); // masked in the task's output from now on
//!         # let _ = token;
//!     }
//!     Err(e) => weft_sdk::log::warn!("{e}"), // e.g. not granted: an ordinary error
//! }
//! ```

use crate::bindings::weft::plugin::secrets as wit;
use std::fmt;

/// A granted secret. Its value stays in the host until [`reveal`](Secret::reveal) is
/// called; revealed values are masked in the task's output.
#[derive(Debug)]
pub struct Secret {
    name: String,
    handle: wit::Secret,
}

impl Secret {
    /// The name it was asked for by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Fetches the value from the host.
    pub fn reveal(&self) -> String {
        self.handle.reveal()
    }
}

/// Why a secret could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// This task was not granted the secret (whether or not it exists).
    NotGranted(String),
    /// The task was granted the name but no value is configured.
    NotFound(String),
}

impl SecretError {
    /// The secret's name.
    pub fn name(&self) -> &str {
        match self {
            SecretError::NotGranted(n) | SecretError::NotFound(n) => n,
        }
    }
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::NotGranted(n) => write!(f, "secret `{n}` is not granted to this task"),
            SecretError::NotFound(n) => write!(f, "secret `{n}` has no value configured"),
        }
    }
}

impl std::error::Error for SecretError {}

/// Gets a handle to the secret `name` (`NAME` or `NAME.KEY`).
pub fn get(name: &str) -> Result<Secret, SecretError> {
    match wit::get(name) {
        Ok(handle) => Ok(Secret {
            name: name.to_string(),
            handle,
        }),
        Err(wit::SecretError::NotGranted) => Err(SecretError::NotGranted(name.to_string())),
        Err(wit::SecretError::NotFound) => Err(SecretError::NotFound(name.to_string())),
    }
}

/// Gets the value of the secret `name` in one go.
pub fn reveal(name: &str) -> Result<String, SecretError> {
    get(name).map(|s| s.reveal())
}
