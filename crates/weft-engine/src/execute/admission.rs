//! What holds a run back before its first task, and a task before its launch
//! (release-control.md sections 4 and 5): its scheduled time, then a slot of its
//! concurrency group; a task of a group waits for a slot of its own (`QueuedForAgent`).
//!
//! Slots live in the store, so a group's limit holds across every engine sharing it: each
//! decision is one store transaction (`RunStore::in_group`) that reads the group's rows and
//! writes what weft-core's `queue` functions say. While it holds a slot, the run watches its
//! row: a newer run of a `cancelInProgress` group marks it superseded there, and it cancels
//! itself. It leaves every group when it ends; a crashed engine's slot is given away only
//! once its lease expired (the store's liveness test), and that run is fenced.

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use weft_core::queue::{self, Admission, QueuePolicy, Slot};
use weft_core::{Action, StartTask};
use weft_store::{RunStore, SlotChange, SlotRow, Timestamp};

use super::control::Control;
use super::{ControlReceiver, Driver, RunEnd};
use crate::observe::{Held, RunEvent};

/// How often a waiting run (or task) asks its group again, and a holder checks whether it
/// was superseded.
pub(super) const SLOT_POLL: Duration = Duration::from_millis(200);

/// Event kind journaled when a run or task is given a slot.
const SLOT_TAKEN: &str = "slot-taken";

/// How the wait before the first task ended.
pub(super) enum HeldBack {
    /// Go on: start the run.
    Go,
    /// Cancelled or superseded before it started.
    Withdrawn {
        /// A newer run of its group displaced it.
        superseded: bool,
    },
    /// The engine let go of it (or lost it): end here without writing more.
    Ended(RunEnd),
    /// Its lease was lost while it waited and it cannot be let go of: it ends `Errored`.
    Lost(String),
}

/// `me` leaves group `key` (its slot, or its place in the queue).
fn leave(store: &dyn RunStore, key: &str, me: &str, stale_after: Duration) {
    let left = store.in_group(key, Timestamp::now(), stale_after, &mut |_| {
        vec![SlotChange::Leave(me.to_string())]
    });
    if let Err(err) = left {
        tracing::warn!(error = %err, "cannot free a concurrency slot");
    }
}

/// One decision on a group's rows for `me` arriving or waiting: what changes, and whether
/// `me` may go. Pure (the store calls it inside its transaction).
pub(super) fn decide(
    rows: &[SlotRow],
    me: &str,
    run: &str,
    limit: u32,
    policy: QueuePolicy,
) -> (Vec<SlotChange>, Decision) {
    let mut changes = Vec::new();
    let mine = rows.iter().find(|row| row.holder == me);
    if mine.is_some_and(|row| row.superseded) {
        changes.push(SlotChange::Leave(me.to_string()));
        return (changes, Decision::Superseded);
    }
    // Superseded waiters are on their way out: they count for nothing.
    let mut slots: Vec<Slot> = rows
        .iter()
        .map(|row| Slot {
            holder: row.holder.clone(),
            seq: row.seq,
            holding: row.holding,
            alive: row.alive && !row.superseded,
        })
        .collect();
    if mine.is_none() {
        changes.push(SlotChange::Join {
            holder: me.to_string(),
            run: run.to_string(),
        });
        slots.push(Slot {
            holder: me.to_string(),
            seq: i64::MAX,
            holding: false,
            alive: true,
        });
        let displaced = queue::on_arrival(policy, &slots, me);
        for holder in displaced.superseded.iter().chain(&displaced.cancelled) {
            changes.push(SlotChange::Supersede(holder.clone()));
            if let Some(slot) = slots.iter_mut().find(|s| s.holder == *holder) {
                // Waiters leave at once; holders keep their slot until they ended.
                slot.alive = slot.holding && slot.alive;
            }
        }
    }
    // My own lease is live: I am the engine asking.
    if let Some(slot) = slots.iter_mut().find(|s| s.holder == me) {
        slot.alive = true;
    }
    for stale in queue::stale_holders(&slots) {
        changes.push(SlotChange::Wait(stale.to_string()));
        if let Some(row) = rows.iter().find(|row| row.holder == stale) {
            changes.push(SlotChange::Fence(row.run.clone()));
        }
    }
    for slot in slots.iter_mut().filter(|s| s.holding && !s.alive) {
        slot.holding = false;
    }
    match queue::admit(&slots, me, limit) {
        Admission::Admitted => {
            if !mine.is_some_and(|row| row.holding) {
                changes.push(SlotChange::Hold(me.to_string()));
            }
            (changes, Decision::Go)
        }
        Admission::Waiting { ahead, holding } => {
            if mine.is_some_and(|row| row.holding) {
                changes.push(SlotChange::Wait(me.to_string()));
            }
            (changes, Decision::Wait { ahead, holding })
        }
    }
}

