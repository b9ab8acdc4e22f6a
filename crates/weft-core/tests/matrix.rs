//! `matrix`: how a task fans out when a run is planned, what its combinations are given,
//! what the tasks after it read (arrays of results, `matrix.length`, an aggregate status),
//! how each combination retries, and what validation refuses.
//!
//! The harness plays an engine whose tasks end as a closure says: each started attempt is
//! acknowledged and ended at once, in start order.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use weft_core::contract::{ParamValue, TaskEnding};
use weft_core::validate::Limits;
use weft_core::{Action, Plan, RunContext, RunReport, RunState, StartTask};

/// A pipeline with an array param `platforms` (default linux, mac) and these tasks.
fn pipeline(tasks: &str, finally: &str, results: &str) -> String {
    let mut yaml = String::from(
        "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: fan}\nspec:\n  params:\n    - name: platforms\n      type: array\n      default: [linux, mac]\n    - name: empty\n      type: array\n      default: []\n  tasks:\n",
    );
    yaml.push_str(tasks);
    if !finally.is_empty() {
        yaml.push_str("  finally:\n");
        yaml.push_str(finally);
    }
    if !results.is_empty() {
        yaml.push_str("  results:\n");
        yaml.push_str(results);
    }
    yaml
}

fn plan_with(yaml: &str, limits: &Limits) -> Result<Plan, Vec<String>> {
    let pipeline = weft_core::parse_pipeline(yaml, "fan.yaml")
        .map_err(|found| found.iter().map(|d| d.to_string()).collect::<Vec<_>>())?;
    Plan::with_limits(&pipeline, &BTreeMap::new(), None, limits)
        .map_err(|found| found.iter().map(|d| d.to_string()).collect())
}

fn plan(yaml: &str) -> Plan {
    match plan_with(yaml, &Limits::default()) {
        Ok(plan) => plan,
        Err(problems) => panic!("invalid fixture:\n{}", problems.join("\n")),
    }
}

/// Runs `plan` to the end; `ending` decides each attempt's ending and results.
fn run(
    plan: Plan,
    ending: impl Fn(&StartTask) -> (TaskEnding, BTreeMap<String, String>),
) -> (RunReport, Vec<StartTask>) {
    let context = RunContext {
        run_name: "run-1".into(),
        run_uid: "uid-1".into(),
        bound_workspaces: Default::default(),
    };
    let mut state = RunState::new(Arc::new(plan), context);
    let mut queue: VecDeque<Action> = state.start().into();
    let mut starts = Vec::new();
    while let Some(action) = queue.pop_front() {
        if let Action::Start(start) = action {
            queue.extend(state.task_started(start.node, start.attempt));
            let (end, results) = ending(&start);
            queue.extend(state.task_ended(start.node, start.attempt, end, results));
            starts.push(*start);
        }
    }
    assert!(state.is_finished(), "the run did not finish");
    (state.report(), starts)
}

fn succeed_with(
    result: &'static str,
) -> impl Fn(&StartTask) -> (TaskEnding, BTreeMap<String, String>) {
    move |start| {
        let value = start
            .params
            .values()
            .map(|value| match value {
                ParamValue::Str(text) => text.clone(),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
            .join("+");
        (
            TaskEnding::Success,
            BTreeMap::from([(result.to_string(), value)]),
        )
    }
}

fn statuses(report: &RunReport) -> Vec<(String, String, String)> {
    report
        .tasks
        .iter()
        .map(|t| (t.name.clone(), t.status.clone(), t.reason.clone()))
        .collect()
}

#[test]
fn combinations_run_as_named_tasks_with_their_params_and_fan_in_reads_arrays() {
    let yaml = pipeline(
        "    - name: build\n      taskRef: {name: echo}\n      matrix:\n        params:\n          - name: platform\n            value: $(params.platforms[*])\n          - name: browser\n            value: [chrome, safari]\n    - name: gather\n      taskRef: {name: echo}\n      params:\n        - name: all\n          value: $(tasks.build.results.out[*])\n        - name: count\n          value: $(tasks.build.matrix.length)\n        - name: produced\n          value: $(tasks.build.matrix.out.length)\n",
        "    - name: report\n      taskRef: {name: echo}\n      params:\n        - name: status\n          value: $(tasks.build.status)\n",
        "    - name: outs\n      value: $(tasks.build.results.out[*])\n",
    );
    let plan = plan(&yaml);
    let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "build-0", "build-1", "build-2", "build-3", "gather", "report"
        ]
    );
    assert_eq!(plan.dag_len, 5);
    assert_eq!(plan.task_nodes("build"), Some(0..4));
    assert_eq!(
        plan.nodes[4].parent_count, 4,
        "gather waits for every combination"
    );
    let (report, starts) = run(plan, succeed_with("out"));
    // Tekton's order: the first param varies fastest.
    let combos: Vec<String> = starts[..4]
        .iter()
        .map(|s| format!("{}:{:?}", s.name, s.params))
        .collect();
    assert_eq!(
        combos,
        [
            r#"build-0:{"browser": Str("chrome"), "platform": Str("linux")}"#,
            r#"build-1:{"browser": Str("chrome"), "platform": Str("mac")}"#,
            r#"build-2:{"browser": Str("safari"), "platform": Str("linux")}"#,
            r#"build-3:{"browser": Str("safari"), "platform": Str("mac")}"#,
        ]
    );
    assert!(starts[..4].iter().all(|s| s.pipeline_task == "build"));
    let gather = &starts[4];
    assert_eq!(
        gather.params["all"],
        ParamValue::Array(vec![
            "chrome+linux".into(),
            "chrome+mac".into(),
            "safari+linux".into(),
            "safari+mac".into()
        ])
    );
    assert_eq!(gather.params["count"], ParamValue::Str("4".into()));
    assert_eq!(gather.params["produced"], ParamValue::Str("4".into()));
    assert_eq!(
        starts[5].params["status"],
        ParamValue::Str("Succeeded".into())
    );
    assert_eq!(report.run.status, "Succeeded");
    let matrix = report.tasks[3]
        .matrix
        .as_ref()
        .map(|m| (m.task.as_str(), m.index));
    assert_eq!(matrix, Some(("build", 3)));
}

