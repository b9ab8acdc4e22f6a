//! `exit`: ends with whatever outcome, exit code, results and delay it is told to. Used to
//! exercise the engine's handling of task endings, retries and timeouts, and (with its
//! optional workspace `ws`) what a workspace holds between tasks.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use weft_sdk::{Context, Outcome, Param, PluginInfo, Task, Workspace};

struct Exit;

impl Task for Exit {
    fn describe() -> PluginInfo {
        PluginInfo::new("exit", env!("CARGO_PKG_VERSION"))
            .description(
                "Ends with the given outcome, exit code and results, after an optional sleep",
            )
            .param(
                Param::string("code")
                    .description(
                        "Exit code; without `outcome`, 0 is success and anything else a failure",
                    )
                    .default("0"),
            )
            .param(
                Param::string("outcome")
                    .description("How to end; empty (the default) decides by `code`")
                    .one_of(["", "success", "warning", "halt", "skip", "failure"])
                    .default(""),
            )
            .param(
                Param::string("message")
                    .description("Message of a warning, halt, skip or failure")
                    .default(""),
            )
            .param(
                Param::string("sleepMs")
                    .description("Milliseconds to sleep before ending")
                    .default("0"),
            )
            .param(
                Param::string("results")
                    .description("Results to emit: `key=value` pairs separated by commas")
                    .default(""),
            )
            .param(
                Param::string("checkpoint")
                    .description(
                        "When set, the sleep is work done once per run under this checkpoint key: \
                         a re-run finds it stored and skips it (result `checkpoint` says which)",
                    )
                    .default(""),
            )
            .param(
                Param::string("failTimes")
                    .description("The first N attempts fail with exit code 1")
                    .default("0"),
            )
            .param(
                Param::string("writeFile")
                    .description(
                        "`PATH=CONTENT`: writes CONTENT to PATH (relative, parents created) in \
                         workspace `ws` before ending",
                    )
                    .default(""),
            )
            .param(
                Param::string("requireFile")
                    .description(
                        "`PATH` or `PATH=CONTENT`: fails (exit code 4) unless PATH exists in \
                         workspace `ws` (and holds exactly CONTENT)",
                    )
                    .default(""),
            )
            .workspace(
                Workspace::new("ws")
                    .description("For `writeFile` and `requireFile`")
                    .optional(),
            )
            .results_fixed(false)
    }

    fn run(ctx: Context) -> Outcome {
        run(&ctx).unwrap_or_else(|e| e)
    }
}

fn run(ctx: &Context) -> Result<Outcome, Outcome> {
    let code: i32 = ctx.parse_or("code", 0)?;
    let sleep_ms: u64 = ctx.parse_or("sleepMs", 0)?;
    let fail_times: u32 = ctx.parse_or("failTimes", 0)?;
    let message = ctx.param_or("message", "");
    let results = parse_results(ctx.param_or("results", ""))?;
    require_file(ctx, ctx.param_or("requireFile", ""))?;
    write_file(ctx, ctx.param_or("writeFile", ""))?;

    let checkpoint_key = ctx.param_or("checkpoint", "");
    let mut results = results;
    if !checkpoint_key.is_empty() {
        let mut worked = false;
        weft_sdk::checkpoint(checkpoint_key, || -> Result<String, String> {
            std::thread::sleep(Duration::from_millis(sleep_ms));
            worked = true;
            Ok("done".to_string())
        })
        .map_err(|e| Outcome::failure(format!("checkpoint `{checkpoint_key}`: {e}"), 1))?;
        let how = if worked { "computed" } else { "hit" };
        weft_sdk::log::info!("checkpoint {checkpoint_key}: {how}");
        results.push(("checkpoint".to_string(), how.to_string()));
    } else if sleep_ms > 0 {
        std::thread::sleep(Duration::from_millis(sleep_ms));
    }

    let attempt = ctx.retry_count();
    if attempt < fail_times {
        let k = attempt + 1;
        return Ok(
            Outcome::failure(format!("failing attempt {k} of {fail_times}"), 1).results(results),
        );
    }

    let outcome = match ctx.param_or("outcome", "") {
        "" if code == 0 => Outcome::success(),
        "" => Outcome::failure(message, code),
        "success" => Outcome::success(),
        "warning" => Outcome::warning(message),
        "halt" => Outcome::halt(message),
        "skip" => Outcome::skip(message),
        "failure" => Outcome::failure(message, if code == 0 { 1 } else { code }),
        other => {
            return Err(Outcome::failure(
                format!(
                    "param `outcome`: invalid value {other:?}: expected one of success, warning, halt, skip, failure"
                ),
                2,
            ));
        }
    };
    Ok(outcome.results(results))
}

/// `PATH[=CONTENT]` of `param` as a path inside workspace `ws`, and the content.
fn in_workspace<'a>(
    ctx: &Context,
    param: &str,
    spec: &'a str,
) -> Result<(PathBuf, Option<&'a str>), Outcome> {
    let (path, content) = match spec.split_once('=') {
        Some((path, content)) => (path, Some(content)),
        None => (spec, None),
    };
    let relative = Path::new(path);
    if path.is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(Outcome::failure(
            format!("param `{param}`: {path:?} is not a relative path inside the workspace"),
            2,
        ));
    }
    let workspace = ctx.workspace("ws").ok_or_else(|| {
        Outcome::failure(format!("param `{param}` needs workspace `ws` bound"), 2)
    })?;
    Ok((workspace.join(relative), content))
}

/// `writeFile`: `PATH=CONTENT` into the workspace.
fn write_file(ctx: &Context, spec: &str) -> Result<(), Outcome> {
    if spec.is_empty() {
        return Ok(());
    }
    let (path, content) = in_workspace(ctx, "writeFile", spec)?;
    let failed = |e: std::io::Error| {
        Outcome::failure(
            format!("writeFile: cannot write {}: {e}", path.display()),
            3,
        )
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    std::fs::write(&path, content.unwrap_or_default()).map_err(failed)?;
    weft_sdk::log::info!("wrote {}", path.display());
    Ok(())
}

/// `requireFile`: `PATH` (or `PATH=CONTENT`) must be in the workspace.
fn require_file(ctx: &Context, spec: &str) -> Result<(), Outcome> {
    if spec.is_empty() {
        return Ok(());
    }
    let (path, expected) = in_workspace(ctx, "requireFile", spec)?;
    let found = std::fs::read_to_string(&path).map_err(|e| {
        Outcome::failure(
            format!("requireFile: cannot read {}: {e}", path.display()),
            4,
        )
    })?;
    match expected {
        Some(expected) if found != expected => Err(Outcome::failure(
            format!(
                "requireFile: {} holds {found:?}, expected {expected:?}",
                path.display()
            ),
            4,
        )),
        _ => {
            weft_sdk::log::info!("found {}", path.display());
            Ok(())
        }
    }
}

/// Parses `key=value,key2=value2` (blank entries ignored).
fn parse_results(spec: &str) -> Result<Vec<(String, String)>, Outcome> {
    spec.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(Outcome::failure(
                format!("param `results`: invalid entry {pair:?}: expected key=value"),
                2,
            )),
        })
        .collect()
}

weft_sdk::export_task!(Exit);
