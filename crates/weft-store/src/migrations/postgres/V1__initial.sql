-- weft run store on PostgreSQL, schema version 1: the same tables, keys and invariants as
-- the SQLite store (src/migrations/sqlite/V1__initial.sql). Times are milliseconds since
-- the Unix epoch (UTC), as BIGINT.

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    pipeline_name   TEXT NOT NULL,
    pipeline_source TEXT NOT NULL,
    params_json     TEXT NOT NULL,          -- secrets redacted by the caller
    options_json    TEXT NOT NULL,
    recovery        TEXT NOT NULL CHECK (recovery IN ('none', 'startOver', 'resume')),
    created_at      BIGINT NOT NULL,
    phase           TEXT NOT NULL,
    status          TEXT,
    reason          TEXT NOT NULL DEFAULT '',
    finished_at     BIGINT,
    report_json     TEXT,
    lease_owner     TEXT,
    lease_token     BIGINT NOT NULL DEFAULT 0,
    heartbeat_at    BIGINT
);
CREATE INDEX runs_by_created ON runs (created_at DESC, id);
CREATE INDEX runs_unfinished_by_heartbeat ON runs (heartbeat_at) WHERE finished_at IS NULL;

-- A finished run's outcome never changes (its lease may still move, for outbox delivery).
CREATE FUNCTION weft_runs_finished_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.phase IS DISTINCT FROM OLD.phase OR NEW.status IS DISTINCT FROM OLD.status
        OR NEW.reason IS DISTINCT FROM OLD.reason
        OR NEW.finished_at IS DISTINCT FROM OLD.finished_at
        OR NEW.report_json IS DISTINCT FROM OLD.report_json THEN
        RAISE EXCEPTION 'weft: a finished run is immutable';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER runs_finished_immutable BEFORE UPDATE ON runs
FOR EACH ROW WHEN (OLD.finished_at IS NOT NULL)
EXECUTE FUNCTION weft_runs_finished_immutable();

CREATE TABLE attempts (
    run          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task         TEXT NOT NULL,
    attempt      BIGINT NOT NULL CHECK (attempt >= 0),
    phase        TEXT NOT NULL,
    outcome      TEXT,
    reason       TEXT NOT NULL,
    exit_code    BIGINT,
    results_json TEXT NOT NULL,
    message      TEXT NOT NULL,
    started_at   BIGINT,
    ended_at     BIGINT,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (run, task, attempt)
);

-- Defence in depth for the store's own check: a terminal attempt never changes.
CREATE FUNCTION weft_attempts_terminal_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'weft: a terminal attempt is immutable';
END $$;
CREATE TRIGGER attempts_terminal_immutable BEFORE UPDATE ON attempts
FOR EACH ROW WHEN (OLD.phase = 'Terminal')
EXECUTE FUNCTION weft_attempts_terminal_immutable();

CREATE TABLE events (
    run       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq       BIGINT NOT NULL CHECK (seq > 0),
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    task      TEXT,
    attempt   BIGINT,
    data_json TEXT NOT NULL,
    PRIMARY KEY (run, seq)
);

CREATE TABLE logs (
    id      BIGSERIAL PRIMARY KEY,  -- the polling cursor
    run     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task    TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    at      BIGINT NOT NULL,
    stream  TEXT NOT NULL,
    text    TEXT NOT NULL
);
CREATE INDEX logs_by_run ON logs (run, id);
CREATE INDEX logs_by_task ON logs (run, task, id);

-- Bytes of log kept per (run, task), all attempts together, and whether the cap was hit.
CREATE TABLE log_usage (
    run       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task      TEXT NOT NULL,
    bytes     BIGINT NOT NULL,
    truncated BIGINT NOT NULL,
    PRIMARY KEY (run, task)
);

CREATE TABLE checkpoints (
    run        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task       TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (run, task, key)
);

CREATE TABLE outbox (
    reporter        TEXT NOT NULL,
    run             TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    context         TEXT NOT NULL,
    desired         TEXT NOT NULL,
    description     TEXT NOT NULL,
    delivered       TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    last_error      TEXT NOT NULL DEFAULT '',
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (reporter, run, context)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

CREATE TABLE snapshots (
    id         BIGSERIAL PRIMARY KEY,
    run        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task       TEXT NOT NULL,
    workspace  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    size       BIGINT NOT NULL,
    data       BYTEA NOT NULL
);
CREATE INDEX snapshots_by_run ON snapshots (run, id);
