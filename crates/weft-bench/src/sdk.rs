//! B14: plugins written with the Python and JavaScript SDKs against the same plugin in
//! Rust: `echo-py` (componentize-py: CPython inside) and `echo-js` (componentize-js:
//! SpiderMonkey inside) vs the first-party `echo`. For each: the cold start (compiling
//! the component, as the first use on a machine does), the load from the compiled cache
//! (every later use), and one task invocation (`Plugin::run`: instantiate, call, drop).

use std::path::Path;
use std::time::Instant;

use weft_core::contract::{ParamValue, TaskEnding};
use weft_runtime::{ComponentCache, Plugin, Runtime, RuntimeConfig, TaskRequest};

use crate::{Figure, Inputs, median_us};

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// What was measured for one plugin, in milliseconds.
struct Measured {
    compile_ms: f64,
    cache_hit_ms: f64,
    run_ms: f64,
}

/// Compiles `wasm` into a fresh cache `compiles` times, loads it from the warm cache,
/// then runs it `runs` times.
async fn measure(
    runtime: &Runtime,
    name: &str,
    wasm: &[u8],
    compiles: usize,
    runs: usize,
) -> Result<Measured, String> {
    let mut compile = Vec::new();
    let mut hit = Vec::new();
    for _ in 0..compiles {
        let dir = tempfile::tempdir().map_err(err)?;
        let cache = ComponentCache::new(dir.path()).map_err(err)?;
        let started = Instant::now();
        cache.load_or_compile(runtime.engine(), wasm).map_err(err)?;
        compile.push(started.elapsed());
        for _ in 0..5 {
            let started = Instant::now();
            let (_, was_hit) = cache.load_or_compile(runtime.engine(), wasm).map_err(err)?;
            hit.push(started.elapsed());
            if !was_hit {
                return Err(format!("{name}: a warm cache missed"));
            }
        }
    }
    let plugin = runtime.load_bytes(name, wasm).map_err(err)?;
    let mut run = Vec::new();
    for i in 0..runs + 3 {
        let started = Instant::now();
        invoke(&plugin, name).await?;
        // The first invocations warm the instance pool; they are not counted.
        if i >= 3 {
            run.push(started.elapsed());
        }
    }
    Ok(Measured {
        compile_ms: median_us(&mut compile) / 1000.0,
        cache_hit_ms: median_us(&mut hit) / 1000.0,
        run_ms: median_us(&mut run) / 1000.0,
    })
}

/// One `echo` invocation that must succeed and echo its message.
async fn invoke(plugin: &Plugin, name: &str) -> Result<(), String> {
    let mut request = TaskRequest::new("echo");
    request
        .params
        .insert("message".into(), ParamValue::Str("hello".into()));
    let report = plugin.run(request).await;
    if report.ending != TaskEnding::Success
        || report.results.get("message").map(String::as_str) != Some("hello")
    {
        return Err(format!("{name} did not echo: {:?}", report.ending));
    }
    Ok(())
}

fn read(dir: &Path, file: &str) -> Result<Vec<u8>, String> {
    let path = dir.join(file);
    std::fs::read(&path).map_err(|e| {
        format!(
            "cannot read {}: {e} (`cargo xtask bench` builds the SDK examples into it)",
            path.display()
        )
    })
}

/// B14.
pub async fn run(inputs: &Inputs) -> Result<Vec<Figure>, String> {
    let runtime = Runtime::new(RuntimeConfig::default()).map_err(err)?;
    let rust = measure(
        &runtime,
        "echo",
        &read(&inputs.plugins, "echo.wasm")?,
        3,
        200,
    )
    .await?;
    let python = measure(
        &runtime,
        "echo-py",
        &read(&inputs.sdk_plugins, "echo-py.wasm")?,
        1,
        30,
    )
    .await?;
    let js = measure(
        &runtime,
        "echo-js",
        &read(&inputs.sdk_plugins, "echo-js.wasm")?,
        1,
        30,
    )
    .await?;
    let figure = |what: String, value: f64, baseline: Option<f64>| Figure {
        id: "B14",
        what,
        value,
        unit: "ms",
        ratio: baseline.map(|b| value / b),
        ratio_of: if baseline.is_some() {
            "vs Rust echo".into()
        } else {
            String::new()
        },
        target: if baseline.is_some() {
            "reported".into()
        } else {
            "baseline".into()
        },
        met: true,
    };
    let mut figures = Vec::new();
    for (what, pick) in [
        (
            "cold start (compile)",
            (|m: &Measured| m.compile_ms) as fn(&Measured) -> f64,
        ),
        ("load from the compiled cache", |m| m.cache_hit_ms),
        ("run one task (instantiate+call+drop), p50", |m| m.run_ms),
    ] {
        let baseline = pick(&rust);
        figures.push(figure(format!("echo (Rust): {what}"), baseline, None));
        figures.push(figure(
            format!("echo-py (Python): {what}"),
            pick(&python),
            Some(baseline),
        ));
        figures.push(figure(
            format!("echo-js (JavaScript): {what}"),
            pick(&js),
            Some(baseline),
        ));
    }
    Ok(figures)
}
