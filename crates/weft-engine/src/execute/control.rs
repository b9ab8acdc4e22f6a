//! What a run can be told from outside while it runs (cancel, suspend), and how it ends.

use std::time::Duration;

use tokio::sync::mpsc;
use weft_core::{CancelMode, RunSummary};

/// What a run can be told from outside while it runs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Control {
    /// Cancel the run in this mode (semantics.md section 6).
    Cancel(CancelMode),
    /// Stop this engine's work on the run without ending it (graceful shutdown): nothing
    /// new starts, running attempts get `grace` to finish, and what is left stays in the
    /// journal for another engine to recover.
    Suspend(Duration),
}

/// A handle to cancel a run from elsewhere (Ctrl-C, an API call) or to suspend it.
#[derive(Clone)]
pub struct CancelHandle(mpsc::UnboundedSender<Control>);

impl CancelHandle {
    /// Asks the run to cancel in `mode`. Ignored once the run is over.
    pub fn cancel(&self, mode: CancelMode) {
        let _ = self.0.send(Control::Cancel(mode));
    }

    /// Asks the engine to let go of the run (shutdown): no new attempt starts, running
    /// ones may finish within `grace`, then the rest is left to recovery. Only durable runs
    /// can be suspended; an in-memory run treats this as `StoppedRunFinally`.
    pub fn suspend(&self, grace: Duration) {
        let _ = self.0.send(Control::Suspend(grace));
    }
}

/// The receiving end of a [`CancelHandle`], which `execute` listens on.
pub struct ControlReceiver(pub(super) mpsc::UnboundedReceiver<Control>);

/// A new cancel handle and the receiving end `execute` listens on.
pub fn cancel_channel() -> (CancelHandle, ControlReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (CancelHandle(tx), ControlReceiver(rx))
}

/// How [`execute_until`] left a run.
#[derive(Debug)]
pub enum RunEnd {
    /// The run is over.
    Finished(Box<RunSummary>),
    /// The engine let go of the run (see [`CancelHandle::suspend`]); it is still open in
    /// the store, for recovery.
    Suspended,
}
