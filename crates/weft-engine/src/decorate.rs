//! Form decorators: sandboxed code that shapes a run's params and secrets when it is
//! submitted, before the run exists (modelled on Backstage Scaffolder's form decorators).
//!
//! A pipeline lists them in `spec.decorators: [{id, input, secrets}]`. On every submission
//! ([`decorate_submission`]) they run in order, each in a fresh sandbox under the limits
//! the grant builder gives decorators ([`crate::grants::decorator_limits`]: a few seconds
//! by default, so a decorator that never returns is stopped with a reason naming the
//! limit):
//!
//! 1. `id` must name a form decorator plugin ([`check_decorators`], also part of
//!    [`crate::prepare`], so `weft validate` reports it with file:line:column);
//! 2. its `input` (`{}` when absent) must match the JSON Schema the decorator declares;
//! 3. it gets the params so far (the first decorator: the pipeline's defaults overlaid
//!    with the submitted params) and returns the new params plus run-scoped secrets, or
//!    refuses the submission with a message;
//! 4. every param it changed must be declared by the pipeline with the right type (and be
//!    one of its `enum` values); every secret it set must have a valid, new name (a
//!    decorator never replaces an operator secret, nor one an earlier decorator set) and a
//!    value long enough to be masked.
//!
//! Any failure stops the submission with a [`DecorateError`] naming the decorator
//! (`spec.decorators[i]`, its id, and where it is written); no run is created. After the
//! decorators, the caller validates the final params like any submission
//! ([`crate::prepare`]).
//!
//! # Grants
//!
//! A decorator gets only what the grant builder ([`crate::grants`]) gives it:
//! - **secrets**: the names in its entry's `secrets:` list and those granted to it by
//!   name (`--grant decorator:ID=SECRET`), resolved in the operator's secret store, then
//!   in the secrets earlier decorators set;
//! - **HTTP**: the operator's global `--allow-http RULE` rules (which every task and
//!   reporter gets too) and `--allow-http decorator:ID=RULE` for this decorator only;
//!   per-task rules never apply. Without any rule, a decorator importing `wasi:http` is
//!   not even instantiated.
//!
//! No workspaces, no checkpoints.
//!
//! # Run-scoped secrets
//!
//! Secrets a decorator sets ([`Decorated::run_secrets`]) belong to that run only: the
//! caller adds them to the run's secret store, so they are masked like any secret in
//! every log line, and reach a task only through that task's `secrets:` list or
//! `--grant TASK=SECRET`. They are not kept in the run store: a run recovered by another
//! engine does not have them.
//!
//! # What is recorded
//!
//! [`Decorated::changes`] lists, per decorator, the names of the params it changed (set,
//! changed or removed) and of the secrets it set, never values. [`record_decorations`]
//! journals them with the run as a `decorated` event; [`recorded_decorations`] reads them
//! back (`weft runs show`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_core::contract::{ParamValue, TaskEnding};
use weft_core::diag::did_you_mean;
use weft_core::model::{Decorator, Pipeline};
use weft_core::{Diagnostic, Pos};
use weft_runtime::{Limits, MemorySink, PluginKind, TaskReport, TaskRequest};
use weft_store::{Lease, NewEvent, RunStore, StoreError, Timestamp, WriteOp};

use crate::grants::{Allowance, Grantee, RunGrants};
use crate::mask::RunMasker;
use crate::registry::{PluginError, PluginRegistry, ResolvedPlugin};
use crate::secrets::{SecretStore, split_name};

/// Stable diagnostic codes of decorator problems. Tools may match on these strings.
pub mod codes {
    /// `spec.decorators[].id` names no known plugin.
    pub const UNKNOWN_DECORATOR: &str = "unknown-decorator";
    /// `spec.decorators[].id` names a plugin that is not a usable form decorator.
    pub const NOT_A_DECORATOR: &str = "not-a-decorator";
    /// A decorator's `input` does not match its JSON Schema.
    pub const DECORATOR_INPUT: &str = "decorator-input";
    /// A decorator refused the submission.
    pub const DECORATOR_REFUSED: &str = "decorator-refused";
    /// A decorator was stopped by a limit, trapped, or was denied a capability.
    pub const DECORATOR_FAILED: &str = "decorator-failed";
    /// A decorator set a param the pipeline does not accept.
    pub const DECORATOR_PARAMS: &str = "decorator-params";
    /// A decorator set a secret with a bad name or value, or one that already exists.
    pub const DECORATOR_SECRET: &str = "decorator-secret";
}

