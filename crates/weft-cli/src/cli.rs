//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A pipeline engine where every task is a sandboxed WebAssembly component.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Log filter for weft's own diagnostics on stderr (e.g. `info`, `weft_engine=debug`).
    #[arg(long, global = true, env = "WEFT_LOG", default_value = "warn")]
    pub log: String,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline to its end.
    Run(Box<RunArgs>),
    /// Validate a pipeline without running anything (exit code 2 when invalid).
    Validate(PipelineArgs),
    /// Inspect and prepare plugins (also `weft plugins`).
    #[command(subcommand, visible_alias = "plugins")]
    Plugin(PluginCommand),
    /// Run history and recovery (the run store).
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Run the engine as a server: an HTTP API to submit, inspect and cancel runs, recovery
    /// of stopped engines' runs, and a graceful stop on SIGTERM.
    Serve(Box<ServeArgs>),
    /// Vote on a run's approval (`kind: ApprovalTask`): approve, or `--reject`.
    Approve(DecideArgs),
    /// Resume a run's manual intervention (`kind: ManualIntervention`), or `--reject` it.
    Resume(DecideArgs),
    /// The run store itself.
    #[command(subcommand)]
    Db(DbCommand),
    /// Cron schedules that `weft serve` fires.
    #[command(subcommand)]
    Schedules(SchedulesCommand),
    /// Tenants of a shared `weft serve`: each owns its runs, schedules, tokens and log.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// API tokens of a tenant's identities (each with a role there).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// The audit log: tokens, secrets, plugins, approvals and cancellations.
    Audit(AuditArgs),
    /// Tenants' secrets, encrypted in the store under the operator's key.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

/// The operator's key for tenants' secrets.
#[derive(Debug, Clone, Default, Args)]
pub struct SecretsKeyArgs {
    /// The key tenants' secrets are sealed with (a file: 32 bytes, 64 hex digits or base64;
    /// or the `WEFT_SECRETS_KEY` variable). Without one, tenants' secrets are off.
    #[arg(
        long = "secrets-key-file",
        value_name = "FILE",
        env = "WEFT_SECRETS_KEY_FILE"
    )]
    pub key_file: Option<PathBuf>,
    /// An earlier key, to open values sealed before a rotation (repeatable).
    #[arg(long = "secrets-old-key-file", value_name = "FILE")]
    pub old_key_files: Vec<PathBuf>,
}

