//! A run's workspace snapshots as `weft runs show` lists them (the flags that turn them on
//! are parsed in `spec_flags.rs`; `weft_engine::snapshot` does the work).

use weft_store::{RunStore, StoreError};

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
        let events = weft_engine::runs::snapshot_history(store, run)?;
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
