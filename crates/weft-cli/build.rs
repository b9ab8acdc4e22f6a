//! Embeds the first-party plugins (built by `cargo xtask build-plugins` into
//! `target/plugins/`, or the directory in `WEFT_EMBED_PLUGINS`) as built-in plugins.
//! Without them the binary still works with `--plugins DIR`.
//!
//! Also embeds what `weft plugin build` stages in a plugin project's `.weft/`: the WIT
//! contract, the WASI WIT its HTTP worlds need, and the Python, JavaScript and Rust SDKs,
//! so a plugin is always built against the contract of the `weft` that builds it.

use std::path::PathBuf;

/// Plugins built with the others but never embedded.
const TEST_ONLY: &[&str] = &["hostile", "hostile-decorator", "hostile-gate", "noop"];

fn main() {
    embed_sdk_files();
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

/// Where each embedded SDK file comes from (relative to the repository root) and where it
/// goes in a project's `.weft/`.
const SDK_SOURCES: &[(&str, &str)] = &[
    ("wit", "wit"),
    ("sdk/http-worlds.wit", "wit/http-worlds.wit"),
    ("sdk/wasi-wit", "wit/deps"),
    ("sdk/python/weft_sdk", "python/weft_sdk"),
    ("sdk/js/weft-sdk", "js/weft-sdk"),
    ("crates/weft-sdk/src", "rust/weft-sdk/src"),
];

/// Writes `sdk_files.rs`: `SDK_FILES`, every file of [`SDK_SOURCES`] as (path under
/// `.weft/`, contents).
fn embed_sdk_files() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for (from, to) in SDK_SOURCES {
        let source = root.join(from);
        println!("cargo:rerun-if-changed={}", source.display());
        collect(&source, &PathBuf::from(to), &mut files);
    }
    files.sort();
    let mut code = String::from(
        "/// The files `weft plugin build` stages under `.weft/`: (relative path, contents).\npub static SDK_FILES: &[(&str, &str)] = &[\n",
    );
    for (dest, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let absolute = path.canonicalize().unwrap_or_else(|_| path.clone());
        code.push_str(&format!(
            "    ({:?}, include_str!({:?})),\n",
            dest.to_string_lossy().replace('\\', "/"),
            absolute.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("sdk_files.rs"), code).expect("OUT_DIR is writable");
}

/// Every text file under `source` (a file or a directory), skipping caches.
fn collect(source: &std::path::Path, dest: &std::path::Path, files: &mut Vec<(PathBuf, PathBuf)>) {
    if source.is_file() {
        files.push((dest.to_path_buf(), source.to_path_buf()));
        return;
    }
    let Ok(entries) = std::fs::read_dir(source) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "__pycache__" || name == "node_modules" {
            continue;
        }
        collect(&entry.path(), &dest.join(&*name), files);
    }
}
