//! A table of malformed pipelines: each must be refused with a diagnostic of the given
//! code, containing the given text, at the exact line and column.

use std::collections::BTreeMap;
use weft_core::contract::{ParamSpec, ParamType, ParamValue, PluginInfo, ResultSpec};
use weft_core::{Diagnostic, load};

/// Lines 1-6 of every fixture; a fixture's own text starts on line 7.
const HEAD: &str =
    "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata:\n  name: demo\nspec:\n  tasks:\n";

struct Case {
    name: &'static str,
    /// Appended to HEAD unless it starts with `apiVersion` (a whole document).
    yaml: &'static str,
    /// `-p` params.
    params: &'static [(&'static str, ParamValue)],
    /// Validate against the test plugin catalog.
    catalog: bool,
    code: &'static str,
    fragment: &'static str,
    at: (u32, u32),
}

const fn case(
    name: &'static str,
    yaml: &'static str,
    code: &'static str,
    fragment: &'static str,
    at: (u32, u32),
) -> Case {
    Case {
        name,
        yaml,
        params: &[],
        catalog: false,
        code,
        fragment,
        at,
    }
}

const fn with_catalog(
    name: &'static str,
    yaml: &'static str,
    code: &'static str,
    fragment: &'static str,
    at: (u32, u32),
) -> Case {
    Case {
        name,
        yaml,
        params: &[],
        catalog: true,
        code,
        fragment,
        at,
    }
}