/// The kind of the run-store event that records what the decorators changed.
pub const DECORATED_EVENT: &str = "decorated";

/// What one decorator changed: names only, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecoratorChange {
    /// The decorator's id.
    pub decorator: String,
    /// Its index in `spec.decorators`.
    pub index: usize,
    /// The params it set, changed or removed, sorted.
    pub params: Vec<String>,
    /// The run-scoped secrets it set, as it named them, sorted.
    pub secrets: Vec<String>,
}

/// One log line a decorator wrote, already masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoratorLog {
    /// The decorator's id.
    pub decorator: String,
    /// Its level (`info`, `warn`, ...).
    pub level: &'static str,
    /// The text, masked.
    pub text: String,
}

/// A submission after its decorators.
#[derive(Debug, Clone, Default)]
pub struct Decorated {
    /// The final params.
    pub params: BTreeMap<String, ParamValue>,
    /// The run-scoped secrets the decorators set (add them to the run's secret store).
    pub run_secrets: SecretStore,
    /// What each decorator changed, in order.
    pub changes: Vec<DecoratorChange>,
    /// What the decorators logged, masked.
    pub log: Vec<DecoratorLog>,
}

/// Why a submission was stopped by a decorator. No run was created.
#[derive(Debug, Clone)]
pub struct DecorateError {
    /// What went wrong, with file, line and column (the entry, or its `input`).
    pub diagnostic: Diagnostic,
    /// What the decorator logged before it failed, masked.
    pub log: Vec<DecoratorLog>,
}

impl std::fmt::Display for DecorateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.diagnostic.fmt(f)
    }
}

impl std::error::Error for DecorateError {}

/// A decorator resolved and checked against its entry.
struct Checked {
    resolved: ResolvedPlugin,
    input: serde_json::Value,
}

fn entry_error(
    file: &str,
    pos: Pos,
    field: String,
    code: &'static str,
    message: String,
) -> DecorateError {
    DecorateError {
        diagnostic: Diagnostic::new(file, pos, field, code, message),
        log: Vec::new(),
    }
}

/// Resolves decorator `decorator` and checks its input against its schema.
async fn check_one(
    registry: &PluginRegistry,
    file: &str,
    decorator: &Decorator,
) -> Result<Checked, DecorateError> {
    let id = &decorator.id.value;
    let at_id = |code: &'static str, message: String| {
        entry_error(
            file,
            decorator.id.pos,
            format!("{}.id", decorator.path()),
            code,
            message,
        )
    };
    let resolved = match registry.resolve(id).await {
        Ok(resolved) => resolved,
        Err(PluginError::NotFound(_)) => {
            let names = registry.names();
            let mut err = at_id(
                codes::UNKNOWN_DECORATOR,
                format!("no form decorator named `{id}`"),
            );
            err.diagnostic = err.diagnostic.with_hint(
                did_you_mean(id, names.iter().map(String::as_str)).unwrap_or_else(|| {
                    "point --plugins at a directory holding the decorator".to_string()
                }),
            );
            return Err(err);
        }
        Err(other) => {
            return Err(at_id(
                codes::NOT_A_DECORATOR,
                format!("form decorator `{id}` is unusable: {other}"),
            ));
        }
    };
    if resolved.plugin.kind() != PluginKind::FormDecorator {
        return Err(at_id(
            codes::NOT_A_DECORATOR,
            format!(
                "plugin `{id}` is a {}, not a form decorator",
                resolved.plugin.kind().as_str()
            ),
        ));
    }
    let input = match &decorator.input {
        serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
        other => other.clone(),
    };
    let schema_text = resolved.input_schema.as_deref().unwrap_or_default().trim();
    if !schema_text.is_empty() {
        let broken = |detail: String| {
            at_id(
                codes::NOT_A_DECORATOR,
                format!("form decorator `{id}` declares an unusable input schema: {detail}"),
            )
        };
        let schema: serde_json::Value =
            serde_json::from_str(schema_text).map_err(|e| broken(e.to_string()))?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| broken(e.to_string()))?;
        let problems: Vec<(String, String)> = validator
            .iter_errors(&input)
            .take(5)
            .map(|e| (e.instance_path().as_str().to_string(), e.to_string()))
            .collect();
        if let Some((pointer, _)) = problems.first() {
            let listed: Vec<String> = problems
                .iter()
                .map(|(pointer, message)| {
                    let at = if pointer.is_empty() { "/" } else { pointer };
                    format!("at `{at}`: {message}")
                })
                .collect();
            let field = format!("{}.input{}", decorator.path(), dotted(pointer));
            let mut err = entry_error(
                file,
                decorator.input_pos,
                field,
                codes::DECORATOR_INPUT,
                format!(
                    "the input of form decorator `{id}` does not match its schema: {}",
                    listed.join("; ")
                ),
            );
            err.diagnostic = err.diagnostic.with_hint(format!(
                "`weft plugin describe {id}` shows the input schema"
            ));
            return Err(err);
        }
    }
    Ok(Checked { resolved, input })
}

