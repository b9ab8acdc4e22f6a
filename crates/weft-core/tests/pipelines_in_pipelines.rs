//! Pipelines in pipelines (`pipelineRef`/`pipelineSpec` in a pipeline task): the child's
//! tasks run inside the parent run as `<task>.<name>`, its results and status reach the
//! parent, the task's `retries` and `timeout` apply to the child as a whole, and
//! validation refuses recursion and what a child task cannot mean.
//!
//! The harness plays an engine: a started attempt ends at once as a closure says, or
//! hangs (until a timeout or a cancel reaches it); every cancel is confirmed at once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use weft_core::contract::{ParamValue, TaskEnding};
use weft_core::parse::documents::{SourceFile, parse_run};
use weft_core::run::ChildEnding;
use weft_core::{Action, CancelMode, Plan, RunContext, RunReport, RunState, StartTask};

fn plan(yaml: &str) -> Plan {
    let files = parse_run(
        SourceFile {
            file: "nest.yaml",
            text: yaml,
        },
        &[],
    );
    assert!(files.diagnostics.is_empty(), "{:?}", files.diagnostics);
    let supplied = files.supplied(&BTreeMap::new());
    let pipeline = files.pipeline.expect("a pipeline");
    match Plan::new(&pipeline, &supplied, None) {
        Ok(plan) => plan,
        Err(problems) => panic!("invalid fixture: {problems:?}"),
    }
}

fn problems(yaml: &str) -> Vec<String> {
    let files = parse_run(
        SourceFile {
            file: "nest.yaml",
            text: yaml,
        },
        &[],
    );
    let mut found: Vec<String> = files
        .diagnostics
        .iter()
        .map(|d| format!("{} {}: {}", d.code, d.field_path, d.message))
        .collect();
    let supplied = files.supplied(&BTreeMap::new());
    if let Some(pipeline) = files.pipeline
        && let Err(more) = Plan::new(&pipeline, &supplied, None)
    {
        found.extend(
            more.iter()
                .map(|d| format!("{} {}: {}", d.code, d.field_path, d.message)),
        );
    }
    found
}

type Ending = Option<(TaskEnding, BTreeMap<String, String>)>;

/// What the engine saw.
#[derive(Default)]
struct Seen {
    starts: Vec<StartTask>,
    children: Vec<StartTask>,
    child_ends: Vec<(String, u32, ChildEnding)>,
    hanging: Vec<(usize, u32)>,
}

fn context() -> RunContext {
    RunContext {
        run_name: "run-1".into(),
        run_uid: "uid-1".into(),
        bound_workspaces: ["shared".to_string()].into(),
    }
}

/// Carries `actions` out: attempts end as `ending` says (`None` hangs them).
fn carry(
    state: &mut RunState,
    seen: &mut Seen,
    actions: Vec<Action>,
    ending: &dyn Fn(&StartTask) -> Ending,
) {
    let mut queue: VecDeque<Action> = actions.into();
    while let Some(action) = queue.pop_front() {
        match action {
            Action::Start(start) => {
                queue.extend(state.task_started(start.node, start.attempt));
                match ending(&start) {
                    Some((end, results)) => {
                        queue.extend(state.task_ended(start.node, start.attempt, end, results))
                    }
                    None => seen.hanging.push((start.node, start.attempt)),
                }
                seen.starts.push(*start);
            }
            Action::ChildStarted(start) => seen.children.push(*start),
            Action::ChildEnded {
                name,
                attempt,
                ending,
                ..
            } => seen.child_ends.push((name, attempt, ending)),
            Action::Cancel { node, attempt, .. } => {
                seen.hanging.retain(|h| *h != (node, attempt));
                queue.extend(state.task_cancelled(node, attempt));
            }
            _ => {}
        }
    }
}

fn run(yaml: &str, ending: impl Fn(&StartTask) -> Ending) -> (RunState, Seen) {
    let mut state = RunState::new(Arc::new(plan(yaml)), context());
    let mut seen = Seen::default();
    let started = state.start();
    carry(&mut state, &mut seen, started, &ending);
    (state, seen)
}

