//! The `weft:plugin` contract as the host speaks it, one module per contract version.
//!
//! This module holds what does not depend on a version: which versions the host accepts
//! ([`ACCEPTED`]) and the check the loader applies to every `weft:plugin` interface a
//! component exports or imports ([`accepts`]). Each `since_v*` module holds the bindings
//! `wasmtime::component::bindgen!` generates for one version and every conversion between
//! them and weft-core's plain data (`weft_core::contract`), together with the typed calls
//! of that version's exports. Nothing else in the crate matches on generated types; the
//! capability modules only implement the generated `Host` traits of the imports.
//!
//! The arrows point one way: `plugin.rs` and the capabilities use a version module; a
//! version module uses plain data only (`weft_core::contract`, [`crate::secret`]).
//!
//! # The versions served
//!
//! - `0.1.x` through [`since_v0_1_0`], bound to `wit/since_v0.1.0/` (the 0.1.0 contract as
//!   released, never edited): the `task`, `reporter` and `form-decorator` worlds.
//! - `0.2.x` through [`since_v0_2_0`], bound to `wit/`: the same worlds, unchanged, plus
//!   `gate`.
//!
//! The loader records each plugin's version (`Plugin::wit_version`) and `plugin.rs` calls
//! the module of that version ([`Contract`]).
//!
//! # Adding a contract version (say 0.3.0)
//!
//! 1. Copy the WIT package as it was released somewhere the old bindings can still find
//!    it (`wit/since_v0.2.0/`: `wit-parser` ignores subdirectories of `wit/` other than
//!    `deps/`), point `since_v0_2_0`'s `path` there, and change `wit/` to 0.3.0.
//! 2. Add `since_v0_3_0.rs`: its `bindgen!` (reusing, with `with:`, the function-less
//!    interfaces that did not change, such as `types`, and the shared resource types),
//!    its conversions to and from `weft_core::contract` (add plain fields there for what
//!    0.3 adds; older versions fill them with defaults), and the same typed calls
//!    (`describe_task`, `run_task`, `report`, ...) with the same plain signatures.
//! 3. Add 0.3.0 to [`ACCEPTED`] (and [`ACCEPTED_RANGE`], [`WIT_VERSION`]) and a
//!    [`Contract`] variant; `plugin.rs` then calls the new module for plugins of that
//!    version.
//! 4. Linker wiring: every imported interface with functions (`log`, `secrets`,
//!    `checkpoint`) is imported under its versioned name (`weft:plugin/log@0.3.0`), and
//!    0.x versions of different minors are not semver-compatible for the linker, so each
//!    version's `Host` traits are implemented in the capability module (delegating to one
//!    implementation) and added to the one linker next to the older ones (`build_linker`
//!    in `lib.rs`). A function-less interface (`types`) needs no linker entry.

pub(crate) mod since_v0_1_0;
pub(crate) mod since_v0_2_0;

use semver::Version;

/// The `weft:plugin` versions this host serves, oldest first: one `since_v*` module each.
pub(crate) const ACCEPTED: &[Version] = &[Version::new(0, 1, 0), Version::new(0, 2, 0)];

/// What [`accepts`] lets through, for messages.
pub(crate) const ACCEPTED_RANGE: &str = "0.1.x or 0.2.x";

/// What serves gates, for messages: the `gate` world came with 0.2.0.
pub(crate) const GATES_RANGE: &str = "0.2.x for gates";

/// The newest `weft:plugin` WIT version this host serves (the last of the accepted ones).
pub const WIT_VERSION: &str = "0.2.0";

/// Whether a component built against `found` can be served: it matches an accepted
/// version's major, and for 0.x its minor too (semver's rule for pre-1.0), any patch.
pub(crate) fn accepts(found: &Version) -> bool {
    ACCEPTED.iter().any(|served| {
        if served.major == 0 {
            found.major == 0 && found.minor == served.minor
        } else {
            found.major == served.major
        }
    })
}

/// The contract version module that serves a plugin, by the version it was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contract {
    /// `weft:plugin@0.1.x`: [`since_v0_1_0`].
    V0_1,
    /// `weft:plugin@0.2.x`: [`since_v0_2_0`].
    V0_2,
}

impl Contract {
    /// The module serving `version`, which the loader has already [`accepts`]ed.
    pub(crate) fn of(version: &Version) -> Contract {
        if version.major == 0 && version.minor == 1 {
            Contract::V0_1
        } else {
            Contract::V0_2
        }
    }

    /// Whether this version defines the `gate` world.
    pub(crate) fn has_gates(self) -> bool {
        self != Contract::V0_1
    }
}

/// What a plugin's call returned, converted to plain data, with how many bytes of text it
/// returned as the plugin sent it (before duplicates collapse into maps), which is what
/// the result budget (`Limits::result_bytes`) counts.
#[derive(Debug)]
pub(crate) struct Returned<T> {
    /// The value, as plain data.
    pub(crate) value: T,
    /// The bytes of its strings (names and values, messages).
    pub(crate) bytes: usize,
}

/// Awaits `instantiate` (a component's instantiation) and tells `hook` how long it took;
/// without a hook nothing is timed, so the common call pays nothing.
pub(crate) async fn timed<F: std::future::Future>(
    hook: Option<&crate::hooks::Instantiated>,
    instantiate: F,
) -> F::Output {
    let Some(hook) = hook else {
        return instantiate.await;
    };
    let began = std::time::Instant::now();
    let instance = instantiate.await;
    hook(began.elapsed());
    instance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accepted_list_the_range_and_the_newest_agree() {
        let newest = ACCEPTED.last().expect("at least one version");
        assert_eq!(newest.to_string(), WIT_VERSION);
        for served in ACCEPTED {
            assert!(ACCEPTED_RANGE.contains(&format!("{}.{}.x", served.major, served.minor)));
        }
    }

    #[test]
    fn each_accepted_version_has_its_module() {
        let v = |s: &str| Version::parse(s).expect("version");
        assert_eq!(Contract::of(&v("0.1.0")), Contract::V0_1);
        assert_eq!(Contract::of(&v("0.1.4")), Contract::V0_1);
        assert_eq!(Contract::of(&v("0.2.0")), Contract::V0_2);
        assert!(!Contract::V0_1.has_gates() && Contract::V0_2.has_gates());
    }

    #[test]
    fn same_minor_any_patch_before_1_0() {
        let v = |s: &str| Version::parse(s).expect("version");
        assert!(accepts(&v("0.1.0")));
        assert!(accepts(&v("0.1.7")));
        assert!(accepts(&v("0.2.0")));
        assert!(accepts(&v("0.2.3")));
        assert!(!accepts(&v("0.3.0")));
        assert!(!accepts(&v("0.0.9")));
        assert!(!accepts(&v("1.1.0")));
    }
}
