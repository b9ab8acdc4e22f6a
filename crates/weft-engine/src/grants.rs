//! What each plugin of a run is given: one function, [`RunGrants::grant`], decides the
//! secrets, HTTP destinations, workspaces and limits of every task attempt, status
//! reporter, gate sample and form decorator. Default deny: a plugin gets only what
//! its entry names plus what the run grants it by name.
//!
//! | plugin | secrets | HTTP | workspaces | limits |
//! |---|---|---|---|---|
//! | task | its `secrets:` list, `--grant TASK=SECRET` | the run's rules, its own `TASK=RULE` ones | its bindings (read-only when the plugin declares so, or the workspace is a secret one) | the run's task limits, its `timeout` as wall clock |
//! | reporter | the secrets its plugin declares, its config's `token-secret` | the reporters' rules (a submission's: only what the operator allowed for reporters) | none | [`REPORTER_CALL_TIMEOUT`] per call |
//! | gate (each sample) | its `secrets:` list, `--grant TASK=SECRET` | the run's rules, its own `TASK=RULE` ones | none | the run's task limits; wall clock [`GATE_SAMPLE_TIMEOUT`] or the time left before the gate's timeout |
//! | decorator | its entry's `secrets:`, `--grant decorator:ID=SECRET` | the run's rules, its own `decorator:ID=RULE` ones | none | [`decorator_limits`] |

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_core::StartTask;
use weft_core::contract::PluginInfo;
use weft_core::model::Decorator;
use weft_runtime::{Grants, HttpRule, Limits, SecretValue, WorkspaceMount};

/// How long one reporter call may take (a forge request and its retries are the host's).
pub const REPORTER_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one sample of a gate may take (each of its plugins), in wall clock.
pub const GATE_SAMPLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The default time a form decorator may run, in wall clock and CPU.
pub const DEFAULT_DECORATOR_TIMEOUT: Duration = Duration::from_secs(10);

/// The limits of one decorator invocation: `timeout` of wall clock and of CPU, 128 MiB
/// of memory, 256 KiB of log, 1 MiB of decoration.
pub fn decorator_limits(timeout: Duration) -> Limits {
    Limits {
        cpu_budget: timeout,
        wall_clock: Some(timeout),
        memory_bytes: 128 << 20,
        log_bytes: 256 << 10,
        result_bytes: 1 << 20,
        ..Limits::default()
    }
}

/// Outbound HTTP a run grants, by who asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpGrants {
    /// Every task and decorator of the run (`--allow-http RULE`).
    #[serde(default)]
    pub all: Vec<HttpRule>,
    /// One task (`--allow-http TASK=RULE`).
    #[serde(default)]
    pub tasks: BTreeMap<String, Vec<HttpRule>>,
    /// One form decorator (`--allow-http decorator:ID=RULE`).
    #[serde(default)]
    pub decorators: BTreeMap<String, Vec<HttpRule>>,
    /// Status reporters; `None`: the rules of [`HttpGrants::all`] (the operator's own
    /// run). A `weft serve` submission's reporters get only what the operator allowed.
    #[serde(default)]
    pub reporters: Option<Vec<HttpRule>>,
}

/// Secrets a run grants by name on top of what each entry lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretGrants {
    /// Per task (`--grant TASK=SECRET`).
    #[serde(default)]
    pub tasks: BTreeMap<String, BTreeSet<String>>,
    /// Per form decorator id (`--grant decorator:ID=SECRET`).
    #[serde(default)]
    pub decorators: BTreeMap<String, BTreeSet<String>>,
}

/// Who is being granted.
#[derive(Debug, Clone, Copy)]
pub enum Grantee<'a> {
    /// One attempt of a task.
    Task {
        /// The attempt as the run state asks for it.
        start: &'a StartTask,
        /// What its plugin declares (read-only workspaces).
        info: &'a PluginInfo,
    },
    /// A status reporter.
    Reporter {
        /// The secret its config names as its token (`token-secret`).
        token_secret: Option<&'a str>,
        /// What its plugin declares (secrets it needs).
        info: &'a PluginInfo,
    },
    /// One sample of a gate (each of its plugins).
    Gate {
        /// The gate's attempt as the run state asks for it.
        start: &'a StartTask,
        /// Time left before the gate's timeout, if it has one: a sample may not outlast it.
        time_left: Option<Duration>,
    },
    /// A form decorator.
    Decorator {
        /// Its entry in `spec.decorators`.
        decorator: &'a Decorator,
    },
}

