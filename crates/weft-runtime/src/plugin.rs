//! A loaded plugin: its compiled component, what kind it is, what it imports, and the
//! calls that run it (`describe`, `run`, `report`, `decorate`, `evaluate`) in a fresh,
//! limited `Store`, through the contract version module of the version it was built for.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, InstancePre};
use wasmtime::{Store, Trap, UpdateDeadline};
use weft_core::contract::{
    Capabilities, Delivery, ParamValue, PluginInfo, ReportEvent, TaskEnding, WorkspaceBinding,
};

use crate::capabilities::checkpoint::{CheckpointStore, MemoryCheckpoints};
use crate::capabilities::http::EgressHooks;
use crate::capabilities::links::WorkspaceRoots;
use crate::capabilities::log::{LogLevel, LogSink, MemorySink, SharedOutput};
use crate::grants::{Grants, first_ungranted};
use crate::guest::{self, GuestControl, Stop};
use crate::limits::{GrowthLimiter, LimitKind, Limits};
use crate::state::{CpuMeter, HostState};
use crate::wit::{Contract, Returned, since_v0_1_0, since_v0_2_0};
use crate::{EPOCH_TICK, Runtime};

/// The plain data of the contract that a plugin's callers build or get back.
pub use weft_core::contract::{Decorated, DecoratorInfo, GateContext, GateResult, TaskContext};

/// What contract a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// Exports `weft:plugin/task-plugin`.
    Task,
    /// A plain WASI command (`wasi:cli/run`): exit code 0 is success.
    Command,
    /// Exports `weft:plugin/reporter-plugin`: posts run status to a forge.
    Reporter,
    /// Exports `weft:plugin/form-decorator-plugin`: shapes a submission.
    FormDecorator,
    /// Exports `weft:plugin/gate-plugin` (0.2.0 on): a condition a run waits for.
    Gate,
}

impl PluginKind {
    /// Lower-case name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Task => "task",
            PluginKind::Command => "command",
            PluginKind::Reporter => "reporter",
            PluginKind::FormDecorator => "form decorator",
            PluginKind::Gate => "gate",
        }
    }

    /// Whether pipelines can run it as a task.
    pub fn is_task(self) -> bool {
        matches!(self, PluginKind::Task | PluginKind::Command)
    }
}

/// Evaluates `$call` with `$v` naming the contract version module that serves `$contract`
/// (every version module has the same typed calls with the same plain signatures).
macro_rules! by_contract {
    ($contract:expr, $v:ident => $call:expr) => {
        match $contract {
            Contract::V0_1 => {
                use since_v0_1_0 as $v;
                $call
            }
            Contract::V0_2 => {
                use since_v0_2_0 as $v;
                $call
            }
        }
    };
}

pub use crate::hooks::Instantiated;

/// One invocation of a task plugin.
pub struct TaskRequest {
    /// Where it runs.
    pub context: TaskContext,
    /// Its params, already substituted.
    pub params: BTreeMap<String, ParamValue>,
    /// What it may use.
    pub grants: Grants,
    /// What it may spend.
    pub limits: Limits,
    /// Where its log lines go.
    pub log: Arc<dyn LogSink>,
    /// Its checkpoints, scoped to (run, task).
    pub checkpoints: Arc<dyn CheckpointStore>,
    /// Told how long instantiating it took ([`Plugin::run`] only), e.g. for metrics.
    pub instantiated: Option<Instantiated>,
    /// Told how much guest CPU time the invocation used (epoch ticks while its wasm ran,
    /// [`crate::EPOCH_TICK`] each), however it ended: e.g. for a tenant's CPU quota.
    pub cpu_used: Option<Instantiated>,
}

