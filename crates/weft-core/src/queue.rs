//! Concurrency groups (release-control.md section 4): who may hold one of a group's slots
//! now, and what a new arrival does to the others. Pure: the store reads a group's slots in
//! a transaction, asks these functions, and writes what they say, so the limit holds across
//! every engine sharing the store.
//!
//! | policy | a new run arrives | a slot frees |
//! |---|---|---|
//! | `queue` | waits its turn | the oldest live waiter takes it |
//! | `latestOnly` | older runs still waiting end `Cancelled` (`Superseded`) | as `queue` |
//! | `cancelInProgress` | older waiting runs end `Superseded`; holders are cancelled (`CancelledRunFinally`, `Superseded`) and it starts when they ended | as `queue` |
//!
//! A holder is counted while its run's lease is live; a holder whose lease expired (its
//! engine died or froze) is demoted to waiting (keeping its place) and its run fenced, in
//! the same transaction that gives its slot to someone else, never earlier.

use serde::{Deserialize, Serialize};

/// What a new arrival does to the group's other runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum QueuePolicy {
    /// Wait in submission order (Azure "deploy all in sequence").
    #[default]
    Queue,
    /// Older runs still waiting are superseded (Azure "deploy latest and cancel the others").
    LatestOnly,
    /// Running runs are cancelled and the new one starts when they ended (GitHub
    /// `cancel-in-progress`).
    CancelInProgress,
}

impl QueuePolicy {
    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            QueuePolicy::Queue => "queue",
            QueuePolicy::LatestOnly => "latestOnly",
            QueuePolicy::CancelInProgress => "cancelInProgress",
        }
    }
}

/// Reason of a run (or a waiting run) a newer one displaced.
pub const SUPERSEDED: &str = "Superseded";

/// One entry of a group, as the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Who: a run, or `run/task` for a task's slot.
    pub holder: String,
    /// Arrival order in the group (lower came first).
    pub seq: i64,
    /// Holding a slot, or waiting for one.
    pub holding: bool,
    /// Its run's lease is live (an engine heartbeats it), or it never had an engine yet
    /// and was submitted within the lease time.
    pub alive: bool,
}

/// Whether `me` may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Take (or keep) a slot.
    Admitted,
    /// Wait: `ahead` live waiters came first, `holding` slots are taken.
    Waiting {
        /// Live waiters that came before.
        ahead: usize,
        /// Slots taken by live holders.
        holding: usize,
    },
}

/// Whether `me` (an entry of `slots`) may hold a slot of a group of `limit`: yes when the
/// live holders and the live waiters that came before it leave a slot free. Dead holders
/// and dead waiters do not count (their engines are gone; a dead holder is demoted by
/// [`stale_holders`] in the same transaction).
pub fn admit(slots: &[Slot], me: &str, limit: u32) -> Admission {
    let Some(mine) = slots.iter().find(|slot| slot.holder == me) else {
        return Admission::Waiting {
            ahead: 0,
            holding: 0,
        };
    };
    let others = slots.iter().filter(|slot| slot.holder != me && slot.alive);
    let holding = others.clone().filter(|slot| slot.holding).count();
    if mine.holding && holding < limit as usize {
        return Admission::Admitted;
    }
    let ahead = others
        .filter(|slot| !slot.holding && slot.seq < mine.seq)
        .count();
    if holding + ahead < limit as usize {
        Admission::Admitted
    } else {
        Admission::Waiting { ahead, holding }
    }
}

/// Holders whose lease expired: their slot is free to others, so they are demoted to
/// waiting and their runs fenced (their engine, if it comes back, may not go on).
pub fn stale_holders(slots: &[Slot]) -> Vec<&str> {
    slots
        .iter()
        .filter(|slot| slot.holding && !slot.alive)
        .map(|slot| slot.holder.as_str())
        .collect()
}

/// What a new arrival displaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Displaced {
    /// Older runs still waiting: they end `Cancelled` (`Superseded`) without running.
    pub superseded: Vec<String>,
    /// Holders: cancelled (`CancelledRunFinally`, `Superseded`); they keep their slot until
    /// they have ended.
    pub cancelled: Vec<String>,
}

/// What `me` arriving in `slots` (already among them) does to the others under `policy`.
pub fn on_arrival(policy: QueuePolicy, slots: &[Slot], me: &str) -> Displaced {
    let Some(mine) = slots.iter().find(|slot| slot.holder == me) else {
        return Displaced::default();
    };
    let older = slots
        .iter()
        .filter(|slot| slot.holder != me && slot.seq < mine.seq);
    match policy {
        QueuePolicy::Queue => Displaced::default(),
        QueuePolicy::LatestOnly => Displaced {
            superseded: older
                .filter(|slot| !slot.holding)
                .map(|slot| slot.holder.clone())
                .collect(),
            cancelled: Vec::new(),
        },
        QueuePolicy::CancelInProgress => {
            let (holding, waiting): (Vec<&Slot>, Vec<&Slot>) = older.partition(|slot| slot.holding);
            Displaced {
                superseded: waiting.iter().map(|slot| slot.holder.clone()).collect(),
                cancelled: holding.iter().map(|slot| slot.holder.clone()).collect(),
            }
        }
    }
}

