//! Tekton's remote resolution on a reference: `resolver` and `params` on a pipeline task's
//! `taskRef`, a `PipelineRun`'s `pipelineRef` or a step's `ref` (and v1beta1's `bundle`).
//!
//! weft fetches nothing while it reads a file, so only the resolvers that name something
//! weft already has are read:
//!
//! - `hub` and `cluster`: the `name` param is looked up exactly as the reference's own
//!   `name` field would be (a `taskRef`: a `kind: Task` document, then a plugin; a
//!   `pipelineRef`: a Pipeline of the file, then of `--pipelines DIR`; a step's `ref`: a
//!   plugin). A missing or blank `name` is an error.
//! - `kind` must be what the place names: `task` in a `taskRef`, `pipeline` in a
//!   `pipelineRef`, `stepaction` in a step's `ref`. Absent, it is `task` (both resolvers'
//!   shipped `default-kind`), so a `pipelineRef` or a step's `ref` says its kind, as it
//!   must on Tekton.
//! - Accepted and ignored, because they only choose among copies weft has one of: the
//!   hub's `catalog` and `type` (weft has one registry: its plugins and Task documents),
//!   `version` (a plugin's version is the one installed, or the digest `weft.lock` pins),
//!   the cluster's `namespace` (a file and its `--pipelines` directories are one namespace)
//!   and `cache` (weft reads the files once, at submission). `type` and `cache` must still
//!   be one of Tekton's values; unlike Tekton's hub, `version` is not required. (The same
//!   choices are in the README and `SEMANTICS-NOTES.md`.)
//! - Refused: the hub's `url` (weft queries no hub), any other param, a `name` field beside
//!   `resolver` (Tekton's concise `name: <url>` form), `params` without `resolver`.
//! - `bundles`, `git`, `http` and the `bundle` field: refused, naming the field and saying
//!   how to make the file work without them (a `--pipelines` directory, `weft plugin
//!   push` and an `oci://` name).

use super::{Cx, join};
use crate::diag::{Diagnostic, Pos, Spanned, codes, did_you_mean, shown};
use crate::yaml::{Node, NodeKind};

/// What a reference names, and so the `kind` param it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    /// A pipeline task's `taskRef`: a Task document or a plugin.
    Task,
    /// A `pipelineRef`: a Pipeline document.
    Pipeline,
    /// A step's `ref` (Tekton's StepAction): a plugin.
    StepAction,
}

impl RefKind {
    /// The `kind` param's value for it.
    fn param(self) -> &'static str {
        match self {
            RefKind::Task => "task",
            RefKind::Pipeline => "pipeline",
            RefKind::StepAction => "stepaction",
        }
    }

    /// How the reference is called in messages.
    fn field(self) -> &'static str {
        match self {
            RefKind::Task => "a `taskRef`",
            RefKind::Pipeline => "a `pipelineRef`",
            RefKind::StepAction => "a step's `ref`",
        }
    }

    /// What it names, in messages.
    fn names(self) -> &'static str {
        match self {
            RefKind::Task => "a Task or a plugin",
            RefKind::Pipeline => "a Pipeline",
            RefKind::StepAction => "a plugin",
        }
    }

    /// How to run it from a registry weft pulls plugins from: what replaces a bundle.
    fn pushed(self) -> &'static str {
        match self {
            RefKind::Task => {
                "push the plugin with `weft plugin push` and name it `taskRef.name: oci://REGISTRY/REPO@sha256:...`; a Task's YAML goes in a directory passed with `--pipelines DIR`, named with `taskRef.name` (or the `cluster` resolver)"
            }
            RefKind::Pipeline => self.locally(),
            RefKind::StepAction => {
                "push the plugin with `weft plugin push` and name it `ref.name: oci://REGISTRY/REPO@sha256:...`"
            }
        }
    }

    /// How to run it without fetching: what replaces a repository or a URL.
    fn locally(self) -> &'static str {
        match self {
            RefKind::Task => {
                "pass the directory holding the Task's YAML with `--pipelines DIR` and name the Task with `taskRef.name` (or the `cluster` resolver); a plugin is pushed with `weft plugin push` and named `taskRef.name: oci://REGISTRY/REPO@sha256:...`"
            }
            RefKind::Pipeline => {
                "pass the directory holding the Pipeline's YAML with `--pipelines DIR` and name the Pipeline with `pipelineRef.name` (or the `cluster` resolver)"
            }
            RefKind::StepAction => {
                "push the plugin with `weft plugin push` and name it `ref.name: oci://REGISTRY/REPO@sha256:...`, or name a plugin weft has (`weft plugin list`)"
            }
        }
    }
}

