//! Tenants: who owns runs and schedules, the roles identities have in each, their API
//! tokens (kept only as hashes) and the append-only audit log. And the one naming rule
//! that keeps tenants apart in the run tables: a tenant's run and schedule names are
//! stored qualified, `<tenant>_<name>` (`_` is in no run or tenant name), the `default`
//! tenant's unqualified.

use std::fmt;
use std::str::FromStr;

use crate::types::{Result, Timestamp};

/// The tenant of runs that name none (a server without tenants, `weft run`).
pub const DEFAULT_TENANT: &str = "default";

/// What separates a tenant from a name in stored names.
const QUALIFIER: char = '_';

/// Longest tenant name: it prefixes run names, which are at most 253 characters.
pub const MAX_TENANT_CHARS: usize = 40;

/// Whether `name` can name a tenant: a DNS-1123 label (lowercase letters, digits, `-`,
/// starting and ending with a letter or digit) of at most [`MAX_TENANT_CHARS`].
pub fn is_tenant_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_TENANT_CHARS
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// The stored name of `tenant`'s run or schedule `name`; `None` when `name` holds the
/// qualifier (it could name another tenant's).
pub fn qualify(tenant: &str, name: &str) -> Option<String> {
    if name.contains(QUALIFIER) {
        None
    } else if tenant == DEFAULT_TENANT {
        Some(name.to_string())
    } else {
        Some(format!("{tenant}{QUALIFIER}{name}"))
    }
}

/// What separates a tenant from a concurrency group's name: no tenant name holds it.
const GROUP_QUALIFIER: char = '\u{1f}';

/// The stored name of `tenant`'s concurrency group `group` (whose name, from pipeline text
/// and params, may hold anything): tenants never share a group, and no group a pipeline
/// names is a tenant's quota group ([`runs_quota_group`]).
pub fn scoped_group(tenant: &str, group: &str) -> String {
    if tenant != DEFAULT_TENANT {
        format!("{tenant}{GROUP_QUALIFIER}{group}")
    } else if group.contains(GROUP_QUALIFIER) {
        format!("{DEFAULT_TENANT}{GROUP_QUALIFIER}{group}")
    } else {
        group.to_string()
    }
}

/// The group whose slots are `tenant`'s concurrent runs (its `concurrent-runs` quota).
pub fn runs_quota_group(tenant: &str) -> String {
    format!("{GROUP_QUALIFIER}runs{GROUP_QUALIFIER}{tenant}")
}

/// The group whose slots are `tenant`'s task attempts at once (its `concurrent-tasks`
/// quota).
pub fn tasks_quota_group(tenant: &str) -> String {
    format!("{GROUP_QUALIFIER}tasks{GROUP_QUALIFIER}{tenant}")
}

/// A stored group's name as people know it: a pipeline's group without its tenant, a
/// quota group as the quota it is.
pub fn group_shown(stored: &str) -> String {
    for (kind, what) in [("runs", "run"), ("tasks", "task")] {
        if let Some(tenant) = stored
            .strip_prefix(GROUP_QUALIFIER)
            .and_then(|rest| rest.strip_prefix(kind))
            .and_then(|rest| rest.strip_prefix(GROUP_QUALIFIER))
        {
            return format!("tenant {tenant}'s {what} quota");
        }
    }
    match stored.split_once(GROUP_QUALIFIER) {
        Some((_, group)) => group.to_string(),
        None => stored.to_string(),
    }
}

/// What `tenant`'s stored names start with (empty for `default`, whose names hold no
/// qualifier).
pub fn stored_prefix(tenant: &str) -> String {
    if tenant == DEFAULT_TENANT {
        String::new()
    } else {
        format!("{tenant}{QUALIFIER}")
    }
}

/// The tenant of a stored name, and the name as that tenant knows it.
pub fn unqualify(stored: &str) -> (&str, &str) {
    match stored.split_once(QUALIFIER) {
        Some((tenant, name)) => (tenant, name),
        None => (DEFAULT_TENANT, stored),
    }
}

/// What an identity may do in a tenant; each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads runs, logs, waits and schedules.
    Viewer,
    /// Also submits, re-runs and cancels runs and keeps schedules.
    Submitter,
    /// Also decides approvals and manual interventions it is named in.
    Approver,
    /// Also manages the tenant's tokens, secrets and plugins and reads its audit log.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Submitter, Role::Approver, Role::Admin];

    /// Its stored (and command-line) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Submitter => "submitter",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a role: one of viewer, submitter, approver, admin")
            })
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    /// Its name ([`is_tenant_name`]).
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its settings (quotas, egress, weight) as the server's versioned JSON.
    pub settings_json: String,
}

