//! B5: one `weft serve` (SQLite in a temporary data directory, loopback, no token) under
//! 1,000 runs of a 10-task no-op pipeline submitted concurrently over HTTP by a few client
//! threads: runs per minute, and p50 and p99 of each run's duration from submission to
//! finish (the API's `createdAt` and `finishedAt`). The baseline is the same run submitted
//! alone, one at a time. The API's times are whole milliseconds. The server's standard
//! error is kept and shown when it fails.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cluster::{self, Server, TASKS};
use crate::{Figure, Inputs};

/// Runs submitted under load.
const RUNS: usize = 1_000;
/// Client threads submitting them.
const CLIENTS: usize = 4;
/// Runs submitted one at a time for the baseline (the mean is kept: the API's times are
/// whole milliseconds, and a run alone takes about one).
const ALONE: usize = 20;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The runs named `prefix*` among the most recent 1,000: how many are listed, and the
/// duration (ms) and finish time (epoch ms) of those finished. A run that finished other
/// than `Succeeded` is an error.
fn finished_runs(server: &Server, prefix: &str) -> Result<(usize, Vec<(i64, i64)>), String> {
    let (status, body) = cluster::call(&server.address, "GET", "/api/v1/runs?limit=1000", "")?;
    if status != 200 {
        return Err(format!("listing runs: {status} {body}"));
    }
    let runs: serde_json::Value = serde_json::from_str(&body).map_err(err)?;
    let mut listed = 0;
    let mut done = Vec::new();
    for run in runs.as_array().into_iter().flatten() {
        if !run["name"].as_str().is_some_and(|n| n.starts_with(prefix)) {
            continue;
        }
        listed += 1;
        let Some(outcome) = run["status"].as_str() else {
            continue;
        };
        if outcome != "Succeeded" {
            return Err(format!("run {} ended {outcome}", run["name"]));
        }
        if let (Some(created), Some(finished)) =
            (run["createdAt"].as_i64(), run["finishedAt"].as_i64())
        {
            done.push((finished - created, finished));
        }
    }
    Ok((listed, done))
}

/// Polls until `count` runs named `prefix*` have finished; returns them.
fn wait_for(
    server: &Server,
    prefix: &str,
    count: usize,
    limit: Duration,
) -> Result<Vec<(i64, i64)>, String> {
    let deadline = Instant::now() + limit;
    loop {
        let (listed, done) = finished_runs(server, prefix)?;
        if done.len() >= count {
            return Ok(done);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} of {count} `{prefix}` runs finished ({listed} listed) after {limit:?}",
                done.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The nearest-rank percentile `p` (0..=100) of sorted `values`.
fn percentile(sorted: &[i64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 * p / 100.0).ceil() as usize).saturating_sub(1);
    sorted
        .get(rank.min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0) as f64
}

/// What one load measured.
struct Measured {
    alone_ms: f64,
    runs_per_min: f64,
    wall_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn measure(server: &Server) -> Result<Measured, String> {
    let source = cluster::pipeline();
    // Warm up: compile (or load) the plugin and run once.
    cluster::submit(server, "warm", &source)?;
    wait_for(server, "warm", 1, Duration::from_secs(120))?;
    let mut alone = Vec::new();
    for i in 0..ALONE {
        let name = format!("alone-{i}");
        cluster::submit(server, &name, &source)?;
        let done = wait_for(server, &name, 1, Duration::from_secs(60))?;
        alone.extend(done.iter().map(|(took, _)| *took));
    }
    let alone_ms = alone.iter().sum::<i64>() as f64 / alone.len().max(1) as f64;

    let first_submission = epoch_ms();
    std::thread::scope(|s| -> Result<(), String> {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|k| {
                let source = &source;
                s.spawn(move || -> Result<(), String> {
                    for i in (k..RUNS).step_by(CLIENTS) {
                        cluster::submit(server, &format!("load-{i}"), source)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| "a client thread panicked".to_string())??;
        }
        Ok(())
    })?;
    let done = wait_for(server, "load-", RUNS, Duration::from_secs(900))?;
    let last_finish = done
        .iter()
        .map(|(_, at)| *at)
        .max()
        .unwrap_or(first_submission);
    let wall_s = (last_finish - first_submission).max(1) as f64 / 1e3;
    let mut durations: Vec<i64> = done.iter().map(|(took, _)| *took).collect();
    durations.sort_unstable();
    Ok(Measured {
        alone_ms,
        runs_per_min: RUNS as f64 * 60.0 / wall_s,
        wall_s,
        p50_ms: percentile(&durations, 50.0),
        p99_ms: percentile(&durations, 99.0),
    })
}

/// The last `n` lines of `text`, or only those that look like trouble when `trouble`.
fn tail(text: &str, n: usize, trouble: bool) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            !trouble || {
                let l = l.to_ascii_lowercase();
                l.contains("error") || l.contains("panic") || l.contains("fail")
            }
        })
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// B5 (see the module docs).
pub fn run(inputs: &Inputs) -> Result<Vec<Figure>, String> {
    let scratch = tempfile::tempdir().map_err(err)?;
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&data).map_err(err)?;
    let log_path = scratch.path().join("serve.stderr");
    let log = std::fs::File::create(&log_path).map_err(err)?;
    let db = data.join("weft.db");
    let result = cluster::start_logged(inputs, &data, &db.to_string_lossy(), Stdio::from(log))
        .and_then(|server| measure(&server));
    // The server is stopped (dropped) by now; its standard error is complete.
    let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
    let m = result.map_err(|e| {
        format!(
            "{e}\nweft serve's standard error (last 30 lines):\n{}",
            tail(&stderr, 30, false)
        )
    })?;
    let trouble = tail(&stderr, 20, true);
    if !trouble.is_empty() {
        eprintln!("weft-bench: B5: weft serve reported:\n{trouble}");
    }
    let one_at_a_time = 60_000.0 / m.alone_ms.max(1.0);
    let spread = m.p99_ms / m.p50_ms.max(1.0);
    Ok(vec![
        Figure {
            id: "B5",
            what: format!("one {TASKS}-task no-op run alone on `weft serve` (mean of {ALONE})"),
            value: m.alone_ms,
            unit: "ms",
            ratio: None,
            ratio_of: String::new(),
            target: "baseline".into(),
            met: true,
        },
        Figure {
            id: "B5",
            what: format!(
                "{RUNS} runs from {CLIENTS} HTTP clients, SQLite: runs/min ({:.1} s)",
                m.wall_s
            ),
            value: m.runs_per_min,
            unit: "runs/min",
            ratio: Some(m.runs_per_min / one_at_a_time),
            ratio_of: "vs one run at a time".into(),
            target: "-".into(),
            met: true,
        },
        Figure {
            id: "B5",
            what: "run duration under load (submission to finish), p50".into(),
            value: m.p50_ms,
            unit: "ms",
            ratio: Some(m.p50_ms / m.alone_ms.max(1.0)),
            ratio_of: "p50 / one run alone".into(),
            target: "-".into(),
            met: true,
        },
        Figure {
            id: "B5",
            what: "run duration under load (submission to finish), p99".into(),
            value: m.p99_ms,
            unit: "ms",
            ratio: Some(spread),
            ratio_of: "p99 / p50".into(),
            target: "p99/p50 <= 3".into(),
            met: spread <= 3.0,
        },
    ])
}
