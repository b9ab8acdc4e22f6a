//! B6 as a test: validate + plan + schedule must grow about linearly with the number of
//! tasks (the Tekton #3521 trap was super-linear DAG resolution). The bound is generous so
//! a noisy machine does not fail it, but a quadratic regression does: 10x the tasks may
//! cost at most 10^1.6 (about 40x) the time; quadratic would be 100x.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_core::contract::TaskEnding;
use weft_core::{Action, RunContext, RunState};

fn layered(n: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata:\n  name: layered\nspec:\n  tasks:\n",
    );
    for i in 0..n {
        let _ = write!(yaml, "    - name: t{i}\n      taskRef: {{name: exit}}\n");
        if i >= 100 {
            let base = (i / 100 - 1) * 100;
            let _ = writeln!(
                yaml,
                "      runAfter: [t{}, t{}, t{}]",
                base + i % 100,
                base + (i * 7) % 100,
                base + (i * 13) % 100
            );
        }
    }
    yaml
}

fn plan_and_schedule(yaml: &str) -> Duration {
    let started = Instant::now();
    let plan = weft_core::load(yaml, "scale.yaml", &BTreeMap::new(), None).expect("valid");
    let mut state = RunState::new(
        Arc::new(plan),
        RunContext {
            run_name: "scale".into(),
            run_uid: "scale".into(),
            bound_workspaces: Default::default(),
        },
    );
    let mut pending: VecDeque<Action> = state.start().into();
    let mut finished = false;
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
            Action::Finished(_) => finished = true,
            _ => {}
        }
    }
    assert!(finished, "the schedule ran to its end");
    started.elapsed()
}

#[test]
fn validate_plan_and_schedule_grow_about_linearly() {
    let small = layered(2_000);
    let large = layered(20_000);
    // Best of three each, to shed scheduling noise.
    let best = |yaml: &str| {
        (0..3)
            .map(|_| plan_and_schedule(yaml))
            .min()
            .unwrap_or_default()
    };
    let t_small = best(&small);
    let t_large = best(&large);
    let ratio = t_large.as_secs_f64() / t_small.as_secs_f64().max(1e-9);
    let exponent = ratio.log10();
    eprintln!("2,000 tasks: {t_small:?}; 20,000 tasks: {t_large:?}; exponent {exponent:.2}");
    assert!(
        exponent < 1.6,
        "time grew as N^{exponent:.2} from 2,000 to 20,000 tasks"
    );
}
