//! Running the `weft` binary and reading what it prints.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::fake_forge::FakeForge;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Directory of test pipelines (`tests/pipelines`).
pub fn pipelines() -> PathBuf {
    root().join("tests/pipelines")
}

/// The built plugins (for `hostile`, which is never built in).
pub fn plugin_dir() -> PathBuf {
    match std::env::var_os("WEFT_PLUGIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => root().join("target/plugins"),
    }
}

/// Scratch space shared by the tests of one process: data and component cache.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e");
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}

/// A `weft` command with isolated data and cache directories.
pub fn weft() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.current_dir(root())
        .env("WEFT_DATA_DIR", scratch().join("data"))
        .env("WEFT_CACHE_DIR", scratch().join("cache"))
        .env_remove("WEFT_PLUGINS")
        .env_remove("WEFT_LOG")
        .stdin(Stdio::null());
    cmd
}

/// What a finished `weft` invocation did.
#[derive(Debug)]
pub struct Ran {
    /// Exit code.
    pub code: i32,
    /// Stdout.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
}

impl Ran {
    fn from(output: Output) -> Ran {
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Stdout parsed as JSON (panics with both streams when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// `weft` with its own data directory (the component cache stays shared).
pub fn weft_in(data: &Path) -> Command {
    let mut cmd = weft();
    cmd.env("WEFT_DATA_DIR", data).env_remove("WEFT_DB");
    cmd
}

/// Runs `weft` with its own data directory, `args` and extra `env` to completion.
pub fn run_in(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let output = weft_in(data)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("weft starts");
    Ran::from(output)
}

/// Runs `weft` with `args` to completion.
pub fn run(args: &[&str]) -> Ran {
    Ran::from(weft().args(args).output().expect("weft starts"))
}

/// `weft run FILE --output json` with extra args; `file` is relative to tests/pipelines.
pub fn run_pipeline(file: &str, extra: &[&str]) -> (Ran, Run) {
    let path = pipelines().join(file);
    let path = path.to_string_lossy().into_owned();
    let mut args = vec!["run", path.as_str(), "--output", "json"];
    args.extend_from_slice(extra);
    let ran = run(&args);
    let run = Run(ran.json());
    (ran, run)
}

/// Starts `weft run FILE --output json` without waiting.
pub fn spawn_pipeline(file: &str, extra: &[&str]) -> Child {
    let path = pipelines().join(file);
    weft()
        .arg("run")
        .arg(path)
        .args(["--output", "json"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts")
}

/// Waits for a spawned run.
pub fn finish(child: Child) -> (Ran, Run) {
    let ran = Ran::from(child.wait_with_output().expect("weft finishes"));
    let run = Run(ran.json());
    (ran, run)
}

/// Sends `signal` (e.g. `-INT`) to a process.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(signal)
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} failed");
}

/// The JSON document of a run.
pub struct Run(pub Value);

impl Run {
    /// `run.<field>`.
    pub fn run(&self, field: &str) -> &str {
        self.0["run"][field].as_str().unwrap_or_default()
    }

    /// The task entry called `name`.
    pub fn task(&self, name: &str) -> &Value {
        self.0["tasks"]
            .as_array()
            .and_then(|tasks| tasks.iter().find(|t| t["name"] == name))
            .unwrap_or_else(|| panic!("no task `{name}` in {}", self.0))
    }

    /// `(status, reason)` of a task.
    pub fn outcome(&self, name: &str) -> (&str, &str) {
        let task = self.task(name);
        (
            task["status"].as_str().unwrap_or_default(),
            task["reason"].as_str().unwrap_or_default(),
        )
    }

    /// Asserts the run's status, reason and aggregates.
    #[track_caller]
    pub fn expect_run(&self, status: &str, reason: &str, tasks_status: &str, tasks_outcome: &str) {
        let got = (
            self.run("status"),
            self.run("reason"),
            self.run("tasksStatus"),
            self.run("tasksOutcome"),
        );
        assert_eq!(
            got,
            (status, reason, tasks_status, tasks_outcome),
            "run: {:#}",
            self.0
        );
    }

    /// Asserts each task's `(status, reason)`.
    #[track_caller]
    pub fn expect_tasks(&self, expected: &[(&str, &str, &str)]) {
        for (name, status, reason) in expected {
            assert_eq!(
                self.outcome(name),
                (*status, *reason),
                "task `{name}` in {:#}",
                self.0
            );
        }
    }
}

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Asserts `secret` appears nowhere but in the `auth_header` of requests to the forge:
/// not in stdout, stderr, any file under the data directory (logs, report.json, the run
/// store and its WAL), nor any other header or body the forge received.
#[track_caller]
pub fn assert_contained(
    secret: &str,
    out: &Ran,
    data: &Path,
    forge: &FakeForge,
    auth_header: &str,
) {
    assert!(!out.stdout.contains(secret), "secret in stdout");
    assert!(!out.stderr.contains(secret), "secret in stderr");
    let scanned = files(data);
    assert!(
        scanned.iter().any(|p| p.ends_with("report.json")),
        "the scan must cover report.json: {scanned:?}"
    );
    for path in scanned {
        if path.file_name().is_some_and(|n| n == "secrets.json") {
            continue; // the secret store itself (empty in these tests)
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret found in {}",
            path.display()
        );
    }
    for request in forge.requests() {
        assert!(
            !request.body.contains(secret),
            "secret in a request body: {request:?}"
        );
        for (name, value) in &request.headers {
            if name != &auth_header.to_ascii_lowercase() {
                assert!(!value.contains(secret), "secret in header {name}");
            }
        }
    }
}

/// Runs `check` on every row of a table, each on its own (as Go's `t.Run`): a failing row
/// is reported by name and does not hide the rows after it.
#[track_caller]
pub fn each_row<R>(rows: Vec<R>, name: impl Fn(&R) -> &'static str, check: impl Fn(R)) {
    let mut failed = Vec::new();
    for row in rows {
        let row_name = name(&row);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(row)));
        if outcome.is_err() {
            failed.push(row_name);
        }
    }
    assert!(failed.is_empty(), "rows failed: {failed:?}");
}
