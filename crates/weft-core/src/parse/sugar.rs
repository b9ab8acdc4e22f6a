//! The task-level release sugar for Azure users (release-control.md sections 1 and 3):
//! `approval: {before, after}` and `gates: {before, after}` on a pipeline task are written
//! out as the approval and gate tasks they stand for, named `<task>.approval-before`,
//! `<task>.gates-before`, `<task>.gates-after` and `<task>.approval-after`, so that every
//! later step (validation, planning, the run, the store, forges) sees only plain tasks.
//!
//! Order: the task's parents -> approval-before -> gates-before -> the task -> gates-after
//! -> approval-after -> the task's dependents (the design puts a pre-deployment approval
//! before the gates; after deployment weft follows Azure: gates first, then approval).
//! The written tasks take the task's `when`, so nobody is asked about a task that is
//! skipped.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Cx, Fields, GATE_TIMING_FIELDS, join};
use crate::contract::ParamValue;
use crate::diag::{Pos, Spanned, codes};
use crate::model::{
    GateCheck, HaltMode, OnError, Pipeline, PipelineTask, TaskKind, TaskParam, WhenExpr,
};
use crate::vars::parse_template;
use crate::waits::GateTiming;
use crate::yaml::Node;

/// A task's `approval:` and `gates:` blocks, until every task is parsed.
pub(super) struct TaskSugar {
    finally: bool,
    /// The task's index in its section.
    index: usize,
    /// `approval.before`, `approval.after`.
    approval: [Option<ApprovalBlock>; 2],
    /// `gates.before`, `gates.after`.
    gates: [Option<GatesBlock>; 2],
    /// Where the first block starts.
    pos: Pos,
    path: String,
}

struct ApprovalBlock {
    approvers: Vec<String>,
    required: u32,
    timeout: Option<Duration>,
    description: Option<String>,
    pos: Pos,
    path: String,
}

struct GatesBlock {
    checks: Vec<GateCheck>,
    timing: GateTiming,
    pos: Pos,
    path: String,
}

const SIDES: [&str; 2] = ["before", "after"];