/// "queued: deploy-prod group, 2 ahead" (what the live view and `weft runs list` say).
pub fn describe_waiting(group: &str, ahead: usize, holding: usize) -> String {
    match ahead {
        0 => format!("queued: {group} group, next ({holding} running)"),
        n => format!("queued: {group} group, {n} ahead"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(holder: &str, seq: i64, holding: bool, alive: bool) -> Slot {
        Slot {
            holder: holder.into(),
            seq,
            holding,
            alive,
        }
    }

    #[test]
    fn admission_is_fair_and_counts_only_live_entries() {
        use Admission::*;
        let rows: Vec<(&str, Vec<Slot>, &str, u32, Admission)> = vec![
            ("alone", vec![slot("a", 1, false, true)], "a", 1, Admitted),
            (
                "a live holder blocks",
                vec![slot("a", 1, true, true), slot("b", 2, false, true)],
                "b",
                1,
                Waiting {
                    ahead: 0,
                    holding: 1,
                },
            ),
            (
                "first come first served",
                vec![slot("a", 1, false, true), slot("b", 2, false, true)],
                "b",
                1,
                Waiting {
                    ahead: 1,
                    holding: 0,
                },
            ),
            (
                "the first waiter goes",
                vec![slot("a", 1, false, true), slot("b", 2, false, true)],
                "a",
                1,
                Admitted,
            ),
            (
                "limit 2: the second waiter goes too",
                vec![
                    slot("h", 0, true, true),
                    slot("a", 1, false, true),
                    slot("b", 2, false, true),
                ],
                "a",
                2,
                Admitted,
            ),
            (
                "limit 2: the third waits",
                vec![
                    slot("h", 0, true, true),
                    slot("a", 1, false, true),
                    slot("b", 2, false, true),
                ],
                "b",
                2,
                Waiting {
                    ahead: 1,
                    holding: 1,
                },
            ),
            (
                "a dead holder does not count",
                vec![slot("a", 1, true, false), slot("b", 2, false, true)],
                "b",
                1,
                Admitted,
            ),
            (
                "a dead waiter keeps no one waiting",
                vec![slot("a", 1, false, false), slot("b", 2, false, true)],
                "b",
                1,
                Admitted,
            ),
            (
                "a holder keeps its slot",
                vec![slot("a", 1, true, true), slot("b", 0, false, true)],
                "a",
                1,
                Admitted,
            ),
            (
                "a holder over the limit (another took its slot while it was dead) waits",
                vec![slot("a", 1, true, true), slot("b", 2, true, true)],
                "a",
                1,
                Waiting {
                    ahead: 0,
                    holding: 1,
                },
            ),
        ];
        let mut failed = Vec::new();
        for (name, slots, me, limit, want) in rows {
            let got = admit(&slots, me, limit);
            if got != want {
                failed.push(format!("{name}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    fn arrivals_displace_as_their_policy_says() {
        let slots = vec![
            slot("old-running", 1, true, true),
            slot("old-waiting", 2, false, true),
            slot("dead-waiting", 3, false, false),
            slot("new", 4, false, true),
        ];
        assert_eq!(
            on_arrival(QueuePolicy::Queue, &slots, "new"),
            Displaced::default()
        );
        assert_eq!(
            on_arrival(QueuePolicy::LatestOnly, &slots, "new"),
            Displaced {
                superseded: vec!["old-waiting".into(), "dead-waiting".into()],
                cancelled: vec![],
            }
        );
        assert_eq!(
            on_arrival(QueuePolicy::CancelInProgress, &slots, "new"),
            Displaced {
                superseded: vec!["old-waiting".into(), "dead-waiting".into()],
                cancelled: vec!["old-running".into()],
            }
        );
        // A newer arrival is never displaced by an older one.
        assert_eq!(
            on_arrival(QueuePolicy::LatestOnly, &slots, "old-waiting"),
            Displaced::default()
        );
    }

    #[test]
    fn stale_holders_are_the_dead_ones_holding() {
        let slots = vec![
            slot("a", 1, true, false),
            slot("b", 2, true, true),
            slot("c", 3, false, false),
        ];
        assert_eq!(stale_holders(&slots), ["a"]);
    }
}