/// Tekton's resolvers, as listed to users.
const RESOLVERS: [&str; 5] = ["hub", "cluster", "bundles", "git", "http"];

/// The kinds Tekton's hub and cluster resolvers fetch.
const KINDS: [&str; 3] = ["task", "pipeline", "stepaction"];

/// The params each resolver weft reads takes (`url` is the hub's, refused on its own).
fn params_of(resolver: &str) -> &'static [&'static str] {
    match resolver {
        "hub" => &["name", "kind", "version", "catalog", "type", "url"],
        _ => &["name", "kind", "namespace", "cache"],
    }
}

/// Reads the remote-resolution fields of the reference mapping `node` at `path` (e.g.
/// `spec.tasks[2].taskRef`) in `file`; its other fields are the caller's to check.
///
/// - `Ok(None)`: it has no `resolver`, `params` or `bundle`: its `name` field applies.
/// - `Ok(Some(name))`: the name to look up, where the `name` param's value is written.
/// - `Err`: every problem, each with the field, line and column (never a guess at a name).
pub(crate) fn resolve_reference(
    file: &str,
    node: &Node,
    path: &str,
    kind: RefKind,
) -> Result<Option<Spanned<String>>, Vec<Diagnostic>> {
    let mut cx = Cx {
        file,
        diagnostics: Vec::new(),
        sugar: Vec::new(),
    };
    let name = cx.resolve(node, path, kind);
    match name {
        _ if !cx.diagnostics.is_empty() => Err(cx.diagnostics),
        Resolved::Local => Ok(None),
        Resolved::Name(name) => Ok(Some(name)),
        Resolved::Refused => Err(cx.diagnostics),
    }
}

/// What [`Cx::resolve`] found.
enum Resolved {
    /// No resolution fields.
    Local,
    /// The `name` param of a resolver weft reads.
    Name(Spanned<String>),
    /// Refused (reported).
    Refused,
}

/// One field of the reference: where its key is and its value.
type Entry<'n> = (Pos, &'n Node);

fn entry<'n>(node: &'n Node, field: &str) -> Option<Entry<'n>> {
    let NodeKind::Map(entries) = &node.kind else {
        return None;
    };
    entries
        .iter()
        .find(|(key, _)| key.as_scalar() == Some(field))
        .map(|(key, value)| (key.pos, value))
}

