//! Workspace snapshots: after a task attempt ends, the workspaces it could write are
//! archived (tar + gzip) to the run store or to a bucket (an object store: a local
//! directory in this build), so that recovery on another machine starts the remaining
//! tasks from the files the finished ones left.
//!
//! - **What**: the pipeline workspaces a task had mounted writable, limited to
//!   [`SnapshotConfig::workspaces`] (decided when the run starts: bound, writable, never a
//!   secret workspace). Read-only and secret workspaces are never archived.
//! - **Archive** ([`archive`](archive())): regular files (with their mode and mtime),
//!   directories, and symbolic links that stay inside the workspace (anything else:
//!   skipped). Links are never followed; special files are skipped. Archiving stops as
//!   soon as the compressed archive exceeds [`SnapshotConfig::max_bytes`]
//!   ([`SnapshotError::TooLarge`]).
//! - **When** (`after_task.rs`): in the attempt's own tokio task, after the plugin returns
//!   and before the driver hears of the ending, so the snapshot is durable before any
//!   dependent starts. A snapshot that cannot be taken (too large, unreadable) is replaced
//!   by an empty *marker* (and a warning in the task's log): recovery then leaves that
//!   workspace as it is instead of restoring an older state. It never fails the run.
//! - **Retention**: the last [`SnapshotConfig::keep`] per (run, workspace) (`bucket.rs`, or
//!   the run store).
//! - **Restore** ([`restore_run`], from `take_over`): the workspace directory is emptied
//!   and the latest snapshot unpacked into it ([`restore`](restore())); entries that are
//!   absolute, contain `..`, go through a symbolic link or are links leading out of the
//!   workspace are refused.
//! - **Paths** (`workspace.rs`): archiving and restoring open the workspace directory once
//!   and resolve every path beneath it (cap-std), so a directory swapped for a link to
//!   outside while they work cannot lead them out.

mod after_task;
mod archive;
mod bucket;
mod restore;
mod unpack;
mod workspace;

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub(crate) use after_task::AfterTask;
pub(crate) use archive::archive;
pub use bucket::Bucket;
pub use restore::{Restored, history, restore_run};
pub(crate) use unpack::restore;

/// Default cap on one compressed snapshot (the run store's own limit).
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// Default number of snapshots kept per (run, workspace).
pub const DEFAULT_KEEP: u32 = 3;
/// Event kind: a workspace was archived after a task.
pub const SNAPSHOT_TAKEN: &str = "snapshot-taken";
/// Event kind: a workspace could not be archived after a task (an empty marker was kept).
pub const SNAPSHOT_SKIPPED: &str = "snapshot-skipped";
/// Event kind: recovery restored a workspace from a snapshot.
pub const SNAPSHOT_RESTORED: &str = "snapshot-restored";
/// Event kind: recovery found only a marker (the last snapshot could not be taken) and
/// left the workspace as it was.
pub const SNAPSHOT_UNAVAILABLE: &str = "snapshot-unavailable";

/// Why a snapshot could not be taken or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The compressed archive grew past the cap (archiving stopped there).
    #[error("the archive exceeds the snapshot cap of {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file (or the archive).
        path: String,
        /// What failed.
        source: io::Error,
    },
    /// An archive entry that would land outside the workspace or of a refused type, or a
    /// path that would lead out of the workspace through a link while archiving.
    #[error("refused archive entry `{path}`: {why}")]
    Unsafe {
        /// The entry's path as the archive spells it.
        path: String,
        /// Why it is refused.
        why: String,
    },
    /// The snapshot target (store or bucket) failed.
    #[error("{0}")]
    Target(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn unsafe_entry(path: &Path, why: impl Into<String>) -> SnapshotError {
    SnapshotError::Unsafe {
        path: path.display().to_string(),
        why: why.into(),
    }
}

/// Where snapshots go.
#[derive(Clone)]
pub enum SnapshotTarget {
    /// The run store (`WriteOp::Snapshot`), next to the run's journal.
    Database,
    /// An object store.
    Bucket(Bucket),
}

impl std::fmt::Debug for SnapshotTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec())
    }
}

