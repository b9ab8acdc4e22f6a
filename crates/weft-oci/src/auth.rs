//! Registry credentials from a Docker config file (`config.json`'s `auths`), the file
//! `docker login`, `podman login` and `wkg` share. Only inline credentials are read
//! (`auth`, or `username` + `password`); credential helpers are not run. Secrets never
//! appear in `Debug` output or messages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

/// Credentials per registry (`host[:port]`).
#[derive(Default, Clone)]
pub struct Credentials {
    by_registry: BTreeMap<String, (String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("registries", &self.by_registry.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl Credentials {
    /// No credentials: every registry is used anonymously.
    pub fn none() -> Self {
        Credentials::default()
    }

    /// The default Docker config: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(dir).join("config.json"));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
    }

    /// Reads `path`; a missing file is no credentials, a malformed one an error naming
    /// the file (never its contents).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credentials::none()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Self::parse(&text).map_err(|detail| format!("{}: {detail}", path.display()))
    }

    /// Parses a Docker config's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: DockerConfig = serde_json::from_str(text)
            // serde_json's message names a position and the expected type, not the text.
            .map_err(|e| format!("not a Docker config file ({e})"))?;
        let mut by_registry = BTreeMap::new();
        for (key, entry) in config.auths {
            let pair = match (entry.auth, entry.username, entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(auth.trim())
                        .ok()
                        .and_then(|bytes| String::from_utf8(bytes).ok())
                        .ok_or_else(|| {
                            format!("the `auth` of `{key}` is not base64 of `user:password`")
                        })?;
                    let (user, password) = decoded.split_once(':').ok_or_else(|| {
                        format!("the `auth` of `{key}` is not base64 of `user:password`")
                    })?;
                    (user.to_string(), password.to_string())
                }
                (_, Some(user), Some(password)) => (user, password),
                _ => continue,
            };
            by_registry.insert(registry_key(&key), pair);
        }
        Ok(Credentials { by_registry })
    }

    /// How to authenticate to `registry` (`host[:port]`).
    pub(crate) fn for_registry(&self, registry: &str) -> RegistryAuth {
        match self.by_registry.get(&registry.to_ascii_lowercase()) {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }
}

/// `https://host:port/v1/` and `host:port` name the same registry.
fn registry_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_configs_give_basic_credentials_per_registry() {
        let text = r#"{"auths": {
            "https://Registry.example:5000/v1/": {"auth": "dXNlcjpwYXNzOndvcmQ="},
            "other.example": {"username": "u", "password": "p"},
            "helper.example": {}
        }, "credsStore": "desktop"}"#;
        let creds = Credentials::parse(text).expect("parses");
        assert!(matches!(creds.for_registry("registry.example:5000"),
            RegistryAuth::Basic(u, p) if u == "user" && p == "pass:word"));
        assert!(
            matches!(creds.for_registry("other.example"), RegistryAuth::Basic(u, _) if u == "u")
        );
        assert!(matches!(
            creds.for_registry("helper.example"),
            RegistryAuth::Anonymous
        ));
        assert!(matches!(
            creds.for_registry("nowhere"),
            RegistryAuth::Anonymous
        ));
        // Debug output names registries, never secrets.
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains("pass") && shown.contains("other.example"),
            "{shown}"
        );
    }

    #[test]
    fn malformed_configs_are_errors_without_their_contents() {
        let err = Credentials::parse(r#"{"auths": {"h": {"auth": "bm9jb2xvbg=="}}}"#)
            .expect_err("no colon");
        assert!(err.contains("`h`") && !err.contains("bm9j"), "{err}");
        let err = Credentials::parse("{secret").expect_err("not JSON");
        assert!(!err.contains("secret"), "{err}");
    }
}
