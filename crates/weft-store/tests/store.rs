//! Behaviour of the store: round-trips, invariants, fencing, corruption, group commit.
//! One table of cases (`both_backends!` at the end), each run against SQLite and
//! PostgreSQL; a few cases only make sense for one backend (a SQLite file's corruption,
//! PostgreSQL's connections).

#![allow(clippy::unwrap_used)]

mod backends;

use backends::Db;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_store::{
    AttemptId, AttemptRecord, BatchConfig, BatchingStore, Lease, NewEvent, NewLogLine, NewRun,
    NewSignal, OutboxKey, Outcome, PgOptions, PgStore, Recovery, ReportStatus, RunPhase, RunStore,
    SqliteStore, StoreError, StoreLimits, TRUNCATED_STREAM, TaskPhase, Timestamp, VoteRecord,
    WaitRecord, WriteAck, WriteOp,
};

const T0: Timestamp = Timestamp(1_700_000_000_000);

fn new_run(id: &str) -> NewRun {
    NewRun {
        id: id.to_string(),
        name: format!("{id}-name"),
        pipeline_name: "build".to_string(),
        pipeline_source: "apiVersion: tekton.dev/v1\nkind: Pipeline\n".to_string(),
        params_json: r#"{"repo":"x","token":"***"}"#.to_string(),
        options_json: r#"{"parallelism":4}"#.to_string(),
        created_at: T0,
        recovery: Recovery::Resume,
    }
}

fn file_store(dir: &tempfile::TempDir, limits: StoreLimits) -> SqliteStore {
    SqliteStore::open(dir.path().join("weft.db"), limits).unwrap()
}

fn attempt(run: &str, task: &str, n: u32, phase: TaskPhase) -> AttemptRecord {
    AttemptRecord::new(AttemptId::new(run, task, n), phase, T0)
}

fn terminal(run: &str, task: &str, n: u32, outcome: Outcome) -> AttemptRecord {
    AttemptRecord {
        outcome: Some(outcome),
        reason: outcome.as_str().to_string(),
        exit_code: Some(3),
        results_json: r#"{"digest":"abc"}"#.to_string(),
        message: "done".to_string(),
        started_at: Some(T0),
        ended_at: Some(T0.plus(Duration::from_secs(2))),
        ..attempt(run, task, n, TaskPhase::Terminal)
    }
}

fn put(lease: &Lease, record: AttemptRecord) -> WriteOp {
    WriteOp::Attempt {
        lease: lease.clone(),
        record,
    }
}

fn key(run: &str) -> OutboxKey {
    OutboxKey {
        reporter: "github".into(),
        run: run.into(),
        context: "weft/build".into(),
    }
}

/// Every kind of write for `lease`'s run, for fencing tests.
fn every_op(lease: &Lease) -> Vec<WriteOp> {
    let run = lease.run.clone();
    vec![
        WriteOp::RunPhase {
            lease: lease.clone(),
            phase: RunPhase::Stopping,
        },
        put(lease, attempt(&run, "a", 0, TaskPhase::Queued)),
        WriteOp::Event {
            lease: lease.clone(),
            event: NewEvent {
                at: T0,
                kind: "transition".into(),
                task: Some("a".into()),
                attempt: Some(0),
                data_json: "{}".into(),
            },
        },
        WriteOp::Logs {
            lease: lease.clone(),
            id: AttemptId::new(&run, "a", 0),
            lines: vec![line("hello")],
        },
        WriteOp::Checkpoint {
            lease: lease.clone(),
            task: "a".into(),
            key: "k".into(),
            value: b"v".to_vec(),
            at: T0,
        },
        WriteOp::OutboxDesire {
            lease: lease.clone(),
            key: key(&run),
            state: ReportStatus::Pending,
            description: "queued".into(),
            at: T0,
        },
        WriteOp::Snapshot {
            lease: lease.clone(),
            task: "a".into(),
            workspace: "src".into(),
            data: vec![1, 2, 3],
            at: T0,
            keep: 3,
        },
        WriteOp::OpenWait {
            lease: lease.clone(),
            wait: wait(&run, "w", 0, T0, None),
        },
        WriteOp::CloseWait {
            lease: lease.clone(),
            id: AttemptId::new(&run, "w", 0),
            outcome: "Approved".into(),
            at: T0,
        },
        finish(lease, "Succeeded"),
    ]
}

fn wait(
    run: &str,
    task: &str,
    n: u32,
    since: Timestamp,
    deadline: Option<Timestamp>,
) -> WaitRecord {
    WaitRecord {
        id: AttemptId::new(run, task, n),
        kind: "approval".into(),
        request_json: r#"{"approvers":["alice","bob"],"required":2}"#.into(),
        since,
        deadline,
        closed_at: None,
        outcome: None,
    }
}

fn vote(run: &str, task: &str, identity: &str, approve: bool, at: Timestamp) -> VoteRecord {
    VoteRecord {
        id: AttemptId::new(run, task, 0),
        identity: identity.into(),
        approve,
        message: format!("{identity} says so"),
        defer_until: None,
        at,
    }
}

fn line(text: &str) -> NewLogLine {
    NewLogLine {
        at: T0,
        stream: "stdout".into(),
        text: text.into(),
    }
}

