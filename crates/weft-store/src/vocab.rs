//! The phase and outcome vocabulary as stored. The variants (and stored names) are those of
//! weft-core's `TaskPhase`, `RunPhase` and `Outcome`; the store keeps its own copies so it
//! builds without the core, and the `core` feature adds lossless conversions both ways
//! (an exhaustive match: a new core variant fails the build until it is mapped here).

macro_rules! vocab {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every variant.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored name (the variant's name, as in weft-core and reports).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                }
            }

            /// Parses a stored name.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $(stringify!($variant) => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[cfg(feature = "core")]
        impl From<weft_core::$name> for $name {
            fn from(v: weft_core::$name) -> Self {
                match v {
                    $(weft_core::$name::$variant => $name::$variant,)+
                }
            }
        }

        #[cfg(feature = "core")]
        impl From<$name> for weft_core::$name {
            fn from(v: $name) -> Self {
                match v {
                    $($name::$variant => weft_core::$name::$variant,)+
                }
            }
        }
    };
}

vocab! {
    /// Where a task attempt is (weft-core `TaskPhase`).
    TaskPhase {
        /// Waiting for its parents.
        Pending,
        /// Waiting for an approval, gate or schedule.
        Blocked,
        /// Start was requested from the engine.
        Queued,
        /// The engine began it.
        Running,
        /// Cancel was requested from the engine.
        Cancelling,
        /// Done; see the outcome. Terminal attempts never change again.
        Terminal,
    }
}

vocab! {
    /// Where a run is (weft-core `RunPhase`).
    RunPhase {
        /// Waiting for a slot of its concurrency group.
        Queued,
        /// Waiting for the time it was scheduled for.
        Scheduled,
        /// Tasks are running.
        Running,
        /// A task failed: nothing new starts.
        Stopping,
        /// A task halted the run: nothing new starts.
        Halting,
        /// A user cancelled; waiting for tasks to end.
        Cancelling,
        /// `finally` tasks are running.
        RunningFinally,
        /// Done. A finished run never changes again.
        Finished,
    }
}

vocab! {
    /// How a task ended (weft-core `Outcome`).
    Outcome {
        /// Done.
        Succeeded,
        /// Done with warnings.
        SucceededWithWarnings,
        /// Failed.
        Failed,
        /// Ran past a timeout.
        TimedOut,
        /// Cancelled.
        Cancelled,
        /// Rejected at an approval.
        Rejected,
        /// Trap, limit or host error.
        Errored,
        /// Did not run.
        Skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        for p in TaskPhase::ALL {
            assert_eq!(TaskPhase::parse(p.as_str()), Some(*p));
        }
        for p in RunPhase::ALL {
            assert_eq!(RunPhase::parse(p.as_str()), Some(*p));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(*o));
        }
        assert_eq!(Outcome::parse("succeeded"), None);
    }

    #[cfg(feature = "core")]
    #[test]
    fn names_match_weft_core() {
        for o in Outcome::ALL {
            let core: weft_core::Outcome = (*o).into();
            assert_eq!(core.as_str(), o.as_str());
            assert_eq!(Outcome::from(core), *o);
        }
        for p in RunPhase::ALL {
            let core: weft_core::RunPhase = (*p).into();
            assert_eq!(core.as_str(), p.as_str());
        }
        for p in TaskPhase::ALL {
            assert_eq!(TaskPhase::from(weft_core::TaskPhase::from(*p)), *p);
        }
    }
}
