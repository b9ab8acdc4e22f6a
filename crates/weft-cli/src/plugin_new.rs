//! `weft plugin new KIND NAME --lang rust|python|js`: writes a plugin project that
//! builds with one command (`weft plugin build`) and passes its own test, from the
//! templates in `crates/weft-cli/templates/`.
//!
//! The test is the one a plugin author of that language runs first: `cargo test` for
//! Rust, `python3 -m unittest` for Python and `npm test` (`node --test`) for JavaScript,
//! each checking the plugin's logic natively against the SDK's fake host, in a second
//! and without building a component. The generated `pipeline.yaml` then runs the built
//! component for real (`weft run pipeline.yaml --plugins .`).

use std::path::{Path, PathBuf};

use crate::plugin_build::manifest::{
    FILE as MANIFEST_FILE, Kind, Lang, Manifest, check_name, python_module,
};
use crate::plugin_build::stage;

/// One template: the file it becomes and its text.
type Template = (&'static str, &'static str);

macro_rules! template {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $path))
    };
}

/// The files of a project of `kind` in `lang`.
fn templates(kind: Kind, lang: Lang, name: &str) -> Vec<(String, &'static str)> {
    let mut files: Vec<(String, &'static str)> = vec![
        (".gitignore".into(), template!("common/gitignore")),
        ("README.md".into(), template!("common/README.md")),
    ];
    let pipeline = match kind {
        Kind::Task => template!("common/pipeline-task.yaml"),
        Kind::Reporter => template!("common/pipeline-reporter.yaml"),
        Kind::Decorator => template!("common/pipeline-decorator.yaml"),
        Kind::Gate => template!("common/pipeline-gate.yaml"),
    };
    files.push(("pipeline.yaml".into(), pipeline));
    let module = python_module(name);
    let code: [Template; 2] = match (lang, kind) {
        (Lang::Rust, Kind::Task) => [("src/lib.rs", template!("rust/task.rs")), ("", "")],
        (Lang::Rust, Kind::Reporter) => [("src/lib.rs", template!("rust/reporter.rs")), ("", "")],
        (Lang::Rust, Kind::Decorator) => [("src/lib.rs", template!("rust/decorator.rs")), ("", "")],
        (Lang::Rust, Kind::Gate) => [("src/lib.rs", template!("rust/gate.rs")), ("", "")],
        (Lang::Python, Kind::Task) => [
            ("MODULE.py", template!("python/task.py")),
            ("test_MODULE.py", template!("python/test_task.py")),
        ],
        (Lang::Python, Kind::Reporter) => [
            ("MODULE.py", template!("python/reporter.py")),
            ("test_MODULE.py", template!("python/test_reporter.py")),
        ],
        (Lang::Python, Kind::Decorator) => [
            ("MODULE.py", template!("python/decorator.py")),
            ("test_MODULE.py", template!("python/test_decorator.py")),
        ],
        (Lang::Python, Kind::Gate) => [
            ("MODULE.py", template!("python/gate.py")),
            ("test_MODULE.py", template!("python/test_gate.py")),
        ],
        (Lang::Js, Kind::Task) => [
            ("NAME.js", template!("js/task.js")),
            ("NAME.test.js", template!("js/task.test.js")),
        ],
        (Lang::Js, Kind::Reporter) => [
            ("NAME.js", template!("js/reporter.js")),
            ("NAME.test.js", template!("js/reporter.test.js")),
        ],
        (Lang::Js, Kind::Decorator) => [
            ("NAME.js", template!("js/decorator.js")),
            ("NAME.test.js", template!("js/decorator.test.js")),
        ],
        (Lang::Js, Kind::Gate) => [
            ("NAME.js", template!("js/gate.js")),
            ("NAME.test.js", template!("js/gate.test.js")),
        ],
    };
    for (path, text) in code.into_iter().filter(|(path, _)| !path.is_empty()) {
        let path = path.replace("MODULE", &module).replace("NAME", name);
        files.push((path, text));
    }
    match lang {
        Lang::Rust => files.push(("Cargo.toml".into(), template!("rust/Cargo.toml"))),
        Lang::Js => files.push(("package.json".into(), template!("js/package.json"))),
        Lang::Python => {}
    }
    files
}

/// What [`create`] wrote.
#[derive(Debug)]
pub struct Written {
    /// The project directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The files written, relative to `dir` (`.weft/` aside).
    pub files: Vec<String>,
}

