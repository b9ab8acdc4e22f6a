//! A workspace directory as a capability: its root is opened once with ambient authority
//! (a cap-std [`Dir`]) and every other path a snapshot touches is resolved beneath it.
//!
//! `O_NOFOLLOW` guards only a path's last component: a directory on the way swapped for a
//! link (by a guest or another process, between a check and a use) would lead a plain
//! path out of the workspace. cap-std refuses to resolve anything outside the `Dir`,
//! through links in any component; links that stay inside still resolve.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, File, OpenOptions};

use super::{SnapshotError, unsafe_entry};

/// An open workspace root.
pub(super) struct Workspace {
    root: Dir,
    /// The root's host path, for messages only (never opened again).
    path: PathBuf,
}

impl Workspace {
    /// Opens the workspace directory at `path`.
    pub(super) fn open(path: &Path) -> Result<Workspace, SnapshotError> {
        let root = Dir::open_ambient_dir(path, cap_std::ambient_authority()).map_err(|source| {
            SnapshotError::Io {
                path: path.display().to_string(),
                source,
            }
        })?;
        Ok(Workspace {
            root,
            path: path.to_path_buf(),
        })
    }

    /// The root, to resolve workspace-relative paths beneath.
    pub(super) fn root(&self) -> &Dir {
        &self.root
    }

    /// The directory at `rel` (the root itself for an empty path), refusing a link in its
    /// place.
    pub(super) fn open_dir(&self, rel: &Path) -> io::Result<Dir> {
        if rel.as_os_str().is_empty() {
            return self.root.try_clone();
        }
        self.root.open_dir_nofollow(rel)
    }

    /// The regular file (or whatever is there, but not a link) at `rel`, opened with
    /// `options` and without following a link in its place.
    pub(super) fn open_file(&self, rel: &Path, options: &mut OpenOptions) -> io::Result<File> {
        self.root.open_with(rel, options.follow(FollowSymlinks::No))
    }

    /// The names in the directory at `rel`, sorted ([`names_in`]).
    pub(super) fn names(&self, rel: &Path) -> io::Result<Vec<OsString>> {
        names_in(&self.open_dir(rel)?)
    }

    /// The error for a failed operation on `rel`: [`SnapshotError::Unsafe`] when the path
    /// would have led out of the workspace, [`SnapshotError::Io`] otherwise.
    pub(super) fn error<'a>(
        &'a self,
        rel: &'a Path,
    ) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
        move |source| {
            if leads_out(&source) {
                unsafe_entry(
                    rel,
                    "it leads out of the workspace (a directory on its path is a link to \
                     outside)",
                )
            } else {
                SnapshotError::Io {
                    path: self.path.join(rel).display().to_string(),
                    source,
                }
            }
        }
    }
}

/// The names in an open directory, sorted (archives are deterministic for the same tree).
pub(super) fn names_in(dir: &Dir) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in dir.entries()? {
        names.push(entry?.file_name());
    }
    names.sort();
    Ok(names)
}

/// Whether `error` is cap-std's refusal of a path that resolves outside its `Dir`: a
/// `PermissionDenied` of its own making, where a real `EACCES` carries the OS error code.
fn leads_out(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::PermissionDenied && error.raw_os_error().is_none()
}

/// Whether `error` means the entry changed while it was read: it vanished, or a link took
/// the place of the file or directory found a moment before (not followed).
pub(super) fn changed_underfoot(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) || error.raw_os_error() == Some(libc::ELOOP)
}
