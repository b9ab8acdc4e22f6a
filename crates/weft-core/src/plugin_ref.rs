//! Plugins by OCI reference: what `oci://host/ns/name@sha256:...` means, which registries a
//! process may pull from and over which scheme, and the `weft.lock` file pinning plugin
//! names to digests. Pure: the pulling itself is `weft-oci`'s.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use crate::diag::{Diagnostic, Pos};
use crate::yaml::{self, NodeKind};

/// The prefix that marks a plugin name as a registry reference.
pub const OCI_SCHEME: &str = "oci://";

/// The only digest algorithm accepted.
const SHA256: &str = "sha256:";

/// Diagnostic codes of `weft.lock` files.
pub mod codes {
    /// The lock file is not a mapping with `plugins:`, or an entry is not a string.
    pub const LOCK_SHAPE: &str = "lock-shape";
    /// A lock entry is not a digest-pinned `oci://` reference.
    pub const LOCK_REFERENCE: &str = "lock-reference";
}

/// True when a plugin name is a registry reference (starts with `oci://`).
pub fn is_oci_name(name: &str) -> bool {
    name.starts_with(OCI_SCHEME)
}

/// A parsed registry reference: `host[:port]/repository[:tag][@sha256:HEX]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OciRef {
    /// `host[:port]`, as written (an IPv6 host keeps its brackets).
    pub registry: String,
    /// The repository path, e.g. `weft/git-clone`.
    pub repository: String,
    /// The tag, if one was given.
    pub tag: Option<String>,
    /// The manifest digest (`sha256:` and 64 lower-case hex digits), if one was given.
    pub digest: Option<String>,
}

/// Why a reference does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a registry reference: {reason}")]
pub struct RefError {
    /// What was given (shortened for display).
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl OciRef {
    /// Parses `oci://host/ns/name[:tag][@sha256:HEX]`; the `oci://` prefix is optional
    /// (command lines may leave it out), but the first path segment is always the
    /// registry host.
    pub fn parse(text: &str) -> Result<OciRef, RefError> {
        let fail = |reason: &str| RefError {
            text: crate::diag::shown(text).to_string(),
            reason: reason.to_string(),
        };
        let rest = text.strip_prefix(OCI_SCHEME).unwrap_or(text);
        if rest.len() > 1024 {
            return Err(fail("it is longer than 1024 characters"));
        }
        let (rest, digest) = match rest.split_once('@') {
            Some((before, digest)) => {
                check_digest(digest).map_err(|reason| fail(&reason))?;
                (before, Some(digest.to_string()))
            }
            None => (rest, None),
        };
        let (registry, path) = rest.split_once('/').ok_or_else(|| {
            fail(
                "it needs a registry host and a repository: `oci://HOST/NAMESPACE/NAME@sha256:...`",
            )
        })?;
        check_registry(registry).map_err(|reason| fail(&reason))?;
        // A tag is after the last `:` of the last path segment.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string())),
            _ => (path, None),
        };
        check_repository(repository).map_err(|reason| fail(&reason))?;
        if let Some(tag) = &tag {
            check_tag(tag).map_err(|reason| fail(&reason))?;
        }
        Ok(OciRef {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The registry host without the port (brackets of an IPv6 address removed).
    pub fn host(&self) -> &str {
        let registry = self.registry.as_str();
        if let Some(inner) = registry.strip_prefix('[') {
            return inner.split(']').next().unwrap_or(inner);
        }
        registry.split(':').next().unwrap_or(registry)
    }

    /// True when the registry is this machine (`localhost`, `127.0.0.0/8`, `[::1]`).
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host.eq_ignore_ascii_case("localhost")
            || host == "::1"
            || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The reference without `oci://`, as registries and other tools write it.
    pub fn bare(&self) -> String {
        let mut out = format!("{}/{}", self.registry, self.repository);
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }

    /// The same reference pinned to `digest` (the tag dropped).
    pub fn pinned(&self, digest: &str) -> OciRef {
        OciRef {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{OCI_SCHEME}{}", self.bare())
    }
}

/// Checks `sha256:` followed by 64 lower-case hex digits.
pub fn check_digest(digest: &str) -> Result<(), String> {
    let Some(hex) = digest.strip_prefix(SHA256) else {
        return Err(format!(
            "the digest must be `sha256:` and 64 hex digits, not `{}`",
            crate::diag::shown(digest)
        ));
    };
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("a sha256 digest is 64 lower-case hex digits".to_string());
    }
    Ok(())
}

fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(inner) = registry.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or("an IPv6 registry host needs its closing `]`")?;
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(format!("`[{host}]` is not an IPv6 address"));
        }
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("only `:PORT` may follow an IPv6 registry host")?,
                ),
            ),
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    if host.is_empty() {
        return Err("the registry host is empty".to_string());
    }
    if !registry.starts_with('[')
        && (!host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            || host.starts_with(['.', '-'])
            || host.ends_with(['.', '-']))
    {
        return Err(format!(
            "`{}` is not a registry host name",
            crate::diag::shown(host)
        ));
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |port| port == 0)
    {
        return Err(format!(
            "`{}` is not a port (1 to 65535)",
            crate::diag::shown(port)
        ));
    }
    Ok(())
}

fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository is empty".to_string());
    }
    if repository.len() > 255 {
        return Err("the repository is longer than 255 characters".to_string());
    }
    for component in repository.split('/') {
        let lower = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let bytes = component.as_bytes();
        let ends_ok =
            bytes.first().is_some_and(|b| lower(*b)) && bytes.last().is_some_and(|b| lower(*b));
        let chars_ok = bytes
            .iter()
            .all(|b| lower(*b) || matches!(b, b'.' | b'_' | b'-'));
        if !ends_ok || !chars_ok {
            return Err(format!(
                "repository path component `{}` must be lower-case letters and digits, separated by `.`, `_` or `-`",
                crate::diag::shown(component)
            ));
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a tag (letters, digits, `_`, `.`, `-`; at most 128)",
            crate::diag::shown(tag)
        ))
    }
}

/// How a registry is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// TLS (the default).
    Https,
    /// Plain HTTP: loopback registries, and those the operator names.
    Http,
}

/// Which registries a process pulls from and pushes to, and over which scheme.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryPolicy {
    /// `None`: any registry (a command run by its own user). `Some(list)`: only these
    /// `host[:port]`s (a server's submissions; empty: none).
    pub allowed: Option<Vec<String>>,
    /// Registries besides loopback ones reached over plain HTTP (`host[:port]`).
    pub plain_http: Vec<String>,
}

/// Why a registry may not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryRefusal {
    /// The reference has no digest where one is required.
    #[error(
        "`{0}` is not pinned by digest: name a plugin as `oci://HOST/NAME@sha256:...` (`weft plugin push` and `weft plugin pull` print it)"
    )]
    NotPinned(String),
    /// The registry is not on the allow-list.
    #[error(
        "registry `{0}` is not allowed here: this server pulls plugins only from the registries its operator names with `--allow-registry`"
    )]
    NotAllowed(String),
}

impl RegistryPolicy {
    /// Any registry; plain HTTP only to loopback ones and `plain_http`.
    pub fn open(plain_http: Vec<String>) -> Self {
        RegistryPolicy {
            allowed: None,
            plain_http,
        }
    }

    /// Whether `reference`'s registry may be used, and over which scheme.
    pub fn check(&self, reference: &OciRef) -> Result<Scheme, RegistryRefusal> {
        let same = |entry: &String| entry.eq_ignore_ascii_case(&reference.registry);
        if let Some(allowed) = &self.allowed
            && !allowed.iter().any(same)
        {
            return Err(RegistryRefusal::NotAllowed(reference.registry.clone()));
        }
        if reference.is_loopback() || self.plain_http.iter().any(same) {
            Ok(Scheme::Http)
        } else {
            Ok(Scheme::Https)
        }
    }

    /// As [`RegistryPolicy::check`], for a plugin a pipeline runs: it must be pinned by
    /// digest.
    pub fn check_pinned(&self, reference: &OciRef) -> Result<Scheme, RegistryRefusal> {
        if reference.digest.is_none() {
            return Err(RegistryRefusal::NotPinned(reference.to_string()));
        }
        self.check(reference)
    }
}

/// A `weft.lock` file: plugin names pinned to digest-pinned references.
///
/// ```yaml
/// plugins:
///   git-clone: oci://registry.example/weft/git-clone@sha256:0123...
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginLock {
    /// Name -> reference (always with a digest).
    pub pins: BTreeMap<String, OciRef>,
}

