//! OpenTelemetry traces: `weft run --otlp-endpoint URL` sends a span per run and per task
//! attempt to a small OTLP/HTTP receiver played by the test (JSON encoding), with the run
//! and task as attributes and nothing a task produced.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::support::{pipelines, run_in};

/// Each export request's request line and body.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// Accepts OTLP/HTTP export requests and keeps their bodies.
fn receiver() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            kept.lock().expect("lock").push((
                request_line.trim().to_string(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
        }
    });
    (address, received)
}

#[test]
fn a_run_and_its_task_attempts_are_sent_as_spans() {
    let (endpoint, received) = receiver();
    let data = tempfile::tempdir().expect("tempdir");
    let file = pipelines().join("all-succeed.yaml");
    let ran = run_in(
        data.path(),
        &[
            "run",
            &file.to_string_lossy(),
            "--name",
            "traced-run",
            "--otlp-endpoint",
            &endpoint,
        ],
        &[],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let requests = received.lock().expect("lock").clone();
    assert!(!requests.is_empty(), "no export request arrived");
    assert!(
        requests
            .iter()
            .all(|(line, _)| line.starts_with("POST /v1/traces ")),
        "{requests:?}"
    );
    let bodies: String = requests.iter().map(|(_, body)| body.as_str()).collect();
    for expected in [
        "\"run traced-run\"",
        "\"task fetch\"",
        "\"task package\"",
        "\"task report\"",
        "\"weft.task\"",
        "\"weft.outcome\"",
        "\"service.name\"",
    ] {
        assert!(bodies.contains(expected), "{expected} not in {bodies}");
    }
    // A task's results and params never become attributes.
    assert!(
        !bodies.contains("abc123"),
        "a result leaked into a span: {bodies}"
    );

    // A URL that is not one: exit 2 before anything runs.
    let bad = run_in(
        data.path(),
        &["run", &file.to_string_lossy(), "--otlp-endpoint", "ftp://x"],
        &[],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}
