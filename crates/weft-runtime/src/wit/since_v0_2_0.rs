//! `weft:plugin@0.2.0`: the host bindings generated from `wit/` for the `task`,
//! `reporter`, `form-decorator` and `gate` worlds, the typed calls of their exports, and
//! every conversion between the generated types and weft-core's plain data
//! (`weft_core::contract`), both directions. Callers hand in and get back plain data only.
//!
//! 0.2.0 is 0.1.0 plus the `gate` world. The `types` interface is unchanged and has no
//! functions, so it is shared with [`super::since_v0_1_0`] through `with:` (its types and
//! the task world's conversions are that module's). `log`, `secrets` and `checkpoint` are
//! unchanged too, but a component built against 0.2.0 imports them as
//! `weft:plugin/log@0.2.0`, ..., which the linker cannot serve with the 0.1.0 definitions
//! (0.x versions of different minors are not semver-compatible), so they are generated
//! here as well and the capability modules implement both versions' `Host` traits.

use std::collections::BTreeMap;

use wasmtime::Store;
use wasmtime::component::InstancePre;
use weft_core::contract::{
    Decorated, DecoratorInfo, Delivery, GateContext, GateResult, ParamValue, PluginInfo,
    ReportEvent, ReportStatus, TaskContext, TaskEnding, WorkspaceBinding,
};

use super::Returned;
use super::since_v0_1_0::{
    context_to_wit, info_from_wit, outcome_from_wit, value_from_wit, value_len, value_to_wit,
};

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "task",
    imports: { default: trappable },
    exports: { default: async },
    with: {
        "weft:plugin/types": crate::wit::since_v0_1_0::weft::plugin::types,
        "weft:plugin/secrets.secret": crate::secret::SecretHandle,
    },
});

/// The `reporter` world, sharing the task world's `log`, `secrets` and `types` so one
/// linker serves every kind of plugin.
pub(crate) mod reporter {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "reporter",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "weft:plugin/types": crate::wit::since_v0_1_0::weft::plugin::types,
            "weft:plugin/log": crate::wit::since_v0_2_0::weft::plugin::log,
            "weft:plugin/secrets": crate::wit::since_v0_2_0::weft::plugin::secrets,
        },
    });
}

/// The `form-decorator` world, sharing interfaces like [`reporter`].
pub(crate) mod decorator {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "form-decorator",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "weft:plugin/types": crate::wit::since_v0_1_0::weft::plugin::types,
            "weft:plugin/log": crate::wit::since_v0_2_0::weft::plugin::log,
            "weft:plugin/secrets": crate::wit::since_v0_2_0::weft::plugin::secrets,
        },
    });
}

/// The `gate` world (new in 0.2.0), sharing interfaces like [`reporter`].
pub(crate) mod gate {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "gate",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "weft:plugin/types": crate::wit::since_v0_1_0::weft::plugin::types,
            "weft:plugin/log": crate::wit::since_v0_2_0::weft::plugin::log,
            "weft:plugin/secrets": crate::wit::since_v0_2_0::weft::plugin::secrets,
        },
    });
}

use decorator::exports::weft::plugin::form_decorator_plugin as wit_decorator;
use gate::exports::weft::plugin::gate_plugin as wit_gate;
use reporter::exports::weft::plugin::reporter_plugin as wit_reporter;
use weft::plugin::types as wit;

// ---- typed calls: instantiate `pre` in `store`, call one export, convert ----

/// `task-plugin.describe`.
pub(crate) async fn describe_task<T: Send + 'static>(
    store: &mut Store<T>,
    pre: InstancePre<T>,
) -> wasmtime::Result<PluginInfo> {
    let task = TaskPre::new(pre)?.instantiate_async(&mut *store).await?;
    let info = task
        .weft_plugin_task_plugin()
        .call_describe(&mut *store)
        .await?;
    Ok(info_from_wit(info))
}

/// `task-plugin.run`: the task's ending and results, as it returned them; the bytes are
/// the ending's message and the results' names and values. `instantiated` is told how
/// long instantiating took.
pub(crate) async fn run_task<T: Send + 'static>(
    store: &mut Store<T>,
    pre: InstancePre<T>,
    context: &TaskContext,
    params: &BTreeMap<String, ParamValue>,
    workspaces: &[WorkspaceBinding],
    instantiated: Option<&crate::hooks::Instantiated>,
) -> wasmtime::Result<Returned<(TaskEnding, BTreeMap<String, String>)>> {
    let context = context_to_wit(context, params, workspaces);
    let task = super::timed(
        instantiated,
        TaskPre::new(pre)?.instantiate_async(&mut *store),
    )
    .await?;
    let outcome = task
        .weft_plugin_task_plugin()
        .call_run(&mut *store, &context)
        .await?;
    Ok(outcome_from_wit(outcome))
}