impl TaskRequest {
    /// A request with default limits, no grants, and logs and checkpoints in memory.
    pub fn new(task_name: impl Into<String>) -> Self {
        TaskRequest {
            context: TaskContext {
                task_name: task_name.into(),
                ..TaskContext::default()
            },
            params: BTreeMap::new(),
            grants: Grants::default(),
            limits: Limits::default(),
            log: Arc::new(MemorySink::default()),
            checkpoints: Arc::new(MemoryCheckpoints::default()),
            instantiated: None,
            cpu_used: None,
        }
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReport {
    /// The raw ending: what the plugin said, or `Errored` with a reason naming the limit
    /// or fault.
    pub ending: TaskEnding,
    /// The results it returned (empty when it errored).
    pub results: BTreeMap<String, String>,
}

impl TaskReport {
    fn errored(reason: &str, message: impl Into<String>) -> Self {
        TaskReport {
            ending: TaskEnding::Errored {
                reason: reason.to_string(),
                message: message.into(),
            },
            results: BTreeMap::new(),
        }
    }

    fn limit(limit: LimitKind, detail: impl Into<String>) -> Self {
        Self::errored(limit.reason(), detail)
    }
}

pub(crate) struct PluginInner {
    pub(crate) name: String,
    pub(crate) kind: PluginKind,
    pub(crate) imports: Vec<String>,
    pub(crate) wit_version: Option<semver::Version>,
    pub(crate) component: Component,
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) runtime: Runtime,
}

/// A loaded, compiled, checked plugin. Cheap to clone; each call gets a fresh `Store`.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.name)
            .field("kind", &self.inner.kind)
            .finish()
    }
}

impl Plugin {
    /// The name it was loaded under (file stem).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its kind.
    pub fn kind(&self) -> PluginKind {
        self.inner.kind
    }

    /// The interfaces it imports, with versions (e.g. `wasi:cli/stdout@0.2.6`).
    pub fn imports(&self) -> &[String] {
        &self.inner.imports
    }

    /// The `weft:plugin` WIT version it was built against (none for plain commands).
    pub fn wit_version(&self) -> Option<&semver::Version> {
        self.inner.wit_version.as_ref()
    }

    /// The compiled component.
    pub fn component(&self) -> &Component {
        &self.inner.component
    }

    /// The contract version module serving this plugin (commands have no version; they
    /// never reach a version module).
    fn contract(&self) -> Contract {
        self.inner
            .wit_version
            .as_ref()
            .map_or(Contract::V0_2, Contract::of)
    }

    /// Asks the plugin to describe itself. Plain commands are described by the host: no
    /// declared params, any accepted.
    pub async fn describe(&self) -> Result<PluginInfo, TaskReport> {
        if self.inner.kind == PluginKind::Command {
            return Ok(PluginInfo {
                name: self.inner.name.clone(),
                version: String::new(),
                description: "a plain WASI command (exit code 0 is success)".to_string(),
                params: Vec::new(),
                results: Vec::new(),
                results_fixed: true,
                accepts_any_params: true,
                capabilities: Capabilities::default(),
            });
        }
        let mut request = TaskRequest::new(format!("{}:describe", self.inner.name));
        request.limits.cpu_budget = std::time::Duration::from_secs(10);
        request.limits.wall_clock = Some(std::time::Duration::from_secs(30));
        let pre = self.inner.pre.clone();
        let contract = self.contract();
        match self.inner.kind {
            PluginKind::Task => {
                self.invoke(request, &[], &[], async move |store| {
                    by_contract!(contract, v => v::describe_task(store, pre.clone()).await)
                })
                .await
            }
            PluginKind::Reporter => {
                self.invoke(request, &[], &[], async move |store| {
                    by_contract!(contract, v => v::describe_reporter(store, pre.clone()).await)
                })
                .await
            }
            PluginKind::Gate => {
                self.invoke(request, &[], &[], async move |store| {
                    since_v0_2_0::describe_gate(store, pre.clone()).await
                })
                .await
            }
            PluginKind::FormDecorator => Ok(self.describe_decorator().await?.info),
            PluginKind::Command => unreachable!("commands are described above"),
        }
    }

    /// Asks a form decorator to describe itself, with the JSON Schema of its input.
    pub async fn describe_decorator(&self) -> Result<DecoratorInfo, TaskReport> {
        self.expect_kind(PluginKind::FormDecorator)?;
        let mut request = TaskRequest::new(format!("{}:describe", self.inner.name));
        request.limits.cpu_budget = std::time::Duration::from_secs(10);
        request.limits.wall_clock = Some(std::time::Duration::from_secs(30));
        let pre = self.inner.pre.clone();
        let contract = self.contract();
        self.invoke(
            request,
            &[],
            &[],
            async move |store| by_contract!(contract, v => v::describe_decorator(store, pre.clone()).await),
        )
        .await
    }