impl Cx<'_> {
    /// [`resolve_reference`] for the parser: problems go with the file's others. `None`
    /// when the reference has no resolution fields; an empty name when it was refused.
    pub(super) fn resolved_name(
        &mut self,
        node: &Node,
        path: &str,
        kind: RefKind,
    ) -> Option<Spanned<String>> {
        match resolve_reference(self.file, node, path, kind) {
            Ok(found) => found,
            Err(diagnostics) => {
                self.diagnostics.extend(diagnostics);
                Some(Spanned::new(String::new(), node.pos))
            }
        }
    }

    fn resolve(&mut self, node: &Node, path: &str, kind: RefKind) -> Resolved {
        let bundle = entry(node, "bundle");
        let resolver = entry(node, "resolver");
        let params = entry(node, "params");
        if bundle.is_none() && resolver.is_none() && params.is_none() {
            return Resolved::Local;
        }
        if let Some((key, _)) = bundle {
            self.error(
                key,
                &join(path, "bundle"),
                codes::UNSUPPORTED_FIELD,
                "`bundle` names a Tekton bundle: weft does not pull Tekton bundles",
            )
            .hint = Some(kind.pushed().into());
        }
        let Some((resolver_key, resolver)) = resolver else {
            if let Some((key, _)) = params {
                self.error(
                    key,
                    &join(path, "params"),
                    codes::MISSING_FIELD,
                    "`params` without `resolver`: say which resolver reads them",
                )
                .hint = Some(format!(
                    "write `resolver: hub` (or `cluster`) with a `name` param, or drop `params` and name {} with `name`",
                    kind.names()
                ));
            }
            return Resolved::Refused;
        };
        let resolver_path = join(path, "resolver");
        let Some(which) = self.string(resolver, &resolver_path) else {
            return Resolved::Refused;
        };
        match which.value.as_str() {
            "hub" | "cluster" => {}
            fetching @ ("bundles" | "git" | "http") => {
                let (from, how) = match fetching {
                    "bundles" => (
                        "Tekton bundles (OCI images of Tasks and Pipelines)",
                        kind.pushed().to_string(),
                    ),
                    "git" => (
                        "git repositories",
                        format!("clone the repository, then {}", kind.locally()),
                    ),
                    _ => (
                        "URLs",
                        format!("download the file, then {}", kind.locally()),
                    ),
                };
                self.error(
                    which.pos,
                    &resolver_path,
                    codes::UNSUPPORTED_FIELD,
                    format!(
                        "the `{fetching}` resolver is not supported: weft does not fetch {from}"
                    ),
                )
                .hint = Some(how);
                return Resolved::Refused;
            }
            other => {
                let hint = did_you_mean(other, RESOLVERS)
                    .map(|typo| format!("{typo} "))
                    .unwrap_or_default();
                self.error(
                    which.pos,
                    &resolver_path,
                    codes::INVALID_VALUE,
                    format!("`{}` is not a Tekton resolver", shown(other)),
                )
                .hint = Some(format!(
                    "{hint}Tekton's resolvers are {}; weft reads `hub` and `cluster`",
                    RESOLVERS.map(|r| format!("`{r}`")).join(", ")
                ));
                return Resolved::Refused;
            }
        }
        let resolver = which.value.as_str();
        if let Some((key, _)) = entry(node, "name") {
            self.error(
                key,
                &join(path, "name"),
                codes::INVALID_VALUE,
                format!(
                    "{} with `resolver` names what it resolves in `params`, not in `name`",
                    kind.field()
                ),
            )
            .hint = Some(
                "move the name into `params: [{name: name, value: ...}]` (Tekton's concise `name: <url>` form is not supported)"
                    .into(),
            );
        }
        let Some((params_key, params)) = params else {
            self.error(
                resolver_key,
                path,
                codes::MISSING_FIELD,
                format!("the `{resolver}` resolver needs `params` with a `name`"),
            )
            .hint = Some(format!(
                "`params: [{{name: kind, value: {}}}, {{name: name, value: ...}}]`",
                kind.param()
            ));
            return Resolved::Refused;
        };
        let params_path = join(path, "params");
        let mut name = None;
        let mut kind_given = false;
        let mut seen: Vec<Spanned<String>> = Vec::new();
        // A list that did not read, or an entry without a readable name, may be where the
        // `name` param was meant: its own error is the one to fix.
        let mut unreadable = !params.is_null() && !matches!(params.kind, NodeKind::Seq(_));
        for (index, item) in self.seq(params, &params_path).iter().enumerate() {
            let item_path = format!("{params_path}[{index}]");
            let Some(fields) = self.fields(item, &item_path, &["name", "value"], &[]) else {
                unreadable = true;
                continue;
            };
            let param = self.required_string(&fields, "name", &item_path, item.pos);
            let value_path = join(&item_path, "value");
            let value = match fields.get("value") {
                Some(value) => self.string(value, &value_path),
                None => {
                    self.error(
                        item.pos,
                        &item_path,
                        codes::MISSING_FIELD,
                        "missing required field `value`",
                    );
                    None
                }
            };
            if param.value.is_empty() {
                unreadable = true;
                continue;
            }
            if let Some(earlier) = seen.iter().find(|p| p.value == param.value) {
                let line = earlier.pos.line;
                self.error(
                    param.pos,
                    &join(&item_path, "name"),
                    codes::DUPLICATE_NAME,
                    format!(
                        "resolver param `{}` is given twice (also on line {line})",
                        shown(&param.value)
                    ),
                );
                continue;
            }
            seen.push(param.clone());
            let takes = params_of(resolver);
            match param.value.as_str() {
                known if takes.contains(&known) => {}
                other => {
                    let hint = did_you_mean(other, takes.iter().copied())
                        .map(|typo| format!("{typo} "))
                        .unwrap_or_default();
                    self.error(
                        param.pos,
                        &join(&item_path, "name"),
                        codes::UNKNOWN_PARAM,
                        format!(
                            "the `{resolver}` resolver takes no param `{}`",
                            shown(other)
                        ),
                    )
                    .hint = Some(format!(
                        "{hint}it takes {}",
                        takes
                            .iter()
                            .filter(|p| **p != "url")
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    continue;
                }
            }
            let Some(value) = value else {
                continue;
            };
            match param.value.as_str() {
                "name" => {
                    if value.value.trim().is_empty() {
                        self.error(
                            value.pos,
                            &value_path,
                            codes::INVALID_VALUE,
                            format!(
                                "the `name` param is {}: it must name {}",
                                if value.value.is_empty() {
                                    "empty"
                                } else {
                                    "only whitespace"
                                },
                                kind.names()
                            ),
                        );
                    } else {
                        name = Some(value);
                    }
                }
                "kind" => {
                    kind_given = true;
                    self.kind_param(&value, &value_path, kind);
                }
                "url" => {
                    self.error(
                        param.pos,
                        &join(&item_path, "name"),
                        codes::UNSUPPORTED_FIELD,
                        "the hub resolver's `url` is not supported: weft queries no hub",
                    )
                    .hint = Some(format!(
                        "drop `url`: the `name` param names {} weft has; otherwise {}",
                        kind.names(),
                        kind.locally()
                    ));
                }
                "type" => self.one_of(&value, &value_path, "type", &["artifact", "tekton"]),
                "cache" => self.one_of(&value, &value_path, "cache", &["always", "never", "auto"]),
                // `version`, `catalog`, `namespace`: ignored (see the module's doc).
                _ => {}
            }
        }
        if !kind_given && kind != RefKind::Task {
            self.error(
                params_key,
                &params_path,
                codes::MISSING_FIELD,
                format!(
                    "the `{resolver}` resolver's `kind` defaults to `task`, but {} names {}",
                    kind.field(),
                    kind.names()
                ),
            )
            .hint = Some(format!(
                "add `{{name: kind, value: {}}}` to `params`",
                kind.param()
            ));
        }
        match name {
            Some(name) => Resolved::Name(name),
            None => {
                if !unreadable && !seen.iter().any(|p| p.value == "name") {
                    self.error(
                        params_key,
                        &params_path,
                        codes::MISSING_FIELD,
                        format!(
                            "the `{resolver}` resolver needs a `name` param: the name of {} to use",
                            kind.names()
                        ),
                    )
                    .hint = Some("add `{name: name, value: ...}` to `params`".into());
                }
                Resolved::Refused
            }
        }
    }

    /// The `kind` param: one of Tekton's kinds, and the one the place names.
    fn kind_param(&mut self, value: &Spanned<String>, path: &str, kind: RefKind) {
        if !KINDS.contains(&value.value.as_str()) {
            let hint = did_you_mean(&value.value.to_ascii_lowercase(), KINDS)
                .map(|typo| format!("{typo} "))
                .unwrap_or_default();
            self.error(
                value.pos,
                path,
                codes::INVALID_VALUE,
                format!("`{}` is not a kind a resolver fetches", shown(&value.value)),
            )
            .hint = Some(format!(
                "{hint}{} takes `kind: {}`",
                kind.field(),
                kind.param()
            ));
        } else if value.value != kind.param() {
            self.error(
                value.pos,
                path,
                codes::INVALID_VALUE,
                format!(
                    "the `kind` param is `{}`, but {} names {}",
                    value.value,
                    kind.field(),
                    kind.names()
                ),
            )
            .hint = Some(format!("write `{{name: kind, value: {}}}`", kind.param()));
        }
    }

    /// An ignored param that must still be one of Tekton's values.
    fn one_of(&mut self, value: &Spanned<String>, path: &str, param: &str, choices: &[&str]) {
        if !choices.contains(&value.value.as_str()) {
            self.error(
                value.pos,
                path,
                codes::INVALID_VALUE,
                format!("`{}` is not a valid `{param}` param", shown(&value.value)),
            )
            .hint = Some(format!(
                "use one of: {}",
                choices
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves the reference written as `yaml` (a mapping) at `spec.tasks[0].taskRef`.
    fn resolve(yaml: &str, kind: RefKind) -> Result<Option<Spanned<String>>, Vec<Diagnostic>> {
        let node = crate::yaml::parse(yaml)
            .expect("valid YAML")
            .expect("a document");
        resolve_reference("p.yaml", &node, "spec.tasks[0].taskRef", kind)
    }

    #[test]
    fn hub_and_cluster_resolve_to_their_name_param() {
        // (what, yaml, kind, name, where the name is)
        type Case = (
            &'static str,
            &'static str,
            RefKind,
            &'static str,
            (u32, u32),
        );
        let cases: &[Case] = &[
            (
                "hub task with every harmless param",
                "resolver: hub\nparams:\n- {name: catalog, value: tekton-catalog-tasks}\n- {name: type, value: artifact}\n- {name: kind, value: task}\n- {name: name, value: git-clone}\n- {name: version, value: \"0.9\"}\n",
                RefKind::Task,
                "git-clone",
                (6, 23),
            ),
            (
                "hub task, kind defaulted",
                "resolver: hub\nparams: [{name: name, value: echo}]\n",
                RefKind::Task,
                "echo",
                (2, 30),
            ),
            (
                "cluster pipeline",
                "resolver: cluster\nparams:\n  - name: kind\n    value: pipeline\n  - name: name\n    value: build\n  - name: namespace\n    value: ci\n  - name: cache\n    value: never\n",
                RefKind::Pipeline,
                "build",
                (6, 12),
            ),
            (
                "hub stepaction",
                "resolver: hub\nparams: [{name: kind, value: stepaction}, {name: name, value: echo}]\n",
                RefKind::StepAction,
                "echo",
                (2, 63),
            ),
            (
                "an oci name",
                "resolver: cluster\nparams: [{name: name, value: \"oci://r.example/x@sha256:00\"}]\n",
                RefKind::Task,
                "oci://r.example/x@sha256:00",
                (2, 30),
            ),
        ];
        for (what, yaml, kind, name, at) in cases {
            let found = resolve(yaml, *kind).unwrap_or_else(|d| panic!("{what}: {d:#?}"));
            let found = found.unwrap_or_else(|| panic!("{what}: not resolved"));
            assert_eq!(found.value, *name, "{what}");
            assert_eq!((found.pos.line, found.pos.column), *at, "{what}");
        }
    }

    #[test]
    fn a_reference_without_resolution_fields_is_left_to_its_name() {
        assert_eq!(resolve("name: echo\nkind: Task\n", RefKind::Task), Ok(None));
    }

    #[test]
    fn each_problem_names_its_field_line_and_column() {
        // (what, yaml, kind, [(code, path, line, column, fragment)])
        type Expect = (&'static str, &'static str, u32, u32, &'static str);
        let cases: &[(&str, &str, RefKind, &[Expect])] = &[
            (
                "git",
                "resolver: git\nparams: [{name: url, value: x}]\n",
                RefKind::Task,
                &[(
                    "unsupported-field",
                    "spec.tasks[0].taskRef.resolver",
                    1,
                    11,
                    "weft does not fetch git repositories",
                )],
            ),
            (
                "http",
                "resolver: http\n",
                RefKind::Pipeline,
                &[(
                    "unsupported-field",
                    "spec.tasks[0].taskRef.resolver",
                    1,
                    11,
                    "weft does not fetch URLs",
                )],
            ),
            (
                "bundles",
                "resolver: bundles\nparams: []\n",
                RefKind::StepAction,
                &[(
                    "unsupported-field",
                    "spec.tasks[0].taskRef.resolver",
                    1,
                    11,
                    "weft does not fetch Tekton bundles",
                )],
            ),
            (
                "the bundle field",
                "name: echo\nbundle: reg/x:1\n",
                RefKind::Task,
                &[(
                    "unsupported-field",
                    "spec.tasks[0].taskRef.bundle",
                    2,
                    1,
                    "weft does not pull Tekton bundles",
                )],
            ),
            (
                "an unknown resolver",
                "resolver: gti\nparams: []\n",
                RefKind::Task,
                &[(
                    "invalid-value",
                    "spec.tasks[0].taskRef.resolver",
                    1,
                    11,
                    "`gti` is not a Tekton resolver",
                )],
            ),
            (
                "a resolver that is not a string",
                "resolver: [hub]\n",
                RefKind::Task,
                &[(
                    "wrong-type",
                    "spec.tasks[0].taskRef.resolver",
                    1,
                    11,
                    "expected a string",
                )],
            ),
            (
                "params without resolver",
                "params: [{name: name, value: echo}]\n",
                RefKind::Task,
                &[(
                    "missing-field",
                    "spec.tasks[0].taskRef.params",
                    1,
                    1,
                    "`params` without `resolver`",
                )],
            ),
            (
                "no params",
                "resolver: hub\n",
                RefKind::Task,
                &[(
                    "missing-field",
                    "spec.tasks[0].taskRef",
                    1,
                    1,
                    "needs `params` with a `name`",
                )],
            ),
            (
                "no name param",
                "resolver: hub\nparams: [{name: kind, value: task}]\n",
                RefKind::Task,
                &[(
                    "missing-field",
                    "spec.tasks[0].taskRef.params",
                    2,
                    1,
                    "needs a `name` param",
                )],
            ),
            (
                "a blank name param",
                "resolver: cluster\nparams: [{name: name, value: \" \"}]\n",
                RefKind::Task,
                &[(
                    "invalid-value",
                    "spec.tasks[0].taskRef.params[0].value",
                    2,
                    30,
                    "only whitespace",
                )],
            ),
            (
                "a pipeline kind in a taskRef",
                "resolver: hub\nparams:\n  - {name: kind, value: pipeline}\n  - {name: name, value: build}\n",
                RefKind::Task,
                &[(
                    "invalid-value",
                    "spec.tasks[0].taskRef.params[0].value",
                    3,
                    25,
                    "the `kind` param is `pipeline`, but a `taskRef` names a Task or a plugin",
                )],
            ),
            (
                "a kind no resolver fetches",
                "resolver: hub\nparams: [{name: kind, value: Task}, {name: name, value: x}]\n",
                RefKind::Task,
                &[(
                    "invalid-value",
                    "spec.tasks[0].taskRef.params[0].value",
                    2,
                    30,
                    "`Task` is not a kind",
                )],
            ),
            (
                "a pipelineRef whose kind defaults to task",
                "resolver: cluster\nparams: [{name: name, value: build}]\n",
                RefKind::Pipeline,
                &[(
                    "missing-field",
                    "spec.tasks[0].taskRef.params",
                    2,
                    1,
                    "`kind` defaults to `task`, but a `pipelineRef` names a Pipeline",
                )],
            ),
            (
                "an unknown param, and namespace is the cluster's",
                "resolver: hub\nparams:\n  - {name: name, value: x}\n  - {name: namespace, value: ci}\n  - {name: revison, value: main}\n",
                RefKind::Task,
                &[
                    (
                        "unknown-param",
                        "spec.tasks[0].taskRef.params[1].name",
                        4,
                        12,
                        "the `hub` resolver takes no param `namespace`",
                    ),
                    (
                        "unknown-param",
                        "spec.tasks[0].taskRef.params[2].name",
                        5,
                        12,
                        "takes no param `revison`",
                    ),
                ],
            ),
            (
                "the hub's url",
                "resolver: hub\nparams: [{name: name, value: x}, {name: url, value: \"https://hub.example\"}]\n",
                RefKind::Task,
                &[(
                    "unsupported-field",
                    "spec.tasks[0].taskRef.params[1].name",
                    2,
                    41,
                    "weft queries no hub",
                )],
            ),
            (
                "a param twice",
                "resolver: hub\nparams:\n  - {name: name, value: x}\n  - {name: name, value: y}\n",
                RefKind::Task,
                &[(
                    "duplicate-name",
                    "spec.tasks[0].taskRef.params[1].name",
                    4,
                    12,
                    "given twice (also on line 3)",
                )],
            ),
            (
                "a param value that is not a string, a param with no value, an unknown field",
                "resolver: cluster\nparams:\n  - {name: name, value: [a]}\n  - {name: namespace}\n  - {name: kind, value: task, default: x}\n",
                RefKind::Task,
                &[
                    (
                        "wrong-type",
                        "spec.tasks[0].taskRef.params[0].value",
                        3,
                        25,
                        "expected a string",
                    ),
                    (
                        "missing-field",
                        "spec.tasks[0].taskRef.params[1]",
                        4,
                        5,
                        "missing required field `value`",
                    ),
                    (
                        "unknown-field",
                        "spec.tasks[0].taskRef.params[2].default",
                        5,
                        31,
                        "unknown field `default`",
                    ),
                ],
            ),
            (
                "bad type and cache values",
                "resolver: hub\nparams: [{name: name, value: x}, {name: type, value: oci}]\n",
                RefKind::Task,
                &[(
                    "invalid-value",
                    "spec.tasks[0].taskRef.params[1].value",
                    2,
                    54,
                    "`oci` is not a valid `type` param",
                )],
            ),
            (
                "params that are not a list: one error",
                "resolver: hub\nparams: echo\n",
                RefKind::Task,
                &[(
                    "wrong-type",
                    "spec.tasks[0].taskRef.params",
                    2,
                    9,
                    "expected a list",
                )],
            ),
            (
                "an entry without a name: no guess that the name param is missing",
                "resolver: hub\nparams: [{value: echo}]\n",
                RefKind::Task,
                &[(
                    "missing-field",
                    "spec.tasks[0].taskRef.params[0]",
                    2,
                    10,
                    "missing required field `name`",
                )],
            ),
            (
                "an empty params: the name is missing",
                "resolver: cluster\nparams:\n",
                RefKind::Task,
                &[(
                    "missing-field",
                    "spec.tasks[0].taskRef.params",
                    2,
                    1,
                    "needs a `name` param",
                )],
            ),
            (
                "name beside resolver",
                "name: echo\nresolver: hub\nparams: [{name: name, value: echo}]\n",
                RefKind::Task,
                &[(
                    "invalid-value",
                    "spec.tasks[0].taskRef.name",
                    1,
                    1,
                    "names what it resolves in `params`, not in `name`",
                )],
            ),
        ];
        let mut wrong = Vec::new();
        for (what, yaml, kind, expected) in cases {
            let found = match resolve(yaml, *kind) {
                Ok(name) => {
                    wrong.push(format!("{what}: resolved to {name:?}"));
                    continue;
                }
                Err(found) => found,
            };
            let got: Vec<_> = found
                .iter()
                .map(|d| (d.code, d.field_path.as_str(), d.line, d.column))
                .collect();
            let ok = found.len() == expected.len()
                && expected.iter().all(|(code, path, line, column, fragment)| {
                    found.iter().any(|d| {
                        (d.code, d.field_path.as_str(), d.line, d.column)
                            == (*code, *path, *line, *column)
                            && d.message.contains(fragment)
                            && d.file == "p.yaml"
                    })
                });
            if !ok {
                wrong.push(format!(
                    "{what}: {got:?} {:?}",
                    found.iter().map(|d| &d.message).collect::<Vec<_>>()
                ));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn every_refusal_says_how_to_make_it_work() {
        let hint = |yaml: &str, kind: RefKind| -> String {
            let found = resolve(yaml, kind).expect_err("refused");
            found[0].hint.clone().unwrap_or_default()
        };
        let git = hint("resolver: git\n", RefKind::Task);
        assert!(
            git.contains("clone the repository") && git.contains("--pipelines DIR"),
            "{git}"
        );
        let http = hint("resolver: http\n", RefKind::Pipeline);
        assert!(
            http.contains("download the file") && http.contains("pipelineRef.name"),
            "{http}"
        );
        let bundles = hint("resolver: bundles\n", RefKind::StepAction);
        assert!(
            bundles.contains("weft plugin push") && bundles.contains("oci://"),
            "{bundles}"
        );
        let bundle = hint("bundle: x\nname: y\n", RefKind::Task);
        assert!(
            bundle.contains("weft plugin push") && bundle.contains("--pipelines DIR"),
            "{bundle}"
        );
        let unknown = hint("resolver: clustr\n", RefKind::Task);
        assert!(
            unknown.contains("did you mean `cluster`?")
                && ["`hub`", "`cluster`", "`bundles`", "`git`", "`http`"]
                    .iter()
                    .all(|r| unknown.contains(r)),
            "{unknown}"
        );
    }
}
