-- SQLite's V6 moves a run's large values apart from its hot row. PostgreSQL already keeps
-- values over about 2 kB out of line (TOAST), so a lease check never reads the source:
-- nothing to do here; the version keeps both backends' histories in step.
SELECT 1;
