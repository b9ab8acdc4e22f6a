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

use crate::grants::SecretGrants;
use crate::report::ReporterSpec;
use crate::secrets::split_name;
use serde::{Deserialize, Serialize};
use weft_core::Diagnostic;
use weft_core::diag::Pos;
use weft_core::model::Pipeline;

/// Diagnostic code of a secret a submission may not use.
pub const SECRET_NOT_SUBMITTABLE: &str = "secret-not-submittable";

/// Where diagnostics about the submission itself (not the pipeline file) point.
const REQUEST: &str = "submission";

/// What submissions may use; kept with each submitted run so recovery applies it again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionPolicy {
    /// Secret names submissions may use: `NAME` allows every key of `NAME`, `NAME.KEY`
    /// that key.
    pub secrets: BTreeSet<String>,
}

impl SubmissionPolicy {
    /// Whether a submission may use secret `requested` (`NAME` or `NAME.KEY`).
    pub fn allows_secret(&self, requested: &str) -> bool {
        let (name, _) = split_name(requested);
        self.secrets.contains(requested) || self.secrets.contains(name)
    }

    /// Every secret `pipeline`, the run's `grants` and its `reporters` name that
    /// submissions may not use, one diagnostic each.
    pub fn check(
        &self,
        pipeline: &Pipeline,
        grants: &SecretGrants,
        reporters: &[ReporterSpec],
    ) -> Vec<Diagnostic> {
        let file = pipeline.file.as_str();
        let mut found = Vec::new();
        let mut refuse = |file: &str, pos: Pos, field: String, secret: &str| {
            if !self.allows_secret(secret) {
                found.push(refusal(file, pos, field, secret));
            }
        };
        for nested in pipeline.tasks_deep() {
            let (task, file) = (nested.task, nested.pipeline.file.as_str());
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
        for (task, secrets) in &grants.tasks {
            for secret in secrets {
                refuse(
                    REQUEST,
                    Pos::default(),
                    format!("grants[{task}={secret}]"),
                    secret,
                );
            }
        }
        for (id, secrets) in &grants.decorators {
            for secret in secrets {
                refuse(
                    REQUEST,
                    Pos::default(),
                    format!("grants[decorator:{id}={secret}]"),
                    secret,
                );
            }
        }
        for (i, spec) in reporters.iter().enumerate() {
            if let Some(secret) = spec.get("token-secret") {
                refuse(
                    REQUEST,
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
    use std::collections::BTreeMap;

    fn policy(secrets: &[&str]) -> SubmissionPolicy {
        SubmissionPolicy {
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
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
        let grants = SecretGrants {
            tasks: BTreeMap::from([(
                "a".to_string(),
                BTreeSet::from(["gitlab-token".to_string(), "deploy".to_string()]),
            )]),
            decorators: BTreeMap::new(),
        };
        let reporter = ReporterSpec {
            id: String::new(),
            plugin: "reporter-gitlab".into(),
            config: vec![("token-secret".into(), "operator-token".into())],
            tasks: false,
        };
        let found = policy(&["deploy"]).check(&pipeline, &grants, &[reporter]);
        let fields: Vec<&str> = found.iter().map(|d| d.field_path.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.tasks[0].secrets[1]",
                "spec.finally[0].secrets[0]",
                "spec.decorators[0].secrets[0]",
                "spec.reporters[0].config.token-secret",
                "grants[a=gitlab-token]",
                "reports[0].token-secret",
            ]
        );
        assert!(found[0].line > 0 && found[0].message.contains("gitlab-token"));
        assert_eq!(found[4].file, "submission");
        let all = policy(&[
            "deploy",
            "gitlab-token",
            "ops",
            "ci-credential",
            "operator-token",
        ]);
        assert!(all.check(&pipeline, &grants, &[]).is_empty());
    }
}
