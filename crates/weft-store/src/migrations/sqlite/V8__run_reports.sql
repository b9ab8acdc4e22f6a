-- A finished run's report (megabytes for a big pipeline) apart from its hot row, as V6 did
-- for the source: `runs.report_json` sat before the lease columns, so every read of a
-- finished run's lease (outbox delivery moves it) and every scan of `runs` walked the
-- report's overflow pages. The report gets a table of its own, written once with an
-- INSERT (an UPDATE of `run_bodies` would read and rewrite the source with it). The
-- `runs` column stays, always NULL, so older readers of the schema keep their shape.
CREATE TABLE run_reports (
    run         TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    report_json TEXT NOT NULL
) STRICT;

INSERT INTO run_reports (run, report_json)
    SELECT id, report_json FROM runs WHERE report_json IS NOT NULL;

-- Emptying a finished run's column needs the trigger out of the way for a moment; it comes
-- back unchanged, so `runs.report_json` stays NULL for good.
DROP TRIGGER runs_finished_immutable;
UPDATE runs SET report_json = NULL;
CREATE TRIGGER runs_finished_immutable BEFORE UPDATE ON runs
WHEN OLD.finished_at IS NOT NULL AND (
    NEW.phase IS NOT OLD.phase OR NEW.status IS NOT OLD.status OR NEW.reason IS NOT OLD.reason
    OR NEW.finished_at IS NOT OLD.finished_at OR NEW.report_json IS NOT OLD.report_json)
BEGIN
    SELECT RAISE(ABORT, 'weft: a finished run is immutable');
END;

-- A report is written once, when its run finishes, and never changes.
CREATE TRIGGER run_reports_immutable BEFORE UPDATE ON run_reports
BEGIN
    SELECT RAISE(ABORT, 'weft: a finished run is immutable');
END;
