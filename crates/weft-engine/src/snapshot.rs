//! Workspace snapshots: after a task attempt ends, the workspaces it could write are
//! archived (tar + gzip) to the run store or to a bucket (an object store: a local
//! directory in this build), so that recovery on another machine starts the remaining
//! tasks from the files the finished ones left.
//!
//! - **What**: the pipeline workspaces a task had mounted writable, limited to
//!   [`SnapshotConfig::workspaces`] (decided when the run starts: bound, writable, never a
//!   secret workspace). Read-only and secret workspaces are never archived.
//! - **Archive**: regular files (with their mode and mtime), directories, and symbolic
//!   links that stay inside the workspace (anything else: skipped). Links are never
//!   followed; special files are skipped. Archiving stops as soon as the compressed
//!   archive exceeds [`SnapshotConfig::max_bytes`] ([`SnapshotError::TooLarge`]).
//! - **When**: in the attempt's own tokio task, after the plugin returns and before the
//!   driver hears of the ending, so the snapshot is durable before any dependent starts.
//!   A snapshot that cannot be taken (too large, unreadable) is replaced by an empty
//!   *marker* (and a warning in the task's log): recovery then leaves that workspace as it
//!   is instead of restoring an older state. It never fails the run.
//! - **Retention**: the last [`SnapshotConfig::keep`] per (run, workspace).
//! - **Restore** ([`restore_run`], from `take_over`): the workspace directory is emptied
//!   and the latest snapshot unpacked into it; entries that are absolute, contain `..`,
//!   go through a symbolic link or are links leading out of the workspace are refused.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use weft_core::StartTask;
use weft_runtime::{LogLevel, LogLine, LogSink, LogStream, TaskRequest};
use weft_store::{Lease, NewEvent, RunStore, StoreError, Timestamp, WriteAck, WriteOp};

use crate::persist::Durable;

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

/// Suffix of a snapshot object in a bucket.
const ARCHIVE_SUFFIX: &str = ".tar.gz";
/// Suffix of a marker object in a bucket (the snapshot could not be taken).
const MARKER_SUFFIX: &str = ".skipped";

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
    /// An archive entry that would land outside the workspace, or of a refused type.
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

// ---------------------------------------------------------------------------------------
// Configuration

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

