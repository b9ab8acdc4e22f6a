//! The task-level release sugar (`approval:` and `gates:` on a task) is written out as the
//! approval and gate tasks it stands for, wired between the task, its parents and the
//! tasks that depend on it.

use std::collections::BTreeMap;
use weft_core::waits::WaitKind;
use weft_core::{Plan, load};

const PIPELINE: &str = r#"apiVersion: weft.dev/v1
kind: Pipeline
metadata: {name: release}
spec:
  tasks:
    - name: build
      taskRef: {name: echo}
    - name: deploy
      runAfter: [build]
      taskRef: {name: echo}
      when: [{input: "yes", operator: in, values: ["yes"]}]
      approval:
        before: {approvers: [alice, bob], required: 2, timeout: 1h}
        after: {approvers: ["group:sre"]}
      gates:
        before:
          plugins:
            - {name: http-check, params: [{name: url, value: "https://status.example.com"}]}
            - {name: time-window, params: [{name: hours, value: "09:00-17:00"}]}
          samplingInterval: 30s
          stableFor: 2m
        after:
          plugins: [{name: http-check, params: [{name: url, value: "$(tasks.build.results.url)"}]}]
    - name: smoke
      taskRef: {name: echo}
      params: [{name: target, value: "$(tasks.deploy.results.url)"}]
    - name: notify
      runAfter: [deploy]
      taskRef: {name: echo}
"#;

fn plan() -> Plan {
    match load(PIPELINE, "release.yaml", &BTreeMap::new(), None) {
        Ok(plan) => plan,
        Err(diagnostics) => panic!("{diagnostics:#?}"),
    }
}

/// Each node's direct parents, by name.
fn parents(plan: &Plan) -> BTreeMap<String, Vec<String>> {
    let mut parents: BTreeMap<String, Vec<String>> = plan
        .nodes
        .iter()
        .map(|node| (node.name.clone(), Vec::new()))
        .collect();
    for node in &plan.nodes {
        for &child in &node.children {
            if let Some(list) = parents.get_mut(&plan.nodes[child].name) {
                list.push(node.name.clone());
            }
        }
    }
    for list in parents.values_mut() {
        list.sort();
    }
    parents
}

#[test]
fn approval_and_gates_blocks_become_tasks_in_order() {
    let plan = plan();
    let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "build",
            "deploy.approval-before",
            "deploy.gates-before",
            "deploy",
            "deploy.gates-after",
            "deploy.approval-after",
            "smoke",
            "notify",
        ]
    );
    let kind = |name: &str| {
        plan.nodes
            .iter()
            .find(|n| n.name == name)
            .and_then(|n| n.wait)
            .map(WaitKind::as_str)
    };
    assert_eq!(kind("deploy.approval-before"), Some("approval"));
    assert_eq!(kind("deploy.gates-before"), Some("gate"));
    assert_eq!(kind("deploy"), None);
    assert_eq!(kind("deploy.approval-after"), Some("approval"));
    let parents = parents(&plan);
    let of = |name: &str| parents[name].clone();
    // parents -> approval -> gates -> the task -> gates -> approval -> dependents
    assert_eq!(of("deploy.approval-before"), ["build"]);
    assert_eq!(of("deploy.gates-before"), ["deploy.approval-before"]);
    assert_eq!(of("deploy"), ["build", "deploy.gates-before"]);
    // The after-gate references build's results: that is a parent too.
    assert_eq!(of("deploy.gates-after"), ["build", "deploy"]);
    assert_eq!(of("deploy.approval-after"), ["deploy.gates-after"]);
    // Whatever depended on deploy (by runAfter or by its results) waits for the end.
    assert_eq!(of("smoke"), ["deploy", "deploy.approval-after"]);
    assert_eq!(of("notify"), ["deploy", "deploy.approval-after"]);
}

#[test]
fn written_tasks_carry_the_blocks_settings() {
    let plan = plan();
    let node = |name: &str| match plan.nodes.iter().find(|n| n.name == name) {
        Some(node) => node,
        None => panic!("no node {name}"),
    };
    let before = node("deploy.approval-before");
    assert_eq!(before.timeout, Some(std::time::Duration::from_secs(3600)));
    let gates = node("deploy.gates-before");
    assert_eq!(gates.plugin, "http-check");
    match gates.wait {
        Some(WaitKind::Gate(timing)) => {
            assert_eq!(timing.sampling_interval.as_secs(), 30);
            assert_eq!(timing.stable_for.as_secs(), 120);
            // The default timeout.
            assert_eq!(timing.timeout.as_secs(), 15 * 60);
        }
        other => panic!("not a gate: {other:?}"),
    }
}

/// Both gates of one block are evaluated in every sample: the run hands the engine the
/// second plugin with its params rendered.
#[test]
fn every_plugin_of_a_gates_block_is_sampled_together() {
    use std::sync::Arc;
    use weft_core::{Action, RunContext, RunState};
    let plan = Arc::new(plan());
    let mut run = RunState::new(
        plan.clone(),
        RunContext {
            run_name: "r".into(),
            run_uid: "u".into(),
            bound_workspaces: Default::default(),
        },
    );
    let mut actions = run.start();
    let mut waited = None;
    // build succeeds, the approval is approved: the gate opens.
    for _ in 0..3 {
        let mut next = Vec::new();
        for action in actions {
            match action {
                Action::Start(start) => {
                    next.extend(run.task_started(start.node, start.attempt));
                    next.extend(run.task_ended(
                        start.node,
                        start.attempt,
                        weft_core::contract::TaskEnding::Success,
                        BTreeMap::new(),
                    ));
                }
                Action::Wait(wait) if wait.start.name == "deploy.approval-before" => {
                    next.extend(run.task_waited(
                        wait.start.node,
                        wait.start.attempt,
                        &weft_core::waits::WaitEnding::Approved {
                            approvers: vec!["alice".into(), "bob".into()],
                        },
                    ));
                }
                Action::Wait(wait) => waited = Some(wait),
                _ => {}
            }
        }
        actions = next;
    }
    let Some(gate) = waited else {
        panic!("the gate never opened")
    };
    assert_eq!(gate.start.name, "deploy.gates-before");
    assert_eq!(gate.start.plugin, "http-check");
    assert_eq!(gate.checks.len(), 1);
    assert_eq!(gate.checks[0].plugin, "time-window");
    assert_eq!(
        gate.checks[0].params["hours"],
        weft_core::contract::ParamValue::Str("09:00-17:00".into())
    );
}
