//! The after-task hook: when an attempt ends, archive the workspaces it could write and
//! store the archives (or markers) durably before the driver hears of the ending, so a
//! dependent never starts before the snapshot it might be recovered from exists.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use weft_core::StartTask;
use weft_runtime::{LogLevel, LogLine, LogSink, LogStream, TaskRequest};
use weft_store::{Lease, NewEvent, RunStore, StoreError, Timestamp, WriteAck, WriteOp};

use super::{
    SNAPSHOT_SKIPPED, SNAPSHOT_TAKEN, SnapshotConfig, SnapshotError, SnapshotTarget, archive,
};
use crate::persist::Durable;

/// The snapshots to take when one task attempt ends.
pub(crate) struct AfterTask {
    config: Arc<SnapshotConfig>,
    store: Arc<dyn RunStore>,
    lease: Lease,
    task: String,
    /// The stored attempt number.
    attempt: u32,
    /// (pipeline workspace, host directory).
    workspaces: Vec<(String, PathBuf)>,
    log: Arc<dyn LogSink>,
}

impl AfterTask {
    /// What to archive after `start` ends: the pipeline workspaces its request mounts
    /// writable that the configuration allows (never a read-only secret workspace).
    /// `None` without a configuration, a durable store or such a workspace.
    pub(crate) fn plan(
        config: Option<&SnapshotConfig>,
        durable: Option<&Durable>,
        read_only: &BTreeSet<String>,
        start: &StartTask,
        request: &TaskRequest,
    ) -> Option<AfterTask> {
        let (config, durable) = (config?, durable?);
        let mut workspaces: Vec<(String, PathBuf)> = Vec::new();
        for mount in request.grants.workspaces.iter().filter(|m| !m.read_only) {
            let Some((_, pipeline_side)) = start.workspaces.iter().find(|(t, _)| t == &mount.name)
            else {
                continue;
            };
            if config.workspaces.contains(pipeline_side)
                && !read_only.contains(pipeline_side)
                && !workspaces.iter().any(|(w, _)| w == pipeline_side)
            {
                workspaces.push((pipeline_side.clone(), mount.host_path.clone()));
            }
        }
        if workspaces.is_empty() {
            return None;
        }
        let base = durable.attempt_base.get(&start.name).copied().unwrap_or(0);
        Some(AfterTask {
            config: Arc::new(config.clone()),
            store: durable.store.clone(),
            lease: durable.lease.clone(),
            task: start.name.clone(),
            attempt: base + start.attempt,
            workspaces,
            log: request.log.clone(),
        })
    }

