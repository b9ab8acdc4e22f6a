//! `weft approve` and `weft resume`: deciding what a run waits for, from any process that
//! shares its store. Who decides is `--as NAME` (default: the OS user name) with the groups
//! the identities file gives that name; `weft serve` takes the identity from the caller's
//! token instead (`identities.rs`).

use weft_engine::runs::{Ballot, DecideError, DecisionKind, decide};

use crate::cli::DecideArgs;
use crate::identities::Identities;
use crate::{Failure, default_data_dir, runs};

/// Carries out `weft approve` (`kind` approval) or `weft resume` (intervention).
pub fn command(args: &DecideArgs, kind: DecisionKind) -> Result<u8, Failure> {
    let data_dir = args.store.data_dir.clone().unwrap_or_else(default_data_dir);
    let identities = Identities::load(args.identities.as_deref(), &data_dir)?;
    let identity = match &args.identity {
        Some(name) => name.trim().to_string(),
        None => os_user()?,
    };
    if identity.is_empty() {
        return Err(Failure::invalid("--as: the identity is empty"));
    }
    let defer_until_ms = args.defer_until.as_deref().map(parse_time).transpose()?;
    let ballot = Ballot {
        kind,
        groups: identities.groups(&identity),
        identity,
        approve: !args.reject,
        message: args.message.clone(),
        defer_until_ms,
    };
    let store = crate::store::open_for(&args.store)?;
    // The run's latest attempt (or the attempt named).
    let run = runs::resolve(&*store, &args.run, None)?;
    let receipt = decide(store.as_ref(), &run, &args.task, &ballot).map_err(|err| match err {
        DecideError::Store(err) => Failure::environment(format!("run store: {err}")),
        other => Failure::invalid(other.to_string()),
    })?;
    let what = match (kind, ballot.approve) {
        (DecisionKind::Approval, true) => "approved",
        (DecisionKind::Approval, false) => "rejected",
        (DecisionKind::Intervention, true) => "resumed",
        (DecisionKind::Intervention, false) => "rejected",
    };
    println!(
        "{} {what} `{}` of run {} (attempt {}); the engine that owns the run carries it on",
        ballot.identity,
        receipt.task,
        args.run,
        receipt.attempt + 1
    );
    store
        .close()
        .map_err(|e| Failure::environment(format!("run store: {e}")))?;
    Ok(0)
}

/// The OS user running this command.
fn os_user() -> Result<String, Failure> {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map_err(|_| Failure::invalid("cannot tell who you are: pass --as NAME"))
}

/// An RFC 3339 time as ms since the epoch.
pub fn parse_time(text: &str) -> Result<i64, Failure> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            Failure::invalid(format!(
                "`{text}` is not an RFC 3339 time such as 2026-12-24T02:00:00Z ({e})"
            ))
        })
}
