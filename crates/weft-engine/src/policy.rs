//! What a `weft serve` submission may use. A submitter is not the operator: the secrets
//! in `secrets.json` and `--secret` are the operator's, and a reporter sends a token to
//! the URL its config names. So a submission may use only the secrets the operator made
//! available to submissions (`--submit-secrets`, empty by default), and the reporters it
//! configures may reach only the destinations the operator allowed for reporters
//! (`--report-allow-http`, none by default). `weft run` has no policy: its user is the
//! operator.
//!
//! Enforced twice, on purpose: [`SubmissionPolicy::check`] refuses a submission that names
//! a secret it may not use (a 400 that says where), and the run's secret store keeps only
//! the allowed secrets ([`SubmissionPolicy::allows_secret`]), so nothing else (a reporter
//! plugin's declared secrets, a decorator) can be granted one either.

use std::collections::BTreeSet;

use crate::report;
use crate::secrets::split_name;
use serde::{Deserialize, Serialize};
use weft_core::Diagnostic;
use weft_core::diag::Pos;
use weft_core::model::Pipeline;
use weft_runtime::HttpRule;

/// Diagnostic code of a secret a submission may not use.
pub const SECRET_NOT_SUBMITTABLE: &str = "secret-not-submittable";

/// Where diagnostics about the request body (not the pipeline file) point.
const REQUEST_BODY: &str = "request body";

/// What submissions may use; kept with each submitted run so recovery applies it again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionPolicy {
    /// Secret names submissions may use: `NAME` allows every key of `NAME`, `NAME.KEY`
    /// that key.
    pub secrets: BTreeSet<String>,
    /// Destinations reporters configured by a submission may reach (rules as written;
    /// parsed again, strictly, where they are used).
    pub reporter_http: Vec<String>,
}

impl SubmissionPolicy {
    /// Whether a submission may use secret `requested` (`NAME` or `NAME.KEY`).
    pub fn allows_secret(&self, requested: &str) -> bool {
        let (name, _) = split_name(requested);
        self.secrets.contains(requested) || self.secrets.contains(name)
    }

    /// The reporters' HTTP rules. A rule that no longer parses is an error, never dropped.
    pub fn reporter_rules(&self) -> Result<Vec<HttpRule>, String> {
        self.reporter_http
            .iter()
            .map(|rule| {
                HttpRule::parse(rule).map_err(|e| format!("--report-allow-http {rule}: {e}"))
            })
            .collect()
    }

    /// Every secret `pipeline`, the request's `grants` (`TASK=SECRET`) and its `reports`
    /// (`FORGE:CONFIG`) name that submissions may not use, one diagnostic each.
    pub fn check(
        &self,
        pipeline: &Pipeline,
        grants: &[String],
        reports: &[String],
    ) -> Vec<Diagnostic> {
        let file = pipeline.file.as_str();
        let mut found = Vec::new();
        let mut refuse = |file: &str, pos: Pos, field: String, secret: &str| {
            if !self.allows_secret(secret) {
                found.push(refusal(file, pos, field, secret));
            }
        };
        for task in pipeline.all_tasks() {
            for (i, secret) in task.secrets.iter().enumerate() {
                refuse(
                    file,
                    secret.pos,
                    format!("{}.secrets[{i}]", task.path()),
                    &secret.value,
                );
            }
        }
        for decorator in &pipeline.decorators {
            for (i, secret) in decorator.secrets.iter().enumerate() {
                refuse(
                    file,
                    secret.pos,
                    format!("{}.secrets[{i}]", decorator.path()),
                    &secret.value,
                );
            }
        }
        for (i, entry) in pipeline.reporters.iter().enumerate() {
            let secret = entry
                .value
                .get("config")
                .and_then(|config| config.get("token-secret"))
                .and_then(|v| v.as_str());
            if let Some(secret) = secret.map(str::trim).filter(|s| !s.is_empty()) {
                refuse(
                    file,
                    entry.pos,
                    format!("spec.reporters[{i}].config.token-secret"),
                    secret,
                );
            }
        }
        for (i, grant) in grants.iter().enumerate() {
            if let Some((_, secret)) = grant.split_once('=') {
                refuse(REQUEST_BODY, Pos::default(), format!("grants[{i}]"), secret);
            }
        }
        for (i, flag) in reports.iter().enumerate() {
            if let Ok(spec) = report::spec_from_flag(flag)
                && let Some(secret) = spec.get("token-secret")
            {
                refuse(
                    REQUEST_BODY,
                    Pos::default(),
                    format!("reports[{i}].token-secret"),
                    secret,
                );
            }
        }
        found
    }
}

fn refusal(file: &str, pos: Pos, field: String, secret: &str) -> Diagnostic {
    let mut diagnostic = Diagnostic::new(
        file,
        pos,
        field,
        SECRET_NOT_SUBMITTABLE,
        format!("secret `{secret}` is not available to submissions"),
    );
    diagnostic.hint = Some(
        "the server's operator lists the secrets submissions may use with `weft serve --submit-secrets NAME,...`"
            .into(),
    );
    diagnostic
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(secrets: &[&str]) -> SubmissionPolicy {
        SubmissionPolicy {
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            reporter_http: Vec::new(),
        }
    }

    #[test]
    fn names_and_keys_are_allowed_as_listed() {
        let p = policy(&["deploy", "db.user"]);
        assert!(p.allows_secret("deploy"));
        assert!(p.allows_secret("deploy.token"));
        assert!(p.allows_secret("db.user"));
        assert!(!p.allows_secret("db.password"));
        assert!(!p.allows_secret("db"));
        assert!(!p.allows_secret("gitlab-token"));
        assert!(!SubmissionPolicy::default().allows_secret("anything"));
    }

    #[test]
    fn every_place_a_submission_names_a_secret_is_checked() {
        let yaml = r#"apiVersion: weft.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  reporters:
    - {plugin: reporter-gitlab, config: {url: "https://evil.example", token-secret: gitlab-token}}
  decorators:
    - {id: http-token, secrets: [ci-credential]}
  tasks:
    - {name: a, taskRef: {name: echo}, secrets: [deploy, gitlab-token]}
  finally:
    - {name: f, taskRef: {name: echo}, secrets: [ops.key]}
"#;
        let pipeline = weft_core::parse_pipeline(yaml, "p.yaml").expect("parses");
        let found = policy(&["deploy"]).check(
            &pipeline,
            &["a=gitlab-token".into(), "a=deploy".into()],
            &["gitlab:url=https://x,token-secret=operator-token".into()],
        );
        let fields: Vec<&str> = found.iter().map(|d| d.field_path.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.tasks[0].secrets[1]",
                "spec.finally[0].secrets[0]",
                "spec.decorators[0].secrets[0]",
                "spec.reporters[0].config.token-secret",
                "grants[0]",
                "reports[0].token-secret",
            ]
        );
        assert!(found[0].line > 0 && found[0].message.contains("gitlab-token"));
        assert_eq!(found[4].file, "request body");
        assert!(
            policy(&[
                "deploy",
                "gitlab-token",
                "ops",
                "ci-credential",
                "operator-token"
            ])
            .check(&pipeline, &["a=gitlab-token".into()], &[])
            .is_empty()
        );
    }
}