/// `reporter-plugin.describe`.
pub(crate) async fn describe_reporter<T: Send + 'static>(
    store: &mut Store<T>,
    pre: InstancePre<T>,
) -> wasmtime::Result<PluginInfo> {
    let reporter = reporter::ReporterPre::new(pre)?
        .instantiate_async(&mut *store)
        .await?;
    let info = reporter
        .weft_plugin_reporter_plugin()
        .call_describe(&mut *store)
        .await?;
    Ok(info_from_wit(info))
}

/// `reporter-plugin.report`.
pub(crate) async fn report<T: Send + 'static>(
    store: &mut Store<T>,
    pre: InstancePre<T>,
    event: &ReportEvent,
) -> wasmtime::Result<Delivery> {
    let event = event_to_wit(event);
    let reporter = reporter::ReporterPre::new(pre)?
        .instantiate_async(&mut *store)
        .await?;
    let delivery = reporter
        .weft_plugin_reporter_plugin()
        .call_report(&mut *store, &event)
        .await?;
    Ok(delivery_from_wit(delivery))
}

/// `form-decorator-plugin.describe`.
pub(crate) async fn describe_decorator<T: Send + 'static>(
    store: &mut Store<T>,
    pre: InstancePre<T>,
) -> wasmtime::Result<DecoratorInfo> {
    let decorator = decorator::FormDecoratorPre::new(pre)?
        .instantiate_async(&mut *store)
        .await?;
    let raw = decorator
        .weft_plugin_form_decorator_plugin()
        .call_describe(&mut *store)
        .await?;
    Ok(DecoratorInfo {
        info: info_from_wit(raw.info),
        input_schema: raw.input_schema,
    })
}

/// `form-decorator-plugin.decorate`: `Err(message)` inside is the decorator refusing; the
/// bytes are the decoration's params and secrets (names and values), or the message.
pub(crate) async fn decorate<T: Send + 'static>(
    store: &mut Store<T>,
    pre: InstancePre<T>,
    form_state: &BTreeMap<String, ParamValue>,
    input: &str,
) -> wasmtime::Result<Returned<Result<Decorated, String>>> {
    let state: Vec<(String, wit::ParamValue)> = form_state
        .iter()
        .map(|(name, value)| (name.clone(), value_to_wit(value)))
        .collect();
    let decorator = decorator::FormDecoratorPre::new(pre)?
        .instantiate_async(&mut *store)
        .await?;
    let decorated = decorator
        .weft_plugin_form_decorator_plugin()
        .call_decorate(&mut *store, &state, input)
        .await?;
    let bytes = match &decorated {
        Ok(decoration) => {
            decoration
                .params
                .iter()
                .map(|(name, value)| name.len() + value_len(value))
                .sum::<usize>()
                + decoration
                    .secrets
                    .iter()
                    .map(|(name, value)| name.len() + value.len())
                    .sum::<usize>()
        }
        Err(message) => message.len(),
    };
    Ok(Returned {
        value: decorated.map(decoration_from_wit),
        bytes,
    })
}

/// `gate-plugin.describe`.
pub(crate) async fn describe_gate<T: Send + 'static>(
    store: &mut Store<T>,
    pre: InstancePre<T>,
) -> wasmtime::Result<PluginInfo> {
    let gate = gate::GatePre::new(pre)?
        .instantiate_async(&mut *store)
        .await?;
    let info = gate
        .weft_plugin_gate_plugin()
        .call_describe(&mut *store)
        .await?;
    Ok(info_from_wit(info))
}

/// `gate-plugin.evaluate`: what the sample found; the bytes are its message.
pub(crate) async fn evaluate<T: Send + 'static>(
    store: &mut Store<T>,
    pre: InstancePre<T>,
    context: &GateContext,
    params: &BTreeMap<String, ParamValue>,
) -> wasmtime::Result<Returned<GateResult>> {
    let context = gate_context_to_wit(context, params);
    let gate = gate::GatePre::new(pre)?
        .instantiate_async(&mut *store)
        .await?;
    let result = gate
        .weft_plugin_gate_plugin()
        .call_evaluate(&mut *store, &context)
        .await?;
    Ok(gate_result_from_wit(result))
}

// ---- conversions (those of the shared `types` are since_v0_1_0's) ----

fn gate_context_to_wit(
    ctx: &GateContext,
    params: &BTreeMap<String, ParamValue>,
) -> wit_gate::GateContext {
    wit_gate::GateContext {
        run_name: ctx.run_name.clone(),
        run_uid: ctx.run_uid.clone(),
        pipeline_name: ctx.pipeline_name.clone(),
        task_name: ctx.task_name.clone(),
        params: params
            .iter()
            .map(|(name, value)| (name.clone(), value_to_wit(value)))
            .collect(),
        sample: ctx.sample,
        waiting_since_ms: ctx.waiting_since_ms,
    }
}

