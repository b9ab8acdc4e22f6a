//! `weft run`'s flags as a [`RunSpec`]: the command line's grammar (`--grant TASK=SECRET`,
//! `--allow-http [TASK=|decorator:ID=]RULE`, `--report FORGE:KEY=VALUE,...`,
//! `--workspace NAME=DIR|secret:SECRET`, `--secret NAME=SOURCE`, sizes and durations) is
//! parsed here and nowhere else; the engine and the store see typed data only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use weft_core::contract::{ParamType, ParamValue};
use weft_engine::runs::{
    DEFAULT_DECORATOR_TIMEOUT, HttpGrants, ReporterSpec, RunSpec, RunTimeouts, SecretGrants,
    SecretStore, SnapshotRequest, SubmitError, WorkspaceSource, split_name,
};
use weft_runtime::HttpRule;

use crate::Failure;
use crate::cli::{RunArgs, SnapshotArgs};

/// The prefix of decorator-scoped rules and grants: `--allow-http decorator:ID=RULE`,
/// `--grant decorator:ID=SECRET` (task names cannot contain `:`).
pub const DECORATOR_PREFIX: &str = "decorator:";

/// The prefix of a `--workspace NAME=secret:SECRET` binding.
pub const SECRET_WORKSPACE: &str = "secret:";

/// The `--report` forge names and their plugins.
pub const FORGES: &[(&str, &str)] = &[
    ("gitlab", "reporter-gitlab"),
    ("github", "reporter-github"),
    ("gitea", "reporter-gitea"),
    ("bitbucket", "reporter-bitbucket"),
    ("webhook", "reporter-webhook"),
];

/// The run `weft run`'s flags ask for, on `source` (its file name for diagnostics: `file`)
/// with `params` already parsed ([`params`]).
pub fn run_spec(
    args: &RunArgs,
    pipeline: weft_engine::runs::PipelineSource,
    params: BTreeMap<String, ParamValue>,
) -> Result<RunSpec, Failure> {
    let mut spec = RunSpec::new(String::new(), String::new());
    spec.pipeline = pipeline;
    spec.name = args.name.clone();
    spec.params = params;
    spec.workspaces = workspaces(&args.workspaces)?;
    spec.secret_grants = grants(&args.grants)?;
    spec.http = http_rules(&args.allow_http)?;
    spec.reporters = args
        .reports
        .iter()
        .map(|flag| reporter(flag))
        .collect::<Result<_, _>>()
        .map_err(Failure::invalid)?;
    spec.timeouts = RunTimeouts {
        pipeline: duration("timeout", args.timeout.as_deref())?,
        tasks: duration("tasks-timeout", args.tasks_timeout.as_deref())?,
        finally: duration("finally-timeout", args.finally_timeout.as_deref())?,
    };
    if args.parallelism == Some(0) {
        return Err(Failure::invalid("--parallelism must be at least 1"));
    }
    spec.parallelism = args.parallelism;
    spec.report_timeout = duration("report-timeout", Some(&args.report_timeout))?
        .unwrap_or(weft_engine::runs::spec::DEFAULT_REPORT_TIMEOUT);
    spec.decorator_timeout = duration("decorator-timeout", Some(&args.decorator_timeout))?
        .unwrap_or(DEFAULT_DECORATOR_TIMEOUT);
    if spec.decorator_timeout.is_zero() {
        return Err(Failure::invalid("--decorator-timeout must be more than 0s"));
    }
    spec.snapshots = snapshots(&args.snapshots)?;
    spec.data_dir = args.data_dir.clone();
    spec.scheduled_at_ms = scheduled_at(args.at.as_deref(), args.in_.as_deref())?;
    Ok(spec)
}

/// `--at TIME` (RFC 3339) or `--in DURATION`, as milliseconds since the Unix epoch.
pub fn scheduled_at(at: Option<&str>, after: Option<&str>) -> Result<Option<i64>, Failure> {
    if let Some(text) = at {
        let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
            Failure::invalid(format!(
                "--at `{text}`: not an RFC 3339 time such as 2026-12-24T02:00:00Z ({e})"
            ))
        })?;
        let ms = time.timestamp_millis();
        if ms < chrono::Utc::now().timestamp_millis() {
            return Err(Failure::invalid(format!("--at `{text}` is in the past")));
        }
        return Ok(Some(ms));
    }
    match duration("in", after)? {
        Some(wait) => Ok(Some(
            chrono::Utc::now().timestamp_millis()
                + i64::try_from(wait.as_millis())
                    .map_err(|_| Failure::invalid("--in is too long"))?,
        )),
        None => Ok(None),
    }
}

