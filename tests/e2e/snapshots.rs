//! Workspace snapshots: `produce` writes a file into the workspace, the engine is killed
//! before `consume` (which needs the file) starts, the workspace directory is wiped (a new
//! machine), and `weft runs recover` restores the snapshot so `consume` succeeds. Once with
//! the run store as the target, once with a bucket directory (and a control run whose
//! bucket is emptied too, which must fail), and once with a cap no snapshot fits under.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Ran, pipelines, run_in};

const PIPELINE: &str = "snapshots-resume.yaml";
const FILE: &str = "out/artifact.txt";
const CONTENT: &str = "built-abc123";

fn in_dir(data: &Path, args: &[&str], fault: Option<&str>) -> Ran {
    let env: Vec<_> = fault
        .map(|fault| ("WEFT_FAULT", fault))
        .into_iter()
        .collect();
    run_in(data, args, &env)
}

fn workspace(data: &Path, run: &str) -> PathBuf {
    data.join("runs").join(run).join("workspaces/shared")
}

/// Runs the pipeline with `extra` flags and kills the engine as `consume` is about to
/// start (the second task start): `produce` has finished and been snapshotted.
fn run_and_crash(data: &Path, run: &str, extra: &[&str]) {
    let file = pipelines().join(PIPELINE);
    let file = file.to_string_lossy();
    let mut args = vec!["run", file.as_ref(), "--name", run];
    args.extend_from_slice(extra);
    let ran = in_dir(data, &args, Some("task-start-before:2"));
    assert_ne!(ran.code, 0, "the engine should have been killed: {ran:?}");
    assert!(ran.stderr.contains("fault point reached"), "{}", ran.stderr);
    let written = workspace(data, run).join(FILE);
    assert_eq!(
        std::fs::read_to_string(&written).ok().as_deref(),
        Some(CONTENT),
        "produce wrote its file"
    );
}

/// Wipes the run's workspace directory, as if the run moved to a new machine.
fn wipe(data: &Path, run: &str) {
    std::fs::remove_dir_all(workspace(data, run)).expect("wipe the workspace");
}

fn recover(data: &Path) -> Ran {
    in_dir(data, &["runs", "recover", "--recover-timeout", "0s"], None)
}

fn show(data: &Path, run: &str) -> Value {
    let ran = in_dir(data, &["runs", "show", run, "--output", "json"], None);
    assert_eq!(ran.code, 0, "runs show: {}", ran.stderr);
    ran.json()
}

/// `(outcome, message)` of the last stored attempt of `task`.
fn attempt(shown: &Value, task: &str) -> (String, String) {
    let a = shown["attempts"]
        .as_array()
        .and_then(|a| a.iter().rev().find(|a| a["task"] == task))
        .unwrap_or_else(|| panic!("no attempt of `{task}` in {shown:#}"));
    (
        a["outcome"].as_str().unwrap_or_default().to_string(),
        a["message"].as_str().unwrap_or_default().to_string(),
    )
}

fn events<'a>(shown: &'a Value, kind: &str) -> Vec<&'a Value> {
    shown["snapshotEvents"]
        .as_array()
        .map(|e| e.iter().filter(|e| e["kind"] == kind).collect())
        .unwrap_or_default()
}

#[test]
fn a_wiped_workspace_is_restored_from_the_run_store() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    run_and_crash(data, "snap-db", &[]);

    // The snapshot taken after `produce` is in the store.
    let shown = show(data, "snap-db");
    let stored = shown["snapshots"].as_array().cloned().unwrap_or_default();
    assert_eq!(stored.len(), 1, "{shown:#}");
    assert_eq!(stored[0]["task"], "produce");
    assert_eq!(stored[0]["workspace"], "shared");
    assert!(stored[0]["size"].as_u64().unwrap_or(0) > 0, "{shown:#}");
    assert_eq!(events(&shown, "snapshot-taken").len(), 1, "{shown:#}");

    wipe(data, "snap-db");
    let recovered = recover(data);
    assert_eq!(
        recovered.code, 0,
        "recover: {}\n{}",
        recovered.stdout, recovered.stderr
    );
    assert_eq!(
        std::fs::read_to_string(workspace(data, "snap-db").join(FILE))
            .ok()
            .as_deref(),
        Some(CONTENT)
    );
    let shown = show(data, "snap-db");
    assert_eq!(shown["status"], "Succeeded", "{shown:#}");
    assert_eq!(attempt(&shown, "consume").0, "Succeeded", "{shown:#}");
    let restored = events(&shown, "snapshot-restored");
    assert_eq!(restored.len(), 1, "{shown:#}");
    assert_eq!(restored[0]["task"], "produce");
    assert_eq!(restored[0]["workspace"], "shared");
    // `consume` had the workspace mounted writable: a snapshot after it too.
    let text = in_dir(data, &["runs", "show", "snap-db"], None);
    assert!(
        text.stdout.contains("snapshot-restored") && text.stdout.contains("snapshot-taken"),
        "{}",
        text.stdout
    );
}