#[test]
fn each_combination_retries_on_its_own_and_one_failure_fails_the_task() {
    let yaml = pipeline(
        "    - name: test\n      taskRef: {name: echo}\n      retries: 1\n      matrix:\n        params:\n          - name: platform\n            value: [linux, mac, windows]\n",
        "    - name: report\n      taskRef: {name: echo}\n      params:\n        - name: status\n          value: $(tasks.test.status)\n        - name: reason\n          value: $(tasks.test.reason)\n",
        "",
    );
    let (report, starts) = run(plan(&yaml), |start| {
        let platform = match start.params.get("platform") {
            Some(ParamValue::Str(p)) => p.as_str(),
            _ => "",
        };
        match (platform, start.attempt) {
            // mac fails once then passes; windows always fails.
            ("mac", 0) | ("windows", _) => (
                TaskEnding::Failure {
                    exit_code: 1,
                    message: "no".into(),
                },
                BTreeMap::new(),
            ),
            _ => (TaskEnding::Success, BTreeMap::new()),
        }
    });
    let attempts: Vec<(String, u32)> = report
        .tasks
        .iter()
        .map(|t| (t.name.clone(), t.attempts))
        .collect();
    assert_eq!(
        attempts,
        [
            ("test-0".to_string(), 1),
            ("test-1".to_string(), 2),
            ("test-2".to_string(), 2),
            ("report".to_string(), 1),
        ]
    );
    let report_start = starts
        .iter()
        .find(|s| s.name == "report")
        .map(|s| &s.params);
    assert_eq!(
        report_start.map(|p| (&p["status"], &p["reason"])),
        Some((
            &ParamValue::Str("Failed".into()),
            &ParamValue::Str("Failed".into())
        ))
    );
    assert_eq!(report.run.status, "Failed");
}

#[test]
fn an_empty_array_skips_the_task_with_tektons_reason_and_its_dependents() {
    let yaml = pipeline(
        "    - name: build\n      taskRef: {name: echo}\n      matrix:\n        params:\n          - name: platform\n            value: $(params.empty[*])\n    - name: after\n      taskRef: {name: echo}\n      runAfter: [build]\n    - name: other\n      taskRef: {name: echo}\n",
        "",
        "",
    );
    let (report, starts) = run(plan(&yaml), |_| (TaskEnding::Success, BTreeMap::new()));
    assert_eq!(
        statuses(&report),
        [
            (
                "build".into(),
                "Skipped".into(),
                "EmptyArrayInMatrixParams".into()
            ),
            ("after".into(), "Skipped".into(), "ParentSkipped".into()),
            ("other".into(), "Succeeded".into(), String::new()),
        ]
    );
    assert_eq!(starts.len(), 1);
    assert_eq!(report.run.status, "Completed");
}

#[test]
fn include_adds_params_and_combinations() {
    let yaml = pipeline(
        "    - name: build\n      taskRef: {name: echo}\n      matrix:\n        params:\n          - name: arch\n            value: [amd64, arm64]\n        include:\n          - name: race\n            params:\n              - name: arch\n                value: amd64\n              - name: flags\n                value: -race\n          - name: s390x\n            params:\n              - name: arch\n                value: s390x\n",
        "",
        "",
    );
    let plan = plan(&yaml);
    let combos: Vec<String> = plan
        .nodes
        .iter()
        .map(|n| format!("{}:{:?}", n.name, n.matrix.as_ref().map(|m| &m.params)))
        .collect();
    assert_eq!(
        combos,
        [
            r#"build-0:Some({"arch": "amd64", "flags": "-race"})"#,
            r#"build-1:Some({"arch": "arm64"})"#,
            r#"build-2:Some({"arch": "s390x"})"#,
        ]
    );
}

