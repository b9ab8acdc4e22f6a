//! Pushing and pulling components: one [`Registry`] per process, holding the policy, the
//! credentials and the cache.

use std::path::PathBuf;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciImageManifest;
use oci_client::{Client, Reference};
use weft_core::plugin_ref::Scheme;

use crate::cache::BlobCache;
use crate::config::{WasmConfig, is_component};
use crate::{
    Credentials, MAX_COMPONENT_BYTES, OCI_MANIFEST_MEDIA_TYPE, OciError, OciRef, RegistryPolicy,
    WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, sha256_digest,
};

/// How a process talks to registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Which registries, over which scheme.
    pub policy: RegistryPolicy,
    /// Credentials per registry.
    pub credentials: Credentials,
    /// Where verified artifacts are kept by digest; `None`: not kept.
    pub cache_dir: Option<PathBuf>,
}

/// A component pulled and verified.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference, pinned to the manifest's digest.
    pub pinned: OciRef,
    /// The component's own digest (the layer's).
    pub layer_digest: String,
    /// The component.
    pub component: Vec<u8>,
}

/// What a push stored.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The reference pinned to the manifest's digest, for pipelines and lock files.
    pub pinned: OciRef,
    /// The component's digest (the layer's).
    pub layer_digest: String,
}

/// Pushes and pulls under one policy.
#[derive(Debug, Clone)]
pub struct Registry {
    options: RegistryOptions,
    cache: Option<BlobCache>,
}

impl Registry {
    /// A registry client with `options`.
    pub fn new(options: RegistryOptions) -> Self {
        // reqwest is built without a compiled-in TLS provider: use ring, as the rest of
        // weft does (an already installed one is kept).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cache = options.cache_dir.as_deref().map(BlobCache::new);
        Registry { options, cache }
    }

    /// The policy in force.
    pub fn policy(&self) -> &RegistryPolicy {
        &self.options.policy
    }

