//! How a task ended: [`Outcome`].

use crate::raw;

/// How a task attempt ended, with the results it produced. Returned by
/// [`Task::run`](crate::Task::run).
///
/// ```
/// use weft_sdk::Outcome;
///
/// let done = Outcome::success().result("digest", "sha256:abcd").result("size", "42");
/// let meh = Outcome::warning("3 files skipped");
/// let failed = Outcome::failure("upload refused", 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    ending: raw::Ending,
    results: Vec<(String, String)>,
}

impl Outcome {
    fn new(ending: raw::Ending) -> Self {
        Outcome {
            ending,
            results: Vec::new(),
        }
    }

    /// Done.
    pub fn success() -> Self {
        Outcome::new(raw::Ending::Success)
    }

    /// Done, but worth a look (passed with warnings).
    pub fn warning(message: impl Into<String>) -> Self {
        Outcome::new(raw::Ending::Warning(message.into()))
    }

    /// Done, and the rest of the run is not needed (early successful exit).
    pub fn halt(message: impl Into<String>) -> Self {
        Outcome::new(raw::Ending::Halt(message.into()))
    }

    /// The task decided it does not apply.
    pub fn skip(message: impl Into<String>) -> Self {
        Outcome::new(raw::Ending::Skip(message.into()))
    }

    /// It failed, with this message and exit code.
    pub fn failure(message: impl Into<String>, exit_code: i32) -> Self {
        Outcome::new(raw::Ending::Failure(raw::Failure {
            message: message.into(),
            exit_code,
        }))
    }

    /// Adds a result (any outcome may carry results).
    pub fn result(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.results.push((name.into(), value.into()));
        self
    }

    /// Adds several results.
    pub fn results<I, K, V>(mut self, results: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.results
            .extend(results.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// True for success, warning and halt (the task's work is done).
    pub fn is_ok(&self) -> bool {
        matches!(
            self.ending,
            raw::Ending::Success | raw::Ending::Warning(_) | raw::Ending::Halt(_)
        )
    }

    /// How the task ended.
    pub fn ending(&self) -> &raw::Ending {
        &self.ending
    }

    /// The results added so far.
    pub fn result_list(&self) -> &[(String, String)] {
        &self.results
    }

    /// Converts to the WIT record.
    pub fn into_raw(self) -> raw::TaskOutcome {
        raw::TaskOutcome {
            ending: self.ending,
            results: self.results,
        }
    }
}
