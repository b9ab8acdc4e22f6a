//! B13: guests that keep every core busy. N tasks of a fixed amount of wasm work (the
//! `hostile` plugin's `spin` mode) at parallelism 1 and 2: the speed-up; and how late a
//! `timeout: 5ms` task ends while spinning tasks hold every core, against the same tasks
//! on an idle engine.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft_engine::driver::{RunOptions, execute, prepare};
use weft_engine::runs::{PluginRegistry, RunEvent, RunObserver, cancel_channel};
use weft_runtime::{Runtime, RuntimeConfig};

use crate::{Figure, Inputs};

/// Tasks of the speed-up runs.
const TASKS: usize = 60;
/// Wasm work each of them does, sized for about 100 ms.
const SPIN_ITERATIONS: u64 = 60_000_000;
/// `timeout: 5ms` tasks whose lateness is measured.
const TIMED: usize = 40;
/// Their timeout.
const TIMEOUT: Duration = Duration::from_millis(5);

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// When a task started running, and when it ended.
type Span = (Option<Instant>, Option<Instant>);

/// When each task started running and ended, by name.
#[derive(Default)]
struct Clock {
    times: Mutex<BTreeMap<String, Span>>,
}

impl RunObserver for Clock {
    fn event(&self, event: RunEvent<'_>) {
        if let RunEvent::Transition { task, phase, .. } = event {
            let now = Instant::now();
            let mut times = self.times.lock().unwrap_or_else(|e| e.into_inner());
            let slot = times.entry(task.to_string()).or_default();
            match phase {
                weft_core::TaskPhase::Running => slot.0 = Some(now),
                weft_core::TaskPhase::Terminal => slot.1 = Some(now),
                _ => {}
            }
        }
    }
}

impl Clock {
    /// How long each task named `prefix<i>` ran, with when it ended.
    fn durations(&self, prefix: &str) -> Vec<(Duration, Instant)> {
        let times = self.times.lock().unwrap_or_else(|e| e.into_inner());
        times
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .filter_map(|(_, (start, end))| {
                Some((end.as_ref()?.duration_since((*start)?), (*end)?))
            })
            .collect()
    }
}

fn header(name: &str) -> String {
    format!("apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata:\n  name: {name}\nspec:\n  tasks:\n")
}

fn spin_task(yaml: &mut String, name: &str, iterations: u64) {
    let _ = write!(
        yaml,
        "    - name: {name}\n      taskRef: {{name: hostile}}\n      params:\n        - {{name: mode, value: spin}}\n        - {{name: spin-iterations, value: \"{iterations}\"}}\n"
    );
}

fn timed_task(yaml: &mut String, name: &str) {
    let _ = write!(
        yaml,
        "    - name: {name}\n      timeout: {}ms\n      onError: continue\n      taskRef: {{name: hostile}}\n      params:\n        - {{name: mode, value: loop}}\n",
        TIMEOUT.as_millis()
    );
}