impl Cx<'_> {
    /// Reads `task`'s `approval:` and `gates:` blocks, if any, to write out later.
    pub(super) fn release_sugar(&mut self, fields: &Fields<'_>, path: &str, task: &PipelineTask) {
        let mut sugar = TaskSugar {
            finally: task.is_finally,
            index: task.index,
            approval: [None, None],
            gates: [None, None],
            pos: task.pos,
            path: path.to_string(),
        };
        let mut any = false;
        for (field, is_approval) in [("approval", true), ("gates", false)] {
            let Some(node) = fields.get(field) else {
                continue;
            };
            any = true;
            sugar.pos = fields.key_pos(field).unwrap_or(node.pos);
            let block_path = join(path, field);
            let Some(sides) = self.fields(node, &block_path, &SIDES, &[]) else {
                continue;
            };
            for (slot, side) in SIDES.iter().enumerate() {
                let Some(side_node) = sides.get(side) else {
                    continue;
                };
                let side_path = join(&block_path, side);
                if is_approval {
                    sugar.approval[slot] = self.approval_block(side_node, &side_path);
                } else {
                    sugar.gates[slot] = self.gates_block(side_node, &side_path);
                }
            }
        }
        if any {
            self.sugar.push(sugar);
        }
    }

    /// `{approvers: [...], required: 1, timeout: 1h, description: "..."}`.
    fn approval_block(&mut self, node: &Node, path: &str) -> Option<ApprovalBlock> {
        let fields = self.fields(
            node,
            path,
            &["approvers", "required", "timeout", "description"],
            &[],
        )?;
        let approvers: Vec<String> = self
            .string_list(&fields, "approvers", path)
            .into_iter()
            .map(|approver| approver.value)
            .collect();
        if approvers.is_empty() {
            self.error(
                fields.get("approvers").map_or(node.pos, |n| n.pos),
                &join(path, "approvers"),
                codes::MISSING_FIELD,
                "`approvers` must list at least one identity (or `group:NAME`)",
            );
        }
        let mut required = 1;
        if let Some(value) = fields.get("required") {
            let required_path = join(path, "required");
            if let Some(text) = self.string(value, &required_path) {
                match text.value.trim().parse::<u32>() {
                    Ok(n) if n >= 1 && (approvers.is_empty() || n as usize <= approvers.len()) => {
                        required = n
                    }
                    Ok(n) if n >= 1 => {
                        self.error(
                            text.pos,
                            &required_path,
                            codes::INVALID_VALUE,
                            format!(
                                "{n} approvals are required but only {} approvers are listed",
                                approvers.len()
                            ),
                        );
                    }
                    _ => {
                        self.error(
                            text.pos,
                            &required_path,
                            codes::INVALID_VALUE,
                            format!(
                                "`required` must be a whole number of at least 1, not `{}`",
                                text.value
                            ),
                        );
                    }
                }
            }
        }
        let timeout = fields.get("timeout").and_then(|value| {
            self.duration(value, &join(path, "timeout"), "timeout")
                .filter(|d| !d.is_zero())
        });
        let description = fields
            .get("description")
            .and_then(|value| self.string(value, &join(path, "description")))
            .map(|d| d.value);
        Some(ApprovalBlock {
            approvers,
            required,
            timeout,
            description,
            pos: node.pos,
            path: path.to_string(),
        })
    }

    /// `{plugins: [{name, params}], samplingInterval, stableFor, timeout}`.
    fn gates_block(&mut self, node: &Node, path: &str) -> Option<GatesBlock> {
        let mut known = vec!["plugins"];
        known.extend(GATE_TIMING_FIELDS);
        let fields = self.fields(node, path, &known, &[])?;
        let timing = self.gate_timing_fields(&fields, path, node.pos);
        let mut checks = Vec::new();
        let plugins_path = join(path, "plugins");
        if let Some(plugins) = fields.get("plugins") {
            for (index, item) in self.seq(plugins, &plugins_path).iter().enumerate() {
                let item_path = format!("{plugins_path}[{index}]");
                let Some(plugin) = self.fields(item, &item_path, &["name", "params"], &[]) else {
                    continue;
                };
                let name = self.required_plugin(&plugin, "name", &item_path, item.pos);
                let params = match plugin.get("params") {
                    Some(params) => self.task_params(params, &join(&item_path, "params")),
                    None => Vec::new(),
                };
                checks.push(GateCheck {
                    plugin: name,
                    params,
                    path: item_path,
                });
            }
        }
        if checks.is_empty() {
            self.error(
                fields.get("plugins").map_or(node.pos, |n| n.pos),
                &plugins_path,
                codes::MISSING_FIELD,
                "`plugins` must list at least one gate: `plugins: [{name: http-check, params: [...]}]`",
            );
            return None;
        }
        Some(GatesBlock {
            checks,
            timing,
            pos: node.pos,
            path: path.to_string(),
        })
    }

    /// Writes every task's blocks out as tasks, wired between the task and its parents
    /// and dependents.
    pub(super) fn desugar(&mut self, pipeline: &mut Pipeline) {
        for sugar in std::mem::take(&mut self.sugar) {
            if sugar.finally {
                self.error(
                    sugar.pos,
                    &sugar.path,
                    codes::INVALID_WAIT,
                    "`approval` and `gates` cannot be set on a `finally` task: finally tasks run in no order, so nothing can come before or after one",
                )
                .hint = Some(
                    "add an approval task (`taskRef: {kind: ApprovalTask}`) to `finally` instead"
                        .into(),
                );
                continue;
            }
            let Some(at) = pipeline.tasks.iter().position(|t| t.index == sugar.index) else {
                continue;
            };
            write_out(pipeline, at, sugar);
        }
    }
}