fn gate_result_from_wit(result: wit_gate::GateResult) -> Returned<GateResult> {
    let (value, bytes) = match result {
        wit_gate::GateResult::Passed(message) => {
            let bytes = message.len();
            (GateResult::Passed(message), bytes)
        }
        wit_gate::GateResult::Failed(message) => {
            let bytes = message.len();
            (GateResult::Failed(message), bytes)
        }
        wit_gate::GateResult::Error(message) => {
            let bytes = message.len();
            (GateResult::Error(message), bytes)
        }
    };
    Returned { value, bytes }
}

fn status_to_wit(status: ReportStatus) -> wit_reporter::Status {
    use wit_reporter::Status;
    match status {
        ReportStatus::Pending => Status::Pending,
        ReportStatus::Running => Status::Running,
        ReportStatus::Succeeded => Status::Succeeded,
        ReportStatus::SucceededWithWarnings => Status::SucceededWithWarnings,
        ReportStatus::Completed => Status::Completed,
        ReportStatus::Failed => Status::Failed,
        ReportStatus::TimedOut => Status::TimedOut,
        ReportStatus::Errored => Status::Errored,
        ReportStatus::Rejected => Status::Rejected,
        ReportStatus::Cancelled => Status::Cancelled,
        ReportStatus::Skipped => Status::Skipped,
    }
}

fn event_to_wit(event: &ReportEvent) -> wit_reporter::RunEvent {
    wit_reporter::RunEvent {
        run_name: event.run_name.clone(),
        run_uid: event.run_uid.clone(),
        pipeline_name: event.pipeline_name.clone(),
        status: status_to_wit(event.status),
        reason: event.reason.clone(),
        halted_by: event.halted_by.as_ref().map(|halt| wit_reporter::Halt {
            task: halt.task.clone(),
            message: halt.message.clone(),
        }),
        message: event.message.clone(),
        description: event.description.clone(),
        task: event.task.as_ref().map(|task| wit_reporter::TaskEvent {
            name: task.name.clone(),
            status: status_to_wit(task.status),
            reason: task.reason.clone(),
            message: task.message.clone(),
        }),
        config: event.config.clone(),
        attempt: event.attempt,
    }
}

fn delivery_from_wit(delivery: wit_reporter::Delivery) -> Delivery {
    match delivery {
        wit_reporter::Delivery::Done => Delivery::Done,
        wit_reporter::Delivery::RetryAfter(ms) => Delivery::RetryAfter(ms),
        wit_reporter::Delivery::Permanent(message) => Delivery::Permanent(message),
    }
}

fn decoration_from_wit(decoration: wit_decorator::Decoration) -> Decorated {
    Decorated {
        params: decoration
            .params
            .into_iter()
            .map(|(name, value)| (name, value_from_wit(value)))
            .collect(),
        secrets: decoration.secrets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every plain status has its WIT twin of the same name.
    #[test]
    fn every_report_status_maps_to_the_wit_status_of_its_name() {
        for status in ReportStatus::ALL {
            let wit = format!("{:?}", status_to_wit(status));
            assert_eq!(wit, format!("Status::{}", status.as_str()));
        }
    }

    #[test]
    fn gate_context_carries_everything_and_results_count_their_message() {
        let ctx = GateContext {
            run_name: "r".into(),
            run_uid: "u".into(),
            pipeline_name: "p".into(),
            task_name: "healthy".into(),
            sample: 3,
            waiting_since_ms: 1_700_000_000_000,
        };
        let params = BTreeMap::from([("url".to_string(), ParamValue::Str("x".into()))]);
        let wit = gate_context_to_wit(&ctx, &params);
        assert_eq!(
            (
                wit.run_name.as_str(),
                wit.run_uid.as_str(),
                wit.pipeline_name.as_str()
            ),
            ("r", "u", "p")
        );
        assert_eq!((wit.task_name.as_str(), wit.sample), ("healthy", 3));
        assert_eq!(wit.waiting_since_ms, 1_700_000_000_000);
        assert_eq!(wit.params.len(), 1);
        let cases = [
            (
                wit_gate::GateResult::Passed("ok".into()),
                GateResult::Passed("ok".into()),
            ),
            (
                wit_gate::GateResult::Failed("no".into()),
                GateResult::Failed("no".into()),
            ),
            (
                wit_gate::GateResult::Error("bad".into()),
                GateResult::Error("bad".into()),
            ),
        ];
        for (wit, plain) in cases {
            let returned = gate_result_from_wit(wit);
            assert_eq!(
                returned.bytes,
                match &plain {
                    GateResult::Passed(m) | GateResult::Failed(m) | GateResult::Error(m) => m.len(),
                }
            );
            assert_eq!(returned.value, plain);
        }
    }
}