/// `/a/0/b` as `.a[0].b` for a field path.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    out
}

/// Checks every `spec.decorators` entry without running anything: the id names a form
/// decorator and the input matches its schema. Used by [`crate::prepare`].
pub async fn check_decorators(registry: &PluginRegistry, pipeline: &Pipeline) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for decorator in &pipeline.decorators {
        if decorator.id.value.is_empty() {
            continue; // reported by the parser
        }
        if let Err(err) = check_one(registry, &pipeline.file, decorator).await {
            diagnostics.push(err.diagnostic);
        }
    }
    diagnostics
}

/// The form state decorators start from: the pipeline's param defaults, overlaid with
/// the submitted `params`.
pub fn form_state(
    pipeline: &Pipeline,
    params: BTreeMap<String, ParamValue>,
) -> BTreeMap<String, ParamValue> {
    let mut state: BTreeMap<String, ParamValue> = pipeline
        .params
        .iter()
        .filter_map(|decl| {
            let default = decl.default.as_ref()?;
            Some((decl.name.value.clone(), default.value.clone()))
        })
        .collect();
    state.extend(params);
    state
}

/// Runs the pipeline's decorators, in order, on a submission with `params` (the first
/// sees [`form_state`]: defaults overlaid with `params`); `operator` is the operator's
/// secret store (what decorators may be granted). Returns the final params, the
/// run-scoped secrets and what changed; the first failure stops everything. A pipeline
/// without decorators gets `params` back unchanged.
pub async fn decorate_submission(
    registry: &PluginRegistry,
    pipeline: &Pipeline,
    params: BTreeMap<String, ParamValue>,
    operator: &SecretStore,
    grants: &RunGrants,
) -> Result<Decorated, DecorateError> {
    let file = pipeline.file.as_str();
    let params = if pipeline.decorators.is_empty() {
        params
    } else {
        form_state(pipeline, params)
    };
    let mut decorated = Decorated {
        params,
        ..Decorated::default()
    };
    // Earlier decorators' secrets resolve after the operator's.
    let mut grants = grants.clone();
    for decorator in &pipeline.decorators {
        let checked = check_one(registry, file, decorator).await?;
        let id = decorator.id.value.as_str();
        let Allowance {
            grants: granted,
            limits,
        } = grants.grant(Grantee::Decorator { decorator });
        let log = Arc::new(MemorySink::default());
        let request = TaskRequest {
            grants: granted,
            limits: limits.clone(),
            log: log.clone(),
            ..TaskRequest::new(format!("decorator:{id}"))
        };
        let input_text = checked.input.to_string();
        let result = checked
            .resolved
            .plugin
            .decorate(request, &decorated.params, &input_text)
            .await;
        // Mask with every value the decorator could know, including what it returned.
        let mut values: Vec<String> = operator
            .values()
            .chain(decorated.run_secrets.values())
            .map(|v| v.expose().to_string())
            .collect();
        if let Ok(Ok(returned)) = &result {
            values.extend(returned.secrets.iter().map(|(_, value)| value.clone()));
        }
        let masker = RunMasker::of_texts(values.iter().map(String::as_str));
        let lines: Vec<DecoratorLog> = log
            .lines()
            .into_iter()
            .map(|line| DecoratorLog {
                decorator: id.to_string(),
                level: line.level.as_str(),
                text: masker.text(&line.text).into_owned(),
            })
            .collect();
        let at_entry = |code: &'static str, message: String| {
            let mut err = entry_error(file, decorator.pos, decorator.path(), code, message);
            err.log = lines.clone();
            err
        };
        let mut returned = match result {
            Ok(Ok(returned)) => returned,
            Ok(Err(message)) => {
                return Err(at_entry(
                    codes::DECORATOR_REFUSED,
                    format!(
                        "form decorator `{id}` refused the submission: {}",
                        masker.text(&message)
                    ),
                ));
            }
            Err(report) => {
                return Err(at_entry(
                    codes::DECORATOR_FAILED,
                    format!(
                        "form decorator `{id}` failed: {}",
                        masker.text(&failure_text(&report, &limits))
                    ),
                ));
            }
        };
        // What a decorator hands back is masked like everything a plugin returns: a
        // param holding a secret value becomes `***` (secrets travel as secrets only).
        for value in returned.params.values_mut() {
            *value = masker.param(value);
        }
        let changed = changed_params(&decorated.params, &returned.params);
        if let Err(message) = check_params(pipeline, &changed, &returned.params) {
            return Err(at_entry(
                codes::DECORATOR_PARAMS,
                format!("form decorator `{id}` {message}"),
            ));
        }
        let mut set = BTreeSet::new();
        for (full, value) in returned.secrets {
            if let Err(message) = add_secret(operator, &mut decorated.run_secrets, &full, value) {
                return Err(at_entry(
                    codes::DECORATOR_SECRET,
                    format!("form decorator `{id}` {message}"),
                ));
            }
            set.insert(full);
        }
        for (name, value) in decorated.run_secrets.flatten() {
            grants.secrets.entry(name).or_insert(value);
        }
        decorated.params = returned.params;
        decorated.log.extend(lines);
        decorated.changes.push(DecoratorChange {
            decorator: id.to_string(),
            index: decorator.index,
            params: changed.into_iter().collect(),
            secrets: set.into_iter().collect(),
        });
    }
    Ok(decorated)
}

