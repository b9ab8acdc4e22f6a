//! Workspace snapshots from the command line: `spec.workspaceSnapshots` of the pipeline
//! and `--workspace-snapshots[=TARGET]`, `--snapshot-max-bytes`, `--snapshot-keep` become
//! the run's [`SnapshotConfig`] (weft_engine::snapshot does the work).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use weft_core::model::Pipeline;
use weft_engine::snapshot::{DEFAULT_KEEP, DEFAULT_MAX_BYTES, SnapshotConfig, SnapshotTarget};
use weft_store::{RunStore, StoreError, StoreLimits};

use crate::cli::SnapshotArgs;

/// The `--workspace-snapshots` value that turns snapshots off.
const OFF: &str = "off";

/// The snapshot configuration of a run, or `None` when snapshots are off: on when the
/// pipeline sets `spec.workspaceSnapshots: true` or `--workspace-snapshots` is given
/// (`--workspace-snapshots=off` wins over the pipeline). `workspaces` are the run's bound
/// workspaces; those in `secret` (read-only secret workspaces) are never archived.
pub fn snapshot_config(
    args: &SnapshotArgs,
    pipeline: &Pipeline,
    workspaces: &BTreeMap<String, PathBuf>,
    secret: &BTreeSet<String>,
) -> Result<Option<SnapshotConfig>, String> {
    let target = args.target.as_deref().map(str::trim);
    let enabled = match target {
        Some(OFF) => false,
        Some(_) => true,
        None => pipeline.workspace_snapshots,
    };
    if !enabled {
        let given = [
            ("--snapshot-max-bytes", args.max_bytes.is_some()),
            ("--snapshot-keep", args.keep.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
            return Err(format!(
                "{flag} needs workspace snapshots: set `spec.workspaceSnapshots: true` in the \
                 pipeline or pass --workspace-snapshots"
            ));
        }
        return Ok(None);
    }
    let target = SnapshotTarget::parse(target.unwrap_or("db"))
        .map_err(|e| format!("--workspace-snapshots: {e}"))?;
    let max_bytes = match &args.max_bytes {
        Some(text) => parse_size(text).map_err(|e| format!("--snapshot-max-bytes {text}: {e}"))?,
        None => DEFAULT_MAX_BYTES,
    };
    if max_bytes == 0 {
        return Err("--snapshot-max-bytes must be more than 0".into());
    }
    let keep = args.keep.unwrap_or(DEFAULT_KEEP);
    if keep == 0 {
        return Err("--snapshot-keep must be at least 1".into());
    }
    if matches!(target, SnapshotTarget::Database) {
        let limits = StoreLimits::default();
        if max_bytes > limits.snapshot_max_bytes {
            return Err(format!(
                "--snapshot-max-bytes {max_bytes}: the run store takes snapshots of at most {} \
                 bytes; use a directory (--workspace-snapshots=DIR) for larger ones",
                limits.snapshot_max_bytes
            ));
        }
        if keep > limits.snapshots_per_run {
            return Err(format!(
                "--snapshot-keep {keep}: the run store keeps at most {} snapshots per workspace",
                limits.snapshots_per_run
            ));
        }
    }
    Ok(Some(SnapshotConfig {
        target,
        max_bytes,
        keep,
        workspaces: workspaces
            .keys()
            .filter(|name| !secret.contains(*name))
            .cloned()
            .collect(),
    }))
}

/// A run's snapshots for `weft runs show`: those kept in the run store (without their
/// data) and the snapshot events (taken, skipped, restored) of every target.
pub struct Listing {
    /// Snapshots in the run store, oldest first.
    pub stored: Vec<serde_json::Value>,
    /// Snapshot events, oldest first.
    pub events: Vec<serde_json::Value>,
}

impl Listing {
    /// Reads the listing of `run`.
    pub fn of(store: &dyn RunStore, run: &str) -> Result<Listing, StoreError> {
        let stored = store
            .snapshots(run)?
            .into_iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id,
                    "task": s.task,
                    "workspace": s.workspace,
                    "createdAt": s.created_at.millis(),
                    "size": s.size,
                    "marker": s.size == 0,
                })
            })
            .collect();
        let events = weft_engine::snapshot::history(store, run)?;
        Ok(Listing { stored, events })
    }

    /// Prints the events as text (nothing when there are none).
    pub fn print(&self) {
        if self.events.is_empty() {
            return;
        }
        println!("Workspace snapshots:");
        for event in &self.events {
            let text = |key: &str| event[key].as_str().unwrap_or("-").to_string();
            println!(
                "  {:<22} {:<20} {:<16} {:>10}  {}{}",
                text("kind"),
                text("task"),
                text("workspace"),
                event["size"].as_u64().map_or("-".into(), |s| s.to_string()),
                text("location"),
                event["error"]
                    .as_str()
                    .map(|e| format!(" {e}"))
                    .unwrap_or_default(),
            );
        }
    }
}

