//! WASI 0.2 for tasks: no inherited env, args or stdio; stdout/stderr become log lines;
//! the filesystem is only the preopened workspaces; sockets are denied.

use wasmtime::component::Linker;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiView};

use super::log::{CapturedStream, LogStream, SharedOutput};
use crate::grants::WorkspaceMount;

/// Builds the WASI context of one task.
pub(crate) fn build_ctx(
    output: &SharedOutput,
    workspaces: &[WorkspaceMount],
    env: &[(String, String)],
    args: &[String],
) -> Result<WasiCtx, String> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(CapturedStream {
            output: output.clone(),
            stream: LogStream::Stdout,
        })
        .stderr(CapturedStream {
            output: output.clone(),
            stream: LogStream::Stderr,
        })
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for (key, value) in env {
        builder.env(key, value);
    }
    if !args.is_empty() {
        builder.args(args);
    }
    for mount in workspaces {
        let perms = if mount.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        builder
            .preopened_dir(&mount.host_path, &mount.guest_path, perms)
            .map_err(|e| {
                format!(
                    "cannot open workspace `{}` at {}: {e}",
                    mount.name,
                    mount.host_path.display()
                )
            })?;
    }
    Ok(builder.build())
}

/// Adds the WASI 0.2 interfaces to `linker`. Which of them a task may import is decided
/// by [`crate::grants`] before instantiation.
pub fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
}
