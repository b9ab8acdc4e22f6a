//! What `weft run` shows people: a live line per task start and end, log lines prefixed
//! with the task name, and a closing summary. Every log line is also kept in full in the
//! run's `logs/` directory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use weft_core::waits::WaitKind;
use weft_core::{Outcome, RunSummary, TaskPhase};
use weft_engine::runs::{DecoratorLog, RunEvent, RunObserver, Undelivered};
use weft_runtime::{LogLevel, LogStream};

/// What is printed while a run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Transitions and log lines on stdout (`weft run`).
    Text,
    /// Log lines on stderr, the JSON report at the end (`--output json`).
    Json,
    /// Nothing: logs go to files and the store only (`weft serve`).
    Silent,
}

/// The run's view (log lines reach it masked: the engine masks what plugins hand back
/// before anything sees it) and whether it is coloured.
pub fn observer(
    plan: &weft_core::Plan,
    run_name: &str,
    display: Display,
    run_dir: &Path,
) -> (Arc<dyn RunObserver>, bool) {
    let log_dir = run_dir.join("logs");
    let (view, color) = match display {
        Display::Text => LiveView::for_plan(plan, run_name, true, log_dir),
        Display::Json => LiveView::for_plan(plan, run_name, false, log_dir),
        Display::Silent => (LiveView::files_only(log_dir), false),
    };
    (Arc::new(view), color)
}

/// Shows what the form decorators logged (masked): on stderr for `weft run`, as tracing
/// events for the server.
pub fn decorator_log(lines: &[DecoratorLog], display: Display) {
    for line in lines {
        match display {
            Display::Text | Display::Json => {
                eprintln!(
                    "decorator {} [{}] {}",
                    line.decorator, line.level, line.text
                );
            }
            Display::Silent => {
                tracing::info!(decorator = %line.decorator, level = line.level, "{}", line.text);
            }
        }
    }
}

/// Says on stderr which statuses were not delivered (waited `timeout` for them).
pub fn undelivered(missed: &[Undelivered], timeout: Duration) {
    for missed in missed {
        let why = if missed.permanent {
            format!("it was refused: {}", missed.error)
        } else if missed.error.is_empty() {
            format!("gave up waiting after {}s", timeout.as_secs())
        } else {
            format!(
                "gave up waiting after {}s (last error: {})",
                timeout.as_secs(),
                missed.error
            )
        };
        eprintln!(
            "weft: warning: status `{:?}` for `{}` was not reported by {}: {why}",
            missed.desired, missed.context, missed.reporter
        );
    }
}

/// Prints a run as it happens and keeps its logs.
pub struct LiveView {
    /// Print transitions (text mode) or only logs (JSON mode, on stderr).
    pub transitions: bool,
    /// Log lines go to stderr instead of stdout (JSON mode).
    pub logs_to_stderr: bool,
    /// Colour output.
    pub color: bool,
    /// Where each task's full log is written.
    pub log_dir: PathBuf,
    /// Print log lines at all (`false`: only keep them in files).
    pub print_logs: bool,
    files: Mutex<HashMap<String, File>>,
    width: usize,
    /// The run's name, for the commands that decide what it waits for.
    run_name: String,
}

impl LiveView {
    /// A view whose task column is `width` wide.
    pub fn new(
        transitions: bool,
        logs_to_stderr: bool,
        color: bool,
        log_dir: PathBuf,
        width: usize,
    ) -> Self {
        LiveView {
            transitions,
            logs_to_stderr,
            color,
            log_dir,
            print_logs: true,
            files: Mutex::new(HashMap::new()),
            width,
            run_name: String::new(),
        }
    }

    /// A view that prints nothing and keeps every task's log in `log_dir` (`weft serve`).
    pub fn files_only(log_dir: PathBuf) -> Self {
        LiveView {
            transitions: false,
            print_logs: false,
            ..LiveView::new(false, false, false, log_dir, 0)
        }
    }