/// `weft secrets ...`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Write a secret's key; the value is read from standard input (never from the
    /// command line, where other users could see it).
    Set {
        /// The secret.
        name: String,
        /// The key within it.
        #[arg(long, value_name = "KEY", default_value = "token")]
        key: String,
        /// The tenant.
        #[arg(long, value_name = "TENANT", default_value = weft_store::DEFAULT_TENANT)]
        tenant: String,
        /// The key to seal it with.
        #[command(flatten)]
        keys: SecretsKeyArgs,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// A tenant's secrets: names, keys and when they were written (never values).
    List {
        /// The tenant.
        #[arg(long, value_name = "TENANT", default_value = weft_store::DEFAULT_TENANT)]
        tenant: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a secret (every key).
    Delete {
        /// The secret.
        name: String,
        /// The tenant.
        #[arg(long, value_name = "TENANT", default_value = weft_store::DEFAULT_TENANT)]
        tenant: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Seal every value again under the current key (after a key rotation).
    Rotate {
        /// The current key and the old ones.
        #[command(flatten)]
        keys: SecretsKeyArgs,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `weft tenants ...`.
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant (a DNS-1123 label).
    Create {
        /// The tenant's name.
        name: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The tenants.
    List {
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `weft tokens ...`.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Issue a token: printed once on standard output, stored only as a hash. Sets the
    /// identity's role (and groups) in the tenant.
    Create(TokenCreateArgs),
    /// Tokens (never the tokens themselves): id, identity, state, expiry.
    List {
        /// Only this tenant's.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by its id: it stops working at once, on every server.
    Revoke {
        /// The token's id (`weft tokens list`).
        id: String,
        /// Only if it is this tenant's.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `weft tokens create`.
#[derive(Debug, Clone, Args)]
pub struct TokenCreateArgs {
    /// The tenant.
    #[arg(long, value_name = "TENANT", default_value = weft_store::DEFAULT_TENANT)]
    pub tenant: String,
    /// The identity the token authenticates as.
    #[arg(long, value_name = "NAME")]
    pub identity: String,
    /// The identity's role in the tenant: viewer, submitter, approver or admin.
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    /// A group of the identity (for `group:NAME` approvers; repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// When it expires: a duration (`30d`, `12h`) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `weft audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Only this tenant's entries.
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Entries after this one (its `seq`).
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    pub after: u64,
    /// At most this many.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `weft approve` and `weft resume`.
#[derive(Debug, Clone, Args)]
pub struct DecideArgs {
    /// The run.
    pub run: String,
    /// The task that waits.
    pub task: String,
    /// Reject instead of approving (resuming).
    #[arg(long)]
    pub reject: bool,
    /// A message kept with the decision (and shown on the forge for a rejection).
    #[arg(long, short = 'm', value_name = "TEXT", default_value = "")]
    pub message: String,
    /// Who decides (default: the OS user name). For a single operator's store; a server
    /// takes the identity from the caller's token.
    #[arg(long = "as", value_name = "NAME")]
    pub identity: Option<String>,
    /// Defer an approval until this time (RFC 3339, e.g. `2026-12-24T02:00:00Z`).
    #[arg(long, value_name = "TIME")]
    pub defer_until: Option<String>,
    /// Identities and their groups (JSON, default `identities.json` in the data
    /// directory): `{"alice": {"groups": ["release-managers"]}}`.
    #[arg(long, value_name = "FILE", env = "WEFT_IDENTITIES")]
    pub identities: Option<PathBuf>,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `weft db ...`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Bring the store's schema up to date (for operators who migrate separately, with
    /// `WEFT_DB_MIGRATE=off` on the servers); says from which version to which.
    Migrate {
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Read every page of a SQLite store and check it (`PRAGMA quick_check`); exits 3
    /// naming what is damaged. Opening a store checks only its header and schema, so
    /// that opening stays quick however many runs it keeps.
    Check {
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `weft serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A configuration file (TOML): the flags below by their long names, and the tenants
    /// served (`[tenants.NAME]`). Flags and their environment variables override it.
    #[arg(long = "config", value_name = "FILE", env = "WEFT_CONFIG")]
    pub config_file: Option<PathBuf>,

    /// The ids of the flags given on the command line or by environment variables (they
    /// win over the configuration file).
    #[arg(skip)]
    pub explicit: std::collections::BTreeSet<String>,

    /// The key of tenants' secrets.
    #[command(flatten)]
    pub secrets_key: SecretsKeyArgs,

    /// Address to listen on (`HOST:PORT`; port 0 picks a free one).
    #[arg(
        long,
        value_name = "ADDR",
        env = "WEFT_LISTEN",
        default_value = "127.0.0.1:7878"
    )]
    pub listen: String,

    /// A bearer token the API requires (`Authorization: Bearer TOKEN`). Without one the
    /// server listens only on a loopback address (or with `--insecure-no-auth`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WEFT_API_TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<String>,

    /// Listen on a non-loopback address without an API token: only for a server behind a
    /// proxy that authenticates every caller itself. Anyone who reaches the port can submit,
    /// read and cancel runs.
    #[arg(long)]
    pub insecure_no_auth: bool,

    /// Identities, their groups and their API tokens (JSON, default `identities.json` in
    /// the data directory): `{"alice": {"groups": ["release-managers"], "token": "..."}}`.
    /// A caller's token names who approves or resumes; `--api-token` callers are
    /// `operator`.
    #[arg(long, value_name = "FILE", env = "WEFT_IDENTITIES")]
    pub identities: Option<PathBuf>,

    /// Secrets submissions may use, by name (`NAME` covers every key of NAME, `NAME.KEY`
    /// one key; comma-separated, repeatable). Empty by default: a submitted pipeline's
    /// tasks, grants, form decorators and reporters get no operator secret unless it is
    /// listed here.
    #[arg(
        long = "submit-secrets",
        value_name = "NAME,...",
        value_delimiter = ',',
        env = "WEFT_SUBMIT_SECRETS"
    )]
    pub submit_secrets: Vec<String>,

    /// Send OpenTelemetry traces (a span per run and per task attempt; OTLP over HTTP)
    /// to this collector, e.g. `http://127.0.0.1:4318`. Off by default; OpenTelemetry's
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` also turns it on.
    #[arg(long, value_name = "URL", env = "WEFT_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Most combinations one task's `matrix` may fan out into, for every submission.
    #[arg(long, value_name = "N", default_value_t = weft_core::matrix::DEFAULT_MAX_COMBINATIONS, env = "WEFT_MAX_MATRIX_COMBINATIONS")]
    pub max_matrix_combinations: usize,

    /// Destinations status reporters configured by a submission (`reports` in the request,
    /// `spec.reporters` in its pipeline) may reach, as `--allow-http` rules (repeatable).
    /// None by default.
    #[arg(long = "report-allow-http", value_name = "RULE")]
    pub report_allow_http: Vec<String>,

    /// The lease TTL: runs whose heartbeat is older than this (their server died or lost
    /// the database) are taken over by a live server within about this long. Servers
    /// sharing a database should agree on it.
    #[arg(
        long,
        visible_alias = "lease-ttl",
        value_name = "DURATION",
        env = "WEFT_LEASE_TTL",
        default_value = "30s"
    )]
    pub recover_timeout: String,

    /// Workspace snapshots for runs that ask for them (`spec.workspaceSnapshots: true`):
    /// `db` (the run store, the default), a bucket directory shared by the servers (`DIR`
    /// or `file:///DIR`), or `off`. A run taken over on another machine restores its
    /// workspaces from there.
    #[arg(long = "workspace-snapshots", value_name = "TARGET")]
    pub workspace_snapshots: Option<String>,

    /// On SIGTERM, how long running tasks may take to finish before they are left to
    /// recovery.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub shutdown_grace: String,

    /// How many task attempts run at once on this server, all runs together; ready tasks
    /// of all tenants share them by weighted fair queuing (each tenant's `weight`). By
    /// default 4 per CPU, as many as one run may run at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536), env = "WEFT_TASK_SLOTS")]
    pub task_slots: Option<u32>,

    /// HTTP(S) destinations every run's tasks and reporters may reach, as
    /// `weft run --allow-http` (repeatable).
    #[arg(long = "allow-http", value_name = "[TASK=]RULE")]
    pub allow_http: Vec<String>,

    /// Secrets for every run, as `weft run --secret` (repeatable; `secrets.json` in the
    /// data directory is read too). Tasks get them only through `secrets:` or grants.
    #[arg(long = "secret", value_name = "NAME.KEY=SOURCE")]
    pub secrets: Vec<String>,

    /// How long a finished run waits for its statuses to be delivered.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub report_timeout: String,

    /// A registry (`HOST[:PORT]`, exactly as references name it) submissions may pull
    /// `oci://` plugins from (comma-separated, repeatable). None by default: a submitted
    /// pipeline naming a plugin by reference is refused, so no submission makes the
    /// server fetch a URL.
    #[arg(
        long = "allow-registry",
        value_name = "HOST[:PORT]",
        value_delimiter = ',',
        env = "WEFT_ALLOW_REGISTRY"
    )]
    pub allow_registries: Vec<String>,

    /// Where runs keep their logs, reports and default workspaces.
    #[arg(long, value_name = "DIR", env = "WEFT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// The run store: a SQLite file (default `weft.db` in the data directory), or a
    /// `postgres://USER@HOST:PORT/DATABASE` URL that several servers share.
    #[arg(long, value_name = "PATH|URL", env = "WEFT_DB", hide_env_values = true)]
    pub db: Option<PathBuf>,

    /// Plugin sources.
    #[command(flatten)]
    pub plugins: PluginArgs,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// One JSON document on stdout.
    Json,
    /// The run as a Tekton `PipelineRun` object with its status (`weft run`, `weft runs
    /// show`); elsewhere the same as `json`.
    Tekton,
    /// The run's DAG in Graphviz's DOT language (`weft runs show`); elsewhere the same as
    /// `json`.
    Dot,
}

impl OutputFormat {
    /// `json` for `tekton`: what commands without a Tekton form print.
    pub fn plain(self) -> OutputFormat {
        match self {
            OutputFormat::Tekton | OutputFormat::Dot => OutputFormat::Json,
            other => other,
        }
    }
}

/// Where plugins and compiled components come from.
#[derive(Debug, Clone, Args)]
pub struct PluginArgs {
    /// A directory of `*.wasm` plugins, searched after the built-ins (repeatable).
    #[arg(
        long = "plugins",
        value_name = "DIR",
        env = "WEFT_PLUGINS",
        value_delimiter = ':'
    )]
    pub plugin_dirs: Vec<PathBuf>,

    /// Where compiled components are cached.
    #[arg(long, value_name = "DIR", env = "WEFT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Registry options, for `oci://` plugins.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How plugins in OCI registries are reached (`oci://HOST/NAME@sha256:...`).
#[derive(Debug, Clone, Default, Args)]
pub struct RegistryArgs {
    /// A registry (`HOST[:PORT]`) reached over plain HTTP (repeatable). Loopback
    /// registries (`localhost`, `127.0.0.0/8`, `[::1]`) always are; any other registry is
    /// reached over HTTPS unless named here.
    #[arg(
        long = "registry-http",
        value_name = "HOST[:PORT]",
        value_delimiter = ',',
        env = "WEFT_REGISTRY_HTTP"
    )]
    pub plain_http: Vec<String>,

    /// The Docker config file registry credentials are read from (`auths`; default
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).
    #[arg(
        long = "registry-config",
        value_name = "FILE",
        env = "WEFT_REGISTRY_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// Where pulled plugins are kept by digest (default: `oci` in weft's cache directory).
    #[arg(
        long = "registry-cache",
        value_name = "DIR",
        env = "WEFT_REGISTRY_CACHE"
    )]
    pub cache: Option<PathBuf>,

    /// The registries this process may pull from; `None`: any (`weft serve` sets its
    /// `--allow-registry` list).
    #[arg(skip)]
    pub allowed: Option<Vec<String>>,
}

/// A pipeline file and its params.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// The pipeline file (YAML, `tekton.dev/v1`, `tekton.dev/v1beta1` or `weft.dev/v1`).
    pub file: PathBuf,

    /// A param value, `NAME=VALUE` (repeatable). Array and object params take JSON:
    /// `-p 'files=["a","b"]'`.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,

    /// Plugin sources.
    #[command(flatten)]
    pub plugins: PluginArgs,

    /// A directory of YAML files where a `PipelineRun`'s `pipelineRef` is looked up when
    /// the file does not hold the Pipeline (repeatable).
    #[arg(long = "pipelines", value_name = "DIR")]
    pub pipeline_dirs: Vec<PathBuf>,
    /// A lock file pinning plugin names to registry digests (`plugins: {NAME:
    /// oci://HOST/NAME@sha256:...}`). Default: `weft.lock` beside the pipeline, when there
    /// is one.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,

    /// Most combinations one task's `matrix` may fan out into (Tekton's
    /// `default-max-matrix-combinations-count`).
    #[arg(long, value_name = "N", default_value_t = weft_core::matrix::DEFAULT_MAX_COMBINATIONS, env = "WEFT_MAX_MATRIX_COMBINATIONS")]
    pub max_matrix_combinations: usize,

    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// `weft run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The pipeline and its params.
    #[command(flatten)]
    pub pipeline: PipelineArgs,

    /// Send OpenTelemetry traces (a span per run and per task attempt; OTLP over HTTP)
    /// to this collector, e.g. `http://127.0.0.1:4318`. Off by default; OpenTelemetry's
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` also turns it on.
    #[arg(long, value_name = "URL", env = "WEFT_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Bind a pipeline workspace to a host directory, `NAME=DIR`, or to a secret,
    /// `NAME=secret:SECRET` (its keys as read-only files in a private directory removed
    /// after the run; repeatable). Unbound required workspaces get a fresh directory under
    /// the run's directory.
    #[arg(long = "workspace", value_name = "NAME=DIR")]
    pub workspaces: Vec<String>,

    /// The host directory of a `PipelineRun` workspace's `persistentVolumeClaim` or
    /// `configMap` called NAME, `NAME=DIR` (repeatable); its `subPath` is a directory in it.
    #[arg(long = "volume", value_name = "NAME=DIR")]
    pub volumes: Vec<String>,

    /// How many tasks may run at once (default: 4 per core).
    #[arg(long, value_name = "N")]
    pub parallelism: Option<usize>,

    /// Timeout for the whole run (Go duration: `90s`, `1m30s`, `1h`).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Timeout for the non-finally tasks.
    #[arg(long, value_name = "DURATION")]
    pub tasks_timeout: Option<String>,

    /// Timeout for the finally tasks, from when they start.
    #[arg(long, value_name = "DURATION")]
    pub finally_timeout: Option<String>,

    /// The run's name (default: the pipeline's name and a random suffix).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Hand the run to the store and exit, printing its name: `weft runs recover` or
    /// `weft serve` on the same store runs it (useful for runs that wait for people).
    #[arg(long)]
    pub detach: bool,

    /// Start the run at this time (RFC 3339, e.g. `2026-12-24T02:00:00Z` or
    /// `2026-12-24T02:00:00+01:00`): it is created now in phase `Scheduled`. With
    /// `--detach`, `weft serve` on the same store starts it then.
    #[arg(long, value_name = "TIME", conflicts_with = "in_")]
    pub at: Option<String>,

    /// Start the run after this long (Go duration: `10m`, `1h30m`), as `--at`.
    #[arg(long = "in", id = "in_", value_name = "DURATION")]
    pub in_: Option<String>,

    /// Allow HTTP(S) requests to this destination, `[!private:][scheme://]host[:port]`,
    /// where host may be `*.suffix` (repeatable). `TASK=RULE` grants it to that task only;
    /// a bare rule to every task and reporter. Nothing is allowed by default. Loopback,
    /// private and link-local addresses are refused unless the rule starts with
    /// `!private:` (e.g. `!private:127.0.0.1:8080`). Form decorators get the bare rules
    /// and `decorator:ID=RULE` ones.
    #[arg(long = "allow-http", value_name = "[TASK=]RULE")]
    pub allow_http: Vec<String>,

    /// Define a secret, `NAME[.KEY]=env:VAR|file:PATH|literal:VALUE` (repeatable; wins
    /// over `secrets.json` in the data directory). Without `.KEY` the key is `token`. A
    /// task asks for `NAME.KEY`, or `NAME` when the secret has one key. Values shorter
    /// than 8 characters are refused with a warning. A task gets only the secrets its
    /// `secrets:` list or `--grant` names.
    #[arg(long = "secret", value_name = "NAME.KEY=SOURCE")]
    pub secrets: Vec<String>,

    /// Grant a secret to a task without editing the pipeline, `TASK=SECRET` (repeatable;
    /// SECRET is `NAME.KEY` or `NAME`), or to a form decorator, `decorator:ID=SECRET`.
    #[arg(long = "grant", value_name = "TASK=SECRET")]
    pub grants: Vec<String>,

    /// Report the run's status to a forge, `FORGE:KEY=VALUE,...` with FORGE one of
    /// `gitlab`, `github`, `gitea`, `bitbucket`, `webhook` (or a reporter plugin's name)
    /// and keys `url`, `project`, `sha`, `ref`, `context`, `target-url`, `token-secret`,
    /// `tasks=true`, ... (repeatable). Needs `--allow-http` for the forge's host.
    #[arg(long = "report", value_name = "FORGE:CONFIG")]
    pub reports: Vec<String>,

    /// How long `weft run` waits after the run for statuses to be delivered (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub report_timeout: String,

    /// How long each form decorator (`spec.decorators`) may run when the run is submitted,
    /// in wall-clock and in CPU time (Go duration); one that takes longer stops the
    /// submission.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub decorator_timeout: String,

    /// Where runs keep their logs, reports and default workspaces.
    #[arg(long, value_name = "DIR", env = "WEFT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// The run store (SQLite); default `weft.db` in the data directory.
    #[arg(long, value_name = "PATH", env = "WEFT_DB")]
    pub db: Option<PathBuf>,

    /// Workspace snapshots for recovery.
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
}

/// Workspace snapshots of `weft run` (see `snapshots.rs`).
#[derive(Debug, Clone, Default, Args)]
pub struct SnapshotArgs {
    /// Archive the workspaces a task could write after it ends, for recovery: into the run
    /// store (`db`, the default), a directory (`DIR` or `file:///DIR`), or `off` (even when
    /// the pipeline sets `spec.workspaceSnapshots: true`).
    #[arg(
        long = "workspace-snapshots",
        value_name = "TARGET",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "db"
    )]
    pub target: Option<String>,

    /// Largest compressed snapshot, in bytes or with a `KiB`/`MiB`/`GiB` (or `k`/`M`/`G`)
    /// suffix (default `64MiB`, also the most the run store takes); a larger workspace is
    /// not archived (a warning, never a failure).
    #[arg(long = "snapshot-max-bytes", value_name = "SIZE")]
    pub max_bytes: Option<String>,

    /// Snapshots kept per workspace of a run, the newest (default 3; at most 16 in the run
    /// store).
    #[arg(long = "snapshot-keep", value_name = "N")]
    pub keep: Option<u32>,
}

/// `weft plugin ...`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List the plugins weft can find.
    List {
        /// Plugin sources.
        #[command(flatten)]
        plugins: PluginArgs,
    },
    /// Show what a plugin declares: params, results, capabilities.
    Describe {
        /// The plugin's name, or a path to a `.wasm` file.
        name: String,
        /// Plugin sources.
        #[command(flatten)]
        plugins: PluginArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
    },
    /// Write a new plugin project (a task, reporter, decorator or gate in Rust, Python
    /// or JavaScript) that builds with `weft plugin build` and passes its own test.
    New {
        /// What the plugin is.
        #[arg(value_enum)]
        kind: weft_cli::plugin_build::manifest::Kind,
        /// Its name (lower-case letters, digits and `-`): the component is `NAME.wasm`.
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: weft_cli::plugin_build::manifest::Lang,
        /// Where to write it (default: `./NAME`); must not exist or be empty.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Build the plugin project in DIR (default `.`) into `DIR/NAME.wasm`, with cargo,
    /// componentize-py or `jco componentize` as its `weft-plugin.toml` says.
    Build {
        /// The project directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Push a component to an OCI registry as a Wasm artifact (config
    /// `application/vnd.wasm.config.v0+json`, one `application/wasm` layer); prints the
    /// reference pinned by digest, for pipelines and `weft.lock`.
    ///
    /// With `--tenant T` instead of a reference, the component is uploaded to this weft's
    /// store as tenant T's plugin (checked, kept by digest, found only by T's runs).
    Push {
        /// The component (`.wasm`).
        file: PathBuf,
        /// Where to push it: `oci://HOST[:PORT]/NAMESPACE/NAME:TAG`.
        reference: Option<String>,
        /// Upload it as this tenant's plugin instead.
        #[arg(long, value_name = "TENANT", conflicts_with = "reference")]
        tenant: Option<String>,
        /// Its name in the tenant (default: the file's name without `.wasm`).
        #[arg(long, value_name = "NAME", requires = "tenant")]
        name: Option<String>,
        /// Plugin sources (first-party names cannot be taken) and registry options.
        #[command(flatten)]
        plugins: PluginArgs,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Pull a component from an OCI registry, verified against its digest; prints the
    /// reference pinned by digest.
    Pull {
        /// `oci://HOST[:PORT]/NAMESPACE/NAME` with `:TAG` or `@sha256:...`.
        reference: String,
        /// Where to write it (default: `NAME.wasm` in the current directory).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// Registry options.
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Compile a component ahead of time into the cache.
    Compile {
        /// The `.wasm` file.
        file: PathBuf,
        /// Where compiled components are cached.
        #[arg(long, value_name = "DIR", env = "WEFT_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
}

/// Where the run store is.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The run store: a SQLite file (default `weft.db` in the data directory) or a
    /// `postgres://` URL.
    #[arg(long, value_name = "PATH|URL", env = "WEFT_DB", hide_env_values = true)]
    pub db: Option<PathBuf>,

    /// The data directory (for the default store path).
    #[arg(long, value_name = "DIR", env = "WEFT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// `weft runs ...`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recent runs with their status, duration and pipeline.
    List {
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
        /// How many runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One run: its task attempts with outcomes, reasons and results.
    Show {
        /// The run's name.
        run: String,
        /// Which attempt (default: the latest; see `weft runs rerun`).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        attempt: Option<u32>,
        /// Print the run's DAG: its stages, each task's outcome and what it waited for
        /// (`--output dot` prints it for Graphviz instead).
        #[arg(long)]
        graph: bool,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// A run's log lines, optionally of one task; `--follow` waits for more.
    Logs {
        /// The run's name.
        run: String,
        /// Only this task.
        task: Option<String>,
        /// Which attempt (default: the latest).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        attempt: Option<u32>,
        /// Keep printing new lines until the run finishes.
        #[arg(long)]
        follow: bool,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Start the next attempt of a finished run (Azure's redeploy, GitHub's re-run): the
    /// earlier attempts stay readable (`weft runs show RUN --attempt N`). Runs in the
    /// foreground like `weft run`, with the same view, JSON document and exit codes.
    Rerun(Box<RerunArgs>),
    /// Start a run created pending (a `PipelineRun` with `spec.status: PipelineRunPending`)
    /// and run it to its end, as `weft run` does.
    Start {
        /// The run's name.
        run: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
        /// Define a secret for the run, as `weft run --secret` (repeatable).
        #[arg(long = "secret", value_name = "NAME.KEY=SOURCE")]
        secrets: Vec<String>,
        /// Plugin sources.
        #[command(flatten)]
        plugins: PluginArgs,
    },
    /// Take over runs whose engine stopped (heartbeat older than the recovery timeout) and
    /// finish them per their recovery strategy (`none`, `startOver`, `resume`); also
    /// deliver statuses finished runs still owe their forges.
    Recover {
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
        /// How old a heartbeat must be before the run counts as abandoned.
        #[arg(long, value_name = "DURATION", default_value = "30s")]
        recover_timeout: String,
        /// Define a secret for the recovered runs, as `weft run --secret` (repeatable;
        /// `secrets.json` in the data directory is read too). Secret values are never
        /// stored with a run.
        #[arg(long = "secret", value_name = "NAME.KEY=SOURCE")]
        secrets: Vec<String>,
        /// Plugin sources.
        #[command(flatten)]
        plugins: PluginArgs,
    },
}

/// `weft runs rerun`.
#[derive(Debug, Clone, Args)]
pub struct RerunArgs {
    /// The run (its name, or an attempt's id such as `deploy~2`).
    pub run: String,
    /// Keep the tasks that succeeded in the latest attempt (their outcome and results);
    /// run the rest, and every `finally` task, again.
    #[arg(long)]
    pub failed_only: bool,
    /// Replace a param, `NAME=VALUE` (repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Hand the attempt to the store and exit, as `weft run --detach`.
    #[arg(long)]
    pub detach: bool,
    /// Define a secret, as `weft run --secret` (repeatable; secret values are never stored
    /// with a run, so a re-run needs them again).
    #[arg(long = "secret", value_name = "NAME.KEY=SOURCE")]
    pub secrets: Vec<String>,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Plugin sources.
    #[command(flatten)]
    pub plugins: PluginArgs,
}

/// `weft schedules ...`: cron schedules `weft serve` fires.
#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Add a schedule: every tick of CRON (in TIMEZONE) starts a run of FILE, named
    /// `NAME-<time>`, on whichever `weft serve` sharing the store claims the tick first.
    Add(Box<ScheduleAddArgs>),
    /// The schedules, with their next tick.
    List {
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a schedule (runs it started are kept).
    Remove {
        /// The schedule.
        name: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `weft schedules add`.
#[derive(Debug, Clone, Args)]
pub struct ScheduleAddArgs {
    /// The schedule's name (a DNS-1123 label).
    pub name: String,
    /// The cron expression: 5 fields (`0 2 * * 1-5`), or 6 with seconds first.
    #[arg(long, value_name = "EXPR")]
    pub cron: String,
    /// The IANA time zone the expression is read in.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub timezone: String,
    /// The pipeline file.
    pub file: PathBuf,
    /// A param value, `NAME=VALUE` (repeatable), as `weft run -p`.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Plugin sources (to validate the pipeline now rather than at every tick).
    #[command(flatten)]
    pub plugins: PluginArgs,
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
}

#[cfg(test)]
mod tests {
    /// clap's own checks of every subcommand (duplicate ids, conflicting flags), which a
    /// binary otherwise meets only when someone runs that subcommand.
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
