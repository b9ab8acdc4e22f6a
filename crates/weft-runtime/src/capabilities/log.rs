//! `weft:plugin/log` and the capture of guest stdout/stderr: both become log lines of the
//! task, counted against its log budget and masked for revealed secrets.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::limits::LimitKind;
use crate::masking::Masker;
use crate::masking::across_calls::CallJoiner;
use crate::wit::since_v0_1_0::weft::plugin::log as wit;
use crate::wit::since_v0_2_0::weft::plugin::log as wit_v0_2;

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// The `weft:plugin/log` interface.
    Log,
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
    /// The host, speaking about the task (denials, limits).
    Host,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Detailed.
    Debug,
    /// Normal.
    Info,
    /// Worth a look.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One line of a task's log, already masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Where it came from.
    pub stream: LogStream,
    /// Its severity (stdout is `Info`, stderr `Warn`).
    pub level: LogLevel,
    /// The text, without the trailing newline.
    pub text: String,
}

/// Receives the log lines of a task. Implementations must not block for long: they are
/// called from the guest's host calls.
pub trait LogSink: Send + Sync {
    /// Takes one line.
    fn line(&self, line: LogLine);
}

/// A sink that drops everything.
pub struct NullSink;

impl LogSink for NullSink {
    fn line(&self, _line: LogLine) {}
}

/// A sink that keeps lines in memory (tests, `describe`).
#[derive(Default)]
pub struct MemorySink {
    lines: Mutex<Vec<LogLine>>,
}

impl MemorySink {
    /// The lines so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// All line texts joined with newlines.
    pub fn text(&self) -> String {
        self.lines()
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl LogSink for MemorySink {
    fn line(&self, line: LogLine) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line);
        }
    }
}

/// Longest partial line kept before it is emitted without its newline.
const MAX_PARTIAL_LINE: usize = 16 * 1024;

/// The state behind a task's log: budget, masking and partial stdout/stderr lines.
pub(crate) struct TaskOutput {
    sink: Arc<dyn LogSink>,
    budget: usize,
    used: usize,
    pub(crate) exceeded: bool,
    masker: Masker,
    /// `weft:plugin/log` calls, masked as one text (a value split across calls).
    calls: CallJoiner<LogLevel>,
    partial_stdout: Vec<u8>,
    partial_stderr: Vec<u8>,
}

/// Shared handle to a task's output; the stdout/stderr streams and the store hold clones.
#[derive(Clone)]
pub(crate) struct SharedOutput(Arc<Mutex<TaskOutput>>);

