//! Embeds the first-party plugins (built by `cargo xtask build-plugins` into
//! `target/plugins/`, or the directory in `WEFT_EMBED_PLUGINS`) as built-in plugins.
//! Without them the binary still works with `--plugins DIR`.

use std::path::PathBuf;

/// Plugins built with the others but never embedded.
const TEST_ONLY: &[&str] = &["hostile", "hostile-decorator", "hostile-gate"];

fn main() {
    println!("cargo:rerun-if-env-changed=WEFT_EMBED_PLUGINS");
    let dir = match std::env::var_os("WEFT_EMBED_PLUGINS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins"),
    };
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .map(|read| {
            read.flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
                .filter_map(|path| {
                    let name = path.file_stem()?.to_string_lossy().into_owned();
                    // `hostile*` misbehave on purpose: tests load them by path, never by name.
                    (!TEST_ONLY.contains(&name.as_str())).then_some((name, path))
                })
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    let mut code = String::from(
        "/// Built-in plugins: (name, component bytes).\npub static BUILTIN_PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let absolute = path.canonicalize().unwrap_or_else(|_| path.clone());
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            absolute.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("builtin_plugins.rs"), code).expect("OUT_DIR is writable");
}
