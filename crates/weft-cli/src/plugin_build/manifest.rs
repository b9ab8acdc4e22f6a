//! `weft-plugin.toml`: what a plugin project is (name, kind, language, entry file), read
//! by `weft plugin build` and written by `weft plugin new`.
//!
//! The file is a flat list of `key = "value"` (or `key = true`) lines, a subset of TOML
//! small enough to read without a TOML parser.

use std::fmt;
use std::path::Path;

/// The file name, at the root of a plugin project.
pub const FILE: &str = "weft-plugin.toml";

/// The kind of plugin: which `weft:plugin` world it is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A task (`world task`).
    Task,
    /// A status reporter (`world reporter`).
    Reporter,
    /// A form decorator (`world form-decorator`).
    Decorator,
    /// A gate (`world gate`, since `weft:plugin@0.2.0`).
    Gate,
}

impl Kind {
    /// The WIT world of this kind (with `-http` when it calls out over `wasi:http`).
    pub fn world(self, http: bool) -> String {
        let base = match self {
            Kind::Task => "task",
            Kind::Reporter => "reporter",
            Kind::Decorator => "form-decorator",
            Kind::Gate => "gate",
        };
        if http {
            format!("{base}-http")
        } else {
            base.to_string()
        }
    }

    /// The name used in `weft-plugin.toml` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Task => "task",
            Kind::Reporter => "reporter",
            Kind::Decorator => "decorator",
            Kind::Gate => "gate",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        match text {
            "task" => Some(Kind::Task),
            "reporter" => Some(Kind::Reporter),
            "decorator" | "form-decorator" => Some(Kind::Decorator),
            "gate" => Some(Kind::Gate),
            _ => None,
        }
    }
}

/// The language a plugin is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with the `weft-sdk` crate; built by cargo for `wasm32-wasip2`.
    Rust,
    /// Python, with `weft_sdk`; built by componentize-py.
    Python,
    /// JavaScript or TypeScript, with `weft-sdk`; built by `jco componentize`.
    Js,
}

impl Lang {
    /// The name used in `weft-plugin.toml` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    fn parse(text: &str) -> Option<Lang> {
        match text {
            "rust" => Some(Lang::Rust),
            "python" | "py" => Some(Lang::Python),
            "js" | "javascript" | "ts" | "typescript" => Some(Lang::Js),
            _ => None,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plugin project as `weft-plugin.toml` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The plugin's name: the component is `NAME.wasm`.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Its language.
    pub lang: Lang,
    /// The source file exporting the plugin (Python, JavaScript); unused for Rust.
    pub entry: Option<String>,
    /// Whether it imports `wasi:http/outgoing-handler` (outbound HTTP).
    pub http: bool,
}

impl Manifest {
    /// Reads `DIR/weft-plugin.toml`.
    pub fn read(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read {}: {e}\n  hint: a plugin project has a `{FILE}` (`weft plugin new` writes one)",
                path.display()
            )
        })?;
        Manifest::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of a `weft-plugin.toml`.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let (mut name, mut kind, mut lang, mut entry, mut http) = (None, None, None, None, false);
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |what: &str| format!("line {}: {what}", index + 1);
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| at("expected `key = value`"))?;
            let (key, value) = (key.trim(), value.trim());
            let string = || {
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .map(str::to_string)
                    .ok_or_else(|| at(&format!("`{key}` takes a quoted string")))
            };
            match key {
                "name" => name = Some(string()?),
                "kind" => {
                    let text = string()?;
                    kind = Some(Kind::parse(&text).ok_or_else(|| {
                        at(&format!(
                            "unknown kind `{text}` (task, reporter, decorator or gate)"
                        ))
                    })?);
                }
                "lang" => {
                    let text = string()?;
                    lang = Some(Lang::parse(&text).ok_or_else(|| {
                        at(&format!("unknown lang `{text}` (rust, python or js)"))
                    })?);
                }
                "entry" => entry = Some(string()?),
                "http" => {
                    http = match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(at("`http` is true or false")),
                    }
                }
                other => return Err(at(&format!("unknown key `{other}`"))),
            }
        }
        let name = name.ok_or("`name` is required")?;
        check_name(&name)?;
        Ok(Manifest {
            name,
            kind: kind.ok_or("`kind` is required (task, reporter, decorator or gate)")?,
            lang: lang.ok_or("`lang` is required (rust, python or js)")?,
            entry,
            http,
        })
    }

    /// The file the plugin's code starts in, relative to the project.
    pub fn entry(&self) -> String {
        match (&self.entry, self.lang) {
            (Some(entry), _) => entry.clone(),
            (None, Lang::Python) => format!("{}.py", python_module(&self.name)),
            (None, Lang::Js) => format!("{}.js", self.name),
            (None, Lang::Rust) => "src/lib.rs".to_string(),
        }
    }

    /// The text of this manifest.
    pub fn render(&self) -> String {
        let mut text = format!(
            "# A weft plugin project: `weft plugin build` turns it into {}.wasm.\nname = \"{}\"\nkind = \"{}\"\nlang = \"{}\"\n",
            self.name,
            self.name,
            self.kind.as_str(),
            self.lang
        );
        if let Some(entry) = &self.entry {
            text.push_str(&format!("entry = \"{entry}\"\n"));
        }
        text.push_str(&format!(
            "# true: the plugin may call granted hosts over wasi:http.\nhttp = {}\n",
            self.http
        ));
        text
    }
}

/// A plugin name: lower-case ASCII letters, digits and `-`, starting with a letter (it
/// names the `.wasm` file, the Rust crate and, with `_`, the Python module).
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a plugin name: use lower-case letters, digits and `-`, starting with a letter"
        ))
    }
}

/// The Python module a plugin named `name` lives in (`echo-py` -> `echo_py`).
pub fn python_module(name: &str) -> String {
    name.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let manifest = Manifest {
            name: "echo-py".into(),
            kind: Kind::Task,
            lang: Lang::Python,
            entry: None,
            http: false,
        };
        assert_eq!(Manifest::parse(&manifest.render()), Ok(manifest.clone()));
        assert_eq!(manifest.entry(), "echo_py.py");
        assert_eq!(manifest.kind.world(true), "task-http");
        let gate = Manifest {
            kind: Kind::Gate,
            http: true,
            ..manifest
        };
        assert_eq!(Manifest::parse(&gate.render()), Ok(gate.clone()));
        assert_eq!(gate.kind.world(true), "gate-http");
        assert_eq!(gate.kind.world(false), "gate");
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        let cases = [
            (
                "name = \"x\"\nkind = \"trigger\"\nlang = \"rust\"",
                "unknown kind",
            ),
            (
                "name = \"x\"\nkind = \"task\"\nlang = \"go\"",
                "unknown lang",
            ),
            (
                "name = \"X\"\nkind = \"task\"\nlang = \"rust\"",
                "not a plugin name",
            ),
            ("name = x", "quoted string"),
            ("kind = \"task\"", "`name` is required"),
            ("colour = \"blue\"", "unknown key"),
        ];
        for (text, expected) in cases {
            let err = Manifest::parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