fn run_round_trips_and_lists(db: &Db) {
    let store = db.store();
    let lease = store.create_run(&new_run("r1"), "engine-a", T0).unwrap();
    assert_eq!(lease.token, 1);
    let mut second = new_run("r2");
    second.created_at = T0.plus(Duration::from_secs(1));
    store.create_run(&second, "engine-a", T0).unwrap();
    assert!(matches!(
        store.create_run(&new_run("r1"), "engine-a", T0),
        Err(StoreError::AlreadyExists { .. })
    ));

    let got = store.run("r1").unwrap().unwrap();
    assert_eq!(got.submitted, new_run("r1"));
    assert_eq!(got.phase, RunPhase::Running);
    assert_eq!(got.lease_owner.as_deref(), Some("engine-a"));
    assert_eq!(got.heartbeat_at, Some(T0));
    assert!(store.run("nope").unwrap().is_none());

    store
        .write(WriteOp::RunPhase {
            lease: lease.clone(),
            phase: RunPhase::RunningFinally,
        })
        .unwrap();
    assert_eq!(
        store.run("r1").unwrap().unwrap().phase,
        RunPhase::RunningFinally
    );
    let end = T0.plus(Duration::from_secs(90));
    store
        .write(WriteOp::FinishRun {
            lease: lease.clone(),
            status: "Failed".into(),
            reason: "Failed".into(),
            report_json: r#"{"run":{}}"#.into(),
            finished_at: end,
        })
        .unwrap();
    let got = store.run("r1").unwrap().unwrap();
    assert_eq!(got.phase, RunPhase::Finished);
    assert_eq!(got.status.as_deref(), Some("Failed"));
    assert_eq!(got.report_json.as_deref(), Some(r#"{"run":{}}"#));
    assert_eq!(got.finished_at, Some(end));

    let list = store.list_runs(10).unwrap();
    assert_eq!(
        list.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r2", "r1"]
    );
    assert_eq!(list[1].duration(), Some(Duration::from_secs(90)));
    assert_eq!(list[0].duration(), None);
    assert_eq!(store.list_runs(1).unwrap().len(), 1);
}

fn finished_run_is_immutable(db: &Db) {
    let store = db.store();
    let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
    let finish = finish(&lease, "Succeeded");
    store.write(finish.clone()).unwrap();
    for op in [
        finish,
        WriteOp::RunPhase {
            lease: lease.clone(),
            phase: RunPhase::Running,
        },
        put(&lease, attempt("r", "a", 0, TaskPhase::Running)),
    ] {
        let err = store.write(op).unwrap_err();
        assert!(matches!(err, StoreError::RunFinished { .. }), "{err}");
    }
    assert_eq!(
        store.run("r").unwrap().unwrap().status.as_deref(),
        Some("Succeeded")
    );
}

fn attempts_round_trip_through_their_phases(db: &Db) {
    let store = db.store();
    let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
    // (phase written, started_at written, expected started_at afterwards)
    let steps = [
        (TaskPhase::Pending, None, None),
        (TaskPhase::Queued, None, None),
        (TaskPhase::Running, Some(T0), Some(T0)),
        (TaskPhase::Cancelling, None, Some(T0)),
    ];
    for (phase, started, expect_started) in steps {
        let mut rec = attempt("r", "build", 0, phase);
        rec.started_at = started;
        store.write(put(&lease, rec)).unwrap();
        let got = store
            .attempt(&AttemptId::new("r", "build", 0))
            .unwrap()
            .unwrap();
        assert_eq!(got.phase, phase);
        assert_eq!(got.started_at, expect_started, "{phase}");
    }
    let end = terminal("r", "build", 0, Outcome::Failed);
    store.write(put(&lease, end.clone())).unwrap();
    assert_eq!(
        store.attempt(&AttemptId::new("r", "build", 0)).unwrap(),
        Some(end.clone())
    );
    // A retry is a new attempt.
    store
        .write(put(&lease, terminal("r", "build", 1, Outcome::Succeeded)))
        .unwrap();
    store
        .write(put(&lease, attempt("r", "test", 0, TaskPhase::Queued)))
        .unwrap();
    let all = store.attempts("r").unwrap();
    let ids: Vec<String> = all.iter().map(|a| a.id.to_string()).collect();
    assert_eq!(ids, ["r/build/0", "r/build/1", "r/test/0"]);
    assert_eq!(all[0], end);
}

fn terminal_attempts_are_immutable(db: &Db) {
    // Every outcome, and every kind of later update: all rejected, nothing overwritten.
    let store = db.store();
    for outcome in Outcome::ALL.iter().copied() {
        let run = format!("r-{outcome}");
        let run = run.as_str();
        let lease = store.create_run(&new_run(run), "e", T0).unwrap();
        let end = terminal(run, "t", 0, outcome);
        store.write(put(&lease, end.clone())).unwrap();
        let late = [
            attempt(run, "t", 0, TaskPhase::Running),
            attempt(run, "t", 0, TaskPhase::Cancelling),
            terminal(run, "t", 0, Outcome::Succeeded),
            terminal(run, "t", 0, Outcome::Cancelled),
        ];
        for rec in late {
            let err = store.write(put(&lease, rec)).unwrap_err();
            assert!(err.is_terminal_attempt(), "{outcome}: {err}");
            assert!(err.is_rejection());
            assert!(err.to_string().contains(&format!("{run}/t/0")), "{err}");
        }
        assert_eq!(
            store.attempt(&AttemptId::new(run, "t", 0)).unwrap(),
            Some(end)
        );
    }
}

fn a_rejection_does_not_spoil_its_batch(db: &Db) {
    let store = db.store();
    let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
    store
        .write(put(&lease, terminal("r", "t", 0, Outcome::Succeeded)))
        .unwrap();
    let results = store
        .apply(vec![
            put(&lease, attempt("r", "a", 0, TaskPhase::Running)),
            put(&lease, attempt("r", "t", 0, TaskPhase::Running)),
            put(&lease, attempt("r", "b", 0, TaskPhase::Running)),
        ])
        .unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(matches!(
        results[1],
        Err(StoreError::TerminalAttempt { .. })
    ));
    assert_eq!(store.attempts("r").unwrap().len(), 3);
}

/// A batch reads a run's lease and finished mark once: a write under another lease in the
/// same batch, and a write after the batch finished the run, are still refused.
fn one_batch_checks_every_write_it_holds(db: &Db) {
    let store = db.store();
    let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
    let forged = Lease {
        token: lease.token + 1,
        ..lease.clone()
    };
    let results = store
        .apply(vec![
            put(&lease, attempt("r", "a", 0, TaskPhase::Running)),
            put(&forged, attempt("r", "b", 0, TaskPhase::Running)),
            put(&lease, attempt("r", "c", 0, TaskPhase::Running)),
            finish(&lease, "Succeeded"),
            put(&lease, attempt("r", "d", 0, TaskPhase::Running)),
        ])
        .unwrap();
    assert!(results[0].is_ok() && results[2].is_ok() && results[3].is_ok());
    assert!(
        matches!(&results[1], Err(err) if err.is_stale_lease()),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(results[4], Err(StoreError::RunFinished { .. })),
        "{:?}",
        results[4]
    );
    let ids: Vec<String> = store
        .attempts("r")
        .unwrap()
        .iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(ids, ["r/a/0", "r/c/0"]);
}

fn stale_lease_writes_are_rejected(db: &Db) {
    let store = db.store();
    let old = store.create_run(&new_run("r"), "engine-a", T0).unwrap();
    // Still fresh: another engine cannot take it.
    let later = T0.plus(Duration::from_secs(10));
    let err = store
        .claim("r", "engine-b", later, Duration::from_secs(30))
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseHeld { ref owner, .. } if owner == "engine-a"));
    // Stale: engine-b takes it over, with a higher token.
    let much_later = T0.plus(Duration::from_secs(31));
    let new = store
        .claim("r", "engine-b", much_later, Duration::from_secs(30))
        .unwrap();
    assert_eq!(new.token, 2);

    for op in every_op(&old) {
        let what = op.describe();
        let err = store.write(op).unwrap_err();
        assert!(err.is_stale_lease(), "{what}: {err}");
    }
    // A forged lease with the right token but the wrong owner is stale too.
    let forged = Lease {
        owner: "engine-a".into(),
        ..new.clone()
    };
    assert!(
        store
            .write(every_op(&forged).remove(0))
            .unwrap_err()
            .is_stale_lease()
    );
    assert!(
        store
            .heartbeat(&old, much_later)
            .unwrap_err()
            .is_stale_lease()
    );
    // Nothing the old owner wrote landed.
    assert!(store.attempts("r").unwrap().is_empty());
    assert!(store.events("r", 0, 10).unwrap().is_empty());
    // The new owner writes everything.
    for op in every_op(&new) {
        let what = op.describe();
        store.write(op).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    // Re-claiming by the same owner also bumps the token.
    let again = store
        .claim("r", "engine-b", much_later, Duration::from_secs(30))
        .unwrap();
    assert_eq!(again.token, 3);
    assert!(
        store
            .heartbeat(&new, much_later)
            .unwrap_err()
            .is_stale_lease()
    );
    store.heartbeat(&again, much_later).unwrap();
    assert!(matches!(
        store.claim("missing", "x", T0, Duration::ZERO),
        Err(StoreError::NotFound { .. })
    ));
}

fn stale_runs_by_heartbeat_age(db: &Db) {
    let store = db.store();
    let timeout = weft_store::DEFAULT_RECOVERY_TIMEOUT;
    // (run, last heartbeat offset in s, finished, expected stale at T0+60s)
    let table = [
        ("fresh", 50, false, false),
        ("edge", 30, false, false),
        ("old", 29, false, true),
        ("older", 0, false, true),
        ("done", 0, true, false),
    ];
    for (id, hb, finished, _) in table {
        let lease = store.create_run(&new_run(id), "e", T0).unwrap();
        store
            .heartbeat(&lease, T0.plus(Duration::from_secs(hb)))
            .unwrap();
        if finished {
            store.write(finish(&lease, "Succeeded")).unwrap();
        }
    }
    let now = T0.plus(Duration::from_secs(60));
    let stale = store.stale_runs(now, timeout).unwrap();
    let ids: Vec<&str> = stale.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["older", "old"], "oldest heartbeat first");
    for (id, _, _, expect) in table {
        assert_eq!(ids.contains(&id), expect, "{id}");
    }
    assert_eq!(stale[0].recovery, Recovery::Resume);
    assert_eq!(stale[0].owner.as_deref(), Some("e"));
    assert_eq!(stale[0].token, 1);
}

