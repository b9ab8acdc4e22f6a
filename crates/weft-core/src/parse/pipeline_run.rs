//! A `PipelineRun` document into [`PipelineRun`] (and its inline `pipelineSpec` into a
//! [`Pipeline`]), every structural problem reported with its field.

use super::resolver::RefKind;
use super::{Cx, join};
use crate::diag::{Spanned, codes};
use crate::model::{ApiVersion, Pipeline};
use crate::pipeline_run::*;
use crate::yaml::{Node, NodeKind};

/// The sources a workspace binding may name, and those weft knowingly refuses.
const WORKSPACE_SOURCES: [&str; 5] = [
    "emptyDir",
    "volumeClaimTemplate",
    "persistentVolumeClaim",
    "configMap",
    "secret",
];

impl Cx<'_> {
    /// A `PipelineRun` document (its `apiVersion` and `kind` already known), and the
    /// pipeline of its `pipelineSpec` when it has one.
    pub(super) fn pipeline_run(
        &mut self,
        root: &Node,
        api_version: ApiVersion,
    ) -> Option<(PipelineRun, Option<Pipeline>)> {
        let top = self.fields(root, "", &["apiVersion", "kind", "metadata", "spec"], &[])?;
        let mut run = PipelineRun {
            file: self.file.to_string(),
            api_version,
            name: None,
            generate_name: None,
            pipeline: PipelineChoice::Inline(root.pos),
            params: Vec::new(),
            workspaces: Vec::new(),
            timeouts: RunTimeouts::default(),
            timeouts_pos: root.pos,
            task_run_specs: Vec::new(),
            status: None,
            pos: root.pos,
        };
        match top.get("metadata") {
            None => {
                self.error(
                    root.pos,
                    "",
                    codes::MISSING_FIELD,
                    "missing `metadata`: a PipelineRun has `metadata.name` or `metadata.generateName`",
                );
            }
            Some(metadata) => {
                if let Some(fields) = self.fields(
                    metadata,
                    "metadata",
                    &["name", "generateName", "labels", "annotations", "namespace"],
                    &[],
                ) {
                    run.name = fields
                        .get("name")
                        .and_then(|node| self.string(node, "metadata.name"));
                    run.generate_name = fields
                        .get("generateName")
                        .and_then(|node| self.string(node, "metadata.generateName"));
                    if run.name.is_none() && run.generate_name.is_none() {
                        self.error(
                            metadata.pos,
                            "metadata",
                            codes::MISSING_FIELD,
                            "missing `metadata.name` (or `metadata.generateName`)",
                        );
                    }
                    self.run_name(&run);
                }
            }
        }
        let Some(spec_node) = top.get("spec") else {
            self.error(root.pos, "", codes::MISSING_FIELD, "missing `spec`");
            return Some((run, None));
        };
        let mut known = vec![
            "pipelineRef",
            "pipelineSpec",
            "params",
            "workspaces",
            "timeouts",
            "taskRunSpecs",
            "status",
        ];
        if api_version == ApiVersion::TektonV1Beta1 {
            known.push("timeout");
        }
        let spec = self.fields(
            spec_node,
            "spec",
            &known,
            &[
                "taskRunTemplate",
                "serviceAccountName",
                "serviceAccountNames",
                "podTemplate",
                "resources",
                "managedBy",
            ],
        )?;
        let mut pipeline = None;
        match (spec.get("pipelineRef"), spec.get("pipelineSpec")) {
            (Some(_), Some(inline)) => {
                self.error(
                    inline.pos,
                    "spec.pipelineSpec",
                    codes::INVALID_VALUE,
                    "a PipelineRun has `pipelineRef` or `pipelineSpec`, not both",
                );
            }
            (None, None) => {
                self.error(
                    spec_node.pos,
                    "spec",
                    codes::MISSING_FIELD,
                    "missing `pipelineRef` or `pipelineSpec`: say which pipeline to run",
                );
            }
            (Some(reference), None) => {
                if let Some(fields) = self.fields(
                    reference,
                    "spec.pipelineRef",
                    &["name", "apiVersion", "resolver", "params", "bundle"],
                    &[],
                ) {
                    let name = self
                        .resolved_name(reference, "spec.pipelineRef", RefKind::Pipeline)
                        .unwrap_or_else(|| {
                            self.required_string(&fields, "name", "spec.pipelineRef", reference.pos)
                        });
                    run.pipeline = PipelineChoice::Ref(name);
                }
            }
            (None, Some(inline)) => {
                run.pipeline = PipelineChoice::Inline(inline.pos);
                let name = run
                    .name
                    .clone()
                    .or_else(|| {
                        run.generate_name.as_ref().map(|prefix| {
                            Spanned::new(prefix.value.trim_end_matches('-').to_string(), prefix.pos)
                        })
                    })
                    .unwrap_or_else(|| Spanned::new("pipeline".to_string(), root.pos));
                let shell = Pipeline::empty(self.file, api_version, name, inline.pos);
                pipeline = self.pipeline_spec(shell, inline.pos, Some(inline));
            }
        }
        if let Some(params) = spec.get("params") {
            for (index, item) in self.seq(params, "spec.params").iter().enumerate() {
                let path = format!("spec.params[{index}]");
                let Some(fields) = self.fields(item, &path, &["name", "value"], &[]) else {
                    continue;
                };
                let name = self.required_string(&fields, "name", &path, item.pos);
                let value = match fields.get("value") {
                    Some(value) => self.param_value(value, &join(&path, "value")),
                    None => {
                        self.error(
                            item.pos,
                            &path,
                            codes::MISSING_FIELD,
                            "missing required field `value`",
                        );
                        None
                    }
                };
                if let Some(previous) = run.params.iter().find(|p| p.name.value == name.value) {
                    let line = previous.name.pos.line;
                    self.error(
                        name.pos,
                        &join(&path, "name"),
                        codes::DUPLICATE_NAME,
                        format!(
                            "param `{}` is given twice (also on line {line})",
                            name.value
                        ),
                    );
                    continue;
                }
                if let Some(value) = value {
                    run.params.push(RunParam { name, value });
                }
            }
        }
        if let Some(workspaces) = spec.get("workspaces") {
            for (index, item) in self.seq(workspaces, "spec.workspaces").iter().enumerate() {
                if let Some(binding) =
                    self.run_workspace(item, &format!("spec.workspaces[{index}]"))
                {
                    if run
                        .workspaces
                        .iter()
                        .any(|w| w.name.value == binding.name.value)
                    {
                        self.error(
                            binding.name.pos,
                            &format!("spec.workspaces[{index}].name"),
                            codes::DUPLICATE_NAME,
                            format!("workspace `{}` is bound twice", binding.name.value),
                        );
                        continue;
                    }
                    run.workspaces.push(binding);
                }
            }
        }
        if let Some(node) = spec.get("timeouts") {
            run.timeouts_pos = node.pos;
        }
        if let Some(node) = spec.get("timeouts")
            && let Some(fields) = self.fields(
                node,
                "spec.timeouts",
                &["pipeline", "tasks", "finally"],
                &[],
            )
        {
            for (key, slot) in [
                ("pipeline", &mut run.timeouts.pipeline),
                ("tasks", &mut run.timeouts.tasks),
                ("finally", &mut run.timeouts.finally),
            ] {
                if let Some(value) = fields.get(key) {
                    *slot = self.duration(value, &join("spec.timeouts", key), "timeout");
                }
            }
        }
        if let Some(node) = spec.get("timeout") {
            if spec.get("timeouts").is_some() {
                self.error(
                    node.pos,
                    "spec.timeout",
                    codes::INVALID_VALUE,
                    "`timeout` and `timeouts` cannot both be set",
                )
                .hint = Some("keep `timeouts.pipeline`".into());
            } else {
                run.timeouts.pipeline = self.duration(node, "spec.timeout", "timeout");
            }
        }
        if let Some(specs) = spec.get("taskRunSpecs") {
            for (index, item) in self.seq(specs, "spec.taskRunSpecs").iter().enumerate() {
                let path = format!("spec.taskRunSpecs[{index}]");
                let Some(fields) = self.fields(
                    item,
                    &path,
                    &["pipelineTaskName", "timeout"],
                    &[
                        "serviceAccountName",
                        "taskServiceAccountName",
                        "podTemplate",
                        "taskPodTemplate",
                        "stepSpecs",
                        "sidecarSpecs",
                        "stepOverrides",
                        "sidecarOverrides",
                        "metadata",
                        "computeResources",
                    ],
                ) else {
                    continue;
                };
                let task = self.required_string(&fields, "pipelineTaskName", &path, item.pos);
                let timeout = fields.get("timeout").map(|node| {
                    self.duration(node, &join(&path, "timeout"), "timeout")
                        .filter(|d| !d.is_zero())
                });
                run.task_run_specs.push(TaskRunSpec {
                    task,
                    timeout,
                    pos: item.pos,
                });
            }
        }
        let mut statuses = vec![
            ("PipelineRunPending", SpecStatus::Pending),
            ("Cancelled", SpecStatus::Cancelled),
            ("CancelledRunFinally", SpecStatus::CancelledRunFinally),
            ("StoppedRunFinally", SpecStatus::StoppedRunFinally),
        ];
        if api_version == ApiVersion::TektonV1Beta1 {
            statuses.push(("PipelineRunCancelled", SpecStatus::Cancelled));
        }
        run.status = self.keyword(&spec, "status", "spec", &statuses);
        Some((run, pipeline))
    }

    /// `metadata.name` and `generateName` must make a DNS-1123 subdomain run name.
    fn run_name(&mut self, run: &PipelineRun) {
        if let Some(name) = &run.name
            && !crate::validate::is_dns1123_subdomain(&name.value)
        {
            self.error(
                name.pos,
                "metadata.name",
                codes::INVALID_NAME,
                format!(
                    "`{}` is not a valid run name: lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit",
                    name.value
                ),
            );
        }
        if let Some(prefix) = &run.generate_name
            && !crate::validate::is_dns1123_subdomain(&format!("{}x", prefix.value))
        {
            self.error(
                prefix.pos,
                "metadata.generateName",
                codes::INVALID_NAME,
                format!(
                    "`{}` cannot start a run name: lowercase letters, digits, `-` and `.`, starting with a letter or digit",
                    prefix.value
                ),
            );
        }
    }

    /// One workspace binding: a name and exactly one source.
    fn run_workspace(&mut self, node: &Node, path: &str) -> Option<RunWorkspace> {
        let mut known = vec!["name", "subPath"];
        known.extend(WORKSPACE_SOURCES);
        let fields = self.fields(node, path, &known, &["projected", "csi"])?;
        let name = self.required_string(&fields, "name", path, node.pos);
        let sub_path = fields
            .get("subPath")
            .and_then(|value| self.string(value, &join(path, "subPath")));
        let given: Vec<&str> = WORKSPACE_SOURCES
            .iter()
            .copied()
            .filter(|source| fields.get(source).is_some())
            .collect();
        let unsupported_given = matches!(&node.kind, NodeKind::Map(entries)
            if entries.iter().any(|(key, _)| matches!(key.as_scalar(), Some("projected" | "csi"))));
        let source = match given.as_slice() {
            [] => {
                if !unsupported_given {
                    self.error(
                        node.pos,
                        path,
                        codes::MISSING_FIELD,
                        "a workspace binding needs a source: `emptyDir`, `volumeClaimTemplate`, `persistentVolumeClaim`, `configMap` or `secret`",
                    );
                }
                return None;
            }
            [one] => *one,
            [_, second, ..] => {
                let pos = fields.key_pos(second).unwrap_or(node.pos);
                self.error(
                    pos,
                    &join(path, second),
                    codes::INVALID_VALUE,
                    format!(
                        "a workspace binding has one source; this one has {}",
                        given
                            .iter()
                            .map(|s| format!("`{s}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                );
                return None;
            }
        };
        let value = fields.get(source)?;
        let source_path = join(path, source);
        let source = match source {
            "emptyDir" => {
                if !value.is_null() {
                    self.fields(value, &source_path, &[], &["medium", "sizeLimit"]);
                }
                VolumeSource::EmptyDir
            }
            "volumeClaimTemplate" => {
                // Only a fresh volume's size and class: a fresh directory has neither.
                if !matches!(value.kind, NodeKind::Map(_)) && !value.is_null() {
                    self.fields(value, &source_path, &[], &[]);
                }
                VolumeSource::VolumeClaimTemplate
            }
            "persistentVolumeClaim" => {
                let inner = self.fields(value, &source_path, &["claimName"], &["readOnly"])?;
                VolumeSource::PersistentVolumeClaim(self.required_string(
                    &inner,
                    "claimName",
                    &source_path,
                    value.pos,
                ))
            }
            "configMap" => {
                let inner = self.fields(
                    value,
                    &source_path,
                    &["name"],
                    &["items", "defaultMode", "optional"],
                )?;
                VolumeSource::ConfigMap(self.required_string(
                    &inner,
                    "name",
                    &source_path,
                    value.pos,
                ))
            }
            _ => {
                let inner = self.fields(
                    value,
                    &source_path,
                    &["secretName"],
                    &["items", "defaultMode", "optional"],
                )?;
                VolumeSource::Secret(self.required_string(
                    &inner,
                    "secretName",
                    &source_path,
                    value.pos,
                ))
            }
        };
        Some(RunWorkspace {
            name,
            source,
            sub_path,
            pos: node.pos,
        })
    }
}