/// An object store and the prefix snapshots are kept under
/// (`<prefix>/<run>/<workspace>/<stamp>-<task>.tar.gz`).
#[derive(Clone, Debug)]
pub struct Bucket {
    spec: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl SnapshotTarget {
    /// Parses a target: `db` (or `database`) for the run store; a directory path or a
    /// `file:///DIR` URL for a local bucket directory (created if missing). Other URL
    /// schemes (`s3://`, `gs://`, `az://`) name object stores this build does not include
    /// (the `object_store` crate's `aws`, `gcp`, `azure` features) and are refused.
    pub fn parse(spec: &str) -> Result<SnapshotTarget, String> {
        let spec = spec.trim();
        match spec {
            "" => return Err("empty snapshot target".into()),
            "db" | "database" => return Ok(SnapshotTarget::Database),
            _ => {}
        }
        let dir = if spec.contains("://") {
            let url = url::Url::parse(spec).map_err(|e| format!("`{spec}`: {e}"))?;
            if url.scheme() != "file" {
                return match object_store::parse_url(&url) {
                    Ok((store, prefix)) => Ok(SnapshotTarget::Bucket(Bucket {
                        spec: spec.to_string(),
                        store: Arc::from(store),
                        prefix,
                    })),
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
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| format!("snapshot directory {}: {e}", dir.display()))?;
        Ok(SnapshotTarget::Bucket(Bucket {
            spec: dir.display().to_string(),
            store: Arc::new(local),
            prefix: ObjectPath::default(),
        }))
    }

    /// The target as [`SnapshotTarget::parse`] reads it back (`db`, a directory, a URL).
    pub fn spec(&self) -> String {
        match self {
            SnapshotTarget::Database => "db".to_string(),
            SnapshotTarget::Bucket(bucket) => bucket.spec.clone(),
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

// ---------------------------------------------------------------------------------------
// Archiving

/// A workspace archived into memory.
#[derive(Debug)]
pub struct Archive {
    /// The `.tar.gz` bytes.
    pub data: Vec<u8>,
    /// Entries left out: special files, links leading out of the workspace, files that
    /// vanished while the archive was written.
    pub skipped: Vec<PathBuf>,
}

/// A writer into memory that refuses to grow past `cap` bytes.
struct CapWriter {
    data: Vec<u8>,
    cap: u64,
    exceeded: Arc<AtomicBool>,
}

impl Write for CapWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if (self.data.len() + buf.len()) as u64 > self.cap {
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "snapshot cap exceeded",
            ));
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads exactly `remaining` bytes: a file that shrank while archived is padded with
/// zeros (the header already announced its size).
struct Exactly<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let got = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.remaining -= got as u64;
        Ok(got)
    }
}

/// Whether a symbolic link at `link` (relative to the workspace) pointing to `target`
/// resolves inside the workspace without trusting any other link: the target is
/// relative, its `..` components all come first and climb no higher than the link's
/// own directory's depth.
fn link_stays_inside(link: &Path, target: &Path) -> bool {
    let depth = link.components().count().saturating_sub(1);
    let mut ups = 0;
    let mut seen_normal = false;
    for component in target.components() {
        match component {
            Component::ParentDir if !seen_normal => ups += 1,
            Component::Normal(_) => seen_normal = true,
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    !target.as_os_str().is_empty() && ups <= depth
}

fn mtime_of(meta: &fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

fn header_for(meta: &fs::Metadata, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(meta.permissions().mode() & 0o7777);
    header.set_mtime(mtime_of(meta));
    header.set_size(size);
    header
}

/// Archives the contents of `dir` (not following links), stopping with
/// [`SnapshotError::TooLarge`] once the compressed archive would exceed `max_bytes`.
pub fn archive(dir: &Path, max_bytes: u64) -> Result<Archive, SnapshotError> {
    let exceeded = Arc::new(AtomicBool::new(false));
    let sink = CapWriter {
        data: Vec::new(),
        cap: max_bytes,
        exceeded: exceeded.clone(),
    };
    let mut builder = tar::Builder::new(GzEncoder::new(sink, Compression::default()));
    let too_large = |err: SnapshotError| {
        if exceeded.load(Ordering::Relaxed) {
            SnapshotError::TooLarge { limit: max_bytes }
        } else {
            err
        }
    };
    let mut skipped = Vec::new();
    walk(dir, &mut builder, &mut skipped).map_err(too_large)?;
    let archive_path = Path::new("<archive>");
    let data = builder
        .into_inner()
        .and_then(GzEncoder::finish)
        .map_err(io_err(archive_path))
        .map_err(too_large)?
        .data;
    Ok(Archive { data, skipped })
}

/// The entries of `dir`, sorted (archives are deterministic for the same tree).
fn children(dir: &Path) -> Result<Vec<std::ffi::OsString>, SnapshotError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        names.push(entry.map_err(io_err(dir))?.file_name());
    }
    names.sort();
    Ok(names)
}

fn walk<W: Write>(
    root: &Path,
    builder: &mut tar::Builder<W>,
    skipped: &mut Vec<PathBuf>,
) -> Result<(), SnapshotError> {
    let mut stack: Vec<PathBuf> = children(root)?
        .into_iter()
        .rev()
        .map(PathBuf::from)
        .collect();
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let meta = match fs::symlink_metadata(&full) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                skipped.push(rel);
                continue;
            }
            Err(e) => return Err(io_err(&full)(e)),
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            let mut header = header_for(&meta, tar::EntryType::Directory, 0);
            builder
                .append_data(&mut header, &rel, io::empty())
                .map_err(io_err(&full))?;
            let names = match children(&full) {
                Ok(names) => names,
                Err(SnapshotError::Io { source, .. })
                    if source.kind() == io::ErrorKind::NotFound =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            stack.extend(names.into_iter().rev().map(|name| rel.join(name)));
        } else if kind.is_file() {
            // O_NOFOLLOW: a file swapped for a link after the lstat is not followed.
            let file = match fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&full)
            {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    skipped.push(rel);
                    continue;
                }
                Err(e) => return Err(io_err(&full)(e)),
            };
            let meta = file.metadata().map_err(io_err(&full))?;
            if !meta.is_file() {
                skipped.push(rel);
                continue;
            }
            let size = meta.len();
            let mut header = header_for(&meta, tar::EntryType::Regular, size);
            let data = Exactly {
                inner: file.take(size),
                remaining: size,
            };
            builder
                .append_data(&mut header, &rel, data)
                .map_err(io_err(&full))?;
        } else if kind.is_symlink() {
            let target = match fs::read_link(&full) {
                Ok(target) => target,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    skipped.push(rel);
                    continue;
                }
                Err(e) => return Err(io_err(&full)(e)),
            };
            if !link_stays_inside(&rel, &target) {
                skipped.push(rel);
                continue;
            }
            let mut header = header_for(&meta, tar::EntryType::Symlink, 0);
            builder
                .append_link(&mut header, &rel, &target)
                .map_err(io_err(&full))?;
        } else {
            // FIFOs, sockets, devices.
            skipped.push(rel);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Restoring

/// Removes `path` and everything under it without following links, making directories
/// writable first so read-only ones can be emptied.
fn remove_tree(path: &Path) -> Result<(), SnapshotError> {
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    if meta.is_dir() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io_err(path))?;
        for name in children(path)? {
            remove_tree(&path.join(name))?;
        }
        fs::remove_dir(path).map_err(io_err(path))
    } else {
        fs::remove_file(path).map_err(io_err(path))
    }
}