fn events_are_sequenced_per_run(db: &Db) {
    let store = db.store();
    let a = store.create_run(&new_run("a"), "e", T0).unwrap();
    let b = store.create_run(&new_run("b"), "e", T0).unwrap();
    let ev = |lease: &Lease, kind: &str| WriteOp::Event {
        lease: lease.clone(),
        event: NewEvent {
            at: T0,
            kind: kind.into(),
            task: None,
            attempt: None,
            data_json: format!(r#"{{"k":"{kind}"}}"#),
        },
    };
    let acks = store
        .apply(vec![
            ev(&a, "one"),
            ev(&b, "x"),
            ev(&a, "two"),
            ev(&a, "three"),
        ])
        .unwrap();
    let acks: Vec<WriteAck> = acks.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        acks,
        [
            WriteAck::Event(1),
            WriteAck::Event(1),
            WriteAck::Event(2),
            WriteAck::Event(3)
        ]
    );
    let since = store.events("a", 1, 100).unwrap();
    assert_eq!(
        since
            .iter()
            .map(|e| (e.seq, e.event.kind.as_str()))
            .collect::<Vec<_>>(),
        [(2, "two"), (3, "three")]
    );
    assert_eq!(since[0].event.data_json, r#"{"k":"two"}"#);
    assert_eq!(store.events("a", 0, 1).unwrap().len(), 1);
}

fn logs_are_capped_per_task_with_one_marker(db: &Db) {
    let limits = StoreLimits {
        log_bytes_per_task: 10,
        ..StoreLimits::default()
    };
    let store = db.open(limits);
    let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
    let logs = |task: &str, n: u32, lines: &[&str]| WriteOp::Logs {
        lease: lease.clone(),
        id: AttemptId::new("r", task, n),
        lines: lines.iter().map(|l| line(l)).collect(),
    };
    let ack = store.write(logs("a", 0, &["1234", "5678"])).unwrap();
    assert_eq!(
        ack,
        WriteAck::Logs {
            kept: 2,
            dropped: 0
        }
    );
    // The cap is per task across attempts: the retry hits it.
    let ack = store.write(logs("a", 1, &["90", "abc", "def"])).unwrap();
    assert_eq!(
        ack,
        WriteAck::Logs {
            kept: 1,
            dropped: 2
        }
    );
    let ack = store.write(logs("a", 1, &["more"])).unwrap();
    assert_eq!(
        ack,
        WriteAck::Logs {
            kept: 0,
            dropped: 1
        }
    );
    // Another task has its own budget.
    store.write(logs("b", 0, &["0123456789"])).unwrap();

    let a = store.logs("r", Some("a"), 0, 100).unwrap();
    let texts: Vec<&str> = a.iter().map(|l| l.line.text.as_str()).collect();
    assert_eq!(texts.len(), 4);
    assert_eq!(&texts[..3], ["1234", "5678", "90"]);
    assert_eq!(a[3].line.stream, TRUNCATED_STREAM);
    assert!(texts[3].starts_with("log truncated"), "{}", texts[3]);
    assert_eq!(a[2].id, AttemptId::new("r", "a", 1));

    // Polling with the cursor (as `--follow` does).
    let all = store.logs("r", None, 0, 100).unwrap();
    assert_eq!(all.len(), 5);
    let tail = store.logs("r", None, all[2].cursor, 100).unwrap();
    assert_eq!(tail.len(), 2);
    assert!(tail.iter().all(|l| l.cursor > all[2].cursor));
    assert_eq!(store.logs("r", None, all[4].cursor, 100).unwrap(), []);
}

fn checkpoints_round_trip_per_run_task_key(db: &Db) {
    let store = db.store();
    let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
    let cp = |task: &str, key: &str, value: &[u8]| WriteOp::Checkpoint {
        lease: lease.clone(),
        task: task.into(),
        key: key.into(),
        value: value.to_vec(),
        at: T0,
    };
    store
        .apply(vec![
            cp("a", "k", b"1"),
            cp("a", "k2", b""),
            cp("b", "k", b"3"),
        ])
        .unwrap();
    store.write(cp("a", "k", b"overwritten")).unwrap();
    let table: [(&str, &str, Option<&[u8]>); 5] = [
        ("a", "k", Some(b"overwritten")),
        ("a", "k2", Some(b"")),
        ("b", "k", Some(b"3")),
        ("b", "k2", None),
        ("c", "k", None),
    ];
    for (task, k, expect) in table {
        assert_eq!(
            store.checkpoint("r", task, k).unwrap().as_deref(),
            expect,
            "{task}/{k}"
        );
    }
}

fn outbox_never_regresses(db: &Db) {
    use ReportStatus::*;
    // (desired so far, then desired update, expected ack, expected desired afterwards)
    let table = [
        (vec![Pending], Running, WriteAck::Done, Running),
        (vec![Running], Pending, WriteAck::Unchanged, Running),
        (vec![Running], Running, WriteAck::Done, Running),
        (vec![Running], Succeeded, WriteAck::Done, Succeeded),
        (vec![Pending, Failed], Running, WriteAck::Unchanged, Failed),
        (vec![Succeeded], Failed, WriteAck::Unchanged, Succeeded),
        (vec![Cancelled], Cancelled, WriteAck::Unchanged, Cancelled),
    ];
    let store = db.store();
    for (i, (history, next, ack, expect)) in table.into_iter().enumerate() {
        let run = format!("row{i}");
        let lease = store.create_run(&new_run(&run), "e", T0).unwrap();
        let desire = |state| WriteOp::OutboxDesire {
            lease: lease.clone(),
            key: key(&run),
            state,
            description: format!("{state:?}"),
            at: T0,
        };
        for state in history.iter().copied() {
            store.write(desire(state)).unwrap();
        }
        assert_eq!(
            store.write(desire(next)).unwrap(),
            ack,
            "{history:?} -> {next:?}"
        );
        assert_eq!(store.outbox(&run).unwrap()[0].desired, expect);
    }

    // Delivery: failures count attempts, delivered states never regress. (The rows above
    // are due too: only this run's count.)
    let due = |at: Timestamp| {
        store
            .due_outbox(at, 100)
            .unwrap()
            .into_iter()
            .filter(|row| row.key.run == "r")
            .collect::<Vec<_>>()
    };
    let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
    let op_desire = |state| WriteOp::OutboxDesire {
        lease: lease.clone(),
        key: key("r"),
        state,
        description: "d".into(),
        at: T0,
    };
    let delivered = |state| WriteOp::OutboxDelivered {
        lease: lease.clone(),
        key: key("r"),
        state,
        at: T0,
    };
    assert!(matches!(
        store.write(delivered(Running)),
        Err(StoreError::NotFound { .. })
    ));
    store.write(op_desire(Running)).unwrap();
    assert_eq!(due(T0).len(), 1);
    store
        .write(WriteOp::OutboxFailed {
            lease: lease.clone(),
            key: key("r"),
            error: "429".into(),
            next_attempt_at: T0.plus(Duration::from_secs(5)),
            at: T0,
        })
        .unwrap();
    let row = &store.outbox("r").unwrap()[0];
    assert_eq!((row.attempts, row.last_error.as_str()), (1, "429"));
    assert!(due(T0).is_empty(), "backing off");
    assert_eq!(due(T0.plus(Duration::from_secs(5))).len(), 1);
    store.write(delivered(Running)).unwrap();
    assert!(due(T0.plus(Duration::from_secs(60))).is_empty());
    store.write(op_desire(Failed)).unwrap();
    assert_eq!(due(T0)[0].desired, Failed);
    store.write(delivered(Failed)).unwrap();
    assert_eq!(
        store.write(delivered(Running)).unwrap(),
        WriteAck::Unchanged
    );
    assert_eq!(
        store.write(delivered(Succeeded)).unwrap(),
        WriteAck::Unchanged
    );
    let row = &store.outbox("r").unwrap()[0];
    assert_eq!(row.delivered, Some(Failed));
    assert_eq!(row.attempts, 0);
    assert_eq!(row.next_attempt_at, None);
    assert!(due(T0.plus(Duration::from_secs(600))).is_empty());
    // Delivery continues after the run finished (the final status must get out).
    store.write(finish(&lease, "Failed")).unwrap();
    assert_eq!(store.write(delivered(Failed)).unwrap(), WriteAck::Unchanged);
}

fn snapshots_have_a_cap_and_retention(db: &Db) {
    let limits = StoreLimits {
        snapshot_max_bytes: 8,
        snapshots_per_run: 2,
        ..StoreLimits::default()
    };
    let store = db.open(limits);
    let a = store.create_run(&new_run("a"), "e", T0).unwrap();
    let b = store.create_run(&new_run("b"), "e", T0).unwrap();
    let snap_in =
        |lease: &Lease, workspace: &str, task: &str, data: &[u8], keep: u32| WriteOp::Snapshot {
            lease: lease.clone(),
            task: task.into(),
            workspace: workspace.into(),
            data: data.to_vec(),
            at: T0,
            keep,
        };
    // Asks for more than the store's limit: the limit (2) wins.
    let snap = |lease: &Lease, task: &str, data: &[u8]| snap_in(lease, "src", task, data, 5);
    let err = store.write(snap(&a, "t0", &[0; 9])).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooLarge {
                size: 9,
                limit: 8,
                ..
            }
        ),
        "{err}"
    );
    store.write(snap(&b, "only", b"b")).unwrap();
    for (i, task) in ["t1", "t2", "t3"].iter().enumerate() {
        let ack = store.write(snap(&a, task, &[i as u8; 8])).unwrap();
        assert!(matches!(ack, WriteAck::Snapshot(_)));
    }
    let kept = store.snapshots("a").unwrap();
    assert_eq!(
        kept.iter().map(|s| s.task.as_str()).collect::<Vec<_>>(),
        ["t2", "t3"]
    );
    assert!(kept.iter().all(|s| s.data.is_empty() && s.size == 8));
    let latest = store.latest_snapshot("a", "src").unwrap().unwrap();
    assert_eq!((latest.task.as_str(), latest.data), ("t3", vec![2; 8]));
    assert_eq!(
        store.snapshots("b").unwrap().len(),
        1,
        "retention is per run"
    );
    assert!(store.latest_snapshot("a", "other").unwrap().is_none());

    // Retention is per workspace: another workspace's snapshots never push these out, and
    // a write may keep fewer than the limit.
    store.write(snap_in(&a, "other", "o1", b"o1", 1)).unwrap();
    store.write(snap_in(&a, "other", "o2", b"o2", 1)).unwrap();
    store.write(snap(&a, "t4", b"t4")).unwrap();
    let kept = store.snapshots("a").unwrap();
    assert_eq!(
        kept.iter()
            .map(|s| format!("{}/{}", s.workspace, s.task))
            .collect::<Vec<_>>(),
        ["src/t3", "other/o2", "src/t4"]
    );
    let latest = store.latest_snapshot("a", "other").unwrap().unwrap();
    assert_eq!((latest.task.as_str(), latest.data), ("o2", b"o2".to_vec()));
}

