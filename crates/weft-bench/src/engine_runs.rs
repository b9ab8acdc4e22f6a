//! B4 (a 10,000-task chain through the engine: per-hop latency), memory per pending task,
//! B2 (a 1,000-task DAG through `weft run` vs `make -j2` and `ninja -j2`, with the run's
//! peak RSS), and B2L/B3L (the B2 DAG and `1 -> N -> 1` at 100,000 tasks against 1,000).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft_engine::driver::{RunOptions, execute, prepare};
use weft_engine::runs::{PluginRegistry, RunEvent, RunObserver, cancel_channel};
use weft_runtime::{Runtime, RuntimeConfig};

use crate::{Figure, Inputs, shapes};

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Records when each task `t<i>` started and ended.
struct Clock {
    times: Mutex<Vec<(Option<Instant>, Option<Instant>)>>,
}

impl RunObserver for Clock {
    fn event(&self, event: RunEvent<'_>) {
        if let RunEvent::Transition { task, phase, .. } = event {
            let now = Instant::now();
            let Some(index) = task.strip_prefix('t').and_then(|i| i.parse::<usize>().ok()) else {
                return;
            };
            let mut times = self.times.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = times.get_mut(index) {
                match phase {
                    weft_core::TaskPhase::Running => slot.0 = Some(now),
                    weft_core::TaskPhase::Terminal => slot.1 = Some(now),
                    _ => {}
                }
            }
        }
    }
}

/// B4 and the pending-task memory figure.
pub async fn chain_and_memory(inputs: &Inputs) -> Result<Vec<Figure>, String> {
    const N: usize = 10_000;
    let mut figures = Vec::new();

    // Memory: live heap bytes held by a planned run with all but one task pending.
    let yaml = shapes::chain(N);
    let before = crate::alloc::live_bytes();
    let plan = weft_core::load(&yaml, "chain.yaml", &BTreeMap::new(), None)
        .map_err(|d| format!("{}", d[0]))?;
    let mut state = weft_core::RunState::new(
        Arc::new(plan),
        weft_core::RunContext {
            run_name: "mem".into(),
            run_uid: "mem".into(),
            bound_workspaces: Default::default(),
        },
    );
    let _ = state.start();
    let held = crate::alloc::live_bytes().saturating_sub(before);
    let per_task = held as f64 / N as f64;
    drop(state);
    figures.push(Figure {
        id: "MEM",
        what: format!("heap per pending task ({N}-task chain, plan + run state)"),
        value: per_task,
        unit: "B",
        ratio: None,
        ratio_of: String::new(),
        target: "< 2048 B".into(),
        met: per_task < 2048.0,
    });

    // B4: the chain through the engine with the real no-op plugin.
    let runtime = Runtime::new(RuntimeConfig::default()).map_err(err)?;
    let mut registry = PluginRegistry::new(runtime, &[]);
    registry.add_dir(&inputs.plugins).map_err(err)?;
    let prepared = prepare(&registry, &yaml, "chain.yaml", &BTreeMap::new())
        .await
        .map_err(|d| format!("{}", d[0]))?;
    let clock = Arc::new(Clock {
        times: Mutex::new(vec![(None, None); N]),
    });
    let (_cancel, cancel_rx) = cancel_channel();
    let started = Instant::now();
    let summary = execute(
        prepared,
        RunOptions::new("chain", "chain"),
        clock.clone(),
        cancel_rx,
    )
    .await;
    let total = started.elapsed();
    if summary.status.exit_code() != 0 {
        return Err(format!("the chain ended {:?}", summary.status));
    }
    let times = clock
        .times
        .lock()
        .map_err(|_| "clock poisoned".to_string())?;
    let mut hops: Vec<Duration> = times
        .windows(2)
        .filter_map(|pair| Some(pair[1].0?.saturating_duration_since(pair[0].1?)))
        .collect();
    let mut task_times: Vec<Duration> = times
        .iter()
        .filter_map(|(start, end)| Some(end.as_ref()?.saturating_duration_since(*start.as_ref()?)))
        .collect();
    let hop_p50 = crate::median_us(&mut hops);
    let task_p50 = crate::median_us(&mut task_times);
    figures.push(Figure {
        id: "B4",
        what: format!("{N}-task chain: hop (end of n -> start of n+1), p50"),
        value: hop_p50,
        unit: "µs",
        ratio: Some(hop_p50 / task_p50),
        ratio_of: "hop / task run time".into(),
        target: "p50 < 50 µs".into(),
        met: hop_p50 < 50.0,
    });
    figures.push(Figure {
        id: "B4",
        what: format!("{N}-task chain: whole run, per task"),
        value: total.as_secs_f64() * 1e6 / N as f64,
        unit: "µs",
        ratio: None,
        ratio_of: String::new(),
        target: "-".into(),
        met: true,
    });
    Ok(figures)
}

