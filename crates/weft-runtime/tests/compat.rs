//! Plugins built against an older `weft:plugin` keep working: the components in
//! `tests/fixtures/v0.1.0/` were built by weft-sdk for `weft:plugin@0.1.0` (the first-party
//! `echo`, `reporter-webhook` and `require-params` as they were before 0.2.0) and are kept
//! as they are. Each is loaded, described and run through the 0.1.0 bindings, next to
//! the same plugin built today (0.2.0), with the same results: a task logs and returns
//! results, a reporter reveals a granted secret and delivers over HTTP, a decorator
//! decorates.
//!
//! The current builds need the plugins built (`cargo xtask build-plugins`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use weft_core::contract::{Delivery, ParamValue, ReportEvent, ReportStatus, TaskEnding};
use weft_runtime::{HttpRule, MemorySink, Plugin, PluginKind, SecretValue, TaskRequest};

mod common;

use common::{plugin, runtime};

/// The 0.1.0 build of `name`, from the fixtures.
fn v0_1(name: &str) -> Plugin {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v0.1.0")
        .join(format!("{name}.wasm"));
    runtime().load_file(&path).expect("a 0.1.0 plugin loads")
}

/// The 0.1.0 build and today's build of `name`, with the version each says it was built
/// for.
fn both(name: &str) -> [(Plugin, &'static str); 2] {
    [
        (v0_1(name), "0.1.0"),
        (plugin(name), weft_runtime::WIT_VERSION),
    ]
}

fn version(plugin: &Plugin) -> String {
    plugin
        .wit_version()
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_0_1_task_still_runs() {
    for (echo, built_for) in both("echo") {
        assert_eq!(echo.kind(), PluginKind::Task);
        assert_eq!(version(&echo), built_for);
        assert!(
            echo.imports()
                .iter()
                .any(|i| i == &format!("weft:plugin/log@{built_for}")),
            "{:?}",
            echo.imports()
        );
        let info = echo.describe().await.expect("describes");
        assert_eq!(info.name, "echo");
        let sink = Arc::new(MemorySink::default());
        let mut request = TaskRequest::new("greet");
        request.log = sink.clone();
        request.params.insert(
            "message".into(),
            ParamValue::Str("hello from the past".into()),
        );
        let report = echo.run(request).await;
        assert_eq!(report.ending, TaskEnding::Success, "{built_for}");
        assert_eq!(
            report.results.get("message").map(String::as_str),
            Some("hello from the past")
        );
        assert!(sink.text().contains("hello from the past"), "{built_for}");
    }
}

#[tokio::test]
async fn a_0_1_decorator_still_decorates() {
    for (require, built_for) in both("require-params") {
        assert_eq!(require.kind(), PluginKind::FormDecorator);
        assert_eq!(version(&require), built_for);
        let described = require.describe_decorator().await.expect("describes");
        assert_eq!(described.info.name, "require-params");
        assert!(!described.input_schema.is_empty());
        let input = r#"{"params": {"branch": ["main", "release/*"]}}"#;
        let mut request = TaskRequest::new("decorator:require-params");
        request.limits.wall_clock = Some(Duration::from_secs(20));
        let state = BTreeMap::from([("branch".to_string(), ParamValue::Str("main".into()))]);
        let decorated = require
            .decorate(request, &state, input)
            .await
            .expect("runs")
            .expect("accepts main");
        assert_eq!(decorated.params, state, "{built_for}");
        let mut request = TaskRequest::new("decorator:require-params");
        request.limits.wall_clock = Some(Duration::from_secs(20));
        let state = BTreeMap::from([("branch".to_string(), ParamValue::Str("topic".into()))]);
        let refused = require
            .decorate(request, &state, input)
            .await
            .expect("runs");
        assert!(refused.is_err(), "{built_for}: {refused:?}");
    }
}

/// A loopback server answering 200 to each request, once it read the whole request (a
/// server that closes with the body unread resets the connection under the client's
/// feet), and sending its head on `heads`.
async fn hook_server() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                let end = loop {
                    if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                };
                let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
                let header = |name: &str| {
                    text.lines().find_map(|line| {
                        let (key, value) = line.split_once(':')?;
                        (key.trim() == name).then(|| value.trim().to_string())
                    })
                };
                let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
                let length: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = head[end..].to_vec();
                while if chunked {
                    !body.ends_with(b"0\r\n\r\n")
                } else {
                    body.len() < length
                } {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => body.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn a_0_1_reporter_still_reports() {
    let (port, mut heads) = hook_server().await;
    for (webhook, built_for) in both("reporter-webhook") {
        assert_eq!(webhook.kind(), PluginKind::Reporter);
        assert_eq!(version(&webhook), built_for);
        let info = webhook.describe().await.expect("describes");
        assert_eq!(info.capabilities.secrets, ["webhook-secret"]);
        let mut request = TaskRequest::new("reporter:webhook");
        request.limits.cpu_budget = Duration::from_secs(2);
        request.limits.wall_clock = Some(Duration::from_secs(20));
        request.grants.http =
            vec![HttpRule::parse(&format!("!private:127.0.0.1:{port}")).expect("rule")];
        request.grants.secrets.insert(
            "webhook-secret".into(),
            SecretValue::new("hmac-key-0123456789"),
        );
        let event = ReportEvent {
            run_name: "r".into(),
            run_uid: "u".into(),
            pipeline_name: "p".into(),
            status: ReportStatus::Succeeded,
            reason: String::new(),
            halted_by: None,
            message: String::new(),
            description: String::new(),
            task: None,
            config: vec![("url".into(), format!("http://127.0.0.1:{port}/hook"))],
            attempt: 0,
        };
        let delivery = webhook.report(request, event).await.expect("reports");
        assert_eq!(delivery, Delivery::Done, "{built_for}");
        let head = heads.recv().await.expect("the server got the request");
        assert!(head.starts_with("POST /hook"), "{head}");
        // Signed with the granted secret: `secrets` works through the plugin's version.
        assert!(
            head.to_ascii_lowercase()
                .contains("x-weft-signature: sha256="),
            "{built_for}: {head}"
        );
    }
}