fn reopen_keeps_everything_and_migrations_are_idempotent(db: &Db) {
    let lease;
    {
        let store = db.store();
        lease = store.create_run(&new_run("r"), "e", T0).unwrap();
        for op in every_op(&lease) {
            store.write(op).unwrap();
        }
    }
    for _ in 0..2 {
        let store = db.store();
        let run = store.run("r").unwrap().unwrap();
        assert_eq!(run.submitted, new_run("r"));
        assert_eq!(run.status.as_deref(), Some("Succeeded"));
        assert_eq!(store.attempts("r").unwrap().len(), 1);
        assert_eq!(store.events("r", 0, 10).unwrap().len(), 1);
        assert_eq!(store.logs("r", None, 0, 10).unwrap().len(), 1);
        assert_eq!(
            store.checkpoint("r", "a", "k").unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(store.outbox("r").unwrap().len(), 1);
        assert_eq!(store.snapshots("r").unwrap().len(), 1);
        // The old lease is still the current one after a restart.
        store.heartbeat(&lease, T0).unwrap();
    }
    let version = match db.backend {
        backends::Backend::Sqlite => SqliteStore::open(db.sqlite_path(), StoreLimits::default())
            .unwrap()
            .schema_version()
            .unwrap(),
        backends::Backend::Postgres => PgStore::open(
            &db.pg_url().unwrap(),
            StoreLimits::default(),
            PgOptions::default(),
        )
        .unwrap()
        .schema_version()
        .unwrap(),
    };
    assert_eq!(version, weft_store::SCHEMA_VERSION);
    weft_store::migrate::validate().unwrap();
}

#[test]
fn processes_opening_one_new_database_at_once_migrate_it_once() {
    // Each round: a fresh database opened by eight openers together (a `weft run` and a
    // `weft approve` starting at once did this, and the second applied V1 again).
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weft.db");
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open(&path, StoreLimits::default()).map(drop)
                })
            })
            .collect();
        for opener in openers {
            let opened = opener.join().unwrap();
            assert!(opened.is_ok(), "round {round}: {opened:?}");
        }
    }
}

#[test]
fn a_file_that_is_not_a_database_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("text.db", b"this is not a database, just some text that is long enough to pass the size check and then some more text".to_vec()),
        ("short.db", b"SQLite format 3\0tiny".to_vec()),
        ("header-only.db", {
            let mut v = b"SQLite format 3\0".to_vec();
            v.extend(std::iter::repeat_n(0xAB, 4096));
            v
        }),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let err = SqliteStore::open(&path, StoreLimits::default()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{name}: {err}");
        // Nothing was "repaired" behind our back.
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}");
    }
}

/// A process that closes its store but never drops it (`weft run` leaves its memory to
/// the kernel) still leaves a bounded WAL: closing checkpoints a WAL grown past SQLite's
/// own threshold, and the data is all there for the next process.
#[test]
fn closing_without_dropping_leaves_a_bounded_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.db");
    let wal = dir.path().join("weft.db-wal");
    let store = batching(Arc::new(
        SqliteStore::open(&path, StoreLimits::default()).unwrap(),
    ));
    let lease = store.create_run(&new_run("big"), "e", T0).unwrap();
    for i in 0..3_000 {
        let name = format!("task-{i}-{}", "x".repeat(2_000));
        store
            .enqueue(put(&lease, attempt("big", &name, 0, TaskPhase::Queued)))
            .unwrap();
    }
    store.close().unwrap();
    // A second close (the server's shutdown path may close twice) changes nothing.
    store.close().unwrap();
    let left = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert!(left < 1000 * 4096, "WAL left at {left} bytes");
    std::mem::forget(store);
    let reopened = SqliteStore::open(&path, StoreLimits::default()).unwrap();
    assert_eq!(reopened.attempts("big").unwrap().len(), 3_000);
}

#[test]
fn a_truncated_database_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.db");
    {
        let store = SqliteStore::open(&path, StoreLimits::default()).unwrap();
        let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
        let lines: Vec<NewLogLine> = (0..2000)
            .map(|i| line(&format!("line {i} {}", "x".repeat(100))))
            .collect();
        store
            .write(WriteOp::Logs {
                lease: lease.clone(),
                id: AttemptId::new("r", "a", 0),
                lines,
            })
            .unwrap();
    }
    let full = std::fs::metadata(&path).unwrap().len();
    assert!(full > 64 * 1024, "the database has several pages ({full})");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(full / 2).unwrap();
    drop(file);
    let err = SqliteStore::open(&path, StoreLimits::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("weft.db"), "{err}");
}

fn a_corrupt_row_is_an_error_not_a_panic(db: &Db) {
    {
        let store = db.store();
        let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
        store
            .write(put(&lease, attempt("r", "a", 0, TaskPhase::Running)))
            .unwrap();
    }
    db.exec("UPDATE attempts SET phase = 'Exploded'; UPDATE runs SET lease_token = -4")
        .unwrap();
    let store = db.store();
    let err = store.attempts("r").unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BadRow {
                table: "attempts",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Exploded"), "{err}");
    assert!(matches!(
        store.run("r").unwrap_err(),
        StoreError::BadRow { table: "runs", .. }
    ));
}

fn the_terminal_trigger_backs_up_the_store(db: &Db) {
    {
        let store = db.store();
        let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
        store
            .write(put(&lease, terminal("r", "a", 0, Outcome::Succeeded)))
            .unwrap();
        store.write(finish(&lease, "Succeeded")).unwrap();
    }
    for sql in [
        "UPDATE attempts SET outcome = 'Failed'",
        "UPDATE runs SET status = 'Failed'",
        "UPDATE runs SET report_json = '{\"forged\":true}'",
    ] {
        let err = db.exec(sql).unwrap_err();
        assert!(err.contains("immutable"), "{sql}: {err}");
    }
    // The lease of a finished run may still move (outbox delivery).
    db.exec("UPDATE runs SET lease_token = 7").unwrap();
}

/// `FinishRun` for `lease`'s run with `status`, at `T0`.
fn finish(lease: &Lease, status: &str) -> WriteOp {
    WriteOp::FinishRun {
        lease: lease.clone(),
        status: status.into(),
        reason: status.into(),
        report_json: "{}".into(),
        finished_at: T0,
    }
}

fn batching(inner: Arc<dyn RunStore>) -> BatchingStore {
    BatchingStore::new(inner, BatchConfig::default()).unwrap()
}

/// Timings, once set, hear of each commit, read, claim and heartbeat, with its op; the
/// batches' own counters are unchanged by them.
#[test]
fn a_batching_store_times_its_operations_once_asked() {
    use std::sync::Mutex;
    use weft_store::{StoreOp, StoreTimings};

    #[derive(Default)]
    struct Seen(Mutex<Vec<StoreOp>>);
    impl StoreTimings for Seen {
        fn observe(&self, op: StoreOp, _elapsed: Duration) {
            self.0.lock().unwrap().push(op);
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let store = batching(Arc::new(file_store(&dir, StoreLimits::default())));
    let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
    // Nothing is timed before timings are set.
    store.run("r").unwrap();
    let seen = Arc::new(Seen::default());
    assert!(store.set_timings(seen.clone()));
    assert!(!store.set_timings(Arc::new(Seen::default())), "only once");
    store
        .write(put(&lease, attempt("r", "t", 0, TaskPhase::Running)))
        .unwrap();
    store.attempts("r").unwrap();
    store.heartbeat(&lease, T0).unwrap();
    store
        .claim(
            "r",
            "other",
            T0.plus(Duration::from_secs(60)),
            Duration::from_secs(30),
        )
        .unwrap();
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            StoreOp::Commit,
            StoreOp::Read,
            StoreOp::Heartbeat,
            StoreOp::Claim
        ]
    );
    assert_eq!(store.stats().batches, 1);
}

fn batched_rejections_surface_at_flush(db: &Db) {
    let store = batching(db.store());
    let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
    store
        .enqueue(put(&lease, terminal("r", "t", 0, Outcome::Succeeded)))
        .unwrap();
    store
        .enqueue(put(&lease, attempt("r", "t", 0, TaskPhase::Running)))
        .unwrap();
    store
        .enqueue(put(&lease, attempt("r", "u", 0, TaskPhase::Running)))
        .unwrap();
    let err = store.flush().unwrap_err();
    assert!(err.is_terminal_attempt() && err.is_rejection(), "{err}");
    assert!(matches!(&err, StoreError::Rejected { errors } if errors.len() == 1));
    store.flush().unwrap();
    assert_eq!(store.attempts("r").unwrap().len(), 2);
    assert_eq!(
        store
            .attempt(&AttemptId::new("r", "t", 0))
            .unwrap()
            .unwrap()
            .outcome,
        Some(Outcome::Succeeded)
    );

    // Fencing through the queue: a claim by another engine makes queued writes stale.
    let taken = store
        .claim(
            "r",
            "other",
            T0.plus(Duration::from_secs(60)),
            Duration::from_secs(30),
        )
        .unwrap();
    store
        .enqueue(put(&lease, attempt("r", "v", 0, TaskPhase::Running)))
        .unwrap();
    assert!(store.flush().unwrap_err().is_stale_lease());
    store
        .write(put(&taken, attempt("r", "v", 0, TaskPhase::Running)))
        .unwrap();
    store.close().unwrap();
    assert!(matches!(
        store.enqueue(put(&taken, attempt("r", "w", 0, TaskPhase::Running))),
        Err(StoreError::Closed)
    ));
}

fn concurrent_writers_share_commits(db: &Db) {
    let store = Arc::new(batching(db.store()));
    let threads = 8;
    let per_thread = 200u32;
    let leases: Vec<Lease> = (0..threads)
        .map(|t| {
            store
                .create_run(&new_run(&format!("r{t}")), "e", T0)
                .unwrap()
        })
        .collect();
    std::thread::scope(|s| {
        for lease in &leases {
            let store = store.clone();
            s.spawn(move || {
                for i in 0..per_thread {
                    let task = format!("t{i}");
                    // A blocking write (waits for its commit) then queued ones.
                    store
                        .write(put(
                            lease,
                            attempt(&lease.run, &task, 0, TaskPhase::Running),
                        ))
                        .unwrap();
                    store
                        .enqueue(put(
                            lease,
                            terminal(&lease.run, &task, 0, Outcome::Succeeded),
                        ))
                        .unwrap();
                    store
                        .enqueue(WriteOp::Logs {
                            lease: lease.clone(),
                            id: AttemptId::new(&lease.run, &task, 0),
                            lines: vec![line("x")],
                        })
                        .unwrap();
                }
                store.flush().unwrap();
            });
        }
    });
    for lease in &leases {
        let attempts = store.attempts(&lease.run).unwrap();
        assert_eq!(attempts.len(), per_thread as usize);
        assert!(
            attempts
                .iter()
                .all(|a| a.outcome == Some(Outcome::Succeeded))
        );
        assert_eq!(
            store.logs(&lease.run, None, 0, 10_000).unwrap().len(),
            per_thread as usize
        );
    }
    let stats = store.stats();
    assert_eq!(stats.ops, u64::from(threads * per_thread * 3));
    assert!(stats.batches < stats.ops, "{stats:?}");
    eprintln!("concurrent writers: {stats:?}");
}

/// Not a benchmark harness, but a measurement: 10,000 attempt transitions through group
/// commit against a real file (WAL, synchronous=NORMAL), compared with one transaction per
/// write. Prints the per-write cost; asserts only a very generous bound.
fn group_commit_cost_per_write(db: &Db) {
    const N: u32 = 10_000;
    let store = batching(db.store());
    let lease = store.create_run(&new_run("bench"), "e", T0).unwrap();
    let ops = |n: u32| {
        // Queued -> Running -> Terminal for n/3 tasks.
        (0..n).map(|i| {
            let task = format!("task-{}", i / 3);
            let rec = match i % 3 {
                0 => attempt("bench", &task, 0, TaskPhase::Queued),
                1 => attempt("bench", &task, 0, TaskPhase::Running),
                _ => terminal("bench", &task, 0, Outcome::Succeeded),
            };
            put(&lease, rec)
        })
    };
    let start = Instant::now();
    let mut enqueue_time = Duration::ZERO;
    for op in ops(N) {
        let t = Instant::now();
        store.enqueue(op).unwrap();
        enqueue_time += t.elapsed();
    }
    store.flush().unwrap();
    let total = start.elapsed();
    let stats = store.stats();
    let per_write = total / N;
    eprintln!(
        "group commit: {N} attempt writes in {total:?} = {per_write:?}/write end to end \
         (enqueue alone {:?}/write); {} transactions, largest {}",
        enqueue_time / N,
        stats.batches,
        stats.largest
    );
    assert_eq!(
        store.attempts("bench").unwrap().len(),
        N.div_ceil(3) as usize
    );

    // Unbatched: one transaction per write, on a fresh run.
    let plain = db.store();
    let lease2 = plain.create_run(&new_run("bench2"), "e", T0).unwrap();
    let n2 = 1_000;
    let start = Instant::now();
    for op in ops(n2) {
        let WriteOp::Attempt { mut record, .. } = op else {
            unreachable!()
        };
        record.id.run = "bench2".into();
        plain.write(put(&lease2, record)).unwrap();
    }
    let per_plain = start.elapsed() / n2;
    eprintln!("one transaction per write: {per_plain:?}/write ({n2} writes)");
}

/// Stores open on a database another store keeps writing and checkpointing: a
/// checkpoint writes the header (with the new page count) before the pages it counts,
/// so the file is briefly shorter than its header says. Every open succeeds and reads.
fn a_store_opens_while_another_writes_and_checkpoints(db: &Db) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let writer = batching(db.store());
    let lease = writer.create_run(&new_run("busy"), "e", T0).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut task = 0u64;
            while !done.load(Ordering::Relaxed) {
                for _ in 0..100 {
                    let name = format!("task-{task}-{}", "x".repeat(400));
                    task += 1;
                    writer
                        .enqueue(put(&lease, attempt("busy", &name, 0, TaskPhase::Queued)))
                        .unwrap();
                }
                writer.flush().unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        // Long enough for several checkpoints (every 200 ms) to run beside the opens.
        let until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < until {
            let other = db.try_open(StoreLimits::default());
            let other = other.unwrap_or_else(|e| {
                done.store(true, Ordering::Relaxed);
                panic!("a store opened beside a busy one: {e}")
            });
            assert!(other.run("busy").unwrap().is_some());
        }
        done.store(true, Ordering::Relaxed);
    });
}

