//! The Tekton corpus: every `tests/tekton/*.yaml` (PipelineRuns, Pipelines and their
//! documents, modelled on Tekton's own examples, with steps pointing at weft plugins) is
//! run through the binary, each in its own data directory, and checked against what its
//! header announces:
//!
//! ```text
//! # run: EXTRA ARGS                  ({tmp} is the file's scratch directory)
//! # expect-exit: CODE
//! # expect-run: STATUS
//! # expect-name-prefix: PREFIX      (the run's name starts with it: `generateName`)
//! # expect-task: NAME STATUS REASON  (`-` for no reason)
//! # expect-result: TASK.RESULT=VALUE
//! # expect-file: PATH=CONTENT
//! # expect-pending: true            (`weft run` only creates it; `weft runs start` runs it)
//! # expect-diag: LINE:COL CODE "fragment" ["document" | "field"]...
//! # expect-condition: STATUS REASON "MESSAGE"   (`weft runs show RUN --output tekton`)
//! # expect-skipped: TASK "TEKTON SKIPPING REASON"
//! # expect-children: TASK,TASK,...  (the tasks with a TaskRun child reference)
//! # expect-pipeline-result: NAME=VALUE
//! # expect-attempts: TASK N          (attempts the run report counts for TASK)
//! # expect-child-runs: TASK,...      (the tasks whose child reference is a PipelineRun)
//! ```

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support;

/// Every top-level `tests/tekton/*.yaml` (`library/` holds what `--pipelines` reads).
fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(support::root().join("tests/tekton"))
        .expect("tests/tekton exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// The quoted strings of a header line, in order.
fn quoted(text: &str) -> Vec<String> {
    text.split('"')
        .enumerate()
        .filter(|(index, _)| index % 2 == 1)
        .map(|(_, part)| part.to_string())
        .collect()
}

/// What one file's header expects.
#[derive(Debug, Default)]
struct Expected {
    args: Vec<String>,
    exit: Option<i32>,
    run: Option<String>,
    name_prefix: Option<String>,
    tasks: Vec<(String, String, String)>,
    results: Vec<(String, String, String)>,
    files: Vec<(String, String)>,
    pending: bool,
    diags: Vec<(u64, u64, String, Vec<String>)>,
    condition: Option<(String, String, String)>,
    skipped: Vec<(String, String)>,
    children: Option<Vec<String>>,
    pipeline_results: Vec<(String, String)>,
    attempts: Vec<(String, u64)>,
    child_runs: Option<Vec<String>>,
}

fn header(path: &Path, tmp: &Path) -> Expected {
    let text = std::fs::read_to_string(path).expect("readable fixture");
    let tmp = tmp.to_string_lossy();
    let mut expected = Expected::default();
    for line in text.lines().take_while(|line| line.starts_with('#')) {
        let line = line.replace("{tmp}", &tmp);
        let Some((key, value)) = line.trim_start_matches("# ").split_once(": ") else {
            continue;
        };
        let value = value.trim();
        match key {
            "run" => expected.args = value.split_whitespace().map(String::from).collect(),
            "expect-exit" => expected.exit = value.parse().ok(),
            "expect-run" => expected.run = Some(value.to_string()),
            "expect-name-prefix" => expected.name_prefix = Some(value.to_string()),
            "expect-pending" => expected.pending = value == "true",
            "expect-task" => {
                let parts: Vec<&str> = value.split_whitespace().collect();
                let reason = match parts.get(2) {
                    Some(&"-") | None => "",
                    Some(reason) => reason,
                };
                expected
                    .tasks
                    .push((parts[0].into(), parts[1].into(), reason.into()));
            }
            "expect-result" => {
                let (key, result) = value.split_once('=').expect("TASK.RESULT=VALUE");
                let (task, name) = key.rsplit_once('.').expect("TASK.RESULT");
                expected
                    .results
                    .push((task.into(), name.into(), result.into()));
            }
            "expect-file" => {
                let (file, content) = value.split_once('=').expect("PATH=CONTENT");
                expected.files.push((file.into(), content.into()));
            }
            "expect-diag" => {
                let (at, rest) = value.split_once(' ').expect("LINE:COL CODE ...");
                let (line, column) = at.split_once(':').expect("LINE:COL");
                let code = rest.split_whitespace().next().expect("CODE");
                expected.diags.push((
                    line.parse().expect("line"),
                    column.parse().expect("column"),
                    code.to_string(),
                    quoted(rest),
                ));
            }
            "expect-condition" => {
                let parts: Vec<&str> = value.splitn(3, ' ').collect();
                let message = parts[2].trim();
                let message = message.strip_prefix('"').unwrap_or(message);
                let message = message.strip_suffix('"').unwrap_or(message);
                expected.condition = Some((parts[0].into(), parts[1].into(), message.into()));
            }
            "expect-skipped" => {
                let (task, _) = value.split_once(' ').expect("TASK \"REASON\"");
                let reason = quoted(value).into_iter().next().unwrap_or_default();
                expected.skipped.push((task.into(), reason));
            }
            "expect-children" => {
                expected.children = Some(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty() && *t != "-")
                        .map(String::from)
                        .collect(),
                );
            }
            "expect-attempts" => {
                let (task, count) = value.split_once(' ').expect("TASK N");
                expected
                    .attempts
                    .push((task.into(), count.trim().parse().expect("a count")));
            }
            "expect-child-runs" => {
                expected.child_runs =
                    Some(value.split(',').map(|s| s.trim().to_string()).collect());
            }
            "expect-pipeline-result" => {
                let (name, result) = value.split_once('=').expect("NAME=VALUE");
                expected.pipeline_results.push((name.into(), result.into()));
            }
            _ => {}
        }
    }
    expected
}