/// What one invocation is given.
#[derive(Debug, Clone)]
pub struct Allowance {
    /// Its capabilities.
    pub grants: Grants,
    /// Its limits.
    pub limits: Limits,
}

/// Everything a run may grant its plugins: the secret values it can resolve, what it
/// grants by name, its HTTP rules, its workspaces and its limits.
#[derive(Debug, Clone)]
pub struct RunGrants {
    /// Secret values by the names plugins ask for (`NAME.KEY`, and `NAME` for single-key
    /// secrets): see [`crate::secrets::SecretStore::flatten`].
    pub secrets: BTreeMap<String, SecretValue>,
    /// Secrets granted by name.
    pub secret_grants: SecretGrants,
    /// HTTP rules.
    pub http: HttpGrants,
    /// Bound pipeline workspaces: name -> host directory.
    pub workspaces: BTreeMap<String, PathBuf>,
    /// Pipeline workspaces every task mounts read-only (secret workspaces).
    pub read_only_workspaces: BTreeSet<String>,
    /// Limits of each task attempt (the wall clock is the task's `timeout`).
    pub task_limits: Limits,
    /// How long each form decorator may run.
    pub decorator_timeout: Duration,
}

impl Default for RunGrants {
    fn default() -> Self {
        RunGrants {
            secrets: BTreeMap::new(),
            secret_grants: SecretGrants::default(),
            http: HttpGrants::default(),
            workspaces: BTreeMap::new(),
            read_only_workspaces: BTreeSet::new(),
            task_limits: Limits::default(),
            decorator_timeout: DEFAULT_DECORATOR_TIMEOUT,
        }
    }
}

impl RunGrants {
    /// What `grantee` is given (see the module docs for the table).
    pub fn grant(&self, grantee: Grantee<'_>) -> Allowance {
        let mut grants = Grants::default();
        let limits = match grantee {
            Grantee::Task { start, info } => {
                self.grant_task_secrets_and_http(&mut grants, start);
                for (task_side, pipeline_side) in &start.workspaces {
                    let Some(host_path) = self.workspaces.get(pipeline_side) else {
                        continue;
                    };
                    let declared_read_only = info
                        .capabilities
                        .workspaces
                        .iter()
                        .any(|w| &w.name == task_side && w.read_only);
                    grants.workspaces.push(WorkspaceMount {
                        name: task_side.clone(),
                        host_path: host_path.clone(),
                        guest_path: format!("/workspace/{task_side}"),
                        read_only: declared_read_only
                            || self.read_only_workspaces.contains(pipeline_side),
                    });
                }
                Limits {
                    wall_clock: start.timeout,
                    ..self.task_limits.clone()
                }
            }
            Grantee::Gate { start, time_left } => {
                // A gate is granted as its task would be, without workspaces.
                self.grant_task_secrets_and_http(&mut grants, start);
                let wall_clock =
                    time_left.map_or(GATE_SAMPLE_TIMEOUT, |left| left.min(GATE_SAMPLE_TIMEOUT));
                Limits {
                    wall_clock: Some(wall_clock),
                    ..self.task_limits.clone()
                }
            }
            Grantee::Reporter { token_secret, info } => {
                let token = token_secret.map(str::to_string);
                self.add_secrets(
                    &mut grants,
                    info.capabilities.secrets.iter().chain(token.iter()),
                );
                grants.http = self
                    .http
                    .reporters
                    .clone()
                    .unwrap_or_else(|| self.http.all.clone());
                Limits {
                    wall_clock: Some(REPORTER_CALL_TIMEOUT),
                    ..Limits::default()
                }
            }
            Grantee::Decorator { decorator } => {
                let id = &decorator.id.value;
                let listed = decorator.secrets.iter().map(|s| &s.value);
                let named = self.secret_grants.decorators.get(id);
                self.add_secrets(&mut grants, listed.chain(named.into_iter().flatten()));
                grants.http = self.http.all.clone();
                grants
                    .http
                    .extend(self.http.decorators.get(id).into_iter().flatten().cloned());
                decorator_limits(self.decorator_timeout)
            }
        };
        Allowance { grants, limits }
    }

