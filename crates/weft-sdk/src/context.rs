//! What a task invocation knows about where it runs: [`Context`].

use crate::Outcome;
use crate::raw::{self, ParamValue, WorkspaceBinding};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Everything one task invocation knows about where it runs: run and task names, the
/// attempt number, its params (defaults already applied by the host) and its workspaces.
#[derive(Debug, Clone)]
pub struct Context {
    raw: raw::TaskContext,
}

impl Context {
    /// Wraps the WIT record.
    pub fn from_raw(raw: raw::TaskContext) -> Self {
        Context { raw }
    }

    /// The WIT record this context wraps.
    pub fn raw(&self) -> &raw::TaskContext {
        &self.raw
    }

    /// The run's name.
    pub fn run_name(&self) -> &str {
        &self.raw.run_name
    }

    /// The run's unique id.
    pub fn run_uid(&self) -> &str {
        &self.raw.run_uid
    }

    /// The pipeline's name.
    pub fn pipeline_name(&self) -> &str {
        &self.raw.pipeline_name
    }

    /// This task's name in the pipeline.
    pub fn task_name(&self) -> &str {
        &self.raw.task_name
    }

    /// 0 for the first attempt, 1 for the first retry, ...
    pub fn retry_count(&self) -> u32 {
        self.raw.retry_count
    }

    /// How many retries the pipeline allows this task.
    pub fn retries(&self) -> u32 {
        self.raw.retries
    }

    /// All params as the host passed them.
    pub fn params(&self) -> &[(String, ParamValue)] {
        &self.raw.params
    }

    /// The value of param `name`, whatever its type.
    pub fn param_value(&self, name: &str) -> Option<&ParamValue> {
        params::value(&self.raw.params, name)
    }

    /// The string param `name`; `None` when it is absent or not a string.
    pub fn param(&self, name: &str) -> Option<&str> {
        params::string(&self.raw.params, name)
    }

    /// The string param `name`, or `default` when it is absent or not a string.
    pub fn param_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.param(name).unwrap_or(default)
    }

    /// The array param `name`; `None` when it is absent or not an array.
    pub fn param_array(&self, name: &str) -> Option<&[String]> {
        params::array(&self.raw.params, name)
    }

    /// The object param `name` as `(key, value)` pairs; `None` when it is absent or not
    /// an object.
    pub fn param_object(&self, name: &str) -> Option<&[(String, String)]> {
        params::object(&self.raw.params, name)
    }

    /// One key of the object param `name` (`$(params.name.key)`).
    pub fn param_key(&self, name: &str, key: &str) -> Option<&str> {
        params::key(&self.raw.params, name, key)
    }

    /// The string param `name`, or a [`ParamError`] saying it is missing.
    pub fn required(&self, name: &str) -> Result<&str, ParamError> {
        params::required(&self.raw.params, name)
    }

    /// The string param `name` parsed as a `T`, or `default` when it is absent. A value
    /// that does not parse is a [`ParamError`].
    ///
    /// ```no_run
    /// # fn f(ctx: weft_sdk::Context) -> weft_sdk::Outcome {
    /// let timeout: u64 = match ctx.parse_or("timeoutMs", 1000) {
    ///     Ok(t) => t,
    ///     Err(e) => return e.into(), // failure "param `timeoutMs`: ...", exit code 2
    /// };
    /// # weft_sdk::Outcome::success() }
    /// ```
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ParamError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        params::parse_or(&self.raw.params, name, default)
    }

    /// The guest path at which workspace `name` is preopened; `std::fs` works on it
    /// (and on nothing outside the workspaces).
    pub fn workspace(&self, name: &str) -> Option<PathBuf> {
        self.workspace_binding(name).map(|w| PathBuf::from(&w.path))
    }

    /// The binding of workspace `name`: its path and whether it is read-only.
    pub fn workspace_binding(&self, name: &str) -> Option<&WorkspaceBinding> {
        self.raw.workspaces.iter().find(|w| w.name == name)
    }

    /// All workspaces bound to this task.
    pub fn workspaces(&self) -> &[WorkspaceBinding] {
        &self.raw.workspaces
    }
}

/// The param accessors of [`Context`] and [`GateContext`](crate::gate::GateContext), on
/// the params as the host passed them.
pub(crate) mod params {
    use super::ParamError;
    use crate::raw::ParamValue;
    use std::fmt;
    use std::str::FromStr;

    pub(crate) fn value<'a>(
        params: &'a [(String, ParamValue)],
        name: &str,
    ) -> Option<&'a ParamValue> {
        params.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub(crate) fn string<'a>(params: &'a [(String, ParamValue)], name: &str) -> Option<&'a str> {
        match value(params, name)? {
            ParamValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn array<'a>(
        params: &'a [(String, ParamValue)],
        name: &str,
    ) -> Option<&'a [String]> {
        match value(params, name)? {
            ParamValue::Array(a) => Some(a),
            _ => None,
        }
    }

    pub(crate) fn object<'a>(
        params: &'a [(String, ParamValue)],
        name: &str,
    ) -> Option<&'a [(String, String)]> {
        match value(params, name)? {
            ParamValue::Object(o) => Some(o),
            _ => None,
        }
    }

    pub(crate) fn key<'a>(
        params: &'a [(String, ParamValue)],
        name: &str,
        key: &str,
    ) -> Option<&'a str> {
        object(params, name)?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn required<'a>(
        params: &'a [(String, ParamValue)],
        name: &str,
    ) -> Result<&'a str, ParamError> {
        string(params, name).ok_or_else(|| ParamError::Missing {
            name: name.to_string(),
        })
    }

    pub(crate) fn parse_or<T>(
        params: &[(String, ParamValue)],
        name: &str,
        default: T,
    ) -> Result<T, ParamError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match string(params, name) {
            None => Ok(default),
            Some(s) => s.trim().parse().map_err(|e: T::Err| ParamError::Invalid {
                name: name.to_string(),
                value: s.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

/// A param that is missing or does not parse. Converts into [`Outcome`] as a failure
/// with exit code 2, and into [`GateOutcome`](crate::GateOutcome) as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// A required param was not given (or is not a string).
    Missing {
        /// The param's name.
        name: String,
    },
    /// A param's value is not valid.
    Invalid {
        /// The param's name.
        name: String,
        /// The value given.
        value: String,
        /// Why it is not valid.
        reason: String,
    },
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::Missing { name } => write!(f, "param `{name}` is required"),
            ParamError::Invalid {
                name,
                value,
                reason,
            } => write!(f, "param `{name}`: invalid value {value:?}: {reason}"),
        }
    }
}

impl std::error::Error for ParamError {}

impl From<ParamError> for Outcome {
    fn from(e: ParamError) -> Self {
        Outcome::failure(e.to_string(), 2)
    }
}
