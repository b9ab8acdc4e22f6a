//! Fair sharing of the server's task slots among tenants (`weft serve --task-slots`): a
//! task attempt runs only while it holds one of the slots, and a free slot goes to the
//! tenants by weighted fair queuing ([`queue`]), so one tenant's flood of ready tasks
//! delays another tenant's single task by about one slot's worth of work, not the flood.
//! This file is the async glue: futures, wakers and a lock around the pure queue.

mod queue;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

pub use queue::MAX_WEIGHT;
use queue::{FairQueue, Ticket};

/// The server's task slots, shared by every run it executes.
#[derive(Debug)]
pub struct TaskSlots {
    shared: Mutex<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: FairQueue,
    /// Wakers of acquirers still waiting.
    wakers: HashMap<Ticket, Waker>,
    /// Granted tickets whose acquirer has not taken its permit yet.
    granted: HashSet<Ticket>,
}

impl TaskSlots {
    /// `slots` task slots (at least one).
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(TaskSlots {
            shared: Mutex::new(Shared {
                queue: FairQueue::new(slots),
                wakers: HashMap::new(),
                granted: HashSet::new(),
            }),
        })
    }

    /// Waits for a slot for a task attempt of `tenant` (weight 1..=[`MAX_WEIGHT`]). The
    /// request takes its place in the queue now, not when first polled; dropping the
    /// future withdraws it (or gives back the slot it was just granted).
    pub fn acquire(self: &Arc<Self>, tenant: &str, weight: u32) -> Acquire {
        let ticket = {
            let mut shared = self.lock();
            let ticket = shared.queue.request(tenant, weight);
            shared.dispatch();
            ticket
        };
        Acquire {
            slots: self.clone(),
            ticket: Some(ticket),
        }
    }

    /// How many slots are held, and how many requests wait (for tests and metrics).
    pub fn load(&self) -> (usize, usize) {
        let shared = self.lock();
        (shared.queue.busy(), shared.queue.waiting())
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // The state is consistent between calls: a panic elsewhere leaves it usable.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot is free again: the next request is granted. Wakers are woken after the
    /// lock is let go.
    fn release(&self) {
        let wake = {
            let mut shared = self.lock();
            shared.queue.release();
            shared.dispatch()
        };
        wake.into_iter().for_each(Waker::wake);
    }
}

impl Shared {
    /// Grants what can be granted; returns the wakers to wake.
    fn dispatch(&mut self) -> Vec<Waker> {
        let granted = self.queue.grant();
        let mut wake = Vec::with_capacity(granted.len());
        for ticket in granted {
            self.granted.insert(ticket);
            wake.extend(self.wakers.remove(&ticket));
        }
        wake
    }
}

/// A request for a task slot ([`TaskSlots::acquire`]).
#[derive(Debug)]
#[must_use = "a request does nothing unless awaited"]
pub struct Acquire {
    slots: Arc<TaskSlots>,
    /// `None` once the permit was handed out.
    ticket: Option<Ticket>,
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let Some(ticket) = self.ticket else {
            panic!("a slot request polled after it was granted");
        };
        let mut shared = self.slots.lock();
        if shared.granted.remove(&ticket) {
            drop(shared);
            self.ticket = None;
            return Poll::Ready(Permit {
                slots: self.slots.clone(),
            });
        }
        shared.wakers.insert(ticket, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let mut shared = self.slots.lock();
        shared.wakers.remove(&ticket);
        if shared.granted.remove(&ticket) {
            // Granted but never taken: the slot goes to the next request.
            drop(shared);
            self.slots.release();
        } else {
            shared.queue.withdraw(ticket);
        }
    }
}

/// A held task slot; dropping it frees the slot for the next request.
#[derive(Debug)]
pub struct Permit {
    slots: Arc<TaskSlots>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.slots.release();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn permits_free_their_slot_and_dropped_requests_leave_the_queue() {
        let slots = TaskSlots::new(1);
        let held = slots.acquire("a", 1).await;
        let mut gone = slots.acquire("b", 1);
        let next = slots.acquire("a", 1);
        assert!((&mut gone).now_or_never().is_none(), "the slot is held");
        assert_eq!(slots.load(), (1, 2));
        drop(gone);
        assert_eq!(slots.load(), (1, 1));
        drop(held);
        let held = next.now_or_never().unwrap();
        assert_eq!(slots.load(), (1, 0));
        // Granted while nobody polled, then dropped: the slot is not lost.
        let granted = slots.acquire("b", 1);
        drop(held);
        drop(granted);
        assert_eq!(slots.load(), (0, 0));
        let _again = slots.acquire("c", 1).now_or_never().unwrap();
    }

    #[tokio::test]
    async fn a_waiting_acquirer_is_woken_when_a_slot_frees() {
        let slots = TaskSlots::new(1);
        let held = slots.acquire("a", 1).await;
        let waiter = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire("b", 1).await }
        });
        while slots.load().1 == 0 {
            tokio::task::yield_now().await;
        }
        drop(held);
        let permit = waiter.await.unwrap();
        assert_eq!(slots.load(), (1, 0));
        drop(permit);
        assert_eq!(slots.load(), (0, 0));
    }
}
