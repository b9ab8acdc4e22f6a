-- weft run store, schema version 1. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    pipeline_name   TEXT NOT NULL,
    pipeline_source TEXT NOT NULL,
    params_json     TEXT NOT NULL,          -- secrets redacted by the caller
    options_json    TEXT NOT NULL,
    recovery        TEXT NOT NULL CHECK (recovery IN ('none', 'startOver', 'resume')),
    created_at      INTEGER NOT NULL,
    phase           TEXT NOT NULL,
    status          TEXT,
    reason          TEXT NOT NULL DEFAULT '',
    finished_at     INTEGER,
    report_json     TEXT,
    lease_owner     TEXT,
    lease_token     INTEGER NOT NULL DEFAULT 0,
    heartbeat_at    INTEGER
) STRICT;
CREATE INDEX runs_by_created ON runs (created_at DESC, id);
CREATE INDEX runs_unfinished_by_heartbeat ON runs (heartbeat_at) WHERE finished_at IS NULL;

-- A finished run's outcome never changes (its lease may still move, for outbox delivery).
CREATE TRIGGER runs_finished_immutable BEFORE UPDATE ON runs
WHEN OLD.finished_at IS NOT NULL AND (
    NEW.phase IS NOT OLD.phase OR NEW.status IS NOT OLD.status OR NEW.reason IS NOT OLD.reason
    OR NEW.finished_at IS NOT OLD.finished_at OR NEW.report_json IS NOT OLD.report_json)
BEGIN
    SELECT RAISE(ABORT, 'weft: a finished run is immutable');
END;

CREATE TABLE attempts (
    run          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task         TEXT NOT NULL,
    attempt      INTEGER NOT NULL CHECK (attempt >= 0),
    phase        TEXT NOT NULL,
    outcome      TEXT,
    reason       TEXT NOT NULL,
    exit_code    INTEGER,
    results_json TEXT NOT NULL,
    message      TEXT NOT NULL,
    started_at   INTEGER,
    ended_at     INTEGER,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (run, task, attempt)
) STRICT, WITHOUT ROWID;

-- Defence in depth for the store's own check: a terminal attempt never changes.
CREATE TRIGGER attempts_terminal_immutable BEFORE UPDATE ON attempts
WHEN OLD.phase = 'Terminal'
BEGIN
    SELECT RAISE(ABORT, 'weft: a terminal attempt is immutable');
END;

CREATE TABLE events (
    run       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL CHECK (seq > 0),
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    task      TEXT,
    attempt   INTEGER,
    data_json TEXT NOT NULL,
    PRIMARY KEY (run, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE logs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,  -- the polling cursor
    run     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task    TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    stream  TEXT NOT NULL,
    text    TEXT NOT NULL
) STRICT;
CREATE INDEX logs_by_run ON logs (run, id);
CREATE INDEX logs_by_task ON logs (run, task, id);

-- Bytes of log kept per (run, task), all attempts together, and whether the cap was hit.
CREATE TABLE log_usage (
    run       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task      TEXT NOT NULL,
    bytes     INTEGER NOT NULL,
    truncated INTEGER NOT NULL,
    PRIMARY KEY (run, task)
) STRICT, WITHOUT ROWID;

CREATE TABLE checkpoints (
    run        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task       TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (run, task, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE outbox (
    reporter        TEXT NOT NULL,
    run             TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    context         TEXT NOT NULL,
    desired         TEXT NOT NULL,
    description     TEXT NOT NULL,
    delivered       TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error      TEXT NOT NULL DEFAULT '',
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (reporter, run, context)
) STRICT, WITHOUT ROWID;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

CREATE TABLE snapshots (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task       TEXT NOT NULL,
    workspace  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    data       BLOB NOT NULL
) STRICT;
CREATE INDEX snapshots_by_run ON snapshots (run, id);