/// Writes out one task's blocks.
fn write_out(pipeline: &mut Pipeline, at: usize, sugar: TaskSugar) {
    let task = &pipeline.tasks[at];
    let name = task.name.value.clone();
    let when = task.when.clone();
    // The before-tasks wait for everything the task waited for.
    let mut parents: Vec<Spanned<String>> = task.run_after.clone();
    for referenced in referenced_tasks(task) {
        if referenced != name && !parents.iter().any(|p| p.value == referenced) {
            parents.push(Spanned::new(referenced, task.pos));
        }
    }
    let [approval_before, approval_after] = sugar.approval;
    let [gates_before, gates_after] = sugar.gates;
    let base = Written {
        task: &name,
        index: task.index,
        when: &when,
    };
    let mut before = Vec::new();
    if let Some(block) = approval_before {
        before.push(base.approval(block, "approval-before", &parents));
    }
    if let Some(block) = gates_before {
        let after: Vec<Spanned<String>> = match before.last() {
            Some(last) => vec![last.name.clone()],
            None => parents.clone(),
        };
        before.push(base.gates(block, "gates-before", &after));
    }
    let mut after = Vec::new();
    if let Some(block) = gates_after {
        let parent = Spanned::new(name.clone(), sugar.pos);
        after.push(base.gates(block, "gates-after", &[parent]));
    }
    if let Some(block) = approval_after {
        let parent = after
            .last()
            .map_or_else(|| Spanned::new(name.clone(), sugar.pos), |t| t.name.clone());
        after.push(base.approval(block, "approval-after", &[parent]));
    }
    if let Some(last) = before.last() {
        pipeline.tasks[at].run_after.push(last.name.clone());
    }
    if let Some(last) = after.last() {
        // Whatever waited for the task now also waits for what comes after it.
        for (other_at, other) in pipeline.tasks.iter_mut().enumerate() {
            if other_at == at {
                continue;
            }
            let waits_for_it = other.run_after.iter().any(|p| p.value == name)
                || referenced_tasks(other).contains(&name);
            if waits_for_it && !other.run_after.iter().any(|p| p.value == last.name.value) {
                other.run_after.push(last.name.clone());
            }
        }
    }
    pipeline.tasks.splice(at + 1..at + 1, after);
    pipeline.tasks.splice(at..at, before);
}

/// The task names a task's `$(tasks.NAME...)` references name.
fn referenced_tasks(task: &PipelineTask) -> BTreeSet<String> {
    task.template_strings()
        .filter_map(|text| parse_template(text).ok())
        .flat_map(|template| {
            template
                .vars()
                .filter_map(|var| var.depends_on().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What every task written out of one task's blocks shares.
struct Written<'a> {
    task: &'a str,
    index: usize,
    when: &'a [WhenExpr],
}

impl Written<'_> {
    fn plain(&self, suffix: &str, kind: TaskKind, pos: Pos, path: String) -> PipelineTask {
        PipelineTask {
            name: Spanned::new(format!("{}.{suffix}", self.task), pos),
            kind,
            plugin: Spanned::new(String::new(), pos),
            gate: None,
            gate_checks: Vec::new(),
            params: Vec::new(),
            workspaces: Vec::new(),
            run_after: Vec::new(),
            when: self.when.to_vec(),
            retries: 0,
            timeout: None,
            on_error: OnError::StopAndFail,
            on_status: Vec::new(),
            secrets: Vec::new(),
            halt: HaltMode::Wait,
            idempotent: false,
            concurrency: None,
            is_finally: false,
            index: self.index,
            pos,
            origin: Some(path),
            steps: None,
            matrix: None,
            child: None,
        }
    }

    fn approval(
        &self,
        block: ApprovalBlock,
        suffix: &str,
        parents: &[Spanned<String>],
    ) -> PipelineTask {
        let pos = block.pos;
        let param = |name: &str, value: ParamValue| TaskParam {
            name: Spanned::new(name.to_string(), pos),
            value: Spanned::new(value, pos),
        };
        let description = block.description.unwrap_or_else(|| {
            let when = if suffix.ends_with("before") {
                "run"
            } else {
                "go on after"
            };
            format!("Approve to {when} `{}`", self.task)
        });
        let mut task = self.plain(suffix, TaskKind::Approval, pos, block.path);
        task.params = vec![
            param("approvers", ParamValue::Array(block.approvers)),
            param(
                "numberOfApprovalsRequired",
                ParamValue::Str(block.required.to_string()),
            ),
            param("description", ParamValue::Str(description)),
        ];
        task.timeout = block.timeout;
        task.run_after = parents.to_vec();
        task
    }

    fn gates(&self, block: GatesBlock, suffix: &str, parents: &[Spanned<String>]) -> PipelineTask {
        let mut checks = block.checks.into_iter();
        let mut task = self.plain(suffix, TaskKind::Gate, block.pos, block.path);
        if let Some(first) = checks.next() {
            task.plugin = first.plugin;
            task.params = first.params;
        }
        task.gate_checks = checks.collect();
        task.gate = Some(Box::new(Spanned::new(block.timing, block.pos)));
        task.run_after = parents.to_vec();
        task
    }
}