/// Empties `dir` (the directory itself stays: it may be a mount point).
fn clear(dir: &Path) -> Result<(), SnapshotError> {
    for name in children(dir)? {
        remove_tree(&dir.join(name))?;
    }
    Ok(())
}

/// `path` from an archive as a relative path of normal components only.
fn safe_relative(path: &Path) -> Result<PathBuf, SnapshotError> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_entry(path, "it contains `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry(path, "it is an absolute path"));
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(unsafe_entry(path, "it names the workspace itself"));
    }
    Ok(clean)
}

/// Creates the directories leading to `rel` under `root`, refusing to go through
/// anything that is not a real directory (a link planted by an earlier entry).
fn make_parents(root: &Path, rel: &Path) -> Result<(), SnapshotError> {
    let mut at = root.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for component in parent.components() {
        at.push(component);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(unsafe_entry(
                    rel,
                    "its parent is a link or a file, not a directory",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&at).map_err(io_err(&at))?;
            }
            Err(e) => return Err(io_err(&at)(e)),
        }
    }
    Ok(())
}

/// Removes a non-directory already at `path` (an archive may name a path twice).
fn replace_existing(path: &Path, rel: &Path) -> Result<(), SnapshotError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Err(unsafe_entry(rel, "a directory is already there")),
        Ok(_) => fs::remove_file(path).map_err(io_err(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// What [`restore`] unpacked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symbolic links.
    pub links: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

/// The most file content one snapshot may unpack to: archives are capped compressed, and
/// this bounds what a planted one can inflate to.
pub const RESTORE_MAX_BYTES: u64 = 16 << 30;

/// Empties `dir` (creating it if missing) and unpacks `data` (a `.tar.gz` from
/// [`archive`]) into it. Refuses absolute paths, `..`, entries through links, links
/// leading out of `dir`, hard links and special files. Stops at the first refused entry:
/// the directory then holds what was unpacked before it.
pub fn restore(dir: &Path, data: &[u8]) -> Result<Unpacked, SnapshotError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    clear(dir)?;
    let archive_path = Path::new("<archive>");
    let mut archive = tar::Archive::new(GzDecoder::new(data));
    let mut unpacked = Unpacked::default();
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    for entry in archive.entries().map_err(io_err(archive_path))? {
        let mut entry = entry.map_err(io_err(archive_path))?;
        let raw = entry.path().map_err(io_err(archive_path))?.into_owned();
        let rel = safe_relative(&raw)?;
        let full = dir.join(&rel);
        let header = entry.header();
        let mode = header.mode().map_err(io_err(&raw))? & 0o777;
        let mtime = header.mtime().unwrap_or(0);
        match header.entry_type() {
            tar::EntryType::Directory => {
                make_parents(dir, &rel)?;
                match fs::symlink_metadata(&full) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => return Err(unsafe_entry(&raw, "a file or link is already there")),
                    Err(_) => fs::create_dir(&full).map_err(io_err(&full))?,
                }
                dir_modes.push((full, mode));
                unpacked.dirs += 1;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                make_parents(dir, &rel)?;
                replace_existing(&full, &rel)?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&full)
                    .map_err(io_err(&full))?;
                // A small archive may inflate to anything (a gzip bomb): bounded.
                let room = RESTORE_MAX_BYTES.saturating_sub(unpacked.bytes);
                let copied =
                    io::copy(&mut (&mut entry).take(room + 1), &mut file).map_err(io_err(&full))?;
                if copied > room {
                    return Err(unsafe_entry(
                        &raw,
                        format!("the snapshot unpacks to more than {RESTORE_MAX_BYTES} bytes"),
                    ));
                }
                unpacked.bytes += copied;
                file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
                    .map_err(io_err(&full))?;
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(io_err(&full))?;
                unpacked.files += 1;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(io_err(&raw))?
                    .ok_or_else(|| unsafe_entry(&raw, "a link without a target"))?
                    .into_owned();
                if !link_stays_inside(&rel, &target) {
                    return Err(unsafe_entry(
                        &raw,
                        format!("a link to {} leads out of the workspace", target.display()),
                    ));
                }
                make_parents(dir, &rel)?;
                replace_existing(&full, &rel)?;
                std::os::unix::fs::symlink(&target, &full).map_err(io_err(&full))?;
                unpacked.links += 1;
            }
            other => {
                return Err(unsafe_entry(
                    &raw,
                    format!("entries of type {other:?} are not restored"),
                ));
            }
        }
    }
    // Directory modes last (deepest first): a read-only directory is filled first.
    for (path, mode) in dir_modes.into_iter().rev() {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io_err(&path))?;
    }
    Ok(unpacked)
}