fn committed_writes_survive_a_crash_without_close(db: &Db) {
    let store = batching(db.store());
    let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
    store
        .enqueue(put(&lease, terminal("r", "a", 0, Outcome::Succeeded)))
        .unwrap();
    store.flush().unwrap();
    // Simulate a crash: no close, no WAL checkpoint, connections leaked.
    std::mem::forget(store);
    let reopened = db.store();
    let got = reopened
        .attempt(&AttemptId::new("r", "a", 0))
        .unwrap()
        .unwrap();
    assert_eq!(got.outcome, Some(Outcome::Succeeded));
    // The run is stale once its heartbeat is old enough, and a new engine takes over.
    let later = T0.plus(Duration::from_secs(31));
    assert_eq!(
        reopened
            .stale_runs(later, Duration::from_secs(30))
            .unwrap()
            .len(),
        1
    );
    let lease2 = reopened
        .claim("r", "e2", later, Duration::from_secs(30))
        .unwrap();
    assert!(lease2.token > lease.token);
}

#[test]
fn the_default_path_is_weft_db() {
    if let Some(path) = SqliteStore::default_path() {
        assert!(path.ends_with("weft.db"), "{}", path.display());
    }
}

#[test]
fn outbox_rows_of_the_first_schema_are_migrated_to_exact_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.db");
    {
        // A store written by the first schema, with coarse outbox states.
        let conn = sqlite_at_schema(&path, 1);
        conn.execute(
            "INSERT INTO runs (id, name, pipeline_name, pipeline_source, params_json, options_json, recovery, phase, created_at) VALUES ('r', 'r', 'p', '', '{}', '{}', 'none', 'Running', 0)",
            [],
        )
        .unwrap();
        for (context, desired, delivered) in [
            ("a", "success", Some("running")),
            ("b", "canceled", None),
            ("c", "failure", Some("failure")),
        ] {
            conn.execute(
                "INSERT INTO outbox (reporter, run, context, desired, description, delivered, updated_at) VALUES ('g', 'r', ?1, ?2, '', ?3, 0)",
                rusqlite::params![context, desired, delivered],
            )
            .unwrap();
        }
    }
    let store = file_store(&dir, StoreLimits::default());
    let rows: Vec<(String, ReportStatus, Option<ReportStatus>)> = store
        .outbox("r")
        .unwrap()
        .into_iter()
        .map(|row| (row.key.context, row.desired, row.delivered))
        .collect();
    use ReportStatus::*;
    assert_eq!(
        rows,
        vec![
            ("a".into(), Succeeded, Some(Running)),
            ("b".into(), Cancelled, None),
            ("c".into(), Failed, Some(Failed)),
        ]
    );
}

