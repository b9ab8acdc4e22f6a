//! `weft:plugin@0.1.0`: the host bindings generated from `wit/since_v0.1.0/` (the 0.1.0
//! contract as released) for the `task`, `reporter` and `form-decorator` worlds, the typed
//! calls of their exports, and every conversion between the generated types and
//! weft-core's plain data (`weft_core::contract`), both directions. Callers hand in and get
//! back plain data only.
//!
//! The `types` interface did not change in 0.2.0, so `since_v0_2_0` shares this module's
//! types and the conversions of the task world (`pub(super)` below).

use std::collections::BTreeMap;

use wasmtime::Store;
use wasmtime::component::InstancePre;
use weft_core::contract::{
    Capabilities, Decorated, DecoratorInfo, Delivery, ParamSpec, ParamType, ParamValue, PluginInfo,
    ReportEvent, ReportStatus, ResultSpec, TaskContext, TaskEnding, WorkspaceBinding,
    WorkspaceSpec,
};

use super::Returned;

wasmtime::component::bindgen!({
    path: "../../wit/since_v0.1.0",
    world: "task",
    imports: { default: trappable },
    exports: { default: async },
    with: {
        "weft:plugin/secrets.secret": crate::secret::SecretHandle,
    },
});

/// The `reporter` world, sharing the task world's `log`, `secrets` and `types` so one
/// linker serves every kind of plugin.
pub(crate) mod reporter {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.1.0",
        world: "reporter",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "weft:plugin/types": crate::wit::since_v0_1_0::weft::plugin::types,
            "weft:plugin/log": crate::wit::since_v0_1_0::weft::plugin::log,
            "weft:plugin/secrets": crate::wit::since_v0_1_0::weft::plugin::secrets,
        },
    });
}

/// The `form-decorator` world, sharing interfaces like [`reporter`].
pub(crate) mod decorator {
    wasmtime::component::bindgen!({
        path: "../../wit/since_v0.1.0",
        world: "form-decorator",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "weft:plugin/types": crate::wit::since_v0_1_0::weft::plugin::types,
            "weft:plugin/log": crate::wit::since_v0_1_0::weft::plugin::log,
            "weft:plugin/secrets": crate::wit::since_v0_1_0::weft::plugin::secrets,
        },
    });
}

use decorator::exports::weft::plugin::form_decorator_plugin as wit_decorator;
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

// ---- conversions ----

pub(super) fn value_to_wit(value: &ParamValue) -> wit::ParamValue {
    match value {
        ParamValue::Str(s) => wit::ParamValue::Str(s.clone()),
        ParamValue::Array(items) => wit::ParamValue::Array(items.clone()),
        ParamValue::Object(map) => {
            wit::ParamValue::Object(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        }
    }
}

pub(super) fn value_len(value: &wit::ParamValue) -> usize {
    match value {
        wit::ParamValue::Str(s) => s.len(),
        wit::ParamValue::Array(items) => items.iter().map(String::len).sum(),
        wit::ParamValue::Object(pairs) => pairs.iter().map(|(k, v)| k.len() + v.len()).sum(),
    }
}

pub(super) fn value_from_wit(value: wit::ParamValue) -> ParamValue {
    match value {
        wit::ParamValue::Str(s) => ParamValue::Str(s),
        wit::ParamValue::Array(items) => ParamValue::Array(items),
        wit::ParamValue::Object(pairs) => ParamValue::Object(pairs.into_iter().collect()),
    }
}

pub(super) fn context_to_wit(
    ctx: &TaskContext,
    params: &BTreeMap<String, ParamValue>,
    workspaces: &[WorkspaceBinding],
) -> wit::TaskContext {
    wit::TaskContext {
        run_name: ctx.run_name.clone(),
        run_uid: ctx.run_uid.clone(),
        pipeline_name: ctx.pipeline_name.clone(),
        task_name: ctx.task_name.clone(),
        retry_count: ctx.retry_count,
        retries: ctx.retries,
        params: params
            .iter()
            .map(|(name, value)| (name.clone(), value_to_wit(value)))
            .collect(),
        workspaces: workspaces
            .iter()
            .map(|w| wit::WorkspaceBinding {
                name: w.name.clone(),
                path: w.path.clone(),
                read_only: w.read_only,
            })
            .collect(),
    }
}

pub(super) fn info_from_wit(info: wit::PluginInfo) -> PluginInfo {
    PluginInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        params: info
            .params
            .into_iter()
            .map(|p| ParamSpec {
                name: p.name,
                description: p.description,
                param_type: match p.type_ {
                    wit::ParamType::Str => ParamType::String,
                    wit::ParamType::Array => ParamType::Array,
                    wit::ParamType::Object => ParamType::Object,
                },
                default: p.default.map(value_from_wit),
                allowed: p.enum_,
            })
            .collect(),
        results: info
            .results
            .into_iter()
            .map(|r| ResultSpec {
                name: r.name,
                description: r.description,
            })
            .collect(),
        results_fixed: info.results_fixed,
        accepts_any_params: false,
        capabilities: Capabilities {
            secrets: info.capabilities.secrets,
            http_hosts: info.capabilities.http_hosts,
            workspaces: info
                .capabilities
                .workspaces
                .into_iter()
                .map(|w| WorkspaceSpec {
                    name: w.name,
                    description: w.description,
                    read_only: w.read_only,
                    optional: w.optional,
                })
                .collect(),
        },
    }
}

pub(super) fn outcome_from_wit(
    outcome: wit::TaskOutcome,
) -> Returned<(TaskEnding, BTreeMap<String, String>)> {
    let message_len = match &outcome.ending {
        wit::Ending::Success => 0,
        wit::Ending::Warning(m) | wit::Ending::Halt(m) | wit::Ending::Skip(m) => m.len(),
        wit::Ending::Failure(f) => f.message.len(),
    };
    let bytes = message_len
        + outcome
            .results
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
    let ending = match outcome.ending {
        wit::Ending::Success => TaskEnding::Success,
        wit::Ending::Warning(message) => TaskEnding::Warning { message },
        wit::Ending::Halt(message) => TaskEnding::Halt { message },
        wit::Ending::Skip(message) => TaskEnding::Skip { message },
        wit::Ending::Failure(f) => TaskEnding::Failure {
            message: f.message,
            exit_code: f.exit_code,
        },
    };
    Returned {
        value: (ending, outcome.results.into_iter().collect()),
        bytes,
    }
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
    fn param_values_round_trip() {
        let values = [
            ParamValue::Str("a".into()),
            ParamValue::Array(vec!["x".into(), "y".into()]),
            ParamValue::Object(BTreeMap::from([("k".into(), "v".into())])),
        ];
        for value in values {
            assert_eq!(value_from_wit(value_to_wit(&value)), value);
        }
    }
}
