//! The run's side of the server's fair task slots ([`crate::fair`]): before an attempt
//! launches, the run holds a slot; a run waiting for one has a single request in the
//! queue (its tenant's place in line), delivered to the driver's loop when granted.
//!
//! Waiting for a slot happens before the attempt starts: its task stays pending, and its
//! wall-clock timeout (which the runtime counts from the plugin's invocation) is not
//! spent waiting. The slot is held until the plugin returns (for a Task of steps, until
//! its last step returns), not while its workspace snapshot is taken.

use futures::FutureExt;

use super::Driver;
use crate::fair::{Acquire, Permit};

impl Driver {
    /// Whether a slot is in hand for the next attempt (always, without shared slots).
    /// Otherwise a request is queued, if none is, and the driver's loop hears when it is
    /// granted ([`next_slot`]).
    pub(super) fn has_task_slot(&mut self) -> bool {
        let Some(slots) = &self.options.task_slots else {
            return true;
        };
        if self.spare_slot.is_some() {
            return true;
        }
        if self.acquiring.is_some() {
            return false;
        }
        let mut acquire = slots.acquire(&self.options.tenant, self.options.weight);
        // A free slot is granted at once. Otherwise the driver's loop polls the request
        // (with its own waker) before it sleeps.
        match (&mut acquire).now_or_never() {
            Some(permit) => {
                self.spare_slot = Some(permit);
                true
            }
            None => {
                self.acquiring = Some(acquire);
                false
            }
        }
    }

    /// The slot for the attempt being launched, if slots are shared.
    pub(super) fn take_task_slot(&mut self) -> Option<Permit> {
        self.spare_slot.take()
    }

    /// After launching: a slot in hand that no attempt took, or a request no queued
    /// attempt needs any more, goes back to the other runs at once.
    pub(super) fn return_task_slot(&mut self) {
        self.spare_slot = None;
        if self.queue.is_empty()
            || self.running.len() >= self.options.parallelism.max(1)
            || self.suspend_by.is_some()
        {
            self.acquiring = None;
        }
    }
}

/// The slot requested by the run, once granted; never, without a request.
pub(super) async fn next_slot(acquiring: &mut Option<Acquire>) -> Permit {
    match acquiring {
        Some(acquire) => acquire.await,
        None => std::future::pending().await,
    }
}