/// CPU time this process used so far (user + system).
#[allow(unsafe_code)]
fn cpu_time() -> Duration {
    // SAFETY: `rusage` is a plain C struct that getrusage fills in; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a local variable.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Runs `yaml` at `parallelism`; returns its wall time, its clock and the cores it used on
/// average (CPU time over wall time: below `parallelism` when others share the machine).
async fn run(
    registry: &PluginRegistry,
    yaml: &str,
    parallelism: usize,
    must_succeed: bool,
) -> Result<(Duration, Arc<Clock>, f64), String> {
    let prepared = prepare(registry, yaml, "b13.yaml", &BTreeMap::new())
        .await
        .map_err(|d| format!("{}", d[0]))?;
    let clock = Arc::new(Clock::default());
    let mut options = RunOptions::new("b13", "b13");
    options.parallelism = parallelism;
    // `hostile` imports `wasi:http`: grant a host that never resolves.
    options.grants.http.all = vec![weft_runtime::HttpRule::parse("allowed.invalid").map_err(err)?];
    let (_cancel, cancel_rx) = cancel_channel();
    let (started, cpu) = (Instant::now(), cpu_time());
    let summary = execute(prepared, options, clock.clone(), cancel_rx).await;
    let took = started.elapsed();
    let cores = cpu_time().saturating_sub(cpu).as_secs_f64() / took.as_secs_f64();
    if must_succeed && summary.status.exit_code() != 0 {
        return Err(format!("the run ended {:?}", summary.status));
    }
    Ok((took, clock, cores))
}

/// p-th percentile (0..=100) of a sample, in milliseconds.
fn percentile_ms(samples: &mut [Duration], p: usize) -> f64 {
    samples.sort();
    if samples.is_empty() {
        return 0.0;
    }
    let at = (samples.len() * p).div_ceil(100).saturating_sub(1);
    samples[at.min(samples.len() - 1)].as_secs_f64() * 1e3
}

/// How late each `timeout: 5ms` task ended (time in Running past its timeout).
fn lateness(durations: &[(Duration, Instant)], busy_until: Option<Instant>) -> Vec<Duration> {
    durations
        .iter()
        .filter(|(_, ended)| busy_until.is_none_or(|until| *ended <= until))
        .map(|(ran, _)| ran.saturating_sub(TIMEOUT))
        .collect()
}

/// B13.
pub async fn run_all(inputs: &Inputs) -> Result<Vec<Figure>, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = Runtime::new(RuntimeConfig::default()).map_err(err)?;
    let mut registry = PluginRegistry::new(runtime, &[]);
    registry.add_dir(&inputs.plugins).map_err(err)?;

    // Speed-up: the same N tasks of fixed work at parallelism 1 and 2.
    let mut yaml = header("spin");
    for i in 0..TASKS {
        spin_task(&mut yaml, &format!("s{i}"), SPIN_ITERATIONS);
    }
    // Warm the compiled component and the guest threads.
    run(&registry, &yaml, 2, true).await?;
    let (one, _, one_cores) = run(&registry, &yaml, 1, true).await?;
    let (two, _, two_cores) = run(&registry, &yaml, 2, true).await?;
    let speedup = one.as_secs_f64() / two.as_secs_f64();

    // Lateness on an idle engine: the timed tasks alone, one at a time.
    let mut idle_yaml = header("idle");
    for i in 0..TIMED {
        timed_task(&mut idle_yaml, &format!("t{i}"));
    }
    let (_, idle_clock, _) = run(&registry, &idle_yaml, 1, false).await?;
    let mut idle = lateness(&idle_clock.durations("t"), None);

    // Lateness under load: `cores` spinners hold every core for the whole measurement while
    // the one remaining slot runs the timed tasks one after another. Only timed tasks that
    // ended while every spinner still ran count.
    let per_task = one.as_secs_f64() / TASKS as f64;
    let spin_for = (TIMED as f64 * 0.1 + 1.0) / per_task;
    let mut busy_yaml = header("busy");
    for i in 0..cores {
        spin_task(
            &mut busy_yaml,
            &format!("b{i}"),
            (SPIN_ITERATIONS as f64 * spin_for) as u64,
        );
    }
    for i in 0..TIMED {
        timed_task(&mut busy_yaml, &format!("t{i}"));
    }
    let (_, busy_clock, _) = run(&registry, &busy_yaml, cores + 1, false).await?;
    let busy_until = busy_clock
        .durations("b")
        .iter()
        .map(|(_, ended)| *ended)
        .min();
    let mut busy = lateness(&busy_clock.durations("t"), busy_until);
    let counted = busy.len();
    if counted < 5 {
        return Err(format!(
            "only {counted} of {TIMED} timed tasks ended while the spinners ran"
        ));
    }
    let idle_p50 = percentile_ms(&mut idle, 50);
    let idle_p99 = percentile_ms(&mut idle, 99);
    let busy_p50 = percentile_ms(&mut busy, 50);
    let busy_p99 = percentile_ms(&mut busy, 99);
    Ok(vec![
        Figure {
            id: "B13",
            what: format!(
                "{TASKS} spinning tasks (~{:.0} ms each), parallelism 1 ({one_cores:.2} cores used)",
                per_task * 1e3
            ),
            value: one.as_secs_f64() * 1e3,
            unit: "ms",
            ratio: None,
            ratio_of: String::new(),
            target: "baseline".into(),
            met: true,
        },
        Figure {
            id: "B13",
            what: format!("the same at parallelism 2 ({two_cores:.2} of {cores} cores used)"),
            value: two.as_secs_f64() * 1e3,
            unit: "ms",
            ratio: Some(speedup),
            ratio_of: "speed-up (p1 / p2)".into(),
            target: ">= 1.8x on 2 cores".into(),
            met: cores < 2 || speedup >= 1.8,
        },
        Figure {
            id: "B13",
            what: format!("`timeout: 5ms` lateness, idle engine, p50 (p99 {idle_p99:.2} ms)"),
            value: idle_p50,
            unit: "ms",
            ratio: None,
            ratio_of: String::new(),
            target: "baseline".into(),
            met: true,
        },
        Figure {
            id: "B13",
            what: format!("the same while {cores} spinners hold every core, p50 ({counted} tasks)"),
            value: busy_p50,
            unit: "ms",
            ratio: Some(busy_p50 / idle_p50.max(0.001)),
            ratio_of: "busy / idle p50".into(),
            target: "-".into(),
            met: true,
        },
        Figure {
            id: "B13",
            what: "the same, p99".into(),
            value: busy_p99,
            unit: "ms",
            ratio: Some(busy_p99 / idle_p99.max(0.001)),
            ratio_of: "busy / idle p99".into(),
            target: "p99 < 20 ms".into(),
            met: busy_p99 < 20.0,
        },
    ])
}