fn ok(results: &[(&str, &str)]) -> Ending {
    Some((
        TaskEnding::Success,
        results
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))
}

fn fail() -> Ending {
    Some((
        TaskEnding::Failure {
            message: "boom".into(),
            exit_code: 2,
        },
        BTreeMap::new(),
    ))
}

fn statuses(report: &RunReport) -> Vec<(String, String, String)> {
    report
        .tasks
        .iter()
        .map(|t| (t.name.clone(), t.status.clone(), t.reason.clone()))
        .collect()
}

fn param(start: &StartTask, name: &str) -> String {
    match start.params.get(name) {
        Some(ParamValue::Str(text)) => text.clone(),
        other => panic!("{}: param {name} is {other:?}", start.name),
    }
}

const PARENT: &str = r#"apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: parent}
spec:
  workspaces: [{name: shared}]
  tasks:
    - name: prepare
      taskRef: {name: echo}
    - name: deploy
      runAfter: [prepare]
      RETRIES
      params:
        - {name: version, value: $(tasks.prepare.results.version)}
        - {name: region, value: eu}
      workspaces: [{name: source, workspace: shared}]
      pipelineSpec:
        params: [{name: version}, {name: region}]
        workspaces: [{name: source}]
        tasks:
          - name: build
            taskRef: {name: echo}
            params: [{name: tag, value: "$(params.version)-$(params.region)"}]
            workspaces: [{name: src, workspace: source}]
          - name: push
            runAfter: [build]
            taskRef: {name: echo}
            params: [{name: image, value: $(tasks.build.results.image)}]
        finally:
          - name: tidy
            taskRef: {name: echo}
            params: [{name: status, value: $(tasks.status)}]
        results:
          - {name: digest, value: $(tasks.push.results.digest)}
    - name: announce
      taskRef: {name: echo}
      params:
        - {name: digest, value: $(tasks.deploy.results.digest)}
  finally:
    - name: notify
      taskRef: {name: echo}
      params:
        - {name: deployed, value: $(tasks.deploy.status)}
  results:
    - {name: digest, value: $(tasks.deploy.results.digest)}
"#;

fn parent(retries: &str) -> String {
    PARENT.replace("RETRIES", retries)
}

/// The engine of a healthy deployment: every task succeeds with the results it makes.
fn healthy(start: &StartTask) -> Ending {
    match start.name.as_str() {
        "prepare" => ok(&[("version", "1.2")]),
        "deploy.build" => ok(&[("image", "img")]),
        "deploy.push" => ok(&[("digest", "sha256:abc")]),
        _ => ok(&[]),
    }
}