/// Checks `weft runs show RUN --output tekton` against the expectations.
fn check_tekton(name: &str, object: &Value, expected: &Expected) {
    assert_eq!(object["kind"], "PipelineRun", "{name}: {object:#}");
    if let Some((status, reason, message)) = &expected.condition {
        let condition = &object["status"]["conditions"][0];
        assert_eq!(
            (
                condition["type"].as_str(),
                condition["status"].as_str(),
                condition["reason"].as_str(),
                condition["message"].as_str()
            ),
            (
                Some("Succeeded"),
                Some(status.as_str()),
                Some(reason.as_str()),
                Some(message.as_str())
            ),
            "{name}: {object:#}"
        );
    }
    let skipped: Vec<(String, String)> = object["status"]["skippedTasks"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or_default().to_string(),
                        t["reason"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if expected.condition.is_some() {
        assert_eq!(
            skipped, expected.skipped,
            "{name}: skippedTasks in {object:#}"
        );
    }
    if let Some(children) = &expected.children {
        let got: Vec<&str> = object["status"]["childReferences"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|c| c["pipelineTaskName"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got, *children, "{name}: childReferences in {object:#}");
    }
    if let Some(runs) = &expected.child_runs {
        let got: Vec<&str> = object["status"]["childReferences"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter(|c| c["kind"] == "PipelineRun")
                    .filter_map(|c| c["pipelineTaskName"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got, *runs, "{name}: PipelineRun children in {object:#}");
    }
    for (result, value) in &expected.pipeline_results {
        let found = object["status"]["results"]
            .as_array()
            .and_then(|list| list.iter().find(|r| r["name"] == result.as_str()))
            .and_then(|r| r["value"].as_str());
        assert_eq!(found, Some(value.as_str()), "{name}: results in {object:#}");
    }
}

/// Checks a run report against the expectations.
fn check_report(name: &str, report: &Value, expected: &Expected) {
    if let Some(status) = &expected.run {
        assert_eq!(
            report["run"]["status"], **status,
            "{name}: run status in {report:#}"
        );
    }
    if let Some(prefix) = &expected.name_prefix {
        let run_name = report["run"]["name"].as_str().unwrap_or_default();
        assert!(
            run_name.starts_with(prefix.as_str()) && run_name.len() == prefix.len() + 5,
            "{name}: run name `{run_name}` is not `{prefix}` and five characters"
        );
    }
    let tasks = report["tasks"].as_array().cloned().unwrap_or_default();
    let task = |task: &str| {
        tasks
            .iter()
            .find(|t| t["name"] == task)
            .unwrap_or_else(|| panic!("{name}: no task `{task}` in {report:#}"))
            .clone()
    };
    for (task_name, status, reason) in &expected.tasks {
        let got = task(task_name);
        assert_eq!(
            (got["status"].as_str(), got["reason"].as_str()),
            (Some(status.as_str()), Some(reason.as_str())),
            "{name}: task `{task_name}` in {report:#}"
        );
    }
    for (task_name, result, value) in &expected.results {
        assert_eq!(
            task(task_name)["results"][result].as_str(),
            Some(value.as_str()),
            "{name}: result `{task_name}.{result}` in {report:#}"
        );
    }
    for (task_name, count) in &expected.attempts {
        assert_eq!(
            task(task_name)["attempts"].as_u64(),
            Some(*count),
            "{name}: attempts of `{task_name}` in {report:#}"
        );
    }
}

fn check_diagnostics(name: &str, document: &Value, expected: &Expected) {
    let got = document["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        got.len(),
        expected.diags.len(),
        "{name}: diagnostics {document:#}"
    );
    for (line, column, code, fragments) in &expected.diags {
        let found = got.iter().any(|d| {
            d["line"] == *line
                && d["column"] == *column
                && d["code"] == code.as_str()
                && fragments.iter().all(|fragment| {
                    ["message", "document", "field", "hint"].iter().any(|key| {
                        d[*key]
                            .as_str()
                            .is_some_and(|text| text.contains(fragment.as_str()))
                    })
                })
        });
        assert!(
            found,
            "{name}: no diagnostic {line}:{column} {code} {fragments:?} in {document:#}"
        );
    }
}

#[test]
fn the_corpus_runs_as_its_headers_say() {
    let files = corpus();
    assert!(files.len() >= 14, "the corpus has {} files", files.len());
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let scratch = tempfile::tempdir().expect("scratch dir");
        let data = scratch.path().join("data");
        let tmp = scratch.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp dir");
        let expected = header(&path, &tmp);
        let file = path.to_string_lossy().into_owned();
        let mut args = vec!["run", file.as_str(), "--output", "json"];
        args.extend(expected.args.iter().map(String::as_str));
        let ran = support::run_in(&data, &args, &[]);
        let document = ran.json();
        if let Some(code) = expected.exit
            && !expected.pending
        {
            assert_eq!(ran.code, code, "{name}: exit code; stderr:\n{}", ran.stderr);
        }
        if !expected.diags.is_empty() {
            check_diagnostics(&name, &document, &expected);
            continue;
        }
        let report = if expected.pending {
            assert_eq!(
                ran.code, 0,
                "{name}: created pending; stderr:\n{}",
                ran.stderr
            );
            assert_eq!(
                document["status"], "PipelineRunPending",
                "{name}: {document}"
            );
            let run = document["name"]
                .as_str()
                .expect("the run's name")
                .to_string();
            let shown = support::run_in(&data, &["runs", "show", &run], &[]);
            assert!(
                shown.stdout.contains("PipelineRunPending (not started"),
                "{name}: runs show:\n{}",
                shown.stdout
            );
            // Nothing ran, and recovery does not take a pending run.
            let recovered =
                support::run_in(&data, &["runs", "recover", "--recover-timeout", "0s"], &[]);
            assert!(
                recovered.stdout.contains("no run to recover"),
                "{name}: recover took the pending run:\n{}",
                recovered.stdout
            );
            let started = support::run_in(&data, &["runs", "start", &run, "--output", "json"], &[]);
            if let Some(code) = expected.exit {
                assert_eq!(
                    started.code, code,
                    "{name}: runs start; stderr:\n{}",
                    started.stderr
                );
            }
            let again = support::run_in(&data, &["runs", "start", &run], &[]);
            assert_eq!(
                again.code, 2,
                "{name}: a started run starts again:\n{}",
                again.stderr
            );
            assert!(again.stderr.contains("not pending"), "{}", again.stderr);
            started.json()
        } else {
            document
        };
        check_report(&name, &report, &expected);
        let run_name = report["run"]["name"].as_str().unwrap_or_default();
        let shown = support::run_in(
            &data,
            &["runs", "show", run_name, "--output", "tekton"],
            &[],
        );
        assert_eq!(
            shown.code, 0,
            "{name}: runs show; stderr:\n{}",
            shown.stderr
        );
        check_tekton(&name, &shown.json(), &expected);
        for (file, content) in &expected.files {
            let got = std::fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("{name}: {file} was not written: {e}"));
            assert_eq!(got, *content, "{name}: {file}");
        }
    }
}

#[test]
fn weft_run_prints_what_runs_show_reads_back() {
    let scratch = tempfile::tempdir().expect("scratch dir");
    let file =
        support::root().join("tests/tekton/03-pipelinerun-with-when-expressions-v1beta1.yaml");
    let file = file.to_string_lossy();
    let ran = support::run_in(scratch.path(), &["run", &file, "--output", "tekton"], &[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let printed = ran.json();
    let shown = support::run_in(
        scratch.path(),
        &["runs", "show", "guarded-pr", "--output", "tekton"],
        &[],
    );
    assert_eq!(printed, shown.json());
    assert_eq!(
        printed["status"]["conditions"][0]["message"],
        "Tasks Completed: 3 (Failed: 0, Cancelled 0), Skipped: 1"
    );
}

/// Runs `corpus` with `--pipelines` pointing at a copy of `library/FILE`, detached; removes
/// the copy; recovers the run; returns its report.
fn recovered_after_the_directory_went(library_file: &str, corpus: &str) -> Value {
    let scratch = tempfile::tempdir().expect("scratch dir");
    let root = support::root();
    // The directory is copied so that it can go away before recovery.
    let library = scratch.path().join("library");
    std::fs::create_dir_all(&library).expect("library dir");
    std::fs::copy(
        root.join("tests/tekton/library").join(library_file),
        library.join(library_file),
    )
    .expect("copy");
    let file = root.join("tests/tekton").join(corpus);
    let data = scratch.path().join("data");
    let ran = support::run_in(
        &data,
        &[
            "run",
            &file.to_string_lossy(),
            "--pipelines",
            &library.to_string_lossy(),
            "--detach",
        ],
        &[],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    std::fs::remove_dir_all(&library).expect("library removed");
    let recovered = support::run_in(
        &data,
        &[
            "runs",
            "recover",
            "--recover-timeout",
            "0s",
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(recovered.code, 0, "{}", recovered.stderr);
    recovered.json()
}

fn task_of(report: &Value, name: &str) -> Value {
    report["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["name"] == name))
        .cloned()
        .unwrap_or_default()
}

/// A run of a Pipeline from `--pipelines` is recovered from the file the store kept.
#[test]
fn a_run_of_a_pipeline_from_a_directory_is_recovered_from_what_the_store_kept() {
    let report =
        recovered_after_the_directory_went("pipelines.yaml", "04-pipelineref-from-directory.yaml");
    assert_eq!(report["run"]["status"], "Succeeded", "{report:#}");
    assert_eq!(
        task_of(&report, "test")["results"]["message"],
        "testing app-darwin",
        "{report:#}"
    );
}

/// A run whose `taskRef` names a Task in a `--pipelines` file is recovered from the file
/// the store kept: the Task's steps run again with the directory gone.
#[test]
fn a_run_of_a_task_from_a_directory_is_recovered_from_what_the_store_kept() {
    let report = recovered_after_the_directory_went("tasks.yaml", "23-taskref-from-directory.yaml");
    assert_eq!(report["run"]["status"], "Succeeded", "{report:#}");
    assert_eq!(
        task_of(&report, "package")["results"]["message"],
        "packaged app.tar",
        "{report:#}"
    );
}

/// `weft validate` refuses a resolver that fetches with exit code 2, one
/// `file:line:column` line per problem naming its document and field, and the way to make
/// the file work without fetching; the hub and cluster resolvers validate.
#[test]
fn fetching_resolvers_are_refused_by_validate_saying_how_to_do_without() {
    let file = "tests/tekton/36-bad-pipelineref-git-resolver.yaml";
    let ran = support::run(&["validate", file]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains(&format!(
            "{file}:21:15: error[unsupported-field]: document 2 (PipelineRun git-clone-demo-pr): spec.pipelineRef.resolver: the `git` resolver is not supported: weft does not fetch git repositories"
        )),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("clone the repository"),
        "{}",
        ran.stderr
    );
    let file = "tests/tekton/35-bad-remote-resolvers.yaml";
    let ran = support::run(&["validate", file]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    for (at, field, message) in [
        (
            "35:19",
            "spec.tasks[0].taskRef.resolver",
            "the `git` resolver is not supported",
        ),
        (
            "42:19",
            "spec.tasks[1].taskRef.resolver",
            "the `http` resolver is not supported",
        ),
        (
            "47:19",
            "spec.tasks[2].taskRef.resolver",
            "the `bundles` resolver is not supported",
        ),
    ] {
        let line = format!(
            "{file}:{at}: error[unsupported-field]: document 2 (Pipeline remote): {field}: {message}"
        );
        assert!(
            ran.stderr.contains(&line),
            "no `{line}` in:\n{}",
            ran.stderr
        );
    }
    for file in [
        "tests/tekton/32-pipelineref-cluster-resolver.yaml",
        "tests/tekton/34-taskref-hub-resolver.yaml",
    ] {
        let ran = support::run(&["validate", file]);
        assert_eq!(ran.code, 0, "{file}: {}", ran.stderr);
    }
}