/// An identity's role and groups in one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// The tenant.
    pub tenant: String,
    /// The identity (a person or a service).
    pub identity: String,
    /// Its role there.
    pub role: Role,
    /// Its groups there (`group:NAME` approvers).
    pub groups: Vec<String>,
}

/// An API token, as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's public part (shown in lists, used to revoke it).
    pub id: String,
    /// The tenant it authenticates in.
    pub tenant: String,
    /// The identity it authenticates as.
    pub identity: String,
    /// The hash of the whole token (hex).
    pub hash: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

impl TokenRecord {
    /// Whether it authenticates at `now`: neither revoked nor expired.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

/// One key of a tenant's secret, encrypted (base64 nonce and ciphertext).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// The tenant.
    pub tenant: String,
    /// The secret's name.
    pub name: String,
    /// The key within it.
    pub key: String,
    /// Which of the operator's keys sealed it.
    pub key_id: String,
    /// The AEAD nonce.
    pub nonce: String,
    /// The sealed value.
    pub ciphertext: String,
    /// When it was written.
    pub updated_at: Timestamp,
}

impl fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRecord")
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("key", &self.key)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A plugin a tenant uploaded, by name (its bytes are kept once, by digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPluginRecord {
    /// The tenant.
    pub tenant: String,
    /// The name its pipelines use.
    pub name: String,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// Its kind (`task`, `gate`, ...).
    pub kind: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was uploaded.
    pub uploaded_at: Timestamp,
}

/// An audit entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    /// When.
    pub at: Timestamp,
    /// In which tenant.
    pub tenant: String,
    /// Who (an identity).
    pub actor: String,
    /// What (`token.create`, `secret.write`, `run.cancel`, ...).
    pub action: String,
    /// On what (a token id, a secret's name, a run's name).
    pub target: String,
    /// More, as JSON (never a secret value).
    pub detail_json: String,
}

/// An audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its place in the log (increasing).
    pub seq: u64,
    /// The entry.
    pub entry: NewAudit,
}

/// Persistence of tenants, members, tokens and the audit log; every [`crate::RunStore`]
/// is one.
pub trait TenantStore: Send + Sync {
    /// Adds a tenant; [`crate::StoreError::AlreadyExists`] when the name is taken.
    fn create_tenant(&self, tenant: &TenantRecord) -> Result<()>;

    /// Every tenant (`default` included), by name.
    fn tenants(&self) -> Result<Vec<TenantRecord>>;

    /// Replaces a tenant's settings; [`crate::StoreError::NotFound`] when there is none.
    fn set_tenant_settings(&self, tenant: &str, settings_json: &str) -> Result<()>;

    /// Sets an identity's role and groups in a tenant (adding it there);
    /// [`crate::StoreError::NotFound`] when the tenant does not exist.
    fn put_member(&self, member: &MemberRecord) -> Result<()>;

    /// An identity's membership of a tenant.
    fn member(&self, tenant: &str, identity: &str) -> Result<Option<MemberRecord>>;

    /// Adds a token (its identity must be a member of its tenant).
    fn add_token(&self, token: &TokenRecord) -> Result<()>;

    /// The token whose public part is `id`.
    fn token(&self, id: &str) -> Result<Option<TokenRecord>>;

    /// The tokens of `tenant` (of every tenant: `None`), oldest first.
    fn tokens(&self, tenant: Option<&str>) -> Result<Vec<TokenRecord>>;

    /// Revokes token `id` of `tenant` (any tenant's: `None`) at `at`; whether a live one
    /// was revoked.
    fn revoke_token(&self, tenant: Option<&str>, id: &str, at: Timestamp) -> Result<bool>;

    /// Whether any token was ever issued, revoked ones included: from then on callers
    /// must show one (revoking the last token never opens the server).
    fn has_tokens(&self) -> Result<bool>;

    /// Writes (or replaces) one key of a tenant's secret; [`crate::StoreError::NotFound`]
    /// when the tenant does not exist.
    fn put_secret(&self, secret: &SecretRecord) -> Result<()>;

    /// The secrets of `tenant` (of every tenant: `None`), by tenant, name and key.
    fn secrets(&self, tenant: Option<&str>) -> Result<Vec<SecretRecord>>;

    /// Deletes secret `name` of `tenant` (every key); how many keys it had.
    fn delete_secret(&self, tenant: &str, name: &str) -> Result<usize>;

    /// Keeps `bytes` (whose digest is `plugin.digest`, once however many tenants upload
    /// them) and names them `plugin.name` in `plugin.tenant` (replacing an earlier upload
    /// of that name); [`crate::StoreError::NotFound`] when the tenant does not exist.
    fn put_plugin(&self, plugin: &TenantPluginRecord, bytes: &[u8]) -> Result<()>;

    /// The plugins of `tenant` (of every tenant: `None`), by tenant and name.
    fn tenant_plugins(&self, tenant: Option<&str>) -> Result<Vec<TenantPluginRecord>>;

