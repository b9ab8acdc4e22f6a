//! Live updates: `GET /runs/{run}/events` streams server-sent events while a run goes:
//! `state` (the run's status and every task's, as JSON) whenever it changes, `log` (a
//! task's new lines, when the page follows one) and `end` once the run ended.
//!
//! The store is the one source (its logs are masked): a stream re-reads it when the run's
//! observer says something happened (runs executing in this process), and at least every
//! 500 ms otherwise (runs another server executes, or a wake-up missed).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::{Notify, mpsc};
use weft_engine::runs::{RunEvent, RunObserver};
use weft_store::RunStore;

use super::view;
use crate::serve::{Server, lock};

/// How often a stream re-reads the store when nothing woke it.
const POLL: Duration = Duration::from_millis(500);

/// How long a woken stream waits before it reads: at most ten reads a second.
const SETTLE: Duration = Duration::from_millis(100);

/// Log lines sent at most per read.
const LOG_BATCH: usize = 500;

/// A wake-up per run executing in this process.
#[derive(Debug, Default)]
pub struct Hub {
    by_run: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Hub {
    /// The observer that wakes `run`'s streams on each of its events.
    pub fn observer(self: &Arc<Self>, run: &str) -> Arc<dyn RunObserver> {
        let notify = lock(&self.by_run)
            .entry(run.to_string())
            .or_default()
            .clone();
        Arc::new(Waker {
            hub: self.clone(),
            run: run.to_string(),
            notify,
        })
    }

    /// The wake-up of `run`, when it executes here.
    fn of(&self, run: &str) -> Option<Arc<Notify>> {
        lock(&self.by_run).get(run).cloned()
    }
}

/// Wakes a run's streams; forgets the run when it ends.
struct Waker {
    hub: Arc<Hub>,
    run: String,
    notify: Arc<Notify>,
}

impl RunObserver for Waker {
    fn event(&self, event: RunEvent<'_>) {
        self.notify.notify_waiters();
        if matches!(event, RunEvent::Finished(_)) {
            lock(&self.hub.by_run).remove(&self.run);
        }
    }
}

/// The events of attempt `run` (its id), with `task`'s log lines after `after` if given.
pub fn stream(
    server: Arc<Server>,
    run: String,
    task: Option<String>,
    after: u64,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel::<Event>(16);
    tokio::spawn(async move {
        let mut last: Option<view::LiveState> = None;
        let mut cursor = after;
        loop {
            let wake = server.dashboard.hub.of(&run);
            let store = server.store.clone();
            let (run_id, task_name) = (run.clone(), task.clone());
            // The store is synchronous: read it off the async threads.
            let read = tokio::task::spawn_blocking(move || {
                let state = view::live_state(store.as_ref(), &run_id).ok().flatten();
                let lines = match &task_name {
                    Some(task) => store
                        .logs(&run_id, Some(task), cursor, LOG_BATCH)
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                (state, lines)
            })
            .await;
            let Ok((Some(state), lines)) = read else {
                return;
            };
            let more_logs = lines.len() == LOG_BATCH;
            if !lines.is_empty() {
                cursor = lines.iter().map(|l| l.cursor).max().unwrap_or(cursor);
                let payload = serde_json::json!({
                    "cursor": cursor,
                    "lines": lines.iter().map(|l| serde_json::json!({
                        "task": l.id.task,
                        "stream": l.line.stream,
                        "text": l.line.text,
                    })).collect::<Vec<_>>(),
                });
                if tx
                    .send(Event::default().event("log").data(payload.to_string()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let finished = state.finished;
            if last.as_ref() != Some(&state) {
                let data = serde_json::to_string(&state).unwrap_or_default();
                if tx
                    .send(Event::default().event("state").data(data))
                    .await
                    .is_err()
                {
                    return;
                }
                last = Some(state);
            }
            if finished && !more_logs {
                let _ = tx.send(Event::default().event("end").data("{}")).await;
                return;
            }
            if more_logs {
                continue;
            }
            match wake {
                Some(notify) => {
                    let _ = tokio::time::timeout(POLL, notify.notified()).await;
                    // The journal commits in small batches (a few ms): let this one land,
                    // and take a busy run's events (a task logging fast) a batch at a time.
                    tokio::time::sleep(SETTLE).await;
                }
                None => tokio::time::sleep(POLL).await,
            }
            // A closed page, or a server shutting down (its graceful stop waits for
            // open connections: a stream must not hold it).
            if tx.is_closed() || !server.accepting.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
        }
    });
    let events = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
