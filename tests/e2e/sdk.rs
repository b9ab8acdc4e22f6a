//! Plugins written with the Python and JavaScript SDKs, end to end: the examples in
//! `examples/plugins/` (built by `cargo xtask` with `weft plugin build` into the directory
//! `WEFT_SDK_PLUGIN_DIR` names) run through `weft run` as tasks, a reporter, a
//! decorator and gates; and `weft plugin new` + its own test + `weft plugin build` +
//! `weft run` for a task and a gate in each language.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::{Duration, Instant};

use crate::fake_forge::FakeForge;
use crate::release::{self, Health};
use crate::support::{self, Ran, Run};

/// Where the SDK examples were built.
fn sdk_plugins() -> String {
    let dir = match std::env::var_os("WEFT_SDK_PLUGIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => support::root().join("target/sdk-plugins"),
    };
    assert!(
        dir.join("echo-py.wasm").is_file(),
        "{} has no SDK examples: run `cargo xtask build-sdk-plugins` (cargo xtask test does)",
        dir.display()
    );
    dir.to_string_lossy().into_owned()
}

/// The toolchains `weft plugin build` uses: the ones `cargo xtask` installed, unless the
/// environment names others.
fn with_toolchains(cmd: &mut Command) -> &mut Command {
    let tools = support::root().join("target/sdk-tools");
    for (var, default) in [
        (
            "WEFT_COMPONENTIZE_PY",
            tools.join("python/bin/componentize-py"),
        ),
        ("WEFT_JCO", tools.join("js/node_modules/.bin/jco")),
    ] {
        if std::env::var_os(var).is_none() {
            cmd.env(var, default);
        }
    }
    cmd
}

