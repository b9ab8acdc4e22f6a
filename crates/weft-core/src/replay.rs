//! What recovery does with each attempt the run state asks to start again: the decision
//! of a run taken over from an engine that stopped, per the pipeline's
//! `spec.recovery.strategy`. Pure: the engine gathers the facts from the journal and
//! carries the decision out.
//!
//! | the attempt | decision |
//! |---|---|
//! | has a journaled ending | [`Replay`](ReplayDecision::Replay) it: fed back, never run again (every strategy) |
//! | was in flight, and a run deadline passed while no engine ran | [`Expire`](ReplayDecision::Expire): started as far as the run knows, the deadline ends it |
//! | was in flight, strategy `none` | [`Refuse`](ReplayDecision::Refuse) `EngineRestarted` |
//! | was in flight, strategy `resume`, not `idempotent` | [`Refuse`](ReplayDecision::Refuse) `NotIdempotent` |
//! | was in flight, `resume` and idempotent, or `startOver` | [`Run`](ReplayDecision::Run) it again |
//! | never began (or was queued when the engine let go) | [`Run`](ReplayDecision::Run) it |
//!
//! `startOver` numbers its attempts after every stored one, so nothing it asks for has a
//! journaled ending or is in flight: everything runs again as new attempts.

use crate::model::RecoveryStrategy;

/// Reason of an attempt in flight when the engine stopped, under strategy `none`.
pub const ENGINE_RESTARTED: &str = "EngineRestarted";
/// Reason of a non-idempotent attempt in flight when the engine stopped, under `resume`.
pub const NOT_IDEMPOTENT: &str = "NotIdempotent";

/// What the journal says about one attempt the run state wants to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttemptFacts {
    /// Its ending is journaled.
    pub ended: bool,
    /// It has a record that is not terminal (running, or about to, when the engine
    /// stopped), and was not marked never-started.
    pub in_flight: bool,
    /// The task is `idempotent: true`.
    pub idempotent: bool,
    /// A run deadline (the pipeline's, or for a non-finally task the tasks') has passed.
    pub deadline_passed: bool,
}

/// What to do with the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayDecision {
    /// Run it (again).
    Run,
    /// Feed the journaled ending back; never run it again.
    Replay,
    /// Mark it started and never launch it: the passed deadline ends it.
    Expire,
    /// End it `Errored` with this reason and message, without running it.
    Refuse {
        /// `EngineRestarted` or `NotIdempotent`.
        reason: &'static str,
        /// Why, for people.
        message: &'static str,
    },
}

/// Decides one attempt of a recovered run (see the module docs for the table).
pub fn decide(strategy: RecoveryStrategy, facts: AttemptFacts) -> ReplayDecision {
    if facts.ended {
        return ReplayDecision::Replay;
    }
    if !facts.in_flight {
        return ReplayDecision::Run;
    }
    if facts.deadline_passed {
        return ReplayDecision::Expire;
    }
    match strategy {
        RecoveryStrategy::None => ReplayDecision::Refuse {
            reason: ENGINE_RESTARTED,
            message: "the engine restarted while this task ran (recovery strategy `none`)",
        },
        RecoveryStrategy::Resume if !facts.idempotent => ReplayDecision::Refuse {
            reason: NOT_IDEMPOTENT,
            message: "the engine restarted while this task ran and it is not marked idempotent, so `resume` does not run it again",
        },
        RecoveryStrategy::Resume | RecoveryStrategy::StartOver => ReplayDecision::Run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RecoveryStrategy::{None as NoneStrategy, Resume, StartOver};

    fn facts(
        ended: bool,
        in_flight: bool,
        idempotent: bool,
        deadline_passed: bool,
    ) -> AttemptFacts {
        AttemptFacts {
            ended,
            in_flight,
            idempotent,
            deadline_passed,
        }
    }

    fn refused(reason: &str) -> String {
        format!("Refuse {reason}")
    }

    fn name(decision: ReplayDecision) -> String {
        match decision {
            ReplayDecision::Refuse { reason, .. } => refused(reason),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn every_strategy_and_attempt_state() {
        // (what, strategy, ended, in flight, idempotent, deadline passed, decision)
        let table = [
            (
                "journaled: replayed",
                NoneStrategy,
                true,
                false,
                false,
                false,
                "Replay".to_string(),
            ),
            (
                "journaled and in flight: the ending wins",
                Resume,
                true,
                true,
                false,
                false,
                "Replay".into(),
            ),
            (
                "journaled, deadline passed: still replayed",
                StartOver,
                true,
                false,
                false,
                true,
                "Replay".into(),
            ),
            (
                "never began: runs",
                NoneStrategy,
                false,
                false,
                false,
                false,
                "Run".into(),
            ),
            (
                "never began, deadline passed: runs (the run state skips it)",
                Resume,
                false,
                false,
                false,
                true,
                "Run".into(),
            ),
            (
                "in flight, none",
                NoneStrategy,
                false,
                true,
                true,
                false,
                refused(ENGINE_RESTARTED),
            ),
            (
                "in flight, resume, not idempotent",
                Resume,
                false,
                true,
                false,
                false,
                refused(NOT_IDEMPOTENT),
            ),
            (
                "in flight, resume, idempotent",
                Resume,
                false,
                true,
                true,
                false,
                "Run".into(),
            ),
            (
                "in flight, startOver",
                StartOver,
                false,
                true,
                false,
                false,
                "Run".into(),
            ),
            (
                "in flight, deadline passed, none",
                NoneStrategy,
                false,
                true,
                false,
                true,
                "Expire".into(),
            ),
            (
                "in flight, deadline passed, resume idempotent",
                Resume,
                false,
                true,
                true,
                true,
                "Expire".into(),
            ),
        ];
        for (what, strategy, ended, in_flight, idempotent, deadline, want) in table {
            let got = name(decide(
                strategy,
                facts(ended, in_flight, idempotent, deadline),
            ));
            assert_eq!(got, want, "{what}");
        }
    }
}