    /// Runs `call` on a fresh store for `request` on a guest thread ([`crate::guest`]),
    /// never on the caller's runtime: waits for a pool slot, stops the guest at its
    /// wall-clock deadline or when this future is dropped (the task was cancelled), and
    /// names the limit or fault when it fails.
    async fn invoke<R: Send + 'static>(
        &self,
        request: TaskRequest,
        env: &[(String, String)],
        args: &[String],
        call: impl AsyncFn(&mut Store<HostState>) -> wasmtime::Result<R> + Send + 'static,
    ) -> Result<R, TaskReport> {
        let deadline = request
            .limits
            .wall_clock
            .map(|limit| Instant::now() + limit);
        let wall_clock = wall_clock_message(&request.limits);
        let timed_out = || TaskReport::limit(LimitKind::WallClock, wall_clock.clone());
        // Queue for a pool slot rather than fail to instantiate when all are busy.
        let slot = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.into(), self.inner.runtime.slot())
                .await
                .map_err(|_| timed_out())?,
            None => self.inner.runtime.slot().await,
        };
        let control = Arc::new(GuestControl::new(deadline));
        let output = SharedOutput::new(request.log.clone(), request.limits.log_bytes);
        let io = guest::guest_io().map_err(|message| TaskReport::errored("HostError", message))?;
        let (answer, mut answered) = tokio::sync::oneshot::channel();
        // The store is made on the guest's thread too: the caller (a run's driver) only
        // hands the invocation over and hears its answer.
        let cpu_used = request.cpu_used;
        let inputs = StoreInputs {
            grants: request.grants,
            limits: request.limits,
            checkpoints: request.checkpoints,
            env: env.to_vec(),
            args: args.to_vec(),
        };
        let job = {
            let (control, output, timed_out) = (control.clone(), output.clone(), timed_out());
            let plugin = self.clone();
            move || {
                let _slot = slot;
                let mut settle = PoolSettle::default();
                let result = loop {
                    let attempt = plugin
                        .new_store(&inputs, &output, control.clone())
                        .map_err(Failure::from)
                        .and_then(|store| {
                            drive(
                                io.handle(),
                                store,
                                &output,
                                &control,
                                &call,
                                &timed_out,
                                cpu_used.as_ref(),
                            )
                        });
                    match attempt {
                        // Nothing of the guest ran: instantiation found no free slot.
                        Err(failure) if failure.pool_busy && settle.wait() => continue,
                        attempt => break attempt.map_err(|failure| failure.report),
                    }
                };
                let _ = answer.send(result);
            }
        };
        // Until the answer is in, dropping this future stops the guest.
        let mut stopper = StopOnDrop {
            control: &control,
            output: &output,
            engine: self.inner.runtime.engine(),
            armed: true,
        };
        guest::spawn(Box::new(job)).map_err(|err| {
            TaskReport::errored(
                "HostError",
                format!("cannot start a thread for the guest: {err}"),
            )
        })?;
        let answer = tokio::select! {
            answer = &mut answered => answer,
            () = sleep_until(deadline) => {
                stopper.stop(Stop::TimedOut);
                answered.await
            }
        };
        stopper.armed = false;
        answer.unwrap_or_else(|_| {
            Err(TaskReport::errored(
                "HostError",
                "the guest's thread ended without an answer",
            ))
        })
    }

    /// Refuses an invocation whose imports the grants do not cover, before instantiating.
    fn check_grants(&self, request: &TaskRequest) -> Result<(), TaskReport> {
        let Some((import, why)) = first_ungranted(&self.inner.imports, &request.grants) else {
            return Ok(());
        };
        let message = format!(
            "plugin `{}` imports `{import}`, but {why}; it was not instantiated",
            self.inner.name
        );
        let output = SharedOutput::new(request.log.clone(), request.limits.log_bytes);
        output.host_line(LogLevel::Error, message.clone());
        Err(TaskReport::errored("CapabilityDenied", message))
    }

    /// Posts one event through a reporter plugin. `Err` carries why the call itself
    /// failed (a limit, a trap, a denied capability), which the caller treats as a retry.
    pub async fn report(
        &self,
        request: TaskRequest,
        event: ReportEvent,
    ) -> Result<Delivery, TaskReport> {
        self.expect_kind(PluginKind::Reporter)?;
        self.check_grants(&request)?;
        let pre = self.inner.pre.clone();
        let contract = self.contract();
        self.invoke(
            request,
            &[],
            &[],
            async move |store| by_contract!(contract, v => v::report(store, pre.clone(), &event).await),
        )
        .await
    }

    /// Runs a form decorator on the submission's params with its `input` (JSON text), under
    /// `request`'s grants and limits (the decoration and a refusal's message count against
    /// `limits.result_bytes`). `Ok(Err(message))` is the decorator refusing the submission;
    /// `Err` is a limit, trap or denied capability, with a reason naming it.
    pub async fn decorate(
        &self,
        request: TaskRequest,
        form_state: &BTreeMap<String, ParamValue>,
        input: &str,
    ) -> Result<Result<Decorated, String>, TaskReport> {
        self.expect_kind(PluginKind::FormDecorator)?;
        self.check_grants(&request)?;
        let pre = self.inner.pre.clone();
        let contract = self.contract();
        let (form_state, input) = (form_state.clone(), input.to_string());
        let budget = request.limits.result_bytes;
        let decorated = self
            .invoke(request, &[], &[], async move |store| {
                by_contract!(contract, v => v::decorate(store, pre.clone(), &form_state, &input).await)
            })
            .await?;
        let size = decorated.bytes;
        if size > budget {
            return Err(TaskReport::limit(
                LimitKind::ResultBytes,
                format!("the decorator returned {size} bytes; the limit is {budget} bytes"),
            ));
        }
        Ok(decorated.value)
    }

    /// Evaluates a gate once (one sample) under `request`'s grants and limits, exactly as a
    /// task runs: a fresh `Store`, the same limits, log lines masked with the secrets it
    /// reveals, the message counted against `limits.result_bytes`. `ctx` says where it
    /// runs (`request.context` is not read); its params are `request.params`. A gate gets
    /// no workspaces (`request.grants.workspaces` is ignored: nothing is preopened) and no
    /// checkpoints (a component importing `weft:plugin/checkpoint` is refused).
    ///
    /// `Ok` is what the gate said, unmasked like a task's results (the caller masks it);
    /// `Err` is a limit, trap or denied capability, with a reason naming it, which the
    /// caller counts as an `error` sample.
    pub async fn evaluate(
        &self,
        mut request: TaskRequest,
        ctx: GateContext,
    ) -> Result<GateResult, TaskReport> {
        self.expect_kind(PluginKind::Gate)?;
        if let Some(import) = self
            .inner
            .imports
            .iter()
            .find(|import| crate::grants::split_version(import).0 == "weft:plugin/checkpoint")
        {
            let message = format!(
                "gate `{}` imports `{import}`, but gates are given no checkpoints; it was not instantiated",
                self.inner.name
            );
            let output = SharedOutput::new(request.log.clone(), request.limits.log_bytes);
            output.host_line(LogLevel::Error, message.clone());
            return Err(TaskReport::errored("CapabilityDenied", message));
        }
        request.grants.workspaces.clear();
        self.check_grants(&request)?;
        let pre = self.inner.pre.clone();
        let params = request.params.clone();
        let budget = request.limits.result_bytes;
        let returned = self
            .invoke(request, &[], &[], async move |store| {
                since_v0_2_0::evaluate(store, pre.clone(), &ctx, &params).await
            })
            .await?;
        let size = returned.bytes;
        if size > budget {
            return Err(TaskReport::limit(
                LimitKind::ResultBytes,
                format!("the gate returned a {size}-byte message; the limit is {budget} bytes"),
            ));
        }
        Ok(returned.value)
    }

    fn expect_kind(&self, kind: PluginKind) -> Result<(), TaskReport> {
        if self.inner.kind == kind {
            Ok(())
        } else {
            Err(TaskReport::errored(
                "WrongPluginKind",
                format!(
                    "plugin `{}` is a {}, not a {}",
                    self.inner.name,
                    self.inner.kind.as_str(),
                    kind.as_str()
                ),
            ))
        }
    }

    /// Runs the plugin once. Never fails: every problem becomes an `Errored` ending whose
    /// reason names the limit or fault.
    pub async fn run(&self, request: TaskRequest) -> TaskReport {
        if let Err(report) = self.check_grants(&request) {
            return report;
        }
        match self.inner.kind {
            PluginKind::Task => self.run_task(request).await,
            PluginKind::Command => self.run_command(request).await,
            other => TaskReport::errored(
                "WrongPluginKind",
                format!(
                    "plugin `{}` is a {}, not a task",
                    self.inner.name,
                    other.as_str()
                ),
            ),
        }
    }

    async fn run_task(&self, mut request: TaskRequest) -> TaskReport {
        let workspaces: Vec<WorkspaceBinding> = request
            .grants
            .workspaces
            .iter()
            .map(|mount| WorkspaceBinding {
                name: mount.name.clone(),
                path: mount.guest_path.clone(),
                read_only: mount.read_only,
            })
            .collect();
        let pre = self.inner.pre.clone();
        let contract = self.contract();
        // The guest's call takes these; the invocation keeps the rest of the request.
        let context = std::mem::take(&mut request.context);
        let params = std::mem::take(&mut request.params);
        let instantiated = request.instantiated.clone();
        let budget = request.limits.result_bytes;
        let outcome = self
            .invoke(request, &[], &[], async move |store| {
                by_contract!(contract, v => {
                    v::run_task(store, pre.clone(), &context, &params, &workspaces, instantiated.as_ref())
                        .await
                })
            })
            .await;
        match outcome {
            Ok(returned) => within_result_budget(returned, budget),
            Err(report) => report,
        }
    }

    async fn run_command(&self, request: TaskRequest) -> TaskReport {
        let env = command_env(&request);
        let args = vec![self.inner.name.clone()];
        let pre = self.inner.pre.clone();
        let instantiated = request.instantiated.clone();
        let result = self
            .invoke(request, &env, &args, async move |store| {
                let command = crate::wit::timed(
                    instantiated.as_ref(),
                    wasmtime_wasi::p2::bindings::CommandPre::new(pre.clone())?
                        .instantiate_async(&mut *store),
                )
                .await?;
                // The exit code travels as an error; keep it as a value here.
                match command.wasi_cli_run().call_run(&mut *store).await {
                    Ok(Ok(())) => Ok(0),
                    Ok(Err(())) => Ok(1),
                    Err(err) => match err.downcast_ref::<wasmtime_wasi::I32Exit>() {
                        Some(exit) => Ok(exit.0),
                        None => Err(err),
                    },
                }
            })
            .await;
        let exit = match result {
            Ok(exit) => exit,
            Err(report) => return report,
        };
        TaskReport {
            ending: if exit == 0 {
                TaskEnding::Success
            } else {
                TaskEnding::Failure {
                    message: format!("exited with code {exit}"),
                    exit_code: exit,
                }
            },
            results: BTreeMap::new(),
        }
    }

    fn new_store(
        &self,
        inputs: &StoreInputs,
        output: &SharedOutput,
        control: Arc<GuestControl>,
    ) -> Result<Store<HostState>, TaskReport> {
        let StoreInputs {
            grants,
            limits,
            checkpoints,
            env,
            args,
        } = inputs;
        let wasi = crate::capabilities::wasi::build_ctx(output, &grants.workspaces, env, args)
            .map_err(|message| TaskReport::errored("WorkspaceUnavailable", message))?;
        let workspace_roots = WorkspaceRoots::of(
            grants
                .workspaces
                .iter()
                .map(|mount| mount.host_path.as_path()),
        )
        .map_err(|err| {
            TaskReport::errored(
                "WorkspaceUnavailable",
                format!("cannot read the workspace directories: {err}"),
            )
        })?;
        let state = HostState {
            wasi,
            table: wasmtime::component::ResourceTable::new(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            egress: EgressHooks {
                rules: grants.http.clone(),
                output: output.clone(),
                budget: Default::default(),
            },
            output: output.clone(),
            workspace_roots: Arc::new(workspace_roots),
            secrets: grants.secrets.clone(),
            checkpoints: checkpoints.clone(),
            limiter: GrowthLimiter {
                memory_bytes: self.inner.runtime.memory_ceiling(limits.memory_bytes),
                table_elements: limits.table_elements,
                hit: None,
            },
            cpu: CpuMeter {
                ticks_used: 0,
                ticks_budget: (limits.cpu_budget.as_millis() / EPOCH_TICK.as_millis()).max(1)
                    as u64,
                exhausted: false,
            },
        };
        let mut store = Store::new(self.inner.runtime.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.set_hostcall_fuel(limits.hostcall_fuel);
        store.set_epoch_deadline(1);
        let ticks = self.inner.runtime.ticks();
        let mut seen = ticks.load(Ordering::Relaxed);
        store.epoch_deadline_callback(move |mut ctx| {
            // Stopped from outside (deadline, cancel): at once, whatever it was doing.
            if control.check().is_some() {
                return Ok(UpdateDeadline::Interrupt);
            }
            let state = ctx.data_mut();
            if state.output.exceeded() {
                return Ok(UpdateDeadline::Interrupt);
            }
            // Only the ticker's ticks count: bumps that stop other guests do not.
            let now = ticks.load(Ordering::Relaxed);
            if now != seen {
                seen = now;
                state.cpu.ticks_used += 1;
            }
            if state.cpu.ticks_used > state.cpu.ticks_budget {
                state.cpu.exhausted = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            // The guest has a thread of its own: no need to yield to anyone.
            Ok(UpdateDeadline::Continue(1))
        });
        Ok(store)
    }
}

/// What a fresh `Store` is made of, moved to the guest's thread with the invocation.
struct StoreInputs {
    grants: Grants,
    limits: Limits,
    checkpoints: Arc<dyn CheckpointStore>,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

/// On a guest thread: runs `call` on `store` to its end (its async host calls driven
/// through `io`), unless `control` stops it first, and names how it ended.
fn drive<R>(
    io: &tokio::runtime::Handle,
    mut store: Store<HostState>,
    output: &SharedOutput,
    control: &GuestControl,
    call: &impl AsyncFn(&mut Store<HostState>) -> wasmtime::Result<R>,
    timed_out: &TaskReport,
    cpu_used: Option<&Instantiated>,
) -> Result<R, Failure> {
    let returned = match control.check() {
        Some(_) => None,
        None => io.block_on(async {
            tokio::select! {
                biased;
                returned = call(&mut store) => Some(returned),
                // A guest waiting in a host call sees no epoch tick.
                () = control.stopped() => None,
            }
        }),
    };
    output.flush_partials();
    if let Some(told) = cpu_used {
        let ticks = u32::try_from(store.data().cpu.ticks_used).unwrap_or(u32::MAX);
        told(crate::EPOCH_TICK.saturating_mul(ticks));
    }
    match (returned, control.check()) {
        (Some(Ok(value)), _) => Ok(value),
        (_, Some(Stop::TimedOut)) => Err(timed_out.clone().into()),
        (_, Some(Stop::Cancelled)) => {
            Err(TaskReport::errored("Cancelled", "the task was cancelled while it ran").into())
        }
        (Some(Err(err)), None) => {
            let pool_busy = err.is::<wasmtime::PoolConcurrencyLimitError>();
            Err(Failure {
                report: classify_error(&store, output, err),
                pool_busy,
            })
        }
        (None, None) => {
            Err(TaskReport::errored("HostError", "the guest stopped without a reason").into())
        }
    }
}

/// Why a [`drive`] returned no value: the report, and whether instantiation only found
/// the pool without a free slot (worth another try, see [`PoolSettle`]).
struct Failure {
    report: TaskReport,
    pool_busy: bool,
}

impl From<TaskReport> for Failure {
    fn from(report: TaskReport) -> Failure {
        Failure {
            report,
            pool_busy: false,
        }
    }
}

/// Waits between instantiations that found no free pool slot. The runtime's permits keep
/// live instances within the pool, but wasmtime gives slots back in batches (one TLB
/// shootdown per batch, not per task): a slot in a batch another thread is flushing is
/// neither free nor flushable for a moment. So such a failure is retried, for a while.
#[derive(Default)]
struct PoolSettle {
    waited: Duration,
}

impl PoolSettle {
    /// How long, in all, an instantiation waits for slots being given back.
    const PATIENCE: Duration = Duration::from_secs(2);
    /// Each wait: a flush takes microseconds to a millisecond.
    const PAUSE: Duration = Duration::from_micros(500);

    /// Waits a moment on this (the guest's own) thread; false once patience is spent.
    fn wait(&mut self) -> bool {
        if self.waited >= Self::PATIENCE {
            return false;
        }
        std::thread::sleep(Self::PAUSE);
        self.waited += Self::PAUSE;
        true
    }
}

/// Stops a guest whose caller went away (dropped while waiting for the answer: the task
/// was cancelled or aborted): nothing it writes afterwards reaches its log.
struct StopOnDrop<'a> {
    control: &'a GuestControl,
    output: &'a SharedOutput,
    engine: &'a wasmtime::Engine,
    armed: bool,
}

impl StopOnDrop<'_> {
    /// Asks the guest to stop and bumps the epoch, so running wasm notices at once.
    fn stop(&self, why: Stop) {
        self.control.stop(why);
        self.engine.increment_epoch();
    }
}

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.output.seal();
            self.stop(Stop::Cancelled);
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

fn wall_clock_message(limits: &Limits) -> String {
    match limits.wall_clock {
        Some(limit) => format!("the task ran longer than its timeout of {limit:?}"),
        None => "the task ran longer than its timeout".to_string(),
    }
}

/// Names the limit or fault behind an error from instantiating or calling a guest.
fn classify_error(
    store: &Store<HostState>,
    output: &SharedOutput,
    err: wasmtime::Error,
) -> TaskReport {
    let state = store.data();
    let detail = format!("{err:#}");
    if let Some(limit) = state.limiter.hit {
        return TaskReport::limit(limit, detail);
    }
    if state.cpu.exhausted {
        return TaskReport::limit(
            LimitKind::Cpu,
            format!(
                "the task used its CPU budget of {} ms",
                state.cpu.ticks_budget * EPOCH_TICK.as_millis() as u64
            ),
        );
    }
    if output.exceeded() {
        return TaskReport::limit(
            LimitKind::LogBytes,
            "the task wrote more log output than its budget allows",
        );
    }
    if err.downcast_ref::<Trap>() == Some(&Trap::StackOverflow) {
        return TaskReport::limit(LimitKind::Stack, detail);
    }
    if err.downcast_ref::<Trap>() == Some(&Trap::MemoryOutOfBounds) && shadow_stack_wrapped(&detail)
    {
        return TaskReport::limit(
            LimitKind::Stack,
            "the guest's stack in linear memory overflowed (deep recursion)",
        );
    }
    if detail.contains("fuel allocated for hostcalls has been exhausted") {
        return TaskReport::limit(LimitKind::HostcallFuel, detail);
    }
    if err.downcast_ref::<Trap>().is_some() {
        output.host_line(LogLevel::Error, format!("the task trapped: {detail}"));
        return TaskReport::errored("Trapped", detail);
    }
    output.host_line(
        LogLevel::Error,
        format!("the task failed in the host: {detail}"),
    );
    TaskReport::errored("HostError", detail)
}

/// Whether a memory fault is a guest shadow-stack overflow: compilers for wasm32 keep the
/// stack in linear memory growing down from a fixed size, so on overflow the stack pointer
/// wraps below zero and the first access faults near the top of the 32-bit address space.
fn shadow_stack_wrapped(detail: &str) -> bool {
    const MARKER: &str = "memory fault at wasm address 0x";
    let Some(start) = detail.find(MARKER) else {
        return false;
    };
    let hex: String = detail[start + MARKER.len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    u64::from_str_radix(&hex, 16).is_ok_and(|addr| (0xffff_0000..=0xffff_ffff).contains(&addr))
}

fn command_env(request: &TaskRequest) -> Vec<(String, String)> {
    let ctx = &request.context;
    let mut env = vec![
        ("WEFT_RUN_NAME".to_string(), ctx.run_name.clone()),
        ("WEFT_RUN_UID".to_string(), ctx.run_uid.clone()),
        ("WEFT_PIPELINE_NAME".to_string(), ctx.pipeline_name.clone()),
        ("WEFT_TASK_NAME".to_string(), ctx.task_name.clone()),
        ("WEFT_RETRY_COUNT".to_string(), ctx.retry_count.to_string()),
    ];
    for (name, value) in &request.params {
        let key: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        let value = match value {
            ParamValue::Str(s) => s.clone(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        env.push((format!("PARAM_{key}"), value));
    }
    env
}

/// The task's report, unless what it returned (its ending's message and its results)
/// exceeds `result_budget` bytes.
fn within_result_budget(
    returned: Returned<(TaskEnding, BTreeMap<String, String>)>,
    result_budget: usize,
) -> TaskReport {
    let size = returned.bytes;
    if size > result_budget {
        return TaskReport::limit(
            LimitKind::ResultBytes,
            format!(
                "the task returned {size} bytes of results; the limit is {result_budget} bytes"
            ),
        );
    }
    let (ending, results) = returned.value;
    TaskReport { ending, results }
}
