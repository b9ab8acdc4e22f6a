//! Turning a reporter event (as plain data) and its config into one [`StatusUpdate`].
//!
//! Config keys (all forges): `url` (alias `host`; scheme optional, https by default),
//! `api-path`, `project` (alias `repo`), `sha`, `ref`, `context`, `target-url`,
//! `description` (overrides the generated one), `token-secret`. GitLab adds `auth`
//! (`private-token` | `bearer`), `pipeline-id`, `coverage`; GitHub `auth-type`
//! (default `Bearer`); Bitbucket `key` and `auth` (`bearer` | `basic` with a
//! `user:app-password` secret).

use crate::request::{Auth, StatusUpdate};
use crate::{Desired, Forge, base_url, describe, forge_state, path_prefix};

/// A reporter event as plain data (the WIT record without the WIT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    /// The run's name.
    pub run_name: String,
    /// The run's uid.
    pub run_uid: String,
    /// The pipeline's name.
    pub pipeline_name: String,
    /// The run's desired status.
    pub run: Desired,
    /// The host's suggested description.
    pub description: String,
    /// The task name and desired status of a task-level event.
    pub task: Option<(String, Desired)>,
    /// The reporter's config.
    pub config: Vec<(String, String)>,
}

impl EventView {
    /// Config value `key` (trimmed, non-empty).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn get_any(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| self.get(k))
    }

    fn require(&self, keys: &[&str]) -> Result<&str, String> {
        self.get_any(keys)
            .ok_or_else(|| format!("reporter config `{}` is required", keys[0]))
    }

    /// The desired status this event is about (the task's for a task-level event).
    pub fn desired(&self) -> &Desired {
        self.task.as_ref().map_or(&self.run, |(_, d)| d)
    }

    /// The status label: `context` (default `weft/<pipeline>`), plus `/<task>` for
    /// task-level events.
    pub fn context(&self) -> String {
        let base = self
            .get("context")
            .map_or_else(|| format!("weft/{}", self.pipeline_name), str::to_string);
        match &self.task {
            Some((task, _)) => format!("{base}/{task}"),
            None => base,
        }
    }

    /// The description: config `description`, else the host's (composed once from the
    /// run report, so a re-delivery says the same), else one generated here (a host that
    /// sends none).
    pub fn description(&self) -> String {
        if let Some(d) = self.get("description") {
            return d.to_string();
        }
        if !self.description.trim().is_empty() {
            return self.description.trim().to_string();
        }
        match &self.task {
            Some((task, desired)) => describe(task, desired),
            None => describe(&self.pipeline_name, &self.run),
        }
    }
}

/// The defaults per forge: host, API path, token secret name.
pub fn defaults(forge: Forge) -> (&'static str, &'static str, &'static str) {
    match forge {
        Forge::GitLab => ("gitlab.com", "/api/v4", "gitlab-token"),
        Forge::GitHub => ("api.github.com", "", "github-token"),
        Forge::Gitea => ("", "/api/v1", "gitea-token"),
        Forge::Bitbucket => ("api.bitbucket.org", "/2.0", "bitbucket-token"),
        Forge::Webhook => ("", "", "webhook-secret"),
    }
}

/// How the token is presented, before it is revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKind {
    /// GitLab `PRIVATE-TOKEN`.
    PrivateToken,
    /// `Authorization: <scheme> <token>`.
    Scheme(String),
    /// `Authorization: Basic ...` from a `user:password` secret.
    Basic,
}

impl AuthKind {
    /// With the revealed token.
    pub fn with_token(&self, token: String) -> Auth {
        match self {
            AuthKind::PrivateToken => Auth::PrivateToken(token),
            AuthKind::Scheme(s) => Auth::Scheme(s.clone(), token),
            AuthKind::Basic => Auth::Basic(token),
        }
    }
}

/// What to send, minus the token.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The update.
    pub update: StatusUpdate,
    /// The secret holding the token.
    pub token_secret: String,
    /// How to present it.
    pub auth: AuthKind,
}