    /// Takes the snapshots; never fails (problems become warnings and markers).
    pub(crate) async fn run(self) {
        for (workspace, dir) in &self.workspaces {
            let config = self.config.clone();
            let path = dir.clone();
            let archived = tokio::task::spawn_blocking(move || archive(&path, config.max_bytes))
                .await
                .unwrap_or_else(|e| {
                    Err(SnapshotError::Target(format!(
                        "the archiving thread failed: {e}"
                    )))
                });
            let outcome = match archived {
                Ok(archive) => {
                    if !archive.skipped.is_empty() {
                        tracing::debug!(
                            task = %self.task, %workspace, skipped = ?archive.skipped,
                            "entries left out of the snapshot"
                        );
                    }
                    self.store_archive(workspace, archive.data).await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok((size, location)) => {
                    tracing::debug!(task = %self.task, %workspace, size, %location, "workspace snapshot taken");
                    self.event(
                        SNAPSHOT_TAKEN,
                        serde_json::json!({
                            "workspace": workspace,
                            "size": size,
                            "target": self.config.target.spec(),
                            "location": location,
                        }),
                    );
                }
                Err(e) => self.skipped(workspace, &e).await,
            }
        }
    }

    /// Stores an archive; returns its size and where it went.
    async fn store_archive(
        &self,
        workspace: &str,
        data: Vec<u8>,
    ) -> Result<(u64, String), SnapshotError> {
        let size = data.len() as u64;
        match &self.config.target {
            SnapshotTarget::Database => {
                let op = WriteOp::Snapshot {
                    lease: self.lease.clone(),
                    task: self.task.clone(),
                    workspace: workspace.to_string(),
                    data,
                    at: Timestamp::now(),
                    keep: self.config.keep,
                };
                let store = self.store.clone();
                // Written through (and waited for): durable before the ending is seen.
                let written = tokio::task::spawn_blocking(move || store.write(op))
                    .await
                    .map_err(|e| SnapshotError::Target(format!("the store thread failed: {e}")))?;
                match written {
                    Ok(WriteAck::Snapshot(id)) => Ok((size, format!("run store snapshot {id}"))),
                    Ok(_) => Ok((size, "run store".to_string())),
                    Err(StoreError::TooLarge { limit, .. }) => {
                        Err(SnapshotError::TooLarge { limit })
                    }
                    Err(e) => Err(SnapshotError::Target(format!("run store: {e}"))),
                }
            }
            SnapshotTarget::Bucket(bucket) => bucket
                .put(
                    &self.lease.run,
                    workspace,
                    &self.task,
                    data,
                    self.config.keep,
                )
                .await
                .map(|key| (size, key)),
        }
    }

    /// Warns and keeps a marker, so recovery does not restore an older state.
    async fn skipped(&self, workspace: &str, error: &SnapshotError) {
        let text = format!(
            "workspace `{workspace}` was not snapshotted after this task: {error}; a recovery \
             will leave it as it finds it"
        );
        tracing::warn!(task = %self.task, "{text}");
        self.log.line(LogLine {
            stream: LogStream::Host,
            level: LogLevel::Warn,
            text,
        });
        if let Err(e) = self.store_archive(workspace, Vec::new()).await {
            tracing::warn!(task = %self.task, %workspace, error = %e, "cannot keep a snapshot marker");
        }
        self.event(
            SNAPSHOT_SKIPPED,
            serde_json::json!({ "workspace": workspace, "error": error.to_string() }),
        );
    }

    fn event(&self, kind: &str, data: serde_json::Value) {
        let op = WriteOp::Event {
            lease: self.lease.clone(),
            event: NewEvent {
                at: Timestamp::now(),
                kind: kind.to_string(),
                task: Some(self.task.clone()),
                attempt: Some(self.attempt),
                data_json: data.to_string(),
            },
        };
        if let Err(e) = self.store.enqueue(op) {
            tracing::warn!(error = %e, "cannot record a snapshot event");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::fs;
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::snapshot::{history, restore, restore_run};

    /// A run in an in-memory store and its durable handle (task `t` has attempt base 2).
    fn durable_run() -> (Arc<dyn RunStore>, Durable) {
        let store: Arc<dyn RunStore> = Arc::new(
            weft_store::SqliteStore::open_in_memory(weft_store::StoreLimits::default()).unwrap(),
        );
        let run = weft_store::NewRun {
            id: "r".into(),
            name: "r".into(),
            pipeline_name: "p".into(),
            pipeline_source: String::new(),
            params_json: "{}".into(),
            options_json: "{}".into(),
            created_at: Timestamp::now(),
            recovery: weft_store::Recovery::Resume,
        };
        let lease = store.create_run(&run, "test", Timestamp::now()).unwrap();
        let durable = Durable {
            store: store.clone(),
            lease,
            attempt_base: [("t".to_string(), 2)].into(),
            replay: None,
            heartbeat_every: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(30),
        };
        (store, durable)
    }

    /// Attempt 1 of task `t` mounting `mounts` (task side, pipeline side, directory,
    /// read-only), and the sink its log goes to.
    fn start_and_request(
        mounts: &[(&str, &str, &Path, bool)],
    ) -> (StartTask, TaskRequest, Arc<weft_runtime::MemorySink>) {
        let start = StartTask {
            node: 0,
            name: "t".into(),
            pipeline_task: "t".into(),
            plugin: "exit".into(),
            attempt: 1,
            retries: 1,
            is_finally: false,
            params: BTreeMap::new(),
            timeout: None,
            secrets: Vec::new(),
            workspaces: mounts
                .iter()
                .map(|(task_side, pipeline_side, _, _)| {
                    (task_side.to_string(), pipeline_side.to_string())
                })
                .collect(),
        };
        let sink = Arc::new(weft_runtime::MemorySink::default());
        let mut request = TaskRequest::new("t");
        request.log = sink.clone();
        for (task_side, _, dir, read_only) in mounts {
            request
                .grants
                .workspaces
                .push(weft_runtime::WorkspaceMount {
                    name: task_side.to_string(),
                    host_path: dir.to_path_buf(),
                    guest_path: format!("/workspace/{task_side}"),
                    read_only: *read_only,
                });
        }
        (start, request, sink)
    }

    #[tokio::test]
    async fn only_writable_configured_non_secret_workspaces_are_archived() {
        let dirs = tempfile::tempdir().unwrap();
        let dir = |name: &str| {
            let d = dirs.path().join(name);
            fs::create_dir(&d).unwrap();
            fs::write(d.join("file"), name).unwrap();
            d
        };
        let (src, ro, creds, other) = (dir("src"), dir("ro"), dir("creds"), dir("other"));
        let (store, durable) = durable_run();
        let config = SnapshotConfig {
            target: SnapshotTarget::Database,
            max_bytes: 1 << 20,
            keep: 3,
            workspaces: ["src", "ro", "creds"].map(String::from).into(),
        };
        let secret: BTreeSet<String> = ["creds".to_string()].into();
        let (start, request, _) = start_and_request(&[
            ("w", "src", &src, false),
            ("w2", "src", &src, false),
            ("r", "ro", &ro, true),
            ("c", "creds", &creds, false),
            ("o", "other", &other, false),
        ]);
        assert!(
            AfterTask::plan(None, Some(&durable), &secret, &start, &request).is_none(),
            "no configuration"
        );
        assert!(
            AfterTask::plan(Some(&config), None, &secret, &start, &request).is_none(),
            "no durable store"
        );
        let after =
            AfterTask::plan(Some(&config), Some(&durable), &secret, &start, &request).unwrap();
        assert_eq!(after.workspaces, [("src".to_string(), src.clone())]);
        assert_eq!(after.attempt, 3, "the stored attempt number");
        after.run().await;
        let kept = store.snapshots("r").unwrap();
        assert_eq!(
            kept.iter()
                .map(|s| (s.task.as_str(), s.workspace.as_str()))
                .collect::<Vec<_>>(),
            [("t", "src")]
        );
        let latest = store.latest_snapshot("r", "src").unwrap().unwrap();
        let restored = dirs.path().join("restored");
        restore(&restored, &latest.data).unwrap();
        assert_eq!(fs::read_to_string(restored.join("file")).unwrap(), "src");
        let events = history(store.as_ref(), "r").unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["kind"], SNAPSHOT_TAKEN);
        assert_eq!(events[0]["attempt"], 3);

        // Over the cap: a warning in the task's log, a marker, and recovery leaves the
        // workspace alone.
        let small = SnapshotConfig {
            max_bytes: 8,
            ..config.clone()
        };
        let (start, request, sink) = start_and_request(&[("w", "src", &src, false)]);
        AfterTask::plan(Some(&small), Some(&durable), &secret, &start, &request)
            .unwrap()
            .run()
            .await;
        assert!(
            sink.text().contains("was not snapshotted"),
            "{}",
            sink.text()
        );
        let marker = store.latest_snapshot("r", "src").unwrap().unwrap();
        assert!(marker.data.is_empty());
        fs::write(src.join("file"), "changed since").unwrap();
        let dirs_by_name: BTreeMap<String, PathBuf> = [("src".to_string(), src.clone())].into();
        let restored = restore_run(&store, &durable.lease, &config, &dirs_by_name)
            .await
            .unwrap();
        assert_eq!(restored.len(), 1);
        assert!(!restored[0].restored);
        assert_eq!(
            fs::read_to_string(src.join("file")).unwrap(),
            "changed since"
        );
    }
}
