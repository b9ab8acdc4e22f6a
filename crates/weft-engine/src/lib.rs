//! weft's scheduler. [`prepare`] turns pipeline text into a validated plan with its
//! plugins loaded; [`execute`] runs it on tokio, driving weft-core's pure [`RunState`]
//! (what runs next, skip reasons, aggregates, the final status) with weft-runtime's
//! sandbox (how each task runs).
//!
//! [`RunState`]: weft_core::RunState

pub mod execute;
pub mod prepare;
pub mod registry;

pub use execute::{
    CancelHandle, Quiet, RunEvent, RunObserver, RunOptions, RunTimeouts, cancel_channel, execute,
};
pub use prepare::{PLUGIN_UNUSABLE, Prepared, prepare};
pub use registry::{Catalog, PluginError, PluginRegistry, ResolvedPlugin};
