//! Malformed pipelines through the binary: every file in `tests/malformed/` must be
//! refused by `weft validate` with exactly the diagnostics its header announces.
//!
//! Header lines (comments at the top of each fixture):
//!
//! ```text
//! # expect: LINE:COL CODE "message fragment"
//! # expect-bug: LINE:COL CODE "message fragment"
//! ```
//!
//! A file with an `expect-bug` line documents a known core bug (what it should report)
//! and is skipped until the bug is fixed; such files also carry a `# bug:` comment.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support;

/// Directory of malformed fixtures.
fn fixtures_dir() -> PathBuf {
    support::root().join("tests/malformed")
}

/// Every `tests/malformed/*.yaml`, sorted.
fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/malformed exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// One expected (or reported) diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expect {
    line: u64,
    column: u64,
    code: String,
    /// A fragment of the message (for reported diagnostics, the whole message).
    message: String,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} {} \"{}\"",
            self.line, self.column, self.code, self.message
        )
    }
}

impl Expect {
    /// Whether the reported diagnostic `got` satisfies this expectation.
    fn matches(&self, got: &Expect) -> bool {
        self.line == got.line
            && self.column == got.column
            && self.code == got.code
            && got.message.contains(&self.message)
    }
}

/// What a fixture's header says.
struct Header {
    expects: Vec<Expect>,
    bugs: Vec<Expect>,
}

/// Parses `LINE:COL CODE "fragment"`.
fn parse_expect(text: &str) -> Result<Expect, String> {
    let bad = || format!("malformed expectation `{text}`; want LINE:COL CODE \"fragment\"");
    let (position, rest) = text.trim().split_once(' ').ok_or_else(bad)?;
    let (line, column) = position.split_once(':').ok_or_else(bad)?;
    let (code, fragment) = rest.trim().split_once(' ').ok_or_else(bad)?;
    let fragment = fragment.trim();
    let fragment = fragment
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .ok_or_else(bad)?;
    Ok(Expect {
        line: line.parse().map_err(|_| bad())?,
        column: column.parse().map_err(|_| bad())?,
        code: code.to_string(),
        message: fragment.to_string(),
    })
}

/// Reads the `# expect:` and `# expect-bug:` lines of a fixture's leading comments.
fn header(path: &Path) -> Result<Header, String> {
    // Lossy: a fixture may hold bytes that are not UTF-8 after its header.
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut header = Header {
        expects: Vec::new(),
        bugs: Vec::new(),
    };
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(rest) = line.strip_prefix("# expect-bug:") {
            header.bugs.push(parse_expect(rest)?);
        } else if let Some(rest) = line.strip_prefix("# expect:") {
            header.expects.push(parse_expect(rest)?);
        }
    }
    if header.expects.is_empty() && header.bugs.is_empty() {
        return Err("no `# expect:` line in the header".into());
    }
    Ok(header)
}

