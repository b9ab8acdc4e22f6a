//! The attempts in flight: their futures are polled by the driver's own task rather than
//! spawned on the runtime. A plugin's invocation already runs on a guest thread of its own
//! (`weft_runtime`'s `guest.rs`); what is left here (handing the invocation over, masking
//! its report, a workspace snapshot's async steps) is short. So an attempt's answer wakes
//! the driver directly, instead of waking a runtime worker that then wakes the driver.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures::FutureExt;
use futures::future::{AbortHandle, abortable};
use futures::stream::{FuturesUnordered, StreamExt};
use weft_core::NodeId;
use weft_runtime::TaskReport;

/// How an attempt's future ended.
pub(super) enum Joined {
    /// Its report.
    Done(NodeId, u32, TaskReport),
    /// It was aborted (the driver already reported the attempt cancelled).
    Aborted,
    /// It panicked: what the panic said.
    Panicked(String),
}

type AttemptFuture = Pin<Box<dyn Future<Output = Joined> + Send>>;

/// The futures of the attempts in flight.
#[derive(Default)]
pub(super) struct AttemptSet {
    futures: FuturesUnordered<AttemptFuture>,
}

impl AttemptSet {
    /// Adds an attempt; its handle aborts it (its future is dropped, which stops its guest).
    pub(super) fn spawn(
        &mut self,
        attempt: impl Future<Output = (NodeId, u32, TaskReport)> + Send + 'static,
    ) -> AbortHandle {
        let (attempt, handle) = abortable(attempt);
        self.futures
            .push(Box::pin(AssertUnwindSafe(attempt).catch_unwind().map(
                |ended| {
                    match ended {
                        Ok(Ok((node, attempt, report))) => Joined::Done(node, attempt, report),
                        Ok(Err(_aborted)) => Joined::Aborted,
                        Err(panic) => Joined::Panicked(
                            panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "a panic".to_string()),
                        ),
                    }
                },
            )));
        handle
    }

    /// The next attempt to end; pending forever while none is in flight.
    pub(super) async fn next(&mut self) -> Joined {
        match self.futures.next().await {
            Some(joined) => joined,
            None => std::future::pending().await,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.futures.is_empty()
    }

    /// Drops every attempt in flight (their guests are told to stop).
    pub(super) fn abort_all(&mut self) {
        self.futures.clear();
    }
}
