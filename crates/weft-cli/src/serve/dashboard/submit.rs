//! A new run of a pipeline from the page: a form generated from the pipeline's declared
//! params (strings, with their `enum` as a choice; arrays one item per line; objects one
//! field per property; defaults filled in), submitted through the API's own submission
//! (`run_api::submit_request`: the same spec, policy, form decorators and validation).
//!
//! The pipeline is the one a stored run ran (its text as submitted), or one pasted into
//! `/new` (the server keeps no catalogue of pipelines).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use axum::http::StatusCode;
use weft_core::contract::{ParamType, ParamValue};
use weft_core::model::ParamDecl;

use super::html::{escape, segment};
use crate::serve::Refusal;
use crate::serve::run_api::SubmitRequest;

/// A run's pipeline, ready to be submitted again.
pub struct Source {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its declared params.
    pub params: Vec<ParamDecl>,
    request: SubmitRequest,
}

/// The pipeline run `id` ran, as submitted; refused when it cannot be submitted again
/// from a form (its pipeline no longer parses, or it needs other files).
pub fn source(store: &dyn weft_store::RunStore, id: &str) -> Result<Source, Refusal> {
    let record = store
        .run(id)
        .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()))?
        .ok_or_else(|| {
            Refusal::new(StatusCode::NOT_FOUND, "not-found", format!("no run `{id}`"))
        })?;
    let stored =
        weft_engine::runs::StoredRun::read(id, &record.submitted).map_err(|_| unsupported(id))?;
    if !stored.spec.pipeline.referenced.is_empty() {
        return Err(unsupported(id));
    }
    let pipeline = weft_engine::runs::stored_pipeline(&record).ok_or_else(|| unsupported(id))?;
    Ok(Source {
        pipeline: record.submitted.pipeline_name.clone(),
        params: pipeline.params,
        request: SubmitRequest::of_pipeline(
            record.submitted.pipeline_source.clone(),
            stored.spec.pipeline.file.clone(),
            BTreeMap::new(),
            stored.spec.pipeline.plugins.clone(),
        ),
    })
}

/// Bytes of pipeline text the paste form takes (the API takes larger ones).
const MAX_PASTED: usize = 512 * 1024;

/// A pasted pipeline (`file` names it in diagnostics): its params, or the problems that
/// keep it from parsing (as a `400` with the diagnostics).
pub fn pasted(text: &str, file: &str) -> Result<Source, Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "paste a pipeline first",
        ));
    }
    if text.len() > MAX_PASTED {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!(
                "a pasted pipeline is at most {MAX_PASTED} bytes: submit larger ones through POST /api/v1/runs"
            ),
        ));
    }
    let spec = weft_engine::runs::RunSpec::new(text.to_string(), file.to_string());
    let parsed = spec.pipeline.parse();
    let pipeline = match parsed.pipeline {
        Some(pipeline) if parsed.diagnostics.is_empty() => pipeline,
        _ => {
            let mut refusal = Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "the pipeline does not parse",
            );
            refusal.document = Some(crate::diagnostics::to_json(&parsed.diagnostics));
            return Err(refusal);
        }
    };
    Ok(Source {
        pipeline: pipeline.name.value.clone(),
        params: pipeline.params,
        request: SubmitRequest::of_pipeline(
            text.to_string(),
            file.to_string(),
            BTreeMap::new(),
            BTreeMap::new(),
        ),
    })
}

fn unsupported(id: &str) -> Refusal {
    Refusal::new(
        StatusCode::BAD_REQUEST,
        "unsupported",
        format!(
            "the pipeline of `{id}` cannot be submitted again from the page (it uses other files, or no longer parses): submit it through POST /api/v1/runs"
        ),
    )
}

fn default_text(param: &ParamDecl) -> (String, Vec<String>, BTreeMap<String, String>) {
    match param.default.as_ref().map(|d| &d.value) {
        Some(ParamValue::Str(s)) => (s.clone(), Vec::new(), BTreeMap::new()),
        Some(ParamValue::Array(items)) => (String::new(), items.clone(), BTreeMap::new()),
        Some(ParamValue::Object(map)) => (String::new(), Vec::new(), map.clone()),
        None => Default::default(),
    }
}

/// The form's fields for `params`.
pub fn fields(params: &[ParamDecl]) -> String {
    let mut out = String::new();
    for param in params {
        let name = &param.name.value;
        let (text, items, map) = default_text(param);
        let _ = write!(
            out,
            "<fieldset class=\"param\"><legend>{} <span class=\"muted\">{}{}</span></legend>",
            escape(name),
            match param.param_type {
                ParamType::String => "string",
                ParamType::Array => "array, one item per line",
                ParamType::Object => "object",
            },
            if param.default.is_some() {
                ""
            } else {
                ", required"
            }
        );
        if !param.description.is_empty() {
            let _ = write!(out, "<p class=\"muted\">{}</p>", escape(&param.description));
        }
        let field = escape(&format!("p.{name}"));
        match param.param_type {
            ParamType::String if !param.allowed.is_empty() => {
                let _ = write!(out, "<select name=\"{field}\">");
                for value in &param.allowed {
                    let _ = write!(
                        out,
                        "<option value=\"{v}\"{sel}>{v}</option>",
                        v = escape(value),
                        sel = if *value == text { " selected" } else { "" }
                    );
                }
                out.push_str("</select>");
            }
            ParamType::String => {
                let _ = write!(
                    out,
                    "<input name=\"{field}\" value=\"{}\" size=\"50\">",
                    escape(&text)
                );
            }
            ParamType::Array => {
                let _ = write!(
                    out,
                    "<textarea name=\"{field}\" rows=\"3\" cols=\"50\">{}</textarea>",
                    escape(&items.join("\n"))
                );
            }
            ParamType::Object => {
                for key in &param.properties {
                    let _ = write!(
                        out,
                        "<label>{k} <input name=\"{f}\" value=\"{v}\"></label> ",
                        k = escape(key),
                        f = escape(&format!("p.{name}.{key}")),
                        v = escape(map.get(key).map(String::as_str).unwrap_or_default())
                    );
                }
            }
        }
        out.push_str("</fieldset>");
    }
    out
}

/// The form's action for run `id`.
pub fn action(id: &str) -> String {
    format!("/runs/{}/new", segment(id))
}

/// The submission of `source` with the posted `form`'s params. A field left empty is
/// left out (the param's default applies, or validation says it is missing).
pub fn request(source: Source, form: &HashMap<String, String>) -> SubmitRequest {
    let mut params = BTreeMap::new();
    for param in &source.params {
        let name = &param.name.value;
        let posted = form.get(&format!("p.{name}")).map(String::as_str);
        let value = match param.param_type {
            ParamType::String => posted
                .filter(|v| !v.is_empty())
                .map(|v| ParamValue::Str(v.to_string())),
            ParamType::Array => posted.filter(|v| !v.trim().is_empty()).map(|v| {
                ParamValue::Array(
                    v.lines()
                        .map(|l| l.trim_end_matches('\r').to_string())
                        .filter(|l| !l.is_empty())
                        .collect(),
                )
            }),
            ParamType::Object => {
                let map: BTreeMap<String, String> = param
                    .properties
                    .iter()
                    .filter_map(|key| {
                        form.get(&format!("p.{name}.{key}"))
                            .filter(|v| !v.is_empty())
                            .map(|v| (key.clone(), v.clone()))
                    })
                    .collect();
                (!map.is_empty()).then_some(ParamValue::Object(map))
            }
        };
        if let Some(value) = value {
            params.insert(name.clone(), value);
        }
    }
    let mut request = source.request;
    request.set_params(params);
    request
}