/// Plans the update for `forge` from `event`, or says which config is wrong.
pub fn plan(forge: Forge, event: &EventView) -> Result<Plan, String> {
    let (host, api, secret) = defaults(forge);
    let host = match event.get_any(&["url", "host"]) {
        Some(h) => h,
        None if !host.is_empty() => host,
        None => return Err("reporter config `url` is required".into()),
    };
    let desired = event.desired();
    let state = forge_state(forge, desired.status).to_string();
    let auth = match forge {
        Forge::GitLab => match event.get("auth").unwrap_or("private-token") {
            "private-token" => AuthKind::PrivateToken,
            "bearer" => AuthKind::Scheme("Bearer".into()),
            other => {
                return Err(format!(
                    "reporter config `auth`: {other:?} is not private-token or bearer"
                ));
            }
        },
        Forge::GitHub => AuthKind::Scheme(event.get("auth-type").unwrap_or("Bearer").to_string()),
        Forge::Gitea => AuthKind::Scheme("token".into()),
        Forge::Bitbucket => match event.get("auth").unwrap_or("bearer") {
            "bearer" => AuthKind::Scheme("Bearer".into()),
            "basic" => AuthKind::Basic,
            other => {
                return Err(format!(
                    "reporter config `auth`: {other:?} is not bearer or basic"
                ));
            }
        },
        Forge::Webhook => return Err("the webhook reporter does not send commit statuses".into()),
    };
    let parse_opt =
        |key: &str| -> Result<Option<String>, String> { Ok(event.get(key).map(str::to_string)) };
    let coverage = match event.get("coverage") {
        Some(c) => Some(
            c.parse::<f64>()
                .map_err(|e| format!("reporter config `coverage`: {e}"))?,
        ),
        None => None,
    };
    let pipeline_id = match event.get("pipeline-id") {
        Some(p) => Some(
            p.parse::<u64>()
                .map_err(|e| format!("reporter config `pipeline-id`: {e}"))?,
        ),
        None => None,
    };
    let update = StatusUpdate {
        base_url: base_url(host),
        api_prefix: path_prefix(event.get("api-path").unwrap_or(api)),
        project: event.require(&["project", "repo"])?.to_string(),
        sha: event.require(&["sha"])?.to_string(),
        state,
        context: event.context(),
        key: parse_opt("key")?.map(|k| match &event.task {
            Some((task, _)) => format!("{k}/{task}"),
            None => k,
        }),
        description: event.description(),
        target_url: parse_opt("target-url")?,
        git_ref: parse_opt("ref")?,
        coverage: if forge == Forge::GitLab {
            coverage
        } else {
            None
        },
        pipeline_id: if forge == Forge::GitLab {
            pipeline_id
        } else {
            None
        },
    };
    Ok(Plan {
        update,
        token_secret: event.get("token-secret").unwrap_or(secret).to_string(),
        auth,
    })
}

