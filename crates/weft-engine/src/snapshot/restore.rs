//! Recovery's side of snapshots: restore the newest snapshot of each workspace of a run
//! ([`restore_run`]) and list a run's snapshot history ([`history`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use weft_store::{Lease, NewEvent, RunStore, StoreError, Timestamp, WriteOp};

use super::{
    SNAPSHOT_RESTORED, SNAPSHOT_SKIPPED, SNAPSHOT_TAKEN, SNAPSHOT_UNAVAILABLE, SnapshotConfig,
    SnapshotError, SnapshotTarget, io_err, restore,
};

/// A workspace that recovery restored (or left alone because only a marker was found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The pipeline workspace.
    pub workspace: String,
    /// Its directory.
    pub dir: PathBuf,
    /// The task the snapshot was taken after.
    pub task: String,
    /// The snapshot's size (0 for a marker).
    pub size: u64,
    /// `false` when the newest snapshot was a marker: the workspace was left as it was.
    pub restored: bool,
}

/// The newest snapshot of one workspace: (task, data, where).
async fn latest(
    store: &Arc<dyn RunStore>,
    config: &SnapshotConfig,
    run: &str,
    workspace: &str,
) -> Result<Option<(String, Vec<u8>, String)>, SnapshotError> {
    match &config.target {
        SnapshotTarget::Database => {
            let found = store
                .latest_snapshot(run, workspace)
                .map_err(|e| SnapshotError::Target(format!("run store: {e}")))?;
            Ok(found.map(|s| (s.task, s.data, format!("run store snapshot {}", s.id))))
        }
        SnapshotTarget::Bucket(bucket) => Ok(bucket
            .latest(run, workspace, config.max_bytes)
            .await?
            .map(|(entry, data)| (entry.task, data, entry.key))),
    }
}

/// The snapshot events of a run (taken, skipped, restored, unavailable), oldest first,
/// as JSON objects: `kind`, `task`, `attempt`, `at` (ms) and the event's data.
pub fn history(store: &dyn RunStore, run: &str) -> Result<Vec<serde_json::Value>, StoreError> {
    const KINDS: [&str; 4] = [
        SNAPSHOT_TAKEN,
        SNAPSHOT_SKIPPED,
        SNAPSHOT_RESTORED,
        SNAPSHOT_UNAVAILABLE,
    ];
    Ok(store
        .events(run, 0, usize::MAX)?
        .into_iter()
        .filter(|e| KINDS.contains(&e.event.kind.as_str()))
        .map(|e| {
            let mut doc = serde_json::json!({
                "kind": e.event.kind,
                "task": e.event.task,
                "attempt": e.event.attempt,
                "at": e.event.at.millis(),
            });
            if let (Some(doc), Ok(serde_json::Value::Object(data))) = (
                doc.as_object_mut(),
                serde_json::from_str::<serde_json::Value>(&e.event.data_json),
            ) {
                for (key, value) in data {
                    doc.entry(key).or_insert(value);
                }
            }
            doc
        })
        .collect())
}

/// Restores, for each snapshotted workspace of the run, its newest snapshot into its
/// directory (created if missing) and records a [`SNAPSHOT_RESTORED`] event. A workspace
/// whose newest snapshot is a marker is left as it is ([`SNAPSHOT_UNAVAILABLE`]).
pub async fn restore_run(
    store: &Arc<dyn RunStore>,
    lease: &Lease,
    config: &SnapshotConfig,
    dirs: &BTreeMap<String, PathBuf>,
) -> Result<Vec<Restored>, SnapshotError> {
    let mut restored = Vec::new();
    for workspace in &config.workspaces {
        let Some(dir) = dirs.get(workspace) else {
            continue;
        };
        // A new machine has no directory yet; the tasks mount it either way.
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let Some((task, data, location)) = latest(store, config, &lease.run, workspace).await?
        else {
            continue;
        };
        let size = data.len() as u64;
        let kind = if data.is_empty() {
            tracing::warn!(
                run = %lease.run, %workspace, %task,
                "the workspace was not snapshotted after task `{task}`; leaving it as it is"
            );
            SNAPSHOT_UNAVAILABLE
        } else {
            let target = dir.clone();
            let unpacked = tokio::task::spawn_blocking(move || restore(&target, &data))
                .await
                .map_err(|e| SnapshotError::Target(format!("the restoring thread failed: {e}")))?
                .map_err(|e| SnapshotError::Target(format!("workspace `{workspace}`: {e}")))?;
            tracing::info!(
                run = %lease.run, %workspace, %task, %location, files = unpacked.files,
                "restored the workspace from its snapshot"
            );
            SNAPSHOT_RESTORED
        };
        store
            .write(WriteOp::Event {
                lease: lease.clone(),
                event: NewEvent {
                    at: Timestamp::now(),
                    kind: kind.to_string(),
                    task: Some(task.clone()),
                    attempt: None,
                    data_json: serde_json::json!({
                        "workspace": workspace,
                        "dir": dir,
                        "size": size,
                        "location": location,
                    })
                    .to_string(),
                },
            })
            .map_err(|e| SnapshotError::Target(format!("run store: {e}")))?;
        restored.push(Restored {
            workspace: workspace.clone(),
            dir: dir.clone(),
            task,
            size,
            restored: kind == SNAPSHOT_RESTORED,
        });
    }
    Ok(restored)
}
