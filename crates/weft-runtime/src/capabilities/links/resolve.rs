//! Where a link leads, read from the filesystem: how deep a directory sits in its
//! workspace (walking its real parents up to the workspace's root), and how deep a
//! directory tree must sit for none of the links inside it to lead out.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};

use super::target::{Target, parse_target};

/// Deepest a directory may sit below its workspace's root; deeper counts as outside.
const MAX_DEPTH: usize = 4096;

/// Most entries looked at under a directory that is moved up, and how deep.
const MAX_SCAN_ENTRIES: usize = 100_000;
const MAX_SCAN_DEPTH: usize = 256;

/// The root directories of a task's workspaces, by identity (device, inode), so that
/// a directory's depth is measured to the real root, whatever path reaches it.
#[derive(Debug, Default)]
pub struct WorkspaceRoots(Vec<(u64, u64)>);

impl WorkspaceRoots {
    /// The roots at these host paths.
    pub fn of<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> io::Result<Self> {
        dirs.into_iter()
            .map(|dir| std::fs::metadata(dir).map(|m| (m.dev(), m.ino())))
            .collect::<io::Result<Vec<_>>>()
            .map(WorkspaceRoots)
    }

    /// How many directories `dir` sits below the root of its workspace (the nearest
    /// root above it), walking its real parents. `None`: no root above it.
    pub(crate) fn depth(&self, dir: &File) -> io::Result<Option<usize>> {
        let mut current = open_dir_at(dir, c".", false)?;
        for depth in 0..=MAX_DEPTH {
            let id = identity(&current)?;
            if self.0.contains(&id) {
                return Ok(Some(depth));
            }
            let parent = open_dir_at(&current, c"..", false)?;
            if identity(&parent)? == id {
                // The filesystem's root, which is its own parent.
                return Ok(None);
            }
            current = parent;
        }
        Ok(None)
    }
}

fn identity(file: &File) -> io::Result<(u64, u64)> {
    let meta = file.metadata()?;
    Ok((meta.dev(), meta.ino()))
}

/// Opens the directory `name` in `dir` without following a link there: to be read
/// (`readable`) or only looked at (path-only where the system has it, so that an
/// unreadable parent of the workspace can still be walked through).
fn open_dir_at(dir: &File, name: &CStr, readable: bool) -> io::Result<File> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let access = if readable {
        OFlags::RDONLY
    } else {
        OFlags::PATH
    };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let access = {
        let _ = readable;
        OFlags::RDONLY
    };
    let flags = access | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
    Ok(File::from(fd))
}

/// What a directory entry is, without following it.
pub(crate) enum Entry {
    /// A symbolic link, with its target.
    Link(Vec<u8>),
    /// A directory.
    Dir,
    /// Anything else.
    Other,
}

/// What `name` in `dir` is.
pub(crate) fn entry(dir: &File, name: &str) -> io::Result<Entry> {
    let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(match FileType::from_raw_mode(stat.st_mode) {
        FileType::Symlink => {
            Entry::Link(rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes())
        }
        FileType::Directory => Entry::Dir,
        _ => Entry::Other,
    })
}

/// How deep below its workspace's root the directory `name` in `parent` must sit for
/// no link in its tree to lead out: the most, over its links, of how far a link's
/// target climbs less how deep below `name` the link is. `None` when the tree is too
/// large or too deep to look at (the caller refuses the move).
pub(crate) fn depth_needed(parent: &File, name: &str) -> io::Result<Option<usize>> {
    let root = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let root = File::from(root);
    let mut needed = 0;
    let mut budget = MAX_SCAN_ENTRIES;
    // Depth-first with one open directory per level, so a wide tree does not hold
    // many descriptors.
    let mut stack: Vec<(File, Dir)> = vec![(root.try_clone()?, Dir::read_from(&root)?)];
    loop {
        // Links directly in the moved directory are at level 1: in it, not below it.
        let level = stack.len();
        let Some((dir, entries)) = stack.last_mut() else {
            break;
        };
        let Some(next) = entries.next() else {
            stack.pop();
            continue;
        };
        let next = next?;
        let name = next.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let Some(left) = budget.checked_sub(1) else {
            return Ok(None);
        };
        budget = left;
        let stat = rustix::fs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&*dir, name, Vec::new())?;
                let climb = match parse_target(target.as_bytes()) {
                    Target::Relative { climb } | Target::Tangled { climb } => climb,
                    // Already leading out wherever it is; moving it changes nothing.
                    Target::Absolute => 0,
                };
                needed = needed.max(climb.saturating_sub(level - 1));
            }
            FileType::Directory => {
                if level >= MAX_SCAN_DEPTH {
                    return Ok(None);
                }
                let sub = open_dir_at(dir, name, true)?;
                let entries = Dir::read_from(&sub)?;
                stack.push((sub, entries));
            }
            _ => {}
        }
    }
    Ok(Some(needed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_to_the_nearest_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ws = tmp.path().join("ws");
        std::fs::create_dir_all(ws.join("a/b/c")).expect("dirs");
        let roots = WorkspaceRoots::of([ws.as_path()]).expect("roots");
        let open = |p: &Path| File::open(p).expect("open");
        assert_eq!(roots.depth(&open(&ws)).expect("depth"), Some(0));
        assert_eq!(roots.depth(&open(&ws.join("a/b/c"))).expect("d"), Some(3));
        assert_eq!(roots.depth(&open(tmp.path())).expect("depth"), None);
        // A nested workspace is the nearer root.
        let both = WorkspaceRoots::of([ws.as_path(), ws.join("a").as_path()]).expect("r");
        assert_eq!(both.depth(&open(&ws.join("a/b/c"))).expect("d"), Some(2));
    }

    #[test]
    fn depth_needed_reads_the_links_of_a_tree() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let top = tmp.path().join("top");
        std::fs::create_dir_all(top.join("x/y")).expect("dirs");
        let parent = File::open(tmp.path()).expect("open");
        assert_eq!(
            depth_needed(&parent, "top").expect("scan").expect("small"),
            0
        );
        std::os::unix::fs::symlink("../sibling", top.join("l1")).expect("link");
        assert_eq!(
            depth_needed(&parent, "top").expect("scan").expect("small"),
            1
        );
        // Three up from two below `top`: `top` must sit one below the root.
        std::os::unix::fs::symlink("../../../f", top.join("x/y/l2")).expect("link");
        assert_eq!(
            depth_needed(&parent, "top").expect("scan").expect("small"),
            1
        );
        std::os::unix::fs::symlink("../../../../f", top.join("x/l3")).expect("link");
        assert_eq!(
            depth_needed(&parent, "top").expect("scan").expect("small"),
            3
        );
        std::os::unix::fs::symlink("/etc", top.join("abs")).expect("link");
        assert_eq!(
            depth_needed(&parent, "top").expect("scan").expect("small"),
            3
        );
    }
}
