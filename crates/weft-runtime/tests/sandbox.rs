//! The sandbox contract, tested with the real first-party plugins: every `hostile` mode is
//! contained with the named reason, the host keeps serving other tasks, ungranted imports
//! are refused before instantiation, bad components are refused at load.
//!
//! Needs the plugins built (`cargo xtask test` does it; or `cargo xtask build-plugins`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use weft_core::contract::{ParamValue, TaskEnding};
use weft_runtime::{
    Grants, HttpRule, LoadError, MemorySink, PluginKind, SecretValue, TaskReport, TaskRequest,
    WorkspaceMount,
};

mod common;

use common::{plugin, plugin_dir, runtime};

/// A request for the hostile plugin in `mode`, with the grants its imports need.
fn hostile_request(mode: &str) -> (TaskRequest, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::default());
    let mut request = TaskRequest::new(format!("hostile-{mode}"));
    request.log = sink.clone();
    request
        .params
        .insert("mode".into(), ParamValue::Str(mode.into()));
    request.grants.http = vec![HttpRule::parse("allowed.invalid").expect("rule")];
    request.limits.cpu_budget = Duration::from_millis(500);
    request.limits.wall_clock = Some(Duration::from_secs(20));
    request.limits.memory_bytes = 64 << 20;
    request.limits.log_bytes = 1 << 20;
    (request, sink)
}

fn errored_reason(report: &TaskReport) -> &str {
    match &report.ending {
        TaskEnding::Errored { reason, .. } => reason,
        other => panic!("expected an Errored ending, got {other:?}"),
    }
}

fn blocked(report: &TaskReport) -> &str {
    match &report.ending {
        TaskEnding::Failure {
            message,
            exit_code: 3,
        } if message.starts_with("blocked:") => message,
        other => panic!("expected the hostile action to be blocked, got {other:?}"),
    }
}

/// After a hostile task, the host still serves an ordinary one.
async fn host_still_serves() {
    let mut request = TaskRequest::new("echo-after");
    request
        .params
        .insert("message".into(), ParamValue::Str("still here".into()));
    let report = plugin("echo").run(request).await;
    assert_eq!(report.ending, TaskEnding::Success);
    assert_eq!(
        report.results.get("message").map(String::as_str),
        Some("still here")
    );
}

#[tokio::test]
async fn echo_logs_and_returns_its_message() {
    let sink = Arc::new(MemorySink::default());
    let mut request = TaskRequest::new("greet");
    request.log = sink.clone();
    request
        .params
        .insert("message".into(), ParamValue::Str("hello weft".into()));
    let echo = plugin("echo");
    assert_eq!(echo.kind(), PluginKind::Task);
    assert_eq!(
        echo.wit_version().map(ToString::to_string).as_deref(),
        Some(weft_runtime::WIT_VERSION)
    );
    let report = echo.run(request).await;
    assert_eq!(report.ending, TaskEnding::Success);
    assert_eq!(
        report.results.get("message").map(String::as_str),
        Some("hello weft")
    );
    assert!(sink.text().contains("hello weft"), "log: {}", sink.text());
}

#[tokio::test]
async fn describe_reports_params_and_results() {
    let info = plugin("exit").describe().await.expect("describe");
    assert_eq!(info.name, "exit");
    let names: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
    for expected in [
        "code",
        "outcome",
        "message",
        "sleepMs",
        "results",
        "failTimes",
    ] {
        assert!(
            names.contains(&expected),
            "missing param {expected} in {names:?}"
        );
    }
    let echo = plugin("echo").describe().await.expect("describe");
    assert!(echo.results_fixed);
    assert_eq!(echo.results[0].name, "message");
    assert!(echo.params[0].default.is_none(), "message is required");
}

