-- Tasks that wait for people or for the world (approvals, manual interventions, gates):
-- what each waits for, since when and until when (so deadlines hold across restarts), and
-- every decision cast on it, journaled once.
CREATE TABLE waits (
    run          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task         TEXT NOT NULL,
    attempt      INTEGER NOT NULL CHECK (attempt >= 0),
    kind         TEXT NOT NULL CHECK (kind IN ('approval', 'intervention', 'gate')),
    request_json TEXT NOT NULL,
    since        INTEGER NOT NULL,
    deadline     INTEGER,
    closed_at    INTEGER,
    outcome      TEXT,
    PRIMARY KEY (run, task, attempt)
) STRICT, WITHOUT ROWID;

-- A closed wait never changes again.
CREATE TRIGGER waits_closed_immutable BEFORE UPDATE ON waits
WHEN OLD.closed_at IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'weft: a closed wait is immutable');
END;

CREATE TABLE votes (
    run         TEXT NOT NULL,
    task        TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    identity    TEXT NOT NULL,
    approve     INTEGER NOT NULL CHECK (approve IN (0, 1)),
    message     TEXT NOT NULL,
    defer_until INTEGER,
    at          INTEGER NOT NULL,
    PRIMARY KEY (run, task, attempt, identity),
    FOREIGN KEY (run, task, attempt) REFERENCES waits (run, task, attempt) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- A vote is journaled once: never changed, never removed (but with its run).
CREATE TRIGGER votes_immutable BEFORE UPDATE ON votes
BEGIN
    SELECT RAISE(ABORT, 'weft: a vote is immutable');
END;
