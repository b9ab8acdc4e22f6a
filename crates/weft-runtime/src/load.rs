//! Loading a component: sanity checks on the bytes, compile (through the cache), then
//! what it exports (its contract and WIT version) and what it imports.

use std::sync::Arc;

use wasmtime::component::Component;

use crate::Runtime;
use crate::grants::{InterfaceClass, classify, split_version};
use crate::plugin::{Plugin, PluginInner, PluginKind};
use crate::wit::{self, WIT_VERSION};

/// Largest component weft accepts.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Larger than [`MAX_COMPONENT_BYTES`].
    #[error("plugin `{name}` is {size} bytes; the limit is {MAX_COMPONENT_BYTES} bytes")]
    TooLarge {
        /// Plugin name.
        name: String,
        /// Its size.
        size: usize,
    },
    /// Not WebAssembly, a core module, or truncated/corrupt.
    #[error("plugin `{name}` is not a valid WebAssembly component: {detail}")]
    Invalid {
        /// Plugin name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// Built against a `weft:plugin` version this host cannot serve.
    #[error(
        "plugin `{name}` was built for weft:plugin@{found}, but this host serves weft:plugin@{WIT_VERSION} (compatible: {compatible}); rebuild it with a matching weft-sdk"
    )]
    UnsupportedWitVersion {
        /// Plugin name.
        name: String,
        /// The version it was built for.
        found: String,
        /// Human description of what is accepted.
        compatible: &'static str,
    },
    /// Exports none of weft's plugin contracts nor `wasi:cli/run`.
    #[error(
        "plugin `{name}` exports none of `weft:plugin/task-plugin`, `weft:plugin/reporter-plugin`, `weft:plugin/form-decorator-plugin`, `weft:plugin/gate-plugin` or `wasi:cli/run` (it exports: {exports})"
    )]
    NotATask {
        /// Plugin name.
        name: String,
        /// What it exports.
        exports: String,
    },
    /// Imports an interface weft never provides.
    #[error("plugin `{name}` imports `{import}`, which weft does not provide{hint}")]
    UnknownImport {
        /// Plugin name.
        name: String,
        /// The import.
        import: String,
        /// Extra advice.
        hint: &'static str,
    },
    /// The linker rejected it (type mismatch on a known interface).
    #[error("plugin `{name}` cannot be linked: {detail}")]
    Link {
        /// Plugin name.
        name: String,
        /// The linker's message.
        detail: String,
    },
}

/// Checks the header before handing bytes to the compiler, for clearer messages.
fn check_header(name: &str, bytes: &[u8]) -> Result<(), LoadError> {
    let invalid = |detail: &str| LoadError::Invalid {
        name: name.to_string(),
        detail: detail.to_string(),
    };
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(LoadError::TooLarge {
            name: name.to_string(),
            size: bytes.len(),
        });
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        if bytes.starts_with(b"(component") || bytes.starts_with(b"(module") {
            return Ok(()); // WAT text, accepted for tests and experiments
        }
        return Err(invalid(
            "the file does not start with the WebAssembly magic bytes",
        ));
    }
    match bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(invalid(
            "it is a core WebAssembly module, not a component; build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)",
        )),
        _ => Err(invalid("unknown WebAssembly version or layer")),
    }
}

pub(crate) fn load(runtime: &Runtime, name: &str, bytes: &[u8]) -> Result<Plugin, LoadError> {
    check_header(name, bytes)?;
    let compiled = match runtime.cache() {
        Some(cache) => cache
            .load_or_compile(runtime.engine(), bytes)
            .map(|(c, _)| c),
        None => Component::new(runtime.engine(), bytes),
    };
    let component = compiled.map_err(|err| LoadError::Invalid {
        name: name.to_string(),
        detail: format!("{err:#}"),
    })?;
    let ty = component.component_type();
    let engine = runtime.engine();

    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let mut kind = None;
    let mut wit_version = None;
    for export in &exports {
        let (interface, version) = split_version(export);
        let weft_kind = match interface {
            "weft:plugin/task-plugin" => Some(PluginKind::Task),
            "weft:plugin/reporter-plugin" => Some(PluginKind::Reporter),
            "weft:plugin/form-decorator-plugin" => Some(PluginKind::FormDecorator),
            "weft:plugin/gate-plugin" => Some(PluginKind::Gate),
            _ => None,
        };
        if let Some(weft_kind) = weft_kind {
            let found = version.unwrap_or("unversioned");
            let parsed = semver::Version::parse(found).ok();
            match parsed {
                // Gates came with 0.2.0: 0.1 has no `gate-plugin`, so a component claiming
                // one is not a 0.1 plugin of any kind.
                Some(v)
                    if weft_kind == PluginKind::Gate
                        && wit::accepts(&v)
                        && !wit::Contract::of(&v).has_gates() =>
                {
                    return Err(LoadError::UnsupportedWitVersion {
                        name: name.to_string(),
                        found: v.to_string(),
                        compatible: wit::GATES_RANGE,
                    });
                }
                Some(v) if wit::accepts(&v) => {
                    wit_version = Some(v);
                    kind = Some(weft_kind);
                }
                _ => {
                    return Err(LoadError::UnsupportedWitVersion {
                        name: name.to_string(),
                        found: found.to_string(),
                        compatible: wit::ACCEPTED_RANGE,
                    });
                }
            }
        } else if interface.starts_with("weft:plugin/") {
            // Another weft world (reporter, form decorator) or a newer task contract.
            if let Some(v) = version.and_then(|v| semver::Version::parse(v).ok())
                && !wit::accepts(&v)
            {
                return Err(LoadError::UnsupportedWitVersion {
                    name: name.to_string(),
                    found: v.to_string(),
                    compatible: wit::ACCEPTED_RANGE,
                });
            }
        } else if interface == "wasi:cli/run" && kind.is_none() {
            kind = Some(PluginKind::Command);
        }
    }
    let kind = kind.ok_or_else(|| LoadError::NotATask {
        name: name.to_string(),
        exports: if exports.is_empty() {
            "nothing".to_string()
        } else {
            exports.join(", ")
        },
    })?;

    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    for import in &imports {
        let (interface, version) = split_version(import);
        if classify(interface) == InterfaceClass::Unknown {
            return Err(LoadError::UnknownImport {
                name: name.to_string(),
                import: import.clone(),
                hint: if interface.starts_with("weft:plugin/") {
                    "; check the weft-sdk version it was built with"
                } else {
                    ""
                },
            });
        }
        if interface.starts_with("weft:plugin/")
            && let Some(v) = version.and_then(|v| semver::Version::parse(v).ok())
            && !wit::accepts(&v)
        {
            return Err(LoadError::UnsupportedWitVersion {
                name: name.to_string(),
                found: v.to_string(),
                compatible: wit::ACCEPTED_RANGE,
            });
        }
    }

    let pre = runtime
        .linker()
        .instantiate_pre(&component)
        .map_err(|err| LoadError::Link {
            name: name.to_string(),
            detail: format!("{err:#}"),
        })?;
    Ok(Plugin {
        inner: Arc::new(PluginInner {
            name: name.to_string(),
            kind,
            imports,
            wit_version,
            component,
            pre,
            runtime: runtime.clone(),
        }),
    })
}
