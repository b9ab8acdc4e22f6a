-- A run's large values (its pipeline source and its stored spec, which holds the source
-- again) apart from its hot row. SQLite reads a row's columns in order: with megabytes of
-- source before `lease_owner`, every lease check of every journal write walked the
-- source's overflow pages (about 7 ms per task for a 100,000-task pipeline). The `runs`
-- columns stay, empty, so older readers of the schema keep their shape.
CREATE TABLE run_bodies (
    run             TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    pipeline_source TEXT NOT NULL,
    options_json    TEXT NOT NULL
) STRICT;

INSERT INTO run_bodies (run, pipeline_source, options_json)
    SELECT id, pipeline_source, options_json FROM runs;
UPDATE runs SET pipeline_source = '', options_json = '';
