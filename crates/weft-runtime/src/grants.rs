//! What one task invocation is granted, and the check of a component's imports against
//! it. The check runs before instantiation, so a plugin that imports an interface it was
//! not granted never runs any code.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::capabilities::http::HttpRule;
use crate::secret::SecretValue;

/// A directory preopened for the guest.
#[derive(Debug, Clone)]
pub struct WorkspaceMount {
    /// Workspace name as the task knows it.
    pub name: String,
    /// Directory on the host.
    pub host_path: PathBuf,
    /// Path the guest sees (e.g. `/workspace/source`).
    pub guest_path: String,
    /// Whether the guest may only read it.
    pub read_only: bool,
}

/// The capabilities one task invocation holds. Everything not listed is denied.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Secrets this task may reveal, by name.
    pub secrets: BTreeMap<String, SecretValue>,
    /// Outbound HTTP destinations this task may reach. Empty: `wasi:http` is not granted.
    pub http: Vec<HttpRule>,
    /// Directories preopened for the guest.
    pub workspaces: Vec<WorkspaceMount>,
}

/// How the host treats an imported interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InterfaceClass {
    /// Always available (log, WASI cli/io/clocks/random, filesystem scoped to preopens).
    Baseline,
    /// `wasi:http`: only with at least one HTTP rule.
    Http,
    /// `wasi:sockets`: raw sockets are never granted.
    Sockets,
    /// Not something weft serves.
    Unknown,
}

/// Splits `ns:pkg/iface@1.2.3` into (`ns:pkg/iface`, `Some("1.2.3")`).
pub(crate) fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((base, version)) => (base, Some(version)),
        None => (name, None),
    }
}

/// Classifies an import by its unversioned interface name.
pub(crate) fn classify(interface: &str) -> InterfaceClass {
    const BASELINE: &[&str] = &[
        "weft:plugin/log",
        "weft:plugin/secrets",
        "weft:plugin/checkpoint",
        "weft:plugin/types",
        "wasi:io/",
        "wasi:clocks/",
        "wasi:random/",
        "wasi:filesystem/",
        "wasi:cli/",
    ];
    if BASELINE.iter().any(|prefix| {
        interface == *prefix || (prefix.ends_with('/') && interface.starts_with(prefix))
    }) {
        InterfaceClass::Baseline
    } else if interface.starts_with("wasi:http/") {
        InterfaceClass::Http
    } else if interface.starts_with("wasi:sockets/") {
        InterfaceClass::Sockets
    } else {
        InterfaceClass::Unknown
    }
}

/// Returns the first import the grants do not cover, with why.
pub(crate) fn first_ungranted<'a>(
    imports: &'a [String],
    grants: &Grants,
) -> Option<(&'a str, &'static str)> {
    imports.iter().find_map(|import| {
        let (interface, _) = split_version(import);
        match classify(interface) {
            InterfaceClass::Baseline => None,
            InterfaceClass::Http if !grants.http.is_empty() => None,
            InterfaceClass::Http => Some((
                import.as_str(),
                "outbound HTTP was not granted to this task (no allowed hosts)",
            )),
            InterfaceClass::Sockets => Some((import.as_str(), "raw sockets are never granted")),
            InterfaceClass::Unknown => Some((import.as_str(), "weft does not provide it")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_interfaces() {
        let cases = [
            ("weft:plugin/log", InterfaceClass::Baseline),
            ("weft:plugin/secrets", InterfaceClass::Baseline),
            ("wasi:cli/stdout", InterfaceClass::Baseline),
            ("wasi:filesystem/preopens", InterfaceClass::Baseline),
            ("wasi:http/outgoing-handler", InterfaceClass::Http),
            ("wasi:sockets/tcp", InterfaceClass::Sockets),
            ("wasi:io-extra/foo", InterfaceClass::Unknown),
            ("weft:plugin/logger", InterfaceClass::Unknown),
            ("acme:evil/thing", InterfaceClass::Unknown),
        ];
        for (name, class) in cases {
            assert_eq!(classify(name), class, "{name}");
        }
    }

    #[test]
    fn http_needs_a_rule() {
        let imports = vec!["wasi:http/outgoing-handler@0.2.6".to_string()];
        let mut grants = Grants::default();
        let (name, why) = first_ungranted(&imports, &grants).expect("denied without rules");
        assert_eq!(name, "wasi:http/outgoing-handler@0.2.6");
        assert!(why.contains("HTTP"));
        grants
            .http
            .push(HttpRule::parse("example.com").expect("valid rule"));
        assert!(first_ungranted(&imports, &grants).is_none());
    }
}