fn catalog() -> BTreeMap<String, PluginInfo> {
    let plugin = |name: &str, params: Vec<ParamSpec>, results: &[&str], any: bool| PluginInfo {
        name: name.into(),
        version: "1.0.0".into(),
        description: String::new(),
        params,
        results: results
            .iter()
            .map(|r| ResultSpec {
                name: r.to_string(),
                description: String::new(),
            })
            .collect(),
        results_fixed: !results.is_empty(),
        accepts_any_params: any,
        capabilities: Default::default(),
    };
    let spec = |name: &str,
                param_type: ParamType,
                default: Option<ParamValue>,
                allowed: &[&str]| ParamSpec {
        name: name.into(),
        description: String::new(),
        param_type,
        default,
        allowed: allowed.iter().map(|a| a.to_string()).collect(),
    };
    [
        plugin("echo", vec![], &[], true),
        plugin(
            "git-clone",
            vec![
                spec("url", ParamType::String, None, &[]),
                spec(
                    "depth",
                    ParamType::String,
                    Some(ParamValue::Str("1".into())),
                    &["1", "full"],
                ),
                spec(
                    "flags",
                    ParamType::Array,
                    Some(ParamValue::Array(vec![])),
                    &[],
                ),
            ],
            &["commit"],
            false,
        ),
    ]
    .into_iter()
    .map(|p| (p.name.clone(), p))
    .collect()
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        // --- YAML, apiVersion, kind, structure ---
        case(
            "yaml syntax error",
            "apiVersion: weft.dev/v1\nkind: [Pipeline\nmetadata: {name: x}\n",
            "yaml-syntax",
            "invalid YAML",
            (3, 9),
        ),
        case(
            "tab indentation",
            "    - name: a\n\ttaskRef: {name: echo}\n",
            "yaml-syntax",
            "found a tab",
            (8, 1),
        ),
        case(
            "wrong apiVersion",
            "apiVersion: tekton.dev/v2\nkind: Pipeline\nmetadata: {name: x}\nspec: {}\n",
            "api-version",
            "unsupported apiVersion `tekton.dev/v2`",
            (1, 13),
        ),
        case(
            "wrong kind",
            "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: x}\nspec: {}\n",
            "kind",
            "unsupported kind `Task`",
            (2, 7),
        ),
        case(
            "missing metadata.name",
            "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata:\n  labels: {a: b}\nspec: {}\n",
            "missing-field",
            "missing required field `name`",
            (4, 3),
        ),
        case(
            "unknown top-level field",
            "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: x}\nspec: {}\nstatus: {}\n",
            "unknown-field",
            "unknown field `status`",
            (5, 1),
        ),
        case(
            "unknown spec field with hint",
            "    - name: a\n      taskRef: {name: echo}\n  finaly: []\n",
            "unknown-field",
            "unknown field `finaly`",
            (9, 3),
        ),
        case(
            "duplicate key",
            "    - name: a\n      name: b\n      taskRef: {name: echo}\n",
            "duplicate-name",
            "field `name` is given twice",
            (8, 7),
        ),
        case(
            // More keys than are compared in place: the duplicate is still found.
            "duplicate key in a long mapping",
            "    - name: a\n      taskRef: {name: echo}\n      x1: 1\n      x2: 1\n      x3: 1\n      x4: 1\n      x5: 1\n      x6: 1\n      x7: 1\n      x8: 1\n      x9: 1\n      x10: 1\n      x11: 1\n      x12: 1\n      x13: 1\n      x14: 1\n      x15: 1\n      x16: 1\n      name: b\n",
            "duplicate-name",
            "field `name` is given twice",
            (25, 7),
        ),
        case(
            "tasks is not a list",
            "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: x}\nspec:\n  tasks: build\n",
            "wrong-type",
            "expected a list",
            (5, 10),
        ),
        // --- unknown and unsupported task fields ---
        case(
            "typo in task field",
            "    - name: a\n      taskRef: {name: echo}\n      runafter: [b]\n",
            "unknown-field",
            "unknown field `runafter`",
            (9, 7),
        ),
        case(
            "taskSpec with no steps",
            "    - name: a\n      taskSpec: {steps: []}\n",
            "missing-field",
            "`steps` is empty",
            (8, 25),
        ),
        case(
            "taskSpec step running a container",
            "    - name: a\n      taskSpec:\n        steps:\n          - name: build\n            image: golang\n            script: go build\n",
            "unsupported-field",
            "step `build` has `image`: weft runs plugins, not containers",
            (11, 13),
        ),
        case(
            "taskSpec and taskRef together",
            "    - name: a\n      taskRef: {name: echo}\n      taskSpec: {steps: [{name: s, ref: {name: echo}}]}\n",
            "invalid-value",
            "`taskRef` or `taskSpec`, not both",
            (9, 7),
        ),
        case(
            "empty matrix",
            "    - name: a\n      taskRef: {name: echo}\n      matrix: {params: []}\n",
            "missing-field",
            "an empty `matrix`",
            (9, 15),
        ),
        case(
            "pipelineRef to nothing",
            "    - name: a\n      pipelineRef: {name: other}\n",
            "unresolved-reference",
            "pipelineRef `other` names no Pipeline",
            (8, 27),
        ),
        case(
            "pipelineSpec beside taskRef",
            "    - name: a\n      taskRef: {name: echo}\n      pipelineSpec: {tasks: []}\n",
            "invalid-value",
            "not both",
            (8, 7),
        ),
        case(
            "taskRef.bundle unsupported",
            "    - name: a\n      taskRef: {name: echo, bundle: reg/x}\n",
            "unsupported-field",
            "`bundle`",
            (8, 29),
        ),
        case(
            "taskRef git resolver unsupported",
            "    - name: a\n      taskRef:\n        resolver: git\n",
            "unsupported-field",
            "the `git` resolver is not supported: weft does not fetch git repositories",
            (9, 19),
        ),
        case(
            "taskRef.params without resolver",
            "    - name: a\n      taskRef:\n        name: echo\n        params: []\n",
            "missing-field",
            "`params` without `resolver`",
            (10, 9),
        ),
        case(
            "taskRef hub resolver fetching a pipeline",
            "    - name: a\n      taskRef:\n        resolver: hub\n        params:\n          - {name: kind, value: pipeline}\n          - {name: name, value: echo}\n",
            "invalid-value",
            "the `kind` param is `pipeline`, but a `taskRef` names a Task or a plugin",
            (11, 33),
        ),
        case(
            "a wait with a resolver",
            "    - name: a\n      taskRef:\n        kind: ApprovalTask\n        resolver: hub\n        params: [{name: name, value: x}]\n",
            "invalid-wait",
            "a wait for people runs no plugin: it takes no `resolver`",
            (10, 9),
        ),
        case(
            "an unknown resolver",
            "    - name: a\n      taskRef: {resolver: svn, params: [{name: name, value: echo}]}\n",
            "invalid-value",
            "`svn` is not a Tekton resolver",
            (8, 27),
        ),
        case(
            "taskRef.kind ClusterTask",
            "    - name: a\n      taskRef: {name: echo, kind: ClusterTask}\n",
            "unsupported-field",
            "taskRef kind `ClusterTask`",
            (8, 35),
        ),
        case(
            "when cel unsupported",
            "    - name: a\n      taskRef: {name: echo}\n      when:\n        - cel: \"'a' == 'a'\"\n",
            "unsupported-field",
            "`cel`",
            (10, 11),
        ),
        case(
            "timeout inside when unsupported",
            "    - name: a\n      taskRef: {name: echo}\n      when:\n        - {input: a, operator: in, values: [a], timeout: 1s}\n",
            "unsupported-field",
            "`timeout`",
            (10, 49),
        ),
        case(
            "workspace subPath unsupported",
            "    - name: a\n      taskRef: {name: echo}\n      workspaces:\n        - {name: src, subPath: x}\n",
            "unsupported-field",
            "`subPath`",
            (10, 23),
        ),
        case(
            "missing taskRef",
            "    - name: a\n      retries: 1\n",
            "missing-field",
            "missing required field `taskRef`",
            (7, 7),
        ),
        // --- plugin references that name nothing (they used to validate, then hang) ---
        case(
            "null taskRef",
            "    - name: a\n      taskRef:\n",
            "missing-field",
            "`taskRef` is empty: it must name a plugin",
            (8, 7),
        ),
        case(
            "taskRef with an empty name",
            "    - name: a\n      taskRef: {name: \"\"}\n",
            "invalid-value",
            "`name` is empty: it must name a plugin",
            (8, 23),
        ),
        case(
            "taskRef with a blank name",
            "    - name: a\n      taskRef:\n        name: '   '\n",
            "invalid-value",
            "`name` is only whitespace: it must name a plugin",
            (9, 15),
        ),
        case(
            "taskRef without a name",
            "    - name: a\n      taskRef: {}\n",
            "missing-field",
            "missing required field `name`",
            (8, 16),
        ),
        case(
            "taskRef as a list",
            "    - name: a\n      taskRef: []\n",
            "wrong-type",
            "expected a mapping, found a list",
            (8, 16),
        ),
        case(
            "taskRef with a null name",
            "    - name: a\n      taskRef: {name: ~}\n",
            "wrong-type",
            "expected a string, found null",
            (8, 23),
        ),
        case(
            "finally taskRef with an empty name",
            "    - name: a\n      taskRef: {name: echo}\n  finally:\n    - name: f\n      taskRef: {name: ''}\n",
            "invalid-value",
            "`name` is empty: it must name a plugin",
            (11, 23),
        ),
        case(
            "null finally taskRef",
            "    - name: a\n      taskRef: {name: echo}\n  finally:\n    - name: f\n      taskRef: ~\n",
            "missing-field",
            "`taskRef` is empty: it must name a plugin",
            (11, 7),
        ),
        case(
            "decorator with an empty id",
            "    - name: a\n      taskRef: {name: echo}\n  decorators:\n    - {id: \"\"}\n",
            "invalid-value",
            "`id` is empty: it must name a plugin",
            (10, 12),
        ),
        // --- wrong types and values ---
        case(
            "retries not an int",
            "    - name: a\n      taskRef: {name: echo}\n      retries: three\n",
            "wrong-type",
            "retries must be an integer",
            (9, 16),
        ),
        case(
            "negative retries",
            "    - name: a\n      taskRef: {name: echo}\n      retries: -1\n",
            "invalid-value",
            "retries must not be negative",
            (9, 16),
        ),
        case(
            "timeout without unit",
            "    - name: a\n      taskRef: {name: echo}\n      timeout: 10\n",
            "wrong-type",
            "missing a unit",
            (9, 16),
        ),
        case(
            "timeout bad unit",
            "    - name: a\n      taskRef: {name: echo}\n      timeout: 5 minutes\n",
            "wrong-type",
            "invalid timeout",
            (9, 16),
        ),
        case(
            "onError bad value",
            "    - name: a\n      taskRef: {name: echo}\n      onError: ignore\n",
            "invalid-value",
            "`ignore` is not a valid `onError`",
            (9, 16),
        ),
        case(
            "halt bad value",
            "    - name: a\n      taskRef: {name: echo}\n      halt: stop\n",
            "invalid-value",
            "`stop` is not a valid `halt`",
            (9, 13),
        ),
        case(
            "idempotent not a bool",
            "    - name: a\n      taskRef: {name: echo}\n      idempotent: yes\n",
            "wrong-type",
            "`idempotent` must be true or false",
            (9, 19),
        ),
        case(
            "when operator bad",
            "    - name: a\n      taskRef: {name: echo}\n      when: [{input: a, operator: equals, values: [a]}]\n",
            "invalid-value",
            "`equals` is not a valid `operator`",
            (9, 35),
        ),
        case(
            "recovery strategy bad",
            "    - name: a\n      taskRef: {name: echo}\n  recovery: {strategy: retry}\n",
            "invalid-value",
            "`retry` is not a valid `strategy`",
            (9, 24),
        ),
        // --- onStatus ---
        case(
            "onStatus empty exitCodes",
            "    - name: a\n      taskRef: {name: echo}\n      onStatus:\n        - {exitCodes: [], outcome: warning}\n",
            "invalid-value",
            "`exitCodes` must not be empty",
            (10, 23),
        ),
        case(
            "onStatus unknown outcome",
            "    - name: a\n      taskRef: {name: echo}\n      onStatus:\n        - {exitCodes: [2], outcome: ok}\n",
            "invalid-value",
            "`ok` is not a valid `outcome`",
            (10, 37),
        ),
        case(
            "onStatus unknown flow",
            "    - name: a\n      taskRef: {name: echo}\n      onStatus:\n        - {exitCodes: [2], outcome: warning, flow: abort}\n",
            "invalid-value",
            "`abort` is not a valid `flow`",
            (10, 52),
        ),
        case(
            "onStatus exit code not an int",
            "    - name: a\n      taskRef: {name: echo}\n      onStatus:\n        - {exitCodes: [two], outcome: warning}\n",
            "wrong-type",
            "exit codes must be integers",
            (10, 24),
        ),
        // --- names ---
        case(
            "duplicate task names",
            "    - name: a\n      taskRef: {name: echo}\n    - name: a\n      taskRef: {name: echo}\n",
            "duplicate-name",
            "task name `a` is used twice",
            (9, 13),
        ),
        case(
            "duplicate across tasks and finally",
            "    - name: a\n      taskRef: {name: echo}\n  finally:\n    - name: a\n      taskRef: {name: echo}\n",
            "duplicate-name",
            "unique across `tasks` and `finally`",
            (10, 13),
        ),
        case(
            "empty task name",
            "    - name: \"\"\n      taskRef: {name: echo}\n",
            "invalid-name",
            "task name must not be empty",
            (7, 13),
        ),
        case(
            "task name not DNS-1123",
            "    - name: Build_Step\n      taskRef: {name: echo}\n",
            "invalid-name",
            "not a valid DNS-1123 label",
            (7, 13),
        ),
        case(
            "duplicate param names",
            "    - name: a\n      taskRef: {name: echo}\n  params:\n    - name: p\n      default: x\n    - name: p\n      default: y\n",
            "duplicate-name",
            "param `p` is declared twice",
            (12, 13),
        ),
        // --- runAfter and cycles ---
        case(
            "runAfter unknown task",
            "    - name: build\n      taskRef: {name: echo}\n    - name: test\n      taskRef: {name: echo}\n      runAfter: [biuld]\n",
            "unknown-task",
            "unknown task `biuld`",
            (11, 18),
        ),
        case(
            "runAfter a finally task",
            "    - name: a\n      taskRef: {name: echo}\n      runAfter: [cleanup]\n  finally:\n    - name: cleanup\n      taskRef: {name: echo}\n",
            "run-after-finally",
            "`finally` task `cleanup`",
            (9, 18),
        ),
        case(
            "runAfter inside finally",
            "    - name: a\n      taskRef: {name: echo}\n  finally:\n    - name: f\n      taskRef: {name: echo}\n      runAfter: [a]\n",
            "finally-run-after",
            "cannot use `runAfter`",
            (12, 18),
        ),
        case(
            "cycle of two",
            "    - name: a\n      taskRef: {name: echo}\n      runAfter: [b]\n    - name: b\n      taskRef: {name: echo}\n      runAfter: [a]\n",
            "cycle",
            "a -> b -> a",
            (7, 13),
        ),
        case(
            "self cycle",
            "    - name: a\n      taskRef: {name: echo}\n      runAfter: [a]\n",
            "cycle",
            "a -> a",
            (7, 13),
        ),
        case(
            "cycle through a result reference",
            "    - name: a\n      taskRef: {name: echo}\n      params: [{name: x, value: \"$(tasks.c.results.r)\"}]\n    - name: b\n      taskRef: {name: echo}\n      runAfter: [a]\n    - name: c\n      taskRef: {name: echo}\n      runAfter: [b]\n",
            "cycle",
            "a -> b -> c -> a",
            (7, 13),
        ),
        // --- variables ---
        case(
            "unknown param variable",
            "    - name: a\n      taskRef: {name: echo}\n      params: [{name: x, value: \"$(params.nope)\"}]\n",
            "unknown-variable",
            "unknown param `nope`",
            (9, 33),
        ),
        case(
            "unknown task in result variable",
            "    - name: a\n      taskRef: {name: echo}\n      params: [{name: x, value: \"$(tasks.nope.results.x)\"}]\n",
            "unknown-variable",
            "unknown task `nope`",
            (9, 33),
        ),
        case(
            "unknown variable namespace",
            "    - name: a\n      taskRef: {name: echo}\n      params: [{name: x, value: \"$(foo.bar)\"}]\n",
            "unknown-variable",
            "unknown variable `$(foo.bar)`",
            (9, 33),
        ),
        case(
            "unterminated variable",
            "    - name: a\n      taskRef: {name: echo}\n      params:\n        - name: x\n          value: \"v=$(params.p\"\n",
            "malformed-variable",
            "unterminated variable",
            (11, 18),
        ),
        case(
            "empty variable",
            "    - name: a\n      taskRef: {name: echo}\n      when: [{input: \"$()\", operator: in, values: [x]}]\n",
            "malformed-variable",
            "empty variable",
            (9, 22),
        ),
        case(
            "unknown variable in when values",
            "    - name: a\n      taskRef: {name: echo}\n      when:\n        - input: x\n          operator: in\n          values: [\"$(tasks.a.result.x)\"]\n",
            "unknown-variable",
            "unknown variable",
            (12, 20),
        ),
        case(
            "task reads a finally task's status",
            "    - name: a\n      taskRef: {name: echo}\n      params: [{name: x, value: \"$(tasks.f.status)\"}]\n  finally:\n    - name: f\n      taskRef: {name: echo}\n",
            "invalid-reference",
            "cannot read the status of finally task `f`",
            (9, 33),
        ),
        case(
            "task reads a finally task's results",
            "    - name: a\n      taskRef: {name: echo}\n      when: [{input: \"$(tasks.f.results.r)\", operator: in, values: [x]}]\n  finally:\n    - name: f\n      taskRef: {name: echo}\n",
            "invalid-reference",
            "cannot read the results of finally task `f`",
            (9, 22),
        ),
        case(
            "finally reads another finally task's results",
            "    - name: a\n      taskRef: {name: echo}\n  finally:\n    - name: f\n      taskRef: {name: echo}\n    - name: g\n      taskRef: {name: echo}\n      params: [{name: x, value: \"$(tasks.f.results.r)\"}]\n",
            "invalid-reference",
            "finally task `g` cannot read the results of finally task `f`",
            (14, 33),
        ),
        case(
            "array param used as a string",
            "    - name: a\n      taskRef: {name: echo}\n      params: [{name: x, value: \"-$(params.arr)\"}]\n  params:\n    - {name: arr, type: array, default: [a]}\n",
            "invalid-reference",
            "array param `arr` used as a string",
            (9, 33),
        ),
        case(
            "star expansion inside a longer string",
            "    - name: a\n      taskRef: {name: echo}\n      params: [{name: x, value: \"-$(params.arr[*])\"}]\n  params:\n    - {name: arr, type: array, default: [a]}\n",
            "invalid-reference",
            "must be the whole value",
            (9, 33),
        ),
        case(
            "unknown object key",
            "    - name: a\n      taskRef: {name: echo}\n      params: [{name: x, value: \"$(params.cfg.mdoe)\"}]\n  params:\n    - {name: cfg, type: object, properties: {mode: {type: string}}, default: {mode: a}}\n",
            "unknown-variable",
            "has no key `mdoe`",
            (9, 33),
        ),
        case(
            "unknown workspace variable",
            "    - name: a\n      taskRef: {name: echo}\n      params: [{name: x, value: \"$(workspaces.cache.bound)\"}]\n",
            "unknown-variable",
            "unknown workspace `cache`",
            (9, 33),
        ),
        case(
            "pipeline result references unknown task",
            "    - name: a\n      taskRef: {name: echo}\n  results:\n    - name: digest\n      value: $(tasks.build.results.digest)\n",
            "unknown-variable",
            "unknown task `build`",
            (11, 14),
        ),
        case(
            "task binds an undeclared workspace",
            "    - name: a\n      taskRef: {name: echo}\n      workspaces: [{name: src, workspace: source}]\n",
            "unknown-workspace",
            "pipeline workspace `source` is not declared",
            (9, 43),
        ),
        // --- params ---
        case(
            "param without value",
            "    - name: a\n      taskRef: {name: echo}\n  params:\n    - name: revision\n",
            "missing-param",
            "param `revision` has no value",
            (10, 13),
        ),
        case(
            "default of the wrong type",
            "    - name: a\n      taskRef: {name: echo}\n  params:\n    - name: flags\n      type: array\n      default: \"-v\"\n",
            "param-type",
            "default of param `flags` is string, but the param is declared array",
            (12, 16),
        ),
        case(
            "default outside enum",
            "    - name: a\n      taskRef: {name: echo}\n  params:\n    - name: env\n      enum: [dev, prod]\n      default: staging\n",
            "param-enum",
            "`staging` is not an allowed value of param `env`",
            (12, 16),
        ),
        case(
            "invalid param name",
            "    - name: a\n      taskRef: {name: echo}\n  params:\n    - name: 9lives\n      default: x\n",
            "invalid-name",
            "invalid param name `9lives`",
            (10, 13),
        ),
        case(
            "duplicate task param",
            "    - name: a\n      taskRef: {name: echo}\n      params:\n        - {name: x, value: a}\n        - {name: x, value: b}\n",
            "duplicate-name",
            "param `x` is given twice",
            (11, 18),
        ),
        // --- plugin-aware ---
        with_catalog(
            "unknown plugin",
            "    - name: a\n      taskRef: {name: git-clnoe}\n",
            "unknown-plugin",
            "unknown plugin `git-clnoe`",
            (8, 23),
        ),
        with_catalog(
            "missing required plugin param",
            "    - name: a\n      taskRef: {name: git-clone}\n",
            "missing-param",
            "requires param `url`",
            (8, 23),
        ),
        with_catalog(
            "unknown plugin param",
            "    - name: a\n      taskRef: {name: git-clone}\n      params:\n        - {name: url, value: x}\n        - {name: dpeth, value: \"1\"}\n",
            "unknown-param",
            "has no param `dpeth`",
            (11, 18),
        ),
        with_catalog(
            "plugin param of the wrong type",
            "    - name: a\n      taskRef: {name: git-clone}\n      params:\n        - {name: url, value: [a, b]}\n",
            "param-type",
            "param `url` of plugin `git-clone` is string, but the value is array",
            (10, 30),
        ),
        with_catalog(
            "plugin param enum",
            "    - name: a\n      taskRef: {name: git-clone}\n      params:\n        - {name: url, value: x}\n        - {name: depth, value: \"$(params.d)\"}\n  params:\n    - {name: d, default: \"2\"}\n",
            "param-enum",
            "`2` is not an allowed value of param `depth`",
            (11, 32),
        ),
        with_catalog(
            "unknown result of a fixed-results plugin",
            "    - name: a\n      taskRef: {name: git-clone}\n      params: [{name: url, value: x}]\n    - name: b\n      taskRef: {name: echo}\n      params: [{name: c, value: \"$(tasks.a.results.comit)\"}]\n",
            "unknown-result",
            "produces no result `comit`",
            (12, 33),
        ),
    ];
    // Waits: approvals, manual interventions, gates and their task-level sugar.
    cases.extend([
        case(
            "retries on an approval",
            "    - name: ok\n      taskRef: {apiVersion: weft.dev/v1, kind: ApprovalTask}\n      retries: 2\n      params: [{name: approvers, value: [alice]}]\n",
            "invalid-wait",
            "`retries` on an approval",
            (7, 7),
        ),
        case(
            "more approvals required than approvers listed",
            "    - name: ok\n      taskRef: {apiVersion: weft.dev/v1, kind: ApprovalTask}\n      params:\n        - {name: approvers, value: [alice, bob]}\n        - {name: numberOfApprovalsRequired, value: \"3\"}\n",
            "invalid-value",
            "3 approvals are required but only 2 approvers are listed",
            (11, 52),
        ),
        case(
            "an approval of a custom task apiVersion",
            "    - name: ok\n      taskRef: {apiVersion: example.com/v1, kind: ApprovalTask}\n      params: [{name: approvers, value: [alice]}]\n",
            "unsupported-field",
            "takes apiVersion `openshift-pipelines.org/v1alpha1` or `weft.dev/v1`",
            (8, 29),
        ),
        case(
            "an unknown taskRef kind",
            "    - name: ok\n      taskRef: {apiVersion: weft.dev/v1, kind: Approval}\n",
            "unsupported-field",
            "taskRef kind `Approval` is not supported",
            (8, 48),
        ),
        case(
            "a bad gate duration",
            "    - name: up\n      taskRef: {apiVersion: weft.dev/v1, kind: Gate, name: http-check}\n      gate: {samplingInterval: soon}\n",
            "wrong-type",
            "invalid samplingInterval",
            (9, 32),
        ),
        case(
            "gate timing on a task",
            "    - name: up\n      taskRef: {name: echo}\n      gate: {timeout: 1m}\n",
            "invalid-wait",
            "`gate` applies to gates only",
            (9, 13),
        ),
        case(
            "secrets on an intervention",
            "    - name: check\n      taskRef: {apiVersion: weft.dev/v1, kind: ManualIntervention}\n      secrets: [token]\n",
            "invalid-wait",
            "takes no secrets",
            (9, 17),
        ),
        case(
            "approval sugar with no approvers",
            "    - name: deploy\n      taskRef: {name: echo}\n      approval:\n        before: {required: 1}\n",
            "missing-field",
            "`approvers` must list at least one identity",
            (10, 17),
        ),
        case(
            "approval sugar requiring more than listed",
            "    - name: deploy\n      taskRef: {name: echo}\n      approval:\n        after: {approvers: [alice], required: 2}\n",
            "invalid-value",
            "2 approvals are required but only 1 approvers are listed",
            (10, 47),
        ),
        case(
            "approval sugar with a bad timeout",
            "    - name: deploy\n      taskRef: {name: echo}\n      approval:\n        before: {approvers: [alice], timeout: tomorrow}\n",
            "wrong-type",
            "invalid timeout",
            (10, 47),
        ),
        case(
            "gates sugar without plugins",
            "    - name: deploy\n      taskRef: {name: echo}\n      gates:\n        before: {timeout: 1m}\n",
            "missing-field",
            "`plugins` must list at least one gate",
            (10, 17),
        ),
        case(
            "release sugar on a finally task",
            "    - name: deploy\n      taskRef: {name: echo}\n  finally:\n    - name: tell\n      taskRef: {name: echo}\n      approval:\n        before: {approvers: [alice]}\n",
            "invalid-wait",
            "cannot be set on a `finally` task",
            (12, 7),
        ),
        case(
            "an unknown side of the sugar",
            "    - name: deploy\n      taskRef: {name: echo}\n      approval:\n        during: {approvers: [alice]}\n",
            "unknown-field",
            "unknown field `during`",
            (10, 9),
        ),
        case(
            "a concurrency limit of 0",
            "    - name: a\n      taskRef: {name: echo}\n  concurrency: {group: deploy, limit: 0}\n",
            "invalid-value",
            "`limit` must be a whole number of at least 1, not `0`",
            (9, 39),
        ),
        case(
            "an unknown queue policy",
            "    - name: a\n      taskRef: {name: echo}\n  concurrency: {group: deploy, policy: latest}\n",
            "invalid-value",
            "`latest` is not a valid `policy`",
            (9, 40),
        ),
        case(
            "a concurrency group naming an unknown param",
            "    - name: a\n      taskRef: {name: echo}\n  concurrency: {group: \"deploy-$(params.env)\"}\n",
            "unknown-variable",
            "unknown param `env`",
            (9, 24),
        ),
        case(
            "a concurrency group naming a task result",
            "    - name: a\n      taskRef: {name: echo}\n  concurrency: {group: \"deploy-$(tasks.a.results.x)\"}\n",
            "invalid-value",
            "may use only `$(params.NAME)`",
            (9, 24),
        ),
        case(
            "a policy on a task's concurrency",
            "    - name: a\n      taskRef: {name: echo}\n      concurrency: {group: db, policy: latestOnly}\n",
            "invalid-value",
            "a task's concurrency has no `policy`",
            (9, 32),
        ),
        with_catalog(
            "an unknown plugin among the sugar's gates",
            "    - name: deploy\n      taskRef: {name: echo}\n      gates:\n        before:\n          plugins: [{name: nope}]\n",
            "unknown-plugin",
            "unknown plugin `nope`",
            (11, 28),
        ),
    ]);
    cases.push(Case {
        name: "supplied param of the wrong type",
        yaml: "    - name: a\n      taskRef: {name: echo}\n  params:\n    - name: revision\n      type: string\n",
        params: &[],
        catalog: false,
        code: "param-type",
        fragment: "declared string but was given array",
        at: (10, 13),
    });
    cases.push(Case {
        name: "supplied param outside enum",
        yaml: "    - name: a\n      taskRef: {name: echo}\n  params:\n    - name: env\n      enum: [dev, prod]\n",
        params: &[],
        catalog: false,
        code: "param-enum",
        fragment: "`qa` is not an allowed value of param `env`",
        at: (10, 13),
    });
    cases.push(Case {
        name: "unknown supplied param",
        yaml: "    - name: a\n      taskRef: {name: echo}\n",
        params: &[],
        catalog: false,
        code: "unknown-param",
        fragment: "param `revison` is not declared",
        at: (0, 0),
    });
    cases
}

