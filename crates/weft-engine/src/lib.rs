//! weft's scheduler. [`prepare`] turns pipeline text into a validated plan with its
//! plugins loaded; [`execute`] runs it on tokio, driving weft-core's pure [`RunState`]
//! (what runs next, skip reasons, aggregates, the final status) with weft-runtime's
//! sandbox (how each task runs).
//!
//! [`RunState`]: weft_core::RunState

pub mod decorate;
pub mod execute;
pub mod fault;
pub mod grants;
pub mod mask;
pub mod observe;
pub mod outbox;
pub mod persist;
pub mod policy;
pub mod prepare;
pub mod registry;
pub mod report;
pub mod runs;
pub mod secrets;
pub mod snapshot;

pub use decorate::{
    DecorateError, Decorated, DecoratorChange, decorate_submission, record_decorations,
    recorded_decorations,
};
pub use execute::{
    CancelHandle, ControlReceiver, RunEnd, RunOptions, RunTimeouts, cancel_channel, execute,
    execute_until,
};
pub use observe::{Fanout, Quiet, RunEvent, RunObserver};
pub use persist::{Durable, Replay};
pub use prepare::{PLUGIN_UNUSABLE, Prepared, prepare};
pub use registry::{Catalog, PluginError, PluginRegistry, ResolvedPlugin};
pub use runs::{
    Finished, LiveRun, RunService, RunSpec, ServiceConfig, StoreOpener, SubmitError, Warn,
};
