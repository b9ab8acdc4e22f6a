//! The archive format, reading side: the hardened unpack of a snapshot into a workspace
//! (no absolute paths, no `..`, nothing through or to a link leading out, no hard links
//! or special files, a bound on what a small archive may inflate to).

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use cap_std::fs::{OpenOptions, OpenOptionsExt, Permissions, PermissionsExt};
use flate2::read::GzDecoder;

use super::archive::link_stays_inside;
use super::workspace::Workspace;
use super::{SnapshotError, io_err, unsafe_entry};

/// Removes `rel` and everything under it without following links, making directories
/// writable first so read-only ones can be emptied.
fn remove_tree(workspace: &Workspace, rel: &Path) -> Result<(), SnapshotError> {
    let root = workspace.root();
    let meta = root.symlink_metadata(rel).map_err(workspace.error(rel))?;
    if meta.is_dir() {
        root.set_permissions(rel, Permissions::from_mode(0o700))
            .map_err(workspace.error(rel))?;
        for name in workspace.names(rel).map_err(workspace.error(rel))? {
            remove_tree(workspace, &rel.join(name))?;
        }
        root.remove_dir(rel).map_err(workspace.error(rel))
    } else {
        root.remove_file(rel).map_err(workspace.error(rel))
    }
}

/// Empties the workspace (the directory itself stays: it may be a mount point).
fn clear(workspace: &Workspace) -> Result<(), SnapshotError> {
    let top = Path::new("");
    for name in workspace.names(top).map_err(workspace.error(top))? {
        remove_tree(workspace, Path::new(&name))?;
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

/// Creates the directories leading to `rel`, refusing to go through anything that is not
/// a real directory (a link planted by an earlier entry).
fn make_parents(workspace: &Workspace, rel: &Path) -> Result<(), SnapshotError> {
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    let mut at = PathBuf::new();
    for component in parent.components() {
        at.push(component);
        match workspace.root().symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(unsafe_entry(
                    rel,
                    "its parent is a link or a file, not a directory",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                workspace
                    .root()
                    .create_dir(&at)
                    .map_err(workspace.error(&at))?;
            }
            Err(e) => return Err(workspace.error(&at)(e)),
        }
    }
    Ok(())
}

/// Removes a non-directory already at `rel` (an archive may name a path twice).
fn replace_existing(workspace: &Workspace, rel: &Path) -> Result<(), SnapshotError> {
    match workspace.root().symlink_metadata(rel) {
        Ok(meta) if meta.is_dir() => Err(unsafe_entry(rel, "a directory is already there")),
        Ok(_) => workspace
            .root()
            .remove_file(rel)
            .map_err(workspace.error(rel)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(workspace.error(rel)(e)),
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
/// [`archive`](super::archive())) into it. Refuses absolute paths, `..`, entries through
/// links, links leading out of `dir`, hard links and special files; every path is
/// resolved beneath `dir`, so a directory replaced by a link to outside while unpacking
/// is refused too. Stops at the first refused entry: the directory then holds what was
/// unpacked before it.
pub fn restore(dir: &Path, data: &[u8]) -> Result<Unpacked, SnapshotError> {
    restore_with(dir, data, &mut |_| {})
}

/// [`restore`], calling `on_entry` with each entry's path once its parent directories are
/// in place and before it is written (tests race the unpack there).
fn restore_with(
    dir: &Path,
    data: &[u8],
    on_entry: &mut dyn FnMut(&Path),
) -> Result<Unpacked, SnapshotError> {
    // The workspace root itself is trusted (it comes from the run's configuration).
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let workspace = Workspace::open(dir)?;
    clear(&workspace)?;
    let archive_path = Path::new("<archive>");
    let mut archive = tar::Archive::new(GzDecoder::new(data));
    let mut unpacked = Unpacked::default();
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    for entry in archive.entries().map_err(io_err(archive_path))? {
        let mut entry = entry.map_err(io_err(archive_path))?;
        let raw = entry.path().map_err(io_err(archive_path))?.into_owned();
        let rel = safe_relative(&raw)?;
        let header = entry.header();
        let mode = header.mode().map_err(io_err(&raw))? & 0o777;
        let mtime = header.mtime().unwrap_or(0);
        match header.entry_type() {
            tar::EntryType::Directory => {
                make_parents(&workspace, &rel)?;
                on_entry(&rel);
                match workspace.root().symlink_metadata(&rel) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => return Err(unsafe_entry(&raw, "a file or link is already there")),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => workspace
                        .root()
                        .create_dir(&rel)
                        .map_err(workspace.error(&rel))?,
                    Err(e) => return Err(workspace.error(&rel)(e)),
                }
                dir_modes.push((rel, mode));
                unpacked.dirs += 1;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                make_parents(&workspace, &rel)?;
                on_entry(&rel);
                replace_existing(&workspace, &rel)?;
                let mut file = workspace
                    .open_file(
                        &rel,
                        OpenOptions::new().write(true).create_new(true).mode(0o600),
                    )
                    .map_err(workspace.error(&rel))?
                    .into_std();
                // A small archive may inflate to anything (a gzip bomb): bounded.
                let room = RESTORE_MAX_BYTES.saturating_sub(unpacked.bytes);
                let copied = io::copy(&mut (&mut entry).take(room + 1), &mut file)
                    .map_err(workspace.error(&rel))?;
                if copied > room {
                    return Err(unsafe_entry(
                        &raw,
                        format!("the snapshot unpacks to more than {RESTORE_MAX_BYTES} bytes"),
                    ));
                }
                unpacked.bytes += copied;
                file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
                    .map_err(workspace.error(&rel))?;
                file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .map_err(workspace.error(&rel))?;
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
                make_parents(&workspace, &rel)?;
                on_entry(&rel);
                replace_existing(&workspace, &rel)?;
                workspace
                    .root()
                    .symlink(&target, &rel)
                    .map_err(workspace.error(&rel))?;
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
    for (rel, mode) in dir_modes.into_iter().rev() {
        workspace
            .root()
            .set_permissions(&rel, Permissions::from_mode(mode))
            .map_err(workspace.error(&rel))?;
    }
    Ok(unpacked)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;
    use crate::snapshot::archive;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn tree(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let mut names: Vec<_> = fs::read_dir(root.join(&rel))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for name in names {
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

    /// A directory of the workspace swapped for a link to an outside directory after the
    /// entries' parents were checked and before an entry under it is written must not
    /// lead the unpack out of the workspace, whatever the entry's type.
    #[test]
    fn a_directory_swapped_for_a_link_mid_unpack_is_not_followed_out() {
        let cases: [(&str, Vec<u8>); 3] = [
            (
                "file",
                hostile(&[
                    (b"a/", tar::EntryType::Directory, b"", b""),
                    (b"a/x", tar::EntryType::Regular, b"", b"payload"),
                ]),
            ),
            (
                "directory",
                hostile(&[
                    (b"a/", tar::EntryType::Directory, b"", b""),
                    (b"a/d/", tar::EntryType::Directory, b"", b""),
                ]),
            ),
            (
                "link",
                hostile(&[
                    (b"a/", tar::EntryType::Directory, b"", b""),
                    (b"a/l", tar::EntryType::Symlink, b"x", b""),
                ]),
            ),
        ];
        for (name, data) in cases {
            let outside = tempfile::tempdir().unwrap();
            let moved = tempfile::tempdir().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let ws = dir.path().join("ws");
            let mut swapped = false;
            let result = restore_with(&ws, &data, &mut |rel| {
                if rel.starts_with("a") && rel != Path::new("a") && !swapped {
                    swapped = true;
                    fs::rename(ws.join("a"), moved.path().join("a")).unwrap();
                    std::os::unix::fs::symlink(outside.path(), ws.join("a")).unwrap();
                }
            });
            assert!(swapped, "{name}: the hook ran");
            let written: Vec<_> = fs::read_dir(outside.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(written.is_empty(), "{name}: wrote {written:?} outside");
            match result {
                Err(SnapshotError::Unsafe { path, why }) => {
                    assert!(path.starts_with("a/"), "{name}: {path}: {why}");
                    assert!(why.contains("leads out of the workspace"), "{name}: {why}");
                }
                other => panic!("{name}: not refused as unsafe: {other:?}"),
            }
        }
    }
}
