//! `.weft/` in a plugin project: the WIT contract and the SDKs of the `weft` that builds
//! it, written anew by `weft plugin new` and by every `weft plugin build`, so a plugin is
//! always built against the contract its host serves (the SDK stamps its version into
//! the exported interface names, and the host checks it).
//!
//! Layout: `wit/` (weft's WIT, `http-worlds.wit`, `deps/` WASI), `python/weft_sdk/`,
//! `js/weft-sdk/` (+ `rolldown.config.js`), `rust/weft-sdk/`, and `build/` for
//! intermediate files. It ignores itself in git.

use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));
}

/// The directory name, at the root of a plugin project.
pub const DIR: &str = ".weft";

/// The subdirectories this module owns (removed before being written again, so no stale
/// file survives an upgrade).
const OWNED: &[&str] = &["wit", "python", "js", "rust"];

/// The vendored Rust SDK's manifest. Its dependencies are those of `crates/weft-sdk` (a
/// test keeps them in step); the workspace it lived in is not there, so nothing inherits.
const RUST_SDK_MANIFEST: &str = r#"[package]
name = "weft-sdk"
description = "Guest SDK for writing weft plugins as WebAssembly components (staged by weft plugin build)"
version = "0.1.0"
edition = "2024"
license = "Apache-2.0"

[features]
default = []
http = ["dep:wasip2"]

[dependencies]
wit-bindgen = { version = "0.61", default-features = false, features = ["macros", "realloc", "std"] }
wasip2 = { version = "2.0.1", optional = true }
serde = { version = "1", features = ["derive"] }
serde_json = "1"
"#;

/// Tells rolldown (jco's bundler) that the WIT imports are provided by the component,
/// not files to bundle.
const ROLLDOWN_CONFIG: &str = "// Written by weft plugin build: WIT imports are the component's, not modules to bundle.\nexport default { external: [/^weft:plugin\\//, /^wasi:/] };\n";

const README: &str = "This directory is written by `weft plugin new` and `weft plugin build`:\n\
the WIT contract and the SDKs of the weft that builds this plugin. Do not edit it; it is\n\
written anew on every build, and git ignores it.\n";

/// Writes `.weft/` under `project`; returns its path.
pub fn stage(project: &Path) -> Result<PathBuf, String> {
    let root = project.join(DIR);
    let fail = |path: &Path, e: std::io::Error| format!("cannot write {}: {e}", path.display());
    for owned in OWNED {
        let dir = root.join(owned);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| fail(&dir, e))?;
        }
    }
    let generated = [
        (".gitignore", "*\n"),
        ("README.md", README),
        ("rust/weft-sdk/Cargo.toml", RUST_SDK_MANIFEST),
        ("js/rolldown.config.js", ROLLDOWN_CONFIG),
    ];
    for (relative, contents) in embedded::SDK_FILES.iter().copied().chain(generated) {
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
        }
        std::fs::write(&path, contents).map_err(|e| fail(&path, e))?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_every_sdk_and_the_contract() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = stage(dir.path()).expect("staged");
        for file in [
            "wit/host.wit",
            "wit/http-worlds.wit",
            "wit/deps/http.wit",
            "python/weft_sdk/__init__.py",
            "js/weft-sdk/index.js",
            "js/weft-sdk/types/task/task.d.ts",
            "js/weft-sdk/types/gate/gate.d.ts",
            "python/weft_sdk/gate.py",
            "rust/weft-sdk/src/lib.rs",
            "rust/weft-sdk/Cargo.toml",
        ] {
            assert!(root.join(file).is_file(), "{file} missing");
        }
        // Staging again removes what the SDK no longer has.
        std::fs::write(root.join("python/weft_sdk/stale.py"), "").expect("write");
        stage(dir.path()).expect("staged again");
        assert!(!root.join("python/weft_sdk/stale.py").exists());
    }

    #[test]
    fn the_vendored_rust_sdk_keeps_the_crates_dependencies() {
        let manifest = include_str!("../../../weft-sdk/Cargo.toml");
        let section = |text: &str| -> Vec<String> {
            text.split("[dependencies]")
                .nth(1)
                .unwrap_or_default()
                .split("\n[")
                .next()
                .unwrap_or_default()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(section(manifest), section(RUST_SDK_MANIFEST));
    }
}