fn waits_keep_their_deadline_and_take_each_decision_once(db: &Db) {
    let store = db.store();
    let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
    let deadline = Some(T0.plus(Duration::from_secs(60)));
    let open = |since| WriteOp::OpenWait {
        lease: lease.clone(),
        wait: wait("r", "approve", 0, since, deadline),
    };
    assert_eq!(store.write(open(T0)).unwrap(), WriteAck::Done);
    // Opened again after a restart: the first `since` and deadline hold.
    let later = T0.plus(Duration::from_secs(30));
    assert_eq!(store.write(open(later)).unwrap(), WriteAck::Unchanged);
    let id = AttemptId::new("r", "approve", 0);
    let stored = store.wait(&id).unwrap().unwrap();
    assert_eq!(
        (stored.since, stored.deadline, stored.is_open()),
        (T0, deadline, true)
    );

    // (what, vote, expected)
    let table: Vec<(&str, VoteRecord, Result<(), &str>)> = vec![
        (
            "a first vote",
            vote("r", "approve", "alice", true, T0),
            Ok(()),
        ),
        (
            "a second vote by the same identity",
            vote("r", "approve", "alice", false, T0),
            Err("already exists"),
        ),
        (
            "another identity",
            vote("r", "approve", "bob", false, later),
            Ok(()),
        ),
        (
            "a task that does not wait",
            vote("r", "deploy", "carol", true, T0),
            Err("not found"),
        ),
    ];
    for (what, ballot, expected) in table {
        match (store.cast_vote(&ballot), expected) {
            (Ok(()), Ok(())) => {}
            (Err(err), Err(want)) => assert!(err.to_string().contains(want), "{what}: {err}"),
            (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }
    let votes = store.votes("r").unwrap();
    let cast: Vec<(&str, bool)> = votes
        .iter()
        .map(|v| (v.identity.as_str(), v.approve))
        .collect();
    assert_eq!(cast, [("alice", true), ("bob", false)]);

    store
        .write(WriteOp::CloseWait {
            lease: lease.clone(),
            id: id.clone(),
            outcome: "Rejected".into(),
            at: later,
        })
        .unwrap();
    assert_eq!(
        store.wait(&id).unwrap().unwrap().outcome.as_deref(),
        Some("Rejected")
    );
    // Closed: no more decisions, and it is not closed twice.
    let late = store.cast_vote(&vote("r", "approve", "carol", true, later));
    assert!(late.unwrap_err().to_string().contains("not found"));
    let again = store.write(WriteOp::CloseWait {
        lease: lease.clone(),
        id: id.clone(),
        outcome: "Approved".into(),
        at: later,
    });
    assert!(again.is_err());
    assert_eq!(store.waits("r").unwrap().len(), 1);
}

fn signals_reach_the_owner(db: &Db) {
    let store = db.store();
    let a = store.create_run(&new_run("a"), "engine-a", T0).unwrap();
    store.create_run(&new_run("b"), "engine-b", T0).unwrap();
    let signal = |run: &str, kind: &str| NewSignal {
        run: run.into(),
        kind: kind.into(),
        payload_json: r#"{"mode":"Cancelled"}"#.into(),
        sent_at: T0,
    };
    let first = store.send_signal(&signal("a", "cancel")).unwrap();
    let second = store.send_signal(&signal("a", "approve")).unwrap();
    store.send_signal(&signal("b", "cancel")).unwrap();
    assert!(second > first);
    assert!(matches!(
        store.send_signal(&signal("missing", "cancel")),
        Err(StoreError::NotFound { .. })
    ));
    // Each owner sees only its runs' signals, oldest first.
    let pending = store.pending_signals("engine-a", 10).unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|s| (s.id, s.signal.kind.as_str()))
            .collect::<Vec<_>>(),
        [(first, "cancel"), (second, "approve")]
    );
    assert_eq!(pending[0].signal, signal("a", "cancel"));
    assert_eq!(store.pending_signals("engine-b", 10).unwrap().len(), 1);
    assert_eq!(store.pending_signals("engine-a", 1).unwrap().len(), 1);
    // Handled under the lease, once.
    let handled = |lease: &Lease, id| WriteOp::SignalHandled {
        lease: lease.clone(),
        id,
        at: T0,
    };
    assert_eq!(store.write(handled(&a, first)).unwrap(), WriteAck::Done);
    assert_eq!(
        store.write(handled(&a, first)).unwrap(),
        WriteAck::Unchanged
    );
    assert!(matches!(
        store.write(handled(&a, 9_999)),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.pending_signals("engine-a", 10).unwrap().len(), 1);
    // A new owner takes the run's unhandled signals over; the old one can no longer mark
    // them handled.
    let taken = store
        .claim(
            "a",
            "engine-c",
            T0.plus(Duration::from_secs(60)),
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(store.pending_signals("engine-a", 10).unwrap().is_empty());
    assert_eq!(store.pending_signals("engine-c", 10).unwrap()[0].id, second);
    assert!(
        store
            .write(handled(&a, second))
            .unwrap_err()
            .is_stale_lease()
    );
    store.write(handled(&taken, second)).unwrap();
    // A finished run takes no more signals.
    store.write(finish(&taken, "Cancelled")).unwrap();
    assert!(matches!(
        store.send_signal(&signal("a", "cancel")),
        Err(StoreError::RunFinished { .. })
    ));
}

fn claim_stale_claims_each_run_once(db: &Db) {
    let store = db.store();
    let later = T0.plus(Duration::from_secs(60));
    let ttl = Duration::from_secs(30);
    for i in 0..40 {
        store
            .create_run(&new_run(&format!("r{i:02}")), "dead", T0)
            .unwrap();
    }
    let fresh = store.create_run(&new_run("fresh"), "alive", later).unwrap();
    let done = store.create_run(&new_run("done"), "dead", T0).unwrap();
    store.write(finish(&done, "Succeeded")).unwrap();
    // Four claimers at once, in small batches, until nothing is left.
    let claimed: Vec<Lease> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|c| {
                let store = store.clone();
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let got = store
                            .claim_stale(&format!("claimer-{c}"), later, ttl, 3)
                            .unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        assert!(got.len() <= 3);
                        mine.extend(got);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut runs: Vec<&str> = claimed.iter().map(|l| l.run.as_str()).collect();
    runs.sort_unstable();
    let expected: Vec<String> = (0..40).map(|i| format!("r{i:02}")).collect();
    assert_eq!(runs, expected, "each stale run claimed exactly once");
    for lease in &claimed {
        assert_eq!(lease.token, 2);
        let record = store.run(&lease.run).unwrap().unwrap();
        assert_eq!(record.lease_owner.as_deref(), Some(lease.owner.as_str()));
        assert_eq!(record.heartbeat_at, Some(later));
        store.heartbeat(lease, later).unwrap();
    }
    // The fresh run and the finished one were left alone.
    store.heartbeat(&fresh, later).unwrap();
    assert!(
        store
            .claim_stale("late", later, ttl, 10)
            .unwrap()
            .is_empty()
    );
}

fn a_released_run_is_claimable_at_once(db: &Db) {
    let store = db.store();
    let lease = store.create_run(&new_run("r"), "a", T0).unwrap();
    let soon = T0.plus(Duration::from_secs(1));
    assert!(
        store
            .claim_stale("b", soon, Duration::from_secs(30), 10)
            .unwrap()
            .is_empty()
    );
    store.release(&lease).unwrap();
    let taken = store
        .claim_stale("b", soon, Duration::from_secs(30), 10)
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].token, 2);
    assert!(store.release(&lease).unwrap_err().is_stale_lease());
}

both_backends! {
    run_round_trips_and_lists,
    finished_run_is_immutable,
    attempts_round_trip_through_their_phases,
    terminal_attempts_are_immutable,
    a_rejection_does_not_spoil_its_batch,
    one_batch_checks_every_write_it_holds,
    stale_lease_writes_are_rejected,
    stale_runs_by_heartbeat_age,
    events_are_sequenced_per_run,
    logs_are_capped_per_task_with_one_marker,
    checkpoints_round_trip_per_run_task_key,
    outbox_never_regresses,
    snapshots_have_a_cap_and_retention,
    reopen_keeps_everything_and_migrations_are_idempotent,
    a_corrupt_row_is_an_error_not_a_panic,
    the_terminal_trigger_backs_up_the_store,
    batched_rejections_surface_at_flush,
    concurrent_writers_share_commits,
    group_commit_cost_per_write,
    a_store_opens_while_another_writes_and_checkpoints,
    committed_writes_survive_a_crash_without_close,
    signals_reach_the_owner,
    claim_stale_claims_each_run_once,
    a_released_run_is_claimable_at_once,
    waits_keep_their_deadline_and_take_each_decision_once,
    groups_decide_in_one_transaction_and_forget_finished_runs,
    schedule_ticks_are_claimed_once,
    tenants_members_tokens_and_an_append_only_audit_log,
}

/// Tenants: names are unique (`default` exists from the start); a member needs its
/// tenant; a token keeps only its hash, is found by id, listed per tenant, revoked once
/// and only within its tenant when one is named; the audit log appends in order, reads
/// per tenant, and refuses changes.
fn tenants_members_tokens_and_an_append_only_audit_log(db: &Db) {
    use weft_store::{MemberRecord, NewAudit, Role, TenantRecord, TokenRecord};
    let store = db.store();
    let tenant = |name: &str| TenantRecord {
        name: name.into(),
        created_at: T0,
        settings_json: "{}".into(),
    };
    assert_eq!(
        store
            .tenants()
            .unwrap()
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["default"]
    );
    store.create_tenant(&tenant("acme")).unwrap();
    assert!(matches!(
        store.create_tenant(&tenant("acme")),
        Err(StoreError::AlreadyExists { .. })
    ));
    store
        .set_tenant_settings("acme", r#"{"weight":2}"#)
        .unwrap();
    assert_eq!(store.tenants().unwrap()[0].settings_json, r#"{"weight":2}"#);
    assert!(store.set_tenant_settings("nope", "{}").is_err());
    let member = MemberRecord {
        tenant: "acme".into(),
        identity: "ci".into(),
        role: Role::Submitter,
        groups: vec!["release".into()],
    };
    store.put_member(&member).unwrap();
    assert!(matches!(
        store.put_member(&MemberRecord {
            tenant: "nope".into(),
            ..member.clone()
        }),
        Err(StoreError::NotFound { .. })
    ));
    store
        .put_member(&MemberRecord {
            role: Role::Admin,
            ..member.clone()
        })
        .unwrap();
    assert_eq!(
        store.member("acme", "ci").unwrap().unwrap().role,
        Role::Admin
    );
    assert_eq!(
        store.member("acme", "ci").unwrap().unwrap().groups,
        ["release"]
    );
    assert_eq!(store.member("default", "ci").unwrap(), None);
    assert!(!store.has_tokens().unwrap());
    let token = TokenRecord {
        id: "abc123".into(),
        tenant: "acme".into(),
        identity: "ci".into(),
        hash: "00ff".into(),
        created_at: T0,
        expires_at: Some(T0.plus(Duration::from_secs(60))),
        revoked_at: None,
    };
    store.add_token(&token).unwrap();
    assert!(store.add_token(&token).is_err(), "ids are unique");
    assert!(store.has_tokens().unwrap());
    assert_eq!(store.token("abc123").unwrap(), Some(token.clone()));
    assert_eq!(
        store.tokens(Some("acme")).unwrap(),
        std::slice::from_ref(&token)
    );
    assert!(store.tokens(Some("default")).unwrap().is_empty());
    assert_eq!(store.tokens(None).unwrap().len(), 1);
    assert!(!store.revoke_token(Some("default"), "abc123", T0).unwrap());
    assert!(store.revoke_token(Some("acme"), "abc123", T0).unwrap());
    assert!(!store.revoke_token(None, "abc123", T0).unwrap(), "once");
    assert_eq!(store.token("abc123").unwrap().unwrap().revoked_at, Some(T0));
    assert!(
        store.has_tokens().unwrap(),
        "revoking the last token opens nothing"
    );

    let entry = |tenant: &str, action: &str| NewAudit {
        at: T0,
        tenant: tenant.into(),
        actor: "ci".into(),
        action: action.into(),
        target: "x".into(),
        detail_json: "{}".into(),
    };
    let first = store.append_audit(&entry("acme", "token.create")).unwrap();
    let second = store.append_audit(&entry("default", "run.cancel")).unwrap();
    let third = store.append_audit(&entry("acme", "token.revoke")).unwrap();
    assert!(first < second && second < third);
    let acme = store.audit(Some("acme"), 0, 10).unwrap();
    assert_eq!(
        acme.iter()
            .map(|a| a.entry.action.as_str())
            .collect::<Vec<_>>(),
        ["token.create", "token.revoke"]
    );
    assert_eq!(store.audit(None, first, 10).unwrap().len(), 2);
    assert_eq!(store.audit(None, 0, 1).unwrap().len(), 1);
    assert!(db.exec("UPDATE audit SET actor = 'mallory'").is_err());
    assert!(db.exec("DELETE FROM audit").is_err());
    assert_eq!(store.audit(None, 0, 10).unwrap().len(), 3);

    // Secrets: one row per key, replaced in place, listed and deleted per tenant.
    let secret = |tenant: &str, key: &str, sealed: &str| weft_store::SecretRecord {
        tenant: tenant.into(),
        name: "deploy".into(),
        key: key.into(),
        key_id: "k1".into(),
        nonce: "bm9uY2U".into(),
        ciphertext: sealed.into(),
        updated_at: T0,
    };
    store
        .put_secret(&secret("acme", "token", "c2VhbGVk"))
        .unwrap();
    store.put_secret(&secret("acme", "token", "bmV3")).unwrap();
    store.put_secret(&secret("acme", "user", "dXNlcg")).unwrap();
    store
        .put_secret(&secret("default", "token", "ZGVm"))
        .unwrap();
    assert!(matches!(
        store.put_secret(&secret("nope", "token", "eA")),
        Err(StoreError::NotFound { .. })
    ));
    let acme = store.secrets(Some("acme")).unwrap();
    assert_eq!(acme.len(), 2);
    assert_eq!(acme[0].ciphertext, "bmV3");
    assert_eq!(store.secrets(None).unwrap().len(), 3);
    assert_eq!(store.delete_secret("acme", "deploy").unwrap(), 2);
    assert_eq!(store.delete_secret("acme", "deploy").unwrap(), 0);
    assert_eq!(store.secrets(None).unwrap().len(), 1);

    // Plugins: bytes once by digest, names per tenant; deleting the last name frees them.
    let plugin = |tenant: &str, name: &str, digest: &str| weft_store::TenantPluginRecord {
        tenant: tenant.into(),
        name: name.into(),
        digest: digest.into(),
        kind: "task".into(),
        size: 3,
        uploaded_at: T0,
    };
    store
        .put_plugin(&plugin("acme", "tool", "sha256:aa"), b"abc")
        .unwrap();
    store
        .put_plugin(&plugin("default", "tool", "sha256:aa"), b"abc")
        .unwrap();
    store
        .put_plugin(&plugin("acme", "tool", "sha256:bb"), b"xyz")
        .unwrap();
    assert!(matches!(
        store.put_plugin(&plugin("nope", "tool", "sha256:aa"), b"abc"),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.tenant_plugins(Some("acme")).unwrap()[0].digest,
        "sha256:bb"
    );
    assert_eq!(store.tenant_plugins(None).unwrap().len(), 2);
    assert_eq!(
        store.plugin_bytes("sha256:aa").unwrap().as_deref(),
        Some(&b"abc"[..])
    );
    assert!(store.delete_plugin("default", "tool").unwrap());
    assert!(!store.delete_plugin("default", "tool").unwrap());
    assert_eq!(
        store.plugin_bytes("sha256:aa").unwrap(),
        None,
        "no name uses it"
    );
    assert_eq!(
        store.plugin_bytes("sha256:bb").unwrap().as_deref(),
        Some(&b"xyz"[..])
    );
    assert_eq!(store.stored_bytes("acme").unwrap(), 3);
    assert_eq!(store.stored_bytes("default").unwrap(), 0);

    // CPU use per minute: added up, asked for from a minute on, per tenant.
    store.add_cpu("acme", 100, 250).unwrap();
    store.add_cpu("acme", 100, 250).unwrap();
    store.add_cpu("acme", 130, 1_000).unwrap();
    store.add_cpu("beta", 130, 7).unwrap();
    assert_eq!(store.cpu_since("acme", 0).unwrap(), 1_500);
    assert_eq!(store.cpu_since("acme", 101).unwrap(), 1_000);
    assert_eq!(store.cpu_since("beta", 0).unwrap(), 7);
    assert_eq!(store.cpu_since("gamma", 0).unwrap(), 0);

    // Each tenant lists its own runs: stored names carry the tenant.
    for id in ["acme_one", "plain", "acmex_two"] {
        store.create_run(&new_run(id), "engine", T0).unwrap();
    }
    let names = |tenant: Option<&str>| {
        let mut ids: Vec<String> = store
            .list_runs_of(tenant, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(names(Some("acme")), ["acme_one"]);
    assert_eq!(names(Some("acmex")), ["acmex_two"]);
    assert_eq!(names(Some("default")), ["plain"]);
    assert_eq!(names(None).len(), 3);
}

/// A concurrency group: rows come back in arrival order with their liveness (heartbeat
/// within the bound, run unfinished); `decide` sees the rows and its changes land in the
/// same transaction; a fence bumps the run's token (its old lease is refused); a finished
/// run's rows are gone at the next decision; `leave_groups` empties a run's slots.
fn groups_decide_in_one_transaction_and_forget_finished_runs(db: &Db) {
    use weft_store::SlotChange::*;
    let store = db.store();
    let now = Timestamp::now();
    let a = store.create_run(&new_run("ga"), "engine-a", now).unwrap();
    let b = store.create_run(&new_run("gb"), "engine-b", now).unwrap();
    let stale = Duration::from_secs(30);
    let join = |who: &str| Join {
        holder: who.into(),
        run: who.into(),
    };
    let rows = store
        .in_group("deploy", now, stale, &mut |rows| {
            assert!(rows.is_empty());
            vec![join("ga"), Hold("ga".into())]
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].holding && rows[0].alive);
    let rows = store
        .in_group("deploy", now, stale, &mut |rows| {
            assert_eq!(rows.len(), 1, "the first decision landed");
            vec![join("gb"), join("gb")]
        })
        .unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.holder.as_str(), r.holding))
            .collect::<Vec<_>>(),
        [("ga", true), ("gb", false)],
        "arrival order; joining twice is joining once"
    );
    assert!(rows[0].seq < rows[1].seq);
    // Seen from later than the staleness bound, nobody is alive.
    let later = Timestamp(now.0 + 60_000);
    let rows = store.groups_of("gb", later, stale).unwrap();
    assert!(rows.iter().all(|r| !r.alive), "{rows:?}");
    // The dead holder is demoted and fenced; the waiter takes the slot, superseded flags stick.
    store
        .in_group("deploy", later, stale, &mut |_| {
            vec![
                Wait("ga".into()),
                Fence("ga".into()),
                Hold("gb".into()),
                Supersede("ga".into()),
            ]
        })
        .unwrap();
    assert!(
        store.heartbeat(&a, later).unwrap_err().is_rejection(),
        "a fenced run's engine may write nothing more"
    );
    let rows = store.groups_of("ga", later, stale).unwrap();
    let ga = rows.iter().find(|r| r.holder == "ga").unwrap();
    assert!(!ga.holding && ga.superseded);
    // A finished run holds nothing.
    store.flush().unwrap();
    let finished = store.apply(vec![WriteOp::FinishRun {
        lease: b.clone(),
        status: "Succeeded".into(),
        reason: String::new(),
        report_json: "{}".into(),
        finished_at: later,
    }]);
    assert!(finished.unwrap().iter().all(|ack| ack.is_ok()));
    let rows = store
        .in_group("deploy", later, stale, &mut |_| Vec::new())
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.holder.as_str()).collect::<Vec<_>>(),
        ["ga"]
    );
    store.leave_groups("ga").unwrap();
    assert!(store.groups_of("ga", later, stale).unwrap().is_empty());
    assert_eq!(store.runs_named("ga-name").unwrap(), ["ga"]);
}

/// Schedules: names are unique; a tick is claimed by one caller only, and only while it is
/// the schedule's next tick and none is firing; once fired the next can be claimed.
fn schedule_ticks_are_claimed_once(db: &Db) {
    let store = db.store();
    let schedule = weft_store::ScheduleRecord {
        name: "nightly".into(),
        cron: "0 2 * * *".into(),
        zone: "Europe/Paris".into(),
        spec_json: "{}".into(),
        next_at: Some(Timestamp(1_000)),
        firing_at: None,
        created_at: T0,
    };
    store.add_schedule(&schedule).unwrap();
    assert!(matches!(
        store.add_schedule(&schedule),
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(
        store
            .claim_tick("nightly", Timestamp(1_000), Some(Timestamp(2_000)))
            .unwrap()
    );
    assert!(
        !store
            .claim_tick("nightly", Timestamp(1_000), Some(Timestamp(2_000)))
            .unwrap(),
        "a tick is claimed once"
    );
    assert!(
        !store
            .claim_tick("nightly", Timestamp(2_000), Some(Timestamp(3_000)))
            .unwrap(),
        "not while the previous tick is firing"
    );
    let listed = store.schedules().unwrap();
    assert_eq!(listed[0].firing_at, Some(Timestamp(1_000)));
    assert_eq!(listed[0].next_at, Some(Timestamp(2_000)));
    store.tick_fired("nightly", Timestamp(1_000)).unwrap();
    assert!(store.claim_tick("nightly", Timestamp(2_000), None).unwrap());
    assert!(store.remove_schedule("nightly").unwrap());
    assert!(!store.remove_schedule("nightly").unwrap());
    assert!(store.schedules().unwrap().is_empty());
}

/// A SQLite database written before weft used refinery (only `user_version` says which
/// migrations it has) is adopted: its history recorded, nothing applied twice.
#[test]
fn a_database_from_before_refinery_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.db");
    {
        sqlite_at_schema(&path, 2);
    }
    for _ in 0..2 {
        let store = file_store(&dir, StoreLimits::default());
        assert_eq!(store.schema_version().unwrap(), weft_store::SCHEMA_VERSION);
        store.create_run(&new_run("r"), "e", T0).ok();
        store
            .send_signal(&NewSignal {
                run: "r".into(),
                kind: "cancel".into(),
                payload_json: "{}".into(),
                sent_at: T0,
            })
            .unwrap();
    }
    // A database from a newer weft is refused, not damaged.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path, StoreLimits::default()).unwrap_err();
    assert!(err.to_string().contains("upgrade weft"), "{err}");
}

/// PostgreSQL only: servers starting at once migrate one at a time; a store told not to
/// migrate refuses an out-of-date database and says how to migrate it.
#[test]
fn postgres_migrations_run_once_and_can_be_left_to_the_operator() {
    let Some(db) = Db::new(backends::Backend::Postgres) else {
        return;
    };
    let url = db.pg_url().unwrap();
    let err = PgStore::open(
        &url,
        StoreLimits::default(),
        PgOptions {
            migrate: false,
            ..PgOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("weft db migrate"), "{err}");
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                PgStore::open(&url, StoreLimits::default(), PgOptions::default()).unwrap();
            });
        }
    });
    assert_eq!(
        PgStore::migrate(&url, Duration::from_secs(5)).unwrap(),
        (weft_store::SCHEMA_VERSION, weft_store::SCHEMA_VERSION)
    );
    PgStore::open(
        &url,
        StoreLimits::default(),
        PgOptions {
            migrate: false,
            ..PgOptions::default()
        },
    )
    .unwrap();
    assert!(
        PgStore::open(
            "postgres://nobody@127.0.0.1:1/none",
            StoreLimits::default(),
            PgOptions {
                connect_timeout: Duration::from_millis(500),
                ..PgOptions::default()
            }
        )
        .is_err()
    );
}

