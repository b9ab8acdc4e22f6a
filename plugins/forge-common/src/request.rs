//! Building the one status request per forge.

use crate::{Forge, encode_component, owner_repo, target_url, truncate};
use serde_json::{Map, Value, json};
use std::fmt;

/// An HTTP request ready to send. `Debug` masks credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// `POST`, ...
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// `(name, value)` pairs.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The headers as `(&str, &str)` pairs (for `weft_sdk::http::request`).
    pub fn header_refs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn is_credential(name: &str) -> bool {
    ["authorization", "private-token"]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str(),
                    if is_credential(n) { "***" } else { v.as_str() },
                )
            })
            .collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

/// How to present the token.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// GitLab's `PRIVATE-TOKEN: <t>`.
    PrivateToken(String),
    /// `Authorization: <scheme> <t>` (`Bearer`, Gitea's `token`, GitHub's `AUTH_TYPE`).
    Scheme(String, String),
    /// `Authorization: Basic base64(user:password)` from `user:password`.
    Basic(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::PrivateToken(_) => f.write_str("PrivateToken(***)"),
            Auth::Scheme(s, _) => write!(f, "Scheme({s}, ***)"),
            Auth::Basic(_) => f.write_str("Basic(***)"),
        }
    }
}

impl Auth {
    /// `Authorization: Bearer <t>`.
    pub fn bearer(token: impl Into<String>) -> Self {
        Auth::Scheme("Bearer".into(), token.into())
    }

    fn header(&self) -> (String, String) {
        match self {
            Auth::PrivateToken(t) => ("PRIVATE-TOKEN".into(), t.trim().into()),
            Auth::Scheme(s, t) => ("Authorization".into(), format!("{} {}", s.trim(), t.trim())),
            Auth::Basic(up) => (
                "Authorization".into(),
                format!("Basic {}", base64(up.trim().as_bytes())),
            ),
        }
    }
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One commit-status update, forge-neutral. `state` is already the forge's state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusUpdate {
    /// `https://host[:port]` (see [`crate::base_url`]).
    pub base_url: String,
    /// `/api/v4`, `` (api.github.com), `/api/v3` (GHE), `/api/v1` (Gitea), `/2.0` (Bitbucket).
    pub api_prefix: String,
    /// GitLab project id or path; `owner/repo` elsewhere (`workspace/repo` on Bitbucket).
    pub project: String,
    /// The commit.
    pub sha: String,
    /// The forge's state.
    pub state: String,
    /// The status label (GitLab `name`, GitHub/Gitea `context`, Bitbucket `name`).
    pub context: String,
    /// Bitbucket's `key` (defaults to `context`).
    pub key: Option<String>,
    /// A human description (truncated here to the forge's limit).
    pub description: String,
    /// A link (dropped unless http/https, or over the forge's limit).
    pub target_url: Option<String>,
    /// Branch or tag (GitLab `ref`, Bitbucket `refname`).
    pub git_ref: Option<String>,
    /// GitLab coverage.
    pub coverage: Option<f64>,
    /// GitLab pipeline id.
    pub pipeline_id: Option<u64>,
}

fn checked_target(forge: Forge, url: Option<&str>) -> Option<String> {
    let url = target_url(url?)?;
    match forge.target_url_limit() {
        Some(max) if url.chars().count() > max => None,
        _ => Some(url),
    }
}

