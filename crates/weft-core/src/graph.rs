//! A run's DAG laid out for drawing (`weft runs show --graph`, `--output dot`): each task's
//! stage (the longest chain of tasks before it, as GitLab draws stages as columns) and the
//! tasks it waits for. `finally` tasks are set apart: they run after the whole DAG. A
//! task that runs a pipeline is drawn after that pipeline's tasks (its `finally` too),
//! which come after what the task waits for.

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
    let mut kids: Vec<Vec<usize>> = plan.nodes.iter().map(|n| n.children.clone()).collect();
    link_children(plan, 0, &mut kids);
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (id, list) in kids.iter().enumerate() {
        for &child in list {
            if let Some(list) = parents.get_mut(child) {
                list.push(id);
            }
        }
    }
    let is_finally = |id: usize| id >= plan.dag_len && id < plan.own_len;
    // Plan order is not always topological (`runAfter` may name a later task): Kahn's
    // order over everything but the run's `finally`.
    let mut stage = vec![0usize; count];
    let mut waiting: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..count)
        .filter(|&id| !is_finally(id) && waiting[id] == 0)
        .collect();
    while let Some(id) = ready.pop() {
        for &child in &kids[id] {
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
            finally: is_finally(id),
            stage: if is_finally(id) { 0 } else { stage[id] },
            after: parents[id]
                .iter()
                .map(|&parent| plan.nodes[parent].name.clone())
                .collect(),
        })
        .collect()
}

/// Edges for the tasks of `plan` (its nodes from `base` among the drawn ones) that run
/// pipelines: the child's first tasks after what the task waits for, the child's
/// `finally` after its last tasks, the task after the child's end; children's children
/// likewise.
fn link_children(plan: &Plan, base: usize, kids: &mut [Vec<usize>]) {
    if plan.nodes[..plan.own_len]
        .iter()
        .all(|node| node.child.is_none())
    {
        return;
    }
    // What each of the pipeline's own tasks waits for, once (not a scan per child).
    let mut waits_for: Vec<Vec<usize>> = vec![Vec::new(); plan.own_len];
    for (id, node) in plan.nodes[..plan.own_len].iter().enumerate() {
        for &c in &node.children {
            if let Some(list) = waits_for.get_mut(c) {
                list.push(base + id);
            }
        }
    }
    for (task, node) in plan.nodes[..plan.own_len].iter().enumerate() {
        let Some(child) = &node.child else {
            continue;
        };
        let inner = &child.plan;
        let at = base + child.nodes.start;
        let before = &waits_for[task];
        let mut has_parent = vec![false; inner.dag_len];
        for node in &inner.nodes[..inner.dag_len] {
            for &c in &node.children {
                if let Some(flag) = has_parent.get_mut(c) {
                    *flag = true;
                }
            }
        }
        let leaves: Vec<usize> = (0..inner.dag_len)
            .filter(|&id| inner.nodes[id].children.is_empty())
            .map(|id| at + id)
            .collect();
        let finally: Vec<usize> = (inner.dag_len..inner.own_len).map(|id| at + id).collect();
        for (id, &rooted) in has_parent.iter().enumerate() {
            if !rooted {
                for &p in before {
                    kids[p].push(at + id);
                }
            }
        }
        for &f in &finally {
            for &leaf in &leaves {
                kids[leaf].push(f);
            }
        }
        let last = if finally.is_empty() {
            &leaves
        } else {
            &finally
        };
        for &end in last {
            kids[end].push(base + task);
        }
        link_children(inner, at, kids);
    }
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

    #[test]
    fn a_childs_tasks_come_between_what_its_task_waits_for_and_the_task() {
        let yaml = "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: g}\nspec:\n  tasks:\n    - {name: a, taskRef: {name: echo}}\n    - name: t\n      runAfter: [a]\n      pipelineSpec:\n        tasks:\n          - {name: x, taskRef: {name: echo}}\n          - {name: y, taskRef: {name: echo}, runAfter: [x]}\n        finally:\n          - {name: f, taskRef: {name: echo}}\n    - {name: b, taskRef: {name: echo}, runAfter: [t]}\n";
        let plan = match crate::load(yaml, "g.yaml", &BTreeMap::new(), None) {
            Ok(plan) => plan,
            Err(found) => panic!("{found:?}"),
        };
        let got: Vec<(String, usize, bool)> = layout(&plan)
            .into_iter()
            .map(|n| (n.name, n.stage, n.finally))
            .collect();
        let want: Vec<(String, usize, bool)> = [
            ("a", 0),
            ("t", 4),
            ("b", 5),
            ("t.x", 1),
            ("t.y", 2),
            ("t.f", 3),
        ]
        .into_iter()
        .map(|(name, stage)| (name.to_string(), stage, false))
        .collect();
        assert_eq!(got, want);
    }
}
