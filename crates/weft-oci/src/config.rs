//! The artifact's config blob (`application/vnd.wasm.config.v0+json`), as wkg and
//! wasmCloud write it: when, for which target (`wasm`/`wasip2`), the layer digests, and the
//! component's top-level imports and exports.

use serde::Serialize;

/// The Wasm OCI config.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WasmConfig {
    created: String,
    architecture: &'static str,
    os: &'static str,
    layer_digests: Vec<String>,
    component: ComponentInfo,
}

#[derive(Debug, Serialize)]
struct ComponentInfo {
    exports: Vec<String>,
    imports: Vec<String>,
}

/// The 8-byte preamble of a component (as opposed to a core module).
const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// True when `bytes` start like a Wasm component.
pub(crate) fn is_component(bytes: &[u8]) -> bool {
    bytes.starts_with(&COMPONENT_PREAMBLE)
}

impl WasmConfig {
    /// The config of `component` (already checked to be one).
    pub(crate) fn of(component: &[u8], layer_digest: String) -> Self {
        let (imports, exports) = top_level_names(component);
        WasmConfig {
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            architecture: "wasm",
            os: "wasip2",
            layer_digests: vec![layer_digest],
            component: ComponentInfo { exports, imports },
        }
    }
}

/// The component's own imports and exports (`wasi:cli/environment@0.2.0`, ...), read from
/// its outermost sections. A component that cannot be read lists none.
fn top_level_names(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    use wasmparser::{Parser, Payload};
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { break };
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                imports.extend(
                    reader
                        .into_iter()
                        .flatten()
                        .map(|i| i.name.name.to_string()),
                );
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                exports.extend(
                    reader
                        .into_iter()
                        .flatten()
                        .map(|e| e.name.name.to_string()),
                );
            }
            _ => {}
        }
    }
    imports.sort();
    imports.dedup();
    exports.sort();
    exports.dedup();
    (imports, exports)
}
