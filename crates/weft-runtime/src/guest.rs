//! Where guest code runs: never on the caller's async runtime. Each invocation runs to
//! completion on an OS thread of its own, taken from an elastic pool (idle threads are
//! kept for [`IDLE_KEEP`]); the caller awaits a oneshot. So tokio's timers, I/O and every
//! other task stay live while every core runs guests, and the operating system shares the
//! cores between guests fairly, preempting them.
//!
//! A guest's async host calls (`wasi:http`, clocks, files) are driven on that thread,
//! with the timers, I/O and blocking pool of one small runtime kept for guests alone
//! ([`guest_io`]). How a guest is stopped: its [`GuestControl`] is checked at every epoch
//! tick (and the epoch is bumped at once when a guest must stop), so a deadline or a
//! cancel interrupts running wasm within about one tick, whatever the load.
//!
//! The pool is elastic rather than one thread per core because a guest may spend minutes
//! in a host call (an HTTP request, a `wait-for` sleep): a fixed pool would let such
//! guests hold every thread while others queue. The CPU parallelism of guests is the
//! machine's: the kernel schedules their threads on every core.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle guest thread waits for another invocation before it exits.
const IDLE_KEEP: Duration = Duration::from_secs(10);

/// How long a guest thread that just finished looks for its next invocation before it
/// sleeps: a scheduler launching the next ready task hands it over within microseconds,
/// and taking it without sleeping saves a futex wake (on a virtual machine an interrupt
/// between cores) per task.
const SPIN: Duration = Duration::from_micros(50);

/// One invocation, run on a guest thread.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Idle guest threads, each waiting on its own channel; the most recently idle is last.
static IDLE: Mutex<Vec<(u64, mpsc::Sender<Job>)>> = Mutex::new(Vec::new());

/// Ids of guest threads, to find one's own entry in [`IDLE`].
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs `job` on a guest thread: an idle one, or a new one. `Err` when no thread could be
/// started (the job is dropped, so whoever awaits its answer sees its sender go away).
pub(crate) fn spawn(job: Job) -> Result<(), std::io::Error> {
    let mut job = job;
    loop {
        let idle = IDLE.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let Some((_, thread)) = idle else { break };
        match thread.send(job) {
            Ok(()) => return Ok(()),
            // That thread is gone; try the next.
            Err(mpsc::SendError(back)) => job = back,
        }
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    std::thread::Builder::new()
        .name("weft-guest".to_string())
        .spawn(move || guest_thread(id, job))
        .map(|_| ())
}

/// A guest thread: runs its job, then waits (idle) for the next until [`IDLE_KEEP`] passes.
fn guest_thread(id: u64, first: Job) {
    let (sender, receiver) = mpsc::channel::<Job>();
    let mut job = first;
    loop {
        job();
        IDLE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, sender.clone()));
        if let Some(next) = spin_for(&receiver) {
            job = next;
            continue;
        }
        job = match receiver.recv_timeout(IDLE_KEEP) {
            Ok(next) => next,
            Err(_) => {
                let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(at) = idle.iter().position(|(other, _)| *other == id) {
                    idle.remove(at);
                    return;
                }
                drop(idle);
                // Someone took this thread off the idle list just now: its job is coming.
                match receiver.recv() {
                    Ok(next) => next,
                    Err(_) => return,
                }
            }
        };
    }
}

/// The next invocation, if one comes within [`SPIN`].
fn spin_for(receiver: &mpsc::Receiver<Job>) -> Option<Job> {
    let until = Instant::now() + SPIN;
    loop {
        match receiver.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if Instant::now() >= until => return None,
            // Yielding, not spinning: a guest thread that is ready to run gets the core.
            Err(mpsc::TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
}

/// The runtime whose timers, I/O and blocking pool serve guests' async host calls (each
/// guest's call is driven on its own thread through this runtime's handle). One per
/// process, never dropped; its workers only drive the reactor and the tasks host calls
/// spawn (HTTP connections: TLS is work, hence one worker per core).
pub(crate) fn guest_io() -> Result<&'static tokio::runtime::Runtime, String> {
    static IO: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    IO.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(crate::cores())
            .thread_name("weft-guest-io")
            .enable_all()
            .build()
            .map_err(|err| format!("cannot start the guests' I/O runtime: {err}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Why a guest was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Its wall-clock deadline passed.
    TimedOut,
    /// Its caller went away (the task was cancelled or aborted).
    Cancelled,
}

/// What the caller and the guest's thread share about one invocation: its deadline, and
/// whether (and why) it must stop.
pub(crate) struct GuestControl {
    deadline: Option<Instant>,
    /// 0: running; otherwise a [`Stop`] (1 timed out, 2 cancelled). Set once.
    stop: AtomicU8,
    /// Wakes a guest that waits in an async host call.
    wake: tokio::sync::Notify,
}

impl GuestControl {
    pub(crate) fn new(deadline: Option<Instant>) -> Self {
        GuestControl {
            deadline,
            stop: AtomicU8::new(0),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Asks the guest to stop; the first reason given is kept.
    pub(crate) fn stop(&self, why: Stop) {
        let code = match why {
            Stop::TimedOut => 1,
            Stop::Cancelled => 2,
        };
        let _ = self
            .stop
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.wake.notify_one();
    }

    /// Why the guest must stop, if it must: asked for, or its deadline passed.
    pub(crate) fn check(&self) -> Option<Stop> {
        match self.stop.load(Ordering::Acquire) {
            1 => return Some(Stop::TimedOut),
            2 => return Some(Stop::Cancelled),
            _ => {}
        }
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            self.stop(Stop::TimedOut);
            return self.check();
        }
        None
    }

    /// Completes once the guest is asked to stop (for a guest waiting in a host call).
    pub(crate) async fn stopped(&self) {
        self.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_reused_and_every_job_runs() {
        let (done, results) = mpsc::channel();
        for i in 0..32 {
            let done = done.clone();
            spawn(Box::new(move || {
                let _ = done.send(i);
            }))
            .expect("a guest thread");
        }
        let mut got: Vec<i32> = (0..32).map(|_| results.recv().expect("a result")).collect();
        got.sort();
        assert_eq!(got, (0..32).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_stop_reason_is_kept_and_deadlines_stop() {
        let control = GuestControl::new(None);
        assert_eq!(control.check(), None);
        control.stop(Stop::Cancelled);
        control.stop(Stop::TimedOut);
        assert_eq!(control.check(), Some(Stop::Cancelled));
        let past = GuestControl::new(Some(Instant::now()));
        assert_eq!(past.check(), Some(Stop::TimedOut));
    }
}