/// Parses `-p NAME=VALUE` flags. Params the pipeline declares as arrays or objects take
/// JSON; others are strings.
pub fn params(
    pipeline: Option<&weft_core::Pipeline>,
    flags: &[String],
) -> Result<BTreeMap<String, ParamValue>, Failure> {
    let declared: BTreeMap<String, ParamType> = pipeline
        .map(|p| {
            p.params
                .iter()
                .map(|d| (d.name.value.clone(), d.param_type))
                .collect()
        })
        .unwrap_or_default();
    let mut params = BTreeMap::new();
    for flag in flags {
        let (name, raw) = flag
            .split_once('=')
            .ok_or_else(|| Failure::invalid(format!("-p {flag}: expected NAME=VALUE")))?;
        let value = match declared.get(name) {
            Some(ParamType::Array) => serde_json::from_str::<Vec<String>>(raw)
                .map(ParamValue::Array)
                .map_err(|e| {
                    Failure::invalid(format!(
                        "-p {name}: `{name}` is an array param; give a JSON array of strings like '[\"a\",\"b\"]' ({e})"
                    ))
                })?,
            Some(ParamType::Object) => serde_json::from_str::<BTreeMap<String, String>>(raw)
                .map(ParamValue::Object)
                .map_err(|e| {
                    Failure::invalid(format!(
                        "-p {name}: `{name}` is an object param; give a JSON object of strings like '{{\"k\":\"v\"}}' ({e})"
                    ))
                })?,
            _ => ParamValue::Str(raw.to_string()),
        };
        params.insert(name.to_string(), value);
    }
    Ok(params)
}

/// A Go duration flag (`90s`, `1m30s`).
pub fn duration(flag: &str, value: Option<&str>) -> Result<Option<Duration>, Failure> {
    value
        .map(|text| {
            weft_core::duration::parse_go_duration(text)
                .map_err(|e| Failure::invalid(format!("--{flag} {text}: {e}")))
        })
        .transpose()
}

/// `--workspace NAME=DIR` and `NAME=secret:SECRET`.
pub fn workspaces(flags: &[String]) -> Result<BTreeMap<String, WorkspaceSource>, Failure> {
    let mut bound = BTreeMap::new();
    for flag in flags {
        let (name, dir) = flag
            .split_once('=')
            .filter(|(name, dir)| !name.is_empty() && !dir.is_empty())
            .ok_or_else(|| Failure::invalid(format!("--workspace {flag}: expected NAME=DIR")))?;
        let source = match dir.strip_prefix(SECRET_WORKSPACE) {
            Some(secret) => WorkspaceSource::Secret(secret.to_string()),
            None => WorkspaceSource::Directory(PathBuf::from(dir)),
        };
        bound.insert(name.to_string(), source);
    }
    Ok(bound)
}

/// `--grant TASK=SECRET` and `--grant decorator:ID=SECRET`.
pub fn grants(flags: &[String]) -> Result<SecretGrants, Failure> {
    let mut grants = SecretGrants::default();
    for flag in flags {
        let (grantee, secret) = flag
            .split_once('=')
            .filter(|(grantee, secret)| !grantee.is_empty() && !secret.is_empty())
            .ok_or_else(|| Failure::invalid(format!("--grant {flag}: expected TASK=SECRET")))?;
        let map = match grantee.strip_prefix(DECORATOR_PREFIX) {
            Some(id) => grants.decorators.entry(id.to_string()),
            None => grants.tasks.entry(grantee.to_string()),
        };
        map.or_default().insert(secret.to_string());
    }
    Ok(grants)
}

