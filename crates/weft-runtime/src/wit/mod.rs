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
//! # Adding a contract version (say 0.2.0)
//!
//! 1. Copy the WIT package as it was released somewhere the old bindings can still find
//!    it (e.g. `wit/since_v0.1.0/`), point `since_v0_1_0`'s `path` there, and change
//!    `wit/` to 0.2.0.
//! 2. Add `since_v0_2_0.rs`: its `bindgen!` (reusing unchanged interfaces of 0.1.0 and
//!    the shared resource types with `with:`), its conversions to and from
//!    `weft_core::contract` (add plain fields there for what 0.2 adds; 0.1 fills them
//!    with defaults), and the same typed calls (`describe_task`, `run_task`, `report`,
//!    ...) with the same plain signatures.
//! 3. Add 0.2.0 to [`ACCEPTED`] (and [`ACCEPTED_RANGE`], [`WIT_VERSION`]); the loader then
//!    records each plugin's version (`Plugin::wit_version`), and `plugin.rs` picks the
//!    version module by it where it calls `since_v0_1_0` today.
//! 4. Linker wiring: an interface that changed gets its own `Host` impl in its capability
//!    module, added to the one linker next to the 0.1.0 one (`build_linker` in `lib.rs`);
//!    the linker tells them apart by their versioned names. An unchanged interface is
//!    shared through `with:` and needs nothing.

pub(crate) mod since_v0_1_0;

use semver::Version;

/// The `weft:plugin` versions this host serves, oldest first: one `since_v*` module each.
pub(crate) const ACCEPTED: &[Version] = &[Version::new(0, 1, 0)];

/// What [`accepts`] lets through, for messages.
pub(crate) const ACCEPTED_RANGE: &str = "0.1.x";

/// The newest `weft:plugin` WIT version this host serves (the last of [`ACCEPTED`]).
pub const WIT_VERSION: &str = "0.1.0";

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
    fn same_minor_any_patch_before_1_0() {
        let v = |s: &str| Version::parse(s).expect("version");
        assert!(accepts(&v("0.1.0")));
        assert!(accepts(&v("0.1.7")));
        assert!(!accepts(&v("0.2.0")));
        assert!(!accepts(&v("1.1.0")));
    }
}