/// Names of params set, changed or removed between `before` and `after`.
fn changed_params(
    before: &BTreeMap<String, ParamValue>,
    after: &BTreeMap<String, ParamValue>,
) -> BTreeSet<String> {
    let mut changed: BTreeSet<String> = after
        .iter()
        .filter(|(name, value)| before.get(*name) != Some(*value))
        .map(|(name, _)| name.clone())
        .collect();
    changed.extend(
        before
            .keys()
            .filter(|name| !after.contains_key(*name))
            .cloned(),
    );
    changed
}

/// Checks the params a decorator set against the pipeline's declarations.
fn check_params(
    pipeline: &Pipeline,
    changed: &BTreeSet<String>,
    after: &BTreeMap<String, ParamValue>,
) -> Result<(), String> {
    for name in changed {
        let Some(value) = after.get(name) else {
            continue; // removed: the default applies, or validation reports it missing
        };
        let Some(decl) = pipeline.params.iter().find(|p| &p.name.value == name) else {
            let declared: Vec<&str> = pipeline
                .params
                .iter()
                .map(|p| p.name.value.as_str())
                .collect();
            let hint = did_you_mean(name, declared.iter().copied())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            return Err(format!(
                "set param `{name}`, which the pipeline does not declare{hint}"
            ));
        };
        if value.param_type() != decl.param_type {
            return Err(format!(
                "set param `{name}` to a value of type {}, but the pipeline declares it as {}",
                value.param_type(),
                decl.param_type
            ));
        }
        if let (false, Some(text)) = (decl.allowed.is_empty(), value.as_str())
            && !decl.allowed.iter().any(|allowed| allowed == text)
        {
            return Err(format!(
                "set param `{name}` to `{text}`, which is not one of its allowed values ({})",
                decl.allowed.join(", ")
            ));
        }
    }
    Ok(())
}

/// Whether `full` is a usable secret name: `NAME` or `NAME.KEY` of letters, digits,
/// `-`, `_` and `.`, starting with a letter or digit, at most 253 characters.
fn valid_secret_name(full: &str) -> bool {
    let mut chars = full.chars();
    full.len() <= 253
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && full
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !full.ends_with('.')
        && !full.contains("..")
}

