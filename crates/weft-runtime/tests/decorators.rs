//! Form decorators in the sandbox, with the real first-party plugins: `describe` carries
//! the input schema, `decorate` returns the new form state and run secrets, and every
//! misbehaviour (a loop, an oversized decoration, an ungranted import, the wrong kind of
//! plugin) ends with a reason naming it.
//!
//! Needs the plugins built (`cargo xtask test` does it; or `cargo xtask build-plugins`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use weft_core::contract::{ParamValue, TaskEnding};
use weft_runtime::{HttpRule, PluginKind, TaskRequest};

mod common;

use common::plugin;

fn request(http: bool) -> TaskRequest {
    let mut request = TaskRequest::new("decorator:test");
    request.limits.cpu_budget = Duration::from_millis(500);
    request.limits.wall_clock = Some(Duration::from_secs(20));
    if http {
        request.grants.http = vec![HttpRule::parse("allowed.invalid").expect("rule")];
    }
    request
}

fn s(value: &str) -> ParamValue {
    ParamValue::Str(value.to_string())
}

fn errored_reason(ending: &TaskEnding) -> &str {
    match ending {
        TaskEnding::Errored { reason, .. } => reason,
        other => panic!("not errored: {other:?}"),
    }
}

#[tokio::test]
async fn describe_carries_the_input_schema() {
    let derive = plugin("derive-params");
    assert_eq!(derive.kind(), PluginKind::FormDecorator);
    let described = derive.describe_decorator().await.expect("describes");
    assert_eq!(described.info.name, "derive-params");
    let schema: serde_json::Value =
        serde_json::from_str(&described.input_schema).expect("the schema is JSON");
    assert_eq!(schema["required"], serde_json::json!(["params"]));
    // The plain describe gives the same plugin info.
    assert_eq!(derive.describe().await.expect("describes"), described.info);
    // A task is not a decorator.
    assert!(plugin("echo").describe_decorator().await.is_err());
}

#[tokio::test]
async fn decorate_returns_the_new_form_state() {
    let derive = plugin("derive-params");
    let state = BTreeMap::from([("commit".to_string(), s("abcdef0123456"))]);
    let input = r#"{"params": {"imageTag": "v-$(params.commit | head:7)"}}"#;
    let decorated = derive
        .decorate(request(false), &state, input)
        .await
        .expect("runs")
        .expect("accepts");
    assert_eq!(decorated.params.get("imageTag"), Some(&s("v-abcdef0")));
    assert_eq!(decorated.params.get("commit"), Some(&s("abcdef0123456")));
    assert!(decorated.secrets.is_empty());
    // A refusal is the decorator's message.
    let refused = derive
        .decorate(
            request(false),
            &BTreeMap::new(),
            r#"{"params": {"x": "$(params.nope)"}}"#,
        )
        .await
        .expect("runs");
    assert!(
        matches!(&refused, Err(m) if m.contains("param `nope` is not set")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn run_secrets_come_back_with_the_decoration() {
    let hostile = plugin("hostile-decorator");
    let decorated = hostile
        .decorate(
            request(true),
            &BTreeMap::new(),
            r#"{"mode": "set-secret", "name": "run-token", "value": "run-value-0123"}"#,
        )
        .await
        .expect("runs")
        .expect("accepts");
    assert_eq!(
        decorated.secrets,
        [("run-token".to_string(), "run-value-0123".to_string())]
    );
}

#[tokio::test]
async fn a_looping_decorator_is_stopped_by_its_cpu_budget() {
    let hostile = plugin("hostile-decorator");
    let started = Instant::now();
    let report = hostile
        .decorate(request(true), &BTreeMap::new(), r#"{"mode": "loop"}"#)
        .await
        .expect_err("stopped");
    assert_eq!(errored_reason(&report.ending), "CpuBudgetExceeded");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn an_oversized_decoration_is_refused() {
    let hostile = plugin("hostile-decorator");
    let mut request = request(true);
    request.limits.result_bytes = 1024;
    let input = serde_json::json!({"mode": "set-param", "name": "big", "value": "x".repeat(4096)});
    let report = hostile
        .decorate(request, &BTreeMap::new(), &input.to_string())
        .await
        .expect_err("too big");
    assert_eq!(errored_reason(&report.ending), "ResultSizeExceeded");
}

#[tokio::test]
async fn ungranted_imports_and_wrong_kinds_are_refused() {
    // hostile-decorator imports wasi:http: without a rule it is never instantiated.
    let report = plugin("hostile-decorator")
        .decorate(request(false), &BTreeMap::new(), r#"{"mode": "fail"}"#)
        .await
        .expect_err("refused");
    assert_eq!(errored_reason(&report.ending), "CapabilityDenied");
    let report = plugin("echo")
        .decorate(request(false), &BTreeMap::new(), "{}")
        .await
        .expect_err("not a decorator");
    assert_eq!(errored_reason(&report.ending), "WrongPluginKind");
}
