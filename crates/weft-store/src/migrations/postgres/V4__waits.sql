-- Tasks that wait for people or for the world (approvals, manual interventions, gates):
-- what each waits for, since when and until when (so deadlines hold across restarts), and
-- every decision cast on it, journaled once (see the SQLite migration of the same version).
CREATE TABLE waits (
    run          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task         TEXT NOT NULL,
    attempt      BIGINT NOT NULL CHECK (attempt >= 0),
    kind         TEXT NOT NULL CHECK (kind IN ('approval', 'intervention', 'gate')),
    request_json TEXT NOT NULL,
    since        BIGINT NOT NULL,
    deadline     BIGINT,
    closed_at    BIGINT,
    outcome      TEXT,
    PRIMARY KEY (run, task, attempt)
);

-- A closed wait never changes again.
CREATE FUNCTION weft_waits_closed_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'weft: a closed wait is immutable';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER waits_closed_immutable BEFORE UPDATE ON waits
FOR EACH ROW EXECUTE FUNCTION weft_waits_closed_immutable();

CREATE TABLE votes (
    run         TEXT NOT NULL,
    task        TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    identity    TEXT NOT NULL,
    approve     BOOLEAN NOT NULL,
    message     TEXT NOT NULL,
    defer_until BIGINT,
    at          BIGINT NOT NULL,
    PRIMARY KEY (run, task, attempt, identity),
    FOREIGN KEY (run, task, attempt) REFERENCES waits (run, task, attempt) ON DELETE CASCADE
);

-- A vote is journaled once: never changed, never removed (but with its run).
CREATE FUNCTION weft_votes_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'weft: a vote is immutable';
END $$;
CREATE TRIGGER votes_immutable BEFORE UPDATE ON votes
FOR EACH ROW EXECUTE FUNCTION weft_votes_immutable();

-- A vote wakes the engine that owns its run (it also polls).
CREATE FUNCTION weft_vote_cast() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('weft', 'vote:' || NEW.run);
    RETURN NEW;
END $$;
CREATE TRIGGER votes_notify AFTER INSERT ON votes
FOR EACH ROW EXECUTE FUNCTION weft_vote_cast();
