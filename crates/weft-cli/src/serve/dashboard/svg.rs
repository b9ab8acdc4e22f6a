//! A run's DAG as inline SVG: one column per stage (`weft_core::graph::layout`, the same
//! layout as `weft runs show --graph`), `finally` tasks in a dashed box of their own,
//! nodes coloured by their tone (CSS classes, so the live updates only change a class),
//! the state in words on hover (`<title>`), waits drawn as waits.

use std::collections::BTreeMap;
use std::fmt::Write;

use weft_core::graph::GraphNode;

use super::html::{escape, segment};
use super::view::TaskRow;

const NODE_W: usize = 170;
const NODE_H: usize = 46;
const COL_GAP: usize = 50;
const ROW_GAP: usize = 18;
const MARGIN: usize = 16;
/// Room above the `finally` box for its label.
const FINALLY_PAD: usize = 24;

/// A node's label, cut to fit its box (the whole name is in the hover).
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// A task's status as the table says it: what it waits for, else its status.
pub fn status_line(row: &TaskRow) -> String {
    match &row.waiting {
        Some(kind) => format!("waits: {kind}"),
        None => row.status.clone(),
    }
}

/// What a node says under its name: what it waits for, else its state with the reason
/// ("Skipped (ParentFailed)").
fn node_line(row: &TaskRow) -> String {
    match &row.waiting {
        Some(kind) => format!("waits: {kind}"),
        None => row.summary.clone(),
    }
}

/// The graph of `run` (its attempt id) with `tasks`' states.
pub fn graph(run: &str, nodes: &[GraphNode], tasks: &[TaskRow]) -> String {
    if nodes.is_empty() {
        return String::from(
            "<p class=\"muted\">This run's pipeline no longer plans with this weft: no graph.</p>",
        );
    }
    let rows: BTreeMap<&str, &TaskRow> = tasks.iter().map(|t| (t.task.as_str(), t)).collect();
    // Positions: main stages left to right, then the `finally` column.
    let mut per_stage: BTreeMap<usize, usize> = BTreeMap::new();
    let mut at: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let stages = nodes
        .iter()
        .filter(|n| !n.finally)
        .map(|n| n.stage + 1)
        .max()
        .unwrap_or(0);
    let finally_x = MARGIN + stages * (NODE_W + COL_GAP) + MARGIN;
    let mut finally_rows = 0;
    for node in nodes {
        if node.finally {
            let y = MARGIN + FINALLY_PAD + finally_rows * (NODE_H + ROW_GAP);
            at.insert(&node.name, (finally_x + MARGIN, y));
            finally_rows += 1;
        } else {
            let row = per_stage.entry(node.stage).or_default();
            let x = MARGIN + node.stage * (NODE_W + COL_GAP);
            let y = MARGIN + FINALLY_PAD + *row * (NODE_H + ROW_GAP);
            at.insert(&node.name, (x, y));
            *row += 1;
        }
    }
    let tallest = per_stage
        .values()
        .copied()
        .max()
        .unwrap_or(0)
        .max(finally_rows);
    let height = MARGIN * 2 + FINALLY_PAD + tallest * (NODE_H + ROW_GAP);
    let width = if finally_rows > 0 {
        finally_x + NODE_W + MARGIN * 3
    } else {
        finally_x
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"dag\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"the run's tasks as a graph\">"
    );
    if finally_rows > 0 {
        let _ = write!(
            out,
            "<rect class=\"finally-box\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"8\"/><text class=\"finally-label\" x=\"{}\" y=\"{}\">finally</text>",
            finally_x,
            MARGIN,
            NODE_W + MARGIN * 2,
            height - MARGIN * 2,
            finally_x + MARGIN,
            MARGIN + 16
        );
    }
    // Edges first, under the nodes.
    for node in nodes {
        let Some(&(cx, cy)) = at.get(node.name.as_str()) else {
            continue;
        };
        for parent in &node.after {
            let Some(&(px, py)) = at.get(parent.as_str()) else {
                continue;
            };
            let (x1, y1) = (px + NODE_W, py + NODE_H / 2);
            let (x2, y2) = (cx, cy + NODE_H / 2);
            let mid = (x1 + x2) / 2;
            let _ = write!(
                out,
                "<path class=\"edge\" d=\"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}\"/>"
            );
        }
    }
    let pending = TaskRow {
        task: String::new(),
        status: "Pending".into(),
        tone: "pending",
        reason: String::new(),
        summary: "Pending".into(),
        attempts: 0,
        exit_code: None,
        waiting: None,
        finally: false,
    };
    for node in nodes {
        let Some(&(x, y)) = at.get(node.name.as_str()) else {
            continue;
        };
        let row = rows.get(node.name.as_str()).copied().unwrap_or(&pending);
        let _ = write!(
            out,
            "<g class=\"node tone-{tone}\" data-task=\"{task}\"><title>{task}: {summary}</title><a href=\"/runs/{run_seg}/tasks/{task_seg}\"><rect x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"6\"/><text class=\"name\" x=\"{tx}\" y=\"{ty1}\">{label}</text><text class=\"status\" x=\"{tx}\" y=\"{ty2}\">{status}</text></a></g>",
            tone = row.tone,
            task = escape(&node.name),
            summary = escape(&row.summary),
            run_seg = escape(&segment(run)),
            task_seg = escape(&segment(&node.name)),
            tx = x + 10,
            ty1 = y + 19,
            ty2 = y + 37,
            label = escape(&fit(&node.name, 22)),
            status = escape(&fit(&node_line(row), 24)),
        );
    }
    out.push_str("</svg>");
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

    fn row(task: &str, status: &str, tone: &'static str, waiting: Option<&str>) -> TaskRow {
        TaskRow {
            task: task.into(),
            status: status.into(),
            tone,
            reason: String::new(),
            summary: format!("{status} (why)"),
            attempts: 1,
            exit_code: None,
            waiting: waiting.map(str::to_string),
            finally: false,
        }
    }

    #[test]
    fn nodes_are_coloured_escaped_linked_and_finally_is_apart() {
        let nodes = [
            node("build", 0, &[], false),
            node("<img src=x>", 1, &["build"], false),
            node("approve", 1, &["build"], false),
            node("notify", 0, &[], true),
        ];
        let tasks = [
            row("build", "Succeeded", "ok", None),
            row("<img src=x>", "Skipped", "skip", None),
            row("approve", "Running", "wait", Some("approval")),
        ];
        let svg = graph("run~2", &nodes, &tasks);
        assert!(
            svg.contains("<g class=\"node tone-ok\" data-task=\"build\">"),
            "{svg}"
        );
        assert!(svg.contains("data-task=\"&lt;img src=x&gt;\""), "{svg}");
        assert!(!svg.contains("<img"), "{svg}");
        assert!(
            svg.contains("href=\"/runs/run~2/tasks/%3Cimg%20src%3Dx%3E\""),
            "{svg}"
        );
        assert!(svg.contains(">waits: approval</text>"), "{svg}");
        assert!(
            svg.contains("<title>build: Succeeded (why)</title>"),
            "{svg}"
        );
        assert!(svg.contains("class=\"finally-box\""), "{svg}");
        assert!(
            svg.contains("<g class=\"node tone-pending\" data-task=\"notify\">"),
            "{svg}"
        );
        assert_eq!(svg.matches("class=\"edge\"").count(), 2, "{svg}");
    }
}
