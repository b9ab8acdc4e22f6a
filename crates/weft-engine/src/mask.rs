//! Masking of everything a plugin hands back, before it is stored, printed, sent or
//! passed on: log lines, task results and ending messages, reporter errors, decorator
//! output. One [`RunMasker`] per run holds every secret value the run knows (the
//! operator's secrets, decorator-set run secrets, secret workspaces' files), in all the
//! forms [`weft_runtime::masking`] recognises.
//!
//! # What a downstream task sees when a result was masked
//!
//! The masked text. A result holding a secret value is replaced, once, where the engine
//! receives it: the journal, the report, `$(tasks.T.results.R)` in later tasks, pipeline
//! results and forge descriptions all see `***` in place of the value, and the task's log
//! gets a warning naming the result. Secrets travel between tasks only through grants
//! (`secrets:`, `--grant`), never through results (GitHub Actions likewise refuses to pass
//! a job output that contains a secret). This also keeps a recovered run identical to the
//! first: it replays the stored (masked) results.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use weft_core::contract::{ParamValue, TaskEnding};
use weft_runtime::masking::check_secret;
use weft_runtime::{LogLevel, LogLine, LogSink, LogStream, Masker, SecretValue, TaskReport};

/// Masks one run's secret values. Cheap to clone.
#[derive(Clone, Default)]
pub struct RunMasker(Arc<Masker>);

impl std::fmt::Debug for RunMasker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RunMasker")
            .field(&self.0.secret_count())
            .finish()
    }
}

impl RunMasker {
    /// A masker for `values` (values too short to be secrets were refused when loaded
    /// and are skipped here).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a SecretValue>) -> Self {
        Self::of_texts(values.into_iter().map(SecretValue::expose))
    }

    /// A masker for plain `values` (those too short to be secrets are skipped).
    pub fn of_texts<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let masker = Masker::with_secrets(values.into_iter().filter(|v| check_secret(v).is_ok()))
            .unwrap_or_default();
        RunMasker(Arc::new(masker))
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every secret value masked.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.0.mask(text)
    }

    /// A param value with every secret value masked.
    pub fn param(&self, value: &ParamValue) -> ParamValue {
        let text = |s: &String| self.text(s).into_owned();
        match value {
            ParamValue::Str(s) => ParamValue::Str(text(s)),
            ParamValue::Array(items) => ParamValue::Array(items.iter().map(text).collect()),
            ParamValue::Object(fields) => {
                ParamValue::Object(fields.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            }
        }
    }

    /// Masks a task's ending message and results in place. Returns the names of the
    /// results that held a secret.
    pub fn task_report(&self, report: &mut TaskReport) -> Vec<String> {
        if self.is_empty() {
            return Vec::new();
        }
        self.ending(&mut report.ending);
        self.results(&mut report.results)
    }

    /// Masks an ending's message in place.
    pub fn ending(&self, ending: &mut TaskEnding) {
        let message = match ending {
            TaskEnding::Success => return,
            TaskEnding::Warning { message }
            | TaskEnding::Halt { message }
            | TaskEnding::Skip { message }
            | TaskEnding::Failure { message, .. }
            | TaskEnding::Errored { message, .. } => message,
        };
        self.0.mask_in_place(message);
    }

    /// Masks result values in place; returns the names of those that changed.
    pub fn results(&self, results: &mut BTreeMap<String, String>) -> Vec<String> {
        self.0.mask_values(results)
    }

    /// A log sink that masks every line before passing it to `next` (the store, the
    /// view, the log files).
    pub fn log_sink(&self, next: Arc<dyn LogSink>) -> Arc<dyn LogSink> {
        if self.is_empty() {
            return next;
        }
        Arc::new(MaskingSink {
            masker: self.clone(),
            next,
        })
    }

    /// Masks `report` and says in `log` which results held a secret (they are passed on
    /// masked: see the module docs).
    pub fn task_report_logged(&self, report: &mut TaskReport, log: &dyn LogSink) {
        for name in self.task_report(report) {
            log.line(LogLine {
                stream: LogStream::Host,
                level: LogLevel::Warn,
                text: format!("result `{name}` contained a secret value; it is passed on masked"),
            });
        }
    }
}

struct MaskingSink {
    masker: RunMasker,
    next: Arc<dyn LogSink>,
}

impl LogSink for MaskingSink {
    fn line(&self, mut line: LogLine) {
        self.masker.0.mask_in_place(&mut line.text);
        self.next.line(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_runtime::MemorySink;

    fn masker() -> RunMasker {
        let value = SecretValue::checked("t", "s3cr3t-value-42".to_string()).expect("long enough");
        RunMasker::new([&value])
    }

    #[test]
    fn results_and_messages_are_masked_and_named() {
        let masker = masker();
        let mut report = TaskReport {
            ending: TaskEnding::Failure {
                message: "could not log in with s3cr3t-value-42".into(),
                exit_code: 3,
            },
            results: BTreeMap::from([
                ("token".to_string(), "s3cr3t-value-42".to_string()),
                ("encoded".to_string(), "czNjcjN0LXZhbHVlLTQy".to_string()),
                ("plain".to_string(), "hello".to_string()),
            ]),
        };
        let log = MemorySink::default();
        masker.task_report_logged(&mut report, &log);
        assert_eq!(report.ending.message(), "could not log in with ***");
        assert_eq!(report.results["token"], "***");
        assert_eq!(report.results["encoded"], "***");
        assert_eq!(report.results["plain"], "hello");
        let text = log.text();
        assert!(text.contains("result `token`") && text.contains("result `encoded`"));
        assert!(!text.contains("plain"));
    }

    #[test]
    fn every_ending_message_is_masked() {
        let masker = masker();
        let secret = "s3cr3t-value-42".to_string();
        for mut ending in [
            TaskEnding::Warning {
                message: secret.clone(),
            },
            TaskEnding::Halt {
                message: secret.clone(),
            },
            TaskEnding::Skip {
                message: secret.clone(),
            },
            TaskEnding::Errored {
                reason: "Trap".into(),
                message: secret.clone(),
            },
        ] {
            masker.ending(&mut ending);
            assert_eq!(ending.message(), "***");
        }
    }

    #[test]
    fn params_and_log_lines_are_masked() {
        let masker = masker();
        let value = ParamValue::Object(BTreeMap::from([(
            "k".to_string(),
            "x s3cr3t-value-42 y".to_string(),
        )]));
        assert_eq!(
            masker.param(&value),
            ParamValue::Object(BTreeMap::from([("k".to_string(), "x *** y".to_string())]))
        );
        let inner = Arc::new(MemorySink::default());
        let sink = masker.log_sink(inner.clone());
        sink.line(LogLine {
            stream: LogStream::Stdout,
            level: LogLevel::Info,
            text: "token=s3cr3t-value-42".into(),
        });
        assert_eq!(inner.text().trim(), "token=***");
    }
}
