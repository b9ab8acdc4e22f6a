//! The data of one task's `Store`: a fresh one per invocation, never shared.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::checkpoint::{CheckpointStore, CheckpointView};
use crate::capabilities::http::EgressHooks;
use crate::capabilities::links::{LinksView, WorkspaceRoots};
use crate::capabilities::log::{LogView, SharedOutput};
use crate::capabilities::secrets::{SecretValue, SecretsView};
use crate::limits::GrowthLimiter;

/// Counts the epoch ticks a task's guest code ran for.
pub(crate) struct CpuMeter {
    pub(crate) ticks_used: u64,
    pub(crate) ticks_budget: u64,
    pub(crate) exhausted: bool,
}

/// Everything the host keeps for one task invocation.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) egress: EgressHooks,
    pub(crate) output: SharedOutput,
    /// The task's workspace directories, which links may not lead out of.
    pub(crate) workspace_roots: Arc<WorkspaceRoots>,
    pub(crate) secrets: BTreeMap<String, SecretValue>,
    pub(crate) checkpoints: Arc<dyn CheckpointStore>,
    pub(crate) limiter: GrowthLimiter,
    pub(crate) cpu: CpuMeter,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}

impl HostState {
    pub(crate) fn log_view(&mut self) -> LogView<'_> {
        LogView {
            output: &self.output,
        }
    }

    pub(crate) fn secrets_view(&mut self) -> SecretsView<'_> {
        SecretsView {
            granted: &self.secrets,
            table: &mut self.table,
            output: &self.output,
        }
    }

    pub(crate) fn links_view(&mut self) -> LinksView<'_> {
        LinksView {
            roots: &self.workspace_roots,
            output: &self.output,
        }
    }

    pub(crate) fn checkpoint_view(&mut self) -> CheckpointView<'_> {
        CheckpointView {
            store: &self.checkpoints,
        }
    }
}
