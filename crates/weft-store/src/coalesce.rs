//! Folding a batch's writes: an attempt's update that a later update of the same attempt
//! in the same batch overwrites is not applied.
//!
//! A batch is one transaction, so nobody sees the state between two of its writes, and an
//! attempt's upsert overwrites every column but `started_at` and `ended_at`, which it keeps
//! when it has none (`COALESCE`). A task that starts and ends within one commit window
//! (most of them, on a busy run) is journaled `Running` then `Terminal`: one row write
//! instead of two, and one lookup of its row fewer.
//!
//! Only what cannot change the outcome is folded: the earlier write is not terminal (a
//! write after a terminal one must still be refused), nobody waits for its answer, both
//! carry the same lease, and nothing between them finishes the run or changes its phase.

use std::collections::HashMap;

use crate::types::{AttemptId, WriteOp};

/// Folds `ops` in place (see the module docs): returns, for each op, whether it is still
/// to be applied. `waited(i)`: someone waits for op `i`'s own answer.
pub(crate) fn fold_attempt_updates(
    ops: &mut [WriteOp],
    waited: impl Fn(usize) -> bool,
) -> Vec<bool> {
    let mut keep = vec![true; ops.len()];
    // The last foldable update of each attempt, with the count of fences before it.
    let mut open: HashMap<AttemptId, (usize, usize)> = HashMap::new();
    let mut fences = 0;
    for j in 0..ops.len() {
        let (lease, record) = match &ops[j] {
            WriteOp::Attempt { lease, record } => (lease, record),
            WriteOp::Event { .. } | WriteOp::Logs { .. } | WriteOp::Checkpoint { .. } => continue,
            // Anything else may finish the run or change what a later write is checked
            // against.
            _ => {
                fences += 1;
                continue;
            }
        };
        let earlier = open.remove(&record.id).filter(|&(i, fenced)| {
            fenced == fences && matches!(&ops[i], WriteOp::Attempt { lease: l, .. } if l == lease)
        });
        // Only an update a later one may fold is remembered (its id copied).
        let open_as =
            (record.phase != crate::TaskPhase::Terminal && !waited(j)).then(|| record.id.clone());
        if let Some((i, _)) = earlier {
            let (started, ended) = match &ops[i] {
                WriteOp::Attempt { record, .. } => (record.started_at, record.ended_at),
                _ => (None, None),
            };
            if let WriteOp::Attempt { record, .. } = &mut ops[j] {
                record.started_at = record.started_at.or(started);
                record.ended_at = record.ended_at.or(ended);
            }
            keep[i] = false;
        }
        if let Some(id) = open_as {
            open.insert(id, (j, fences));
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AttemptRecord, Lease, NewEvent, Timestamp};
    use crate::{RunPhase, TaskPhase};

    fn lease(token: u64) -> Lease {
        Lease {
            run: "r".into(),
            owner: "e".into(),
            token,
        }
    }

    fn update(task: &str, phase: TaskPhase, started: Option<u64>, token: u64) -> WriteOp {
        let mut record = AttemptRecord::new(AttemptId::new("r", task, 0), phase, Timestamp(9));
        record.started_at = started.map(|t| Timestamp(t as i64));
        WriteOp::Attempt {
            lease: lease(token),
            record,
        }
    }

    fn event() -> WriteOp {
        WriteOp::Event {
            lease: lease(1),
            event: NewEvent {
                at: Timestamp(9),
                kind: "attempt-ended".into(),
                task: Some("t".into()),
                attempt: Some(0),
                data_json: "{}".into(),
            },
        }
    }

    fn started_at(op: &WriteOp) -> Option<Timestamp> {
        match op {
            WriteOp::Attempt { record, .. } => record.started_at,
            _ => None,
        }
    }

    #[test]
    fn an_update_overwritten_later_in_the_batch_is_folded_into_it() {
        let mut ops = vec![
            update("t", TaskPhase::Queued, None, 1),
            update("u", TaskPhase::Queued, None, 1),
            update("t", TaskPhase::Running, Some(5), 1),
            event(),
            update("t", TaskPhase::Terminal, None, 1),
        ];
        let keep = fold_attempt_updates(&mut ops, |_| false);
        assert_eq!(keep, vec![false, true, false, true, true]);
        // The terminal record keeps the start time only the running one carried.
        assert_eq!(started_at(&ops[4]), Some(Timestamp(5)));
    }

    #[test]
    fn what_could_change_the_outcome_is_never_folded() {
        let table: Vec<(&str, Vec<WriteOp>, Vec<bool>)> = vec![
            (
                "a write after a terminal one must still be refused",
                vec![
                    update("t", TaskPhase::Terminal, None, 1),
                    update("t", TaskPhase::Running, None, 1),
                ],
                vec![true, true],
            ),
            (
                "different leases: each is checked against its own",
                vec![
                    update("t", TaskPhase::Running, None, 1),
                    update("t", TaskPhase::Terminal, None, 2),
                ],
                vec![true, true],
            ),
            (
                "a phase change or the run's end between them",
                vec![
                    update("t", TaskPhase::Running, None, 1),
                    WriteOp::RunPhase {
                        lease: lease(1),
                        phase: RunPhase::Running,
                    },
                    update("t", TaskPhase::Terminal, None, 1),
                ],
                vec![true, true, true],
            ),
            (
                "other attempts are not folded together",
                vec![
                    update("t", TaskPhase::Running, None, 1),
                    update("u", TaskPhase::Terminal, None, 1),
                ],
                vec![true, true],
            ),
        ];
        for (why, mut ops, want) in table {
            assert_eq!(fold_attempt_updates(&mut ops, |_| false), want, "{why}");
        }
    }

    #[test]
    fn an_update_someone_waits_for_is_applied() {
        let mut ops = vec![
            update("t", TaskPhase::Running, None, 1),
            update("t", TaskPhase::Terminal, None, 1),
        ];
        assert_eq!(fold_attempt_updates(&mut ops, |i| i == 0), vec![true, true]);
    }
}