    /// A task's (or gate's) secrets: its `secrets:` list and what the run grants it by
    /// name; its HTTP: the run's rules and its own.
    fn grant_task_secrets_and_http(&self, grants: &mut Grants, start: &StartTask) {
        let named = self.secret_grants.tasks.get(&start.pipeline_task);
        self.add_secrets(
            grants,
            start.secrets.iter().chain(named.into_iter().flatten()),
        );
        grants.http = self.http.all.clone();
        grants.http.extend(
            self.http
                .tasks
                .get(&start.pipeline_task)
                .into_iter()
                .flatten()
                .cloned(),
        );
    }

    /// Grants each name that resolves; the rest is refused at `secrets.get` time with a
    /// log line naming the plugin and the secret (the runtime's `not-granted`).
    fn add_secrets<'a>(&self, grants: &mut Grants, names: impl Iterator<Item = &'a String>) {
        for name in names {
            if let Some(value) = self.secrets.get(name) {
                grants.secrets.insert(name.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::contract::{Capabilities, WorkspaceSpec};
    use weft_core::{Pos, Spanned};

    fn secret(value: &str) -> SecretValue {
        SecretValue::checked("s", value.to_string()).expect("long enough")
    }

    fn rule(text: &str) -> HttpRule {
        HttpRule::parse(text).expect("rule")
    }

    fn info(secrets: &[&str], read_only: &[&str]) -> PluginInfo {
        PluginInfo {
            name: "p".into(),
            version: "1".into(),
            description: String::new(),
            params: Vec::new(),
            results: Vec::new(),
            results_fixed: false,
            accepts_any_params: false,
            capabilities: Capabilities {
                secrets: secrets.iter().map(|s| s.to_string()).collect(),
                http_hosts: Vec::new(),
                workspaces: read_only
                    .iter()
                    .map(|name| WorkspaceSpec {
                        name: name.to_string(),
                        description: String::new(),
                        read_only: true,
                        optional: false,
                    })
                    .collect(),
            },
        }
    }

    fn run() -> RunGrants {
        RunGrants {
            secrets: BTreeMap::from([
                ("deploy".to_string(), secret("deploy-value-1")),
                ("gitlab-token".to_string(), secret("gitlab-value-1")),
                ("ci".to_string(), secret("ci-value-0001")),
                ("other".to_string(), secret("other-value-1")),
            ]),
            secret_grants: SecretGrants {
                tasks: BTreeMap::from([(
                    "report".to_string(),
                    BTreeSet::from(["gitlab-token".to_string()]),
                )]),
                decorators: BTreeMap::from([(
                    "http-token".to_string(),
                    BTreeSet::from(["ci".to_string()]),
                )]),
            },
            http: HttpGrants {
                all: vec![rule("api.example.com")],
                tasks: BTreeMap::from([("report".to_string(), vec![rule("gitlab.example.com")])]),
                decorators: BTreeMap::from([(
                    "http-token".to_string(),
                    vec![rule("auth.example.com")],
                )]),
                reporters: None,
            },
            workspaces: BTreeMap::from([
                ("src".to_string(), PathBuf::from("/w/src")),
                ("creds".to_string(), PathBuf::from("/w/creds")),
            ]),
            read_only_workspaces: BTreeSet::from(["creds".to_string()]),
            task_limits: Limits::default(),
            decorator_timeout: Duration::from_secs(3),
        }
    }

    fn start(name: &str, secrets: &[&str]) -> StartTask {
        StartTask {
            node: 0,
            name: name.into(),
            pipeline_task: name.into(),
            plugin: "p".into(),
            attempt: 0,
            retries: 0,
            is_finally: false,
            params: BTreeMap::new(),
            timeout: Some(Duration::from_secs(7)),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            workspaces: vec![
                ("source".into(), "src".into()),
                ("cfg".into(), "src".into()),
                ("secret".into(), "creds".into()),
                ("missing".into(), "unbound".into()),
            ],
        }
    }

    fn names<T>(map: &BTreeMap<String, T>) -> Vec<&str> {
        map.keys().map(String::as_str).collect()
    }

    fn hosts(rules: &[HttpRule]) -> Vec<String> {
        rules.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_task_gets_its_list_its_grants_its_rules_and_its_workspaces() {
        let run = run();
        let build = run.grant(Grantee::Task {
            start: &start("build", &["deploy", "not-defined"]),
            info: &info(&[], &["cfg"]),
        });
        assert_eq!(names(&build.grants.secrets), ["deploy"]);
        assert_eq!(hosts(&build.grants.http), ["api.example.com"]);
        let mounts: Vec<(&str, bool)> = build
            .grants
            .workspaces
            .iter()
            .map(|m| (m.name.as_str(), m.read_only))
            .collect();
        assert_eq!(mounts, [("source", false), ("cfg", true), ("secret", true)]);
        assert_eq!(build.limits.wall_clock, Some(Duration::from_secs(7)));

        let report = run.grant(Grantee::Task {
            start: &start("report", &[]),
            info: &info(&[], &[]),
        });
        assert_eq!(names(&report.grants.secrets), ["gitlab-token"]);
        assert_eq!(
            hosts(&report.grants.http),
            ["api.example.com", "gitlab.example.com"]
        );
    }

    #[test]
    fn a_gate_gets_its_list_its_grants_and_its_rules_but_no_workspace() {
        let run = run();
        let given = run.grant(Grantee::Gate {
            start: &start("report", &["deploy"]),
            time_left: None,
        });
        assert_eq!(names(&given.grants.secrets), ["deploy", "gitlab-token"]);
        assert_eq!(
            hosts(&given.grants.http),
            ["api.example.com", "gitlab.example.com"]
        );
        assert!(given.grants.workspaces.is_empty());
        // One sample is bounded on its own, and never outlasts the gate's timeout.
        assert_eq!(given.limits.wall_clock, Some(GATE_SAMPLE_TIMEOUT));
        let near_the_end = run.grant(Grantee::Gate {
            start: &start("report", &[]),
            time_left: Some(Duration::from_secs(2)),
        });
        assert_eq!(near_the_end.limits.wall_clock, Some(Duration::from_secs(2)));
    }

    #[test]
    fn a_reporter_gets_its_declared_secrets_its_token_and_the_reporters_rules() {
        let mut run = run();
        let given = run.grant(Grantee::Reporter {
            token_secret: Some("gitlab-token"),
            info: &info(&["other"], &[]),
        });
        assert_eq!(names(&given.grants.secrets), ["gitlab-token", "other"]);
        assert_eq!(hosts(&given.grants.http), ["api.example.com"]);
        assert!(given.grants.workspaces.is_empty());
        assert_eq!(given.limits.wall_clock, Some(REPORTER_CALL_TIMEOUT));
        // A submission's reporters reach only what the operator allowed for reporters.
        run.http.reporters = Some(vec![rule("status.example.com")]);
        let given = run.grant(Grantee::Reporter {
            token_secret: Some("gitlab-token"),
            info: &info(&[], &[]),
        });
        assert_eq!(hosts(&given.grants.http), ["status.example.com"]);
    }

    #[test]
    fn a_decorator_gets_its_list_its_grants_and_its_rules_never_task_ones() {
        let run = run();
        let decorator = Decorator {
            id: Spanned::new("http-token".into(), Pos::default()),
            input: serde_json::Value::Null,
            input_pos: Pos::default(),
            secrets: vec![Spanned::new("deploy".into(), Pos::default())],
            index: 0,
            pos: Pos::default(),
        };
        let given = run.grant(Grantee::Decorator {
            decorator: &decorator,
        });
        assert_eq!(names(&given.grants.secrets), ["ci", "deploy"]);
        assert_eq!(
            hosts(&given.grants.http),
            ["api.example.com", "auth.example.com"]
        );
        assert!(given.grants.workspaces.is_empty());
        assert_eq!(given.limits.wall_clock, Some(Duration::from_secs(3)));
        assert_eq!(given.limits.memory_bytes, 128 << 20);
    }
}
