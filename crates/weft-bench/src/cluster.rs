//! B11: scale-out on PostgreSQL. `weft serve` processes (release build) on one database,
//! 1, 2 and 4 of them, run no-op runs of 10 tasks submitted to them round robin; the figure
//! is task attempts per second from the first submission to the last run finished, with
//! journaling on (every attempt, event and status in the database), and its ratio against
//! one server. The same harness on one server over SQLite is the single-machine baseline.
//! Where the time goes: CPU seconds of the weft processes and of PostgreSQL per attempt,
//! against the wall clock (2 cores shared by both).
//!
//! PostgreSQL: `WEFT_BENCH_PG_URL`, else `WEFT_TEST_PG_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`; each configuration gets a fresh schema.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Figure, Inputs};

/// Runs per configuration (each 10 task attempts).
const RUNS: usize = 400;
pub(crate) const TASKS: usize = 10;

/// A no-op run of 10 tasks: one root, eight in parallel, one sink.
pub(crate) fn pipeline() -> String {
    let mut yaml = String::from(
        "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: noop10\nspec:\n  tasks:\n    - name: root\n      taskRef: {name: exit}\n",
    );
    for i in 0..TASKS - 2 {
        yaml.push_str(&format!(
            "    - name: mid{i}\n      runAfter: [root]\n      taskRef: {{name: exit}}\n"
        ));
    }
    let mids: Vec<String> = (0..TASKS - 2).map(|i| format!("mid{i}")).collect();
    yaml.push_str(&format!(
        "    - name: sink\n      runAfter: [{}]\n      taskRef: {{name: exit}}\n",
        mids.join(", ")
    ));
    yaml
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A running `weft serve`; killed when dropped.
pub(crate) struct Server {
    child: Child,
    /// `host:port` it listens on.
    pub(crate) address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(inputs: &Inputs, data: &Path, db: &str) -> Result<Server, String> {
    start_logged(inputs, data, db, Stdio::null())
}

/// Starts `weft serve` on a loopback port with its standard error going to `stderr`.
pub(crate) fn start_logged(
    inputs: &Inputs,
    data: &Path,
    db: &str,
    stderr: Stdio,
) -> Result<Server, String> {
    start_with(inputs, data, &["--db", db], stderr)
}

/// Starts `weft serve` on a loopback port with `args` besides its plugins, its standard
/// error going to `stderr`.
pub(crate) fn start_with(
    inputs: &Inputs,
    data: &Path,
    args: &[&str],
    stderr: Stdio,
) -> Result<Server, String> {
    let mut child = Command::new(&inputs.weft)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .arg("--plugins")
        .arg(&inputs.plugins)
        .env("WEFT_DATA_DIR", data)
        .env("WEFT_CACHE_DIR", data.join("cache"))
        .env_remove("WEFT_DB")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start weft serve: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(address) = line.split("http://").nth(1) {
                    break address.trim().to_string();
                }
            }
            _ => return Err("weft serve exited before listening".into()),
        }
    };
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(Server { child, address })
}

/// One HTTP/1.1 request on a fresh connection: the status and the body.
pub(crate) fn call(
    address: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    call_as(address, None, method, path, body)
}

/// [`call`] with a bearer token.
pub(crate) fn call_as(
    address: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let mut stream = TcpStream::connect(address).map_err(err)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(err)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{authorization}Connection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(err)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(err)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// Submits `source` as a run named `name` (expects 201 Created).
pub(crate) fn submit(server: &Server, name: &str, source: &str) -> Result<(), String> {
    let body = serde_json::json!({ "pipeline": source, "name": name }).to_string();
    let (status, reply) = call(&server.address, "POST", "/api/v1/runs", &body)?;
    if status == 201 {
        Ok(())
    } else {
        Err(format!("submitting {name}: {status} {reply}"))
    }
}

fn finished(server: &Server) -> Result<usize, String> {
    let (status, body) = call(&server.address, "GET", "/api/v1/runs?limit=1000", "")?;
    if status != 200 {
        return Err(format!("listing runs: {status} {body}"));
    }
    let runs: serde_json::Value = serde_json::from_str(&body).map_err(err)?;
    Ok(runs
        .as_array()
        .map_or(0, |a| a.iter().filter(|r| r["status"].is_string()).count()))
}

/// CPU seconds (user + system) of the processes whose pid `keep` accepts.
fn cpu_seconds(keep: impl Fn(u32, &str) -> bool) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        if !keep(pid, comm) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 (1-based), 11 and 12 after the comm.
        total += (field(11) + field(12)) / ticks;
    }
    total
}

/// What one configuration measured.
struct Measured {
    attempts_per_s: f64,
    wall_s: f64,
    weft_cpu_s: f64,
    pg_cpu_s: f64,
    /// Transactions PostgreSQL committed (group commit batches, leases, reads).
    pg_commits: f64,
}

/// Transactions committed in the database so far (PostgreSQL's statistics, flushed by
/// each backend at least once a second).
fn pg_commits(base: Option<&str>) -> f64 {
    let Some(base) = base else {
        return 0.0;
    };
    postgres::Client::connect(base, postgres::NoTls)
        .and_then(|mut c| {
            c.query_one(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
                &[],
            )
        })
        .map_or(0.0, |row| row.get::<_, i64>(0) as f64)
}