    fn client(&self, reference: &OciRef, scheme: Scheme) -> Client {
        let protocol = match scheme {
            Scheme::Https => ClientProtocol::Https,
            Scheme::Http => ClientProtocol::HttpsExcept(vec![reference.registry.clone()]),
        };
        Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            ..ClientConfig::default()
        })
    }

    fn reference(reference: &OciRef) -> Reference {
        match (&reference.tag, &reference.digest) {
            (_, Some(digest)) => Reference::with_digest(
                reference.registry.clone(),
                reference.repository.clone(),
                digest.clone(),
            ),
            (Some(tag), None) => Reference::with_tag(
                reference.registry.clone(),
                reference.repository.clone(),
                tag.clone(),
            ),
            (None, None) => Reference::with_tag(
                reference.registry.clone(),
                reference.repository.clone(),
                "latest".to_string(),
            ),
        }
    }

    /// Pushes `component` to `reference` (which names a tag) as a Wasm OCI artifact.
    pub async fn push(&self, component: Vec<u8>, reference: &OciRef) -> Result<Pushed, OciError> {
        if reference.digest.is_some() {
            return Err(OciError::Invalid(format!(
                "`{reference}` names a digest; push to a tag (`oci://HOST/NAME:TAG`), the digest is the registry's answer"
            )));
        }
        if !is_component(&component) {
            return Err(OciError::Invalid(
                "the file is not a WebAssembly component (plugins are components: `cargo build --target wasm32-wasip2`, `weft plugin build`)".to_string(),
            ));
        }
        let scheme = self.options.policy.check(reference)?;
        let layer_digest = sha256_digest(&component);
        let config = serde_json::to_vec(&WasmConfig::of(&component, layer_digest.clone()))
            .map_err(|e| OciError::Io(format!("cannot write the artifact's config: {e}")))?;
        let layers = vec![ImageLayer {
            data: component.into(),
            media_type: WASM_LAYER_MEDIA_TYPE.to_string(),
            annotations: None,
        }];
        let config = Config {
            data: config.into(),
            media_type: WASM_CONFIG_MEDIA_TYPE.to_string(),
            annotations: None,
        };
        let mut manifest = OciImageManifest::build(&layers, &config, None);
        manifest.media_type = Some(OCI_MANIFEST_MEDIA_TYPE.to_string());
        let client = self.client(reference, scheme);
        let target = Self::reference(reference);
        let auth = self.options.credentials.for_registry(&reference.registry);
        let failed = |e: OciDistributionError| registry_error(reference, e);
        client
            .push(&target, &layers, config, &auth, Some(manifest))
            .await
            .map_err(failed)?;
        let digest = client
            .fetch_manifest_digest(&target, &auth)
            .await
            .map_err(failed)?;
        weft_core::plugin_ref::check_digest(&digest).map_err(|detail| OciError::Registry {
            registry: reference.registry.clone(),
            detail: format!(
                "the registry answered the push with a digest weft cannot use: {detail}"
            ),
        })?;
        Ok(Pushed {
            pinned: reference.pinned(&digest),
            layer_digest,
        })
    }

    /// Pulls the component `reference` names (a tag or a digest), verified. For a
    /// pipeline's plugin use [`Registry::fetch_pinned`].
    pub async fn pull(&self, reference: &OciRef) -> Result<Pulled, OciError> {
        let scheme = self.options.policy.check(reference)?;
        self.pull_checked(reference, scheme).await
    }

    /// The component a digest-pinned `reference` names: from the cache when it is there
    /// and intact, else pulled; verified either way.
    pub async fn fetch_pinned(&self, reference: &OciRef) -> Result<Pulled, OciError> {
        let scheme = self.options.policy.check_pinned(reference)?;
        if let Some(pulled) = self.cached(reference) {
            return Ok(pulled);
        }
        self.pull_checked(reference, scheme).await
    }

    fn cached(&self, reference: &OciRef) -> Option<Pulled> {
        let cache = self.cache.as_ref()?;
        let digest = reference.digest.as_deref()?;
        let manifest = cache.get(digest)?;
        let layer = wasm_layer(reference, &manifest).ok()?;
        let component = cache.get(&layer.digest)?;
        Some(Pulled {
            pinned: reference.clone(),
            layer_digest: layer.digest,
            component,
        })
    }

    async fn pull_checked(&self, reference: &OciRef, scheme: Scheme) -> Result<Pulled, OciError> {
        let client = self.client(reference, scheme);
        let target = Self::reference(reference);
        let auth = self.options.credentials.for_registry(&reference.registry);
        let failed = |e: OciDistributionError| registry_error(reference, e);
        let (manifest, _) = client
            .pull_manifest_raw(&target, &auth, &[OCI_MANIFEST_MEDIA_TYPE])
            .await
            .map_err(failed)?;
        let manifest_digest = sha256_digest(&manifest);
        if let Some(expected) = &reference.digest
            && *expected != manifest_digest
        {
            return Err(OciError::Integrity {
                reference: reference.to_string(),
                what: "the manifest",
                expected: expected.clone(),
                actual: manifest_digest,
            });
        }
        let layer = wasm_layer(reference, &manifest)?;
        let limit = usize::try_from(layer.size).unwrap_or(usize::MAX);
        let mut capped = Capped::new(limit);
        client
            .pull_blob(&target, &layer, &mut capped)
            .await
            .map_err(|e| match e {
                OciDistributionError::IoError(_) if capped.overflowed => OciError::Integrity {
                    reference: reference.to_string(),
                    what: "the component",
                    expected: format!("{} ({limit} bytes)", layer.digest),
                    actual: "more bytes than the manifest says".to_string(),
                },
                other => failed(other),
            })?;
        let component = capped.bytes;
        let actual = sha256_digest(&component);
        if actual != layer.digest {
            return Err(OciError::Integrity {
                reference: reference.to_string(),
                what: "the component",
                expected: layer.digest,
                actual,
            });
        }
        if let Some(cache) = &self.cache {
            cache.put(&manifest_digest, &manifest);
            cache.put(&layer.digest, &component);
        }
        Ok(Pulled {
            pinned: reference.pinned(&manifest_digest),
            layer_digest: layer.digest,
            component,
        })
    }
}

