//! A run's graph for people who live in the terminal (`weft runs show RUN --graph`: stages
//! as GitLab draws columns, one line per task with its outcome, the skip reason and what
//! it waited for) and for Graphviz (`--output dot`: nodes coloured by outcome, the reason
//! as a tooltip, `finally` tasks in a cluster of their own).

use std::collections::BTreeMap;
use std::fmt::Write;

use weft_core::graph::GraphNode;
use weft_store::AttemptRecord;

/// Where one task stands: its latest attempt's outcome (or phase) and reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskState {
    /// `Succeeded`, `Failed`, `Skipped`, ... when it ended; else its phase.
    pub status: String,
    /// Why (a skip's reason, a failure's).
    pub reason: String,
    /// Its exit code, if it had one.
    pub exit_code: Option<i32>,
}

/// Each task's latest attempt, by task name.
pub fn states(attempts: &[AttemptRecord]) -> BTreeMap<String, TaskState> {
    let mut latest: BTreeMap<&str, &AttemptRecord> = BTreeMap::new();
    for attempt in attempts {
        let slot = latest.entry(attempt.id.task.as_str()).or_insert(attempt);
        if attempt.id.attempt > slot.id.attempt {
            *slot = attempt;
        }
    }
    latest
        .into_iter()
        .map(|(task, attempt)| {
            let status = match attempt.outcome {
                Some(outcome) => format!("{outcome:?}"),
                None => format!("{:?}", attempt.phase),
            };
            let state = TaskState {
                status,
                reason: attempt.reason.clone(),
                exit_code: attempt.exit_code,
            };
            (task.to_string(), state)
        })
        .collect()
}

/// The family of a task's state, as the dashboard colours it (`ok`, `warn`, `fail`,
/// `skip`, `cancel`, `run`, `wait`, `queue`, `pending`): the same groups as [`look`].
pub fn tone(status: &str) -> &'static str {
    match status {
        "Succeeded" => "ok",
        "SucceededWithWarnings" => "warn",
        "Failed" | "Errored" | "TimedOut" | "Rejected" => "fail",
        "Skipped" => "skip",
        "Cancelled" => "cancel",
        "Running" | "Cancelling" => "run",
        "Blocked" => "wait",
        "Queued" => "queue",
        _ => "pending",
    }
}

/// What a task's state looks like: a mark for the terminal, a colour for Graphviz (one
/// per [`tone`], so the text, DOT and dashboard group states alike).
fn look(status: &str) -> (&'static str, &'static str) {
    match tone(status) {
        "ok" => ("✔", "palegreen"),
        "warn" => ("!", "gold"),
        "fail" => ("✘", "salmon"),
        "skip" => ("○", "lightgrey"),
        "cancel" => ("⊘", "grey"),
        "run" => ("▶", "lightskyblue"),
        "wait" => ("⏸", "plum"),
        "queue" => ("…", "lightcyan"),
        _ => ("·", "white"),
    }
}

/// A task's state in words ("Skipped (ParentFailed)", "Failed exit 2"; "Pending" before
/// it started): the DOT tooltip, the dashboard's hover.
pub fn describe(state: Option<&TaskState>) -> String {
    let Some(state) = state else {
        return "Pending".into();
    };
    let mut text = state.status.clone();
    if !state.reason.is_empty() && state.reason != state.status {
        let _ = write!(text, " ({})", state.reason);
    }
    if let Some(code) = state.exit_code.filter(|code| *code != 0) {
        let _ = write!(text, " exit {code}");
    }
    text
}

