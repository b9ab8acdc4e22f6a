//! `http-check`: a gate that passes while a URL answers as expected. Each sample sends one
//! request (`method`, default `GET`) to `url` and passes when the status matches
//! `expectStatus` (default `200`; a list such as `200,204` or a class such as `2xx`) and,
//! when `jsonPointer` is set, when the body is JSON with a value at that pointer (RFC 6901)
//! equal, as text, to `expectValue` (any value when `expectValue` is not set). Anything
//! else fails the sample with a message saying what was seen; a transport failure (DNS,
//! connection, TLS, a host the operator does not allow) is an `error` sample.
//!
//! ```yaml
//! - name: healthy
//!   taskRef: {apiVersion: weft.dev/v1, kind: Gate, name: http-check}
//!   params:
//!     - {name: url, value: "https://status.example.com/api/health"}
//!     - {name: jsonPointer, value: /status}
//!     - {name: expectValue, value: ok}
//! ```
//!
//! The host must allow the URL's host (`--allow-http status.example.com`).

use weft_sdk::gate::{Gate, GateContext, GateOutcome};
use weft_sdk::{Param, PluginInfo};

mod check;

use check::{Expectation, Verdict};

/// Methods the gate may use.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

struct HttpCheck;

impl Gate for HttpCheck {
    fn describe() -> PluginInfo {
        PluginInfo::new("http-check", env!("CARGO_PKG_VERSION"))
            .description(
                "Passes while a URL answers with the expected status (and JSON value at a pointer)",
            )
            // A gate produces no results: referring to one is a validation error.
            .results_fixed(true)
            .param(
                Param::string("url")
                    .description("The URL to check (http:// or https://); the host must allow it"),
            )
            .param(
                Param::string("expectStatus")
                    .description("The status that passes: a code, a list (`200,204`) or a class (`2xx`)")
                    .default("200"),
            )
            .param(
                Param::string("jsonPointer")
                    .description("A JSON pointer (`/status`) into the body; empty: the body is not read")
                    .default(""),
            )
            .param(
                Param::string("expectValue")
                    .description(
                        "The value at `jsonPointer`, compared as text (a string's contents, else its JSON); empty: any value",
                    )
                    .default(""),
            )
            .param(
                Param::string("method")
                    .description("The request method")
                    .one_of(METHODS.iter().copied())
                    .default("GET"),
            )
    }

    fn evaluate(ctx: GateContext) -> GateOutcome {
        evaluate(&ctx).unwrap_or_else(|outcome| outcome)
    }
}

fn evaluate(ctx: &GateContext) -> Result<GateOutcome, GateOutcome> {
    let url = ctx.required("url")?;
    let method = ctx.param_or("method", "GET").to_ascii_uppercase();
    let expectation = Expectation::parse(
        ctx.param_or("expectStatus", "200"),
        ctx.param_opt("jsonPointer"),
        ctx.param_opt("expectValue"),
    )
    .map_err(GateOutcome::error)?;
    let what = format!("{method} {url}");
    weft_sdk::log::debug!("sample {}: {what}", ctx.sample());
    let response =
        weft_sdk::http::request(&method, url, &[("user-agent", "weft-http-check")], None)
            .map_err(|e| GateOutcome::error(format!("{what}: {e}")))?;
    Ok(match expectation.judge(response.status, &response.body) {
        Verdict::Passed(seen) => GateOutcome::passed(format!("{what}: {seen}")),
        Verdict::Failed(seen) => GateOutcome::failed(format!("{what}: {seen}")),
    })
}

weft_sdk::export_gate!(HttpCheck);
