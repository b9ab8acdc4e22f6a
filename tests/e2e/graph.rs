//! `weft runs show RUN --graph` and `--output dot`: a run's DAG drawn from the store, each
//! task with its outcome, skip reason and what it waited for.

use crate::support::{pipelines, run_in};

#[test]
fn a_runs_graph_is_drawn_as_text_and_as_dot() {
    let data = tempfile::tempdir().expect("tempdir");
    let file = pipelines().join("graph-halted-branch.yaml");
    let file = file.to_string_lossy();
    let ran = run_in(data.path(), &["run", &file, "--name", "g1"], &[]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);

    let text = run_in(data.path(), &["runs", "show", "g1", "--graph"], &[]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    let lines: Vec<&str> = text.stdout.lines().map(str::trim_end).collect();
    assert_eq!(
        lines,
        [
            "Run g1 of graphy: Failed",
            "stage 1   ✔ clone   Succeeded",
            "stage 2   ✘ build   Failed exit 2  <- clone",
            "          ✔ test-0  Succeeded  <- clone",
            "          ✔ test-1  Succeeded  <- clone",
            "stage 3   ○ deploy  Skipped (RunStopping)  <- build",
            "finally   ✔ notify  Succeeded",
        ],
        "{}",
        text.stdout
    );

    let dot = run_in(data.path(), &["runs", "show", "g1", "--output", "dot"], &[]);
    assert_eq!(dot.code, 0, "{}", dot.stderr);
    for expected in [
        "digraph \"g1\" {",
        "\"build\" [label=\"build\\nFailed\", fillcolor=salmon, tooltip=\"Failed exit 2\"];",
        "\"deploy\" [label=\"deploy\\nSkipped\", fillcolor=lightgrey, tooltip=\"Skipped (RunStopping)\"];",
        "subgraph cluster_finally {",
        "\"clone\" -> \"test-1\";",
        "\"build\" -> \"deploy\";",
    ] {
        assert!(
            dot.stdout.contains(expected),
            "{expected:?} not in\n{}",
            dot.stdout
        );
    }

    let missing = run_in(data.path(), &["runs", "show", "nope", "--graph"], &[]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
}
