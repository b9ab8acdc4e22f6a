//! `weft-bench`: the benchmarks of quality-bars.md that issue 6 names. Each prints its
//! figure and its ratio against a baseline measured in the same run, so the machine's
//! speed cancels out. Run it through `cargo xtask bench` (release build).
//!
//! - B1: weft's per-task cycle vs the bare wasmtime pooled loop, same component; that loop
//!   for `exit` against a minimal no_std component (`plugins/noop`), instantiation apart.
//! - B2: a 1,000-task no-op DAG through `weft run` vs the same DAG under `make -j2` and
//!   `ninja -j2` (skipped when `ninja` is not installed).
//! - B2L, B3L (not in the default run): `weft run`, journaled, of B2's layered DAG and of
//!   `1 -> N -> 1` written out, at 100,000 tasks against 1,000: per-task cost, peak RSS.
//! - B5: one `weft serve` (SQLite) under 1,000 concurrently submitted 10-task runs: runs
//!   per minute, p50 and p99 run duration, against the same run alone.
//! - B4: a 10,000-task chain in the engine: per-hop latency p50. B4J: chains of 1,000 and
//!   100,000 tasks through `weft run` with the journal on: per-task cost and its growth.
//! - B3: `1 -> N -> 1` as one `matrix` task against N written-out tasks (planning and
//!   scheduling, N = 100 .. 10,000).
//! - B6: validate + plan + schedule at N = 100 .. 100,000: the fitted exponent.
//! - B9: first use of a plugin (compile) vs a compiled-cache hit.
//! - B10: validation of hostile input (long names, unknown names among many tasks, merge
//!   keys, wide and deep maps): the fitted exponent of each shape.
//! - B11: scale-out: 1, 2 and 4 `weft serve` processes on one PostgreSQL database, task
//!   attempts per second of no-op 10-task runs (ratios vs one server; SQLite as baseline),
//!   and CPU per attempt of weft and of PostgreSQL.
//! - B12: log masking throughput with 50 secrets vs a plain scan of the same text.
//! - B13: guests holding every core: N tasks of fixed wasm work at parallelism 1 and 2
//!   (the speed-up), and the lateness of `timeout: 5ms` tasks while spinners hold every
//!   core (against the same tasks on an idle engine).
//! - B14: echo written with the Python and JavaScript SDKs vs the Rust `echo`: cold start
//!   (compile), compiled-cache load and one run, as ratios.
//! - B15: fair sharing: a tenant's 1-task run on `weft serve` while another tenant floods
//!   it with 200 CPU-bound tasks, against the same run alone; with `--task-slots` = the
//!   CPUs and with slots enough for the whole flood.
//! - Memory: peak RSS of the 1,000-task run; bytes per pending task at 10,000.

mod alloc;
mod b1;
mod cluster;
mod engine_runs;
mod fairness;
mod guests;
mod hostile;
mod masking;
mod scaling;
mod sdk;
mod serve_load;
mod shapes;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// One benchmark's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figure {
    /// Benchmark id (B1, B2, ...).
    pub id: &'static str,
    /// What was measured.
    pub what: String,
    /// The figure, in `unit`.
    pub value: f64,
    /// Unit of `value`.
    pub unit: &'static str,
    /// Ratio against the baseline, where there is one.
    pub ratio: Option<f64>,
    /// What the ratio compares.
    pub ratio_of: String,
    /// The target from quality-bars.md.
    pub target: String,
    /// Whether the target is met.
    pub met: bool,
}

/// Where the benchmark finds its inputs.
pub struct Inputs {
    /// The release `weft` binary.
    pub weft: PathBuf,
    /// Directory of built plugins.
    pub plugins: PathBuf,
    /// Directory of the SDK examples built by `weft plugin build` (B14).
    pub sdk_plugins: PathBuf,
}