/// PostgreSQL only: a connection the server ended is replaced; queued writes retry on a
/// new one; a signal wakes the owner's listener.
#[test]
fn postgres_reconnects_and_wakes_listeners() {
    let Some(db) = Db::new(backends::Backend::Postgres) else {
        return;
    };
    let store = batching(db.store());
    let lease = store.create_run(&new_run("r"), "e", T0).unwrap();
    let wakeup = store.wakeup().expect("PostgreSQL wakes listeners");
    for round in 0..3 {
        db.kill_connections();
        store
            .enqueue(put(
                &lease,
                attempt("r", &format!("t{round}"), 0, TaskPhase::Running),
            ))
            .unwrap();
        store.flush().unwrap();
        store.heartbeat(&lease, T0).unwrap();
        assert_eq!(store.attempts("r").unwrap().len(), round + 1);
    }
    // The listener reconnects too; a signal wakes it (retried: it may still be connecting).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let woken = runtime.block_on(async {
        for _ in 0..50 {
            let notified = wakeup.notified();
            store
                .send_signal(&NewSignal {
                    run: "r".into(),
                    kind: "cancel".into(),
                    payload_json: "{}".into(),
                    sent_at: T0,
                })
                .unwrap();
            if tokio::time::timeout(Duration::from_millis(200), notified)
                .await
                .is_ok()
            {
                return true;
            }
        }
        false
    });
    assert!(woken, "a signal wakes the owner's listener");
}

