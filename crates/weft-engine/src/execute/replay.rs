//! Carrying out recovery's decisions: an attempt the run state asks for again is answered
//! from the journal, refused, expired or run, as weft-core's `replay::decide` says.

use std::collections::BTreeMap;

use tokio::time::Instant;
use weft_core::contract::TaskEnding;
use weft_core::model::RecoveryStrategy;
use weft_core::replay::{self, AttemptFacts, ReplayDecision};
use weft_core::{Action, StartTask};

use super::Driver;
use crate::persist::How;

impl Driver {
    /// Queues a start, unless recovery knows better (weft-core's `replay::decide`): an
    /// attempt with a journaled ending is answered from the journal (it never runs
    /// twice); an in-flight one follows the run's recovery strategy.
    pub(super) fn start_or_replay(&mut self, start: Box<StartTask>) -> Vec<Action> {
        let replay = self
            .journal
            .as_ref()
            .and_then(|j| j.durable().replay.clone());
        let Some(replay) = replay else {
            self.queue.push(start);
            return Vec::new();
        };
        let key = (start.name.clone(), start.attempt);
        let (node, attempt) = (start.node, start.attempt);
        let spec = &self.state.plan().nodes[node];
        let now = Instant::now();
        let facts = AttemptFacts {
            ended: replay.ended.contains_key(&key),
            in_flight: replay.in_flight.contains(&key),
            idempotent: spec.idempotent,
            deadline_passed: self.pipeline_deadline.is_some_and(|d| d <= now)
                || (!spec.is_finally && self.tasks_deadline.is_some_and(|d| d <= now)),
        };
        let strategy = replay.strategy.map_or(RecoveryStrategy::None, Into::into);
        match replay::decide(strategy, facts) {
            ReplayDecision::Run => {
                self.queue.push(start);
                Vec::new()
            }
            ReplayDecision::Replay => {
                let Some(ended) = replay.ended.get(&key) else {
                    return Vec::new();
                };
                let mut actions = self.state.task_started(node, attempt);
                actions.extend(match ended.how {
                    How::TimedOut => self.state.task_timed_out(node, attempt),
                    How::Cancelled => self.state.task_cancelled(node, attempt),
                    How::Waited => match &ended.waited {
                        Some(waited) => self.state.task_waited(node, attempt, waited),
                        None => self.state.task_cancelled(node, attempt),
                    },
                    How::Ended => {
                        let ending = ended.ending.clone().unwrap_or(TaskEnding::Errored {
                            reason: replay::ENGINE_RESTARTED.into(),
                            message: "the journaled ending was unreadable".into(),
                        });
                        self.state
                            .task_ended(node, attempt, ending, ended.results.clone())
                    }
                });
                actions
            }
            ReplayDecision::Expire => {
                // It was running when its deadline passed: the deadline, not the restart,
                // decides its outcome.
                self.phantoms.push((node, attempt));
                self.state.task_started(node, attempt)
            }
            ReplayDecision::Refuse { reason, message } => {
                let ending = TaskEnding::Errored {
                    reason: reason.into(),
                    message: message.into(),
                };
                self.journal_ended(
                    node,
                    attempt,
                    How::Ended,
                    Some(ending.clone()),
                    BTreeMap::new(),
                );
                let mut actions = self.state.task_started(node, attempt);
                actions.extend(
                    self.state
                        .task_ended(node, attempt, ending, BTreeMap::new()),
                );
                actions
            }
        }
    }
}