/// What [`decide`] says of `me`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// It holds a slot.
    Go,
    /// It waits: `ahead` live waiters came first, `holding` slots are taken.
    Wait {
        /// Live waiters ahead.
        ahead: usize,
        /// Slots taken.
        holding: usize,
    },
    /// A newer run displaced it: it left the group.
    Superseded,
}

/// Asks the store once whether `me` may go.
fn ask(
    store: &dyn RunStore,
    group: &str,
    me: &str,
    run: &str,
    limit: u32,
    policy: QueuePolicy,
    stale_after: Duration,
) -> Result<Decision, String> {
    let mut decision = Decision::Wait {
        ahead: 0,
        holding: 0,
    };
    store
        .in_group(group, Timestamp::now(), stale_after, &mut |rows| {
            let (changes, decided) = decide(rows, me, run, limit, policy);
            decision = decided;
            changes
        })
        .map_err(|e| format!("concurrency group `{group}`: {e}"))?;
    Ok(decision)
}

impl Driver {
    /// Waits for the run's scheduled time, then for a slot of its group. A cancel ends a
    /// run that waits before it started; a suspend lets go of it.
    pub(super) async fn hold_back(
        &mut self,
        cancel: &mut ControlReceiver,
        lost_lease: &mut mpsc::UnboundedReceiver<String>,
    ) -> HeldBack {
        if let Some(at) = self.options.not_before
            && at > SystemTime::now()
        {
            self.journal_phase(weft_core::RunPhase::Scheduled);
            let why = Held::Scheduled { at };
            self.observer.event(RunEvent::Held(&why));
            let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
            let until = Instant::now() + wait;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    ended = self.held_interrupted(cancel, lost_lease) => {
                        if let Some(ended) = ended { return ended; }
                    }
                }
            }
        }
        // The tenant's quota of runs at once first, then the pipeline's own group.
        let mut groups = Vec::new();
        if let Some(limit) = self.options.tenant_runs {
            groups.push((
                weft_store::tenants::runs_quota_group(&self.options.tenant),
                weft_store::tenants::group_shown(&weft_store::tenants::runs_quota_group(
                    &self.options.tenant,
                )),
                limit,
                QueuePolicy::Queue,
            ));
        }
        if let Some(concurrency) = self.state.plan().concurrency.clone() {
            groups.push((
                self.group_key(&concurrency.group),
                concurrency.group.clone(),
                concurrency.limit,
                concurrency.policy,
            ));
        }
        for (key, shown, limit, policy) in groups {
            match self
                .wait_for_slot(&key, &shown, limit, policy, cancel, lost_lease)
                .await
            {
                HeldBack::Go => {}
                other => return other,
            }
        }
        HeldBack::Go
    }

    /// The stored name of the run's concurrency group `group`: its tenant's own.
    fn group_key(&self, group: &str) -> String {
        weft_store::tenants::scoped_group(&self.options.tenant, group)
    }

    /// Waits for a slot of group `key` (`shown` to people) before the run's first task.
    async fn wait_for_slot(
        &mut self,
        key: &str,
        shown: &str,
        limit: u32,
        policy: QueuePolicy,
        cancel: &mut ControlReceiver,
        lost_lease: &mut mpsc::UnboundedReceiver<String>,
    ) -> HeldBack {
        let Some(journal) = self.journal.as_ref() else {
            // A run kept in memory only has no store to share a group through.
            return HeldBack::Go;
        };
        let durable = journal.durable().clone();
        let me = durable.lease.run.clone();
        let mut told: Option<(usize, usize)> = None;
        loop {
            let store = durable.store.clone();
            let (group, me2, ttl) = (key.to_string(), me.clone(), durable.lease_ttl);
            let asked = tokio::task::spawn_blocking(move || {
                ask(&*store, &group, &me2, &me2, limit, policy, ttl)
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match asked {
                Ok(Decision::Go) => {
                    if let Some(journal) = self.journal.as_mut() {
                        journal.run_event(SLOT_TAKEN, serde_json::json!({"group": shown}));
                    }
                    return HeldBack::Go;
                }
                Ok(Decision::Superseded) => return HeldBack::Withdrawn { superseded: true },
                Ok(Decision::Wait { ahead, holding }) => {
                    if told != Some((ahead, holding)) {
                        told = Some((ahead, holding));
                        self.journal_phase(weft_core::RunPhase::Queued);
                        let why = Held::Queued {
                            description: queue::describe_waiting(shown, ahead, holding),
                        };
                        self.observer.event(RunEvent::Held(&why));
                    }
                }
                // The store answers again later; the lease decides whether we still own it.
                Err(err) => tracing::warn!(error = %err, "cannot ask the run's concurrency group"),
            }
            let until = Instant::now() + SLOT_POLL;
            tokio::select! {
                () = tokio::time::sleep_until(until) => {},
                ended = self.held_interrupted(cancel, lost_lease) => {
                    if let Some(ended) = ended { return ended; }
                }
            }
        }
    }

    /// A control message or a lost lease while the run is held back: how it ends, or
    /// `None` to keep waiting.
    async fn held_interrupted(
        &mut self,
        cancel: &mut ControlReceiver,
        lost_lease: &mut mpsc::UnboundedReceiver<String>,
    ) -> Option<HeldBack> {
        tokio::select! {
            Some(why) = lost_lease.recv() => {
                tracing::error!(reason = %why, "lost the run's lease while it waited; stopping");
                self.journal = None;
                Some(if self.suspendable {
                    HeldBack::Ended(RunEnd::Suspended)
                } else {
                    HeldBack::Lost(why)
                })
            }
            control = cancel.0.recv() => match control {
                Some(Control::Cancel(_)) => Some(HeldBack::Withdrawn { superseded: false }),
                Some(Control::Suspend(_)) if self.suspendable && self.journal.is_some() => {
                    Some(HeldBack::Ended(self.let_go()))
                }
                Some(Control::Suspend(_)) => Some(HeldBack::Withdrawn { superseded: false }),
                // Nobody can cancel any more: wait on.
                None => {
                    std::future::pending::<()>().await;
                    None
                }
            },
        }
    }

    fn journal_phase(&mut self, phase: weft_core::RunPhase) {
        if let Some(journal) = self.journal.as_mut() {
            journal.run_phase(phase);
            if let Err(err) = journal.flush() {
                tracing::warn!(error = %err, "cannot record the run's phase");
            }
        }
        self.journaled_phase = Some(phase);
    }

    /// Whether `start` may launch now: a task of a concurrency group takes a slot first.
    /// One that cannot waits aside (`QueuedForAgent`) and is asked again every
    /// [`SLOT_POLL`].
    pub(super) fn task_slot(&mut self, start: &StartTask) -> bool {
        // A tenant that used its CPU quota of the last hour starts no more tasks for now.
        if self.cpu_quota().is_some_and(|quota| quota.over()) {
            return false;
        }
        let groups = self.task_groups(start.node);
        if groups.is_empty() {
            return true;
        }
        let Some(journal) = self.journal.as_mut() else {
            return true;
        };
        let durable = journal.durable().clone();
        let run = durable.lease.run.clone();
        let me = format!("{run}/{}", start.name);
        let mut taken = Vec::new();
        for (key, shown, limit) in groups {
            let asked = ask(
                &*durable.store,
                &key,
                &me,
                &run,
                limit,
                QueuePolicy::Queue,
                durable.lease_ttl,
            );
            match asked {
                Ok(Decision::Go) => {
                    journal.run_event(
                        SLOT_TAKEN,
                        serde_json::json!({"group": shown, "task": start.name}),
                    );
                    taken.push(key);
                }
                refused => {
                    if let Err(err) = refused {
                        tracing::warn!(error = %err, "cannot ask a task's concurrency group");
                    }
                    // All or nothing: a slot taken in an earlier group is given back.
                    for key in taken {
                        leave(&*durable.store, &key, &me, durable.lease_ttl);
                    }
                    return false;
                }
            }
        }
        true
    }

    /// The run's tenant's CPU quota, if it has one (and the run is journaled).
    pub(super) fn cpu_quota(&self) -> Option<std::sync::Arc<super::cpu_quota::CpuQuota>> {
        self.cpu_quota
            .get_or_init(|| {
                let limit = self.options.cpu_ms_per_hour?;
                let store = self.journal.as_ref()?.durable().store.clone();
                Some(super::cpu_quota::CpuQuota::new(
                    store,
                    self.options.tenant.clone(),
                    limit,
                ))
            })
            .clone()
    }

    /// The groups a task of `node` takes a slot of before it launches, in order: its
    /// tenant's quota of tasks at once, then its own `concurrency` group.
    fn task_groups(&self, node: weft_core::NodeId) -> Vec<(String, String, u32)> {
        let mut groups = Vec::new();
        if let Some(limit) = self.options.tenant_tasks {
            let key = weft_store::tenants::tasks_quota_group(&self.options.tenant);
            groups.push((key.clone(), weft_store::tenants::group_shown(&key), limit));
        }
        if let Some((group, limit)) = self.state.plan().nodes[node]
            .concurrency
            .as_deref()
            .cloned()
        {
            groups.push((
                weft_store::tenants::scoped_group(&self.options.tenant, &group),
                group,
                limit,
            ));
        }
        groups
    }

    /// A task that took slots ended: they are free at once.
    pub(super) fn free_task_slot(&mut self, node: weft_core::NodeId) {
        let groups = self.task_groups(node);
        if groups.is_empty() {
            return;
        }
        let Some(journal) = self.journal.as_ref() else {
            return;
        };
        let durable = journal.durable();
        let me = format!(
            "{}/{}",
            durable.lease.run,
            self.state.plan().nodes[node].name
        );
        for (key, _, _) in groups {
            leave(&*durable.store, &key, &me, durable.lease_ttl);
        }
    }

    /// When the driver must look at its slots next: tasks waiting for one, or the run's own
    /// slot (whether it was superseded).
    pub(super) fn next_slot_check(&self) -> Option<Instant> {
        let watching = self.state.plan().concurrency.is_some() && self.journal.is_some();
        (watching || !self.slot_waiting.is_empty()).then(|| self.slot_checked + SLOT_POLL)
    }

    /// Tasks waiting for a slot go back to the launch queue (`launch` asks again); a run
    /// a newer one superseded cancels itself.
    pub(super) fn check_slots(&mut self) -> Vec<Action> {
        self.slot_checked = Instant::now();
        for start in self.slot_waiting.drain(..).rev() {
            self.queue.push_front_durable(Box::new(start));
        }
        let Some(journal) = self.journal.as_ref() else {
            return Vec::new();
        };
        if self.state.plan().concurrency.is_none() || self.state.is_finished() {
            return Vec::new();
        }
        let durable = journal.durable();
        let me = durable.lease.run.as_str();
        match durable
            .store
            .groups_of(me, Timestamp::now(), durable.lease_ttl)
        {
            Ok(rows) if rows.iter().any(|row| row.holder == me && row.superseded) => {
                tracing::info!(run = %me, "a newer run of the group superseded this one");
                self.state.supersede()
            }
            Ok(_) => Vec::new(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot check the run's concurrency slot");
                Vec::new()
            }
        }
    }

    /// The run ended: it leaves every group (its slots free at once).
    pub(super) fn leave_groups(&self) {
        let plan = self.state.plan();
        let grouped =
            plan.concurrency.is_some() || plan.nodes.iter().any(|node| node.concurrency.is_some());
        let Some(journal) = self.journal.as_ref().filter(|_| grouped) else {
            return;
        };
        let durable = journal.durable();
        if let Err(err) = durable.store.leave_groups(&durable.lease.run) {
            tracing::warn!(error = %err, "cannot leave the run's concurrency groups");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(holder: &str, seq: i64, holding: bool, alive: bool) -> SlotRow {
        SlotRow {
            group: "g".into(),
            holder: holder.into(),
            run: holder.split('/').next().unwrap_or(holder).into(),
            seq,
            holding,
            superseded: false,
            alive,
        }
    }

    /// (row, rows, me, limit, policy, changes, decision)
    type Case = (
        &'static str,
        Vec<SlotRow>,
        &'static str,
        u32,
        QueuePolicy,
        Vec<SlotChange>,
        Decision,
    );

    #[test]
    fn decisions() {
        use Decision::{Go, Superseded};
        use QueuePolicy::*;
        use SlotChange::*;
        let join = |me: &str| Join {
            holder: me.into(),
            run: me.into(),
        };
        let cases: Vec<Case> = vec![
            (
                "first arrival takes the slot",
                vec![],
                "a",
                1,
                Queue,
                vec![join("a"), Hold("a".into())],
                Go,
            ),
            (
                "second arrival waits",
                vec![row("a", 1, true, true)],
                "b",
                1,
                Queue,
                vec![join("b")],
                Decision::Wait {
                    ahead: 0,
                    holding: 1,
                },
            ),
            (
                "a holder keeps its slot",
                vec![row("a", 1, true, true), row("b", 2, false, true)],
                "a",
                1,
                Queue,
                vec![],
                Go,
            ),
            (
                "a dead holder is demoted and fenced, the waiter goes",
                vec![row("a", 1, true, false), row("b", 2, false, true)],
                "b",
                1,
                Queue,
                vec![Wait("a".into()), Fence("a".into()), Hold("b".into())],
                Go,
            ),
            (
                "latestOnly: older waiters are superseded",
                vec![row("a", 1, true, true), row("b", 2, false, true)],
                "c",
                1,
                LatestOnly,
                vec![join("c"), Supersede("b".into())],
                Decision::Wait {
                    ahead: 0,
                    holding: 1,
                },
            ),
            (
                "cancelInProgress: the holder is superseded, keeps its slot until it ended",
                vec![row("a", 1, true, true)],
                "b",
                1,
                CancelInProgress,
                vec![join("b"), Supersede("a".into())],
                Decision::Wait {
                    ahead: 0,
                    holding: 1,
                },
            ),
            (
                "limit 2: the second goes too",
                vec![row("a", 1, true, true)],
                "b",
                2,
                Queue,
                vec![join("b"), Hold("b".into())],
                Go,
            ),
            (
                "fair: a later waiter does not pass an earlier one",
                vec![
                    row("a", 1, false, true),
                    row("b", 2, false, true),
                    row("x", 0, true, true),
                ],
                "b",
                1,
                Queue,
                vec![],
                Decision::Wait {
                    ahead: 1,
                    holding: 1,
                },
            ),
        ];
        for (name, rows, me, limit, policy, changes, decision) in cases {
            assert_eq!(
                decide(&rows, me, me, limit, policy),
                (changes, decision),
                "{name}"
            );
        }
        let mut superseded = row("b", 2, false, true);
        superseded.superseded = true;
        assert_eq!(
            decide(&[row("a", 1, true, true), superseded], "b", "b", 1, Queue),
            (vec![Leave("b".into())], Superseded),
            "a superseded waiter leaves"
        );
    }
}
