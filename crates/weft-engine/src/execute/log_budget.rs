//! A run's log budget (its tenant's `log-kib-per-run` quota): every task attempt's lines
//! count against one budget; the first line past it is replaced by one marker, and the
//! rest of the run's lines are dropped (the task goes on).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use weft_runtime::{LogLevel, LogLine, LogSink, LogStream};

/// What is left of a run's budget.
#[derive(Debug)]
pub(super) struct LogBudget {
    limit: u64,
    left: AtomicU64,
    spent: AtomicBool,
}

impl LogBudget {
    /// A budget of `limit` bytes.
    pub(super) fn new(limit: u64) -> Arc<LogBudget> {
        Arc::new(LogBudget {
            limit,
            left: AtomicU64::new(limit),
            spent: AtomicBool::new(false),
        })
    }

    /// Whether a line of `bytes` fits: taken from the budget if so.
    fn take(&self, bytes: u64) -> bool {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            })
            .is_ok()
    }
}

/// Passes lines to `inner` while the run's budget lasts.
pub(super) struct BudgetSink {
    /// Where lines go.
    pub inner: Arc<dyn LogSink>,
    /// The run's budget, shared by its attempts.
    pub budget: Arc<LogBudget>,
}

impl LogSink for BudgetSink {
    fn line(&self, line: LogLine) {
        if self.budget.take(line.text.len() as u64 + 1) {
            self.inner.line(line);
        } else if !self.budget.spent.swap(true, Ordering::AcqRel) {
            self.inner.line(LogLine {
                stream: LogStream::Host,
                level: LogLevel::Warn,
                text: format!(
                    "log quota reached: the run's logs are capped at {} KiB (its tenant's log-kib-per-run); later lines are dropped",
                    self.budget.limit / 1024
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_pass_until_the_budget_is_spent_then_one_marker() {
        let memory = Arc::new(weft_runtime::MemorySink::default());
        let budget = LogBudget::new(10);
        let sink = |inner: Arc<dyn LogSink>| BudgetSink {
            inner,
            budget: budget.clone(),
        };
        let (a, b) = (sink(memory.clone()), sink(memory.clone()));
        let line = |text: &str| LogLine {
            stream: LogStream::Log,
            level: LogLevel::Info,
            text: text.into(),
        };
        a.line(line("abcd")); // 5 of 10
        b.line(line("efgh")); // 10 of 10: two attempts share the budget
        a.line(line("x")); // over: the marker
        b.line(line("y")); // dropped
        let texts: Vec<String> = memory.lines().into_iter().map(|l| l.text).collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert_eq!(&texts[..2], ["abcd", "efgh"]);
        assert!(texts[2].contains("log quota reached"), "{texts:?}");
    }
}
