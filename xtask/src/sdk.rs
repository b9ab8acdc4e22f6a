//! The Python and JavaScript toolchains, installed under `target/sdk-tools/` when missing
//! (as the wasm target is): componentize-py from PyPI into a virtualenv, jco and
//! componentize-js from npm into a local `node_modules` from the committed lock file
//! (`sdk/js/toolchain/`). A stamp records what was installed, so a second run does
//! nothing. Then the SDK examples in `examples/plugins/{python,js}/` are built by
//! `weft plugin build` into `target/sdk-plugins/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{root, run};

/// The componentize-py weft's Python SDK is built with.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// Where the tools go.
fn tools_dir() -> PathBuf {
    root().join("target/sdk-tools")
}

/// The installed tools.
pub struct Tools {
    /// The componentize-py executable.
    pub componentize_py: PathBuf,
    /// The jco executable.
    pub jco: PathBuf,
}

/// The built examples.
pub struct Built {
    /// The toolchains they were built with.
    pub tools: Tools,
    /// The directory holding every example's `NAME.wasm`.
    pub plugins: PathBuf,
}

/// True when `stamp` holds exactly `expected` and `exe` exists.
fn installed(exe: &Path, stamp: &Path, expected: &str) -> bool {
    exe.is_file() && std::fs::read_to_string(stamp).is_ok_and(|s| s == expected)
}

fn write_stamp(stamp: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(stamp, contents).map_err(|e| format!("cannot write {}: {e}", stamp.display()))
}

/// componentize-py in `target/sdk-tools/python`, installed with pip when missing.
fn componentize_py() -> Result<PathBuf, String> {
    let venv = tools_dir().join("python");
    let exe = venv.join("bin/componentize-py");
    let stamp = venv.join("weft-installed");
    if installed(&exe, &stamp, COMPONENTIZE_PY) {
        return Ok(exe);
    }
    eprintln!(
        "xtask: installing {COMPONENTIZE_PY} into {}",
        venv.display()
    );
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .map_err(|e| format!("cannot remove {}: {e}", venv.display()))?;
    }
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        .map_err(|e| format!("{e}\n  the Python SDK needs python3 with venv"))?;
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        COMPONENTIZE_PY,
    ]))?;
    write_stamp(&stamp, COMPONENTIZE_PY)?;
    Ok(exe)
}

/// jco in `target/sdk-tools/js`, installed with `npm ci` from the committed lock when
/// missing or when the lock changed.
fn jco() -> Result<PathBuf, String> {
    let source = root().join("sdk/js/toolchain");
    let dir = tools_dir().join("js");
    let exe = dir.join("node_modules/.bin/jco");
    let stamp = dir.join("weft-installed");
    let read = |name: &str| {
        std::fs::read_to_string(source.join(name))
            .map_err(|e| format!("cannot read {}: {e}", source.join(name).display()))
    };
    let (manifest, lock) = (read("package.json")?, read("package-lock.json")?);
    let expected = format!("{manifest}\n{lock}");
    if installed(&exe, &stamp, &expected) {
        return Ok(exe);
    }
    eprintln!(
        "xtask: installing jco and componentize-js into {}",
        dir.display()
    );
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, text) in [("package.json", &manifest), ("package-lock.json", &lock)] {
        std::fs::write(dir.join(name), text)
            .map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))?;
    }
    run(Command::new("npm")
        .current_dir(&dir)
        .args(["ci", "--no-audit", "--no-fund"]))
    .map_err(|e| format!("{e}\n  the JavaScript SDK needs Node.js with npm"))?;
    write_stamp(&stamp, &expected)?;
    Ok(exe)
}

/// Installs both toolchains when missing.
pub fn tools() -> Result<Tools, String> {
    Ok(Tools {
        componentize_py: componentize_py()?,
        jco: jco()?,
    })
}

/// Every SDK example project (a directory with a `weft-plugin.toml`), by language.
fn examples() -> Result<Vec<(String, PathBuf)>, String> {
    let mut found = Vec::new();
    for lang in ["python", "js"] {
        let dir = root().join("examples/plugins").join(lang);
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            if entry.path().join("weft-plugin.toml").is_file() {
                found.push((lang.to_string(), entry.path()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Builds every example with `weft plugin build` and gathers the components.
pub fn build_examples(weft: &Path) -> Result<Built, String> {
    let tools = tools()?;
    let out = root().join("target/sdk-plugins");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut built = Vec::new();
    for (_, project) in examples()? {
        run(Command::new(weft)
            .args(["plugin", "build"])
            .arg(&project)
            .env("WEFT_COMPONENTIZE_PY", &tools.componentize_py)
            .env("WEFT_JCO", &tools.jco))?;
        let name = project
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let wasm = project.join(format!("{name}.wasm"));
        let dest = out.join(format!("{name}.wasm"));
        std::fs::copy(&wasm, &dest)
            .map_err(|e| format!("cannot copy {} to {}: {e}", wasm.display(), dest.display()))?;
        built.push(name);
    }
    eprintln!(
        "xtask: SDK plugins in {}: {}",
        out.display(),
        built.join(", ")
    );
    Ok(Built {
        tools,
        plugins: out,
    })
}

/// Runs each example's own tests: `python3 -m unittest`, `npm test` (node --test).
pub fn test_examples() -> Result<(), String> {
    for (lang, project) in examples()? {
        let mut cmd = if lang == "python" {
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "unittest", "-v"]);
            cmd
        } else {
            let mut cmd = Command::new("npm");
            cmd.args(["test", "--silent"]);
            cmd
        };
        run(cmd.current_dir(&project))?;
    }
    Ok(())
}

/// The worlds whose raw TypeScript types the JavaScript SDK ships.
const JS_TYPE_WORLDS: &[&str] = &["task", "reporter", "form-decorator", "gate"];

/// Generates the raw WIT types with `jco types` into `dest/<world>/`.
fn generate_js_types(jco: &Path, dest: &Path) -> Result<(), String> {
    for world in JS_TYPE_WORLDS {
        let out = dest.join(world);
        if out.exists() {
            std::fs::remove_dir_all(&out)
                .map_err(|e| format!("cannot remove {}: {e}", out.display()))?;
        }
        run(Command::new(jco)
            .arg("types")
            .arg(root().join("wit"))
            .args(["--world-name", world, "--out-dir"])
            .arg(&out))?;
    }
    Ok(())
}

/// Every file under `dir`, relative, with its contents.
fn tree(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                files.push((relative.to_path_buf(), text));
            }
        }
    }
    files.sort();
    files
}

/// `cargo xtask sdk-types`: regenerates `sdk/js/weft-sdk/types/` from `wit/`.
pub fn write_js_types() -> Result<(), String> {
    generate_js_types(&jco()?, &root().join("sdk/js/weft-sdk/types"))
}

/// Fails when `sdk/js/weft-sdk/types/` is not what `jco types` makes of `wit/` now.
pub fn check_js_types(jco: &Path) -> Result<(), String> {
    let fresh = root().join("target/tmp/js-types");
    generate_js_types(jco, &fresh)?;
    let committed = root().join("sdk/js/weft-sdk/types");
    if tree(&fresh) != tree(&committed) {
        return Err(format!(
            "{} is stale: the WIT changed; run `cargo xtask sdk-types` and commit the result",
            committed.display()
        ));
    }
    Ok(())
}
