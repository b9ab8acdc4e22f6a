//! JavaScript and TypeScript plugins: `jco componentize` (componentize-js, StarlingMonkey)
//! with its bundler, so a plugin may import the SDK (`#weft-sdk`) and other modules.

use std::path::Path;
use std::process::Command;

use super::manifest::Manifest;
use super::toolchain::{JCO, run};

/// Builds the JavaScript plugin in `project` into `out`.
pub fn build(project: &Path, staged: &Path, manifest: &Manifest, out: &Path) -> Result<(), String> {
    let tool = JCO.find(project)?;
    let mut cmd = Command::new(&tool);
    cmd.current_dir(project)
        .arg("componentize")
        .arg(manifest.entry())
        .arg("--bundle")
        .arg("--bundle-config")
        .arg(staged.join("js/rolldown.config.js"))
        .arg("--wit")
        .arg(staged.join("wit"))
        // componentize-js's engine brings its own wasi:http imports with the `http`
        // feature (for `fetch`), so the plain world is used either way.
        .arg("--world-name")
        .arg(manifest.kind.world(false))
        .arg("--out")
        .arg(out);
    // Without HTTP the component must not import wasi:http (the host refuses imports it
    // did not grant); fetch-event is the incoming-handler style, never used by weft.
    cmd.arg("--disable");
    if !manifest.http {
        cmd.arg("http");
    }
    cmd.arg("fetch-event");
    run(&mut cmd)
}