#[tokio::test]
async fn exit_plugin_maps_outcomes_and_counts_attempts() {
    let exit = plugin("exit");
    let run = |params: &[(&str, &str)], retry_count: u32| {
        let mut request = TaskRequest::new("exit");
        request.context.retry_count = retry_count;
        for (k, v) in params {
            request
                .params
                .insert((*k).into(), ParamValue::Str((*v).into()));
        }
        exit.run(request)
    };
    assert_eq!(run(&[], 0).await.ending, TaskEnding::Success);
    assert!(matches!(
        run(&[("code", "7")], 0).await.ending,
        TaskEnding::Failure { exit_code: 7, .. }
    ));
    assert!(
        matches!(run(&[("outcome", "halt"), ("message", "nothing to do")], 0).await.ending,
        TaskEnding::Halt { ref message } if message == "nothing to do")
    );
    assert!(matches!(
        run(&[("outcome", "warning")], 0).await.ending,
        TaskEnding::Warning { .. }
    ));
    assert!(matches!(
        run(&[("outcome", "skip")], 0).await.ending,
        TaskEnding::Skip { .. }
    ));
    let with_results = run(&[("results", "a=1,b=two")], 0).await;
    assert_eq!(
        with_results.results.get("b").map(String::as_str),
        Some("two")
    );
    assert!(matches!(
        run(&[("failTimes", "2")], 1).await.ending,
        TaskEnding::Failure { exit_code: 1, .. }
    ));
    assert_eq!(
        run(&[("failTimes", "2")], 2).await.ending,
        TaskEnding::Success
    );
}

#[tokio::test]
async fn infinite_loop_is_stopped_by_the_cpu_budget() {
    let (request, _) = hostile_request("loop");
    let report = plugin("hostile").run(request).await;
    assert_eq!(errored_reason(&report), "CpuBudgetExceeded");
    host_still_serves().await;
}

#[tokio::test]
async fn infinite_loop_is_stopped_by_the_wall_clock() {
    let (mut request, _) = hostile_request("loop");
    request.limits.cpu_budget = Duration::from_secs(600);
    request.limits.wall_clock = Some(Duration::from_millis(300));
    let report = plugin("hostile").run(request).await;
    assert_eq!(errored_reason(&report), "TimedOut");
    host_still_serves().await;
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let (request, _) = hostile_request("memory");
    let report = plugin("hostile").run(request).await;
    assert_eq!(errored_reason(&report), "MemoryLimitExceeded");
    host_still_serves().await;
}

#[tokio::test]
async fn deep_recursion_overflows_the_stack() {
    let (request, _) = hostile_request("recursion");
    let report = plugin("hostile").run(request).await;
    assert_eq!(
        errored_reason(&report),
        "StackOverflow",
        "{:?}",
        report.ending
    );
    host_still_serves().await;
}

#[tokio::test]
async fn output_flood_hits_the_log_budget() {
    let (request, sink) = hostile_request("flood");
    let report = plugin("hostile").run(request).await;
    assert_eq!(errored_reason(&report), "LogBudgetExceeded");
    let logged: usize = sink.lines().iter().map(|l| l.text.len()).sum();
    assert!(
        logged <= (1 << 20) + 64 * 1024,
        "logged {logged} bytes past a 1 MiB budget"
    );
    host_still_serves().await;
}

#[tokio::test]
async fn log_flood_hits_the_log_budget() {
    let (request, _) = hostile_request("log-flood");
    let report = plugin("hostile").run(request).await;
    assert_eq!(errored_reason(&report), "LogBudgetExceeded");
    host_still_serves().await;
}

#[tokio::test]
async fn huge_result_hits_the_result_budget() {
    let (mut request, _) = hostile_request("huge-result");
    request
        .params
        .insert("bytes".into(), ParamValue::Str((4 << 20).to_string()));
    let report = plugin("hostile").run(request).await;
    assert_eq!(errored_reason(&report), "ResultSizeExceeded");
    assert!(report.results.is_empty());
    host_still_serves().await;
}

#[tokio::test]
async fn an_oversized_host_call_exhausts_the_hostcall_fuel() {
    let (mut request, _) = hostile_request("huge-hostcall");
    request.limits.memory_bytes = 128 << 20;
    request.limits.log_bytes = 64 << 20;
    let report = plugin("hostile").run(request).await;
    assert_eq!(
        errored_reason(&report),
        "HostcallFuelExhausted",
        "{:?}",
        report.ending
    );
    host_still_serves().await;
}