/// The default lock file name, looked for beside the pipeline.
pub const LOCK_FILE: &str = "weft.lock";

impl PluginLock {
    /// Parses a lock file; every problem comes back at once with its line and column.
    pub fn parse(source: &str, file: &str) -> Result<PluginLock, Vec<Diagnostic>> {
        let shape = |pos: Pos, path: &str, message: String| {
            Diagnostic::new(file, pos, path, codes::LOCK_SHAPE, message)
        };
        let root = match yaml::parse(source) {
            Ok(Some(root)) => root,
            Ok(None) => return Ok(PluginLock::default()),
            Err(err) => {
                return Err(vec![Diagnostic::new(
                    file,
                    err.pos,
                    "",
                    crate::diag::codes::YAML_SYNTAX,
                    err.message,
                )]);
            }
        };
        let NodeKind::Map(entries) = &root.kind else {
            return Err(vec![
                shape(
                    root.pos,
                    "",
                    format!(
                        "a lock file is a mapping with `plugins:`, not {}",
                        root.type_name()
                    ),
                )
                .with_hint("write `plugins:` and one `NAME: oci://HOST/NAME@sha256:...` per line"),
            ]);
        };
        let mut diagnostics = Vec::new();
        let mut pins = BTreeMap::new();
        for (key, value) in entries {
            match key.as_scalar() {
                Some("plugins") => {}
                other => {
                    diagnostics.push(
                        shape(
                            key.pos,
                            other.unwrap_or(""),
                            format!(
                                "unknown field `{}`",
                                crate::diag::shown(other.unwrap_or("?"))
                            ),
                        )
                        .with_hint("a lock file has one field, `plugins`"),
                    );
                    continue;
                }
            }
            if value.is_null() {
                continue;
            }
            let NodeKind::Map(plugins) = &value.kind else {
                diagnostics.push(shape(
                    value.pos,
                    "plugins",
                    format!(
                        "`plugins` maps names to references, not {}",
                        value.type_name()
                    ),
                ));
                continue;
            };
            for (name, reference) in plugins {
                let Some(name_text) = name.as_scalar().filter(|n| !n.trim().is_empty()) else {
                    diagnostics.push(shape(
                        name.pos,
                        "plugins",
                        "a plugin name must be a non-empty string".into(),
                    ));
                    continue;
                };
                let path = format!("plugins.{name_text}");
                if is_oci_name(name_text) {
                    diagnostics.push(shape(
                        name.pos,
                        &path,
                        "a lock file pins plain plugin names (as pipelines write them), not references".into(),
                    ));
                    continue;
                }
                let Some(text) = reference.as_scalar().filter(|_| !reference.is_null()) else {
                    diagnostics.push(shape(
                        reference.pos,
                        &path,
                        format!(
                            "`{name_text}` must be pinned to a reference, not {}",
                            reference.type_name()
                        ),
                    ));
                    continue;
                };
                let parsed = if is_oci_name(text) {
                    OciRef::parse(text).map_err(|e| e.to_string())
                } else {
                    Err(format!(
                        "`{}` must start with `oci://`",
                        crate::diag::shown(text)
                    ))
                };
                match parsed {
                    Ok(parsed) if parsed.digest.is_some() => {
                        if pins.insert(name_text.to_string(), parsed).is_some() {
                            diagnostics.push(shape(name.pos, &path, format!("`{name_text}` is pinned twice")));
                        }
                    }
                    Ok(_) => diagnostics.push(
                        Diagnostic::new(
                            file,
                            reference.pos,
                            &path,
                            codes::LOCK_REFERENCE,
                            format!("`{name_text}` is not pinned by digest"),
                        )
                        .with_hint("`weft plugin pull REF` prints the digest; write `oci://HOST/NAME@sha256:...`"),
                    ),
                    Err(message) => diagnostics.push(Diagnostic::new(
                        file,
                        reference.pos,
                        &path,
                        codes::LOCK_REFERENCE,
                        message,
                    )),
                }
            }
        }
        if diagnostics.is_empty() {
            Ok(PluginLock { pins })
        } else {
            Err(diagnostics)
        }
    }

