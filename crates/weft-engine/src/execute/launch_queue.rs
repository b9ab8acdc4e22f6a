//! The launch queue: the starts the run state asked for, in order, and how many of them
//! may launch without waiting for the journal.
//!
//! The durability rule ("durable before acted on"): an attempt launches only once every
//! journal write made before it was queued is committed, so the endings it depends on are
//! durable before it can act on them. A start queued after the last commit needs one more
//! commit; the ones at the front that were queued before it do not. So the driver commits
//! only when the queue's head needs it, and one commit covers every start queued so far,
//! instead of one commit per launch.

use std::collections::VecDeque;

use weft_core::{NodeId, StartTask};

#[derive(Default)]
pub(super) struct LaunchQueue {
    /// Boxed: 100,000 queued starts move as pointers, not as 184-byte values.
    starts: VecDeque<Box<StartTask>>,
    /// How many starts at the front were queued before the last commit.
    durable: usize,
}

impl LaunchQueue {
    /// Queues a start behind the others; it waits for the next commit.
    pub(super) fn push(&mut self, start: Box<StartTask>) {
        self.starts.push_back(start);
    }

    /// Puts back at the front a start that was launchable before (one that waited for a
    /// slot of its concurrency group).
    pub(super) fn push_front_durable(&mut self, start: Box<StartTask>) {
        self.starts.push_front(start);
        self.durable += 1;
    }

    /// Everything queued so far is covered by a commit (or nothing needs one: no journal,
    /// or nothing written since the last commit).
    pub(super) fn committed(&mut self) {
        self.durable = self.starts.len();
    }

    /// Whether starts are queued but none may launch before the next commit.
    pub(super) fn needs_commit(&self) -> bool {
        self.durable == 0 && !self.starts.is_empty()
    }

    /// The next start that may launch.
    pub(super) fn pop_launchable(&mut self) -> Option<Box<StartTask>> {
        if self.durable == 0 {
            return None;
        }
        self.durable -= 1;
        let start = self.starts.pop_front();
        super::give_back_room(&mut self.starts);
        start
    }

    /// Whether a start may launch now.
    pub(super) fn has_launchable(&self) -> bool {
        self.durable > 0
    }

    /// Takes `attempt` of `node` out of the queue; whether it was there.
    pub(super) fn remove(&mut self, node: NodeId, attempt: u32) -> bool {
        let Some(at) = self
            .starts
            .iter()
            .position(|s| s.node == node && s.attempt == attempt)
        else {
            return false;
        };
        self.starts.remove(at);
        if at < self.durable {
            self.durable -= 1;
        }
        true
    }

    pub(super) fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The queued starts, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &StartTask> {
        self.starts.iter().map(|start| &**start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(node: NodeId) -> Box<StartTask> {
        Box::new(StartTask {
            node,
            name: format!("t{node}"),
            pipeline_task: format!("t{node}"),
            plugin: "exit".into(),
            attempt: 0,
            retries: 0,
            is_finally: false,
            params: Default::default(),
            timeout: None,
            secrets: Vec::new(),
            workspaces: Vec::new(),
        })
    }

    fn popped(queue: &mut LaunchQueue) -> Vec<NodeId> {
        std::iter::from_fn(|| queue.pop_launchable())
            .map(|s| s.node)
            .collect()
    }

    #[test]
    fn a_start_launches_only_after_a_commit_that_covers_it() {
        let mut queue = LaunchQueue::default();
        queue.push(start(0));
        queue.push(start(1));
        assert!(queue.needs_commit());
        assert_eq!(popped(&mut queue), Vec::<NodeId>::new());
        queue.committed();
        queue.push(start(2));
        assert!(!queue.needs_commit());
        // One commit covered the first two; the third waits for the next one.
        assert_eq!(popped(&mut queue), vec![0, 1]);
        assert!(queue.needs_commit());
        queue.committed();
        assert_eq!(popped(&mut queue), vec![2]);
        assert!(!queue.needs_commit() && queue.is_empty());
    }

    #[test]
    fn removing_and_putting_back_keep_the_count_of_covered_starts() {
        let mut queue = LaunchQueue::default();
        for node in 0..3 {
            queue.push(start(node));
        }
        queue.committed();
        queue.push(start(3));
        assert!(queue.remove(1, 0));
        assert!(queue.remove(3, 0));
        assert!(!queue.remove(7, 0));
        queue.push_front_durable(start(9));
        assert_eq!(popped(&mut queue), vec![9, 0, 2]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_drained_queue_gives_its_room_back_and_keeps_its_order() {
        let mut queue = LaunchQueue::default();
        for node in 0..10_000 {
            queue.push(start(node));
        }
        queue.committed();
        let full = queue.starts.capacity();
        let first: Vec<NodeId> = (0..9_000)
            .filter_map(|_| queue.pop_launchable())
            .map(|s| s.node)
            .collect();
        assert!(first.iter().copied().eq(0..9_000));
        assert!(
            queue.starts.capacity() <= full / 4,
            "{}",
            queue.starts.capacity()
        );
        assert!(popped(&mut queue).into_iter().eq(9_000..10_000));
    }
}