/// Builds the request for `forge` (not [`Forge::Webhook`]; see [`crate::webhook`]).
pub fn build(forge: Forge, update: &StatusUpdate, auth: &Auth) -> Result<Request, String> {
    let sha = crate::check_sha(&update.sha)?;
    if update.state.is_empty() {
        return Err("no state to send".into());
    }
    let base = format!(
        "{}{}",
        update.base_url.trim_end_matches('/'),
        update.api_prefix
    );
    let description = truncate(update.description.trim(), forge.description_limit());
    let target = checked_target(forge, update.target_url.as_deref());
    let git_ref = update
        .git_ref
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let mut body = Map::new();
    let url = match forge {
        Forge::GitLab => {
            let project = update.project.trim().trim_matches('/');
            if project.is_empty() {
                return Err("no GitLab project (id or group/project)".into());
            }
            body.insert("state".into(), json!(update.state));
            body.insert("name".into(), json!(update.context));
            if let Some(r) = git_ref {
                body.insert("ref".into(), json!(r));
            }
            if let Some(c) = update.coverage {
                body.insert("coverage".into(), json!(c));
            }
            if let Some(p) = update.pipeline_id {
                body.insert("pipeline_id".into(), json!(p));
            }
            format!(
                "{base}/projects/{}/statuses/{sha}",
                encode_component(project)
            )
        }
        Forge::GitHub | Forge::Gitea => {
            let (owner, repo) = owner_repo(&update.project)?;
            body.insert("state".into(), json!(update.state));
            body.insert("context".into(), json!(update.context));
            format!(
                "{base}/repos/{}/{}/statuses/{sha}",
                encode_component(owner),
                encode_component(repo)
            )
        }
        Forge::Bitbucket => {
            let (workspace, repo) = owner_repo(&update.project)?;
            let key = update.key.as_deref().unwrap_or(&update.context);
            body.insert("key".into(), json!(truncate(key, 40)));
            body.insert("state".into(), json!(update.state));
            body.insert("name".into(), json!(update.context));
            if let Some(r) = git_ref {
                body.insert("refname".into(), json!(r));
            }
            format!(
                "{base}/repositories/{}/{}/commit/{sha}/statuses/build",
                encode_component(workspace),
                encode_component(repo)
            )
        }
        Forge::Webhook => return Err("use webhook::build for webhooks".into()),
    };
    if !description.is_empty() {
        body.insert("description".into(), json!(description));
    }
    if let Some(t) = target {
        let field = if forge == Forge::Bitbucket {
            "url"
        } else {
            "target_url"
        };
        body.insert(field.into(), json!(t));
    }
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("User-Agent".to_string(), "weft".to_string()),
    ];
    if forge == Forge::GitHub {
        headers.push(("Accept".into(), "application/vnd.github+json".into()));
        headers.push(("X-GitHub-Api-Version".into(), "2022-11-28".into()));
    } else {
        headers.push(("Accept".into(), "application/json".into()));
    }
    headers.push(auth.header());
    Ok(Request {
        method: "POST",
        url,
        headers,
        body: Value::Object(body).to_string().into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn update(base: &str, prefix: &str, project: &str) -> StatusUpdate {
        StatusUpdate {
            base_url: base.into(),
            api_prefix: prefix.into(),
            project: project.into(),
            sha: SHA.into(),
            state: "success".into(),
            context: "weft/ci".into(),
            description: "ci passed".into(),
            target_url: Some("https://ci.example/r/1".into()),
            git_ref: Some("main".into()),
            ..StatusUpdate::default()
        }
    }

    #[test]
    fn urls_per_forge() {
        let table = [
            (
                Forge::GitLab,
                update("https://gitlab.com", "/api/v4", "group/sub/project"),
                format!("https://gitlab.com/api/v4/projects/group%2Fsub%2Fproject/statuses/{SHA}"),
            ),
            (
                Forge::GitLab,
                update("http://127.0.0.1:8080", "/api/v4", "42"),
                format!("http://127.0.0.1:8080/api/v4/projects/42/statuses/{SHA}"),
            ),
            (
                Forge::GitHub,
                update("https://api.github.com", "", "octo/hello"),
                format!("https://api.github.com/repos/octo/hello/statuses/{SHA}"),
            ),
            (
                Forge::GitHub,
                update("https://ghe.example", "/api/v3", "octo/hello"),
                format!("https://ghe.example/api/v3/repos/octo/hello/statuses/{SHA}"),
            ),
            (
                Forge::Gitea,
                update("https://codeberg.org", "/api/v1", "o/r"),
                format!("https://codeberg.org/api/v1/repos/o/r/statuses/{SHA}"),
            ),
            (
                Forge::Bitbucket,
                update("https://api.bitbucket.org", "/2.0", "ws/repo"),
                format!(
                    "https://api.bitbucket.org/2.0/repositories/ws/repo/commit/{SHA}/statuses/build"
                ),
            ),
        ];
        for (forge, u, want) in table {
            let r = build(forge, &u, &Auth::bearer("t0k")).expect("builds");
            assert_eq!(r.url, want);
            assert_eq!(r.method, "POST");
            assert_eq!(r.header("content-type"), Some("application/json"));
        }
    }

    #[test]
    fn bodies_and_headers() {
        let mut u = update("https://gitlab.com", "/api/v4", "g/p");
        u.coverage = Some(87.5);
        u.pipeline_id = Some(7);
        u.target_url = Some("javascript:alert(1)".into());
        let r = build(Forge::GitLab, &u, &Auth::PrivateToken("glpat-x".into())).expect("builds");
        assert_eq!(
            r.json(),
            json!({"state":"success","name":"weft/ci","ref":"main","coverage":87.5,
                   "pipeline_id":7,"description":"ci passed"})
        );
        assert_eq!(r.header("PRIVATE-TOKEN"), Some("glpat-x"));
        assert!(
            !format!("{r:?}").contains("glpat-x"),
            "Debug masks the token"
        );

        let mut u = update("https://api.github.com", "", "o/r");
        u.description = "x".repeat(300);
        let r = build(Forge::GitHub, &u, &Auth::bearer("ghp")).expect("builds");
        let body = r.json();
        assert_eq!(body["state"], "success");
        assert_eq!(body["context"], "weft/ci");
        assert_eq!(body["target_url"], "https://ci.example/r/1");
        assert_eq!(
            body["description"].as_str().map(|d| d.chars().count()),
            Some(140)
        );
        assert!(body.get("ref").is_none());
        assert_eq!(r.header("authorization"), Some("Bearer ghp"));
        assert_eq!(r.header("accept"), Some("application/vnd.github+json"));
        assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));

        let u = update("https://gitea.example", "/api/v1", "o/r");
        let r =
            build(Forge::Gitea, &u, &Auth::Scheme("token".into(), "gt".into())).expect("builds");
        assert_eq!(r.header("authorization"), Some("token gt"));

        let mut u = update("https://api.bitbucket.org", "/2.0", "ws/r");
        u.state = "SUCCESSFUL".into();
        let r = build(Forge::Bitbucket, &u, &Auth::Basic("user:pw".into())).expect("builds");
        assert_eq!(
            r.json(),
            json!({"key":"weft/ci","state":"SUCCESSFUL","name":"weft/ci","refname":"main",
                   "description":"ci passed","url":"https://ci.example/r/1"})
        );
        assert_eq!(r.header("authorization"), Some("Basic dXNlcjpwdw=="));

        // GitLab refuses target URLs over 255 chars: dropped rather than sent.
        let mut u = update("https://gitlab.com", "/api/v4", "g/p");
        u.target_url = Some(format!("https://x/{}", "a".repeat(300)));
        u.description = "é".repeat(300);
        let body = build(Forge::GitLab, &u, &Auth::bearer("t"))
            .expect("builds")
            .json();
        assert!(body.get("target_url").is_none());
        assert_eq!(
            body["description"].as_str().map(|d| d.chars().count()),
            Some(255)
        );
    }

    #[test]
    fn invalid_updates() {
        let mut u = update("https://api.github.com", "", "no-slash");
        assert!(build(Forge::GitHub, &u, &Auth::bearer("t")).is_err());
        u.project = "o/r".into();
        u.sha = "not-a-sha".into();
        assert!(build(Forge::GitHub, &u, &Auth::bearer("t")).is_err());
        let u = update("https://gitlab.com", "/api/v4", "");
        assert!(build(Forge::GitLab, &u, &Auth::bearer("t")).is_err());
    }

    #[test]
    fn base64_vectors() {
        let table = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ];
        for (i, o) in table {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
