//! `weft plugin build [DIR]`: builds the plugin project in DIR (`weft-plugin.toml` says
//! its name, kind and language) into `DIR/NAME.wasm`, with the language's own toolchain:
//! cargo for Rust, componentize-py for Python, `jco componentize` for JavaScript. Each is
//! built against the WIT and SDK this `weft` stages in `DIR/.weft/`.

pub mod js;
pub mod manifest;
pub mod python;
pub mod rust;
pub mod sockets;
pub mod stage;
pub mod toolchain;

use std::path::{Path, PathBuf};

use manifest::{Lang, Manifest};

/// Builds the project in `project`; returns the component's path.
pub fn build(project: &Path) -> Result<PathBuf, String> {
    // The toolchains run in the project directory: every path handed to them is absolute,
    // so `weft plugin build some/dir` works from anywhere.
    let project = &std::path::absolute(project)
        .map_err(|e| format!("cannot resolve {}: {e}", project.display()))?;
    let manifest = Manifest::read(project)?;
    let staged = stage::stage(project)?;
    let out = project.join(format!("{}.wasm", manifest.name));
    match manifest.lang {
        Lang::Rust => rust::build(project, &manifest, &out)?,
        Lang::Python => python::build(project, &staged, &manifest, &out)?,
        Lang::Js => js::build(project, &staged, &manifest, &out)?,
    }
    Ok(out)
}
