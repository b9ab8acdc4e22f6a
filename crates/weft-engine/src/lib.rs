//! weft's scheduler. [`prepare`] turns pipeline text into a validated plan with its
//! plugins loaded; [`execute`] runs it on tokio, driving weft-core's pure [`RunState`]
//! (what runs next, skip reasons, aggregates, the final status) with weft-runtime's
//! sandbox (how each task runs).
//!
//! [`RunState`]: weft_core::RunState

mod decorate;
mod execute;
pub mod fair;
mod fault;
mod grants;
mod mask;
mod observe;
mod outbox;
mod persist;
mod policy;
mod prepare;
mod registry;
mod report;
pub mod runs;
mod secrets;
mod snapshot;
mod source;

/// How many task attempts a run starts at once unless told: 4 per CPU.
pub use execute::default_parallelism;
pub use runs::{
    Finished, LiveRun, RunService, RunSpec, ServiceConfig, StoreOpener, SubmitError, Warn,
};

/// The driver itself, for benchmarks that measure it without a store: a prepared plan run
/// in memory. Everything else goes through [`runs::RunService`].
pub mod driver {
    pub use crate::execute::{RunOptions, execute, execute_until};
    pub use crate::prepare::prepare;
}