fn ran(cmd: &mut Command) -> Ran {
    let output = cmd.output().expect("the command starts");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn python_and_js_tasks_run_with_params_results_workspaces_secrets_and_endings() {
    let out = tempfile::tempdir().expect("tempdir");
    let workspace = format!("out={}", out.path().display());
    let plugins = sdk_plugins();
    let (ran, run) = support::run_pipeline(
        "sdk-echo.yaml",
        &[
            "--plugins",
            &plugins,
            "--workspace",
            &workspace,
            "--secret",
            "echo-token=literal:tok-Sdk-Seekrit-42",
            "--grant",
            "py=echo-token",
            "-p",
            "ending=warning",
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    run.expect_run(
        "SucceededWithWarnings",
        "SucceededWithWarnings",
        "Succeeded",
        "SucceededWithWarnings",
    );
    assert_eq!(run.task("py")["results"]["message"], "hello from python");
    assert_eq!(
        run.task("js")["results"]["message"],
        "js got: hello from python"
    );
    let written = std::fs::read_to_string(out.path().join("message.txt")).expect("written");
    assert_eq!(written, "hello from python");
    // The Python task revealed the secret into its log: masked, as for any plugin.
    assert!(ran.stderr.contains("echo-token is ***"), "{}", ran.stderr);
    assert!(!ran.stderr.contains("tok-Sdk-Seekrit-42"));
    assert!(!ran.stdout.contains("tok-Sdk-Seekrit-42"));
}

#[test]
fn python_task_endings_map_to_weft_outcomes() {
    let plugins = sdk_plugins();
    for (ending, status, reason) in [
        ("halt", "Succeeded", "Halted"),
        ("skip", "Completed", "Completed"),
        ("failure", "Failed", "Failed"),
    ] {
        let param = format!("ending={ending}");
        let (ran, run) =
            support::run_pipeline("sdk-echo.yaml", &["--plugins", &plugins, "-p", &param]);
        assert_eq!(run.run("status"), status, "{ending}: {}", ran.stderr);
        assert_eq!(run.run("reason"), reason, "{ending}");
        if ending == "failure" {
            assert_eq!(ran.code, 1);
            assert_eq!(run.task("py")["exitCode"], 3);
        }
    }
}

#[test]
fn python_reporter_posts_each_status_to_the_fake_forge() {
    const TOKEN: &str = "hook-Sdk-Token-0099887766";
    let forge = FakeForge::start();
    let data = tempfile::tempdir().expect("tempdir");
    let report = format!(
        "webhook-py:url={}/hook,token-secret=hook-token",
        forge.url()
    );
    let rule = forge.rule();
    let plugins = sdk_plugins();
    let example = support::root().join("examples/build-test-report.yaml");
    let example = example.to_string_lossy().into_owned();
    let out = support::run_in(
        data.path(),
        &[
            "run",
            &example,
            "--output",
            "json",
            "--plugins",
            &plugins,
            "--report",
            &report,
            "--secret",
            "hook-token=env:WEFT_TEST_TOKEN",
            "--allow-http",
            &rule,
        ],
        &[("WEFT_TEST_TOKEN", TOKEN)],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let requests = forge.requests();
    let statuses: Vec<String> = requests
        .iter()
        .map(|r| {
            r.json()["run"]["status"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("pending"),
        "{statuses:?}"
    );
    assert!(statuses.iter().any(|s| s == "running"), "{statuses:?}");
    let last = requests.last().expect("a request");
    assert_eq!(last.json()["terminal"], true);
    assert_eq!(
        last.json()["run"]["status"],
        Run(out.json()).run("status").to_lowercase()
    );
    for request in &requests {
        assert_eq!(request.path, "/hook");
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN));
}

#[test]
fn js_decorator_sets_a_param_and_refuses_bad_input() {
    let plugins = sdk_plugins();
    let (ran, run) = support::run_pipeline("sdk-stamp.yaml", &["--plugins", &plugins]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(run.task("show")["results"]["message"], "build app-0123456");

    let path = support::pipelines().join("sdk-stamp.yaml");
    let refused = support::run(&[
        "run",
        &path.to_string_lossy(),
        "--plugins",
        &plugins,
        "-p",
        "commit=main",
    ]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("param `commit` must be a hex commit id"),
        "{}",
        refused.stderr
    );
}

/// The SDK examples' directory, checked to hold the gate examples, which are described
/// once here: they say they are gates of the 0.2.0 contract, and are compiled into the
/// shared cache before a test's clock starts.
fn sdk_gates() -> String {
    let dir = sdk_plugins();
    for gate in ["health-py", "freeze-js"] {
        assert!(
            Path::new(&dir).join(format!("{gate}.wasm")).is_file(),
            "{dir} has no {gate}.wasm: run `cargo xtask build-sdk-plugins`"
        );
        let described = support::run(&["plugin", "describe", gate, "--plugins", &dir]);
        assert_eq!(described.code, 0, "{}", described.stderr);
        assert!(
            described.stdout.contains("kind: gate")
                && described.stdout.contains("built for weft:plugin@0.2.0"),
            "{}",
            described.stdout
        );
    }
    dir
}

#[test]
fn python_and_js_gates_hold_a_deploy_until_both_pass() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    let plugins = sdk_gates();
    let health = Health::start(false);
    let url = format!("url={}", health.url());
    let rule = health.rule();
    let child = release::spawn_run(
        data,
        "sdk-gates.yaml",
        "sdk-gates",
        &["--plugins", &plugins, "-p", &url, "--allow-http", &rule],
    );
    release::wait_until(data, "sdk-gates", "the Python gate samples", |s| {
        release::is_waiting(s, "healthy")
    });
    // The Python gate sees 503s first; then the endpoint turns healthy and stays so.
    let deadline = Instant::now() + Duration::from_secs(60);
    while health.hits() < 3 {
        assert!(Instant::now() < deadline, "the Python gate is not sampled");
        std::thread::sleep(Duration::from_millis(50));
    }
    let turned = Instant::now();
    health.set(true);
    let ran = release::finish(child);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        turned.elapsed() >= Duration::from_secs(1),
        "passed before holding for stableFor"
    );
    Run(ran.json()).expect_tasks(&[
        ("healthy", "Succeeded", ""),
        ("no-freeze", "Succeeded", ""),
        ("deploy", "Succeeded", ""),
    ]);
    let logs = support::run_in(data, &["runs", "logs", "sdk-gates", "healthy"], &[]);
    assert!(
        logs.stdout.contains("HTTP 503 (expected 200)"),
        "{}",
        logs.stdout
    );
    assert!(logs.stdout.contains("passed: GET"), "{}", logs.stdout);
    let logs = support::run_in(data, &["runs", "logs", "sdk-gates", "no-freeze"], &[]);
    assert!(
        logs.stdout.contains("no change freeze is on (0 listed)"),
        "{}",
        logs.stdout
    );
}

#[test]
fn a_js_gate_fails_at_its_timeout_while_frozen_or_misconfigured() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let plugins = sdk_gates();
    let health = Health::start(true);
    let url = format!("url={}", health.url());
    let rule = health.rule();
    for (name, freezes, message) in [
        (
            "frozen",
            r#"["2000-01-01T00:00:00Z/2999-01-01T00:00:00Z"]"#,
            "change freeze 2000-01-01T00:00:00Z/2999-01-01T00:00:00Z is on until 2999-01-01T00:00:00.000Z",
        ),
        (
            "malformed",
            r#"["after the holidays"]"#,
            "is not an ISO 8601 interval START/END",
        ),
    ] {
        let data = scratch.path().join(name);
        let freezes = format!("freezes={freezes}");
        let ran = support::run_in(
            &data,
            &[
                "run",
                &release::pipeline("sdk-gates.yaml"),
                "--output",
                "json",
                "--name",
                name,
                "--plugins",
                &plugins,
                "-p",
                &url,
                "-p",
                &freezes,
                "--allow-http",
                &rule,
            ],
            &[],
        );
        assert_eq!(ran.code, 1, "{name}: {}", ran.stderr);
        let run = Run(ran.json());
        run.expect_tasks(&[
            ("no-freeze", "Failed", "GatesFailed"),
            ("deploy", "Skipped", "RunStopping"),
        ]);
        let logs = support::run_in(&data, &["runs", "logs", name, "no-freeze"], &[]);
        assert!(logs.stdout.contains(message), "{name}: {}", logs.stdout);
    }
}

/// `weft plugin new task greet-LANG --lang LANG` (or a gate), the project's own test,
/// `weft plugin build`, then `weft run pipeline.yaml --plugins DIR`: the greeting comes
/// back (after the gate held, for a gate).
fn new_build_run(kind: &str, lang: &str, test: &[&str]) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let name = format!("greet-{kind}-{lang}");
    let dir = scratch.path().join(&name);
    let created = ran(support::weft()
        .args(["plugin", "new", kind, &name, "--lang", lang, "--dir"])
        .arg(&dir));
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(
        created.stdout.contains("weft plugin build"),
        "{}",
        created.stdout
    );

    let tested = ran(Command::new(test[0])
        .args(&test[1..])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", rust_target()));
    assert_eq!(
        tested.code, 0,
        "{lang} test:\n{}\n{}",
        tested.stdout, tested.stderr
    );

    let built = ran(
        with_toolchains(support::weft().args(["plugin", "build"]).arg(&dir))
            .env("CARGO_TARGET_DIR", rust_target()),
    );
    assert_eq!(built.code, 0, "{lang} build:\n{}", built.stderr);
    assert!(dir.join(format!("{name}.wasm")).is_file());

    let pipeline = dir.join("pipeline.yaml");
    let out = support::run(&[
        "run",
        &pipeline.to_string_lossy(),
        "--plugins",
        &dir.to_string_lossy(),
        "--output",
        "json",
    ]);
    assert_eq!(out.code, 0, "{lang} run:\n{}", out.stderr);
    let run = Run(out.json());
    if kind == "gate" {
        run.expect_tasks(&[("soak", "Succeeded", ""), ("greet", "Succeeded", "")]);
        assert_eq!(run.task("greet")["results"]["message"], "hello, world");
    } else {
        assert_eq!(run.task("greet")["results"]["greeting"], "hello, world");
    }
}

/// Kept between test runs, so the generated Rust project's dependencies compile once.
fn rust_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-new-rust")
}

#[test]
fn plugin_new_build_run_rust() {
    new_build_run("task", "rust", &["cargo", "test", "--quiet"]);
}

#[test]
fn plugin_new_build_run_python() {
    new_build_run("task", "python", &["python3", "-m", "unittest"]);
}

#[test]
fn plugin_new_build_run_js() {
    new_build_run("task", "js", &["npm", "test", "--silent"]);
}

#[test]
fn plugin_new_gate_build_run_rust() {
    new_build_run("gate", "rust", &["cargo", "test", "--quiet"]);
}

#[test]
fn plugin_new_gate_build_run_python() {
    new_build_run("gate", "python", &["python3", "-m", "unittest"]);
}

#[test]
fn plugin_new_gate_build_run_js() {
    new_build_run("gate", "js", &["npm", "test", "--silent"]);
}
