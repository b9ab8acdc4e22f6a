//! The watchdog: a run with nothing running, queued or due that is not over is a bug.
//! Debug builds stop at once, naming the stuck tasks; release builds end the run
//! `Errored` rather than hang (and hold a lease) forever.

use weft_core::Action;

use super::Driver;

impl Driver {
    /// Whether the run can make no progress by itself: nothing runs, nothing is queued or
    /// waits, no deadline or grace period is pending, and yet the run is not over. Only a user's
    /// cancel could still arrive, and it cannot finish tasks nobody holds.
    pub(super) fn stalled(&self) -> bool {
        self.summary.is_none()
            && !self.state.is_finished()
            && self.tasks.is_empty()
            && self.running.is_empty()
            && self.queue.is_empty()
            && self.slot_waiting.is_empty()
            && self.phantoms.is_empty()
            && !self.waiting()
            && self.gate_samples.is_empty()
            && self.pipeline_deadline.is_none()
            && self.tasks_deadline.is_none()
            && self.finally_deadline.is_none()
            && self.suspend_by.is_none()
    }

    /// A stalled run is a bug: debug builds stop at once, naming the stuck tasks; release
    /// builds end the run `Errored` rather than hang (and keep a lease) forever.
    pub(super) fn unstall(&mut self) -> Vec<Action> {
        let stuck: Vec<String> = self
            .state
            .unfinished_tasks()
            .into_iter()
            .map(|(task, phase)| format!("{task} ({phase:?})"))
            .collect();
        let message = format!(
            "the run stalled: nothing runs or is due, yet these tasks are not done: {}",
            stuck.join(", ")
        );
        if cfg!(debug_assertions) {
            panic!("weft watchdog: run `{}`: {message}", self.options.run_name);
        }
        tracing::error!(run = %self.options.run_name, "{message}");
        self.state.abandon(message)
    }
}
