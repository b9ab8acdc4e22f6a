//! A Tekton `PipelineRun` file as a submission: the `Pipeline` its `pipelineRef` names
//! among `--pipelines DIR` files, its name (`generateName` gets five random characters),
//! params, workspace bindings (host directories for volumes by `--volume NAME=DIR`),
//! timeouts and `spec.status`. Command-line flags win over what the file says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weft_core::pipeline_run::{SpecStatus, VolumeSource};
use weft_core::{Diagnostic, RunFiles, diag::codes};
use weft_engine::runs::{PipelineSource, ReferencedFile, RunSpec, WorkspaceSource};

use crate::Failure;

/// Largest file `--pipelines` reads.
const MAX_FILE_BYTES: u64 = 8 << 20;

/// The `*.yaml` and `*.yml` files directly in each `--pipelines DIR`, in name order.
pub fn library(dirs: &[PathBuf]) -> Result<Vec<ReferencedFile>, Failure> {
    let mut files = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Failure::invalid(format!(
                "--pipelines {}: cannot read it: {e}",
                dir.display()
            ))
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.is_file()
                    && path
                        .extension()
                        .is_some_and(|ext| ext == "yaml" || ext == "yml")
            })
            .collect();
        paths.sort();
        for path in paths {
            if let Some(file) = read(&path) {
                files.push(file);
            }
        }
    }
    Ok(files)
}

/// A library file's text; one that is too large or not UTF-8 is left out (it holds no
/// pipeline weft could run).
fn read(path: &Path) -> Option<ReferencedFile> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    Some(ReferencedFile {
        file: path.display().to_string(),
        source: text,
    })
}

/// The run's files: `source` (named `file`) and, of `library`, those it uses; and what
/// they hold.
pub fn files(
    source: String,
    file: String,
    library: Vec<ReferencedFile>,
) -> (PipelineSource, RunFiles) {
    let mut pipeline = PipelineSource::new(source, file);
    pipeline.referenced = library;
    let parsed = parse_and_trim(&pipeline);
    if parsed.used.iter().copied().eq(0..pipeline.referenced.len()) {
        // Every file is used, in order (or there are none): nothing to drop or renumber.
        return (pipeline, parsed);
    }
    let used: Vec<ReferencedFile> = parsed
        .used
        .iter()
        .filter_map(|&index| pipeline.referenced.get(index).cloned())
        .collect();
    pipeline.referenced = used;
    // Re-parse with only what is kept: the indices in `used` now count those.
    let parsed = parse_and_trim(&pipeline);
    (pipeline, parsed)
}

/// Parses `pipeline` and gives the pages of its freed YAML trees back. The trees (about
/// 600 bytes per task) are read before the model is built, so they sit below it in the
/// heap, and freed they leave whole pages that glibc keeps unless asked.
fn parse_and_trim(pipeline: &PipelineSource) -> RunFiles {
    let parsed = pipeline.parse();
    crate::memory::give_free_pages_back();
    parsed
}

/// `--volume NAME=DIR`: the host directory of a `persistentVolumeClaim` or `configMap`
/// called NAME.
pub fn volumes(flags: &[String]) -> Result<BTreeMap<String, PathBuf>, Failure> {
    let mut volumes = BTreeMap::new();
    for flag in flags {
        let (name, dir) = flag
            .split_once('=')
            .filter(|(name, dir)| !name.is_empty() && !dir.is_empty())
            .ok_or_else(|| Failure::invalid(format!("--volume {flag}: expected NAME=DIR")))?;
        volumes.insert(name.to_string(), PathBuf::from(dir));
    }
    Ok(volumes)
}

/// Five random lower-case letters and digits, as Kubernetes appends to `generateName`.
pub fn name_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..5].to_string()
}

