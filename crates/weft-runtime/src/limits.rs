//! Per-task limits and the names of the limits a task can hit.

use std::time::Duration;

/// The resource limits one task invocation runs under.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Guest CPU time, measured in epoch ticks of [`crate::EPOCH_TICK`].
    pub cpu_budget: Duration,
    /// Wall-clock time for the whole invocation (instantiate + call).
    pub wall_clock: Option<Duration>,
    /// Linear memory, in bytes, summed over the instance's memories.
    pub memory_bytes: usize,
    /// Table elements, per table.
    pub table_elements: usize,
    /// Bytes the guest may pass to the host in one call.
    pub hostcall_fuel: usize,
    /// Bytes of log output (log interface + stdout + stderr).
    pub log_bytes: usize,
    /// Bytes of results and ending messages the task may return.
    pub result_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_budget: Duration::from_secs(300),
            wall_clock: None,
            memory_bytes: 256 << 20,
            table_elements: 100_000,
            hostcall_fuel: 8 << 20,
            log_bytes: 16 << 20,
            result_bytes: 1 << 20,
        }
    }
}

/// A limit a task hit. The [`LimitKind::reason`] is the task's machine-readable reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The CPU budget was spent.
    Cpu,
    /// The wall-clock timeout passed.
    WallClock,
    /// Linear memory or a table would have grown past its limit.
    Memory,
    /// The wasm stack overflowed.
    Stack,
    /// Too many bytes in one host call.
    HostcallFuel,
    /// Too much log output.
    LogBytes,
    /// Results or messages too large.
    ResultBytes,
}

impl LimitKind {
    /// The reason string recorded on the task.
    pub fn reason(self) -> &'static str {
        match self {
            LimitKind::Cpu => "CpuBudgetExceeded",
            LimitKind::WallClock => "TimedOut",
            LimitKind::Memory => "MemoryLimitExceeded",
            LimitKind::Stack => "StackOverflow",
            LimitKind::HostcallFuel => "HostcallFuelExhausted",
            LimitKind::LogBytes => "LogBudgetExceeded",
            LimitKind::ResultBytes => "ResultSizeExceeded",
        }
    }
}

/// Tracks memory and table growth against [`Limits`], remembering which limit was hit
/// so the task's reason can name it (a bare trap does not say why).
pub(crate) struct GrowthLimiter {
    pub(crate) memory_bytes: usize,
    pub(crate) table_elements: usize,
    pub(crate) hit: Option<LimitKind>,
}

impl wasmtime::ResourceLimiter for GrowthLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = Some(LimitKind::Memory);
            wasmtime::bail!(
                "memory limit exceeded: the task asked for {desired} bytes, its limit is {} bytes",
                self.memory_bytes
            );
        }
        Ok(maximum.is_none_or(|max| desired <= max))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.hit = Some(LimitKind::Memory);
            wasmtime::bail!(
                "table limit exceeded: the task asked for {desired} elements, its limit is {}",
                self.table_elements
            );
        }
        Ok(maximum.is_none_or(|max| desired <= max))
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}
