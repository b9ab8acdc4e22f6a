//! A run's DAG laid out for drawing (`weft runs show --graph`, `--output dot`): each task's
//! stage (the longest chain of tasks before it, as GitLab draws stages as columns) and the
//! tasks it waits for. `finally` tasks are set apart: they run after the whole DAG.

use crate::plan::Plan;

/// One task of the drawing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    /// Its name (a matrix combination's is `<task>-<i>`).
    pub name: String,
    /// The pipeline task it runs.
    pub pipeline_task: String,
    /// In `spec.finally`.
    pub finally: bool,
    /// Its stage, from 0: one more than the latest stage of the tasks it waits for
    /// (`finally` tasks: 0, in their own section).
    pub stage: usize,
    /// The tasks it waits for, by name, in plan order.
    pub after: Vec<String>,
}

/// Every task of `plan`, in plan order, with its stage and what it waits for. Linear in
/// tasks and edges.
pub fn layout(plan: &Plan) -> Vec<GraphNode> {
    let count = plan.nodes.len();
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (id, node) in plan.nodes.iter().enumerate() {
        for &child in &node.children {
            if let Some(list) = parents.get_mut(child) {
                list.push(id);
            }
        }
    }
    // Plan order is not always topological (`runAfter` may name a later task): Kahn's
    // order over the DAG part.
    let mut stage = vec![0usize; count];
    let mut waiting: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..plan.dag_len).filter(|&id| waiting[id] == 0).collect();
    while let Some(id) = ready.pop() {
        for &child in &plan.nodes[id].children {
            stage[child] = stage[child].max(stage[id] + 1);
            waiting[child] -= 1;
            if waiting[child] == 0 {
                ready.push(child);
            }
        }
    }
    plan.nodes
        .iter()
        .enumerate()
        .map(|(id, node)| GraphNode {
            name: node.name.clone(),
            pipeline_task: node.pipeline_task().to_string(),
            finally: node.is_finally,
            stage: if node.is_finally { 0 } else { stage[id] },
            after: parents[id]
                .iter()
                .map(|&parent| plan.nodes[parent].name.clone())
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn stages_are_the_longest_chain_before_a_task() {
        let yaml = "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: g}\nspec:\n  tasks:\n    - {name: late, taskRef: {name: echo}, runAfter: [b, c]}\n    - {name: a, taskRef: {name: echo}}\n    - {name: b, taskRef: {name: echo}, runAfter: [a]}\n    - {name: c, taskRef: {name: echo}, runAfter: [a, b]}\n    - {name: lone, taskRef: {name: echo}}\n  finally:\n    - {name: tell, taskRef: {name: echo}}\n";
        let plan = match crate::load(yaml, "g.yaml", &BTreeMap::new(), None) {
            Ok(plan) => plan,
            Err(found) => panic!("{found:?}"),
        };
        let got: Vec<(String, usize, Vec<String>, bool)> = layout(&plan)
            .into_iter()
            .map(|n| (n.name, n.stage, n.after, n.finally))
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                ("late".into(), 3, s(&["b", "c"]), false),
                ("a".into(), 0, s(&[]), false),
                ("b".into(), 1, s(&["a"]), false),
                ("c".into(), 2, s(&["a", "b"]), false),
                ("lone".into(), 0, s(&[]), false),
                ("tell".into(), 0, s(&[]), true),
            ]
        );
    }
}