#[tokio::test]
async fn reading_host_files_is_blocked() {
    let (request, _) = hostile_request("read-passwd");
    let report = plugin("hostile").run(request).await;
    blocked(&report);
}

fn with_workspace(request: &mut TaskRequest, dir: &std::path::Path, read_only: bool) {
    request.grants.workspaces.push(WorkspaceMount {
        name: "ws".into(),
        host_path: dir.to_path_buf(),
        guest_path: "/workspace/ws".into(),
        read_only,
    });
}

#[tokio::test]
async fn escaping_the_workspace_with_dotdot_is_blocked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut request, _) = hostile_request("escape-dotdot");
    with_workspace(&mut request, dir.path(), false);
    let report = plugin("hostile").run(request).await;
    blocked(&report);
}

#[tokio::test]
async fn escaping_the_workspace_with_a_symlink_is_blocked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut request, _) = hostile_request("escape-symlink");
    with_workspace(&mut request, dir.path(), false);
    let report = plugin("hostile").run(request).await;
    blocked(&report);
}

/// Every symbolic link under `root` on the host, with its target.
fn host_links(root: &std::path::Path) -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
    let mut links = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_symlink() {
                let target = std::fs::read_link(&path).expect("link");
                links.push((
                    path.strip_prefix(root).expect("under").to_path_buf(),
                    target,
                ));
            } else if meta.is_dir() {
                dirs.push(path);
            }
        }
    }
    links.sort();
    links
}

/// Where `link` (relative to `root`, whose directories are real) leads, read as text;
/// `None` if above `root`.
fn lexical_target(link: &std::path::Path, target: &std::path::Path) -> Option<std::path::PathBuf> {
    use std::path::Component;
    let mut parts: Vec<Component> = link.parent()?.components().collect();
    for part in target.components() {
        match part {
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            Component::Normal(_) => parts.push(part),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

#[tokio::test]
async fn links_out_of_the_workspace_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = dir.path().join("ws");
    std::fs::create_dir(&ws).expect("ws");
    let (mut request, sink) = hostile_request("symlink-out");
    with_workspace(&mut request, &ws, false);
    let report = plugin("hostile").run(request).await;
    let message = blocked(&report);
    let shapes = [
        "climb",
        "absolute",
        "tangled",
        "subdir",
        "through-link",
        "after-link",
        "rename-link",
        "hard-link",
        "rename-dir",
    ];
    let errors: Vec<&str> = message["blocked: ".len()..].split("; ").collect();
    assert_eq!(errors.len(), shapes.len(), "{message}");
    for (shape, error) in shapes.iter().zip(&errors) {
        assert!(
            error.starts_with(&format!("{shape}: ")) && error.contains("not permitted"),
            "{shape}: {error}"
        );
    }
    // Nothing was made, moved or linked out: only the set-up links are on the host,
    // where they were, and each leads inside.
    let links = host_links(&ws);
    let names: Vec<String> = links
        .iter()
        .map(|(link, target)| format!("{} -> {}", link.display(), target.display()))
        .collect();
    assert_eq!(
        names,
        [
            "deep/er/l -> ../../x",
            "sub/rel -> ../inside.txt",
            "sub/up -> .."
        ]
    );
    for (link, target) in &links {
        assert!(lexical_target(link, target).is_some(), "{}", link.display());
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("readable").count(),
        1,
        "nothing next to the workspace"
    );
    // The task's log says what was refused.
    let log = sink.text();
    assert!(
        log.contains("refused to make the symbolic link `out-climb` -> `../../etc/passwd`"),
        "{log}"
    );
    assert!(log.contains("refused to move `deep/er` to `er`"), "{log}");
    host_still_serves().await;
}

#[tokio::test]
async fn links_inside_the_workspace_keep_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut request, _) = hostile_request("symlink-inside");
    with_workspace(&mut request, dir.path(), false);
    let report = plugin("hostile").run(request).await;
    assert_eq!(report.ending, TaskEnding::Success);
    let links = host_links(dir.path());
    let names: Vec<String> = links
        .iter()
        .map(|(link, target)| format!("{} -> {}", link.display(), target.display()))
        .collect();
    assert_eq!(
        names,
        [
            "link-chain -> sub/link-up",
            "link-same -> data.txt",
            "moved/a/b/deep -> ../../data.txt",
            "p/q/two-up -> ../../data.txt",
            "r/fits -> ../x",
            "sub/link-hard -> ../data.txt",
            "sub/link-moved -> ../data.txt",
        ]
    );
    for (link, target) in &links {
        assert!(lexical_target(link, target).is_some(), "{}", link.display());
    }
    let data = std::fs::read_to_string(dir.path().join("sub/link-moved")).expect("follows");
    assert_eq!(data, "inside data");
}

