-- Signals: a message for whichever engine owns a run (see the SQLite migration of the same
-- version). Inserting one notifies channel `weft` so the owner wakes up at once; it also
-- polls, so nothing depends on the notification arriving.
CREATE TABLE signals (
    id           BIGSERIAL PRIMARY KEY,
    run          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    sent_at      BIGINT NOT NULL,
    handled_at   BIGINT,
    handled_by   TEXT
);
CREATE INDEX signals_pending ON signals (run, id) WHERE handled_at IS NULL;

CREATE FUNCTION weft_signal_sent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('weft', 'signal:' || NEW.run);
    RETURN NEW;
END $$;
CREATE TRIGGER signals_notify AFTER INSERT ON signals
FOR EACH ROW EXECUTE FUNCTION weft_signal_sent();
