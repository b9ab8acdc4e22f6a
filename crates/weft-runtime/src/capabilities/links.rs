//! Symbolic links a task makes in a workspace never lead out of it.
//!
//! A task with a read-write workspace can make symbolic links in it (`wasi:filesystem`
//! `symlink-at`). Inside the sandbox a link out of the workspace cannot be followed
//! (wasmtime-wasi resolves every path beneath its directory), but the link stays on the
//! host after the run: a trap for whatever reads the workspace next (host tools, the
//! snapshot archiver, a developer's shell). wasmtime-wasi already refuses absolute
//! targets; this module shadows three functions of `wasi:filesystem/types` in the linker
//! to refuse every other way a link can come to lead out:
//!
//! - **Making a link** (`symlink-at`). The target is read as text (`target.rs`). Only
//!   leading `..` may climb; a `..` after a name is refused, since where it goes depends
//!   on what the name is when followed (a link elsewhere moves it). The directory the
//!   link goes in is opened (resolving the guest's path as wasmtime-wasi does, beneath
//!   the guest's directory) and its depth below its workspace's root is measured by
//!   walking its real parents (`resolve.rs`): the leading `..` may not climb past the
//!   root. Any path through the link then only descends, through directories or
//!   through links held to the same rule, so no chain of links climbs out either.
//! - **Moving** (`rename-at`). A link keeps its target text, so a moved link is checked
//!   again at its new place; a directory moved to a shallower place is checked against
//!   the links in its tree (up to 100,000 entries and 256 levels: beyond, the move is
//!   refused).
//! - **Hard-linking** (`link-at`) a symbolic link copies it elsewhere: checked like a
//!   move. A hard link to a file leads nowhere new, and directories cannot be
//!   hard-linked.
//!
//! The guest gets `error-code::not-permitted`, and the task's log says what was
//! refused. The check and the operation use the same opened directories, under one lock
//! shared by all the tasks of the process, so tasks sharing a workspace cannot race a
//! check (one moving a directory up while another links from it). Links without `..`,
//! and moving or hard-linking anything but a link or a directory, go to wasmtime-wasi
//! as before: wherever such a link goes, it stays under its own directory.
//!
//! Not covered: links that were in the workspace before the task ran (made on the host)
//! are taken as they are, and one whose target has a `..` after a name can be
//! redirected by a link the task makes under that name; another process changing the
//! workspace during a check. Off Unix, where depths cannot be measured, every target
//! with a `..` is refused.

#[cfg(unix)]
mod moves;
#[cfg(unix)]
mod resolve;
mod target;

use std::fs::File;
use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView as _};
use wasmtime_wasi::p2::FsError;
use wasmtime_wasi::p2::bindings::filesystem::types::{ErrorCode, HostDescriptor};

use super::log::{LogLevel, SharedOutput};
#[cfg(unix)]
pub use resolve::WorkspaceRoots;
use target::{Target, parse_target};

/// The interface whose functions are shadowed, exactly as wasmtime-wasi names it.
const TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Held while a link is checked and made, or something moved: by every task of the
/// process, so that no other task changes the workspace's shape in between.
#[cfg(unix)]
static GUARD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The roots of a task's workspaces (off Unix, nothing: depths are not measured).
#[cfg(not(unix))]
#[derive(Debug, Default)]
pub struct WorkspaceRoots;

#[cfg(not(unix))]
impl WorkspaceRoots {
    /// The roots at these host paths.
    pub fn of<'a>(_dirs: impl IntoIterator<Item = &'a std::path::Path>) -> std::io::Result<Self> {
        Ok(WorkspaceRoots)
    }
}

/// What the link checks need from a task's state.
pub struct LinksView<'a> {
    pub(crate) roots: &'a Arc<WorkspaceRoots>,
    pub(crate) output: &'a SharedOutput,
}

/// What a shadowed function returns to the guest.
type Answer = wasmtime::Result<(Result<(), ErrorCode>,)>;

/// Shadows `symlink-at`, `link-at` and `rename-at` of `wasi:filesystem/types` in
/// `linker`, which must already hold wasmtime-wasi's (see the [module docs](self)).
pub fn add_to_linker<T: WasiView + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> LinksView<'_>,
) -> wasmtime::Result<()> {
    // Under another name the functions below would sit beside wasmtime-wasi's and guard
    // nothing; defining one where wasmtime-wasi's is must fail without shadowing.
    let probe = linker.instance(TYPES)?.func_wrap(
        "[method]descriptor.symlink-at",
        |_: StoreContextMut<'_, T>, (): ()| Ok(()),
    );
    if probe.is_ok() {
        wasmtime::bail!(
            "wasmtime-wasi no longer defines `{TYPES}`; update the link guard to its version"
        );
    }
    linker.allow_shadowing(true);
    let defined = define(linker, get);
    linker.allow_shadowing(false);
    defined
}