#[test]
fn ten_thousand_combinations_plan_in_linear_work() {
    let values: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    let list = format!("[{}]", values.join(", "));
    let yaml = pipeline(
        &format!(
            "    - name: root\n      taskRef: {{name: echo}}\n    - name: wide\n      taskRef: {{name: echo}}\n      runAfter: [root]\n      matrix:\n        params:\n          - name: a\n            value: {list}\n          - name: b\n            value: {list}\n    - name: sink\n      taskRef: {{name: echo}}\n      params:\n        - name: all\n          value: $(tasks.wide.results.out[*])\n"
        ),
        "",
        "",
    );
    let limits = Limits {
        max_matrix_combinations: 10_000,
    };
    let plan = match plan_with(&yaml, &limits) {
        Ok(plan) => plan,
        Err(problems) => panic!("{problems:?}"),
    };
    assert_eq!(plan.nodes.len(), 10_002);
    let (report, starts) = run(plan, succeed_with("out"));
    assert_eq!(report.run.status, "Succeeded");
    match &starts[10_001].params["all"] {
        ParamValue::Array(items) => assert_eq!(items.len(), 10_000),
        other => panic!("{other:?}"),
    }
    // Over the default cap: refused, naming the count and the flag.
    let problems = plan_with(&yaml, &Limits::default())
        .err()
        .unwrap_or_default();
    assert!(
        problems.iter().any(|p| p
            .contains("fans out into 10000 combinations, more than the 256 allowed")
            && p.contains("fan.yaml:")),
        "{problems:?}"
    );
}

#[test]
fn validation_names_what_is_wrong_and_where() {
    let table: [(&str, &str, &str); 9] = [
        (
            "a string matrix param",
            "    - name: t\n      taskRef: {name: echo}\n      matrix:\n        params:\n          - name: p\n            value: one\n",
            "fan.yaml:18:20: error[wrong-type]: spec.tasks[0].matrix.params[0].value: matrix param `p` must be an array",
        ),
        (
            "a matrix fed by results",
            "    - name: a\n      taskRef: {name: echo}\n    - name: t\n      taskRef: {name: echo}\n      matrix:\n        params:\n          - name: p\n            value: $(tasks.a.results.list[*])\n",
            "matrix param `p` reads a task's results",
        ),
        (
            "a param in both places",
            "    - name: t\n      taskRef: {name: echo}\n      params:\n        - name: p\n          value: x\n      matrix:\n        params:\n          - name: p\n            value: [a]\n",
            "param `p` of task `t` is in both `params` and `matrix`",
        ),
        (
            "a plain result read of a matrixed task",
            "    - name: t\n      taskRef: {name: echo}\n      matrix:\n        params:\n          - name: p\n            value: [a]\n    - name: u\n      taskRef: {name: echo}\n      params:\n        - name: r\n          value: $(tasks.t.results.out)\n",
            "its result `out` is an array of every combination's",
        ),
        (
            "an array read of a task without matrix",
            "    - name: t\n      taskRef: {name: echo}\n    - name: u\n      taskRef: {name: echo}\n      params:\n        - name: r\n          value: $(tasks.t.results.out[*])\n",
            "task `t` has no `matrix`",
        ),
        (
            "an array read inside a string",
            "    - name: t\n      taskRef: {name: echo}\n      matrix:\n        params:\n          - name: p\n            value: [a]\n    - name: u\n      taskRef: {name: echo}\n      params:\n        - name: r\n          value: all $(tasks.t.results.out[*])\n",
            "must be the whole value of an array param or element",
        ),
        (
            "a task named like a combination",
            "    - name: t\n      taskRef: {name: echo}\n      matrix:\n        params:\n          - name: p\n            value: [a, b]\n    - name: t-1\n      taskRef: {name: echo}\n",
            "task name `t-1` is taken: combination 1 of matrixed task `t`",
        ),
        (
            "an empty matrix",
            "    - name: t\n      taskRef: {name: echo}\n      matrix: {}\n",
            "an empty `matrix`",
        ),
        (
            "an include param that is not a string",
            "    - name: t\n      taskRef: {name: echo}\n      matrix:\n        include:\n          - name: x\n            params:\n              - name: p\n                value: [a]\n",
            "`include` param `p` must be a string",
        ),
    ];
    for (case, tasks, expected) in table {
        let yaml = pipeline(tasks, "", "");
        let problems = plan_with(&yaml, &Limits::default())
            .err()
            .unwrap_or_default();
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{case}: expected {expected:?} in {problems:#?}"
        );
    }
}
