//! Plugins in OCI registries: `weft plugin push` and `weft plugin pull`, and the pulls a
//! pipeline's `oci://...@sha256:...` plugins need.
//!
//! The artifact is the Wasm OCI layout wasm-pkg-tools (`wkg`) and wasmCloud use: an OCI
//! image manifest whose config is `application/vnd.wasm.config.v0+json` and whose one layer
//! is the component, `application/wasm`. A pull checks the manifest against the digest it
//! was asked for and the layer against the digest the manifest names, before anything
//! reads the component; verified artifacts are cached on disk by digest and checked again
//! when read back.
//!
//! Which registries may be used, and over which scheme, is `weft_core::plugin_ref`'s
//! decision ([`RegistryPolicy`]); credentials come from a Docker config file (`auth.rs`)
//! and are never logged.

mod auth;
mod cache;
mod client;
mod config;

pub use auth::Credentials;
pub use client::{Pulled, Pushed, Registry, RegistryOptions};
pub use weft_core::plugin_ref::{OciRef, RegistryPolicy, RegistryRefusal};

/// Media type of the manifest's config: the Wasm OCI artifact's.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of the layer holding the component.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Media type of the manifest.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The largest component pulled (bigger layers are refused before they are fetched).
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// Why a push or a pull did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The reference may not be used here (not pinned, not allowed).
    #[error(transparent)]
    Refused(#[from] RegistryRefusal),
    /// What arrived is not what the digest says: nothing was used.
    #[error(
        "{what} of `{reference}` does not match its digest: expected {expected}, got {actual}; it was refused and not used"
    )]
    Integrity {
        /// The reference pulled.
        reference: String,
        /// `the manifest` or `the component`.
        what: &'static str,
        /// The digest it must have.
        expected: String,
        /// The digest it has.
        actual: String,
    },
    /// The artifact is not a single Wasm component.
    #[error("`{reference}` is not a Wasm component artifact: {detail}")]
    NotWasm {
        /// The reference.
        reference: String,
        /// What is wrong.
        detail: String,
    },
    /// The registry or the network failed (not found, unauthorized, unreachable).
    #[error("registry `{registry}`: {detail}")]
    Registry {
        /// `host[:port]`.
        registry: String,
        /// What happened.
        detail: String,
    },
    /// A local file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The command line or the file is wrong (not a component, no tag to push to).
    #[error("{0}")]
    Invalid(String),
}

impl OciError {
    /// True when what arrived did not match its digest.
    pub fn is_integrity(&self) -> bool {
        matches!(self, OciError::Integrity { .. })
    }
}

/// `sha256:` and the hex sha256 of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
