-- A finished run's report (megabytes for a big pipeline) apart from its hot row, as V6 did
-- for the source: `runs.report_json` sat before the lease columns, so every read of a
-- finished run's lease (outbox delivery moves it) and every scan of `runs` walked the
-- report's overflow pages. The report now lives beside the source in `run_bodies`; the
-- `runs` column stays, always NULL, so older readers of the schema keep their shape.
ALTER TABLE run_bodies ADD COLUMN report_json TEXT;

UPDATE run_bodies SET report_json = (SELECT r.report_json FROM runs r WHERE r.id = run_bodies.run);

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

-- A report, once written, never changes (it is written once, when the run finishes).
CREATE TRIGGER run_reports_immutable BEFORE UPDATE OF report_json ON run_bodies
WHEN OLD.report_json IS NOT NULL AND NEW.report_json IS NOT OLD.report_json
BEGIN
    SELECT RAISE(ABORT, 'weft: a finished run is immutable');
END;
