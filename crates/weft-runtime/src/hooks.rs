//! What the host is told about an invocation as it goes, for metrics and quotas: plain
//! callbacks, so nothing here depends on the rest of the runtime.

use std::sync::Arc;
use std::time::Duration;

/// Told a duration about an invocation: how long instantiating a task's component took
/// (a task of steps instantiates one per step), or how much guest CPU it used. Called on
/// the guest's thread; it should be quick.
pub type Instantiated = Arc<dyn Fn(Duration) + Send + Sync>;
