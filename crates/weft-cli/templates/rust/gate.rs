//! `{{name}}`: a gate that passes once the wait has lasted `seconds` (a soak time before
//! the tasks after it run).

use std::time::{Duration, SystemTime};

use weft_sdk::gate::{Gate, GateContext, GateOutcome};
use weft_sdk::{Param, PluginInfo};

struct {{class}};

impl Gate for {{class}} {
    fn describe() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .description("Passes once the wait has lasted `seconds`")
            .param(
                Param::string("seconds")
                    .description("How long to wait, in seconds")
                    .default("60"),
            )
            // A gate produces no results.
            .results_fixed(true)
    }

    fn evaluate(ctx: GateContext) -> GateOutcome {
        let seconds = match ctx.parse_or::<u64>("seconds", 60) {
            Ok(seconds) => seconds,
            Err(e) => return e.into(), // an `error` sample, counted as failed
        };
        let waited = SystemTime::now()
            .duration_since(ctx.waiting_since())
            .unwrap_or_default();
        weft_sdk::log::debug!("sample {}: waited {waited:?}", ctx.sample());
        judge(waited, Duration::from_secs(seconds))
    }
}

/// The plugin's logic, kept apart from the host calls so `cargo test` runs it natively.
fn judge(waited: Duration, needed: Duration) -> GateOutcome {
    if waited >= needed {
        GateOutcome::passed(format!("waited {}s of {}s", waited.as_secs(), needed.as_secs()))
    } else {
        GateOutcome::failed(format!(
            "{}s to go",
            needed.saturating_sub(waited).as_secs().max(1)
        ))
    }
}

weft_sdk::export_gate!({{class}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_once_the_time_is_up() {
        let needed = Duration::from_secs(10);
        assert!(judge(Duration::from_secs(10), needed).is_passed());
        let early = judge(Duration::from_secs(3), needed);
        assert!(!early.is_passed());
        assert_eq!(early.message(), "7s to go");
    }

    #[test]
    fn a_bad_param_is_an_error_sample() {
        let ctx = GateContext::from_raw(weft_sdk::gate::raw::GateContext {
            run_name: "run".into(),
            run_uid: "uid".into(),
            pipeline_name: "p".into(),
            task_name: "soak".into(),
            params: vec![(
                "seconds".into(),
                weft_sdk::raw::ParamValue::Str("soon".into()),
            )],
            sample: 0,
            waiting_since_ms: 0,
        });
        let outcome = {{class}}::evaluate(ctx);
        assert!(!outcome.is_passed());
        assert!(outcome.message().contains("seconds"), "{}", outcome.message());
    }
}
