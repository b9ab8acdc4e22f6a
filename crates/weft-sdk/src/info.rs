//! What a plugin says about itself: [`PluginInfo`], [`Param`], [`Workspace`].

use crate::raw;

/// What a plugin declares about itself, returned by [`Task::describe`](crate::Task::describe).
///
/// Built with chained calls:
///
/// ```
/// use weft_sdk::{Param, PluginInfo, Workspace};
///
/// let info = PluginInfo::new("archive", "1.2.0")
///     .description("Packs a directory")
///     .param(Param::string("dir").description("Directory inside the source workspace"))
///     .param(Param::array("exclude").default_array(["target"]))
///     .result("digest", "sha256 of the archive")
///     .results_fixed(true)
///     .workspace(Workspace::new("source").read_only())
///     .http_host("uploads.example.com")
///     .secret("upload-token");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    name: String,
    version: String,
    description: String,
    params: Vec<Param>,
    results: Vec<(String, String)>,
    results_fixed: bool,
    secrets: Vec<String>,
    http_hosts: Vec<String>,
    workspaces: Vec<Workspace>,
}

impl PluginInfo {
    /// A plugin named `name` (what `taskRef.name` refers to) at `version`
    /// (`env!("CARGO_PKG_VERSION")` is a good choice). It declares no params, no results
    /// (`results_fixed` false) and needs nothing from the host until told otherwise.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            params: Vec::new(),
            results: Vec::new(),
            results_fixed: false,
            secrets: Vec::new(),
            http_hosts: Vec::new(),
            workspaces: Vec::new(),
        }
    }

    /// Sets what the plugin does.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Declares a parameter.
    pub fn param(mut self, param: Param) -> Self {
        self.params.push(param);
        self
    }

    /// Declares a result the plugin may produce.
    pub fn result(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.results.push((name.into(), description.into()));
        self
    }

    /// Whether the declared results are the complete set (references to other results are
    /// then validation errors). Off by default, for plugins whose results are dynamic.
    pub fn results_fixed(mut self, fixed: bool) -> Self {
        self.results_fixed = fixed;
        self
    }

    /// Asks for access to the secret `name` (`NAME` or `NAME.KEY`). The host grants the
    /// intersection of what plugins ask for and what the operator allows.
    pub fn secret(mut self, name: impl Into<String>) -> Self {
        self.secrets.push(name.into());
        self
    }

    /// Asks to call `host` over HTTP(S): `host`, `host:port` or `*.suffix`.
    pub fn http_host(mut self, host: impl Into<String>) -> Self {
        self.http_hosts.push(host.into());
        self
    }

    /// Declares a workspace the plugin reads or writes.
    pub fn workspace(mut self, workspace: Workspace) -> Self {
        self.workspaces.push(workspace);
        self
    }

    /// Converts to the WIT record.
    pub fn into_raw(self) -> raw::PluginInfo {
        raw::PluginInfo {
            name: self.name,
            version: self.version,
            description: self.description,
            params: self.params.into_iter().map(Param::into_raw).collect(),
            results: self
                .results
                .into_iter()
                .map(|(name, description)| raw::ResultSpec { name, description })
                .collect(),
            results_fixed: self.results_fixed,
            capabilities: raw::Capabilities {
                secrets: self.secrets,
                http_hosts: self.http_hosts,
                workspaces: self
                    .workspaces
                    .into_iter()
                    .map(Workspace::into_raw)
                    .collect(),
            },
        }
    }
}

/// The declared type of a parameter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Array,
    Object,
}

/// A default value of a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DefaultValue {
    Str(String),
    Array(Vec<String>),
    Object(Vec<(String, String)>),
}

/// One parameter a plugin accepts. Required unless it has a default.
///
/// ```
/// use weft_sdk::Param;
///
/// let message = Param::string("message").description("What to print"); // required
/// let level = Param::string("level").one_of(["info", "warn"]).default("info");
/// let files = Param::array("files").default_array(Vec::<String>::new());
/// let labels = Param::object("labels").default_object([("team", "core")]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    name: String,
    description: String,
    kind: Kind,
    default: Option<DefaultValue>,
    allowed: Vec<String>,
}

impl Param {
    fn new(name: impl Into<String>, kind: Kind) -> Self {
        Param {
            name: name.into(),
            description: String::new(),
            kind,
            default: None,
            allowed: Vec::new(),
        }
    }

    /// A string parameter (`type: string`).
    pub fn string(name: impl Into<String>) -> Self {
        Param::new(name, Kind::Str)
    }

    /// An array-of-strings parameter (`type: array`).
    pub fn array(name: impl Into<String>) -> Self {
        Param::new(name, Kind::Array)
    }

    /// An object parameter with string values (`type: object`).
    pub fn object(name: impl Into<String>) -> Self {
        Param::new(name, Kind::Object)
    }

    /// Sets what the parameter is for.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Makes the parameter optional with this string default.
    pub fn default(mut self, value: impl Into<String>) -> Self {
        self.default = Some(DefaultValue::Str(value.into()));
        self
    }

    /// Makes the parameter optional with this array default.
    pub fn default_array<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.default = Some(DefaultValue::Array(
            values.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Makes the parameter optional with this object default.
    pub fn default_object<I, K, V>(mut self, entries: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.default = Some(DefaultValue::Object(
            entries
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ));
        self
    }

    /// Restricts a string parameter to these values (an enum). A default, if any, must be
    /// one of them.
    pub fn one_of<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed = values.into_iter().map(Into::into).collect();
        self
    }

    /// Converts to the WIT record.
    pub fn into_raw(self) -> raw::ParamSpec {
        raw::ParamSpec {
            name: self.name,
            description: self.description,
            type_: match self.kind {
                Kind::Str => raw::ParamType::Str,
                Kind::Array => raw::ParamType::Array,
                Kind::Object => raw::ParamType::Object,
            },
            default: self.default.map(|d| match d {
                DefaultValue::Str(s) => raw::ParamValue::Str(s),
                DefaultValue::Array(a) => raw::ParamValue::Array(a),
                DefaultValue::Object(o) => raw::ParamValue::Object(o),
            }),
            enum_: self.allowed,
        }
    }
}

/// A workspace a plugin wants mounted. Writable and required unless told otherwise.
///
/// ```
/// use weft_sdk::Workspace;
///
/// let source = Workspace::new("source").description("The checkout").read_only();
/// let cache = Workspace::new("cache").optional();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    name: String,
    description: String,
    read_only: bool,
    optional: bool,
}

impl Workspace {
    /// A workspace the plugin knows as `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Workspace {
            name: name.into(),
            description: String::new(),
            read_only: false,
            optional: false,
        }
    }

    /// Sets what the workspace is for.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// The plugin only reads the workspace.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// The task works without the workspace.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Converts to the WIT record.
    pub fn into_raw(self) -> raw::WorkspaceSpec {
        raw::WorkspaceSpec {
            name: self.name,
            description: self.description,
            read_only: self.read_only,
            optional: self.optional,
        }
    }
}