/// Runs a command `repeats` times; returns the median wall time and the peak RSS (KiB)
/// of the last run.
fn time_command(make: impl FnMut() -> Command, repeats: usize) -> Result<(Duration, i64), String> {
    time_command_usage(make, repeats).map(|(took, usage)| (took, usage.peak_kib))
}

/// What the kernel counted of a child process (`wait4`'s `rusage`).
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    /// Peak resident set, KiB.
    peak_kib: i64,
    /// Context switches: voluntary (a thread blocked: a wake-up was needed to go on) and
    /// involuntary (preempted).
    switches: i64,
}

/// [`time_command`], with the kernel's counts of the run with the median time.
fn time_command_usage(
    mut make: impl FnMut() -> Command,
    repeats: usize,
) -> Result<(Duration, Usage), String> {
    let mut samples = Vec::new();
    for _ in 0..repeats {
        let mut command = make();
        let started = Instant::now();
        let child = command.spawn().map_err(err)?;
        let (code, usage) = wait_with_rusage(child.id() as i32)?;
        samples.push((started.elapsed(), usage));
        if code != 0 {
            return Err(format!("{command:?} exited with {code}"));
        }
    }
    samples.sort_by_key(|(took, _)| *took);
    Ok(samples[samples.len() / 2])
}

#[allow(unsafe_code)]
fn wait_with_rusage(pid: i32) -> Result<(i32, Usage), String> {
    let mut status = 0;
    // SAFETY: `rusage` is a plain C struct that wait4 fills in; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting on our own child with valid pointers to local variables.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid {
        return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((
        code,
        Usage {
            peak_kib: usage.ru_maxrss,
            switches: usage.ru_nvcsw + usage.ru_nivcsw,
        },
    ))
}