/// Adds one run-scoped secret, refusing bad names, short values and any name the operator
/// or an earlier decorator already uses. Messages never contain the value.
fn add_secret(
    operator: &SecretStore,
    run_secrets: &mut SecretStore,
    full: &str,
    value: String,
) -> Result<(), String> {
    if !valid_secret_name(full) {
        return Err(format!(
            "set a secret named {full:?}; secret names are letters, digits, `-`, `_` and `.`"
        ));
    }
    let (name, key) = split_name(full);
    if operator.keys(name).is_some() {
        return Err(format!(
            "set secret `{full}`, but the operator already has a secret `{name}`; a decorator never replaces an operator secret (give it another name)"
        ));
    }
    if run_secrets
        .keys(name)
        .is_some_and(|keys| keys.contains_key(key))
    {
        return Err(format!(
            "set secret `{full}`, which an earlier decorator (or this one) already set"
        ));
    }
    run_secrets.insert(name, key, value).map_err(|e| {
        format!(
            "set a secret that cannot be masked: {}",
            e.trim_end_matches("; ignored")
        )
    })
}

/// How a decorator invocation failed, naming the limit or fault.
fn failure_text(report: &TaskReport, limits: &Limits) -> String {
    match &report.ending {
        TaskEnding::Errored { reason, message } => match reason.as_str() {
            "TimedOut" => format!(
                "TimedOut: it ran longer than the decorator timeout of {}",
                human(limits.wall_clock.unwrap_or(limits.cpu_budget))
            ),
            "CpuBudgetExceeded" => format!(
                "CpuBudgetExceeded: it used its CPU budget of {}",
                human(limits.cpu_budget)
            ),
            _ => format!("{reason}: {message}"),
        },
        other => format!("{other:?}"),
    }
}