#[test]
fn a_child_runs_inside_the_run_and_hands_its_results_and_status_to_its_parent() {
    let plan = plan(&parent("retries: 0"));
    let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "prepare",
            "deploy",
            "announce",
            "notify",
            "deploy.build",
            "deploy.push",
            "deploy.tidy"
        ]
    );
    assert_eq!((plan.dag_len, plan.own_len), (3, 4));
    // The child's workspace is the parent's `shared`.
    assert_eq!(
        plan.nodes[4].workspaces,
        [("src".to_string(), "shared".to_string())]
    );

    let (state, seen) = run(&parent("retries: 0"), healthy);
    assert!(state.is_finished());
    let started: Vec<&str> = seen.starts.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        started,
        [
            "prepare",
            "deploy.build",
            "deploy.push",
            "deploy.tidy",
            "announce",
            "notify"
        ]
    );
    let build = &seen.starts[1];
    assert_eq!(
        param(build, "tag"),
        "1.2-eu",
        "a param known only once prepare ended"
    );
    assert_eq!(build.pipeline_task, "deploy.build");
    assert_eq!(build.node, 4);
    assert_eq!(
        param(&seen.starts[3], "status"),
        "Succeeded",
        "the child's own $(tasks.status)"
    );
    assert_eq!(param(&seen.starts[4], "digest"), "sha256:abc");
    assert_eq!(param(&seen.starts[5], "deployed"), "Succeeded");
    assert_eq!(seen.children.len(), 1);
    assert_eq!(seen.children[0].name, "deploy");
    assert_eq!(
        seen.child_ends,
        [(
            "deploy".to_string(),
            0,
            ChildEnding::Ended(TaskEnding::Success)
        )]
    );

    let summary = state.report();
    assert_eq!(summary.run.status, "Succeeded");
    assert_eq!(
        statuses(&summary),
        [
            ("prepare", "Succeeded", ""),
            ("deploy", "Succeeded", ""),
            ("deploy.build", "Succeeded", ""),
            ("deploy.push", "Succeeded", ""),
            ("deploy.tidy", "Succeeded", ""),
            ("announce", "Succeeded", ""),
            ("notify", "Succeeded", ""),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    let deploy = &summary.tasks[1];
    assert_eq!(
        deploy.results.get("digest").map(String::as_str),
        Some("sha256:abc")
    );
}

#[test]
fn a_failed_child_fails_its_task_and_the_parent_goes_on_as_after_any_failure() {
    let (state, seen) = run(&parent("retries: 0"), |start| match start.name.as_str() {
        "deploy.push" => fail(),
        _ => healthy(start),
    });
    let report = state.report();
    assert_eq!(report.run.status, "Failed");
    let by_name: BTreeMap<String, (String, String)> = statuses(&report)
        .into_iter()
        .map(|(n, s, r)| (n, (s, r)))
        .collect();
    assert_eq!(by_name["deploy"].0, "Failed");
    assert_eq!(by_name["deploy.push"].0, "Failed");
    assert_eq!(
        by_name["deploy.tidy"].0, "Succeeded",
        "the child's finally ran"
    );
    // As after any failed task: nothing new starts, `finally` runs.
    assert_eq!(
        by_name["announce"],
        ("Skipped".to_string(), "RunStopping".to_string())
    );
    let notify = seen
        .starts
        .iter()
        .find(|s| s.name == "notify")
        .expect("notify ran");
    assert_eq!(param(notify, "deployed"), "Failed");
    let tidy = seen
        .starts
        .iter()
        .find(|s| s.name == "deploy.tidy")
        .expect("tidy ran");
    assert_eq!(param(tidy, "status"), "Failed");
}

#[test]
fn retries_run_the_whole_child_again_as_new_attempts() {
    let tries = std::cell::Cell::new(0);
    let (state, seen) = run(&parent("retries: 1"), |start| match start.name.as_str() {
        "deploy.push" => {
            tries.set(tries.get() + 1);
            if tries.get() == 1 {
                fail()
            } else {
                healthy(start)
            }
        }
        _ => healthy(start),
    });
    assert_eq!(state.report().run.status, "Succeeded");
    let attempts: Vec<(&str, u32)> = seen
        .starts
        .iter()
        .filter(|s| s.name.starts_with("deploy."))
        .map(|s| (s.name.as_str(), s.attempt))
        .collect();
    // Attempt numbers go on across the task's attempts: each is journaled once.
    assert_eq!(
        attempts,
        [
            ("deploy.build", 0),
            ("deploy.push", 0),
            ("deploy.tidy", 0),
            ("deploy.build", 1),
            ("deploy.push", 1),
            ("deploy.tidy", 1),
        ]
    );
    assert_eq!(
        seen.children.iter().map(|c| c.attempt).collect::<Vec<_>>(),
        [0, 1]
    );
    assert!(matches!(
        seen.child_ends[0].2,
        ChildEnding::Ended(TaskEnding::Failure { .. })
    ));
    let report = state.report();
    let deploy = report
        .tasks
        .iter()
        .find(|t| t.name == "deploy")
        .expect("deploy");
    assert_eq!(deploy.attempts, 2);
    let build = report
        .tasks
        .iter()
        .find(|t| t.name == "deploy.build")
        .expect("build");
    assert_eq!(build.attempts, 2, "both runs of the child count");
}

#[test]
fn the_tasks_timeout_bounds_the_whole_child() {
    let yaml = parent("timeout: 1m");
    let mut state = RunState::new(Arc::new(plan(&yaml)), context());
    let mut seen = Seen::default();
    let hang_push = |start: &StartTask| match start.name.as_str() {
        "deploy.push" => None,
        _ => healthy(start),
    };
    let started = state.start();
    carry(&mut state, &mut seen, started, &hang_push);
    assert_eq!(seen.hanging.len(), 1, "push hangs");
    let deploy = &seen.children[0];
    assert_eq!(deploy.timeout, Some(std::time::Duration::from_secs(60)));
    let timed_out = state.task_timed_out(deploy.node, deploy.attempt);
    carry(&mut state, &mut seen, timed_out, &hang_push);
    assert!(state.is_finished());
    let report = state.report();
    let by_name: BTreeMap<String, String> = statuses(&report)
        .into_iter()
        .map(|(n, s, r)| (n, format!("{s} {r}")))
        .collect();
    assert_eq!(by_name["deploy"], "TimedOut TaskRunTimeout");
    assert_eq!(by_name["deploy.push"], "TimedOut PipelineRunTimeout");
    assert_eq!(
        by_name["deploy.tidy"], "Skipped RunTimedOut",
        "a timed-out child runs no finally (as a pipeline timeout)"
    );
    assert_eq!(by_name["notify"], "Succeeded ");
    assert_eq!(
        seen.child_ends.last().map(|e| e.2.clone()),
        Some(ChildEnding::TimedOut)
    );
}

#[test]
fn cancelling_the_run_cancels_the_running_child() {
    let yaml = parent("retries: 3");
    let mut state = RunState::new(Arc::new(plan(&yaml)), context());
    let mut seen = Seen::default();
    let hang_push = |start: &StartTask| match start.name.as_str() {
        "deploy.push" => None,
        _ => healthy(start),
    };
    let started = state.start();
    carry(&mut state, &mut seen, started, &hang_push);
    let cancelled = state.cancel(CancelMode::Cancelled);
    carry(&mut state, &mut seen, cancelled, &hang_push);
    assert!(state.is_finished());
    let report = state.report();
    assert_eq!(report.run.status, "Cancelled");
    let by_name: BTreeMap<String, String> = statuses(&report)
        .into_iter()
        .map(|(n, s, _)| (n, s))
        .collect();
    assert_eq!(by_name["deploy"], "Cancelled");
    assert_eq!(by_name["deploy.push"], "Cancelled");
    assert_eq!(seen.children.len(), 1, "a cancelled child is not retried");
}

#[test]
fn a_skipped_task_runs_nothing_of_its_child() {
    let yaml = parent("when: [{input: a, operator: in, values: [b]}]");
    let (state, seen) = run(&yaml, healthy);
    assert!(seen.children.is_empty());
    assert!(seen.starts.iter().all(|s| !s.name.starts_with("deploy.")));
    let report = state.report();
    let deploy = report
        .tasks
        .iter()
        .find(|t| t.name == "deploy")
        .expect("deploy");
    assert_eq!(
        (deploy.status.as_str(), deploy.reason.as_str()),
        ("Skipped", "WhenExpressionsFalse")
    );
    let announce = report
        .tasks
        .iter()
        .find(|t| t.name == "announce")
        .expect("announce");
    assert_eq!(announce.reason, "ResultsMissing");
}

#[test]
fn children_nest_and_a_referenced_pipeline_is_found_among_the_files_documents() {
    let yaml = r#"apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: leaf}
spec:
  params: [{name: who, default: world}]
  tasks:
    - name: hello
      taskRef: {name: echo}
      params: [{name: text, value: "hello $(params.who)"}]
  results:
    - {name: said, value: $(tasks.hello.results.out)}
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: middle}
spec:
  tasks:
    - name: greet
      pipelineRef: {name: leaf}
      params: [{name: who, value: middle}]
  results:
    - {name: said, value: $(tasks.greet.results.said)}
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: nest-run}
spec:
  pipelineSpec:
    tasks:
      - name: outer
        pipelineRef: {name: middle}
      - name: last
        runAfter: [outer]
        taskRef: {name: echo}
        params: [{name: text, value: $(tasks.outer.results.said)}]
