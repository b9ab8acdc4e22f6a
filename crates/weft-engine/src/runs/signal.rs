//! What a signal asks of a run's owner, as stored in the run store's `signals` table (kind
//! and a JSON payload): any server may send one, whichever engine owns the run acts on it.
//! Cancel today; approval votes, reruns and schedule ticks are later kinds.

use weft_core::CancelMode;
use weft_store::{NewSignal, SignalRecord, Timestamp};

/// A signal for a run's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunSignal {
    /// Cancel the run in this mode.
    Cancel(CancelMode),
}

/// The stored kind of [`RunSignal::Cancel`].
const CANCEL: &str = "cancel";

impl RunSignal {
    /// The signal as the store keeps it, for `run`.
    pub fn to_stored(self, run: &str, sent_at: Timestamp) -> NewSignal {
        match self {
            RunSignal::Cancel(mode) => NewSignal {
                run: run.to_string(),
                kind: CANCEL.to_string(),
                payload_json: serde_json::json!({ "version": 1, "mode": mode.as_str() })
                    .to_string(),
                sent_at,
            },
        }
    }

    /// Reads a stored signal; an error names what this engine does not understand (a
    /// newer engine's kind, a bad payload).
    pub fn from_stored(record: &SignalRecord) -> Result<RunSignal, String> {
        let signal = &record.signal;
        let payload: serde_json::Value = serde_json::from_str(&signal.payload_json)
            .map_err(|e| format!("signal {}: its payload is not JSON: {e}", record.id))?;
        match signal.kind.as_str() {
            CANCEL => {
                let mode = payload["mode"].as_str().unwrap_or_default();
                cancel_mode(mode)
                    .map(RunSignal::Cancel)
                    .ok_or_else(|| format!("signal {}: unknown cancel mode `{mode}`", record.id))
            }
            other => Err(format!("signal {}: unknown kind `{other}`", record.id)),
        }
    }
}

/// A cancel mode by its name (`Cancelled`, `CancelledRunFinally`, `StoppedRunFinally`).
pub fn cancel_mode(name: &str) -> Option<CancelMode> {
    [
        CancelMode::Cancelled,
        CancelMode::CancelledRunFinally,
        CancelMode::StoppedRunFinally,
    ]
    .into_iter()
    .find(|mode| mode.as_str() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_round_trip_and_unknown_ones_are_named() {
        for mode in [
            CancelMode::Cancelled,
            CancelMode::CancelledRunFinally,
            CancelMode::StoppedRunFinally,
        ] {
            let stored = RunSignal::Cancel(mode).to_stored("r", Timestamp(5));
            let record = SignalRecord {
                id: 1,
                signal: stored,
            };
            assert_eq!(RunSignal::from_stored(&record), Ok(RunSignal::Cancel(mode)));
        }
        let odd = |kind: &str, payload: &str| SignalRecord {
            id: 7,
            signal: NewSignal {
                run: "r".into(),
                kind: kind.into(),
                payload_json: payload.into(),
                sent_at: Timestamp(0),
            },
        };
        for (kind, payload, says) in [
            ("approve", "{}", "unknown kind `approve`"),
            (
                "cancel",
                r#"{"mode":"Later"}"#,
                "unknown cancel mode `Later`",
            ),
            ("cancel", "not json", "not JSON"),
        ] {
            let err = RunSignal::from_stored(&odd(kind, payload)).expect_err(kind);
            assert!(err.contains(says) && err.contains("signal 7"), "{err}");
        }
    }
}
