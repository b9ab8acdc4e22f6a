//! `link-at` and `rename-at`: a symbolic link moved or hard-linked is checked again at
//! its new place, a directory moved up against the links in its tree; and opening the
//! directory a path's last name is in, shared with `symlink-at`.

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::AtFlags;
use rustix::io::Errno;
use wasmtime::StoreContextMut;
use wasmtime::component::Resource;
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView as _};
use wasmtime_wasi::p2::bindings::filesystem::types::{ErrorCode, HostDescriptor, PathFlags};

use super::resolve::{Entry, WorkspaceRoots, depth_needed, entry};
use super::target::{Target, parse_target};
use super::{Answer, GUARD, LinksView, answer, blocking, refuse, writable_dir};

/// Which operation is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Link,
    Rename,
}

/// What becomes of an operation once looked at.
enum Decision {
    /// Nothing to check: wasmtime-wasi does it.
    Pass,
    /// Checked and done here, on the directories checked.
    Done(io::Result<()>),
    /// It would make a link lead out of its workspace.
    Refuse,
}

/// `link-at`: hard-linking a symbolic link is checked like moving it.
pub(super) async fn link_at<T: WasiView>(
    mut store: StoreContextMut<'_, T>,
    get: fn(&mut T) -> LinksView<'_>,
    fd: Resource<Descriptor>,
    flags: PathFlags,
    old: String,
    new_fd: Resource<Descriptor>,
    new: String,
) -> Answer {
    let (from, to) = (
        writable_dir(&mut store, &fd)?,
        writable_dir(&mut store, &new_fd)?,
    );
    let _guard = GUARD.lock().await;
    let decision = match (from, to) {
        // wasmtime-wasi refuses following a link here; it says so itself.
        (Some(from), Some(to)) if !flags.contains(PathFlags::SYMLINK_FOLLOW) => {
            let roots = get(store.data_mut()).roots.clone();
            let (o, n) = (old.clone(), new.clone());
            blocking(move || decide(&roots, Op::Link, &from, &o, &to, &n)).await?
        }
        _ => Decision::Pass,
    };
    match decision {
        Decision::Pass => {
            let mut view = store.data_mut().filesystem();
            answer(HostDescriptor::link_at(&mut view, fd, flags, old, new_fd, new).await)
        }
        Decision::Done(done) => Ok((done.map_err(ErrorCode::from),)),
        Decision::Refuse => refuse(
            &mut store,
            get,
            format!(
                "refused to hard-link `{old}` as `{new}`: the symbolic link would lead out of the workspace from there"
            ),
        ),
    }
}

/// `rename-at`: a moved link is checked at its new place, a directory moved up against
/// the links in its tree.
pub(super) async fn rename_at<T: WasiView>(
    mut store: StoreContextMut<'_, T>,
    get: fn(&mut T) -> LinksView<'_>,
    fd: Resource<Descriptor>,
    old: String,
    new_fd: Resource<Descriptor>,
    new: String,
) -> Answer {
    let (from, to) = (
        writable_dir(&mut store, &fd)?,
        writable_dir(&mut store, &new_fd)?,
    );
    let _guard = GUARD.lock().await;
    let decision = match (from, to) {
        (Some(from), Some(to)) => {
            let roots = get(store.data_mut()).roots.clone();
            let (o, n) = (old.clone(), new.clone());
            blocking(move || decide(&roots, Op::Rename, &from, &o, &to, &n)).await?
        }
        _ => Decision::Pass,
    };
    match decision {
        Decision::Pass => {
            let mut view = store.data_mut().filesystem();
            answer(HostDescriptor::rename_at(&mut view, fd, old, new_fd, new).await)
        }
        Decision::Done(done) => Ok((done.map_err(ErrorCode::from),)),
        Decision::Refuse => refuse(
            &mut store,
            get,
            format!(
                "refused to move `{old}` to `{new}`: a symbolic link would lead out of the workspace from there"
            ),
        ),
    }
}

/// Looks at `old` (in `from`) and where it would go (`new` in `to`).
fn decide(
    roots: &WorkspaceRoots,
    op: Op,
    from: &File,
    old: &str,
    to: &File,
    new: &str,
) -> Decision {
    let decided = || -> io::Result<Decision> {
        let (old_parent, old_name) = open_parent(from, old)?;
        match entry(&old_parent, old_name)? {
            Entry::Link(target) => {
                let climb = match parse_target(&target) {
                    // Stays under its directory, or leads out already: nothing changes.
                    Target::Relative { climb: 0 } | Target::Absolute => {
                        return Ok(Decision::Pass);
                    }
                    Target::Relative { climb } => climb,
                    Target::Tangled { .. } => return Ok(Decision::Refuse),
                };
                let (new_parent, new_name) = open_parent(to, new)?;
                if !has_room(roots, &new_parent, climb)? {
                    return Ok(Decision::Refuse);
                }
                Ok(Decision::Done(apply(
                    op,
                    &old_parent,
                    old_name,
                    &new_parent,
                    new_name,
                )))
            }
            Entry::Dir if op == Op::Rename => {
                let (new_parent, new_name) = open_parent(to, new)?;
                let (Some(was), Some(will)) =
                    (roots.depth(&old_parent)?, roots.depth(&new_parent)?)
                else {
                    return Ok(Decision::Refuse);
                };
                // Moving down (or across) keeps every link as far from the root as it
                // was; only a move up needs the tree looked at.
                if will < was {
                    match depth_needed(&old_parent, old_name)? {
                        Some(needed) if will + 1 >= needed => {}
                        _ => return Ok(Decision::Refuse),
                    }
                }
                Ok(Decision::Done(apply(
                    op,
                    &old_parent,
                    old_name,
                    &new_parent,
                    new_name,
                )))
            }
            Entry::Dir | Entry::Other => Ok(Decision::Pass),
        }
    };
    decided().unwrap_or_else(|err| Decision::Done(Err(err)))
}

fn apply(op: Op, from: &File, old: &str, to: &File, new: &str) -> io::Result<()> {
    match op {
        Op::Link => rustix::fs::linkat(from, old, to, new, AtFlags::empty())?,
        Op::Rename => rustix::fs::renameat(from, old, to, new)?,
    }
    Ok(())
}

/// Whether `dir` is at least `climb` directories below its workspace's root.
pub(super) fn has_room(roots: &WorkspaceRoots, dir: &File, climb: usize) -> io::Result<bool> {
    Ok(roots.depth(dir)?.is_some_and(|depth| depth >= climb))
}

/// Opens the directory that the last name of `path` is in, resolving `path` beneath
/// `dir` as wasmtime-wasi does, and returns it with that name. A path ending in `/`
/// names a directory: fine for moving one, not for a link (`not-directory`).
pub(super) fn open_parent<'p>(dir: &File, path: &'p str) -> io::Result<(File, &'p str)> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = match trimmed.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => (".", trimmed),
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(Errno::INVAL.into());
    }
    let parent = cap_primitives::fs::open_dir(dir, Path::new(parent))?;
    if trimmed.len() < path.len() && !matches!(entry(&parent, name)?, Entry::Dir) {
        return Err(Errno::NOTDIR.into());
    }
    Ok((parent, name))
}