/// `--allow-http RULE`, `TASK=RULE` and `decorator:ID=RULE` (rules never contain `=`).
pub fn http_rules(flags: &[String]) -> Result<HttpGrants, Failure> {
    let mut http = HttpGrants::default();
    for flag in flags {
        let (scope, text) = match flag.split_once('=') {
            Some((scope, rule)) => (Some(scope), rule),
            None => (None, flag.as_str()),
        };
        let rule = HttpRule::parse(text)
            .map_err(|e| Failure::invalid(format!("--allow-http {flag}: {e}")))?;
        match scope {
            None => http.all.push(rule),
            Some(scope) => {
                let (map, key) = match scope.strip_prefix(DECORATOR_PREFIX) {
                    Some(id) => (&mut http.decorators, id),
                    None => (&mut http.tasks, scope),
                };
                if key.is_empty() {
                    return Err(Failure::invalid(format!(
                        "--allow-http {flag}: expected [TASK=|{DECORATOR_PREFIX}ID=]RULE"
                    )));
                }
                map.entry(key.to_string()).or_default().push(rule);
            }
        }
    }
    Ok(http)
}

/// Plain `--allow-http RULE` rules (for flags that take no scope, like
/// `--report-allow-http`).
pub fn plain_rules(flag: &str, texts: &[String]) -> Result<Vec<HttpRule>, Failure> {
    texts
        .iter()
        .map(|text| {
            HttpRule::parse(text).map_err(|e| Failure::invalid(format!("--{flag} {text}: {e}")))
        })
        .collect()
}

/// Parses `--report FORGE:KEY=VALUE,KEY=VALUE,...` (`FORGE` is `gitlab`, `github`,
/// `gitea`, `bitbucket`, `webhook` or a reporter plugin's name; `tasks=true` asks for
/// task contexts). Values cannot contain `,`.
pub fn reporter(flag: &str) -> Result<ReporterSpec, String> {
    let (forge, rest) = flag.split_once(':').unwrap_or((flag, ""));
    let plugin = FORGES
        .iter()
        .find(|(short, _)| *short == forge)
        .map_or_else(|| forge.to_string(), |(_, plugin)| (*plugin).to_string());
    if plugin.is_empty() {
        return Err(format!("--report {flag}: expected FORGE:KEY=VALUE,..."));
    }
    let mut config = Vec::new();
    let mut tasks = false;
    for pair in rest.split(',').filter(|p| !p.trim().is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--report {forge}: `{pair}` is not KEY=VALUE"))?;
        let key = key.trim();
        if key == "tasks" {
            tasks = match value.trim() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(format!(
                        "--report {forge}: tasks={other}: expected true or false"
                    ));
                }
            };
        } else {
            config.push((key.to_string(), value.to_string()));
        }
    }
    Ok(ReporterSpec {
        id: String::new(),
        plugin,
        config,
        tasks,
    })
}

/// The `--workspace-snapshots` value that turns snapshots off.
const SNAPSHOTS_OFF: &str = "off";

/// `--workspace-snapshots[=TARGET|off]`, `--snapshot-max-bytes`, `--snapshot-keep`.
pub fn snapshots(args: &SnapshotArgs) -> Result<SnapshotRequest, Failure> {
    let target = args.target.as_deref().map(str::trim);
    let max_bytes = args
        .max_bytes
        .as_deref()
        .map(|text| {
            parse_size(text)
                .map_err(|e| Failure::invalid(format!("--snapshot-max-bytes {text}: {e}")))
        })
        .transpose()?;
    Ok(SnapshotRequest {
        enabled: target.map(|t| t != SNAPSHOTS_OFF),
        target: target.filter(|t| *t != SNAPSHOTS_OFF).map(str::to_string),
        max_bytes,
        keep: args.keep,
    })
}

/// `123`, `512k`, `10KiB`, `64M`, `64MiB`, `1G`, `1GiB` (binary multiples; `B` allowed).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| "expected a number of bytes, optionally with KiB, MiB or GiB".to_string())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("unknown unit `{other}` (use KiB, MiB or GiB)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| "too large".to_string())
}

/// `--secret NAME[.KEY]=env:VAR|file:PATH|literal:VALUE` flags as a secret store. Values
/// too short to mask are left out with a warning on stderr; messages never contain values.
pub fn secrets(flags: &[String]) -> Result<SecretStore, Failure> {
    let mut store = SecretStore::new();
    for flag in flags {
        let (full, source) = flag.split_once('=').ok_or_else(|| {
            Failure::invalid("--secret: expected NAME[.KEY]=env:VAR|file:PATH|literal:VALUE")
        })?;
        if full.is_empty() {
            return Err(Failure::invalid("--secret: the secret name is empty"));
        }
        let (name, key) = split_name(full);
        let value = if let Some(var) = source.strip_prefix("env:") {
            std::env::var(var).map_err(|_| {
                Failure::invalid(format!(
                    "--secret {full}: environment variable `{var}` is not set"
                ))
            })?
        } else if let Some(path) = source.strip_prefix("file:") {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::invalid(format!("--secret {full}: cannot read {path}: {e}"))
            })?;
            text.trim_end_matches(['\n', '\r']).to_string()
        } else if let Some(value) = source.strip_prefix("literal:") {
            value.to_string()
        } else {
            return Err(Failure::invalid(format!(
                "--secret {full}: the source must start with env:, file: or literal:"
            )));
        };
        if let Err(warning) = store.insert(name, key, value) {
            eprintln!("weft: warning: {warning}");
        }
    }
    Ok(store)
}

