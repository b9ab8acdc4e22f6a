//! The archive format, writing side: a workspace as a tar + gzip archive in memory,
//! capped in size, without following links or leaving the workspace.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cap_std::fs::{Metadata, MetadataExt, OpenOptions};
use flate2::Compression;
use flate2::write::GzEncoder;

use super::workspace::{Workspace, changed_underfoot, names_in};
use super::{SnapshotError, io_err};

/// A workspace archived into memory.
#[derive(Debug)]
pub struct Archive {
    /// The `.tar.gz` bytes.
    pub data: Vec<u8>,
    /// Entries left out: special files, links leading out of the workspace, entries that
    /// vanished (or were replaced by a link) while the archive was written.
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
pub(super) fn link_stays_inside(link: &Path, target: &Path) -> bool {
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

/// A tar header for an entry of `kind` with `meta`'s mode and mtime.
fn header_for(meta: &Metadata, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(meta.mode() & 0o7777);
    header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    header.set_size(size);
    header
}

/// Archives the contents of `dir` (not following links), stopping with
/// [`SnapshotError::TooLarge`] once the compressed archive would exceed `max_bytes`.
/// Every path is resolved beneath `dir`: an entry that would lead out of it (a directory
/// replaced by a link to outside while the archive is written) stops archiving with
/// [`SnapshotError::Unsafe`].
pub fn archive(dir: &Path, max_bytes: u64) -> Result<Archive, SnapshotError> {
    archive_with(dir, max_bytes, &mut |_| {})
}

/// [`archive`], calling `on_listed` with each directory's workspace-relative path once
/// its entries are listed and before any of them is opened (tests race the walk there).
fn archive_with(
    dir: &Path,
    max_bytes: u64,
    on_listed: &mut dyn FnMut(&Path),
) -> Result<Archive, SnapshotError> {
    let workspace = Workspace::open(dir)?;
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
    walk(&workspace, &mut builder, &mut skipped, on_listed).map_err(too_large)?;
    let archive_path = Path::new("<archive>");
    let data = builder
        .into_inner()
        .and_then(GzEncoder::finish)
        .map_err(io_err(archive_path))
        .map_err(too_large)?
        .data;
    Ok(Archive { data, skipped })
}

/// Appends every entry under the workspace root to `builder`, depth first in name order.
fn walk<W: Write>(
    workspace: &Workspace,
    builder: &mut tar::Builder<W>,
    skipped: &mut Vec<PathBuf>,
    on_listed: &mut dyn FnMut(&Path),
) -> Result<(), SnapshotError> {
    let top = Path::new("");
    let names = workspace.names(top).map_err(workspace.error(top))?;
    on_listed(top);
    let mut stack: Vec<PathBuf> = names.into_iter().rev().map(PathBuf::from).collect();
    while let Some(rel) = stack.pop() {
        let meta = match workspace.root().symlink_metadata(&rel) {
            Ok(meta) => meta,
            Err(e) if changed_underfoot(&e) => {
                skipped.push(rel);
                continue;
            }
            Err(e) => return Err(workspace.error(&rel)(e)),
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            // Opened (not following a link in its place) before its mode is read and its
            // entries listed, so both come from the same directory.
            let listed = workspace
                .open_dir(&rel)
                .and_then(|dir| Ok((dir.dir_metadata()?, names_in(&dir)?)));
            let (meta, names) = match listed {
                Ok(listed) => listed,
                Err(e) if changed_underfoot(&e) => {
                    skipped.push(rel);
                    continue;
                }
                Err(e) => return Err(workspace.error(&rel)(e)),
            };
            let mut header = header_for(&meta, tar::EntryType::Directory, 0);
            builder
                .append_data(&mut header, &rel, io::empty())
                .map_err(workspace.error(&rel))?;
            on_listed(&rel);
            stack.extend(names.into_iter().rev().map(|name| rel.join(name)));
        } else if kind.is_file() {
            // Not following a link that took the file's place after the lstat.
            let file = match workspace.open_file(&rel, OpenOptions::new().read(true)) {
                Ok(file) => file,
                Err(e) if changed_underfoot(&e) => {
                    skipped.push(rel);
                    continue;
                }
                Err(e) => return Err(workspace.error(&rel)(e)),
            };
            let meta = file.metadata().map_err(workspace.error(&rel))?;
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
                .map_err(workspace.error(&rel))?;
        } else if kind.is_symlink() {
            let target = match workspace.root().read_link_contents(&rel) {
                Ok(target) => target,
                // `InvalidInput`: no longer a link.
                Err(e) if changed_underfoot(&e) || e.kind() == io::ErrorKind::InvalidInput => {
                    skipped.push(rel);
                    continue;
                }
                Err(e) => return Err(workspace.error(&rel)(e)),
            };
            if !link_stays_inside(&rel, &target) {
                skipped.push(rel);
                continue;
            }
            let mut header = header_for(&meta, tar::EntryType::Symlink, 0);
            builder
                .append_link(&mut header, &rel, &target)
                .map_err(workspace.error(&rel))?;
        } else {
            // FIFOs, sockets, devices.
            skipped.push(rel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::fs;

    use flate2::read::GzDecoder;

    use super::*;

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

    /// A directory of the workspace swapped for a link to an outside directory between
    /// being listed and its children being opened (a guest or another process racing the
    /// walk) must not lead the archive out of the workspace.
    #[test]
    fn a_directory_swapped_for_a_link_mid_walk_is_not_followed_out() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("canary.txt"), "CANARY outside").unwrap();
        fs::create_dir(outside.path().join("sub")).unwrap();
        fs::write(outside.path().join("sub/canary.txt"), "CANARY outside").unwrap();
        let moved = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        let root = src.path();
        fs::create_dir_all(root.join("out/sub")).unwrap();
        fs::write(root.join("out/canary.txt"), "inside").unwrap();
        fs::write(root.join("out/sub/canary.txt"), "inside").unwrap();

        let mut swapped = false;
        let result = archive_with(root, 1 << 20, &mut |rel| {
            if rel == Path::new("out") && !swapped {
                swapped = true;
                fs::rename(root.join("out"), moved.path().join("out")).unwrap();
                std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
            }
        });
        assert!(swapped, "the hook ran");
        match result {
            Err(SnapshotError::Unsafe { path, why }) => {
                assert!(path.starts_with("out/"), "{path}: {why}");
                assert!(why.contains("leads out of the workspace"), "{why}");
            }
            Err(other) => panic!("not refused as unsafe: {other}"),
            Ok(archive) => {
                let mut reader = tar::Archive::new(GzDecoder::new(&archive.data[..]));
                for entry in reader.entries().unwrap() {
                    let mut entry = entry.unwrap();
                    let mut content = String::new();
                    entry.read_to_string(&mut content).unwrap();
                    assert!(
                        !content.contains("CANARY"),
                        "read {} from outside the workspace",
                        entry.path().unwrap().display()
                    );
                }
                panic!("archived without refusing: {:?}", archive.skipped);
            }
        }
    }
}