/// The three `-p` cases need values that are not `const`-friendly.
fn supplied_for(name: &str) -> BTreeMap<String, ParamValue> {
    let pairs: Vec<(&str, ParamValue)> = match name {
        "supplied param of the wrong type" => {
            vec![("revision", ParamValue::Array(vec!["a".into()]))]
        }
        "supplied param outside enum" => vec![("env", ParamValue::Str("qa".into()))],
        "unknown supplied param" => vec![("revison", ParamValue::Str("x".into()))],
        _ => vec![],
    };
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn malformed_pipelines_are_refused_with_exact_locations() {
    let catalog = catalog();
    let cases = cases();
    assert!(cases.len() >= 40, "the table keeps at least 40 cases");
    let mut failures = Vec::new();
    for case in &cases {
        let yaml = if case.yaml.starts_with("apiVersion") {
            case.yaml.to_string()
        } else {
            format!("{HEAD}{}", case.yaml)
        };
        let mut supplied = supplied_for(case.name);
        supplied.extend(case.params.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let catalog = case
            .catalog
            .then_some(&catalog as &dyn weft_core::PluginCatalog);
        let diagnostics = match load(&yaml, "pipeline.yaml", &supplied, catalog) {
            Ok(_) => {
                failures.push(format!("{}: accepted", case.name));
                continue;
            }
            Err(diagnostics) => diagnostics,
        };
        let found = diagnostics.iter().any(|d| {
            d.code == case.code
                && d.message.contains(case.fragment)
                && (d.line, d.column) == case.at
        });
        if !found {
            failures.push(format!(
                "{}: wanted {}:{} [{}] `{}`, got:\n{}",
                case.name,
                case.at.0,
                case.at.1,
                case.code,
                case.fragment,
                render(&diagnostics)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn typos_get_did_you_mean_hints() {
    let table = [
        (
            "    - name: a\n      taskRef: {name: echo}\n      runafter: []\n",
            "did you mean `runAfter`?",
        ),
        (
            "    - name: build\n      taskRef: {name: echo}\n    - name: b\n      taskRef: {name: echo}\n      runAfter: [biuld]\n",
            "did you mean `build`?",
        ),
        (
            "    - name: a\n      taskRef: {name: echo}\n      onError: contiue\n",
            "did you mean `continue`?",
        ),
    ];
    for (body, hint) in table {
        let Err(diagnostics) = load(&format!("{HEAD}{body}"), "p.yaml", &BTreeMap::new(), None)
        else {
            panic!("accepted: {body}")
        };
        assert!(
            diagnostics.iter().any(|d| d.hint.as_deref() == Some(hint)),
            "no hint {hint}:\n{}",
            render(&diagnostics)
        );
    }
    let catalog = catalog();
    let Err(diagnostics) = load(
        &format!("{HEAD}    - name: a\n      taskRef: {{name: git-clnoe}}\n"),
        "p.yaml",
        &BTreeMap::new(),
        Some(&catalog),
    ) else {
        panic!("accepted")
    };
    assert_eq!(
        diagnostics[0].hint.as_deref(),
        Some("did you mean `git-clone`?")
    );
}

#[test]
fn all_problems_are_reported_at_once_in_source_order() {
    let body = "    - name: a\n      taskRef: {name: echo}\n      retries: x\n      runAfter: [nope]\n    - name: a\n      taskRef: {name: echo}\n      params: [{name: x, value: \"$(params.missing)\"}]\n";
    let Err(diagnostics) = load(&format!("{HEAD}{body}"), "p.yaml", &BTreeMap::new(), None) else {
        panic!("accepted")
    };
    let codes: Vec<&str> = diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        [
            "wrong-type",
            "unknown-task",
            "duplicate-name",
            "unknown-variable"
        ]
    );
    let rendered = diagnostics[0].to_string();
    assert!(
        rendered.starts_with("p.yaml:9:16: error[wrong-type]: spec.tasks[0].retries: "),
        "{rendered}"
    );
}

#[test]
fn accepted_tekton_pipeline_with_every_supported_field() {
    let yaml = r#"apiVersion: tekton.dev/v1beta1
kind: Pipeline
metadata:
  name: full
  namespace: ci
  labels: {team: a}
  annotations: {note: b}
spec:
  displayName: Full
  description: every field
  params:
    - name: revision
      type: string
      default: main
      description: what to build
      enum: [main, dev]
    - name: flags
      type: array
      default: ["-v"]
  workspaces:
    - name: src
      description: sources
      optional: false
  tasks:
    - name: clone
      displayName: Clone
      description: clones
      taskRef: {name: git-clone, kind: Task}
      params:
        - {name: url, value: "https://example.invalid/$(params.revision)"}
        - {name: flags, value: ["$(params.flags[*])"]}
      workspaces: [{name: output, workspace: src}]
      retries: 2
      timeout: 1m30s
      onError: continue
      secrets: [token]
      halt: cancel
      idempotent: true
      onStatus:
        - {exitCodes: [2, 3], outcome: warning}
        - {exitCodes: [4], outcome: success, flow: halt}
    - name: test
      taskRef: {name: echo}
      runAfter: [clone]
      when:
        - {input: "$(tasks.clone.results.commit)", operator: notin, values: [""]}
  finally:
    - name: notify
      taskRef: {name: echo}
      params: [{name: s, value: "$(tasks.status) $(tasks.clone.status) $(tasks.clone.reason)"}]
  results:
    - {name: commit, value: "$(tasks.clone.results.commit)", description: sha}
  reporters:
    - {id: gitlab, url: "https://gitlab.invalid"}
  decorators:
    - {id: form, input: {fields: [a]}}
  recovery: {strategy: resume}
  workspaceSnapshots: true
"#;
    let catalog = catalog();
    match load(yaml, "full.yaml", &BTreeMap::new(), Some(&catalog)) {
        Ok(plan) => {
            assert_eq!(plan.nodes.len(), 3);
            assert_eq!(
                plan.nodes[0].timeout,
                Some(std::time::Duration::from_secs(90))
            );
            assert_eq!(plan.nodes[1].parent_count, 1);
        }
        Err(diagnostics) => panic!("refused:\n{}", render(&diagnostics)),
    }
    let pipeline = match weft_core::parse_pipeline(yaml, "full.yaml") {
        Ok(pipeline) => pipeline,
        Err(diagnostics) => panic!("{}", render(&diagnostics)),
    };
    assert_eq!(pipeline.reporters.len(), 1);
    assert_eq!(pipeline.decorators[0].id.value, "form");
    assert!(pipeline.workspace_snapshots);
    assert_eq!(pipeline.tasks[0].name.pos, weft_core::Pos::new(25, 13));
}

#[test]
fn names_longer_than_their_bound_are_refused_saying_the_bound() {
    let task = "t".repeat(64);
    let long = "n".repeat(254);
    let table = [
        (
            format!("    - name: {task}\n      taskRef: {{name: echo}}\n"),
            (7, 13),
            "is 64 characters long; a task name is a DNS-1123 label of at most 63 characters",
        ),
        (
            format!(
                "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {{name: {long}}}\nspec: {{}}\n"
            ),
            (3, 18),
            "is 254 characters long; a pipeline name is a DNS-1123 subdomain of at most 253",
        ),
        (
            format!(
                "    - name: a\n      taskRef: {{name: echo}}\n  params:\n    - {{name: {long}, default: x}}\n"
            ),
            (10, 14),
            "param name `nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn… (254 characters)` is 254 characters long",
        ),
        (
            format!(
                "    - name: a\n      taskRef: {{name: echo}}\n  workspaces:\n    - name: {long}\n"
            ),
            (10, 13),
            "workspace name `nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn… (254 characters)` is 254 characters long",
        ),
        (
            format!(
                "    - name: a\n      taskRef: {{name: echo}}\n  results:\n    - {{name: {long}, value: x}}\n"
            ),
            (10, 14),
            "result name `nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn… (254 characters)` is 254 characters long",
        ),
    ];
    for (body, at, fragment) in table {
        let yaml = if body.starts_with("apiVersion") {
            body
        } else {
            format!("{HEAD}{body}")
        };
        let Err(diagnostics) = load(&yaml, "p.yaml", &BTreeMap::new(), None) else {
            panic!("accepted: {fragment}")
        };
        assert!(
            diagnostics.iter().any(|d| d.code == "invalid-name"
                && d.message.contains(fragment)
                && (d.line, d.column) == at),
            "wanted {at:?} `{fragment}`:\n{}",
            render(&diagnostics)
        );
        // One problem per cause: a long name is not also "not a valid DNS-1123 label".
        assert_eq!(diagnostics.len(), 1, "{}", render(&diagnostics));
    }
}

#[test]
fn long_unknown_names_get_short_messages_and_no_hint() {
    let long = "b".repeat(20_000);
    let yaml = format!(
        "{HEAD}    - name: a\n      taskRef: {{name: echo}}\n      runAfter: [{long}]\n      params: [{{name: x, value: \"$(tasks.{long}.results.r)\"}}]\n"
    );
    let Err(diagnostics) = load(&yaml, "p.yaml", &BTreeMap::new(), None) else {
        panic!("accepted")
    };
    assert_eq!(diagnostics.len(), 2, "{}", render(&diagnostics));
    for diagnostic in &diagnostics {
        assert!(diagnostic.message.len() < 300, "{}", diagnostic.message);
        assert!(
            diagnostic.message.contains("… (20000 characters)"),
            "{}",
            diagnostic.message
        );
        assert_eq!(diagnostic.hint, None);
    }
}

#[test]
fn a_file_without_a_pipeline_says_so() {
    let table = [
        ("", "p.yaml holds no pipeline: the file is empty"),
        ("\n  \n", "p.yaml holds no pipeline: the file is empty"),
        (
            "# nothing yet\n\n  # still nothing\n",
            "p.yaml holds no pipeline: the file is empty but for comments",
        ),
        (
            "---\n",
            "p.yaml holds no pipeline: its YAML document is empty",
        ),
        (
            "--- # a comment\n...\n",
            "p.yaml holds no pipeline: its YAML document is empty",
        ),
        (
            "~\n",
            "p.yaml holds no pipeline: its YAML document is empty",
        ),
        (
            "null\n",
            "p.yaml holds no pipeline: its YAML document is empty",
        ),
    ];
    for (yaml, message) in table {
        let Err(diagnostics) = load(yaml, "p.yaml", &BTreeMap::new(), None) else {
            panic!("accepted: {yaml:?}")
        };
        assert_eq!(diagnostics.len(), 1, "{yaml:?}: {}", render(&diagnostics));
        let found = &diagnostics[0];
        assert_eq!(
            (found.line, found.column, found.code, found.message.as_str()),
            (1, 1, "missing-field", message),
            "{yaml:?}"
        );
        assert!(
            weft_core::parse_pipeline(yaml, "p.yaml").is_err_and(|d| !d.is_empty()),
            "{yaml:?}: parse_pipeline must give a reason"
        );
    }
}

/// The test catalog, as a registry that says where it looked.
struct Searched(BTreeMap<String, PluginInfo>);

impl weft_core::PluginCatalog for Searched {
    fn lookup(&self, name: &str) -> Option<&PluginInfo> {
        self.0.get(name)
    }
    fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
    fn searched(&self) -> Vec<String> {
        vec!["the 2 built-in plugins".into(), "`/opt/plugins`".into()]
    }
    fn how_to_add(&self, name: &str) -> Option<String> {
        Some(format!("add `{name}.wasm` with --plugins"))
    }
}

#[test]
fn an_unknown_plugin_says_where_it_was_looked_for() {
    let catalog = Searched(catalog());
    for (plugin, hint) in [
        (
            "git-clnoe",
            "did you mean `git-clone`? If not, add `git-clnoe.wasm` with --plugins",
        ),
        ("kaniko", "add `kaniko.wasm` with --plugins"),
    ] {
        let yaml = format!("{HEAD}    - name: a\n      taskRef: {{name: {plugin}}}\n");
        let Err(diagnostics) = load(&yaml, "p.yaml", &BTreeMap::new(), Some(&catalog)) else {
            panic!("accepted")
        };
        let found = &diagnostics[0];
        assert_eq!(
            (found.line, found.column, found.code),
            (8, 23, "unknown-plugin")
        );
        assert_eq!(
            found.message,
            format!(
                "unknown plugin `{plugin}`: weft looked in the 2 built-in plugins, then `/opt/plugins`"
            )
        );
        assert_eq!(found.hint.as_deref(), Some(hint));
    }
}