/// The graph as text: one block per stage, then `finally`.
pub fn text(nodes: &[GraphNode], states: &BTreeMap<String, TaskState>) -> String {
    let width = nodes
        .iter()
        .map(|n| n.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut by_stage: BTreeMap<(bool, usize), Vec<&GraphNode>> = BTreeMap::new();
    for node in nodes {
        by_stage
            .entry((node.finally, node.stage))
            .or_default()
            .push(node);
    }
    let mut out = String::new();
    for ((finally, stage), group) in by_stage {
        let heading = if finally {
            "finally".to_string()
        } else {
            format!("stage {}", stage + 1)
        };
        for (index, node) in group.iter().enumerate() {
            let state = states.get(&node.name);
            let (mark, _) = look(state.map_or("Pending", |s| s.status.as_str()));
            let label = if index == 0 { heading.as_str() } else { "" };
            let _ = write!(
                out,
                "{label:<9} {mark} {:<width$}  {}",
                node.name,
                describe(state)
            );
            if !node.after.is_empty() {
                let _ = write!(out, "  <- {}", node.after.join(", "));
            }
            out.push('\n');
        }
    }
    out
}

/// A DOT string literal.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The graph in Graphviz's DOT language.
pub fn dot(run: &str, nodes: &[GraphNode], states: &BTreeMap<String, TaskState>) -> String {
    let mut out = format!(
        "digraph {} {{\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];\n",
        quoted(run)
    );
    let node_line = |out: &mut String, node: &GraphNode, indent: &str| {
        let state = states.get(&node.name);
        let status = state.map_or("Pending", |s| s.status.as_str());
        let (_, colour) = look(status);
        let label = format!("{}\n{}", node.name, status);
        let tooltip = describe(state);
        let _ = writeln!(
            out,
            "{indent}{} [label={}, fillcolor={colour}, tooltip={}];",
            quoted(&node.name),
            quoted(&label),
            quoted(&tooltip)
        );
    };
    for node in nodes.iter().filter(|n| !n.finally) {
        node_line(&mut out, node, "  ");
    }
    if nodes.iter().any(|n| n.finally) {
        out.push_str("  subgraph cluster_finally {\n    label=\"finally\";\n    style=dashed;\n");
        for node in nodes.iter().filter(|n| n.finally) {
            node_line(&mut out, node, "    ");
        }
        out.push_str("  }\n");
    }
    for node in nodes {
        for parent in &node.after {
            let _ = writeln!(out, "  {} -> {};", quoted(parent), quoted(&node.name));
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, stage: usize, after: &[&str], finally: bool) -> GraphNode {
        GraphNode {
            name: name.into(),
            pipeline_task: name.into(),
            finally,
            stage,
            after: after.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn state(status: &str, reason: &str, exit_code: Option<i32>) -> TaskState {
        TaskState {
            status: status.into(),
            reason: reason.into(),
            exit_code,
        }
    }

    #[test]
    fn text_and_dot_show_every_task_with_its_outcome() {
        let nodes = [
            node("clone", 0, &[], false),
            node("build", 1, &["clone"], false),
            node("deploy", 2, &["build"], false),
            node("notify", 0, &[], true),
        ];
        let states = BTreeMap::from([
            ("clone".to_string(), state("Succeeded", "", Some(0))),
            ("build".to_string(), state("Failed", "Failed", Some(2))),
            (
                "deploy".to_string(),
                state("Skipped", "ParentSkipped", None),
            ),
        ]);
        assert_eq!(
            text(&nodes, &states),
            "stage 1   ✔ clone   Succeeded\n\
             stage 2   ✘ build   Failed exit 2  <- clone\n\
             stage 3   ○ deploy  Skipped (ParentSkipped)  <- build\n\
             finally   · notify  Pending\n"
        );
        let dot = dot("run \"1\"", &nodes, &states);
        assert!(dot.starts_with("digraph \"run \\\"1\\\"\" {"), "{dot}");
        assert!(dot.contains("\"deploy\" [label=\"deploy\\nSkipped\", fillcolor=lightgrey, tooltip=\"Skipped (ParentSkipped)\"];"), "{dot}");
        assert!(dot.contains("\"build\" -> \"deploy\";"), "{dot}");
        assert!(dot.contains("subgraph cluster_finally {"), "{dot}");
    }
}
