//! Python plugins: componentize-py, then `wasi:sockets` left out (see [`super::sockets`]).

use std::path::Path;
use std::process::Command;

use super::manifest::{Manifest, python_module};
use super::toolchain::{COMPONENTIZE_PY, run};

/// Builds the Python plugin in `project` into `out`.
pub fn build(project: &Path, staged: &Path, manifest: &Manifest, out: &Path) -> Result<(), String> {
    let tool = COMPONENTIZE_PY.find(project)?;
    let entry = manifest.entry();
    let module = Path::new(&entry)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| python_module(&manifest.name));
    // The entry's directory goes on the Python path, so `entry = "src/app.py"` works too.
    let entry_dir = project.join(&entry).parent().map(Path::to_path_buf);
    let raw = staged
        .join("build")
        .join(format!("{}.raw.wasm", manifest.name));
    // componentize-py's output, kept so a failure below can be looked into.
    if let Some(dir) = raw.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut cmd = Command::new(&tool);
    cmd.current_dir(project)
        .arg("-d")
        .arg(staged.join("wit"))
        .arg("-w")
        .arg(manifest.kind.world(manifest.http))
        .arg("componentize")
        .arg(&module)
        .arg("-p")
        .arg(entry_dir.unwrap_or_else(|| project.to_path_buf()))
        .arg("-p")
        .arg(staged.join("python"))
        .arg("-o")
        .arg(&raw)
        // A virtualenv of the caller's would add its site-packages; the plugin gets only
        // its own directory and the SDK.
        .env_remove("VIRTUAL_ENV");
    run(&mut cmd)?;
    let bytes = std::fs::read(&raw).map_err(|e| format!("cannot read {}: {e}", raw.display()))?;
    let (stripped, what) = super::sockets::strip_sockets(&bytes)?;
    if let super::sockets::Stripped::Imports(names) = what {
        eprintln!(
            "weft: left out {} wasi:sockets imports of the Python runtime (weft never grants sockets; calls would trap)",
            names.len()
        );
    }
    std::fs::write(out, stripped).map_err(|e| format!("cannot write {}: {e}", out.display()))
}