/// The path of a fixture as given to `weft` (relative to the repository root, which is
/// the binary's working directory).
fn arg(path: &Path) -> String {
    path.strip_prefix(support::root())
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

fn short(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Checks one fixture; returns the problems found (empty when it behaves as announced).
fn check(path: &Path, expects: &[Expect]) -> Vec<String> {
    let file = arg(path);
    let ran = support::run(&["validate", &file, "--output", "json"]);
    let mut problems = Vec::new();
    if ran.code != 2 {
        problems.push(format!("exit code {} (want 2)", ran.code));
    }
    let json: Value = match serde_json::from_str(&ran.stdout) {
        Ok(json) => json,
        Err(e) => {
            problems.push(format!(
                "stdout is not JSON ({e}):\n      stdout: {}\n      stderr: {}",
                ran.stdout.trim(),
                ran.stderr.trim()
            ));
            return problems;
        }
    };
    if json["valid"] != Value::Bool(false) {
        problems.push(format!("`valid` is {} (want false)", json["valid"]));
    }
    let got: Vec<Expect> = json["diagnostics"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|d| Expect {
            line: d["line"].as_u64().unwrap_or_default(),
            column: d["column"].as_u64().unwrap_or_default(),
            code: d["code"].as_str().unwrap_or_default().to_string(),
            message: d["message"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    // Pair each expectation with a distinct diagnostic.
    let mut used = vec![false; got.len()];
    let mut missing = Vec::new();
    for expect in expects {
        match (0..got.len()).find(|&i| !used[i] && expect.matches(&got[i])) {
            Some(i) => used[i] = true,
            None => missing.push(expect),
        }
    }
    let extra: Vec<&Expect> = got
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(d, _)| d)
        .collect();
    for expect in &missing {
        problems.push(format!("expected, not reported: {expect}"));
    }
    for d in &extra {
        problems.push(format!("reported, not expected: {d}"));
    }
    if !missing.is_empty() || !extra.is_empty() {
        let all: Vec<String> = got.iter().map(|d| format!("      {d}")).collect();
        problems.push(format!("all reported:\n{}", all.join("\n")));
    }
    problems
}

#[test]
fn malformed_fixtures_report_exactly_the_expected_diagnostics() {
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let files = fixtures();
    for path in &files {
        let header = match header(path) {
            Ok(header) => header,
            Err(e) => {
                failures.push(format!("{}:\n    {e}", short(path)));
                continue;
            }
        };
        if !header.bugs.is_empty() {
            skipped.push(short(path));
            continue;
        }
        let problems = check(path, &header.expects);
        if !problems.is_empty() {
            failures.push(format!("{}:\n    {}", short(path), problems.join("\n    ")));
        }
    }
    if !skipped.is_empty() {
        eprintln!(
            "skipped (known core bugs, `# expect-bug:`): {}",
            skipped.join(", ")
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} malformed fixtures misbehaved:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn there_are_at_least_forty_fixtures() {
    let files = fixtures();
    assert!(
        files.len() >= 40,
        "only {} fixtures in tests/malformed",
        files.len()
    );
}

/// A scratch directory of its own under Cargo's test tmpdir.
fn scratch(name: &str) -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-malformed");
    std::fs::create_dir_all(&base).expect("scratch base");
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .expect("scratch dir")
}

/// Every file under `dir` (empty when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

#[test]
fn run_refuses_malformed_pipelines_and_runs_nothing() {
    let cases = [
        (
            "19-runafter-unknown-task.yaml",
            "15:18: error[unknown-task]",
        ),
        ("22-cycle-of-two.yaml", "9:13: error[cycle]"),
        (
            "70-only-a-document-marker.yaml",
            "1:1: error[missing-field]: tests/malformed/70-only-a-document-marker.yaml holds no pipeline",
        ),
        ("71-not-utf8.yaml", "9:16: error[encoding]"),
        (
            "31-missing-plugin-param.yaml",
            "10:23: error[missing-param]",
        ),
    ];
    for (name, at) in cases {
        let data = scratch("run-data");
        let file = format!("tests/malformed/{name}");
        let output = support::weft()
            .env("WEFT_DATA_DIR", data.path())
            .args(["run", &file])
            .output()
            .expect("weft starts");
        let code = output.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(code, 2, "{name}: exit code\n--- stderr\n{stderr}");
        let wanted = format!("{file}:{at}");
        assert!(
            stderr.lines().any(|l| l.starts_with(&wanted)),
            "{name}: no line starting `{wanted}` on stderr:\n{stderr}"
        );
        assert!(
            stdout.trim().is_empty(),
            "{name}: stdout not empty:\n{stdout}"
        );
        let created = files_under(data.path());
        assert!(
            created.is_empty(),
            "{name}: a refused run created files: {created:?}"
        );
    }
}

#[test]
fn oversized_pipeline_file_is_refused() {
    let dir = scratch("oversized");
    let path = dir.path().join("huge.yaml");
    let mut text = String::from(
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata:\n  name: huge\nspec:\n  tasks:\n    - name: a\n      taskRef: {name: echo}\n      params: [{name: message, value: hi}]\n",
    );
    let filler = format!("# {}\n", "x".repeat(1021));
    while text.len() < 9 << 20 {
        text.push_str(&filler);
    }
    std::fs::write(&path, &text).expect("write huge file");
    let file = path.to_string_lossy().into_owned();
    for command in ["validate", "run"] {
        let ran = support::run(&[command, &file]);
        assert_eq!(ran.code, 2, "{command}: exit code\n{}", ran.stderr);
        assert!(
            ran.stderr.contains("bytes") && ran.stderr.contains("limited"),
            "{command}: no clear size message on stderr:\n{}",
            ran.stderr
        );
        assert!(
            ran.stderr.contains("huge.yaml"),
            "{command}: the message does not name the file:\n{}",
            ran.stderr
        );
    }
}

#[test]
fn missing_pipeline_file_is_refused() {
    let dir = scratch("missing");
    let path = dir.path().join("no-such-pipeline.yaml");
    let file = path.to_string_lossy().into_owned();
    for command in ["validate", "run"] {
        let ran = support::run(&[command, &file]);
        assert_eq!(ran.code, 2, "{command}: exit code\n{}", ran.stderr);
        assert!(
            ran.stderr.contains("cannot read") && ran.stderr.contains("no-such-pipeline.yaml"),
            "{command}: stderr does not say it cannot read the file:\n{}",
            ran.stderr
        );
    }
}

#[test]
fn an_unknown_plugin_says_where_weft_looked_and_how_to_add_one() {
    let first = scratch("plugins-a");
    let second = scratch("plugins-b");
    let (a, b) = (
        first.path().to_string_lossy().into_owned(),
        second.path().to_string_lossy().into_owned(),
    );
    let file = "tests/malformed/30-unknown-plugin.yaml";
    let ran = support::run(&["validate", file, "--plugins", &a, "--plugins", &b]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    // Same position as ever; then the places searched, in order.
    let line = ran
        .stderr
        .lines()
        .find(|l| l.starts_with(&format!("{file}:10:23: error[unknown-plugin]")))
        .unwrap_or_else(|| panic!("no diagnostic line:\n{}", ran.stderr));
    let builtins = line.find("built-in plugin").expect("names the built-ins");
    let at_a = line
        .find(&format!("`{a}`"))
        .expect("names the first --plugins dir");
    let at_b = line
        .find(&format!("`{b}`"))
        .expect("names the second --plugins dir");
    assert!(builtins < at_a && at_a < at_b, "{line}");
    // The hint, unwrapped: how to add one.
    let json = support::run(&["validate", file, "--plugins", &a, "--output", "json"]).json();
    let hint = json["diagnostics"][0]["hint"].as_str().unwrap_or_default();
    for fragment in [
        "did you mean `echo`?",
        "`ecoh.wasm`",
        "--plugins DIR",
        "weft plugin list",
    ] {
        assert!(hint.contains(fragment), "no `{fragment}` in: {hint}");
    }
    let described = support::run(&["plugin", "describe", "ecoh", "--plugins", &a]);
    assert_eq!(described.code, 2, "{}", described.stderr);
    assert!(
        described.stderr.contains("built-in plugin")
            && described.stderr.contains(&format!("`{a}`"))
            && described.stderr.contains("--plugins DIR"),
        "{}",
        described.stderr
    );
}