    /// The view `weft run` and `weft runs recover` show: transitions on stdout in text
    /// mode (coloured on a terminal), log lines only (on stderr) in JSON mode.
    pub fn for_plan(
        plan: &weft_core::Plan,
        run_name: &str,
        text: bool,
        log_dir: PathBuf,
    ) -> (Self, bool) {
        let color = text && std::io::stdout().is_terminal();
        let width = plan.nodes.iter().map(|n| n.name.len()).max().unwrap_or(4);
        let view = LiveView {
            run_name: run_name.to_string(),
            ..LiveView::new(text, !text, color, log_dir, width)
        };
        (view, color)
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    fn keep(&self, task: &str, text: &str) {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if !files.contains_key(task) {
            let _ = std::fs::create_dir_all(&self.log_dir);
            match File::create(self.log_dir.join(format!("{task}.log"))) {
                Ok(file) => {
                    files.insert(task.to_string(), file);
                }
                Err(err) => tracing::warn!(task, error = %err, "cannot keep the task's log"),
            }
        }
        if let Some(file) = files.get_mut(task) {
            let _ = writeln!(file, "{text}");
        }
    }

    fn say(&self, line: String, stderr: bool) {
        if stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

/// The style an outcome is shown in.
pub fn outcome_style(outcome: Outcome) -> Style {
    let color = match outcome {
        Outcome::Succeeded => AnsiColor::Green,
        Outcome::SucceededWithWarnings => AnsiColor::Yellow,
        Outcome::Skipped | Outcome::Cancelled => AnsiColor::BrightBlack,
        _ => AnsiColor::Red,
    };
    Style::new().fg_color(Some(color.into()))
}

fn outcome_mark(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "✔",
        Outcome::SucceededWithWarnings => "⚠",
        Outcome::Skipped => "↷",
        Outcome::Cancelled => "⊘",
        _ => "✘",
    }
}

/// `1.2s`, `340ms`, `2m05s`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

impl RunObserver for LiveView {
    fn event(&self, event: RunEvent<'_>) {
        match event {
            RunEvent::Log { task, line } => {
                let origin = match line.stream {
                    LogStream::Host => "weft: ",
                    _ => "",
                };
                self.keep(
                    task,
                    &format!("{}{origin}{}", level_tag(line.level), line.text),
                );
                if !self.print_logs {
                    return;
                }
                let prefix = self.paint(Style::new().dimmed(), &format!("[{task}]"));
                self.say(
                    format!("  {prefix} {origin}{}", line.text),
                    self.logs_to_stderr,
                );
            }
            RunEvent::Waiting { task, wait, .. } => {
                if !self.print_logs {
                    return;
                }
                let command = match wait.kind {
                    WaitKind::Approval => {
                        format!("weft approve {} {task} [--reject]", self.run_name)
                    }
                    WaitKind::Intervention => {
                        format!("weft resume {} {task} [--reject]", self.run_name)
                    }
                    WaitKind::Gate(_) => String::new(),
                };
                let mark = self.paint(Style::new().fg_color(Some(AnsiColor::Yellow.into())), "⏸");
                let line = if command.is_empty() {
                    format!("{mark} {}", wait.describe(task))
                } else {
                    format!("{mark} {}: decide with `{command}`", wait.describe(task))
                };
                self.say(line, self.logs_to_stderr);
            }
            RunEvent::Transition {
                task,
                is_finally,
                phase,
                outcome,
                reason,
                attempt,
                elapsed,
            } => {
                if !self.transitions {
                    return;
                }
                let name = format!("{task:<width$}", width = self.width);
                let tag = if is_finally { " (finally)" } else { "" };
                match (phase, outcome) {
                    (TaskPhase::Running, _) => {
                        let retry = if attempt > 0 {
                            format!(" (retry {attempt})")
                        } else {
                            String::new()
                        };
                        let mark =
                            self.paint(Style::new().fg_color(Some(AnsiColor::Cyan.into())), "▶");
                        self.say(format!("{mark} {name} started{tag}{retry}"), false);
                    }
                    (TaskPhase::Terminal, Some(outcome)) => {
                        let style = outcome_style(outcome);
                        let mark = self.paint(style, outcome_mark(outcome));
                        let status = self.paint(style, &format!("{:<22}", outcome.as_str()));
                        let time = elapsed.map(human_duration).unwrap_or_default();
                        let reason = if reason.is_empty() {
                            String::new()
                        } else {
                            format!(" {reason}")
                        };
                        self.say(
                            format!("{mark} {name} {status} {time:>7}{reason}{tag}"),
                            false,
                        );
                    }
                    (TaskPhase::Queued, _) if !reason.is_empty() => {
                        self.say(
                            format!("↻ {name} {reason} (attempt {})", attempt + 1),
                            false,
                        );
                    }
                    _ => {}
                }
            }
            RunEvent::Held(why) => {
                if self.transitions {
                    let mark =
                        self.paint(Style::new().fg_color(Some(AnsiColor::Yellow.into())), "⏳");
                    self.say(format!("{mark} {}", why.describe()), false);
                }
            }
            RunEvent::FinallyStarted => {
                if self.transitions {
                    self.say(self.paint(Style::new().dimmed(), "── finally ──"), false);
                }
            }
            // Metrics only: nothing to show.
            RunEvent::Finished(_) | RunEvent::Instantiated { .. } => {}
        }
    }
}

fn level_tag(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "TRACE ",
        LogLevel::Debug => "DEBUG ",
        LogLevel::Info => "",
        LogLevel::Warn => "WARN  ",
        LogLevel::Error => "ERROR ",
    }
}

/// The closing summary of a run, for people.
pub fn summary(
    summary: &RunSummary,
    duration: Duration,
    color: bool,
    log_dir: &std::path::Path,
) -> String {
    let report = &summary.report;
    let paint = |style: Style, text: &str| {
        if color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    };
    let status_style = Style::new().bold().fg_color(Some(
        match summary.status.exit_code() {
            0 => AnsiColor::Green,
            _ => AnsiColor::Red,
        }
        .into(),
    ));
    let mut out = String::new();
    let width = report
        .tasks
        .iter()
        .map(|t| t.name.len() + if t.finally { " (finally)".len() } else { 0 })
        .max()
        .unwrap_or(4)
        .max(4);
    out.push('\n');
    out.push_str(&format!(
        "{:<width$}  {:<22} {:<22} {:>4} {:>8}\n",
        "TASK", "STATUS", "REASON", "EXIT", "ATTEMPTS"
    ));
    let mut counts: Vec<(String, usize)> = Vec::new();
    for task in &report.tasks {
        let exit = task
            .exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into());
        let name = if task.finally {
            format!("{} (finally)", task.name)
        } else {
            task.name.clone()
        };
        out.push_str(&format!(
            "{name:<width$}  {:<22} {:<22} {exit:>4} {:>8}\n",
            task.status, task.reason, task.attempts,
        ));
        match counts.iter_mut().find(|(s, _)| *s == task.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((task.status.clone(), 1)),
        }
    }
    let reason = match (&summary.halted_by, summary.reason.as_str()) {
        (Some(halted), _) if halted.message.is_empty() => {
            format!(" (halted early by {})", halted.task)
        }
        (Some(halted), _) => format!(" (halted early by {}: {})", halted.task, halted.message),
        (None, reason) if reason.is_empty() || reason == summary.status.as_str() => String::new(),
        (None, reason) => format!(" ({reason})"),
    };
    out.push('\n');
    out.push_str(&format!(
        "Run {} {}{reason} in {}\n",
        report.run.name,
        paint(status_style, summary.status.as_str()),
        human_duration(duration)
    ));
    out.push_str(&format!(
        "  $(tasks.status) {} · $(tasks.outcome) {} · {}\n",
        report.run.tasks_status,
        report.run.tasks_outcome,
        counts
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(&format!("  logs: {}\n", log_dir.display()));
    out
}
