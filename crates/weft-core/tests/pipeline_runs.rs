//! PipelineRun files and multi-document files: which pipeline a run runs, what the run
//! gives it, and how problems name their document.

use std::collections::BTreeMap;
use std::time::Duration;

use weft_core::contract::ParamValue;
use weft_core::pipeline_run::{PipelineChoice, SpecStatus, VolumeSource};
use weft_core::{RunFiles, SourceFile, load, parse_pipeline, parse_run};

fn parse(text: &str) -> RunFiles {
    parse_run(
        SourceFile {
            file: "p.yaml",
            text,
        },
        &[],
    )
}

const PIPELINE: &str = "apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: build
spec:
  params:
    - name: target
  workspaces:
    - name: src
  tasks:
    - name: compile
      timeout: 1h
      taskRef: {name: exit}
";

#[test]
fn a_run_and_its_pipeline_in_one_file() {
    let text = format!(
        "{PIPELINE}---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  generateName: build-run-
spec:
  pipelineRef: {{name: build}}
  params:
    - {{name: target, value: linux}}
    - {{name: extra, value: ignored}}
  workspaces:
    - name: src
      persistentVolumeClaim: {{claimName: sources}}
      subPath: app
  timeouts: {{pipeline: 1h, tasks: 50m, finally: 10m}}
  taskRunSpecs:
    - {{pipelineTaskName: compile, timeout: 5m}}
  status: PipelineRunPending
"
    );
    let parsed = parse(&text);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    let pipeline = parsed.pipeline.as_ref().expect("the pipeline");
    assert_eq!(pipeline.name.value, "build");
    // taskRunSpecs replace the task's timeout.
    assert_eq!(pipeline.tasks[0].timeout, Some(Duration::from_secs(300)));
    let run = parsed.run.as_ref().expect("the run");
    assert!(matches!(&run.pipeline, PipelineChoice::Ref(name) if name.value == "build"));
    assert_eq!(
        run.status.as_ref().map(|s| s.value),
        Some(SpecStatus::Pending)
    );
    assert_eq!(run.run_name("abcde").as_deref(), Some("build-run-abcde"));
    assert_eq!(run.timeouts.tasks, Some(Duration::from_secs(3000)));
    assert!(
        matches!(&run.workspaces[0].source, VolumeSource::PersistentVolumeClaim(c) if c.value == "sources")
    );
    // Params the pipeline does not declare reach nobody; `-p` wins.
    let flags = BTreeMap::from([("target".to_string(), ParamValue::Str("darwin".into()))]);
    assert_eq!(
        parsed.supplied(&BTreeMap::new()),
        BTreeMap::from([("target".to_string(), ParamValue::Str("linux".into()))])
    );
    assert_eq!(parsed.supplied(&flags), flags);
    // parse_pipeline and load read the same file the same way.
    assert_eq!(
        parse_pipeline(&text, "p.yaml").ok().as_ref(),
        Some(pipeline)
    );
    assert!(load(&text, "p.yaml", &BTreeMap::new(), None).is_ok());
}

#[test]
fn an_inline_spec_gets_the_runs_params_declared() {
    let parsed = parse(
        "apiVersion: tekton.dev/v1beta1
kind: PipelineRun
metadata: {name: inline}
spec:
  timeout: 30m
  params:
    - {name: words, value: [a, b]}
    - {name: who, value: bob}
  pipelineSpec:
    tasks:
      - name: hello
        taskRef: {name: echo}
        params:
          - {name: message, value: \"$(params.who) $(params.words[*])\"}
",
    );
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    let pipeline = parsed.pipeline.expect("pipeline");
    assert_eq!(pipeline.name.value, "inline");
    let declared: Vec<&str> = pipeline
        .params
        .iter()
        .map(|p| p.name.value.as_str())
        .collect();
    assert_eq!(declared, ["words", "who"]);
    let run = parsed.run.expect("run");
    assert_eq!(run.timeouts.pipeline, Some(Duration::from_secs(1800)));
}

#[test]
fn problems_name_their_document_and_inline_paths() {
    let text = "apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: r}
spec:
  pipelineSpec:
    tasks:
      - name: a
        runAfter: [nope]
        taskRef: {name: exit}
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: other}
spec:
  tasks:
    - name: b
      taskRef: {name: exit}
      bogus: 1
";
    let parsed = parse(text);
    let bogus = &parsed.diagnostics[0];
    assert_eq!(
        (bogus.line, bogus.column, bogus.code),
        (18, 7, "unknown-field")
    );
    assert_eq!(
        bogus.document.as_deref().map(String::as_str),
        Some("document 2 (Pipeline other)")
    );
    let Err(found) = load(text, "p.yaml", &BTreeMap::new(), None) else {
        panic!("refused")
    };
    let run_after = found
        .iter()
        .find(|d| d.code == "unknown-task")
        .expect("runAfter");
    assert_eq!(
        run_after.field_path,
        "spec.pipelineSpec.tasks[0].runAfter[0]"
    );
    assert_eq!(
        run_after.document.as_deref().map(String::as_str),
        Some("document 1 (PipelineRun r)")
    );
    assert_eq!((run_after.line, run_after.column), (8, 20));
}

