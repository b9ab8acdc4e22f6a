//! OpenTelemetry traces of runs (OTLP over HTTP, JSON encoding): one span per run and a
//! child span per task attempt, made by an observer of the run's events. Off unless
//! configured (`--otlp-endpoint URL`, or OpenTelemetry's own `OTEL_EXPORTER_OTLP_ENDPOINT`
//! / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). Attributes are the run's name, the
//! task, its attempt, outcome and reason: never params, results, log lines or secrets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use weft_core::TaskPhase;
use weft_engine::runs::{RunEvent, RunObserver};

use crate::Failure;

/// The configured exporter.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl Traces {
    /// Traces to `endpoint` (a collector's base URL: `/v1/traces` is added), else to where
    /// `OTEL_EXPORTER_OTLP_*ENDPOINT` says; `None` when neither is set.
    pub fn configure(endpoint: Option<&str>) -> Result<Option<Traces>, Failure> {
        let from_env = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()));
        let endpoint = endpoint.map(str::trim).filter(|e| !e.is_empty());
        if endpoint.is_none() && !from_env {
            return Ok(None);
        }
        // The exporter's HTTP client needs a TLS provider: the ring one the rest of weft
        // uses (a second install is refused harmlessly).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_timeout(Duration::from_secs(5));
        if let Some(endpoint) = endpoint {
            let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Failure::invalid(format!(
                    "--otlp-endpoint {endpoint}: expected an http:// or https:// URL of an OTLP collector (e.g. http://127.0.0.1:4318)"
                )));
            }
            builder = builder.with_endpoint(url);
        }
        let exporter = builder
            .build()
            .map_err(|e| Failure::invalid(format!("cannot set up OpenTelemetry traces: {e}")))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("weft").build())
            .build();
        let tracer = provider.tracer("weft");
        Ok(Some(Traces { provider, tracer }))
    }

    /// The observer of one run: its span starts now.
    pub fn observer(&self, run: &str) -> Arc<RunTraces> {
        let span = self
            .tracer
            .span_builder(format!("run {run}"))
            .with_kind(SpanKind::Internal)
            .with_attributes([KeyValue::new("weft.run", run.to_string())])
            .start(&self.tracer);
        Arc::new(RunTraces {
            tracer: self.tracer.clone(),
            run: run.to_string(),
            state: Mutex::new(RunSpans {
                run: Context::new().with_span(span),
                tasks: HashMap::new(),
                ended: false,
            }),
        })
    }

    /// Sends what is buffered (before the process exits).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!("OpenTelemetry traces were not all sent: {e}");
        }
    }
}

struct RunSpans {
    run: Context,
    tasks: HashMap<String, opentelemetry_sdk::trace::Span>,
    ended: bool,
}

/// Turns one run's events into spans.
pub struct RunTraces {
    tracer: SdkTracer,
    run: String,
    state: Mutex<RunSpans>,
}

impl RunObserver for RunTraces {
    fn event(&self, event: RunEvent<'_>) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            RunEvent::Transition {
                task,
                is_finally,
                phase,
                outcome,
                reason,
                attempt,
                ..
            } => match phase {
                TaskPhase::Running if !state.tasks.contains_key(task) => {
                    let span = self
                        .tracer
                        .span_builder(format!("task {task}"))
                        .with_kind(SpanKind::Internal)
                        .with_attributes([
                            KeyValue::new("weft.run", self.run.clone()),
                            KeyValue::new("weft.task", task.to_string()),
                            KeyValue::new("weft.attempt", i64::from(attempt)),
                            KeyValue::new("weft.finally", is_finally),
                        ])
                        .start_with_context(&self.tracer, &state.run);
                    state.tasks.insert(task.to_string(), span);
                }
                TaskPhase::Terminal => {
                    if let Some(mut span) = state.tasks.remove(task) {
                        let outcome = outcome.map_or("Unknown", |o| o.as_str());
                        span.set_attribute(KeyValue::new("weft.outcome", outcome));
                        if !reason.is_empty() {
                            span.set_attribute(KeyValue::new("weft.reason", reason.to_string()));
                        }
                        if matches!(outcome, "Failed" | "Errored" | "TimedOut" | "Rejected") {
                            span.set_status(Status::error(outcome));
                        }
                        span.end();
                    }
                }
                _ => {}
            },
            RunEvent::Finished(summary) if !state.ended => {
                state.ended = true;
                for (_, mut span) in state.tasks.drain() {
                    span.end();
                }
                let span = state.run.span();
                span.set_attribute(KeyValue::new("weft.status", summary.status.as_str()));
                if summary.status.exit_code() != 0 {
                    span.set_status(Status::error(summary.status.as_str()));
                }
                span.end();
            }
            _ => {}
        }
    }
}

impl Drop for RunTraces {
    /// A run let go of before it ended still closes its spans.
    fn drop(&mut self) {
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !state.ended {
            for (_, mut span) in state.tasks.drain() {
                span.end();
            }
            state.run.span().end();
        }
    }
}