/// The whole event as the webhook's JSON document.
pub fn webhook_json(event: &EventView) -> serde_json::Value {
    let desired = |d: &Desired| {
        serde_json::json!({
            "status": d.status.as_str(),
            "reason": d.reason,
            "message": d.message,
        })
    };
    let mut run = desired(&event.run);
    run["name"] = event.run_name.clone().into();
    run["uid"] = event.run_uid.clone().into();
    if let Some((task, msg)) = &event.run.halted_by {
        run["haltedBy"] = serde_json::json!({"task": task, "message": msg});
    }
    let config: serde_json::Map<String, serde_json::Value> = event
        .config
        .iter()
        .filter(|(k, _)| k != "url" && k != "token-secret")
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    let mut doc = serde_json::json!({
        "pipeline": event.pipeline_name,
        "run": run,
        "terminal": event.desired().status.is_terminal(),
        "description": event.description(),
        "config": config,
    });
    if let Some((name, d)) = &event.task {
        let mut task = desired(d);
        task["name"] = name.clone().into();
        doc["task"] = task;
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::reporter::Status;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn view(status: Status, config: &[(&str, &str)]) -> EventView {
        EventView {
            run_name: "ci-abc".into(),
            run_uid: "uid-1".into(),
            pipeline_name: "ci".into(),
            run: Desired::new(status),
            description: String::new(),
            task: None,
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn plans_per_forge() {
        let cfg = [
            ("project", "g/p"),
            ("sha", SHA),
            ("ref", "main"),
            ("target-url", "https://ci/1"),
        ];
        let table = [
            (
                Forge::GitLab,
                "https://gitlab.com",
                "/api/v4",
                "canceled",
                "gitlab-token",
                AuthKind::PrivateToken,
            ),
            (
                Forge::GitHub,
                "https://api.github.com",
                "",
                "error",
                "github-token",
                AuthKind::Scheme("Bearer".into()),
            ),
            (
                Forge::Bitbucket,
                "https://api.bitbucket.org",
                "/2.0",
                "STOPPED",
                "bitbucket-token",
                AuthKind::Scheme("Bearer".into()),
            ),
        ];
        for (forge, base, api, state, secret, auth) in table {
            let p = plan(forge, &view(Status::Cancelled, &cfg)).expect("plans");
            assert_eq!(p.update.base_url, base, "{forge:?}");
            assert_eq!(p.update.api_prefix, api);
            assert_eq!(p.update.state, state);
            assert_eq!(p.token_secret, secret);
            assert_eq!(p.auth, auth);
            assert_eq!(p.update.context, "weft/ci");
            assert_eq!(p.update.description, "ci was cancelled");
            assert_eq!(p.update.git_ref.as_deref(), Some("main"));
        }
        // Gitea has no default host.
        assert!(plan(Forge::Gitea, &view(Status::Failed, &cfg)).is_err());
    }

    #[test]
    fn config_overrides() {
        let v = view(
            Status::SucceededWithWarnings,
            &[
                ("host", "http://127.0.0.1:8080/"),
                ("api-path", "api/v4/"),
                ("repo", "42"),
                ("sha", SHA),
                ("context", "ci/weft"),
                ("token-secret", "my-token"),
                ("auth", "bearer"),
                ("pipeline-id", "9"),
                ("coverage", "81.5"),
            ],
        );
        let p = plan(Forge::GitLab, &v).expect("plans");
        assert_eq!(p.update.base_url, "http://127.0.0.1:8080");
        assert_eq!(p.update.api_prefix, "/api/v4");
        assert_eq!(p.update.project, "42");
        assert_eq!(p.update.context, "ci/weft");
        assert_eq!(p.update.state, "success");
        assert_eq!(p.update.description, "ci passed with warnings");
        assert_eq!(
            (p.update.pipeline_id, p.update.coverage),
            (Some(9), Some(81.5))
        );
        assert_eq!(p.token_secret, "my-token");
        assert_eq!(p.auth, AuthKind::Scheme("Bearer".into()));
        let p = plan(Forge::Gitea, &v).expect("plans");
        assert_eq!(p.update.state, "warning");
        assert_eq!(p.update.coverage, None);
    }

    #[test]
    fn errors_name_the_key() {
        let table: [(&[(&str, &str)], &str); 5] = [
            (&[("sha", SHA)], "`project`"),
            (&[("project", "g/p")], "`sha`"),
            (&[("project", "g/p"), ("sha", SHA), ("auth", "x")], "`auth`"),
            (
                &[("project", "g/p"), ("sha", SHA), ("coverage", "lots")],
                "`coverage`",
            ),
            (
                &[("project", "g/p"), ("sha", SHA), ("pipeline-id", "-1")],
                "`pipeline-id`",
            ),
        ];
        for (cfg, want) in table {
            let err = plan(Forge::GitLab, &view(Status::Running, cfg)).expect_err("fails");
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn task_events_and_descriptions() {
        let mut v = view(
            Status::Running,
            &[("project", "o/r"), ("sha", SHA), ("key", "k")],
        );
        v.task = Some((
            "lint".into(),
            Desired {
                status: Status::Skipped,
                reason: "WhenExpressionsFalse".into(),
                halted_by: None,
                message: String::new(),
            },
        ));
        let p = plan(Forge::GitLab, &v).expect("plans");
        assert_eq!(
            (p.update.context.as_str(), p.update.state.as_str()),
            ("weft/ci/lint", "skipped")
        );
        assert_eq!(p.update.description, "lint was skipped");
        let p = plan(Forge::Bitbucket, &v).expect("plans");
        assert_eq!(p.update.key.as_deref(), Some("k/lint"));

        let mut v = view(Status::Succeeded, &[]);
        v.run.reason = "Halted".into();
        v.run.halted_by = Some(("check".into(), "up to date".into()));
        assert_eq!(v.description(), "ci halted early by check: up to date");
        v.description = "host says".into();
        assert_eq!(v.description(), "host says");
        v.config.push(("description".into(), "config says".into()));
        assert_eq!(v.description(), "config says");
    }

    #[test]
    fn webhook_document() {
        let mut v = view(
            Status::Failed,
            &[
                ("url", "https://hook"),
                ("token-secret", "s"),
                ("team", "core"),
            ],
        );
        v.run.message = "build failed".into();
        v.task = Some(("build".into(), Desired::new(Status::Failed)));
        let doc = webhook_json(&v);
        assert_eq!(doc["pipeline"], "ci");
        assert_eq!(doc["run"]["name"], "ci-abc");
        assert_eq!(doc["run"]["status"], "Failed");
        assert_eq!(doc["run"]["message"], "build failed");
        assert_eq!(doc["task"]["name"], "build");
        assert_eq!(doc["terminal"], true);
        assert_eq!(doc["config"], serde_json::json!({"team": "core"}));
    }
}
