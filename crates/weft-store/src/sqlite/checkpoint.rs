//! WAL checkpoints beside the writer.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::configure;

/// Copies the WAL back into the database on a thread of its own, every
/// [`Checkpointer::EVERY`]. Left to SQLite, the commit that crosses 1,000 WAL pages runs
/// the checkpoint itself (page copies and an `fsync`), and every write queued behind that
/// commit waits milliseconds: the slow tail of run durations under load. A passive
/// checkpoint runs beside the writer and never blocks it.
pub(super) struct Checkpointer {
    /// Dropped to stop the thread.
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    const EVERY: Duration = Duration::from_millis(200);

    /// Starts the thread with a connection of its own; `None` if either cannot be had.
    pub(super) fn start(path: &Path) -> Option<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        configure(&conn, path, false).ok()?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("weft-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Self::EVERY)
                {
                    if let Err(err) =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(error = %err, "a WAL checkpoint failed; the next one retries");
                    }
                }
            })
            .ok()?;
        Some(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Checkpointer {
    /// WAL size past which the last checkpoint runs: SQLite's own automatic threshold
    /// (1,000 pages of 4 KiB). Below it a short process (a `weft run` of a few tasks, over
    /// before the first tick) leaves its WAL to the next, which costs little.
    const LAST_ABOVE: u64 = 1000 * 4096;

    /// The checkpoint of a store about to be let go of: copies the WAL back and empties
    /// it when it has grown past [`Self::LAST_ABOVE`], so WALs left by processes that
    /// never drop their store (and so never checkpoint on close) stay bounded.
    pub(super) fn last(conn: &Connection, path: &Path) {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let grown = std::fs::metadata(&wal).is_ok_and(|m| m.len() > Self::LAST_ABOVE);
        if grown && let Err(err) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::debug!(error = %err, "the last WAL checkpoint failed; the next open's checkpointer retries");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