/// `123`, `512k`, `10KiB`, `64M`, `64MiB`, `1G`, `1GiB` (binary multiples; `B` allowed).
fn parse_size(text: &str) -> Result<u64, String> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pipeline(snapshots: bool) -> Pipeline {
        let source = format!(
            "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {{name: p}}\nspec:\n  \
             workspaceSnapshots: {snapshots}\n  workspaces: [{{name: src}}, {{name: creds}}]\n  \
             tasks:\n    - {{name: a, taskRef: {{name: echo}}}}\n"
        );
        weft_core::parse_pipeline(&source, "p.yaml").unwrap()
    }

    fn bound() -> BTreeMap<String, PathBuf> {
        [("src", "/tmp/src"), ("creds", "/tmp/creds")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
            .collect()
    }

    fn args(target: Option<&str>, max: Option<&str>, keep: Option<u32>) -> SnapshotArgs {
        SnapshotArgs {
            target: target.map(str::to_string),
            max_bytes: max.map(str::to_string),
            keep,
        }
    }

    #[test]
    fn the_pipeline_or_the_flag_turns_snapshots_on() {
        let secret: BTreeSet<String> = ["creds".to_string()].into();
        let off = snapshot_config(&args(None, None, None), &pipeline(false), &bound(), &secret);
        assert!(off.unwrap().is_none());
        let on = snapshot_config(&args(None, None, None), &pipeline(true), &bound(), &secret)
            .unwrap()
            .unwrap();
        assert!(matches!(on.target, SnapshotTarget::Database));
        assert_eq!((on.max_bytes, on.keep), (DEFAULT_MAX_BYTES, DEFAULT_KEEP));
        assert_eq!(
            on.workspaces.iter().collect::<Vec<_>>(),
            ["src"],
            "secret workspaces are never archived"
        );
        let flag = snapshot_config(
            &args(Some("db"), Some("1MiB"), Some(2)),
            &pipeline(false),
            &bound(),
            &secret,
        )
        .unwrap()
        .unwrap();
        assert_eq!((flag.max_bytes, flag.keep), (1 << 20, 2));
        let forced_off = snapshot_config(
            &args(Some("off"), None, None),
            &pipeline(true),
            &bound(),
            &secret,
        );
        assert!(forced_off.unwrap().is_none());
    }

    #[test]
    fn bad_flags_are_refused() {
        let none = BTreeSet::new();
        let p = pipeline(false);
        for (a, why) in [
            (args(None, None, Some(2)), "needs workspace snapshots"),
            (args(Some("db"), Some("0"), None), "more than 0"),
            (args(Some("db"), Some("10 parsecs"), None), "unknown unit"),
            (args(Some("db"), Some("1GiB"), None), "at most"),
            (args(Some("db"), None, Some(0)), "at least 1"),
            (args(Some("db"), None, Some(100)), "at most 16"),
            (args(Some("s3://bucket/x"), None, None), "s3://bucket/x"),
        ] {
            let err = snapshot_config(&a, &p, &bound(), &none).unwrap_err();
            assert!(err.contains(why), "{a:?}: {err}");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("2 GiB").unwrap(), 2 << 30);
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
