//! What the runtime's plugin tests share: where the built plugins are, one runtime with a
//! component cache, and loading a plugin by name.

use std::path::PathBuf;
use std::sync::OnceLock;

use weft_runtime::{Plugin, Runtime, RuntimeConfig};

/// The built plugins: `$WEFT_PLUGIN_DIR`, else cargo's output for `plugins/`.
pub fn plugin_dir() -> PathBuf {
    match std::env::var_os("WEFT_PLUGIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../plugins/target/wasm32-wasip2/release"),
    }
}

/// One runtime per test binary, caching compiled components in the target directory.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
        Runtime::new(RuntimeConfig {
            cache_dir: Some(cache),
            ..RuntimeConfig::default()
        })
        .expect("runtime starts")
    })
}

/// `name.wasm` from the plugin directory (`target/plugins` names plugins by crate name,
/// cargo's own output with `_`).
pub fn plugin(name: &str) -> Plugin {
    let dir = plugin_dir();
    let path = [name.to_string(), name.replace('-', "_")]
        .iter()
        .map(|stem| dir.join(format!("{stem}.wasm")))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "{name}.wasm is missing from {}: build the plugins first (`cargo xtask build-plugins`)",
                dir.display()
            )
        });
    runtime().load_file(&path).expect("plugin loads")
}
