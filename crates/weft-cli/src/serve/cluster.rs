//! `weft serve` beside other servers on one store: taking over abandoned runs and
//! delivering signals. Correctness rests on the store alone (leases with fencing tokens,
//! claims that hand each abandoned run to one server, signals in a table); the store's
//! wake-ups (PostgreSQL `LISTEN`) only make both loops react before their next poll.
//!
//! Which server runs what: a submitted run is executed by the server that accepted it
//! (it validated the run, and holds the secrets form decorators set, which are never
//! stored); the load balancer in front spreads submissions. A run whose lease expired
//! (its server died, froze, or lost the database for longer than the lease TTL) or was
//! released (its server stopped gracefully) is claimed, in batches, by whichever live
//! server sweeps first, and restarted per its recovery strategy.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use weft_engine::runs::RunSignal;
use weft_store::{RunStore, Timestamp, WriteOp};

use super::{Server, lock, spawn_run};

/// Runs claimed per sweep: a server that finds many abandoned runs leaves some to the
/// others, which sweep too.
const CLAIM_BATCH: usize = 16;

/// How often signals are looked for without a wake-up: a cancel reaches its run's owner
/// within this (plus the time to act on it).
const SIGNAL_POLL: Duration = Duration::from_millis(250);

/// How often abandoned runs are looked for without a wake-up: well within the lease TTL,
/// so a dead server's runs are taken over within about one TTL.
fn sweep_every(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// Waits for the store's wake-up or `every`, whichever comes first.
async fn pause(store: &dyn RunStore, every: Duration) {
    match store.wakeup() {
        Some(wakeup) => {
            let _ = tokio::time::timeout(every, wakeup.notified()).await;
        }
        None => tokio::time::sleep(every).await,
    }
}

/// Takes over abandoned runs until the server stops accepting work.
pub(super) async fn sweep(server: Arc<Server>) {
    let every = sweep_every(server.recover_timeout);
    loop {
        pause(server.store.as_ref(), every).await;
        if !server.accepting.load(Ordering::SeqCst) {
            return;
        }
        recover_stale(&server).await;
    }
}

/// Claims abandoned runs (in batches, so servers sweeping together share them out) and
/// starts them; then delivers statuses finished runs still owe.
pub(super) async fn recover_stale(server: &Arc<Server>) {
    loop {
        let claimed = {
            let service = server.clone();
            tokio::task::spawn_blocking(move || {
                service
                    .service
                    .claim_stale(service.recover_timeout, CLAIM_BATCH)
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
        };
        let leases = match claimed {
            Ok(leases) => leases,
            Err(err) => {
                eprintln!("weft serve: cannot look for runs to recover: {err}");
                return;
            }
        };
        let full = leases.len() == CLAIM_BATCH;
        for lease in leases {
            let run = lease.run.clone();
            if lock(&server.active).contains_key(&run) {
                // Our own run, whose heartbeat lapsed: its driver stops at its next
                // heartbeat (the token moved on); the next sweep after the TTL restarts it.
                continue;
            }
            match server.service.take_over_claimed(lease).await {
                Ok(taken) => {
                    eprintln!(
                        "weft serve: recovering run {} (strategy {})",
                        taken.run.name(),
                        taken.strategy.as_str()
                    );
                    spawn_run(server, taken.run);
                }
                Err(err) => eprintln!("weft serve: cannot recover `{run}`: {err}"),
            }
        }
        if !full || !server.accepting.load(Ordering::SeqCst) {
            break;
        }
    }
    let shared = server.clone();
    lock(&server.tasks).spawn(async move {
        let server = shared;
        match server
            .service
            .deliver_leftovers(server.recover_timeout)
            .await
        {
            Ok(delivered) => {
                for leftover in delivered {
                    eprintln!(
                        "weft serve: delivered the statuses run {} still owed ({} not delivered)",
                        leftover.run,
                        leftover.undelivered.len()
                    );
                }
            }
            Err(err) => eprintln!("weft serve: {err}"),
        }
    });
}

/// Acts on signals other servers stored for the runs executing here, until the server
/// stops accepting work.
pub(super) async fn signals(server: Arc<Server>) {
    let owner = crate::store::owner();
    loop {
        if !server.accepting.load(Ordering::SeqCst) {
            return;
        }
        let store = server.store.clone();
        let who = owner.clone();
        let pending = tokio::task::spawn_blocking(move || store.pending_signals(&who, 100))
            .await
            .unwrap_or_else(|e| Err(weft_store::StoreError::Backend(e.to_string())));
        match pending {
            Ok(pending) => {
                for record in pending {
                    deliver(&server, &record).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot look for signals"),
        }
        pause(server.store.as_ref(), SIGNAL_POLL).await;
    }
}

/// Hands one signal to its run (if it executes here) and marks it handled under the
/// run's lease. A run this server owns but has not started yet keeps its signal for later.
async fn deliver(server: &Arc<Server>, record: &weft_store::SignalRecord) {
    let run = &record.signal.run;
    let Some(handle) = lock(&server.active).get(run).cloned() else {
        return;
    };
    match RunSignal::from_stored(record) {
        Ok(RunSignal::Cancel(mode)) => {
            eprintln!(
                "weft serve: run {run}: {} (forwarded by another server)",
                mode.as_str()
            );
            handle.cancel(mode);
        }
        Err(why) => eprintln!("weft serve: run {run}: ignoring a signal: {why}"),
    }
    let store = server.store.clone();
    let (run, id, owner) = (run.clone(), record.id, crate::store::owner());
    let handled = tokio::task::spawn_blocking(move || {
        let record = store
            .run(&run)?
            .ok_or_else(|| weft_store::StoreError::NotFound {
                what: format!("run {run}"),
            })?;
        // Marked under our lease only: a run claimed away meanwhile keeps its signal for
        // its new owner (a cancel acted on twice is harmless).
        if record.lease_owner.as_deref() != Some(owner.as_str()) {
            return Ok(weft_store::WriteAck::Unchanged);
        }
        let lease = weft_store::Lease {
            run,
            owner,
            token: record.lease_token,
        };
        store.write(WriteOp::SignalHandled {
            lease,
            id,
            at: Timestamp::now(),
        })
    })
    .await;
    if let Ok(Err(err)) = handled {
        tracing::warn!(error = %err, "cannot mark a signal handled");
    }
}
