//! Rust plugins: `cargo build --release --target wasm32-wasip2`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::manifest::Manifest;
use super::toolchain::run;

/// The target Rust plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Builds the Rust plugin in `project` into `out`.
pub fn build(project: &Path, manifest: &Manifest, out: &Path) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .current_dir(project)
        .args(["build", "--release", "--target", WASM_TARGET]))
    .map_err(|e| {
        format!("{e}\n  hint: the {WASM_TARGET} target may be missing: `rustup target add {WASM_TARGET}`")
    })?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                project.join(dir)
            }
        })
        .unwrap_or_else(|| project.join("target"));
    // Cargo names a cdylib after the crate, with `-` as `_`.
    let built = target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", manifest.name.replace('-', "_")));
    std::fs::copy(&built, out)
        .map(drop)
        .map_err(|e| format!("cannot copy {} to {}: {e}", built.display(), out.display()))
}