#[tokio::test]
async fn read_only_workspaces_cannot_be_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut request, _) = hostile_request("write-readonly");
    with_workspace(&mut request, dir.path(), true);
    let report = plugin("hostile").run(request).await;
    blocked(&report);
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("readable").count(),
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn an_ungranted_secret_is_denied_and_a_granted_one_revealed_and_masked() {
    let (mut request, sink) = hostile_request("secret");
    request
        .params
        .insert("secret".into(), ParamValue::Str("deploy-token".into()));
    let report = plugin("hostile").run(request).await;
    blocked(&report);
    assert!(
        sink.text()
            .contains("`deploy-token` was requested but is not granted"),
        "log: {}",
        sink.text()
    );

    let (mut request, sink) = hostile_request("secret");
    request
        .params
        .insert("secret".into(), ParamValue::Str("deploy-token".into()));
    request
        .grants
        .secrets
        .insert("deploy-token".into(), SecretValue::new("s3cr3t-value-42"));
    let report = plugin("hostile").run(request).await;
    // The hostile plugin prints what it got; the host masks it.
    match &report.ending {
        TaskEnding::Failure { exit_code: 66, .. } => {}
        other => panic!("a granted secret should be revealed, got {other:?}"),
    }
    assert!(
        !sink.text().contains("s3cr3t-value-42"),
        "secret leaked into the log: {}",
        sink.text()
    );
}

#[tokio::test]
async fn http_to_a_host_not_allowed_is_denied() {
    let (mut request, sink) = hostile_request("http");
    request
        .params
        .insert("url".into(), ParamValue::Str("http://example.com/".into()));
    let report = plugin("hostile").run(request).await;
    blocked(&report);
    assert!(sink.text().contains("denied"), "log: {}", sink.text());
}

#[tokio::test]
async fn ungranted_interface_is_refused_before_instantiation() {
    let (mut request, sink) = hostile_request("canary-write");
    request.grants = Grants::default(); // no HTTP rule, but hostile imports wasi:http
    let report = plugin("hostile").run(request).await;
    assert_eq!(errored_reason(&report), "CapabilityDenied");
    let TaskEnding::Errored { message, .. } = &report.ending else {
        unreachable!()
    };
    assert!(message.contains("wasi:http/"), "{message}");
    assert!(message.contains("not instantiated"), "{message}");
    assert!(sink.text().contains("wasi:http/"), "the task log says why");
}

const SOCKETS_COMMAND: &str = r#"(component
  (import "wasi:sockets/tcp@0.2.0" (instance))
  (core module $m (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $runi (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $runi))
)"#;

#[tokio::test]
async fn raw_sockets_are_never_granted() {
    let plugin = runtime()
        .load_bytes("sockets", SOCKETS_COMMAND.as_bytes())
        .expect("a command importing sockets loads");
    assert_eq!(plugin.kind(), PluginKind::Command);
    let mut request = TaskRequest::new("sockets");
    request.grants.http = vec![HttpRule::parse("example.com").expect("rule")];
    let report = plugin.run(request).await;
    assert_eq!(errored_reason(&report), "CapabilityDenied");
    let TaskEnding::Errored { message, .. } = &report.ending else {
        unreachable!()
    };
    assert!(
        message.contains("wasi:sockets/tcp@0.2.0") && message.contains("never granted"),
        "{message}"
    );
}

