//! Buckets: snapshots kept as objects in an object store (`object_store`), one folder per
//! (run, workspace), with retention of the newest.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::SnapshotError;

/// Suffix of a snapshot object in a bucket.
const ARCHIVE_SUFFIX: &str = ".tar.gz";
/// Suffix of a marker object in a bucket (the snapshot could not be taken).
const MARKER_SUFFIX: &str = ".skipped";

/// An object store and the prefix snapshots are kept under
/// (`<prefix>/<run>/<workspace>/<stamp>-<task>.tar.gz`).
#[derive(Clone, Debug)]
pub struct Bucket {
    spec: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

/// One snapshot (or marker) in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketEntry {
    /// The object's key.
    pub key: String,
    /// The object's location.
    pub location: ObjectPath,
    /// The task it was taken after.
    pub task: String,
    /// Whether it is a marker (the snapshot could not be taken) rather than an archive.
    pub marker: bool,
    /// Its size.
    pub size: u64,
}

/// A stamp that sorts by time and is unique (and increasing) within this process.
fn next_stamp() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let previous = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(now);
    now.max(previous + 1)
}

impl Bucket {
    /// Opens a bucket: a directory path or a `file:///DIR` URL (the directory is created
    /// if missing), or another URL `object_store` understands in this build (none: the
    /// cloud backends are not built, and their schemes are refused with a hint).
    pub(super) fn open(spec: &str) -> Result<Bucket, String> {
        let dir = if spec.contains("://") {
            let url = url::Url::parse(spec).map_err(|e| format!("`{spec}`: {e}"))?;
            if url.scheme() != "file" {
                return match object_store::parse_url(&url) {
                    Ok((store, prefix)) => Ok(Bucket {
                        spec: spec.to_string(),
                        store: Arc::from(store),
                        prefix,
                    }),
                    Err(e) => Err(format!(
                        "`{spec}`: {e} (this build of weft stores snapshots in the run store \
                         (`db`) or a local directory only)"
                    )),
                };
            }
            url.to_file_path()
                .map_err(|()| format!("`{spec}`: not a local directory URL"))?
        } else {
            PathBuf::from(spec)
        };
        // Absolute, without a trailing `/`: the spec is stored and compared.
        let dir: PathBuf = std::path::absolute(&dir)
            .map_err(|e| format!("`{spec}`: {e}"))?
            .components()
            .collect();
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| format!("snapshot directory {}: {e}", dir.display()))?;
        Ok(Bucket {
            spec: dir.display().to_string(),
            store: Arc::new(local),
            prefix: ObjectPath::default(),
        })
    }

    /// The bucket as `SnapshotTarget::parse` reads it back (a directory or a URL).
    pub fn spec(&self) -> &str {
        &self.spec
    }

    fn folder(&self, run: &str, workspace: &str) -> ObjectPath {
        self.prefix.clone().join(run).join(workspace)
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> SnapshotError {
        SnapshotError::Target(format!("snapshot bucket {}: {what}: {e}", self.spec))
    }

    /// Stores an archive (or, with empty `data`, a marker) of `workspace` after `task`,
    /// then deletes the oldest beyond `keep`. Returns the object's key.
    pub async fn put(
        &self,
        run: &str,
        workspace: &str,
        task: &str,
        data: Vec<u8>,
        keep: u32,
    ) -> Result<String, SnapshotError> {
        let suffix = if data.is_empty() {
            MARKER_SUFFIX
        } else {
            ARCHIVE_SUFFIX
        };
        let name = format!("{:020}-{task}{suffix}", next_stamp());
        let location = self.folder(run, workspace).join(name.as_str());
        self.store
            .put(&location, PutPayload::from(data))
            .await
            .map_err(|e| self.failed("cannot store a snapshot", e))?;
        self.prune(run, workspace, keep).await?;
        Ok(location.to_string())
    }

    /// The snapshots (and markers) of a run's workspace, oldest first.
    pub async fn list(
        &self,
        run: &str,
        workspace: &str,
    ) -> Result<Vec<BucketEntry>, SnapshotError> {
        let folder = self.folder(run, workspace);
        let mut listing = self.store.list(Some(&folder));
        let mut entries = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.failed("cannot list snapshots", e))?;
            let Some(name) = meta.location.filename() else {
                continue;
            };
            let (stem, marker) = if let Some(stem) = name.strip_suffix(ARCHIVE_SUFFIX) {
                (stem, false)
            } else if let Some(stem) = name.strip_suffix(MARKER_SUFFIX) {
                (stem, true)
            } else {
                continue;
            };
            let Some((stamp, task)) = stem.split_once('-') else {
                continue;
            };
            if stamp.len() != 20 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            entries.push(BucketEntry {
                key: meta.location.to_string(),
                location: meta.location.clone(),
                task: task.to_string(),
                marker,
                size: meta.size,
            });
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    /// Deletes all but the newest `keep` snapshots of a run's workspace.
    pub async fn prune(&self, run: &str, workspace: &str, keep: u32) -> Result<(), SnapshotError> {
        let entries = self.list(run, workspace).await?;
        let keep = usize::try_from(keep.max(1)).unwrap_or(usize::MAX);
        let excess = entries.len().saturating_sub(keep);
        for entry in &entries[..excess] {
            match self.store.delete(&entry.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failed("cannot delete an old snapshot", e)),
            }
        }
        Ok(())
    }

    /// The newest snapshot (or marker) of a run's workspace and its bytes; refuses one
    /// larger than `max_bytes` without reading it.
    pub async fn latest(
        &self,
        run: &str,
        workspace: &str,
        max_bytes: u64,
    ) -> Result<Option<(BucketEntry, Vec<u8>)>, SnapshotError> {
        let Some(entry) = self.list(run, workspace).await?.pop() else {
            return Ok(None);
        };
        if entry.size > max_bytes {
            return Err(SnapshotError::Target(format!(
                "snapshot {} is {} bytes, above the cap of {max_bytes}",
                entry.key, entry.size
            )));
        }
        let bytes = self
            .store
            .get(&entry.location)
            .await
            .map_err(|e| self.failed("cannot read a snapshot", e))?
            .bytes()
            .await
            .map_err(|e| self.failed("cannot read a snapshot", e))?;
        Ok(Some((entry, bytes.to_vec())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::fs;

    use crate::snapshot::SnapshotTarget;

    #[tokio::test]
    async fn a_bucket_keeps_the_newest_and_finds_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("bucket");
        let SnapshotTarget::Bucket(bucket) =
            SnapshotTarget::parse(&spec.display().to_string()).unwrap()
        else {
            panic!("a directory is a bucket");
        };
        assert!(spec.is_dir(), "created");
        for task in ["a", "b", "c", "d"] {
            bucket
                .put("run-1", "src", task, format!("data {task}").into_bytes(), 2)
                .await
                .unwrap();
        }
        bucket
            .put("run-1", "other", "a", b"o".to_vec(), 2)
            .await
            .unwrap();
        bucket
            .put("run-2", "src", "z", b"z".to_vec(), 2)
            .await
            .unwrap();
        let kept = bucket.list("run-1", "src").await.unwrap();
        assert_eq!(
            kept.iter().map(|e| e.task.as_str()).collect::<Vec<_>>(),
            ["c", "d"]
        );
        let files = fs::read_dir(spec.join("run-1/src")).unwrap().count();
        assert_eq!(files, 2, "older objects are deleted from the directory");
        let (entry, data) = bucket
            .latest("run-1", "src", 1 << 20)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((entry.task.as_str(), data), ("d", b"data d".to_vec()));
        assert!(
            bucket.latest("run-1", "src", 3).await.is_err(),
            "above the cap"
        );
        assert!(
            bucket
                .latest("run-1", "none", 1 << 20)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(bucket.list("run-2", "src").await.unwrap().len(), 1);

        // A marker is newest: it is what `latest` reports.
        bucket
            .put("run-1", "src", "e", Vec::new(), 2)
            .await
            .unwrap();
        let (entry, data) = bucket
            .latest("run-1", "src", 1 << 20)
            .await
            .unwrap()
            .unwrap();
        assert!(entry.marker && data.is_empty() && entry.task == "e");

        // The same directory as a file:// URL, and the stored form round-trips.
        let url = url::Url::from_directory_path(&spec).unwrap().to_string();
        let again = SnapshotTarget::parse(&url).unwrap();
        assert_eq!(again.spec(), spec.display().to_string());
        let SnapshotTarget::Bucket(again) = again else {
            panic!("bucket");
        };
        assert_eq!(
            again.list("run-1", "src").await.unwrap(),
            bucket.list("run-1", "src").await.unwrap()
        );
    }
}
