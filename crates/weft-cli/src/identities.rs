//! Who is who: the identities that decide approvals and interventions, their groups (for
//! `group:NAME` approvers) and, for `weft serve`, the API token each authenticates with.
//! A JSON file the operator keeps, like `secrets.json` (private: mode 0600 is checked):
//!
//! ```json
//! {"alice": {"groups": ["release-managers"], "token": "a-long-random-token"},
//!  "bob":   {"groups": ["release-managers"]},
//!  "ci":    {"token": "another-long-token", "role": "viewer"}}
//! ```
//!
//! Its identities belong to the `default` tenant with `role` (default `approver`: they
//! submit, cancel and decide). Tokens issued by `weft tokens create` are kept hashed in the
//! store instead, per tenant; this file is for a single team's server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Failure;

/// The identities file's name in the data directory.
pub const IDENTITIES_FILE: &str = "identities.json";

/// Tokens shorter than this are refused: they could be guessed.
const MIN_TOKEN_CHARS: usize = 16;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

/// The identities of one store.
#[derive(Debug, Clone, Default)]
pub struct Identities {
    by_name: BTreeMap<String, Identity>,
}

impl Identities {
    /// Reads `path`, or `identities.json` in `data_dir` when none is given; a missing
    /// default file holds no identities.
    pub fn load(path: Option<&Path>, data_dir: &Path) -> Result<Identities, Failure> {
        let (path, required): (PathBuf, bool) = match path {
            Some(path) => (path.to_path_buf(), true),
            None => (data_dir.join(IDENTITIES_FILE), false),
        };
        if !path.exists() {
            if required {
                return Err(Failure::invalid(format!(
                    "identities file {} does not exist",
                    path.display()
                )));
            }
            return Ok(Identities::default());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(&path)
                && meta.permissions().mode() & 0o077 != 0
            {
                eprintln!(
                    "weft: warning: {} is readable by other users; chmod 600 it (it may hold API tokens)",
                    path.display()
                );
            }
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", path.display())))?;
        // Never echo the parser's message: it may quote a token.
        let by_name: BTreeMap<String, Identity> = serde_json::from_str(&text).map_err(|e| {
            Failure::invalid(format!(
                "{}: not an identities file (line {}, column {}): expected {{\"NAME\": {{\"groups\": [...], \"token\": \"...\"}}}}",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        for (name, identity) in &by_name {
            if let Some(role) = &identity.role
                && let Err(err) = role.parse::<weft_store::Role>()
            {
                return Err(Failure::invalid(format!(
                    "{}: the role of `{name}`: {err}",
                    path.display()
                )));
            }
            if let Some(token) = &identity.token
                && token.chars().count() < MIN_TOKEN_CHARS
            {
                return Err(Failure::invalid(format!(
                    "{}: the token of `{name}` is shorter than {MIN_TOKEN_CHARS} characters",
                    path.display()
                )));
            }
        }
        Ok(Identities { by_name })
    }

    /// The groups of `name` (none for an unknown name).
    pub fn groups(&self, name: &str) -> Vec<String> {
        self.by_name
            .get(name)
            .map(|identity| identity.groups.clone())
            .unwrap_or_default()
    }

    /// The role of `name` in the `default` tenant (`approver` unless the file says).
    pub fn role(&self, name: &str) -> weft_store::Role {
        self.by_name
            .get(name)
            .and_then(|identity| identity.role.as_deref())
            .and_then(|role| role.parse().ok())
            .unwrap_or(weft_store::Role::Approver)
    }

    /// Whether any identity has a token (then the server authenticates by them).
    pub fn has_tokens(&self) -> bool {
        self.by_name
            .values()
            .any(|identity| identity.token.is_some())
    }

    /// The identity `token` authenticates, compared in constant time against every
    /// token (the time taken does not say which, or how much, matched).
    pub fn by_token(&self, token: &str) -> Option<&str> {
        let mut found = None;
        for (name, identity) in &self.by_name {
            if let Some(expected) = &identity.token
                && constant_time_eq(expected.as_bytes(), token.as_bytes())
            {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// Equal, in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn groups_and_tokens_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.json");
        std::fs::write(
            &path,
            r#"{"alice": {"groups": ["release"], "token": "alice-token-0123456789"}, "bob": {}}"#,
        )
        .unwrap();
        let ids = Identities::load(Some(&path), dir.path()).unwrap();
        assert_eq!(ids.groups("alice"), ["release"]);
        assert!(ids.groups("mallory").is_empty());
        assert_eq!(ids.by_token("alice-token-0123456789"), Some("alice"));
        assert_eq!(ids.by_token("alice-token-012345678X"), None);
        assert!(ids.has_tokens());
        std::fs::write(&path, r#"{"alice": {"token": "short"}}"#).unwrap();
        let err = Identities::load(Some(&path), dir.path()).unwrap_err();
        assert!(err.message.contains("shorter") && !err.message.contains("short\""));
        assert!(
            Identities::load(None, dir.path())
                .unwrap()
                .by_name
                .is_empty()
        );
        assert!(Identities::load(Some(&dir.path().join("nope.json")), dir.path()).is_err());
    }
}
