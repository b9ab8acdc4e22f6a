//! Durable values per (run, task, key), so that a re-run or a retry can skip work
//! already done.
//!
//! [`checkpoint`] is the usual entry point:
//!
//! ```no_run
//! use weft_sdk::checkpoint;
//!
//! let id = checkpoint("release-id", || -> Result<String, String> {
//!     // Runs only if no earlier attempt stored "release-id".
//!     Ok("r-123".to_string())
//! });
//! ```

use crate::bindings::weft::plugin::checkpoint as wit;
use std::fmt;

/// The stored value for `key`, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    wit::get(key)
}

/// The stored value for `key` as text, if any and if it is UTF-8.
pub fn get_string(key: &str) -> Option<String> {
    get(key).and_then(|v| String::from_utf8(v).ok())
}

/// Stores `value` under `key`. The host's error message comes back as the error.
pub fn put(key: &str, value: impl AsRef<[u8]>) -> Result<(), String> {
    wit::put(key, value.as_ref())
}

/// Returns the value stored under `key` if there is one; otherwise runs `work` and, if it
/// succeeds, stores its value under `key` and returns it.
///
/// A stored value that is not UTF-8 is treated as absent.
pub fn checkpoint<E, F>(key: &str, work: F) -> Result<String, CheckpointError<E>>
where
    F: FnOnce() -> Result<String, E>,
{
    if let Some(value) = get_string(key) {
        return Ok(value);
    }
    let value = work().map_err(CheckpointError::Work)?;
    put(key, &value).map_err(CheckpointError::Store)?;
    Ok(value)
}

/// Why [`checkpoint`] has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointError<E> {
    /// The work failed (nothing was stored).
    Work(E),
    /// The work succeeded but the host could not store its value.
    Store(String),
}

impl<E: fmt::Display> fmt::Display for CheckpointError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Work(e) => e.fmt(f),
            CheckpointError::Store(e) => write!(f, "could not store checkpoint: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for CheckpointError<E> {}