/// A SQLite database at `path` made by the first `version` migrations, as a weft of that
/// schema left it (before weft used refinery: only `user_version` says how far it is).
fn sqlite_at_schema(path: &Path, version: usize) -> rusqlite::Connection {
    const MIGRATIONS: [&str; 7] = [
        include_str!("../src/migrations/sqlite/V1__initial.sql"),
        include_str!("../src/migrations/sqlite/V2__report_status.sql"),
        include_str!("../src/migrations/sqlite/V3__signals.sql"),
        include_str!("../src/migrations/sqlite/V4__waits.sql"),
        include_str!("../src/migrations/sqlite/V5__groups_and_schedules.sql"),
        include_str!("../src/migrations/sqlite/V6__run_bodies.sql"),
        include_str!("../src/migrations/sqlite/V7__tenants.sql"),
    ];
    let conn = rusqlite::Connection::open(path).unwrap();
    for sql in &MIGRATIONS[..version] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", version as i64)
        .unwrap();
    conn
}

#[test]
fn a_runs_large_values_move_apart_from_its_hot_row_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.db");
    let source = "x".repeat(200_000);
    {
        // A store of schema 5, with a run whose source sat in its row.
        let conn = sqlite_at_schema(&path, 5);
        conn.execute(
            "INSERT INTO runs (id, name, pipeline_name, pipeline_source, params_json, options_json, recovery, phase, created_at) VALUES ('old', 'old', 'p', ?1, '{}', '{\"spec\":1}', 'none', 'Running', 0)",
            [&source],
        )
        .unwrap();
    }
    let store = file_store(&dir, StoreLimits::default());
    let old = store.run("old").unwrap().unwrap();
    assert_eq!(old.submitted.pipeline_source.len(), source.len());
    assert_eq!(old.submitted.options_json, "{\"spec\":1}");
    let mut fresh = new_run("fresh");
    fresh.pipeline_source = source.clone();
    store.create_run(&fresh, "e", T0).unwrap();
    let read = store.run("fresh").unwrap().unwrap();
    assert_eq!(read.submitted.pipeline_source, source);
    assert_eq!(read.submitted.options_json, fresh.options_json);
    // The hot rows hold none of it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let hot: i64 = conn
        .query_row(
            "SELECT max(length(pipeline_source) + length(options_json)) FROM runs",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(hot, 0);
}

#[test]
fn a_finished_runs_report_moves_apart_from_its_hot_row_and_never_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.db");
    let report = format!("{{\"tasks\":\"{}\"}}", "x".repeat(200_000));
    {
        // A store of schema 7, with a finished run whose report sat in its row.
        let conn = sqlite_at_schema(&path, 7);
        conn.execute(
            "INSERT INTO runs (id, name, pipeline_name, pipeline_source, params_json, options_json, recovery, phase, created_at) VALUES ('old', 'old', 'p', '', '{}', '', 'none', 'Running', 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO run_bodies (run, pipeline_source, options_json) VALUES ('old', 'src', '{}')",
            [],
        )
        .unwrap();
        conn.execute(
            "UPDATE runs SET phase = 'Finished', status = 'Succeeded', report_json = ?1, finished_at = 1 WHERE id = 'old'",
            [&report],
        )
        .unwrap();
    }
    let store = file_store(&dir, StoreLimits::default());
    let old = store.run("old").unwrap().unwrap();
    assert_eq!(old.report_json.as_deref(), Some(report.as_str()));
    assert_eq!(old.status.as_deref(), Some("Succeeded"));
    // A run finished now keeps its report apart too, and reads it back whole.
    let lease = store.create_run(&new_run("fresh"), "e", T0).unwrap();
    store
        .write(WriteOp::FinishRun {
            lease,
            status: "Failed".into(),
            reason: "Failed".into(),
            report_json: report.clone(),
            finished_at: T0,
        })
        .unwrap();
    let fresh = store.run("fresh").unwrap().unwrap();
    assert_eq!(fresh.report_json.as_deref(), Some(report.as_str()));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let in_hot_rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM runs WHERE report_json IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_hot_rows, 0);
    // Written once, a report never changes, wherever one tries.
    for sql in [
        "UPDATE run_reports SET report_json = '{\"forged\":true}'",
        "UPDATE runs SET report_json = '{\"forged\":true}' WHERE id = 'fresh'",
    ] {
        let err = conn.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("immutable"), "{sql}: {err}");
    }
}