fn human(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// Journals what the decorators changed with the run (a `decorated` event; names only).
pub fn record_decorations(
    store: &dyn RunStore,
    lease: &Lease,
    changes: &[DecoratorChange],
) -> Result<(), StoreError> {
    let data_json = serde_json::to_string(&serde_json::json!({ "decorators": changes }))
        .map_err(|e| StoreError::Backend(format!("cannot encode decorations: {e}")))?;
    store
        .write(WriteOp::Event {
            lease: lease.clone(),
            event: NewEvent {
                at: Timestamp::now(),
                kind: DECORATED_EVENT.to_string(),
                task: None,
                attempt: None,
                data_json,
            },
        })
        .map(drop)
}

/// What the decorators of run `run` changed, as journaled; `None` when nothing was
/// recorded (the pipeline has no decorators, or the run predates them).
pub fn recorded_decorations(
    store: &dyn RunStore,
    run: &str,
) -> Result<Option<Vec<DecoratorChange>>, StoreError> {
    const PAGE: usize = 500;
    let mut after = 0;
    loop {
        let events = store.events(run, after, PAGE)?;
        for record in &events {
            if record.event.kind == DECORATED_EVENT {
                #[derive(Deserialize)]
                struct Data {
                    decorators: Vec<DecoratorChange>,
                }
                return Ok(serde_json::from_str::<Data>(&record.event.data_json)
                    .ok()
                    .map(|data| data.decorators));
            }
        }
        match events.last() {
            Some(last) if events.len() == PAGE => after = last.seq,
            _ => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(yaml: &str) -> Pipeline {
        match weft_core::parse_pipeline(yaml, "p.yaml") {
            Ok(p) => p,
            Err(d) => panic!("{d:?}"),
        }
    }

    const YAML: &str = r#"
apiVersion: weft.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  params:
    - {name: branch, default: main}
    - {name: mode, enum: [fast, slow], default: fast}
    - {name: files, type: array, default: []}
  decorators:
    - id: require-params
      secrets: [cred]
      input: {params: {branch: [main]}}
    - {id: derive-params}
  tasks:
    - {name: t, taskRef: {name: echo}, params: [{name: message, value: x}]}
"#;

    fn s(v: &str) -> ParamValue {
        ParamValue::Str(v.to_string())
    }

    #[test]
    fn parses_decorator_entries_with_positions() {
        let p = pipeline(YAML);
        assert_eq!(p.decorators.len(), 2);
        let first = &p.decorators[0];
        assert_eq!(first.id.value, "require-params");
        assert_eq!(first.path(), "spec.decorators[0]");
        assert_eq!(first.secrets[0].value, "cred");
        assert_eq!(first.pos.line, 11);
        assert_eq!(first.input_pos.line, 13);
        assert_eq!(p.decorators[1].input, serde_json::Value::Null);
        assert_eq!(p.decorators[1].index, 1);
    }

    #[test]
    fn the_form_state_starts_from_the_defaults() {
        let p = pipeline(YAML);
        let state = form_state(&p, BTreeMap::from([("branch".into(), s("dev"))]));
        assert_eq!(state.get("branch"), Some(&s("dev")));
        assert_eq!(state.get("mode"), Some(&s("fast")));
        assert_eq!(state.get("files"), Some(&ParamValue::Array(Vec::new())));
    }

    #[test]
    fn changed_params_lists_set_changed_and_removed_names() {
        let before = BTreeMap::from([("a".into(), s("1")), ("b".into(), s("2"))]);
        let after = BTreeMap::from([("a".into(), s("1")), ("c".into(), s("3"))]);
        let changed: Vec<String> = changed_params(&before, &after).into_iter().collect();
        assert_eq!(changed, ["b", "c"]);
        assert!(changed_params(&before, &before).is_empty());
    }

    #[test]
    fn params_are_checked_against_the_declarations() {
        let p = pipeline(YAML);
        let check = |name: &str, value: ParamValue| {
            let after = BTreeMap::from([(name.to_string(), value)]);
            check_params(&p, &BTreeSet::from([name.to_string()]), &after)
        };
        assert!(check("branch", s("dev")).is_ok());
        assert!(check("mode", s("slow")).is_ok());
        assert!(check("files", ParamValue::Array(vec!["a".into()])).is_ok());
        let unknown = check("brnach", s("x")).err().unwrap_or_default();
        assert!(unknown.contains("does not declare"), "{unknown}");
        assert!(unknown.contains("did you mean `branch`"), "{unknown}");
        let typed = check("files", s("x")).err().unwrap_or_default();
        assert!(typed.contains("type string"), "{typed}");
        let allowed = check("mode", s("warp")).err().unwrap_or_default();
        assert!(allowed.contains("fast, slow"), "{allowed}");
        // A removed param is fine here (its default applies).
        assert!(check_params(&p, &BTreeSet::from(["mode".to_string()]), &BTreeMap::new()).is_ok());
    }

    #[test]
    fn run_secrets_never_replace_existing_ones() {
        let mut operator = SecretStore::new();
        assert!(
            operator
                .insert("ci", "token", "operator-value-1".into())
                .is_ok()
        );
        let mut run = SecretStore::new();
        assert!(add_secret(&operator, &mut run, "deploy-token", "run-value-123".into()).is_ok());
        assert_eq!(
            run.resolve("deploy-token").map(|v| v.expose().to_string()),
            Some("run-value-123".to_string())
        );
        let clash = add_secret(&operator, &mut run, "ci.other", "run-value-456".into());
        assert!(matches!(&clash, Err(m) if m.contains("operator already has")));
        let again = add_secret(&operator, &mut run, "deploy-token", "run-value-789".into());
        assert!(matches!(&again, Err(m) if m.contains("already set")));
        let short = add_secret(&operator, &mut run, "short", "abc".into());
        assert!(
            matches!(&short, Err(m) if m.contains("at least 8 characters") && !m.contains("abc"))
        );
        for bad in ["", ".x", "a..b", "a/b", "a.", "sp ace"] {
            assert!(
                add_secret(&operator, &mut run, bad, "long-enough-value".into()).is_err(),
                "{bad:?}"
            );
        }
        assert!(add_secret(&operator, &mut run, "multi.a", "long-enough-1".into()).is_ok());
        assert!(add_secret(&operator, &mut run, "multi.b", "long-enough-2".into()).is_ok());
    }

    #[test]
    fn json_pointers_become_field_paths() {
        assert_eq!(dotted(""), "");
        assert_eq!(dotted("/params/0/a~1b"), ".params[0].a/b");
    }

    #[test]
    fn failures_name_the_limit() {
        let limits = crate::grants::decorator_limits(Duration::from_millis(1500));
        let report = |reason: &str| TaskReport {
            ending: TaskEnding::Errored {
                reason: reason.into(),
                message: "m".into(),
            },
            results: BTreeMap::new(),
        };
        assert_eq!(
            failure_text(&report("TimedOut"), &limits),
            "TimedOut: it ran longer than the decorator timeout of 1500ms"
        );
        assert!(failure_text(&report("CpuBudgetExceeded"), &limits).starts_with("CpuBudget"));
        assert_eq!(
            failure_text(&report("CapabilityDenied"), &limits),
            "CapabilityDenied: m"
        );
    }
}
