//! Levelled log lines, attributed by the host to the task that wrote them.
//!
//! Use the functions ([`info`], [`warn`], ...) with a ready string or the macros of the
//! same names with `format!` arguments:
//!
//! ```no_run
//! let n = 3;
//! weft_sdk::log::info!("copied {n} files");
//! weft_sdk::log::warn("cache is cold");
//! ```
//!
//! Lines past the task's log budget end the task as errored. Anything written to
//! stdout/stderr also becomes log lines.

/// Severity of a log line.
pub use crate::bindings::weft::plugin::log::Level;

/// Writes one log line at `level`.
pub fn write(level: Level, message: &str) {
    crate::bindings::weft::plugin::log::write(level, message);
}

/// Writes a trace line.
pub fn trace(message: &str) {
    write(Level::Trace, message);
}

/// Writes a debug line.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Writes an info line.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Writes a warning line.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Writes an error line.
pub fn error(message: &str) {
    write(Level::Error, message);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __weft_log {
    ($level:ident, $($arg:tt)*) => {
        $crate::log::write($crate::log::Level::$level, &::std::format!($($arg)*))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __weft_log_trace {
    ($($arg:tt)*) => { $crate::__weft_log!(Trace, $($arg)*) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __weft_log_debug {
    ($($arg:tt)*) => { $crate::__weft_log!(Debug, $($arg)*) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __weft_log_info {
    ($($arg:tt)*) => { $crate::__weft_log!(Info, $($arg)*) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __weft_log_warn {
    ($($arg:tt)*) => { $crate::__weft_log!(Warn, $($arg)*) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __weft_log_error {
    ($($arg:tt)*) => { $crate::__weft_log!(Error, $($arg)*) };
}

/// Writes a trace line, `format!`-style: `trace!("x = {x}")`.
pub use crate::__weft_log_trace as trace;

/// Writes a debug line, `format!`-style: `debug!("x = {x}")`.
pub use crate::__weft_log_debug as debug;

/// Writes an info line, `format!`-style: `info!("x = {x}")`.
pub use crate::__weft_log_info as info;

/// Writes a warning line, `format!`-style: `warn!("x = {x}")`.
pub use crate::__weft_log_warn as warn;

/// Writes an error line, `format!`-style: `error!("x = {x}")`.
pub use crate::__weft_log_error as error;
