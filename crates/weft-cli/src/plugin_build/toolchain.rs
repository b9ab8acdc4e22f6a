//! Finding and running the language toolchains: `cargo`, `componentize-py`, `jco`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tool weft builds plugins with.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// Its command name.
    pub command: &'static str,
    /// The environment variable naming its executable, which wins over everything else.
    pub env: &'static str,
    /// Where a project may keep its own copy, relative to the project.
    pub local: &'static str,
    /// How to install it.
    pub install: &'static str,
}

/// componentize-py, from PyPI.
pub const COMPONENTIZE_PY: Tool = Tool {
    command: "componentize-py",
    env: "WEFT_COMPONENTIZE_PY",
    local: ".venv/bin/componentize-py",
    install: "python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1",
};

/// jco (with componentize-js), from npm.
pub const JCO: Tool = Tool {
    command: "jco",
    env: "WEFT_JCO",
    local: "node_modules/.bin/jco",
    install: "npm install --save-dev @bytecodealliance/jco@1.35.0 @bytecodealliance/componentize-js@0.23.0 (and, in package.json, \"overrides\": {\"@bytecodealliance/preview2-shim\": \"0.26.0\"})",
};

impl Tool {
    /// The executable: `$ENV`, else the project's own copy, else the command on `PATH`.
    pub fn find(&self, project: &Path) -> Result<PathBuf, String> {
        if let Some(path) = std::env::var_os(self.env).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        let local = project.join(self.local);
        if local.is_file() {
            return Ok(local);
        }
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(self.command))
                .find(|candidate| candidate.is_file())
        });
        on_path.ok_or_else(|| {
            format!(
                "`{}` was not found (looked at ${}, {}, then PATH)\n  hint: install it: {}",
                self.command,
                self.env,
                local.display(),
                self.install
            )
        })
    }
}

/// Runs `cmd`, streaming its output to ours; fails with what was run.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("weft: running {}", describe(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", describe(cmd)))
    }
}

/// `cmd` as a shell would show it.
fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