/// Applies the file's `PipelineRun` (if any) to `spec`: its name unless `--name` gave one,
/// its params under the `-p` ones already in `spec`, its workspace bindings unless
/// `--workspace` bound the same workspace, its timeouts unless a flag set them. `None`
/// for `volumes` refuses volumes (a server's submitters bind no host directory).
pub fn apply(
    parsed: &RunFiles,
    spec: &mut RunSpec,
    volumes: Option<&BTreeMap<String, PathBuf>>,
) -> Applied {
    let mut found = Vec::new();
    let mut sub_dirs = Vec::new();
    spec.params = parsed.supplied(&spec.params);
    let Some(run) = &parsed.run else {
        return Applied::default();
    };
    if spec.name.is_none() {
        spec.name = run.run_name(&name_suffix());
    }
    for (index, binding) in run.workspaces.iter().enumerate() {
        if spec.workspaces.contains_key(&binding.name.value) {
            continue;
        }
        let sub_path = |dir: &Path| match &binding.sub_path {
            Some(sub) => dir.join(&sub.value),
            None => dir.to_path_buf(),
        };
        let bound = match &binding.source {
            // A fresh directory: what an unbound workspace gets.
            VolumeSource::EmptyDir | VolumeSource::VolumeClaimTemplate => None,
            VolumeSource::Secret(secret) => Some(WorkspaceSource::Secret(secret.value.clone())),
            source
            @ (VolumeSource::PersistentVolumeClaim(name) | VolumeSource::ConfigMap(name)) => {
                let path = format!("spec.workspaces[{index}].{}", source.field());
                match volumes {
                    Some(volumes) => match volumes.get(&name.value) {
                        Some(dir) => {
                            if binding.sub_path.is_some() {
                                sub_dirs.push(sub_path(dir));
                            }
                            Some(WorkspaceSource::Directory(sub_path(dir)))
                        }
                        None => {
                            found.push(
                                Diagnostic::new(
                                    &run.file,
                                    name.pos,
                                    path,
                                    codes::MISSING_PARAM,
                                    format!(
                                        "workspace `{}` is bound to volume `{}`, and weft has no directory for it",
                                        binding.name.value, name.value
                                    ),
                                )
                                .with_hint(format!(
                                    "give it a host directory: `weft run --volume {}=DIR`",
                                    name.value
                                )),
                            );
                            None
                        }
                    },
                    None => {
                        found.push(
                            Diagnostic::new(
                                &run.file,
                                name.pos,
                                path,
                                codes::UNSUPPORTED_FIELD,
                                format!(
                                    "workspace `{}` is bound to volume `{}`: submissions bind no host directory",
                                    binding.name.value, name.value
                                ),
                            )
                            .with_hint("use `emptyDir: {}` (a fresh directory) or `secret`"),
                        );
                        None
                    }
                }
            }
        };
        if let Some(bound) = bound {
            spec.workspaces.insert(binding.name.value.clone(), bound);
        }
    }
    let no_zero = |d: Option<std::time::Duration>| d.filter(|d| !d.is_zero());
    let timeouts = &mut spec.timeouts;
    if timeouts.pipeline.is_none() {
        timeouts.pipeline = no_zero(run.timeouts.pipeline);
    }
    if timeouts.tasks.is_none() {
        timeouts.tasks = no_zero(run.timeouts.tasks);
    }
    if timeouts.finally.is_none() {
        timeouts.finally = no_zero(run.timeouts.finally);
    }
    // Problems found here are labelled with their document like the parser's.
    parsed.layout.label(&mut found);
    Applied {
        problems: found,
        status: run.status.as_ref().map(|status| status.value),
        sub_dirs,
    }
}

/// What applying a `PipelineRun` found.
#[derive(Debug, Default)]
pub struct Applied {
    /// Bindings weft cannot make (a volume with no directory).
    pub problems: Vec<Diagnostic>,
    /// The status the run is created with (`spec.status`).
    pub status: Option<SpecStatus>,
    /// Directories a `subPath` names in a volume: created before the run, as Kubernetes
    /// creates a missing `subPath`.
    pub sub_dirs: Vec<PathBuf>,
}
