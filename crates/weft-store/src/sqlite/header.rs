//! What opening a SQLite store checks before SQLite reads the file: that it is a SQLite
//! database, and, when the file holds the whole database, that it is as long as its
//! header says. Cheap whatever the file's size; the full check is `weft db check`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::Result;
use crate::error::StoreError;

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Checks the file at `path` (a missing or empty file is a database not yet written):
/// [`StoreError::Corrupt`] when it is not a SQLite database, or when it is shorter than
/// its header counts while nothing beside it (a WAL or a rollback journal) holds pages.
pub(super) fn check(path: &Path) -> Result<()> {
    let open_err = |e: std::io::Error| StoreError::Open {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    // Whether the file alone is the database, asked before and after reading it: while a
    // WAL exists its pages count too, and a checkpoint writes page 1 (the header, with
    // the new page count) before the pages after it. So a short file beside a WAL is a
    // checkpoint in progress, or one a crash interrupted, which SQLite finishes.
    let self_contained_before = self_contained(path);
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(open_err(e)),
    };
    let mut header = Vec::with_capacity(100);
    let read = (&mut file)
        .take(100)
        .read_to_end(&mut header)
        .map_err(open_err)?;
    let len = file.metadata().map_err(open_err)?.len();
    if len == 0 {
        return Ok(());
    }
    if read < 100 {
        return Err(corrupt(format!(
            "the file is {len} bytes, shorter than a SQLite header (truncated?)"
        )));
    }
    if &header[..16] != SQLITE_HEADER {
        return Err(corrupt(
            "the file is not a SQLite database (bad header)".into(),
        ));
    }
    if !(self_contained_before && self_contained(path)) {
        return Ok(());
    }
    // The header's page count is trusted only when SQLite wrote it with the current
    // change counter (offsets 24 and 92).
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        size => u64::from(size),
    };
    let pages = u64::from(word(28));
    if pages > 0 && word(24) == word(92) && len < pages * page_size {
        return Err(corrupt(format!(
            "the file is {len} bytes, shorter than the {pages} pages of {page_size} bytes its header counts (truncated?)"
        )));
    }
    Ok(())
}

/// Whether no WAL and no rollback journal sits beside the database file.
fn self_contained(path: &Path) -> bool {
    let beside = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    !beside("-wal").exists() && !beside("-journal").exists()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A database of several pages written without a WAL, and its path.
    fn database(dir: &Path) -> PathBuf {
        let path = dir.join("weft.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (v BLOB);
             INSERT INTO t VALUES (zeroblob(20000));",
        )
        .unwrap();
        drop(conn);
        path
    }

    fn truncate_by(path: &Path, bytes: u64) {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let len = file.metadata().unwrap().len();
        file.set_len(len - bytes).unwrap();
    }

    fn is_truncated(result: Result<()>) -> bool {
        matches!(result, Err(StoreError::Corrupt { detail, .. }) if detail.contains("truncated?"))
    }

    #[test]
    fn sound_missing_and_empty_files_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = database(dir.path());
        check(&path).unwrap();
        check(&dir.path().join("missing.db")).unwrap();
        std::fs::write(dir.path().join("empty.db"), b"").unwrap();
        check(&dir.path().join("empty.db")).unwrap();
    }

    #[test]
    fn a_file_cut_short_is_corrupt_and_says_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = database(dir.path());
        truncate_by(&path, 4096);
        assert!(is_truncated(check(&path)));
        std::fs::write(&path, b"SQLite format 3\0 and then nothing").unwrap();
        assert!(is_truncated(check(&path)));
    }

    #[test]
    fn garbage_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weft.db");
        std::fs::write(&path, [7u8; 8192]).unwrap();
        assert!(matches!(
            check(&path),
            Err(StoreError::Corrupt { detail, .. }) if detail.contains("bad header")
        ));
    }

    /// A checkpoint writes the header before the pages it counts, so a short file beside
    /// a WAL (a checkpoint in progress, or one a crash interrupted) is sound.
    #[test]
    fn a_short_file_beside_a_wal_or_journal_is_left_to_sqlite() {
        for beside in ["weft.db-wal", "weft.db-journal"] {
            let dir = tempfile::tempdir().unwrap();
            let path = database(dir.path());
            truncate_by(&path, 4096);
            std::fs::write(dir.path().join(beside), b"").unwrap();
            check(&path).unwrap();
        }
    }
}