// ---------------------------------------------------------------------------------------
// Buckets

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

// ---------------------------------------------------------------------------------------
// After a task

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

// ---------------------------------------------------------------------------------------
// Recovery

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn tree(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            for name in children(&root.join(&rel)).unwrap() {
                let rel = rel.join(name);
                let full = root.join(&rel);
                let meta = fs::symlink_metadata(&full).unwrap();
                let what = if meta.file_type().is_symlink() {
                    format!("-> {}", fs::read_link(&full).unwrap().display())
                } else if meta.is_dir() {
                    stack.push(rel.clone());
                    format!("dir {:o}", mode(&full))
                } else {
                    format!(
                        "{:o} {:?}",
                        mode(&full),
                        String::from_utf8_lossy(&fs::read(&full).unwrap())
                    )
                };
                out.push(format!("{} {what}", rel.display()));
            }
        }
        out.sort();
        out
    }

    /// A tar.gz with the given raw entries (headers written by hand, so hostile paths
    /// are possible).
    /// (path, type, link target, content) of one raw entry.
    type RawEntry<'a> = (&'a [u8], tar::EntryType, &'a [u8], &'a [u8]);

    fn hostile(entries: &[RawEntry<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut gz = GzEncoder::new(&mut out, Compression::fast());
            for (path, kind, link, data) in entries {
                let mut header = tar::Header::new_old();
                let bytes = header.as_old_mut();
                bytes.name[..path.len()].copy_from_slice(path);
                bytes.linkname[..link.len()].copy_from_slice(link);
                header.set_entry_type(*kind);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                header.set_cksum();
                gz.write_all(header.as_bytes()).unwrap();
                gz.write_all(data).unwrap();
                let pad = (512 - data.len() % 512) % 512;
                gz.write_all(&vec![0; pad]).unwrap();
            }
            gz.write_all(&[0; 1024]).unwrap();
            gz.finish().unwrap();
        }
        out
    }

    #[test]
    fn a_round_trip_keeps_files_directories_links_and_modes() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path();
        fs::create_dir_all(root.join("out/deep")).unwrap();
        fs::write(root.join("out/deep/artifact.bin"), [0u8, 1, 2, 255]).unwrap();
        fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(root.join("out/frozen.txt"), "frozen").unwrap();
        fs::set_permissions(
            root.join("out/frozen.txt"),
            fs::Permissions::from_mode(0o444),
        )
        .unwrap();
        fs::create_dir(root.join("empty")).unwrap();
        fs::create_dir(root.join("locked")).unwrap();
        fs::write(root.join("locked/inside"), "x").unwrap();
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o555)).unwrap();
        std::os::unix::fs::symlink("deep/artifact.bin", root.join("out/link")).unwrap();
        std::os::unix::fs::symlink("../run.sh", root.join("out/up")).unwrap();
        let long = "n".repeat(120);
        fs::write(root.join(&long), "long name").unwrap();
        let before = tree(root);

        let archive = archive(root, 1 << 20).unwrap();
        assert!(archive.skipped.is_empty(), "{:?}", archive.skipped);
        assert_eq!(&archive.data[..2], &[0x1f, 0x8b], "gzip");

        let dst = tempfile::tempdir().unwrap();
        let target = dst.path().join("restored");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("stale.txt"), "from before").unwrap();
        fs::create_dir(target.join("stale-dir")).unwrap();
        fs::set_permissions(target.join("stale-dir"), fs::Permissions::from_mode(0o500)).unwrap();
        let unpacked = restore(&target, &archive.data).unwrap();
        assert_eq!(tree(&target), before);
        assert_eq!(unpacked.files, 5);
        assert_eq!(unpacked.links, 2);
        assert_eq!(unpacked.dirs, 4);
        assert_eq!(
            fs::metadata(root.join("run.sh"))
                .unwrap()
                .modified()
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            fs::metadata(target.join("run.sh"))
                .unwrap()
                .modified()
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            "mtime kept"
        );
        // Restoring again over a read-only tree works (it is emptied first).
        restore(&target, &archive.data).unwrap();
        assert_eq!(tree(&target), before);
        // Missing directories are created.
        let fresh = dst.path().join("new/ws");
        restore(&fresh, &archive.data).unwrap();
        assert_eq!(tree(&fresh), before);
        for dir in [
            root.join("locked"),
            target.join("locked"),
            fresh.join("locked"),
        ] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn the_cap_stops_archiving() {
        let src = tempfile::tempdir().unwrap();
        // Incompressible content: 64 KiB of pseudo-random bytes per file.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..8 {
            let data: Vec<u8> = (0..65536)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            fs::write(src.path().join(format!("f{i}")), data).unwrap();
        }
        let err = archive(src.path(), 100_000).unwrap_err();
        assert!(
            matches!(err, SnapshotError::TooLarge { limit: 100_000 }),
            "{err}"
        );
        let fits = archive(src.path(), 1 << 20).unwrap();
        assert!(fits.data.len() > 8 * 65536 && fits.data.len() <= 1 << 20);
    }

    #[test]
    fn links_are_not_followed_and_escaping_ones_are_left_out() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.txt"), "do not copy").unwrap();
        let src = tempfile::tempdir().unwrap();
        let root = src.path();
        fs::create_dir(root.join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("outdir")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../etc/passwd", root.join("sub/up")).unwrap();
        std::os::unix::fs::symlink("sub/../../x", root.join("sneaky")).unwrap();
        std::os::unix::fs::symlink("sub", root.join("inside")).unwrap();
        let fifo = root.join("pipe");
        let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: a valid NUL-terminated path.
        let made = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
        assert_eq!(made, 0);

        let archive = archive(root, 1 << 20).unwrap();
        let mut skipped: Vec<String> = archive
            .skipped
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        skipped.sort();
        assert_eq!(skipped, ["abs", "outdir", "pipe", "sneaky", "sub/up"]);
        let mut names = Vec::new();
        let mut reader = tar::Archive::new(GzDecoder::new(&archive.data[..]));
        for entry in reader.entries().unwrap() {
            let entry = entry.unwrap();
            names.push(entry.path().unwrap().display().to_string());
            let mut content = String::new();
            let mut entry = entry;
            entry.read_to_string(&mut content).unwrap();
            assert!(!content.contains("do not copy"), "followed a link");
        }
        assert_eq!(names, ["inside", "sub"]);
    }

    #[test]
    fn hostile_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "dotdot",
                hostile(&[(b"../escaped.txt", tar::EntryType::Regular, b"", b"x")]),
            ),
            (
                "nested dotdot",
                hostile(&[(b"a/../../escaped.txt", tar::EntryType::Regular, b"", b"x")]),
            ),
            (
                "absolute",
                hostile(&[(b"/tmp/escaped.txt", tar::EntryType::Regular, b"", b"x")]),
            ),
            (
                "absolute link",
                hostile(&[(b"l", tar::EntryType::Symlink, b"/etc", b"")]),
            ),
            (
                "escaping link",
                hostile(&[(b"l", tar::EntryType::Symlink, b"../outside", b"")]),
            ),
            (
                "write through a link",
                hostile(&[
                    (b"l", tar::EntryType::Symlink, b"sub", b""),
                    (b"sub/", tar::EntryType::Directory, b"", b""),
                    (b"l/x", tar::EntryType::Regular, b"", b"x"),
                ]),
            ),
            (
                "hard link",
                hostile(&[(b"h", tar::EntryType::Link, b"/etc/passwd", b"")]),
            ),
            ("device", hostile(&[(b"d", tar::EntryType::Char, b"", b"")])),
            ("not an archive", b"definitely not gzip".to_vec()),
        ];
        for (name, data) in cases {
            let result = restore(&ws, &data);
            match (&result, name) {
                (Err(SnapshotError::Io { .. }), "not an archive") => {}
                (Err(SnapshotError::Unsafe { .. }), _) if name != "not an archive" => {}
                _ => panic!("{name}: {result:?}"),
            }
            assert!(
                !dir.path().join("escaped.txt").exists() && !Path::new("/tmp/escaped.txt").exists(),
                "{name} wrote outside"
            );
            assert!(!dir.path().join("outside").exists(), "{name}");
        }
        // The same builder makes an acceptable archive when the entries are fine.
        let fine = hostile(&[
            (b"sub/", tar::EntryType::Directory, b"", b""),
            (b"sub/x", tar::EntryType::Regular, b"", b"x"),
            (b"l", tar::EntryType::Symlink, b"sub/x", b""),
        ]);
        restore(&ws, &fine).unwrap();
        assert_eq!(fs::read_to_string(ws.join("l")).unwrap(), "x");
    }

    #[test]
    fn link_rules() {
        let inside =
            |link: &str, target: &str| link_stays_inside(Path::new(link), Path::new(target));
        assert!(inside("a", "b"));
        assert!(inside("a", "./b/c"));
        assert!(inside("d/a", "../b"));
        assert!(inside("d/e/a", "../../b/c"));
        assert!(!inside("a", "../b"));
        assert!(!inside("d/a", "../../b"));
        assert!(!inside("a", "/etc/passwd"));
        assert!(
            !inside("a", "b/../c"),
            "`..` after a name may cross another link"
        );
        assert!(!inside("a", ""));
    }

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
