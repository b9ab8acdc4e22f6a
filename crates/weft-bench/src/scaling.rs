//! B6: validate + plan + schedule at growing N; the time must grow no faster than N^1.2.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_core::contract::TaskEnding;
use weft_core::validate::Limits;
use weft_core::{Action, RunContext, RunState};

use crate::{Figure, shapes};

/// Parses, validates and plans under `limits` (a matrix may go over the default cap), then
/// runs the whole schedule with instant task endings.
fn plan_and_schedule_with(yaml: &str, limits: &Limits) -> Result<Duration, String> {
    let started = Instant::now();
    let pipeline = weft_core::parse_pipeline(yaml, "bench.yaml")
        .map_err(|d| format!("{} problems, first: {}", d.len(), d[0]))?;
    let plan = weft_core::Plan::with_limits(&pipeline, &BTreeMap::new(), None, limits)
        .map_err(|d| format!("{} problems, first: {}", d.len(), d[0]))?;
    let mut state = RunState::new(
        Arc::new(plan),
        RunContext {
            run_name: "bench".into(),
            run_uid: "bench".into(),
            bound_workspaces: Default::default(),
        },
    );
    let mut pending: VecDeque<Action> = state.start().into();
    while let Some(action) = pending.pop_front() {
        match action {
            Action::Start(start) => {
                pending.extend(state.task_started(start.node, start.attempt));
                pending.extend(state.task_ended(
                    start.node,
                    start.attempt,
                    TaskEnding::Success,
                    BTreeMap::new(),
                ));
            }
            Action::Finished(summary) => {
                if summary.status.exit_code() != 0 {
                    return Err(format!("the schedule ended {:?}", summary.status));
                }
                return Ok(started.elapsed());
            }
            _ => {}
        }
    }
    Err("the run never finished".into())
}

/// Least-squares slope of ln(time) over ln(n).
pub fn exponent(points: &[(f64, f64)]) -> f64 {
    let logs: Vec<(f64, f64)> = points.iter().map(|(n, t)| (n.ln(), t.ln())).collect();
    let count = logs.len() as f64;
    let mean_x = logs.iter().map(|p| p.0).sum::<f64>() / count;
    let mean_y = logs.iter().map(|p| p.1).sum::<f64>() / count;
    let cov: f64 = logs.iter().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let var: f64 = logs.iter().map(|(x, _)| (x - mean_x) * (x - mean_x)).sum();
    cov / var
}

/// B6.
pub fn run() -> Result<Vec<Figure>, String> {
    let mut points = Vec::new();
    let mut figures = Vec::new();
    for n in [100usize, 1_000, 10_000, 100_000] {
        let yaml = shapes::layered(n, 100, 3);
        let repeats = if n >= 100_000 { 2 } else { 5 };
        let best = best_of(&yaml, &Limits::default(), repeats)?;
        points.push((n as f64, best.as_secs_f64()));
        figures.push(Figure {
            id: "B6",
            what: format!("validate+plan+schedule, N = {n}"),
            value: best.as_secs_f64() * 1e3,
            unit: "ms",
            ratio: Some(best.as_secs_f64() * 1e6 / n as f64),
            ratio_of: "µs per task".into(),
            target: "-".into(),
            met: true,
        });
    }
    let k = exponent(&points);
    figures.push(Figure {
        id: "B6",
        what: "fitted exponent of time over N (100 .. 100,000)".into(),
        value: k,
        unit: "",
        ratio: None,
        ratio_of: String::new(),
        target: "<= 1.2".into(),
        met: k <= 1.2,
    });
    figures.extend(matrix_fan_out()?);
    Ok(figures)
}

/// The fastest of `repeats` runs of [`plan_and_schedule_with`].
fn best_of(yaml: &str, limits: &Limits, repeats: usize) -> Result<Duration, String> {
    Ok((0..repeats)
        .map(|_| plan_and_schedule_with(yaml, limits))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .min()
        .unwrap_or_default())
}

/// B3/B6 for `matrix`: `1 -> N -> 1` as one matrixed task against the same DAG written as
/// N tasks (the baseline), N = 100 .. 10,000: time per task and the fitted exponent.
fn matrix_fan_out() -> Result<Vec<Figure>, String> {
    let limits = Limits {
        max_matrix_combinations: 10_000,
    };
    let best = |yaml: &str, repeats: usize| best_of(yaml, &limits, repeats);
    let mut points = Vec::new();
    let mut figures = Vec::new();
    for n in [100usize, 1_000, 10_000] {
        let repeats = if n >= 10_000 { 3 } else { 5 };
        let matrix = best(&shapes::fan(n, true), repeats)?;
        let explicit = best(&shapes::fan(n, false), repeats)?;
        points.push((n as f64, matrix.as_secs_f64()));
        figures.push(Figure {
            id: "B3",
            what: format!("matrix 1 -> {n} -> 1: validate+plan+schedule"),
            value: matrix.as_secs_f64() * 1e3,
            unit: "ms",
            ratio: Some(matrix.as_secs_f64() / explicit.as_secs_f64().max(1e-9)),
            ratio_of: format!("{n} written-out tasks"),
            target: "<= 1.5x".into(),
            met: matrix.as_secs_f64() <= 1.5 * explicit.as_secs_f64(),
        });
    }
    let k = exponent(&points);
    figures.push(Figure {
        id: "B3",
        what: "matrix fan-out: fitted exponent of time over N (100 .. 10,000)".into(),
        value: k,
        unit: "",
        ratio: None,
        ratio_of: String::new(),
        target: "<= 1.2".into(),
        met: k <= 1.2,
    });
    Ok(figures)
}