/// The manifest's one `application/wasm` layer, checked to be a Wasm artifact.
fn wasm_layer(
    reference: &OciRef,
    manifest: &[u8],
) -> Result<oci_client::manifest::OciDescriptor, OciError> {
    let not_wasm = |detail: String| OciError::NotWasm {
        reference: reference.to_string(),
        detail,
    };
    let manifest: OciImageManifest = serde_json::from_slice(manifest)
        .map_err(|e| not_wasm(format!("its manifest is not an OCI image manifest ({e})")))?;
    if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(not_wasm(format!(
            "its config is `{}`, not `{WASM_CONFIG_MEDIA_TYPE}`",
            weft_core::diag::shown(&manifest.config.media_type)
        )));
    }
    let [layer] = manifest.layers.as_slice() else {
        return Err(not_wasm(format!(
            "it has {} layers; a component artifact has one",
            manifest.layers.len()
        )));
    };
    if layer.media_type != WASM_LAYER_MEDIA_TYPE {
        return Err(not_wasm(format!(
            "its layer is `{}`, not `{WASM_LAYER_MEDIA_TYPE}`",
            weft_core::diag::shown(&layer.media_type)
        )));
    }
    if weft_core::plugin_ref::check_digest(&layer.digest).is_err() {
        return Err(not_wasm("its layer's digest is not a sha256 digest".into()));
    }
    if u64::try_from(layer.size).map_or(true, |size| size > MAX_COMPONENT_BYTES) {
        return Err(not_wasm(format!(
            "its layer is {} bytes; components are limited to {MAX_COMPONENT_BYTES}",
            layer.size
        )));
    }
    Ok(layer.clone())
}

fn registry_error(reference: &OciRef, error: OciDistributionError) -> OciError {
    match error {
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => OciError::Integrity {
            reference: reference.to_string(),
            what: "the component",
            expected,
            actual,
        },
        other => OciError::Registry {
            registry: reference.registry.clone(),
            detail: other.to_string(),
        },
    }
}

/// A buffer that refuses to grow past the size the manifest gave.
struct Capped {
    bytes: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl Capped {
    fn new(limit: usize) -> Self {
        Capped {
            bytes: Vec::new(),
            limit,
            overflowed: false,
        }
    }
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.bytes.len().saturating_add(buf.len()) > self.limit {
            self.overflowed = true;
            return std::task::Poll::Ready(Err(std::io::Error::other(
                "the blob is larger than its manifest says",
            )));
        }
        self.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(config: &str, layers: &[(&str, &str, i64)]) -> Vec<u8> {
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|(media, digest, size)| {
                serde_json::json!({"mediaType": media, "digest": digest, "size": size})
            })
            .collect();
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": config, "digest": sha256_digest(b"{}"), "size": 2},
            "layers": layers,
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn only_single_component_artifacts_are_accepted() {
        let reference = OciRef::parse("oci://127.0.0.1:5000/a/b:1").expect("parses");
        let digest = sha256_digest(b"component");
        let ok = manifest(
            WASM_CONFIG_MEDIA_TYPE,
            &[(WASM_LAYER_MEDIA_TYPE, &digest, 9)],
        );
        assert_eq!(
            wasm_layer(&reference, &ok).expect("accepted").digest,
            digest
        );
        let table: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), "not an OCI image manifest"),
            (
                manifest(
                    "application/vnd.oci.image.config.v1+json",
                    &[(WASM_LAYER_MEDIA_TYPE, &digest, 9)],
                ),
                "its config is",
            ),
            (manifest(WASM_CONFIG_MEDIA_TYPE, &[]), "0 layers"),
            (
                manifest(
                    WASM_CONFIG_MEDIA_TYPE,
                    &[
                        (WASM_LAYER_MEDIA_TYPE, &digest, 9),
                        (WASM_LAYER_MEDIA_TYPE, &digest, 9),
                    ],
                ),
                "2 layers",
            ),
            (
                manifest(
                    WASM_CONFIG_MEDIA_TYPE,
                    &[("application/vnd.oci.image.layer.v1.tar", &digest, 9)],
                ),
                "its layer is",
            ),
            (
                manifest(
                    WASM_CONFIG_MEDIA_TYPE,
                    &[(WASM_LAYER_MEDIA_TYPE, "sha256:../../x", 9)],
                ),
                "not a sha256 digest",
            ),
            (
                manifest(
                    WASM_CONFIG_MEDIA_TYPE,
                    &[(WASM_LAYER_MEDIA_TYPE, &digest, 1 << 40)],
                ),
                "limited to",
            ),
            (
                manifest(
                    WASM_CONFIG_MEDIA_TYPE,
                    &[(WASM_LAYER_MEDIA_TYPE, &digest, -1)],
                ),
                "limited to",
            ),
        ];
        for (bytes, needle) in table {
            let err = wasm_layer(&reference, &bytes)
                .expect_err(needle)
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
