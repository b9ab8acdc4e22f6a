-- Signals: a message for whichever engine owns a run (cancel today; approval votes, reruns
-- and schedule ticks later). Any process may send one; the run's owner takes it, acts on
-- it and marks it handled under its lease, so a signal sent to any server reaches the one
-- executing the run, through the database.
CREATE TABLE signals (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    sent_at      INTEGER NOT NULL,
    handled_at   INTEGER,
    handled_by   TEXT
) STRICT;
CREATE INDEX signals_pending ON signals (run, id) WHERE handled_at IS NULL;