impl SharedOutput {
    pub(crate) fn new(sink: Arc<dyn LogSink>, budget: usize) -> Self {
        SharedOutput(Arc::new(Mutex::new(TaskOutput {
            sink,
            budget,
            used: 0,
            exceeded: false,
            masker: Masker::new(),
            calls: CallJoiner::default(),
            partial_stdout: Vec::new(),
            partial_stderr: Vec::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, TaskOutput> {
        // A poisoned lock only means another thread panicked mid-write; the data is
        // still a valid byte buffer, so keep going.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Masks `value` (in all its forms, see [`crate::masking`]) in every later line.
    /// `Err`: the value is too short to be a secret and is not masked.
    pub(crate) fn add_mask(&self, value: &str) -> Result<(), crate::masking::TooShort> {
        self.lock().masker.add(value).map(|_| ())
    }

    /// Sends nothing more to the sink (the task's caller is gone); what is held is dropped.
    pub(crate) fn seal(&self) {
        let mut out = self.lock();
        out.sink = Arc::new(NullSink);
        out.partial_stdout.clear();
        out.partial_stderr.clear();
    }

    /// Whether the budget was exceeded.
    pub(crate) fn exceeded(&self) -> bool {
        self.lock().exceeded
    }

    /// A line from the host about the task; not counted against the budget.
    pub(crate) fn host_line(&self, level: LogLevel, text: String) {
        let mut out = self.lock();
        out.flush_calls();
        // Host lines may quote guest-chosen text (a URL, a secret name).
        let text = match out.masker.mask(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(masked) => masked,
        };
        out.sink.line(LogLine {
            stream: LogStream::Host,
            level,
            text,
        });
    }

    /// One `weft:plugin/log` call: a line per `\n`-separated part, masked together with
    /// the calls before and after it (see [`crate::masking::across_calls`]). `Err` means
    /// the budget is spent.
    pub(crate) fn log_call(&self, level: LogLevel, message: &str) -> Result<(), LimitKind> {
        let mut out = self.lock();
        let mut lines = message.split('\n').peekable();
        while let Some(line) = lines.next() {
            out.charge(line.len() + 1)?;
            let line = line.strip_suffix('\r').unwrap_or(line);
            let last = lines.peek().is_none();
            let TaskOutput { masker, calls, .. } = &mut *out;
            for (level, text) in calls.push(masker, level, line, last) {
                out.sink.line(LogLine {
                    stream: LogStream::Log,
                    level,
                    text,
                });
            }
        }
        Ok(())
    }

    /// Bytes written to stdout or stderr. `Err` means the budget is spent.
    pub(crate) fn write_stream(&self, stream: LogStream, bytes: &[u8]) -> Result<(), LimitKind> {
        let mut out = self.lock();
        out.charge(bytes.len())?;
        let level = if stream == LogStream::Stderr {
            LogLevel::Warn
        } else {
            LogLevel::Info
        };
        let mut partial = std::mem::take(out.partial(stream));
        partial.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = partial[start..].iter().position(|b| *b == b'\n') {
            out.send(stream, level, &partial[start..start + pos]);
            start += pos + 1;
        }
        partial.drain(..start);
        if partial.len() > MAX_PARTIAL_LINE {
            // Emit what cannot be the start of a secret still arriving; keep the rest.
            let cut = out.masker.safe_prefix_len(&partial);
            if cut > 0 {
                out.send(stream, level, &partial[..cut]);
                partial.drain(..cut);
            }
        }
        *out.partial(stream) = partial;
        Ok(())
    }

    /// Emits what is left of unterminated stdout/stderr lines (at the end of a task).
    pub(crate) fn flush_partials(&self) {
        let mut out = self.lock();
        out.flush_calls();
        for (stream, level) in [
            (LogStream::Stdout, LogLevel::Info),
            (LogStream::Stderr, LogLevel::Warn),
        ] {
            let partial = std::mem::take(out.partial(stream));
            if !partial.is_empty() {
                out.send(stream, level, &partial);
            }
        }
    }
}

impl TaskOutput {
    fn partial(&mut self, stream: LogStream) -> &mut Vec<u8> {
        if stream == LogStream::Stderr {
            &mut self.partial_stderr
        } else {
            &mut self.partial_stdout
        }
    }

    fn charge(&mut self, bytes: usize) -> Result<(), LimitKind> {
        if self.exceeded {
            return Err(LimitKind::LogBytes);
        }
        self.used = self.used.saturating_add(bytes);
        if self.used > self.budget {
            self.exceeded = true;
            self.flush_calls();
            self.sink.line(LogLine {
                stream: LogStream::Host,
                level: LogLevel::Error,
                text: format!(
                    "log budget of {} bytes exceeded; the task is stopped",
                    self.budget
                ),
            });
            return Err(LimitKind::LogBytes);
        }
        Ok(())
    }

    /// Emits the held log lines: other output is about to follow them.
    fn flush_calls(&mut self) {
        for (level, text) in self.calls.flush(&self.masker) {
            self.sink.line(LogLine {
                stream: LogStream::Log,
                level,
                text,
            });
        }
    }

    fn send(&mut self, stream: LogStream, level: LogLevel, bytes: &[u8]) {
        self.flush_calls();
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        if text.ends_with('\r') {
            text.pop();
        }
        if let std::borrow::Cow::Owned(masked) = self.masker.mask(&text) {
            text = masked;
        }
        self.sink.line(LogLine {
            stream,
            level,
            text,
        });
    }
}

/// The guest's stdout or stderr, feeding [`SharedOutput`].
pub(crate) struct CapturedStream {
    pub(crate) output: SharedOutput,
    pub(crate) stream: LogStream,
}

impl IsTerminal for CapturedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(CapturedWriter {
            output: self.output.clone(),
            stream: self.stream,
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(CapturedWriter {
            output: self.output.clone(),
            stream: self.stream,
        })
    }
}

struct CapturedWriter {
    output: SharedOutput,
    stream: LogStream,
}

impl CapturedWriter {
    fn write_all(&self, bytes: &[u8]) -> Result<(), LimitKind> {
        self.output.write_stream(self.stream, bytes)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_all(&bytes)
            .map_err(|limit| StreamError::trap(limit.reason()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if self.output.exceeded() {
            return Err(StreamError::trap(LimitKind::LogBytes.reason()));
        }
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(
            self.write_all(buf)
                .map(|()| buf.len())
                .map_err(|limit| std::io::Error::other(limit.reason())),
        )
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The view the log interface works on.
pub struct LogView<'a> {
    pub(crate) output: &'a SharedOutput,
}

impl LogView<'_> {
    /// `write`, whichever contract version the guest called it through.
    fn write_line(&mut self, level: LogLevel, message: &str) -> wasmtime::Result<()> {
        if let Err(limit) = self.output.log_call(level, message) {
            wasmtime::bail!("{}", limit.reason());
        }
        Ok(())
    }
}

impl wit::Host for LogView<'_> {
    fn write(&mut self, level: wit::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            wit::Level::Trace => LogLevel::Trace,
            wit::Level::Debug => LogLevel::Debug,
            wit::Level::Info => LogLevel::Info,
            wit::Level::Warn => LogLevel::Warn,
            wit::Level::Error => LogLevel::Error,
        };
        self.write_line(level, &message)
    }
}

impl wit_v0_2::Host for LogView<'_> {
    fn write(&mut self, level: wit_v0_2::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            wit_v0_2::Level::Trace => LogLevel::Trace,
            wit_v0_2::Level::Debug => LogLevel::Debug,
            wit_v0_2::Level::Info => LogLevel::Info,
            wit_v0_2::Level::Warn => LogLevel::Warn,
            wit_v0_2::Level::Error => LogLevel::Error,
        };
        self.write_line(level, &message)
    }
}

struct HasLog;

impl HasData for HasLog {
    type Data<'a> = LogView<'a>;
}

/// Adds `weft:plugin/log`, every served version, to `linker`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> LogView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasLog>(linker, get)?;
    wit_v0_2::add_to_linker::<T, HasLog>(linker, get)
}