"#;
    let (state, seen) = run(yaml, |start| {
        let text = match start.params.get("text") {
            Some(ParamValue::Str(text)) => text.clone(),
            _ => String::new(),
        };
        ok(&[("out", &text)])
    });
    let started: Vec<(&str, &str)> = seen
        .starts
        .iter()
        .map(|s| (s.name.as_str(), s.pipeline_task.as_str()))
        .collect();
    assert_eq!(
        started,
        [("outer.greet.hello", "outer.greet.hello"), ("last", "last")]
    );
    assert_eq!(param(&seen.starts[1], "text"), "hello middle");
    assert_eq!(state.report().run.status, "Succeeded");
    let names: Vec<String> = state
        .report()
        .tasks
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(names, ["outer", "outer.greet", "outer.greet.hello", "last"]);
}

#[test]
fn validation_refuses_recursion_and_what_a_child_task_cannot_mean() {
    let recursive = r#"apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: a}
spec:
  tasks:
    - name: to-b
      pipelineRef: {name: b}
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: b}
spec:
  tasks:
    - name: to-a
      pipelineRef: {name: a}
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: r}
spec:
  pipelineRef: {name: a}
"#;
    let found = problems(recursive);
    assert!(
        found.iter().any(|p| p.starts_with(
            "cycle spec.tasks[0].pipelineRef.name: pipeline `a` would run itself: a -> b -> a"
        )),
        "{found:#?}"
    );

    let missing = parent("retries: 0").replace(
        "pipelineSpec:\n        params: [{name: version}, {name: region}]",
        "pipelineSpec:\n        params: [{name: version}, {name: region}, {name: needed}]",
    );
    let found = problems(&missing);
    assert!(found.iter().any(|p| p.contains("needed")), "{found:#?}");

    let odd = parent("secrets: [token]\n      matrix: {params: [{name: x, value: [a]}]}");
    let found = problems(&odd);
    assert!(
        found.iter().any(|p| p.starts_with(
            "unsupported-field spec.tasks[1].matrix: a task that runs a pipeline takes no `matrix`"
        )),
        "{found:#?}"
    );
    let odd = parent("secrets: [token]")
        .replace(
            "$(tasks.deploy.results.digest)}\n  finally",
            "$(tasks.deploy.results.nope)}\n  finally",
        )
        .replace(
            "workspaces: [{name: source, workspace: shared}]",
            "workspaces: [{name: sauce, workspace: shared}]",
        );
    let found = problems(&odd);
    for expected in [
        "unsupported-field spec.tasks[1].secrets: a task that runs a pipeline takes no `secrets`",
        "unknown-workspace spec.tasks[1].workspaces[0].name: pipeline `deploy` declares no workspace `sauce`",
        "missing-field spec.tasks[1].workspaces: pipeline `deploy` needs workspace `source`",
        "unknown-result",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "{expected}\n{found:#?}"
        );
    }

    let inner_problem = parent("retries: 0").replace(
        "taskRef: {name: echo}\n            params: [{name: tag",
        "taskRef: {name: echo}\n            retries: many\n            params: [{name: tag",
    );
    let found = problems(&inner_problem);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("wrong-type spec.tasks[1].pipelineSpec.tasks[0].retries")),
        "{found:#?}"
    );

    let nowhere = parent("retries: 0").replace(
        "pipelineSpec:\n        params: [{name: version}, {name: region}]",
        "pipelineRef: {name: nowhere}\n      x-pipelineSpec:\n        params: [{name: version}, {name: region}]",
    );
    let found = problems(&nowhere);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("unresolved-reference spec.tasks[1].pipelineRef.name")),
        "{found:#?}"
    );
}
