//! The decisions of the fair task-slot scheduler, with no locks, clocks or wakers: who
//! gets the next free slot. Start-time fair queuing across tenants: every request is
//! tagged on arrival with a virtual start (`max(virtual time, the tenant's last finish)`)
//! and finish (`start + cost / weight`); a free slot goes to the smallest finish tag
//! (arrival order breaks ties), and the virtual time becomes the granted request's start.
//! A tenant that was idle starts at the current virtual time, so it can neither bank
//! credit while idle nor be made to wait behind another tenant's backlog.

use std::collections::{BTreeMap, HashMap};

/// A request's place in the queue, in arrival order.
pub type Ticket = u64;

/// The virtual cost of one task attempt at weight 1; divided by the weight (1..=100)
/// with little rounding, since 2^20 is large against 100.
const COST: u64 = 1 << 20;

/// Largest weight a tenant may have; larger ones are taken as this.
pub const MAX_WEIGHT: u32 = 100;

/// A request that waits for a slot.
#[derive(Debug)]
struct Waiting {
    tenant: String,
    start: u64,
}

/// The pure scheduler: `slots` slots, requests tagged per tenant.
#[derive(Debug)]
pub struct FairQueue {
    slots: usize,
    busy: usize,
    /// The virtual time: the start tag of the request granted last.
    now: u64,
    next_ticket: Ticket,
    /// Each tenant's last finish tag, while it is ahead of the virtual time (a tenant
    /// whose tag fell behind is forgotten: it would start at the virtual time anyway).
    last_finish: HashMap<String, u64>,
    /// Waiting requests by (finish tag, ticket).
    waiting: BTreeMap<(u64, Ticket), Waiting>,
    /// Each waiting ticket's finish tag, to find it when it is withdrawn.
    finish_of: HashMap<Ticket, u64>,
}

impl FairQueue {
    /// A scheduler of `slots` slots (at least 1).
    pub fn new(slots: usize) -> Self {
        FairQueue {
            slots: slots.max(1),
            busy: 0,
            now: 0,
            next_ticket: 0,
            last_finish: HashMap::new(),
            waiting: BTreeMap::new(),
            finish_of: HashMap::new(),
        }
    }

    /// Queues a request of `tenant` (weight 1..=[`MAX_WEIGHT`]; out of range is clamped).
    /// Call [`FairQueue::grant`] after it to see who gets a slot.
    pub fn request(&mut self, tenant: &str, weight: u32) -> Ticket {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let weight = u64::from(weight.clamp(1, MAX_WEIGHT));
        let last = self.last_finish.get(tenant).copied().unwrap_or(0);
        let start = self.now.max(last);
        let finish = start + COST / weight;
        self.last_finish.insert(tenant.to_string(), finish);
        self.waiting.insert(
            (finish, ticket),
            Waiting {
                tenant: tenant.to_string(),
                start,
            },
        );
        self.finish_of.insert(ticket, finish);
        ticket
    }

    /// Withdraws a waiting request (its acquirer went away); `false` if it was not
    /// waiting (already granted, or unknown). If it was its tenant's last request, the
    /// tenant's tag goes back to its start: a withdrawn request costs nothing.
    pub fn withdraw(&mut self, ticket: Ticket) -> bool {
        let Some(finish) = self.finish_of.remove(&ticket) else {
            return false;
        };
        let Some(left) = self.waiting.remove(&(finish, ticket)) else {
            return false;
        };
        if self.last_finish.get(&left.tenant) == Some(&finish) {
            self.last_finish.insert(left.tenant, left.start);
        }
        true
    }

    /// A granted slot is free again.
    pub fn release(&mut self) {
        self.busy = self.busy.saturating_sub(1);
    }

    /// Grants free slots to the waiting requests with the smallest finish tags; returns
    /// their tickets in the order granted.
    pub fn grant(&mut self) -> Vec<Ticket> {
        let mut granted = Vec::new();
        while self.busy < self.slots {
            let Some(((_, ticket), waiting)) = self.waiting.pop_first() else {
                break;
            };
            self.finish_of.remove(&ticket);
            self.busy += 1;
            self.now = self.now.max(waiting.start);
            granted.push(ticket);
        }
        if !granted.is_empty() {
            // Tenants at or behind the virtual time would start there anyway.
            let now = self.now;
            self.last_finish.retain(|_, finish| *finish > now);
        }
        granted
    }

    /// How many slots are granted.
    pub fn busy(&self) -> usize {
        self.busy
    }