fn weft_run(inputs: &Inputs, file: &Path, scratch: &Path) -> Command {
    let mut command = Command::new(&inputs.weft);
    command
        .arg("run")
        .arg(file)
        .args(["--output", "json", "--plugins"])
        .arg(&inputs.plugins)
        .arg("--data-dir")
        .arg(scratch.join("data"))
        .arg("--cache-dir")
        .arg(scratch.join("cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

/// B2.
pub fn dag_vs_make(inputs: &Inputs) -> Result<Vec<Figure>, String> {
    const N: usize = 1_000;
    let scratch = tempfile::tempdir().map_err(err)?;
    let dag = scratch.path().join("dag.yaml");
    std::fs::write(&dag, shapes::layered(N, 50, 3)).map_err(err)?;
    let one = scratch.path().join("one.yaml");
    std::fs::write(&one, shapes::layered(1, 50, 3)).map_err(err)?;
    let makefile = scratch.path().join("Makefile");
    std::fs::write(&makefile, shapes::layered_makefile(N, 50, 3)).map_err(err)?;

    // Warm the compiled-component cache once.
    time_command(|| weft_run(inputs, &one, scratch.path()), 1)?;
    let ninja_dir = ninja_dir(scratch.path(), N)?;
    let make = || {
        let mut command = Command::new("make");
        command
            .args(["-j2", "-s", "-f"])
            .arg(&makefile)
            .stdout(std::process::Stdio::null());
        command
    };
    // Rounds of one run each, in turn: a noisy spell on a shared host slows weft and its
    // baselines alike instead of whichever happened to run then.
    let mut samples: [Vec<(Duration, Usage)>; 4] = Default::default();
    for _ in 0..5 {
        samples[0].push(time_command_usage(
            || weft_run(inputs, &one, scratch.path()),
            1,
        )?);
        samples[1].push(time_command_usage(
            || weft_run(inputs, &dag, scratch.path()),
            1,
        )?);
        samples[2].push(time_command_usage(make, 1)?);
        if let Some(dir) = &ninja_dir {
            samples[3].push(time_command_usage(|| ninja(dir), 1)?);
        }
    }
    let [weft_one, weft_dag, make, ninja] = samples.map(|mut runs| {
        runs.sort_by_key(|(took, _)| *took);
        runs.get(runs.len() / 2).copied()
    });
    let missing = || "B2: a command was never timed".to_string();
    let ((weft_one, one_usage), (weft_dag, usage)) =
        (weft_one.ok_or_else(missing)?, weft_dag.ok_or_else(missing)?);
    let make = make.ok_or_else(missing)?.0;
    let ninja = ninja.map(|(took, _)| took);
    let peak_kib = usage.peak_kib;
    // Wake-ups per task: what the DAG's run switched more than a 1-task run's, per task.
    let switches_per_task = (usage.switches - one_usage.switches).max(0) as f64 / (N - 1) as f64;
    let overhead_us = weft_dag.saturating_sub(weft_one).as_secs_f64() * 1e6 / (N - 1) as f64;
    let speedup = make.as_secs_f64() / weft_dag.as_secs_f64();
    Ok(vec![
        Figure {
            id: "B2",
            what: format!("`make -j2` of {N} `true` targets (same DAG)"),
            value: make.as_secs_f64() * 1e3,
            unit: "ms",
            ratio: None,
            ratio_of: String::new(),
            target: "baseline".into(),
            met: true,
        },
        Figure {
            id: "B2",
            what: format!("`weft run` of the {N}-task no-op DAG (whole process)"),
            value: weft_dag.as_secs_f64() * 1e3,
            unit: "ms",
            ratio: Some(speedup),
            ratio_of: "make / weft".into(),
            target: ">= 8x faster than make".into(),
            met: speedup >= 8.0,
        },
        ninja_figure(ninja, weft_dag, N),
        Figure {
            id: "B2",
            what: "engine overhead per task ((T(1000) - T(1)) / 999), journal on".into(),
            value: overhead_us,
            unit: "µs",
            ratio: None,
            ratio_of: String::new(),
            target: "<= 60 µs".into(),
            met: overhead_us <= 60.0,
        },
        Figure {
            id: "B2",
            what: "context switches per task (the kernel's count for the weft process, DAG minus 1 task)".into(),
            value: switches_per_task,
            unit: "",
            ratio: None,
            ratio_of: String::new(),
            target: "measured".into(),
            met: true,
        },
        Figure {
            id: "MEM",
            what: format!("peak RSS of the {N}-task `weft run`"),
            value: peak_kib as f64 / 1024.0,
            unit: "MiB",
            ratio: None,
            ratio_of: String::new(),
            target: "-".into(),
            met: true,
        },
    ])
}

/// A directory with the B2 DAG as a `build.ninja`; `None` when `ninja` is not on the `PATH`.
fn ninja_dir(scratch: &Path, n: usize) -> Result<Option<std::path::PathBuf>, String> {
    if Command::new("ninja").arg("--version").output().is_err() {
        return Ok(None);
    }
    let dir = scratch.join("ninja");
    std::fs::create_dir_all(&dir).map_err(err)?;
    std::fs::write(dir.join("build.ninja"), shapes::layered_ninja(n, 50, 3)).map_err(err)?;
    Ok(Some(dir))
}

/// `ninja -j2` in `dir` (every edge builds each time: the outputs are never written).
fn ninja(dir: &Path) -> Command {
    let mut command = Command::new("ninja");
    command
        .args(["-j2"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null());
    command
}

/// B2's figure for `ninja -j2` (ratio ninja / weft), or the figure marked skipped.
fn ninja_figure(ninja: Option<Duration>, weft: Duration, n: usize) -> Figure {
    let what = format!("`ninja -j2` of {n} `true` edges (same DAG)");
    match ninja {
        Some(took) => {
            let speedup = took.as_secs_f64() / weft.as_secs_f64();
            Figure {
                id: "B2",
                what,
                value: took.as_secs_f64() * 1e3,
                unit: "ms",
                ratio: Some(speedup),
                ratio_of: "ninja / weft".into(),
                target: ">= 8x faster than ninja".into(),
                met: speedup >= 8.0,
            }
        }
        None => Figure {
            id: "B2",
            what,
            value: f64::NAN,
            unit: "ms",
            ratio: None,
            ratio_of: String::new(),
            target: "no `ninja` on PATH (apt-get install ninja-build)".into(),
            met: true,
        },
    }
}

/// Peak RSS per pending task, as the memory target counts it: what the run's peak
/// adds to a 1-task run's, less the source (which a run keeps), per task.
fn rss_per_task(peak_kib: i64, one_peak_kib: i64, source_bytes: usize, n: usize) -> f64 {
    let added = (peak_kib - one_peak_kib).max(0) as f64 * 1024.0;
    (added - source_bytes as f64).max(0.0) / n as f64
}

/// The memory target: at most 2 KiB per pending task plus the source.
const RSS_PER_TASK_TARGET: f64 = 2048.0;

/// B2L and B3L: `weft run` of `shape(n)` with the journal on at 1,000 and at 100,000
/// tasks, whole process, each once: per-task cost (its ratio against 1,000; target 1.5x)
/// and peak RSS per pending task ([`rss_per_task`]; target 2 KiB).
pub fn large_runs(
    inputs: &Inputs,
    id: &'static str,
    label: &str,
    shape: impl Fn(usize) -> String,
) -> Result<Vec<Figure>, String> {
    let scratch = tempfile::tempdir().map_err(err)?;
    let one = scratch.path().join("one.yaml");
    std::fs::write(&one, shapes::chain(1)).map_err(err)?;
    // Warm the compiled-component cache once; then the 1-task run's peak is the base.
    time_command(|| weft_run(inputs, &one, scratch.path()), 1)?;
    let (_, one_peak_kib) = time_command(|| weft_run(inputs, &one, scratch.path()), 1)?;
    let mut first = None;
    let mut figures = Vec::new();
    for n in [1_000usize, 100_000] {
        let file = scratch.path().join(format!("{id}-{n}.yaml"));
        let source = shape(n);
        std::fs::write(&file, &source).map_err(err)?;
        let (took, peak_kib) = time_command(|| weft_run(inputs, &file, scratch.path()), 1)?;
        let us = took.as_secs_f64() * 1e6 / n as f64;
        let base = *first.get_or_insert(us);
        figures.push(Figure {
            id,
            what: format!(
                "{label}, {n} tasks, journaled: per task ({:.1} s)",
                took.as_secs_f64()
            ),
            value: us,
            unit: "µs",
            ratio: Some(us / base),
            ratio_of: "per task at 1,000".into(),
            target: if n > 1_000 { "<= 1.5x" } else { "baseline" }.into(),
            met: us <= 1.5 * base,
        });
        let per_task = rss_per_task(peak_kib, one_peak_kib, source.len(), n);
        figures.push(Figure {
            id,
            what: format!(
                "{label}, {n} tasks: peak RSS ({:.0} MiB) per pending task, less a 1-task run's ({:.0} MiB) and the source ({:.1} MiB)",
                peak_kib as f64 / 1024.0,
                one_peak_kib as f64 / 1024.0,
                source.len() as f64 / (1024.0 * 1024.0)
            ),
            value: per_task,
            unit: "B",
            ratio: None,
            ratio_of: String::new(),
            // At 1,000 tasks the fixed costs the 1-task run does not have (threads, pool
            // slots in use) dominate; the target is for large runs.
            target: if n > 1_000 { "<= 2 KiB" } else { "-" }.into(),
            met: n == 1_000 || per_task <= RSS_PER_TASK_TARGET,
        });
    }
    Ok(figures)
}

/// B4 through `weft run` with the journal on (SQLite): a chain of 1,000 and of 100,000
/// tasks, whole process, each from a fresh data directory; per-task cost and its growth.
pub fn journaled_chains(inputs: &Inputs) -> Result<Vec<Figure>, String> {
    let scratch = tempfile::tempdir().map_err(err)?;
    let one = scratch.path().join("one.yaml");
    std::fs::write(&one, shapes::chain(1)).map_err(err)?;
    // Warm the compiled-component cache once; then the 1-task run's peak is the base.
    time_command(|| weft_run(inputs, &one, scratch.path()), 1)?;
    let (_, one_peak_kib) = time_command(|| weft_run(inputs, &one, scratch.path()), 1)?;
    let mut per_task = Vec::new();
    let mut figures = Vec::new();
    for n in [1_000usize, 100_000] {
        let file = scratch.path().join(format!("chain-{n}.yaml"));
        let source = shapes::chain(n);
        std::fs::write(&file, &source).map_err(err)?;
        let (took, peak_kib) = time_command(|| weft_run(inputs, &file, scratch.path()), 1)?;
        let us = took.as_secs_f64() * 1e6 / n as f64;
        per_task.push(us);
        figures.push(Figure {
            id: "B4",
            what: format!("`weft run` of a {n}-task chain, journaled: per task"),
            value: us,
            unit: "µs",
            ratio: per_task.first().map(|first| us / first),
            ratio_of: "per task at 1,000".into(),
            target: if n > 1_000 { "<= 1.5x" } else { "baseline" }.into(),
            met: n == 1_000 || us <= 1.5 * per_task[0],
        });
        figures.push(Figure {
            id: "MEM",
            what: format!("peak RSS of the {n}-task chain's `weft run`"),
            value: peak_kib as f64 / 1024.0,
            unit: "MiB",
            ratio: None,
            ratio_of: String::new(),
            target: "-".into(),
            met: true,
        });
        let per_pending = rss_per_task(peak_kib, one_peak_kib, source.len(), n);
        figures.push(Figure {
            id: "MEM",
            what: format!(
                "the {n}-task chain's peak RSS per pending task, less a 1-task run's ({:.0} MiB) and the source ({:.1} MiB)",
                one_peak_kib as f64 / 1024.0,
                source.len() as f64 / (1024.0 * 1024.0)
            ),
            value: per_pending,
            unit: "B",
            ratio: None,
            ratio_of: String::new(),
            target: if n > 1_000 { "<= 2 KiB" } else { "-" }.into(),
            met: n == 1_000 || per_pending <= RSS_PER_TASK_TARGET,
        });
    }
    Ok(figures)
}
