-- Concurrency groups (release-control.md section 4): who holds, or waits for, one of a
-- group's slots. A holder is a run, or `run/task` for a task's slot. `seq` orders
-- arrivals in the group (fair promotion); `superseded` tells a waiting run a newer one
-- displaced it (`latestOnly`, `cancelInProgress`).
CREATE TABLE slots (
    group_name TEXT NOT NULL,
    holder     TEXT NOT NULL,
    run        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    holding    BOOLEAN NOT NULL,
    superseded BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (group_name, holder)
);
CREATE INDEX slots_by_run ON slots (run);

-- Cron schedules kept by `weft serve` (section 5). `next_at` is the next tick (NULL: never
-- again); `firing_at` a tick claimed whose run may not exist yet (a server that died
-- between claiming and submitting leaves it for the next one, which creates the run under
-- the tick's name, so a tick fires once).
CREATE TABLE schedules (
    name       TEXT PRIMARY KEY,
    cron       TEXT NOT NULL,
    zone       TEXT NOT NULL,
    spec_json  TEXT NOT NULL,
    next_at    BIGINT,
    firing_at  BIGINT,
    created_at BIGINT NOT NULL
);

-- Attempts of a run share its name (section 6).
CREATE INDEX runs_by_name ON runs (name, created_at);
