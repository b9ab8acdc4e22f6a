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
    Run(RunArgs),
    /// Validate a pipeline without running anything (exit code 2 when invalid).
    Validate(PipelineArgs),
    /// Inspect and prepare plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// One JSON document on stdout.
    Json,
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

    /// Bind a pipeline workspace to a host directory, `NAME=DIR` (repeatable). Unbound
    /// required workspaces get a fresh directory under the run's directory.
    #[arg(long = "workspace", value_name = "NAME=DIR")]
    pub workspaces: Vec<String>,

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

    /// Allow tasks HTTP(S) requests to this destination, `[scheme://]host[:port]`, where
    /// host may be `*.suffix` (repeatable). Nothing is allowed by default.
    #[arg(long = "allow-http", value_name = "RULE")]
    pub allow_http: Vec<String>,

    /// Where runs keep their logs, reports and default workspaces.
    #[arg(long, value_name = "DIR", env = "WEFT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
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
    /// Compile a component ahead of time into the cache.
    Compile {
        /// The `.wasm` file.
        file: PathBuf,
        /// Where compiled components are cached.
        #[arg(long, value_name = "DIR", env = "WEFT_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
}