fn arg_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let inputs = Inputs {
        weft: arg_value(&args, "--weft")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/release/weft")),
        plugins: arg_value(&args, "--plugins")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/plugins")),
        sdk_plugins: arg_value(&args, "--sdk-plugins")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/sdk-plugins")),
    };
    let json = arg_value(&args, "--output").as_deref() == Some("json");
    let only = arg_value(&args, "--only");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weft-bench: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let wanted = |id: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|x| x == id))
    };
    // Long benchmarks that run only when named.
    let named = |id: &str| {
        only.as_deref()
            .is_some_and(|o| o.split(',').any(|x| x == id))
    };
    let mut figures: Vec<Figure> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut record = |result: Result<Vec<Figure>, String>, id: &str| match result {
        Ok(found) => {
            for figure in &found {
                if !json {
                    print_figure(figure);
                }
            }
            figures.extend(found);
        }
        Err(e) => {
            eprintln!("weft-bench: {id} failed: {e}");
            failures.push(format!("{id}: {e}"));
        }
    };
    if !json {
        println!(
            "{:<4} {:<58} {:>14} {:>10}  {:<28} target",
            "id", "figure", "value", "ratio", "ratio of"
        );
    }
    if wanted("B1") {
        record(runtime.block_on(b1::run(&inputs)), "B1");
    }
    if wanted("B9") {
        record(b1::cache(&inputs), "B9");
    }
    if wanted("B6") || wanted("B3") {
        record(scaling::run(), "B6");
    }
    if wanted("B10") {
        record(hostile::run(), "B10");
    }
    if wanted("B4") || wanted("MEM") {
        record(
            runtime.block_on(engine_runs::chain_and_memory(&inputs)),
            "B4",
        );
    }
    if wanted("B12") {
        record(masking::run(), "B12");
    }
    if wanted("B13") {
        record(runtime.block_on(guests::run_all(&inputs)), "B13");
    }
    if wanted("B14") {
        record(runtime.block_on(sdk::run(&inputs)), "B14");
    }
    if wanted("B15") {
        record(fairness::run(&inputs), "B15");
    }
    if wanted("B2") {
        record(engine_runs::dag_vs_make(&inputs), "B2");
    }
    if wanted("B4J") {
        record(engine_runs::journaled_chains(&inputs), "B4J");
    }
    if wanted("B5") {
        record(serve_load::run(&inputs), "B5");
    }
    if named("B2L") {
        record(
            engine_runs::large_runs(&inputs, "B2L", "B2 DAG", |n| shapes::layered_flow(n, 50, 3)),
            "B2L",
        );
    }
    if named("B3L") {
        record(
            engine_runs::large_runs(&inputs, "B3L", "1 -> N -> 1 explicit", |n| {
                shapes::fan(n, false)
            }),
            "B3L",
        );
    }
    if wanted("B11") {
        record(cluster::run(&inputs), "B11");
    }
    if json {
        let doc = serde_json::json!({ "figures": figures, "failures": failures });
        println!("{doc:#}");
    } else {
        // A skipped figure (value NaN) counts neither way.
        let measured = figures.iter().filter(|f| !f.value.is_nan());
        let met = measured.clone().filter(|f| f.met).count();
        println!("\n{met} of {} targets met", measured.count());
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_figure(f: &Figure) {
    let value = match f.unit {
        _ if f.value.is_nan() => "skipped".to_string(),
        "µs" | "ms" | "ns" => format!("{:.2} {}", f.value, f.unit),
        "" => format!("{:.3}", f.value),
        unit => format!("{:.1} {unit}", f.value),
    };
    let ratio = f
        .ratio
        .map(|r| format!("{r:.2}x"))
        .unwrap_or_else(|| "-".into());
    let mark = match (f.value.is_nan(), f.met) {
        (true, _) => "skipped",
        (false, true) => "met",
        (false, false) => "NOT met",
    };
    println!(
        "{:<4} {:<58} {:>14} {:>10}  {:<28} {} ({mark})",
        f.id, f.what, value, ratio, f.ratio_of, f.target
    );
}

/// Median of a sample, in microseconds.
pub fn median_us(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples
        .get(samples.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Resident set size of this process now, in bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}