/// The exit code and message of a submission that did not become a run (diagnostics are
/// rendered by the caller).
pub fn failure(err: SubmitError) -> Failure {
    match err {
        SubmitError::Environment(message) => Failure::environment(message),
        SubmitError::Exists(name) => Failure::invalid(format!(
            "a run named `{name}` already exists; pick another --name"
        )),
        SubmitError::NotFound(run) => Failure {
            code: crate::EXIT_INVALID,
            message: format!("no run named `{run}`"),
        },
        SubmitError::NotTerminal(message) => Failure {
            code: crate::EXIT_CONFLICT,
            message,
        },
        other => Failure::invalid(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn scoped_rules_and_grants_go_where_their_prefix_says() {
        let http = http_rules(&[
            "api.example.com".into(),
            "build=!private:127.0.0.1:9".into(),
            "decorator:http-token=auth.example.com".into(),
        ])
        .unwrap();
        assert_eq!(http.all.len(), 1);
        assert_eq!(http.tasks["build"].len(), 1);
        assert_eq!(http.decorators["http-token"].len(), 1);
        assert!(http_rules(&["=x.com".into()]).is_err());
        assert!(http_rules(&["ftp://x.com".into()]).is_err());
        let grants = grants(&["report=gitlab-token".into(), "decorator:x=ci".into()]).unwrap();
        assert!(grants.tasks["report"].contains("gitlab-token"));
        assert!(grants.decorators["x"].contains("ci"));
        assert!(super::grants(&["nope".into()]).is_err());
        let bound = workspaces(&["src=/w".into(), "creds=secret:deploy".into()]).unwrap();
        assert_eq!(bound["creds"], WorkspaceSource::Secret("deploy".into()));
        assert!(workspaces(&["src".into()]).is_err());
    }

    #[test]
    fn report_flags_name_forges_or_plugins() {
        let spec = reporter(
            "gitlab:url=http://127.0.0.1:9,project=group/app,sha=abc,token-secret=gl,tasks=true",
        )
        .unwrap();
        assert_eq!(spec.plugin, "reporter-gitlab");
        assert!(spec.tasks);
        assert_eq!(spec.get("project"), Some("group/app"));
        assert!(reporter("gitlab:novalue").is_err());
        assert_eq!(
            reporter("reporter-custom:url=x").unwrap().plugin,
            "reporter-custom"
        );
    }

    #[test]
    fn snapshot_flags_and_sizes() {
        let on = snapshots(&SnapshotArgs {
            target: Some("db".into()),
            max_bytes: Some("1MiB".into()),
            keep: Some(2),
        })
        .unwrap();
        assert_eq!(on.enabled, Some(true));
        assert_eq!(on.max_bytes, Some(1 << 20));
        let off = snapshots(&SnapshotArgs {
            target: Some("off".into()),
            ..SnapshotArgs::default()
        })
        .unwrap();
        assert_eq!((off.enabled, off.target), (Some(false), None));
        let unset = snapshots(&SnapshotArgs::default()).unwrap();
        assert_eq!(unset.enabled, None);
        assert!(parse_size("10 parsecs").is_err());
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("2 GiB").unwrap(), 2 << 30);
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn secret_flags_read_their_sources_and_never_echo_values() {
        let store = secrets(&["a.token=literal:abcdefgh12".into()]).unwrap();
        assert!(store.resolve("a").is_some());
        let err = secrets(&["x=nope:1".into()]).err().unwrap();
        assert!(err.message.contains("env:, file: or literal:"));
        assert!(secrets(&["noequals".into()]).is_err());
        let short = secrets(&["tiny=literal:abc12".into()]).unwrap();
        assert!(short.is_empty());
    }
}