fn measure(
    inputs: &Inputs,
    servers: usize,
    db: &str,
    pg: Option<&str>,
    scratch: &Path,
) -> Result<Measured, String> {
    let source = pipeline();
    let started: Vec<Server> = (0..servers)
        .map(|i| {
            let data = scratch.join(format!("server{i}"));
            std::fs::create_dir_all(&data).map_err(err)?;
            start(inputs, &data, db)
        })
        .collect::<Result<_, _>>()?;
    // Warm up: each server compiles (or loads) the plugin and runs once.
    for (i, server) in started.iter().enumerate() {
        submit(server, &format!("warm-{i}"), &source)?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while finished(&started[0])? < servers {
        if Instant::now() > deadline {
            return Err("warm-up runs did not finish".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pids: Vec<u32> = started.iter().map(|s| s.child.id()).collect();
    let weft_cpu = || cpu_seconds(|pid, _| pids.contains(&pid));
    let pg_cpu = || cpu_seconds(|_, comm| comm.starts_with("postgres"));
    std::thread::sleep(Duration::from_millis(1500));
    let commits0 = pg_commits(pg);
    let (weft0, pg0) = (weft_cpu(), pg_cpu());
    let clock = Instant::now();
    std::thread::scope(|s| -> Result<(), String> {
        let handles: Vec<_> = started
            .iter()
            .enumerate()
            .map(|(k, server)| {
                let source = &source;
                s.spawn(move || -> Result<(), String> {
                    for i in (k..RUNS).step_by(servers) {
                        submit(server, &format!("run-{i}"), source)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| "a submitter panicked".to_string())??;
        }
        Ok(())
    })?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while finished(&started[0])? < RUNS + servers {
        if Instant::now() > deadline {
            return Err("the runs did not finish in 10 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = clock.elapsed().as_secs_f64();
    let (weft1, pg1) = (weft_cpu(), pg_cpu());
    std::thread::sleep(Duration::from_millis(1500));
    Ok(Measured {
        attempts_per_s: (RUNS * TASKS) as f64 / wall,
        wall_s: wall,
        weft_cpu_s: weft1 - weft0,
        pg_cpu_s: pg1 - pg0,
        pg_commits: pg_commits(pg) - commits0,
    })
}

/// A fresh schema for one configuration; dropped at the end.
struct Schema {
    base: String,
    name: String,
}

impl Schema {
    fn create(base: &str, name: &str) -> Result<Schema, String> {
        let mut client = postgres::Client::connect(base, postgres::NoTls)
            .map_err(|e| format!("no PostgreSQL at {base} (set WEFT_BENCH_PG_URL): {e}"))?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .map_err(err)?;
        Ok(Schema {
            base: base.to_string(),
            name: name.to_string(),
        })
    }

    fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}", self.base, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// B11 (see the module docs).
pub fn run(inputs: &Inputs) -> Result<Vec<Figure>, String> {
    let base = std::env::var("WEFT_BENCH_PG_URL")
        .or_else(|_| std::env::var("WEFT_TEST_PG_URL"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let scratch = tempfile::tempdir().map_err(err)?;
    let sqlite = measure(
        inputs,
        1,
        &scratch.path().join("weft.db").to_string_lossy(),
        None,
        &scratch.path().join("sqlite"),
    )?;
    let mut figures = vec![Figure {
        id: "B11",
        what: format!(
            "1 server, SQLite: {RUNS} runs of {TASKS} no-op tasks (weft {:.0} µs CPU/attempt)",
            sqlite.weft_cpu_s * 1e6 / (RUNS * TASKS) as f64
        ),
        value: sqlite.attempts_per_s,
        unit: "attempts/s",
        ratio: None,
        ratio_of: String::new(),
        target: "baseline".into(),
        met: true,
    }];
    let mut one = None;
    for servers in [1usize, 2, 4] {
        let schema = Schema::create(&base, &format!("weft_bench_b11_{servers}"))?;
        let m = measure(
            inputs,
            servers,
            &schema.url(),
            Some(&base),
            &scratch.path().join(format!("pg{servers}")),
        )?;
        let base_rate = *one.get_or_insert(m.attempts_per_s);
        figures.push(Figure {
            id: "B11",
            what: format!("{servers} server(s), one PostgreSQL: task attempts per second"),
            value: m.attempts_per_s,
            unit: "attempts/s",
            ratio: Some(m.attempts_per_s / base_rate),
            ratio_of: "vs 1 server".into(),
            target: ">= 1000 attempts/s per database".into(),
            met: m.attempts_per_s >= 1000.0,
        });
        let attempts = (RUNS * TASKS) as f64;
        figures.push(Figure {
            id: "B11",
            what: format!(
                "{servers} server(s): weft CPU/attempt (PG {:.0} µs, {:.2} commits/attempt, {:.0}% of 2 cores busy)",
                m.pg_cpu_s * 1e6 / attempts,
                m.pg_commits / attempts,
                100.0 * (m.weft_cpu_s + m.pg_cpu_s) / (2.0 * m.wall_s)
            ),
            value: m.weft_cpu_s * 1e6 / attempts,
            unit: "µs",
            ratio: Some(m.weft_cpu_s / (m.weft_cpu_s + m.pg_cpu_s).max(f64::EPSILON)),
            ratio_of: "weft share of CPU".into(),
            target: "where the time goes".into(),
            met: true,
        });
    }
    Ok(figures)
}