impl SnapshotTarget {
    /// Parses a target: `db` (or `database`) for the run store; a directory path or a
    /// `file:///DIR` URL for a local bucket directory (created if missing). Other URL
    /// schemes (`s3://`, `gs://`, `az://`) name object stores this build does not include
    /// (the `object_store` crate's `aws`, `gcp`, `azure` features) and are refused.
    pub fn parse(spec: &str) -> Result<SnapshotTarget, String> {
        match spec.trim() {
            "" => Err("empty snapshot target".into()),
            "db" | "database" => Ok(SnapshotTarget::Database),
            spec => Bucket::open(spec).map(SnapshotTarget::Bucket),
        }
    }

    /// The target as [`SnapshotTarget::parse`] reads it back (`db`, a directory, a URL).
    pub fn spec(&self) -> String {
        match self {
            SnapshotTarget::Database => "db".to_string(),
            SnapshotTarget::Bucket(bucket) => bucket.spec().to_string(),
        }
    }
}

/// How a run's workspaces are snapshotted.
#[derive(Debug, Clone)]
pub struct SnapshotConfig {
    /// Where the archives go.
    pub target: SnapshotTarget,
    /// Largest compressed archive; a bigger workspace is not archived (a marker is kept).
    pub max_bytes: u64,
    /// Snapshots kept per (run, workspace), the newest; at least 1.
    pub keep: u32,
    /// The pipeline workspaces that may be archived: bound, writable and not secret.
    pub workspaces: BTreeSet<String>,
}

/// [`SnapshotConfig`] as the run record keeps it (`StoredOptions::snapshots`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSnapshotConfig {
    /// [`SnapshotTarget::spec`].
    pub target: String,
    /// [`SnapshotConfig::max_bytes`].
    pub max_bytes: u64,
    /// [`SnapshotConfig::keep`].
    pub keep: u32,
    /// [`SnapshotConfig::workspaces`].
    pub workspaces: Vec<String>,
}

impl SnapshotConfig {
    /// What the run record keeps.
    pub fn stored(&self) -> StoredSnapshotConfig {
        StoredSnapshotConfig {
            target: self.target.spec(),
            max_bytes: self.max_bytes,
            keep: self.keep,
            workspaces: self.workspaces.iter().cloned().collect(),
        }
    }

    /// Rebuilds the configuration from the run record (the target is opened again).
    pub fn from_stored(stored: &StoredSnapshotConfig) -> Result<SnapshotConfig, String> {
        Ok(SnapshotConfig {
            target: SnapshotTarget::parse(&stored.target)?,
            max_bytes: if stored.max_bytes == 0 {
                DEFAULT_MAX_BYTES
            } else {
                stored.max_bytes
            },
            keep: stored.keep.max(1),
            workspaces: stored.workspaces.iter().cloned().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn targets_parse() {
        assert!(matches!(
            SnapshotTarget::parse("db"),
            Ok(SnapshotTarget::Database)
        ));
        assert!(matches!(
            SnapshotTarget::parse("database"),
            Ok(SnapshotTarget::Database)
        ));
        assert!(SnapshotTarget::parse("").is_err());
        let err = SnapshotTarget::parse("s3://bucket/prefix").unwrap_err();
        assert!(err.contains("s3://bucket/prefix"), "{err}");
        assert!(SnapshotTarget::parse("file://remote-host/dir").is_err());
        let stored = StoredSnapshotConfig {
            target: "db".into(),
            max_bytes: 0,
            keep: 0,
            workspaces: vec!["src".into()],
        };
        let config = SnapshotConfig::from_stored(&stored).unwrap();
        assert_eq!((config.max_bytes, config.keep), (DEFAULT_MAX_BYTES, 1));
        assert_eq!(config.stored().workspaces, ["src"]);
    }
}
