//! [`PipelineSource`]: the files a run runs, as submitted (the main file, the files a
//! `PipelineRun` references, the plugin pins). Plain data with no engine dependency, so
//! that both preparing a plan and the stored run spec can name it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A pipeline as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineSource {
    /// The YAML text.
    pub source: String,
    /// Its file name, for diagnostics.
    pub file: String,
    /// Other files the run uses: the one holding the `Pipeline` a `PipelineRun`'s
    /// `pipelineRef` names (`weft run --pipelines DIR`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referenced: Vec<ReferencedFile>,
    /// Plugin names pinned to digest-pinned registry references (`weft.lock`, or a
    /// submission's `plugins`): name -> `oci://HOST/NAME@sha256:...`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugins: BTreeMap<String, String>,
    /// The operator's cap on one task's matrix combinations the run was accepted under
    /// (`--max-matrix-combinations`); `None`: weft's default. Kept with the run so a
    /// server taking it over plans it as it was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_matrix_combinations: Option<usize>,
}

/// A file a run uses besides its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferencedFile {
    /// Its name, for diagnostics.
    pub file: String,
    /// The YAML text.
    pub source: String,
}

impl PipelineSource {
    /// A single file.
    pub fn new(source: impl Into<String>, file: impl Into<String>) -> Self {
        PipelineSource {
            source: source.into(),
            file: file.into(),
            referenced: Vec::new(),
            plugins: BTreeMap::new(),
            max_matrix_combinations: None,
        }
    }

    /// What the operator allows this run.
    pub fn limits(&self) -> weft_core::validate::Limits {
        let mut limits = weft_core::validate::Limits::default();
        if let Some(max) = self.max_matrix_combinations {
            limits.max_matrix_combinations = max;
        }
        limits
    }

    /// The pins, checked (each a digest-pinned `oci://` reference).
    pub fn lock(&self) -> Result<weft_core::plugin_ref::PluginLock, String> {
        weft_core::plugin_ref::lock_from_texts(&self.plugins)
    }

    /// Parses the run's files: the pipeline it runs, its `PipelineRun`, every problem.
    pub fn parse(&self) -> weft_core::RunFiles {
        self.parse_with(&self.source)
    }

    /// As [`PipelineSource::parse`], with the main file's text as the store kept it.
    pub fn parse_with(&self, source: &str) -> weft_core::RunFiles {
        let referenced: Vec<weft_core::SourceFile<'_>> = self
            .referenced
            .iter()
            .map(|file| weft_core::SourceFile {
                file: &file.file,
                text: &file.source,
            })
            .collect();
        weft_core::parse_run(
            weft_core::SourceFile {
                file: &self.file,
                text: source,
            },
            &referenced,
        )
    }

    /// The pipeline the run runs, or its structural problems.
    pub fn pipeline(&self) -> Result<weft_core::Pipeline, Vec<weft_core::Diagnostic>> {
        let parsed = self.parse();
        match parsed.pipeline {
            Some(pipeline) if parsed.diagnostics.is_empty() => Ok(pipeline),
            _ => Err(parsed.diagnostics),
        }
    }
}