    /// The name a pipeline's plugin resolves to: its pinned reference, or itself.
    pub fn resolve<'a>(&'a self, name: &'a str) -> std::borrow::Cow<'a, str> {
        match self.pins.get(name) {
            Some(reference) => std::borrow::Cow::Owned(reference.to_string()),
            None => std::borrow::Cow::Borrowed(name),
        }
    }

    /// The pins as text (name -> `oci://...`), as a run spec keeps them.
    pub fn to_texts(&self) -> BTreeMap<String, String> {
        self.pins
            .iter()
            .map(|(name, reference)| (name.clone(), reference.to_string()))
            .collect()
    }
}

/// A lock given as a value (`name -> reference` text, e.g. a JSON body), checked as a
/// lock file is. Errors name the entry.
pub fn lock_from_texts(pins: &BTreeMap<String, String>) -> Result<PluginLock, String> {
    let mut lock = PluginLock::default();
    for (name, text) in pins {
        if name.trim().is_empty() || is_oci_name(name) {
            return Err(format!(
                "plugin pin `{}`: the name must be a plain plugin name",
                crate::diag::shown(name)
            ));
        }
        if !is_oci_name(text) {
            return Err(format!(
                "plugin pin `{name}`: `{}` must start with `oci://`",
                crate::diag::shown(text)
            ));
        }
        let reference = OciRef::parse(text).map_err(|e| format!("plugin pin `{name}`: {e}"))?;
        if reference.digest.is_none() {
            return Err(format!(
                "plugin pin `{name}`: `{text}` is not pinned by digest"
            ));
        }
        lock.pins.insert(name.clone(), reference);
    }
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_parse_or_say_why_not() {
        let digest = format!("sha256:{HEX}");
        type Parsed<'a> = (&'a str, &'a str, Option<&'a str>, bool);
        let table: Vec<(String, Result<Parsed<'_>, &str>)> = vec![
            (
                format!("oci://127.0.0.1:5000/weft/git-clone@{digest}"),
                Ok(("127.0.0.1:5000", "weft/git-clone", None, true)),
            ),
            (
                "oci://ghcr.io/org/echo:1.2.0".into(),
                Ok(("ghcr.io", "org/echo", Some("1.2.0"), false)),
            ),
            (
                format!("localhost:5000/a/b:v1@{digest}"),
                Ok(("localhost:5000", "a/b", Some("v1"), true)),
            ),
            (
                format!("oci://[::1]:5000/a@{digest}"),
                Ok(("[::1]:5000", "a", None, true)),
            ),
            (
                "oci://host".into(),
                Err("needs a registry host and a repository"),
            ),
            ("oci://host/Upper".into(), Err("lower-case")),
            ("oci://host/a@sha512:00".into(), Err("`sha256:` and 64 hex")),
            ("oci://host/a@sha256:ABC".into(), Err("64 lower-case hex")),
            ("oci://ho st/a".into(), Err("not a registry host")),
            ("oci://host:99999/a".into(), Err("not a port")),
            ("oci://host:0/a".into(), Err("not a port")),
            ("oci:///a".into(), Err("host is empty")),
            ("oci://host/a:".into(), Err("not a tag")),
            ("oci://host/a//b".into(), Err("lower-case")),
            ("oci://[::1/a".into(), Err("closing")),
        ];
        for (text, want) in table {
            let got = OciRef::parse(&text);
            match (got, want) {
                (Ok(r), Ok((registry, repo, tag, pinned))) => {
                    assert_eq!(r.registry, registry, "{text}");
                    assert_eq!(r.repository, repo, "{text}");
                    assert_eq!(r.tag.as_deref(), tag, "{text}");
                    assert_eq!(r.digest.is_some(), pinned, "{text}");
                    // Display round-trips.
                    assert_eq!(OciRef::parse(&r.to_string()).as_ref(), Ok(&r), "{text}");
                }
                (Err(e), Err(needle)) => assert!(e.reason.contains(needle), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn policy_decides_allowance_and_scheme() {
        let pinned = |text: &str| OciRef::parse(&format!("{text}@sha256:{HEX}")).expect("parses");
        let open = RegistryPolicy::open(vec!["intranet:5000".into()]);
        let closed = RegistryPolicy {
            allowed: Some(vec!["ghcr.io".into(), "127.0.0.1:5000".into()]),
            plain_http: vec![],
        };
        let none = RegistryPolicy {
            allowed: Some(vec![]),
            plain_http: vec![],
        };
        let table = [
            (&open, "oci://ghcr.io/a", Ok(Scheme::Https)),
            (&open, "oci://127.0.0.1:5000/a", Ok(Scheme::Http)),
            (&open, "oci://127.9.9.9:1/a", Ok(Scheme::Http)),
            (&open, "oci://localhost/a", Ok(Scheme::Http)),
            (&open, "oci://[::1]:80/a", Ok(Scheme::Http)),
            (&open, "oci://intranet:5000/a", Ok(Scheme::Http)),
            (&open, "oci://intranet:5001/a", Ok(Scheme::Https)),
            (&open, "oci://10.0.0.1/a", Ok(Scheme::Https)),
            (&closed, "oci://GHCR.io/a", Ok(Scheme::Https)),
            (&closed, "oci://127.0.0.1:5000/a", Ok(Scheme::Http)),
            (&closed, "oci://127.0.0.1:5001/a", Err("127.0.0.1:5001")),
            (&closed, "oci://evil.example/a", Err("evil.example")),
            (&none, "oci://127.0.0.1:5000/a", Err("127.0.0.1:5000")),
        ];
        for (policy, text, want) in table {
            let got = policy.check_pinned(&pinned(text));
            match (got, want) {
                (Ok(scheme), Ok(expected)) => assert_eq!(scheme, expected, "{text}"),
                (Err(RegistryRefusal::NotAllowed(host)), Err(expected)) => {
                    assert_eq!(host, expected, "{text}")
                }
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        let unpinned = OciRef::parse("oci://ghcr.io/a:1").expect("parses");
        assert!(matches!(
            open.check_pinned(&unpinned),
            Err(RegistryRefusal::NotPinned(_))
        ));
        assert_eq!(open.check(&unpinned), Ok(Scheme::Https));
    }

    #[test]
    fn lock_files_parse_with_positions() {
        let good =
            format!("plugins:\n  git-clone: oci://127.0.0.1:5000/weft/git-clone@sha256:{HEX}\n");
        let lock = PluginLock::parse(&good, "weft.lock").expect("parses");
        assert_eq!(lock.pins.len(), 1);
        assert_eq!(
            lock.resolve("git-clone"),
            format!("oci://127.0.0.1:5000/weft/git-clone@sha256:{HEX}")
        );
        assert_eq!(lock.resolve("echo"), "echo");
        assert_eq!(
            PluginLock::parse("", "weft.lock"),
            Ok(PluginLock::default())
        );

        let table = [
            ("- a\n", (1, 1), codes::LOCK_SHAPE),
            ("plugin: {}\n", (1, 1), codes::LOCK_SHAPE),
            ("plugins: [a]\n", (1, 10), codes::LOCK_SHAPE),
            (
                "plugins:\n  echo: oci://h/echo:1\n",
                (2, 9),
                codes::LOCK_REFERENCE,
            ),
            (
                "plugins:\n  echo: ./echo.wasm\n",
                (2, 9),
                codes::LOCK_REFERENCE,
            ),
            ("plugins:\n  echo: {a: 1}\n", (2, 9), codes::LOCK_SHAPE),
            (
                "plugins:\n  oci://h/a: oci://h/a\n",
                (2, 3),
                codes::LOCK_SHAPE,
            ),
            ("plugins: [\n", (2, 1), crate::diag::codes::YAML_SYNTAX),
        ];
        for (text, (line, column), code) in table {
            let diagnostics = PluginLock::parse(text, "weft.lock").expect_err(text);
            let first = &diagnostics[0];
            assert_eq!(
                (first.line, first.column, first.code),
                (line, column, code),
                "{text}: {first}"
            );
        }
    }

    #[test]
    fn locks_from_values_are_checked_like_files() {
        let mut pins = BTreeMap::new();
        pins.insert("echo".to_string(), format!("oci://h/echo@sha256:{HEX}"));
        assert!(lock_from_texts(&pins).is_ok());
        pins.insert("bad".to_string(), "oci://h/bad:1".to_string());
        assert!(lock_from_texts(&pins).is_err_and(|e| e.contains("not pinned")));
    }
}
