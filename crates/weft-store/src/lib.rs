//! Persistence for weft runs, behind a trait so SQLite (the embedded default) and later
//! PostgreSQL can serve the same engine. The durable-runs work fills this crate in; until
//! then runs keep their report and logs as files (see weft-cli).