fn define<T: WasiView + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> LinksView<'_>,
) -> wasmtime::Result<()> {
    let mut types = linker.instance(TYPES)?;
    types.func_wrap_async(
        "[method]descriptor.symlink-at",
        move |store, (fd, target, path): (Resource<Descriptor>, String, String)| {
            Box::new(symlink_at(store, get, fd, target, path))
        },
    )?;
    #[cfg(unix)]
    {
        use wasmtime_wasi::p2::bindings::filesystem::types::PathFlags;
        types.func_wrap_async(
            "[method]descriptor.link-at",
            move |store,
                  (fd, flags, old, new_fd, new): (
                Resource<Descriptor>,
                PathFlags,
                String,
                Resource<Descriptor>,
                String,
            )| { Box::new(moves::link_at(store, get, fd, flags, old, new_fd, new)) },
        )?;
        types.func_wrap_async(
            "[method]descriptor.rename-at",
            move |store,
                  (fd, old, new_fd, new): (
                Resource<Descriptor>,
                String,
                Resource<Descriptor>,
                String,
            )| { Box::new(moves::rename_at(store, get, fd, old, new_fd, new)) },
        )?;
    }
    Ok(())
}

/// `symlink-at`: refused when the link would lead out of its workspace.
async fn symlink_at<T: WasiView>(
    mut store: StoreContextMut<'_, T>,
    get: fn(&mut T) -> LinksView<'_>,
    fd: Resource<Descriptor>,
    target: String,
    path: String,
) -> Answer {
    let climb = match parse_target(target.as_bytes()) {
        Target::Relative { climb: 0 } => {
            let mut view = store.data_mut().filesystem();
            return answer(HostDescriptor::symlink_at(&mut view, fd, target, path).await);
        }
        Target::Relative { climb } => climb,
        Target::Tangled { .. } | Target::Absolute => {
            return refuse(&mut store, get, link_refusal(&path, &target));
        }
    };
    let Some(dir) = writable_dir(&mut store, &fd)? else {
        // Not a directory this task may write: wasmtime-wasi says which error.
        let mut view = store.data_mut().filesystem();
        return answer(HostDescriptor::symlink_at(&mut view, fd, target, path).await);
    };
    #[cfg(unix)]
    {
        let roots = get(store.data_mut()).roots.clone();
        let (link, to) = (path.clone(), target.clone());
        let _guard = GUARD.lock().await;
        let made = blocking(move || -> std::io::Result<Option<()>> {
            let (parent, name) = moves::open_parent(&dir, &link)?;
            if !moves::has_room(&roots, &parent, climb)? {
                return Ok(None);
            }
            rustix::fs::symlinkat(to.as_str(), &parent, name)?;
            Ok(Some(()))
        })
        .await?;
        match made {
            Ok(Some(())) => Ok((Ok(()),)),
            Ok(None) => refuse(&mut store, get, link_refusal(&path, &target)),
            Err(err) => Ok((Err(ErrorCode::from(err)),)),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, climb);
        refuse(&mut store, get, link_refusal(&path, &target))
    }
}

fn link_refusal(path: &str, target: &str) -> String {
    format!(
        "refused to make the symbolic link `{path}` -> `{target}`: it would lead out of the workspace"
    )
}

/// The host directory behind `fd`, when it is a directory the task may write.
fn writable_dir<T: WasiView>(
    store: &mut StoreContextMut<'_, T>,
    fd: &Resource<Descriptor>,
) -> wasmtime::Result<Option<Arc<File>>> {
    let view = store.data_mut().filesystem();
    Ok(match view.table.get(fd)? {
        Descriptor::Dir(dir) if !dir.perms.write_not_permitted() => Some(dir.dir.clone()),
        _ => None,
    })
}

/// Says `why` in the task's log and answers `not-permitted`.
fn refuse<T: WasiView>(
    store: &mut StoreContextMut<'_, T>,
    get: fn(&mut T) -> LinksView<'_>,
    why: String,
) -> Answer {
    get(store.data_mut()).output.host_line(LogLevel::Warn, why);
    Ok((Err(ErrorCode::NotPermitted),))
}

/// wasmtime-wasi's answer, as the guest gets it.
fn answer(result: Result<(), FsError>) -> Answer {
    match result {
        Ok(()) => Ok((Ok(()),)),
        Err(err) => Ok((Err(err.downcast()?),)),
    }
}

/// Runs filesystem work off the async threads, as wasmtime-wasi does.
#[cfg(unix)]
async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> wasmtime::Result<R> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| wasmtime::format_err!("a link check failed: {err}"))
}
