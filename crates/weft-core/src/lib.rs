//! weft's pure core: the pipeline model, YAML parsing with source spans, validation, the
//! DAG, variable substitution, `when` expressions, the status model with its aggregates,
//! and the run state machine. No wasmtime, no tokio, no I/O.
//!
//! # What a caller does, in order
//!
//! 0. [`source::decode`] turns a file's bytes into text, or a diagnostic at the first
//!    byte that is not UTF-8.
//! 1. [`load`]`(source, file, &supplied_params, Some(&catalog))` parses, validates (all
//!    problems at once, as [`Diagnostic`]s with file, line and column) and plans. Or step
//!    by step: [`parse_pipeline`], [`validate()`], [`Plan::new`].
//! 2. [`RunState::new`]`(Arc::new(plan), RunContext { .. })`, then [`RunState::start`].
//! 3. Carry out each [`Action`] (start a task, cancel one, record a transition) and feed
//!    what happens back (`task_started`, `task_ended`, `task_timed_out`, `task_cancelled`,
//!    `cancel`, the run timeouts, `infra_error`); each returns more actions.
//! 4. [`Action::Finished`] carries the [`RunSummary`]; [`RunState::report`] serialises to
//!    the JSON document of `weft run --output json`.
//!
//! "How is `$(tasks.status)` computed": see [`status`].

pub mod child;
pub mod contract;
pub mod dag;
pub mod describe;
pub mod diag;
pub mod duration;
pub mod graph;
pub mod matrix;
pub mod model;
pub mod operation;
pub mod parse;
pub mod pipeline_run;
pub mod plan;
pub mod plugin_ref;
pub mod queue;
pub mod replay;
pub mod run;
pub mod schedule;
pub mod source;
pub mod status;
pub mod steps;
pub mod tekton_status;
pub mod validate;
pub mod vars;
pub mod waits;
mod yaml;

pub use diag::{Diagnostic, Pos, Spanned};
pub use model::Pipeline;
pub use parse::documents::{Layout, RunFiles, SourceFile, parse_run};
pub use parse::parse_pipeline;
pub use plan::{NodeId, Plan, PlanNode, load};
pub use run::{
    Action, Carried, GateCheck, HaltedBy, RunContext, RunHeader, RunPhase, RunReport, RunState,
    RunSummary, StartTask, TaskPhase, TaskReport, WaitTask,
};
pub use status::{CancelMode, Outcome, RunStatus, TasksOutcome, TasksStatus};
pub use validate::{PluginCatalog, validate, validate_with};
pub use waits::RunWait;