fn objects(bucket: &Path, run: &str) -> Vec<String> {
    let dir = bucket.join(run).join("shared");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_bucket_directory_restores_and_without_it_the_run_fails() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path().join("data");
    let bucket = scratch.path().join("bucket");
    let target = format!("--workspace-snapshots={}", bucket.display());
    let flags = [target.as_str(), "--snapshot-keep", "1"];
    run_and_crash(&data, "snap-bucket", &flags);
    run_and_crash(&data, "snap-control", &flags);
    for run in ["snap-bucket", "snap-control"] {
        let names = objects(&bucket, run);
        assert_eq!(names.len(), 1, "{run}: {names:?}");
        assert!(names[0].ends_with("-produce.tar.gz"), "{names:?}");
        wipe(&data, run);
    }
    // The control run loses its bucket objects too: nothing can bring the file back.
    std::fs::remove_dir_all(bucket.join("snap-control")).expect("empty the control's bucket");

    let recovered = recover(&data);
    assert_eq!(
        recovered.code, 1,
        "the control run fails: {}",
        recovered.stdout
    );

    let shown = show(&data, "snap-bucket");
    assert_eq!(shown["status"], "Succeeded", "{shown:#}");
    assert_eq!(attempt(&shown, "consume").0, "Succeeded");
    assert_eq!(
        std::fs::read_to_string(workspace(&data, "snap-bucket").join(FILE))
            .ok()
            .as_deref(),
        Some(CONTENT)
    );
    assert_eq!(events(&shown, "snapshot-restored").len(), 1, "{shown:#}");
    assert!(
        shown["snapshots"].as_array().is_some_and(Vec::is_empty),
        "nothing in the run store: {shown:#}"
    );
    // Retention 1: only the snapshot after `consume` is left.
    let names = objects(&bucket, "snap-bucket");
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with("-consume.tar.gz"), "{names:?}");

    let control = show(&data, "snap-control");
    assert_eq!(control["status"], "Failed", "{control:#}");
    let (outcome, message) = attempt(&control, "consume");
    assert_eq!(outcome, "Failed", "{control:#}");
    assert!(message.contains("requireFile"), "{message}");
    assert!(events(&control, "snapshot-restored").is_empty());
}

#[test]
fn a_snapshot_over_the_cap_is_skipped_and_recovery_leaves_the_workspace_alone() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path();
    run_and_crash(data, "snap-cap", &["--snapshot-max-bytes", "16"]);

    let shown = show(data, "snap-cap");
    let skipped = events(&shown, "snapshot-skipped");
    assert_eq!(skipped.len(), 1, "{shown:#}");
    assert!(
        skipped[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cap")),
        "{shown:#}"
    );
    // A marker, not an archive, is what the store keeps.
    let stored = shown["snapshots"].as_array().cloned().unwrap_or_default();
    assert_eq!(stored.len(), 1, "{shown:#}");
    assert_eq!(stored[0]["marker"], true, "{shown:#}");
    let logs = in_dir(data, &["runs", "logs", "snap-cap", "produce"], None);
    assert!(
        logs.stdout.contains("was not snapshotted"),
        "the task's log says so: {}",
        logs.stdout
    );

    // Not wiped: the workspace stays as it is (an older snapshot would roll it back).
    let recovered = recover(data);
    assert_eq!(
        recovered.code, 0,
        "{}\n{}",
        recovered.stdout, recovered.stderr
    );
    let shown = show(data, "snap-cap");
    assert_eq!(shown["status"], "Succeeded", "{shown:#}");
    assert_eq!(events(&shown, "snapshot-unavailable").len(), 1, "{shown:#}");
    assert!(events(&shown, "snapshot-restored").is_empty(), "{shown:#}");
}

#[test]
fn snapshot_flags_are_checked() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = pipelines().join("all-succeed.yaml");
    let file = file.to_string_lossy();
    for (flags, why) in [
        (&["--snapshot-keep", "2"][..], "needs workspace snapshots"),
        (
            &["--workspace-snapshots=s3://bucket/x"][..],
            "s3://bucket/x",
        ),
        (
            &["--workspace-snapshots", "--snapshot-max-bytes", "1GiB"][..],
            "at most",
        ),
    ] {
        let mut args = vec!["run", file.as_ref()];
        args.extend_from_slice(flags);
        let ran = in_dir(scratch.path(), &args, None);
        assert_eq!(ran.code, 2, "{flags:?}: {ran:?}");
        assert!(ran.stderr.contains(why), "{flags:?}: {}", ran.stderr);
    }
}
