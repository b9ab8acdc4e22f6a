//! B15: fair sharing of `weft serve`'s task slots. Two tenants on one server: `flood`
//! submits one run of 200 CPU-bound tasks (`hostile`'s `spin`, tens of ms each) at
//! parallelism 200, and while it runs `single` submits runs of one small `spin` task, one
//! after another. The figure is the single run's duration as its submitter sees it (from
//! sending the submission to reading it finished, polling every 2 ms) under the flood, as
//! a ratio to the same run on the same server with nothing else running. Measured with `--task-slots` = the CPUs (fair sharing) and with
//! slots enough for the whole flood (every task at once, as before fair sharing: the
//! kernel shares the cores among 201 guest threads).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{self, Server};
use crate::{Figure, Inputs};

/// The flood's tasks.
const FLOOD: usize = 200;
/// Wasm work of each (tens of ms; the figures say how long they took).
const FLOOD_ITERATIONS: u64 = 30_000_000;
/// Wasm work of the single task, a tenth of that.
const SINGLE_ITERATIONS: u64 = 3_000_000;
/// Single runs measured alone, and under the flood.
const SAMPLES: usize = 5;
/// Slots "enough for the whole flood": fair sharing has nothing to decide.
const UNBOUNDED: usize = 10_000;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A pipeline of `tasks` independent `spin` tasks of `iterations` steps.
fn spin_pipeline(name: &str, tasks: usize, iterations: u64) -> String {
    let mut yaml = format!(
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {{name: {name}}}\nspec:\n  tasks:\n"
    );
    for i in 0..tasks {
        yaml.push_str(&format!(
            "    - name: s{i}\n      taskRef: {{name: hostile}}\n      params:\n        - {{name: mode, value: spin}}\n        - {{name: spin-iterations, value: \"{iterations}\"}}\n"
        ));
    }
    yaml
}