    /// How many requests wait.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves every waiting request one slot at a time (each runs to its end before the
    /// next is granted); returns the tenants in the order served.
    fn drain(queue: &mut FairQueue, tenants: &HashMap<Ticket, &'static str>) -> Vec<&'static str> {
        let mut order = Vec::new();
        loop {
            let granted = queue.grant();
            if granted.is_empty() {
                return order;
            }
            for ticket in granted {
                order.push(tenants[&ticket]);
                queue.release();
            }
        }
    }

    /// Queues `(tenant, weight, how many)` requests in that order.
    fn queue_all(
        queue: &mut FairQueue,
        requests: &[(&'static str, u32, usize)],
    ) -> HashMap<Ticket, &'static str> {
        let mut tenants = HashMap::new();
        for &(tenant, weight, count) in requests {
            for _ in 0..count {
                tenants.insert(queue.request(tenant, weight), tenant);
            }
        }
        tenants
    }

    #[test]
    fn backlogged_tenants_interleave_by_weight() {
        struct Case {
            requests: &'static [(&'static str, u32, usize)],
            order: &'static str,
        }
        let cases = [
            Case {
                requests: &[("a", 1, 4), ("b", 1, 4)],
                order: "abababab",
            },
            Case {
                requests: &[("a", 2, 6), ("b", 1, 3)],
                order: "aabaabaab",
            },
            Case {
                requests: &[("b", 1, 3), ("a", 2, 6)],
                order: "abaabaaba",
            },
            Case {
                requests: &[("a", 1, 3), ("b", 1, 1), ("c", 3, 3)],
                order: "cccabaa",
            },
        ];
        for case in cases {
            let mut queue = FairQueue::new(1);
            let tenants = queue_all(&mut queue, case.requests);
            let order: String = drain(&mut queue, &tenants).concat();
            assert_eq!(order, case.order, "{:?}", case.requests);
        }
    }

    #[test]
    fn a_late_single_request_of_an_idle_tenant_is_served_next() {
        for slots in [1, 2, 4] {
            let mut queue = FairQueue::new(slots);
            for _ in 0..100 {
                queue.request("flood", 1);
            }
            assert_eq!(queue.grant().len(), slots);
            // The flood has had every slot for a while: one ends, the next starts.
            for _ in 0..40 {
                queue.release();
                assert_eq!(queue.grant().len(), 1);
            }
            let single = queue.request("single", 1);
            queue.release();
            assert_eq!(queue.grant(), vec![single], "slots {slots}");
        }
    }

    #[test]
    fn an_idle_tenant_banks_no_credit() {
        let mut queue = FairQueue::new(1);
        // `a` ran alone for a long time while `b` was idle; then both queue work.
        let tenants = queue_all(&mut queue, &[("a", 1, 20)]);
        assert_eq!(drain(&mut queue, &tenants).len(), 20);
        let tenants = queue_all(&mut queue, &[("b", 1, 4), ("a", 1, 4)]);
        // `b` goes first (`a` is charged for the task it ran last), then they take
        // turns; had `b` banked its idle time, it would take all four first.
        assert_eq!(drain(&mut queue, &tenants).concat(), "bbababaa");
    }

    #[test]
    fn requests_of_one_tenant_are_served_in_arrival_order() {
        let mut queue = FairQueue::new(1);
        let first: Vec<Ticket> = (0..5).map(|_| queue.request("a", 3)).collect();
        queue.request("b", 1);
        let more: Vec<Ticket> = (0..5).map(|_| queue.request("a", 3)).collect();
        let mut served_a = Vec::new();
        loop {
            let granted = queue.grant();
            if granted.is_empty() {
                break;
            }
            served_a.extend(
                granted
                    .into_iter()
                    .filter(|t| first.contains(t) || more.contains(t)),
            );
            queue.release();
        }
        let expected: Vec<Ticket> = first.into_iter().chain(more).collect();
        assert_eq!(served_a, expected);
    }

    #[test]
    fn withdrawn_requests_leave_the_queue_and_cost_nothing() {
        let mut queue = FairQueue::new(1);
        let running = queue.request("a", 1);
        assert_eq!(queue.grant(), vec![running]);
        let next_a = queue.request("a", 1);
        let (b1, b2) = (queue.request("b", 1), queue.request("b", 1));
        assert!(queue.withdraw(b2));
        assert!(queue.withdraw(b1));
        assert!(!queue.withdraw(b1), "withdrawn twice");
        assert_eq!(queue.waiting(), 1);
        // `b` asks again: what it withdrew did not push it back behind `a`.
        let b3 = queue.request("b", 1);
        queue.release();
        assert_eq!(queue.grant(), vec![b3]);
        queue.release();
        assert_eq!(queue.grant(), vec![next_a]);
        assert!(!queue.withdraw(next_a), "granted, no longer waiting");
        queue.release();
        assert_eq!((queue.busy(), queue.waiting()), (0, 0));
    }

    #[test]
    fn free_slots_are_granted_at_once_and_no_more() {
        let mut queue = FairQueue::new(3);
        let tickets: Vec<Ticket> = (0..5).map(|_| queue.request("a", 1)).collect();
        assert_eq!(queue.grant(), tickets[..3].to_vec());
        assert_eq!(queue.grant(), Vec::<Ticket>::new());
        assert_eq!((queue.busy(), queue.waiting()), (3, 2));
        queue.release();
        queue.release();
        assert_eq!(queue.grant(), tickets[3..].to_vec());
        assert_eq!(FairQueue::new(0).slots, 1, "at least one slot");
    }
}