    /// The bytes of the plugin with `digest`, if any tenant uploaded it.
    fn plugin_bytes(&self, digest: &str) -> Result<Option<Vec<u8>>>;

    /// Forgets `tenant`'s plugin `name` (its bytes stay while another name uses them);
    /// whether there was one.
    fn delete_plugin(&self, tenant: &str, name: &str) -> Result<bool>;

    /// The bytes `tenant` keeps: its plugins, its runs' logs and their workspace
    /// snapshots (its `stored-mib` quota).
    fn stored_bytes(&self, tenant: &str) -> Result<u64>;

    /// Adds `cpu_ms` of guest CPU time to `tenant`'s use in minute `minute` (minutes since
    /// the epoch).
    fn add_cpu(&self, tenant: &str, minute: i64, cpu_ms: u64) -> Result<()>;

    /// The guest CPU time `tenant` used from minute `since` on, in milliseconds.
    fn cpu_since(&self, tenant: &str, since: i64) -> Result<u64>;

    /// Appends to the audit log; the entry's place.
    fn append_audit(&self, entry: &NewAudit) -> Result<u64>;

    /// Audit entries after `after`, of `tenant` (every tenant's: `None`), oldest first.
    fn audit(&self, tenant: Option<&str>, after: u64, limit: usize) -> Result<Vec<AuditRecord>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_round_trip_and_never_collide() {
        let cases = [
            ("default", "deploy", "deploy"),
            ("acme", "deploy", "acme_deploy"),
            ("acme", "deploy~2", "acme_deploy~2"),
            ("a", "b.c", "a_b.c"),
            ("a-b", "c", "a-b_c"),
        ];
        for (tenant, name, stored) in cases {
            assert_eq!(qualify(tenant, name).as_deref(), Some(stored));
            assert_eq!(unqualify(stored), (tenant, name));
            assert!(stored.starts_with(&stored_prefix(tenant)));
        }
        // A name holding the qualifier could reach another tenant's run.
        assert_eq!(qualify("default", "acme_deploy"), None);
        assert_eq!(qualify("evil", "acme_deploy"), None);
    }

    #[test]
    fn groups_are_scoped_by_tenant_and_no_pipeline_reaches_a_quota_group() {
        let named = ["deploy", "acme\u{1f}deploy", "\u{1f}runs\u{1f}acme", ""];
        let mut seen = std::collections::BTreeSet::new();
        for tenant in ["default", "acme", "beta"] {
            for group in named {
                let scoped = scoped_group(tenant, group);
                assert!(seen.insert(scoped.clone()), "{tenant} {group:?} collides");
                for quota in ["acme", "beta", "default"] {
                    assert_ne!(scoped, runs_quota_group(quota), "{tenant} {group:?}");
                    assert_ne!(scoped, tasks_quota_group(quota), "{tenant} {group:?}");
                }
            }
        }
        assert_eq!(
            scoped_group("default", "deploy"),
            "deploy",
            "as before tenants"
        );
        for tenant in ["default", "acme"] {
            for group in ["deploy", "a\u{1f}b"] {
                assert_eq!(group_shown(&scoped_group(tenant, group)), group);
            }
        }
        assert_eq!(
            group_shown(&runs_quota_group("acme")),
            "tenant acme's run quota"
        );
    }

    #[test]
    fn tenant_names_are_dns_labels_without_the_qualifier() {
        for good in ["acme", "a", "team-7", &"x".repeat(MAX_TENANT_CHARS)] {
            assert!(is_tenant_name(good), "{good}");
        }
        for bad in [
            "",
            "Acme",
            "a_b",
            "a.b",
            "-a",
            "a-",
            "a/b",
            &"x".repeat(MAX_TENANT_CHARS + 1),
        ] {
            assert!(!is_tenant_name(bad), "{bad}");
        }
    }

    #[test]
    fn roles_are_ordered_and_parse_by_name() {
        assert!(Role::Viewer < Role::Submitter && Role::Approver < Role::Admin);
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("owner".parse::<Role>().is_err());
    }

    #[test]
    fn a_token_lives_until_it_expires_or_is_revoked() {
        let mut token = TokenRecord {
            id: "t".into(),
            tenant: "acme".into(),
            identity: "ci".into(),
            hash: String::new(),
            created_at: Timestamp(0),
            expires_at: Some(Timestamp(10)),
            revoked_at: None,
        };
        assert!(token.is_live(Timestamp(9)));
        assert!(!token.is_live(Timestamp(10)));
        token.expires_at = None;
        assert!(token.is_live(Timestamp(1_000)));
        token.revoked_at = Some(Timestamp(5));
        assert!(!token.is_live(Timestamp(1)));
    }
}