impl Written {
    /// What to tell the user: where the project is and what to do next.
    pub fn summary(&self) -> String {
        let dir = self.dir.display();
        let test = test_command(self.manifest.lang);
        format!(
            "wrote a {} {} plugin in {dir}: {}\n\nnext:\n  cd {dir}\n  {test}\n  weft plugin build\n  {}",
            self.manifest.lang,
            self.manifest.kind.as_str(),
            self.files.join(", "),
            try_command(&self.manifest)
        )
    }
}

/// The command that runs a project's own test.
pub fn test_command(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "cargo test",
        Lang::Python => "python3 -m unittest",
        Lang::Js => "npm test",
    }
}

/// The command that runs the built plugin through weft.
fn try_command(manifest: &Manifest) -> String {
    match manifest.kind {
        Kind::Reporter => format!(
            "weft run pipeline.yaml --plugins . --report {}:url=URL --allow-http HOST",
            manifest.name
        ),
        _ => "weft run pipeline.yaml --plugins .".to_string(),
    }
}

/// `echo-py` -> `EchoPy`.
fn class_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// Writes a new project for a `kind` plugin `name` in `lang` into `dir` (which must not
/// exist or be empty), then stages `.weft/` so its test runs at once.
pub fn create(dir: &Path, kind: Kind, name: &str, lang: Lang) -> Result<Written, String> {
    check_name(name)?;
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(format!(
                "{} already exists and is not empty; pick another --dir",
                dir.display()
            ));
        }
    }
    // Reporters talk to forges: they are built with wasi:http.
    let http = kind == Kind::Reporter;
    let manifest = Manifest {
        name: name.to_string(),
        kind,
        lang,
        entry: None,
        http,
    };
    let lang_name = match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
    };
    let toolchain = match lang {
        Lang::Rust => "cargo, for wasm32-wasip2",
        Lang::Python => "componentize-py",
        Lang::Js => "jco componentize",
    };
    let (features, extra) = match (lang, kind) {
        (Lang::Rust, Kind::Reporter) => (", features = [\"http\"]", "serde_json = \"1\"\n"),
        (Lang::Rust, Kind::Decorator) => ("", "serde_json = \"1\"\n"),
        _ => ("", ""),
    };
    let values = [
        ("{{name}}", name.to_string()),
        ("{{module}}", python_module(name)),
        ("{{class}}", class_name(name)),
        ("{{kind}}", kind.as_str().to_string()),
        ("{{lang_name}}", lang_name.to_string()),
        ("{{toolchain}}", toolchain.to_string()),
        ("{{test_command}}", test_command(lang).to_string()),
        ("{{try_command}}", try_command(&manifest)),
        ("{{sdk_features}}", features.to_string()),
        ("{{extra_dependencies}}", extra.to_string()),
    ];
    let mut files = vec![(MANIFEST_FILE.to_string(), manifest.render())];
    for (path, text) in templates(kind, lang, name) {
        let rendered = values.iter().fold(text.to_string(), |acc, (key, value)| {
            acc.replace(key, value)
        });
        files.push((path, rendered));
    }
    let mut written = Vec::new();
    for (path, text) in &files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&target, text)
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        written.push(path.clone());
    }
    stage::stage(dir)?;
    Ok(Written {
        dir: dir.to_path_buf(),
        manifest,
        files: written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names() {
        assert_eq!(class_name("echo-py"), "EchoPy");
        assert_eq!(class_name("greet"), "Greet");
    }

    #[test]
    fn writes_every_kind_in_every_language_without_leftover_placeholders() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for kind in [Kind::Task, Kind::Reporter, Kind::Decorator, Kind::Gate] {
                let dir = tempfile::tempdir().expect("tempdir");
                let project = dir.path().join("p");
                let written = create(&project, kind, "my-plugin", lang).expect("created");
                for file in &written.files {
                    let text = std::fs::read_to_string(project.join(file)).expect("read");
                    assert!(!text.contains("{{"), "{lang} {kind:?} {file}: {text}");
                }
                assert_eq!(
                    Manifest::read(&project).expect("manifest"),
                    written.manifest
                );
                assert!(project.join(".weft/wit/host.wit").is_file());
            }
        }
    }

    #[test]
    fn refuses_a_non_empty_directory_and_bad_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("x"), "").expect("write");
        let err = create(dir.path(), Kind::Task, "ok", Lang::Rust).expect_err("not empty");
        assert!(err.contains("not empty"), "{err}");
        let err = create(&dir.path().join("n"), Kind::Task, "Bad_Name", Lang::Rust)
            .expect_err("bad name");
        assert!(err.contains("not a plugin name"), "{err}");
    }
}