/// A submitter's token of `tenant` (`weft tokens create` on the server's store).
fn token(inputs: &Inputs, data: &Path, tenant: &str) -> Result<String, String> {
    let out = Command::new(&inputs.weft)
        .args([
            "tokens",
            "create",
            "--tenant",
            tenant,
            "--identity",
            "bench",
        ])
        .args(["--role", "submitter"])
        .env("WEFT_DATA_DIR", data)
        .env_remove("WEFT_DB")
        .output()
        .map_err(err)?;
    if !out.status.success() {
        return Err(format!(
            "weft tokens create: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One tenant's view of the server.
struct Client<'a> {
    server: &'a Server,
    token: String,
}

impl Client<'_> {
    fn submit(&self, name: &str, pipeline: &str, parallelism: usize) -> Result<(), String> {
        let body =
            serde_json::json!({"pipeline": pipeline, "name": name, "parallelism": parallelism});
        let (status, reply) = cluster::call_as(
            &self.server.address,
            Some(&self.token),
            "POST",
            "/api/v1/runs",
            &body.to_string(),
        )?;
        if status == 201 {
            Ok(())
        } else {
            Err(format!("submitting {name}: {status} {reply}"))
        }
    }

    fn get(&self, name: &str) -> Result<Value, String> {
        let (status, body) = cluster::call_as(
            &self.server.address,
            Some(&self.token),
            "GET",
            &format!("/api/v1/runs/{name}"),
            "",
        )?;
        if status != 200 {
            return Err(format!("reading {name}: {status} {body}"));
        }
        serde_json::from_str(&body).map_err(err)
    }

    /// Polls until `name` finished; it must have succeeded.
    fn finished(&self, name: &str, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let run = self.get(name)?;
            if run["finishedAt"].is_i64() {
                if run["status"] != "Succeeded" {
                    return Err(format!("{name} ended {}", run["status"]));
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{name} did not finish in {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Submits `name` and waits for it: how long that took (ms), as its submitter sees it
    /// (the server's own times would leave out a submission slowed by the flood).
    fn run(&self, name: &str, pipeline: &str) -> Result<f64, String> {
        let began = Instant::now();
        self.submit(name, pipeline, 1)?;
        self.finished(name, Duration::from_secs(300))?;
        Ok(began.elapsed().as_secs_f64() * 1e3)
    }
}

/// What one server measured: the single run's mean duration alone and under the flood
/// (ms), how many of the latter ended while the flood still ran, and how long the flood's
/// tasks that ended by then took on average (ms).
struct Measured {
    alone_ms: f64,
    flooded_ms: f64,
    during: usize,
    flood_task_ms: f64,
}

/// The mean duration (ms) of the attempts of `run` that ended.
fn mean_attempt_ms(run: &Value) -> f64 {
    let took: Vec<i64> = run["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some(a["endedAt"].as_i64()? - a["startedAt"].as_i64()?))
        .collect();
    took.iter().sum::<i64>() as f64 / took.len().max(1) as f64
}

fn measure(inputs: &Inputs, slots: usize) -> Result<Measured, String> {
    let scratch = tempfile::tempdir().map_err(err)?;
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&data).map_err(err)?;
    // `hostile` imports outbound HTTP: it is instantiated only with an egress rule.
    let config = scratch.path().join("weft.toml");
    std::fs::write(
        &config,
        "[tenants.flood]\negress = [\"127.0.0.1:9\"]\n\n[tenants.single]\negress = [\"127.0.0.1:9\"]\n",
    )
    .map_err(err)?;
    let server = cluster::start_with(
        inputs,
        &data,
        &[
            "--config",
            &config.to_string_lossy(),
            "--task-slots",
            &slots.to_string(),
        ],
        Stdio::null(),
    )?;
    let flood = Client {
        server: &server,
        token: token(inputs, &data, "flood")?,
    };
    let single = Client {
        server: &server,
        token: token(inputs, &data, "single")?,
    };
    let small = spin_pipeline("single", 1, SINGLE_ITERATIONS);
    // Warm up: compile (or load) the plugin.
    single.run("warm", &small)?;
    let mut alone = 0.0;
    for i in 0..SAMPLES {
        alone += single.run(&format!("alone-{i}"), &small)?;
    }
    flood.submit(
        "flood",
        &spin_pipeline("flood", FLOOD, FLOOD_ITERATIONS),
        FLOOD,
    )?;
    // The flood holds the slots before the single runs come.
    let deadline = Instant::now() + Duration::from_secs(60);
    while flood.get("flood")?["attempts"]
        .as_array()
        .is_none_or(|a| a.iter().all(|a| a["startedAt"].is_null()))
    {
        if Instant::now() > deadline {
            return Err("the flood did not start".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (mut flooded, mut during) = (0.0, 0);
    for i in 0..SAMPLES {
        flooded += single.run(&format!("under-{i}"), &small)?;
        if flood.get("flood")?["finishedAt"].is_null() {
            during += 1;
        }
    }
    Ok(Measured {
        alone_ms: alone / SAMPLES as f64,
        flooded_ms: flooded / SAMPLES as f64,
        during,
        flood_task_ms: mean_attempt_ms(&flood.get("flood")?),
    })
}

/// B15 (see the module docs).
pub fn run(inputs: &Inputs) -> Result<Vec<Figure>, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fair = measure(inputs, cores)?;
    let unfair = measure(inputs, UNBOUNDED)?;
    let ratio = |m: &Measured| m.flooded_ms / m.alone_ms.max(1.0);
    Ok(vec![
        Figure {
            id: "B15",
            what: format!(
                "a 1-task run alone on `weft serve`, {cores} task slots (mean of {SAMPLES})"
            ),
            value: fair.alone_ms,
            unit: "ms",
            ratio: None,
            ratio_of: String::new(),
            target: "baseline".into(),
            met: true,
        },
        Figure {
            id: "B15",
            what: format!(
                "the same under a {FLOOD}-task flood of {:.0} ms tasks ({}/{SAMPLES} during it)",
                fair.flood_task_ms, fair.during
            ),
            value: fair.flooded_ms,
            unit: "ms",
            ratio: Some(ratio(&fair)),
            ratio_of: "flooded / alone".into(),
            target: "late by <= 2 flood tasks".into(),
            met: fair.during == SAMPLES
                && fair.flooded_ms - fair.alone_ms <= 2.0 * fair.flood_task_ms,
        },
        Figure {
            id: "B15",
            what: format!("a 1-task run alone, {UNBOUNDED} slots (no fair sharing)"),
            value: unfair.alone_ms,
            unit: "ms",
            ratio: None,
            ratio_of: String::new(),
            target: "baseline".into(),
            met: true,
        },
        Figure {
            id: "B15",
            what: format!(
                "the same under the flood ({:.0} ms tasks, {}/{SAMPLES} during it)",
                unfair.flood_task_ms, unfair.during
            ),
            value: unfair.flooded_ms,
            unit: "ms",
            ratio: Some(ratio(&unfair)),
            ratio_of: "flooded / alone".into(),
            target: "-".into(),
            met: true,
        },
    ])
}