#[tokio::test]
async fn invalid_and_truncated_components_are_refused() {
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("text", b"hello, not wasm".to_vec(), "magic bytes"),
        (
            "core",
            b"\0asm\x01\0\0\0".to_vec(),
            "core WebAssembly module",
        ),
        ("empty", Vec::new(), "magic bytes"),
        (
            "truncated",
            {
                let bytes = std::fs::read(plugin_dir().join("echo.wasm")).expect("echo.wasm");
                bytes[..bytes.len() / 2].to_vec()
            },
            "not a valid WebAssembly component",
        ),
    ];
    for (name, bytes, expected) in cases {
        let err = runtime().load_bytes(name, &bytes).expect_err(name);
        assert!(matches!(err, LoadError::Invalid { .. }), "{name}: {err}");
        assert!(err.to_string().contains(expected), "{name}: {err}");
    }
}

#[tokio::test]
async fn a_component_for_an_unknown_wit_major_is_refused() {
    for version in ["9.0.0", "0.3.0", "0.0.1", "1.0.0"] {
        let wat = format!(
            r#"(component (instance $i) (export "weft:plugin/task-plugin@{version}" (instance $i)))"#
        );
        let err = runtime()
            .load_bytes("future", wat.as_bytes())
            .expect_err(version);
        assert!(
            matches!(err, LoadError::UnsupportedWitVersion { .. }),
            "{version}: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(version) && text.contains("0.1.x or 0.2.x"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_component_that_is_not_a_task_is_refused() {
    let err = runtime()
        .load_bytes("nothing", b"(component)")
        .expect_err("no exports");
    assert!(matches!(err, LoadError::NotATask { .. }), "{err}");
}

#[tokio::test]
async fn plain_wasi_commands_run_with_their_exit_code() {
    // A command whose `run` returns an error result: exit code 1.
    let failing = r#"(component
      (core module $m (func (export "run") (result i32) i32.const 1))
      (core instance $i (instantiate $m))
      (func $run (result (result)) (canon lift (core func $i "run")))
      (instance $runi (export "run" (func $run)))
      (export "wasi:cli/run@0.2.0" (instance $runi))
    )"#;
    let plugin = runtime()
        .load_bytes("failing", failing.as_bytes())
        .expect("loads");
    let report = plugin.run(TaskRequest::new("failing")).await;
    assert!(
        matches!(report.ending, TaskEnding::Failure { exit_code: 1, .. }),
        "{:?}",
        report.ending
    );
    let info = plugin
        .describe()
        .await
        .expect("commands are described by the host");
    assert!(info.accepts_any_params);
}

#[tokio::test]
async fn pooled_slots_never_leak_data_between_tasks() {
    let canary = "weft-canary-6c1f0e";
    let (mut write, _) = hostile_request("canary-write");
    write
        .params
        .insert("canary".into(), ParamValue::Str(canary.into()));
    let report = plugin("hostile").run(write).await;
    assert_eq!(report.ending, TaskEnding::Success);
    let (mut read, _) = hostile_request("canary-read");
    read.params
        .insert("canary".into(), ParamValue::Str(canary.into()));
    let report = plugin("hostile").run(read).await;
    assert_eq!(
        report.ending,
        TaskEnding::Success,
        "task B saw task A's canary"
    );
}

#[tokio::test]
async fn checkpoints_persist_across_attempts() {
    let store: Arc<dyn weft_runtime::CheckpointStore> =
        Arc::new(weft_runtime::MemoryCheckpoints::default());
    store.put("k", b"v".to_vec()).expect("put");
    assert_eq!(store.get("k"), Some(b"v".to_vec()));
    let _ = BTreeMap::<String, String>::new();
}