#[test]
fn what_the_documents_cannot_decide_is_an_error() {
    let cases: &[(&str, &str, &str, (u32, u32))] = &[
        (
            "no such pipeline",
            "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: r}\nspec:\n  pipelineRef: {name: gone}\n",
            "unresolved-reference",
            (5, 23),
        ),
        (
            "two pipelines, no run",
            "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: a}\nspec:\n  tasks: [{name: t, taskRef: {name: exit}}]\n---\napiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: b}\nspec:\n  tasks: [{name: t, taskRef: {name: exit}}]\n",
            "documents",
            (9, 18),
        ),
        (
            "a kind weft does not read",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: a}\nspec:\n  tasks: [{name: t, taskRef: {name: exit}}]\n",
            "kind",
            (2, 7),
        ),
        (
            "tasks timeout over the pipeline's",
            "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: r}\nspec:\n  timeouts: {pipeline: 1m, tasks: 2m}\n  pipelineSpec:\n    tasks: [{name: t, taskRef: {name: exit}}]\n",
            "invalid-value",
            (5, 13),
        ),
        (
            "pipelineRef and pipelineSpec",
            "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: r}\nspec:\n  pipelineRef: {name: a}\n  pipelineSpec:\n    tasks: [{name: t, taskRef: {name: exit}}]\n",
            "invalid-value",
            (7, 5),
        ),
        (
            "a workspace with two sources",
            "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: r}\nspec:\n  workspaces:\n    - name: w\n      emptyDir: {}\n      secret: {secretName: s}\n  pipelineSpec:\n    workspaces: [{name: w}]\n    tasks: [{name: t, taskRef: {name: exit}}]\n",
            "invalid-value",
            (8, 7),
        ),
        (
            "the git resolver",
            "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: r}\nspec:\n  pipelineRef:\n    resolver: git\n",
            "unsupported-field",
            (6, 15),
        ),
        (
            "a cluster resolver without kind: pipeline",
            "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: r}\nspec:\n  pipelineRef:\n    resolver: cluster\n    params: [{name: name, value: build}]\n",
            "missing-field",
            (7, 5),
        ),
        (
            "a cluster resolver naming no pipeline there is",
            "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: r}\nspec:\n  pipelineRef:\n    resolver: cluster\n    params: [{name: kind, value: pipeline}, {name: name, value: gone}]\n",
            "unresolved-reference",
            (7, 65),
        ),
        (
            "v1 has no `timeout`",
            "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: r}\nspec:\n  timeout: 1h\n  pipelineSpec:\n    tasks: [{name: t, taskRef: {name: exit}}]\n",
            "unknown-field",
            (5, 3),
        ),
        (
            "a status Tekton does not have",
            "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: r}\nspec:\n  status: Paused\n  pipelineSpec:\n    tasks: [{name: t, taskRef: {name: exit}}]\n",
            "invalid-value",
            (5, 11),
        ),
        (
            "a taskRunSpec for no task",
            "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: r}\nspec:\n  taskRunSpecs: [{pipelineTaskName: nope, timeout: 1m}]\n  pipelineSpec:\n    tasks: [{name: t, taskRef: {name: exit}}]\n",
            "unknown-task",
            (5, 37),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, text, code, (line, column)) in cases {
        let parsed = parse(text);
        if !parsed
            .diagnostics
            .iter()
            .any(|d| d.code == *code && (d.line, d.column) == (*line, *column))
        {
            wrong.push(format!(
                "{name}: {:?}",
                parsed
                    .diagnostics
                    .iter()
                    .map(|d| (d.code, d.line, d.column))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_pipeline_ref_is_found_among_the_referenced_files() {
    let run = "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: r}\nspec:\n  pipelineRef: {name: build}\n  params: [{name: target, value: x}]\n";
    let broken = "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: broken}\nspec:\n  tasks: [{name: t, taskRef: {name: exit}, runAfter: [x]}]\n";
    let files = [
        SourceFile {
            file: "lib/broken.yaml",
            text: broken,
        },
        SourceFile {
            file: "lib/not-yaml.yaml",
            text: "a: [",
        },
        SourceFile {
            file: "lib/build.yaml",
            text: PIPELINE,
        },
    ];
    let parsed = parse_run(
        SourceFile {
            file: "run.yaml",
            text: run,
        },
        &files,
    );
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    assert_eq!(parsed.used, [2]);
    assert_eq!(parsed.pipeline.expect("found").file, "lib/build.yaml");
}

#[test]
fn a_resolver_names_a_pipeline_of_the_file_or_of_the_referenced_files() {
    let by_resolver = |resolver: &str, ignored: &str| {
        format!(
            "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {{name: r}}\nspec:\n  pipelineRef:\n    resolver: {resolver}\n    params:\n      - {{name: kind, value: pipeline}}\n      - {{name: name, value: build}}\n      - {{name: {ignored}, value: ci}}\n  params: [{{name: target, value: x}}]\n"
        )
    };
    // The same file.
    let text = format!("{PIPELINE}---\n{}", by_resolver("cluster", "namespace"));
    let parsed = parse(&text);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    assert_eq!(parsed.pipeline.expect("found").name.value, "build");
    let run = parsed.run.expect("the run");
    assert!(matches!(&run.pipeline, PipelineChoice::Ref(name)
        if name.value == "build" && (name.pos.line, name.pos.column) == (23, 29)));
    // `--pipelines` files.
    let run = by_resolver("hub", "catalog");
    let files = [SourceFile {
        file: "lib/build.yaml",
        text: PIPELINE,
    }];
    let parsed = parse_run(
        SourceFile {
            file: "run.yaml",
            text: &run,
        },
        &files,
    );
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    assert_eq!(parsed.pipeline.expect("found").file, "lib/build.yaml");
}

#[test]
fn a_refused_resolver_is_the_only_error_of_its_run() {
    let text = format!(
        "{PIPELINE}---\napiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {{name: r}}\nspec:\n  pipelineRef:\n    resolver: http\n    params: [{{name: url, value: \"https://example.com/p.yaml\"}}]\n"
    );
    let parsed = parse(&text);
    let found: Vec<_> = parsed
        .diagnostics
        .iter()
        .map(|d| {
            (
                d.code,
                d.line,
                d.column,
                d.field_path.as_str(),
                d.document.as_deref().map(String::as_str),
            )
        })
        .collect();
    assert_eq!(
        found,
        [(
            "unsupported-field",
            20,
            15,
            "spec.pipelineRef.resolver",
            Some("document 2 (PipelineRun r)")
        )],
        "{:#?}",
        parsed.diagnostics
    );
    assert!(
        parsed.diagnostics[0]
            .hint
            .as_deref()
            .is_some_and(
                |hint| hint.contains("download the file") && hint.contains("--pipelines DIR")
            ),
        "{:#?}",
        parsed.diagnostics
    );
}

#[test]
fn one_pipeline_per_file_reads_as_it_always_did() {
    // Anchors belong to their document; an empty trailing document is skipped.
    let text = "apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: a}
spec:
  tasks:
    - &t {name: t, taskRef: {name: exit}}
---
";
    let parsed = parse(text);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    assert!(parsed.run.is_none());
    let text = format!(
        "{text}apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {{name: b}}\nspec:\n  tasks: [*t]\n"
    );
    let parsed = parse(&text);
    assert!(
        parsed.diagnostics.iter().any(|d| d.code == "yaml-syntax"),
        "{:#?}",
        parsed.diagnostics
    );
}

#[test]
fn every_prefix_of_the_corpus_parses_without_panicking() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tekton");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("tests/tekton") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|ext| ext != "yaml") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).expect("readable");
        let mut cut = 0;
        while let Some(next) = text[cut..].find('\n') {
            cut += next + 1;
            // Whole lines, and a line cut in its middle.
            for end in [cut, cut.saturating_sub(4).max(1)] {
                if text.is_char_boundary(end) {
                    let _ = load(&text[..end], "p.yaml", &BTreeMap::new(), None);
                }
            }
        }
    }
    assert!(files >= 15, "{files} corpus files");
}

#[test]
fn many_documents_each_label_their_own_problems() {
    // Several Pipelines and no PipelineRun: each document's problem names that document.
    let count = 3_000;
    let text: String = (0..count)
        .map(|i| {
            format!(
                "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {{name: p{i}}}\nspec:\n  bogus: 1\n  tasks: [{{name: t, taskRef: {{name: exit}}}}]\n---\n"
            )
        })
        .collect();
    let parsed = parse(&text);
    let unknown: Vec<_> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.code == "unknown-field")
        .collect();
    assert_eq!(unknown.len(), count);
    for (i, diagnostic) in unknown.iter().enumerate() {
        assert_eq!(diagnostic.line as usize, i * 7 + 5);
        assert_eq!(
            diagnostic.document.as_deref().map(String::as_str),
            Some(format!("document {} (Pipeline p{i})", i + 1).as_str())
        );
    }
    assert!(parsed.diagnostics.iter().any(|d| d.code == "documents"));
}

const STEPS: &str = "apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: greet
spec:
  steps:
    - name: say
      ref: {name: echo}
      params:
        - {name: message, value: \"$(params.who)\"}
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: p
spec:
  params:
    - name: who
  tasks:
    - name: by-ref
      taskRef: {name: greet}
    - name: inline
      taskSpec:
        steps:
          - name: say
            ref: {name: echo}
            params:
              - {name: message, value: \"$(params.who)\"}
";

#[test]
fn task_refs_resolve_to_task_documents_and_params_propagate_into_inline_specs_only() {
    let parsed = parse(STEPS);
    let pipeline = parsed.pipeline.expect("a pipeline");
    let by_ref = &pipeline.tasks[0];
    let inline = &pipeline.tasks[1];
    let steps = by_ref
        .steps
        .as_deref()
        .expect("taskRef greet is the Task document");
    assert_eq!(steps.name, "greet");
    assert!(
        steps.params.is_empty(),
        "a Task document gets no propagated params"
    );
    let spec = inline.steps.as_deref().expect("taskSpec");
    assert_eq!(spec.params.len(), 1);
    assert_eq!(inline.params[0].name.value, "who");
    assert_eq!(
        inline.params[0].value.value,
        ParamValue::Str("$(params.who)".into())
    );
    // The Task document's step reads a param it does not declare: an error at its value.
    let found = weft_core::validate(
        &pipeline,
        &BTreeMap::from([("who".to_string(), ParamValue::Str("x".into()))]),
        None,
    );
    let unknown: Vec<_> = found
        .iter()
        .map(|d| (d.line, d.column, d.code, d.field_path.as_str()))
        .collect();
    assert_eq!(
        unknown,
        vec![(10, 34, "unknown-variable", "spec.steps[0].params[0].value")]
    );
}

#[test]
fn resolvers_name_task_documents_and_step_plugins_as_names_do() {
    let text = STEPS
        .replace(
            "      taskRef: {name: greet}",
            "      taskRef:\n        resolver: cluster\n        params: [{name: kind, value: task}, {name: name, value: greet}]",
        )
        .replace(
            "            ref: {name: echo}",
            "            ref:\n              resolver: hub\n              params: [{name: kind, value: stepaction}, {name: name, value: echo}, {name: version, value: \"0.1\"}]",
        );
    let parsed = parse(&text);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    let pipeline = parsed.pipeline.expect("a pipeline");
    let by_ref = &pipeline.tasks[0];
    assert_eq!(by_ref.plugin.value, "greet");
    assert_eq!(
        by_ref.steps.as_deref().map(|steps| steps.name.as_str()),
        Some("greet"),
        "the resolver's name finds the Task document"
    );
    let step = &pipeline.tasks[1].steps.as_deref().expect("taskSpec").steps[0];
    assert_eq!(step.plugin.value, "echo");
    // A step's ref with the default kind (`task`) fetches no StepAction.
    let text = STEPS.replace(
        "            ref: {name: echo}",
        "            ref: {resolver: hub, params: [{name: name, value: echo}]}",
    );
    let found: Vec<_> = parse(&text)
        .diagnostics
        .iter()
        .map(|d| (d.line, d.column, d.code, d.field_path.clone()))
        .collect();
    assert_eq!(
        found,
        [(
            26,
            34,
            "missing-field",
            "spec.tasks[1].taskSpec.steps[0].ref.params".to_string()
        )]
    );
}
