//! The group-commit writer's inbox: a queue that wakes the writer once per batch, not once
//! per write.
//!
//! A queued write nobody waits for wakes the writer only when it is the first of a batch
//! (the writer sleeps with nothing to do) or fills the batch. The writer then sleeps until
//! the batch's deadline; a message someone waits for (a barrier, a write with a reply)
//! wakes it at once. A channel would wake the writer for every message it collects: on a
//! busy run that is a futex wake and two context switches per journal write.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Whether whoever sent a message waits for it to be committed.
pub(crate) trait Urgency {
    /// The sender waits: the writer commits at once.
    fn is_urgent(&self) -> bool;
}

struct State<M> {
    messages: Vec<M>,
    /// An urgent message is among `messages`.
    urgent: bool,
    /// The writer sleeps waiting for the first message of a batch.
    idle: bool,
    /// No more messages are taken; the writer drains what is queued and stops.
    closed: bool,
}

/// A multi-producer queue with one consumer, the writer.
pub(crate) struct Inbox<M> {
    state: Mutex<State<M>>,
    ready: Condvar,
    /// A batch this large is committed without waiting for its deadline.
    max_batch: usize,
}

impl<M: Urgency> Inbox<M> {
    pub(crate) fn new(max_batch: usize) -> Self {
        Inbox {
            state: Mutex::new(State {
                messages: Vec::new(),
                urgent: false,
                idle: false,
                closed: false,
            }),
            ready: Condvar::new(),
            max_batch: max_batch.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<M>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `message`; gives it back when the inbox is closed.
    pub(crate) fn send(&self, message: M) -> Result<(), M> {
        let mut state = self.lock();
        if state.closed {
            return Err(message);
        }
        let urgent = message.is_urgent();
        state.urgent |= urgent;
        state.messages.push(message);
        let wake = state.idle || urgent || state.messages.len() >= self.max_batch;
        if wake {
            state.idle = false;
        }
        drop(state);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Takes no more messages; the writer commits what is queued, then stops.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// The writer's next batch: waits for a first message, then until `deadline_after`
    /// has passed since it came, an urgent message arrives or the batch is full. `None`
    /// once the inbox is closed and empty.
    pub(crate) fn next_batch(&self, deadline_after: std::time::Duration) -> Option<Vec<M>> {
        let mut state = self.lock();
        while state.messages.is_empty() {
            if state.closed {
                return None;
            }
            state.idle = true;
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.idle = false;
        let deadline = Instant::now() + deadline_after;
        while !state.urgent && !state.closed && state.messages.len() < self.max_batch {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .ready
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.urgent = false;
        Some(std::mem::take(&mut state.messages))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    struct Message(u32, bool);

    impl Urgency for Message {
        fn is_urgent(&self) -> bool {
            self.1
        }
    }

    #[test]
    fn messages_come_in_order_and_an_urgent_one_ends_the_batch_early() {
        let inbox = Arc::new(Inbox::new(100));
        for i in 0..3 {
            assert!(inbox.send(Message(i, false)).is_ok());
        }
        assert!(inbox.send(Message(3, true)).is_ok());
        // An hour's deadline: only the urgent message lets this return.
        let batch = inbox
            .next_batch(Duration::from_secs(3600))
            .expect("a batch");
        let got: Vec<u32> = batch.iter().map(|m| m.0).collect();
        assert_eq!(got, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_full_batch_or_its_deadline_ends_it_and_closing_drains_first() {
        let inbox = Arc::new(Inbox::new(2));
        assert!(inbox.send(Message(0, false)).is_ok());
        assert!(inbox.send(Message(1, false)).is_ok());
        assert_eq!(
            inbox.next_batch(Duration::from_secs(3600)).map(|b| b.len()),
            Some(2)
        );
        assert!(inbox.send(Message(2, false)).is_ok());
        assert_eq!(
            inbox.next_batch(Duration::from_millis(1)).map(|b| b.len()),
            Some(1)
        );
        assert!(inbox.send(Message(3, false)).is_ok());
        inbox.close();
        assert!(inbox.send(Message(4, false)).is_err());
        assert_eq!(
            inbox.next_batch(Duration::from_secs(3600)).map(|b| b.len()),
            Some(1)
        );
        assert!(inbox.next_batch(Duration::from_secs(3600)).is_none());
    }

    #[test]
    fn a_sleeping_writer_is_woken_by_the_first_message_from_another_thread() {
        let inbox = Arc::new(Inbox::new(100));
        let writer = {
            let inbox = inbox.clone();
            std::thread::spawn(move || inbox.next_batch(Duration::from_millis(1)))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(inbox.send(Message(7, false)).is_ok());
        let batch = writer.join().expect("the writer").expect("a batch");
        assert_eq!(batch.len(), 1);
    }
}
