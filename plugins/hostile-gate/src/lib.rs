//! `hostile-gate` (test-only, never built into weft): a gate that misbehaves in the way
//! its `mode` param names, so the host's handling of gates can be tested end to end.
//!
//! - `loop`: spins forever (the host must stop it with its CPU budget or wall clock);
//! - `memory`: allocates until the host's memory limit stops it;
//! - `http`: GETs `url`, then says `error("blocked: <error>")` or
//!   `passed("ESCAPED: HTTP <status>")`;
//! - `reveal`: reveals granted secret `secret` and logs it (the host must mask it), then
//!   passes with the secret's length;
//! - `huge`: passes with a message of `bytes` bytes (the host's result budget applies);
//! - `read`: reads file `path`, then says `error("blocked: <error>")` or
//!   `passed("ESCAPED: read <n> bytes")` (gates get no workspaces);
//! - `passed`, `failed`, `error`: says so, with `message`;
//! - `context`: passes with what it was told: `run=<run-name> uid=<run-uid>
//!   pipeline=<pipeline-name> task=<task-name> sample=<n> since=<ms> params=<names>`;
//! - an unknown mode is `error("unknown mode <mode>")`.

use std::hint::black_box;

use weft_sdk::gate::{Gate, GateContext, GateOutcome};
use weft_sdk::{Param, PluginInfo};

const MODES: &[&str] = &[
    "loop", "memory", "http", "reveal", "huge", "read", "passed", "failed", "error", "context",
];

struct HostileGate;

impl Gate for HostileGate {
    fn describe() -> PluginInfo {
        PluginInfo::new("hostile-gate", env!("CARGO_PKG_VERSION"))
            .description("Test-only: a gate that misbehaves as its `mode` param says")
            .param(Param::string("mode").one_of(MODES.iter().copied()))
            .param(
                Param::string("url")
                    .description("For `http`")
                    .default("http://example.com/"),
            )
            .param(
                Param::string("secret")
                    .description("For `reveal`")
                    .default("not-granted"),
            )
            .param(
                Param::string("bytes")
                    .description("For `huge`")
                    .default("1048576"),
            )
            .param(
                Param::string("path")
                    .description("For `read`")
                    .default("/etc/passwd"),
            )
            .param(
                Param::string("message")
                    .description("For `passed`, `failed`, `error`")
                    .default(""),
            )
    }

    fn evaluate(ctx: GateContext) -> GateOutcome {
        let message = ctx.param_or("message", "").to_string();
        match ctx.param_or("mode", "") {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = vec![0u8; 8 << 20];
                    for byte in chunk.iter_mut().step_by(4096) {
                        *byte = 1;
                    }
                    hoard.push(black_box(chunk));
                }
            }
            "http" => match weft_sdk::http::get(ctx.param_or("url", "")) {
                Ok((status, _)) => GateOutcome::passed(format!("ESCAPED: HTTP {status}")),
                Err(e) => GateOutcome::error(format!("blocked: {e}")),
            },
            "reveal" => match weft_sdk::secrets::get(ctx.param_or("secret", "")) {
                Ok(secret) => {
                    let value = secret.reveal();
                    weft_sdk::log::info!("the secret is {value}");
                    println!("stdout says {value}");
                    GateOutcome::passed(format!("revealed {} characters", value.chars().count()))
                }
                Err(e) => GateOutcome::error(format!("blocked: {e}")),
            },
            "huge" => match ctx.parse_or::<usize>("bytes", 1 << 20) {
                Ok(bytes) => GateOutcome::passed("x".repeat(bytes)),
                Err(e) => e.into(),
            },
            "read" => match std::fs::read(ctx.param_or("path", "")) {
                Ok(bytes) => GateOutcome::passed(format!("ESCAPED: read {} bytes", bytes.len())),
                Err(e) => GateOutcome::error(format!("blocked: {e}")),
            },
            "passed" => GateOutcome::passed(message),
            "failed" => GateOutcome::failed(message),
            "error" => GateOutcome::error(message),
            "context" => {
                let names: Vec<&str> = ctx.params().iter().map(|(n, _)| n.as_str()).collect();
                GateOutcome::passed(format!(
                    "run={} uid={} pipeline={} task={} sample={} since={} params={}",
                    ctx.run_name(),
                    ctx.run_uid(),
                    ctx.pipeline_name(),
                    ctx.task_name(),
                    ctx.sample(),
                    ctx.waiting_since_ms(),
                    names.join(",")
                ))
            }
            other => GateOutcome::error(format!("unknown mode {other}")),
        }
    }
}

weft_sdk::export_gate!(HostileGate);
