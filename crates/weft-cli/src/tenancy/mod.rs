//! Tenants, their members' tokens and the audit log: the operations `weft tenants`,
//! `weft tokens` and `weft audit` (the store directly, as the operator) and `weft serve`'s
//! admin routes (as the caller) share, so both apply one rule and leave one audit trail.

pub mod command;
pub mod plugins;
pub mod secrets;
pub mod settings;
pub mod tokens;

use serde_json::{Value, json};
use weft_store::{
    AuditRecord, MemberRecord, NewAudit, Role, TenantRecord, TenantStore, Timestamp, TokenRecord,
};

/// Why a tenancy operation was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TenancyError {
    /// The request is wrong (a bad name, role or expiry).
    Invalid(String),
    /// No such tenant or token.
    NotFound(String),
    /// The name is taken.
    Exists(String),
    /// A quota would be passed.
    Quota(String),
    /// The store failed.
    Store(String),
}

impl std::fmt::Display for TenancyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenancyError::Invalid(m)
            | TenancyError::NotFound(m)
            | TenancyError::Exists(m)
            | TenancyError::Quota(m)
            | TenancyError::Store(m) => f.write_str(m),
        }
    }
}

impl From<weft_store::StoreError> for TenancyError {
    fn from(err: weft_store::StoreError) -> Self {
        match err {
            weft_store::StoreError::NotFound { what } => {
                TenancyError::NotFound(format!("no {what}"))
            }
            weft_store::StoreError::AlreadyExists { what } => {
                TenancyError::Exists(format!("{what} already exists"))
            }
            other => TenancyError::Store(other.to_string()),
        }
    }
}

/// Longest identity name.
const MAX_IDENTITY_CHARS: usize = 64;

/// Longest group name, and most groups per member.
const MAX_GROUP_CHARS: usize = 64;
const MAX_GROUPS: usize = 32;

/// Whether `name` can name an identity or a group: letters, digits, `.`, `_`, `-`, `@`,
/// starting with a letter or digit.
fn is_plain_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// Appends to the audit log.
pub fn record(
    store: &dyn TenantStore,
    tenant: &str,
    actor: &str,
    action: &str,
    target: &str,
    detail: Value,
) -> Result<u64, TenancyError> {
    Ok(store.append_audit(&NewAudit {
        at: Timestamp::now(),
        tenant: tenant.to_string(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        detail_json: detail.to_string(),
    })?)
}

/// Creates tenant `name` as `actor`.
pub fn create_tenant(
    store: &dyn TenantStore,
    name: &str,
    actor: &str,
) -> Result<TenantRecord, TenancyError> {
    if !weft_store::tenants::is_tenant_name(name) {
        return Err(TenancyError::Invalid(format!(
            "`{name}` cannot name a tenant: lowercase letters, digits and `-`, starting and ending with a letter or digit, at most {} characters",
            weft_store::tenants::MAX_TENANT_CHARS
        )));
    }
    let tenant = TenantRecord {
        name: name.to_string(),
        created_at: Timestamp::now(),
        settings_json: "{}".to_string(),
    };
    store.create_tenant(&tenant)?;
    record(store, name, actor, "tenant.create", name, json!({}))?;
    Ok(tenant)
}

/// What a new token is for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The tenant.
    pub tenant: String,
    /// The identity it authenticates as (added to the tenant, or its role changed).
    pub identity: String,
    /// The identity's role in the tenant.
    pub role: Role,
    /// Its groups there (none given: kept as they are).
    pub groups: Vec<String>,
    /// When it expires (`30d`, an RFC 3339 time), if ever.
    pub expires: Option<String>,
}

/// A token just made: shown once.
pub struct IssuedToken {
    /// The token itself.
    pub token: String,
    /// What is stored of it.
    pub record: TokenRecord,
    /// The identity's membership.
    pub member: MemberRecord,
}

/// Issues a token as `actor`: sets the identity's role (and groups) in the tenant, stores
/// the token's hash and audits it.
pub fn create_token(
    store: &dyn TenantStore,
    request: TokenRequest,
    actor: &str,
) -> Result<IssuedToken, TenancyError> {
    if !is_plain_name(&request.identity, MAX_IDENTITY_CHARS) {
        return Err(TenancyError::Invalid(format!(
            "`{}` cannot name an identity: letters, digits, `.`, `_`, `-`, `@`, starting with a letter or digit, at most {MAX_IDENTITY_CHARS} characters",
            request.identity
        )));
    }
    if request.groups.len() > MAX_GROUPS {
        return Err(TenancyError::Invalid(format!(
            "{} groups: at most {MAX_GROUPS}",
            request.groups.len()
        )));
    }
    if let Some(bad) = request
        .groups
        .iter()
        .find(|g| !is_plain_name(g, MAX_GROUP_CHARS))
    {
        return Err(TenancyError::Invalid(format!(
            "`{bad}` cannot name a group: letters, digits, `.`, `_`, `-`, `@`"
        )));
    }
    let now = Timestamp::now();
    let expires_at = request
        .expires
        .as_deref()
        .map(|text| tokens::expiry(text, now))
        .transpose()
        .map_err(TenancyError::Invalid)?;
    let groups = if request.groups.is_empty() {
        store
            .member(&request.tenant, &request.identity)?
            .map(|m| m.groups)
            .unwrap_or_default()
    } else {
        request.groups.clone()
    };
    let member = MemberRecord {
        tenant: request.tenant.clone(),
        identity: request.identity.clone(),
        role: request.role,
        groups,
    };
    store.put_member(&member)?;
    let issued = tokens::issue(&request.tenant, &request.identity, now, expires_at)
        .map_err(TenancyError::Store)?;
    store.add_token(&issued.record)?;
    record(
        store,
        &request.tenant,
        actor,
        "token.create",
        &issued.record.id,
        json!({
            "identity": request.identity,
            "role": request.role.as_str(),
            "groups": member.groups,
            "expiresAt": expires_at.map(Timestamp::millis),
        }),
    )?;
    Ok(IssuedToken {
        token: issued.token,
        record: issued.record,
        member,
    })
}

/// Revokes token `id` as `actor`, within `tenant` (any tenant's: `None`, the operator).
pub fn revoke_token(
    store: &dyn TenantStore,
    tenant: Option<&str>,
    id: &str,
    actor: &str,
) -> Result<TokenRecord, TenancyError> {
    let not_found = || TenancyError::NotFound(format!("no live token `{id}`"));
    let token = store
        .token(id)?
        .filter(|t| tenant.is_none_or(|tenant| t.tenant == tenant))
        .ok_or_else(not_found)?;
    if !store.revoke_token(tenant, id, Timestamp::now())? {
        return Err(not_found());
    }
    record(
        store,
        &token.tenant,
        actor,
        "token.revoke",
        id,
        json!({"identity": token.identity}),
    )?;
    Ok(token)
}

/// A token as listed: never its hash.
pub fn token_json(token: &TokenRecord) -> Value {
    let state = if token.revoked_at.is_some() {
        "revoked"
    } else if token.is_live(Timestamp::now()) {
        "live"
    } else {
        "expired"
    };
    json!({
        "id": token.id,
        "tenant": token.tenant,
        "identity": token.identity,
        "state": state,
        "createdAt": token.created_at.millis(),
        "expiresAt": token.expires_at.map(Timestamp::millis),
        "revokedAt": token.revoked_at.map(Timestamp::millis),
    })
}

/// An audit entry as listed.
pub fn audit_json(entry: &AuditRecord) -> Value {
    json!({
        "seq": entry.seq,
        "at": entry.entry.at.millis(),
        "tenant": entry.entry.tenant,
        "actor": entry.entry.actor,
        "action": entry.entry.action,
        "target": entry.entry.target,
        "detail": serde_json::from_str::<Value>(&entry.entry.detail_json).unwrap_or(Value::Null),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A store in a temporary directory (kept while the directory lives).
    pub(crate) fn store() -> (tempfile::TempDir, weft_store::SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            weft_store::SqliteStore::open(dir.path().join("weft.db"), Default::default()).unwrap();
        (dir, store)
    }

    fn request(identity: &str, role: Role) -> TokenRequest {
        TokenRequest {
            tenant: "acme".into(),
            identity: identity.into(),
            role,
            groups: vec![],
            expires: None,
        }
    }

    #[test]
    fn a_token_authenticates_its_member_until_revoked_and_every_step_is_audited() {
        let (_dir, store) = store();
        create_tenant(&store, "acme", "op").unwrap();
        assert!(matches!(
            create_tenant(&store, "acme", "op"),
            Err(TenancyError::Exists(_))
        ));
        assert!(matches!(
            create_tenant(&store, "Bad_Name", "op"),
            Err(TenancyError::Invalid(_))
        ));
        let issued = create_token(
            &store,
            TokenRequest {
                groups: vec!["release".into()],
                ..request("ci", Role::Submitter)
            },
            "op",
        )
        .unwrap();
        let (token, member) = tokens::authenticate(&store, &issued.token, Timestamp::now())
            .unwrap()
            .unwrap();
        assert_eq!(
            (token.tenant.as_str(), member.role),
            ("acme", Role::Submitter)
        );
        assert_eq!(member.groups, ["release"]);
        // A second token keeps the groups and changes the role of the identity.
        let second = create_token(&store, request("ci", Role::Viewer), "op").unwrap();
        assert_eq!(second.member.groups, ["release"]);
        let wrong = format!("{}x", issued.token);
        assert_eq!(
            tokens::authenticate(&store, &wrong, Timestamp::now()).unwrap(),
            Err(tokens::Rejected::Unknown)
        );
        assert!(matches!(
            revoke_token(&store, Some("default"), &issued.record.id, "op"),
            Err(TenancyError::NotFound(_))
        ));
        revoke_token(&store, Some("acme"), &issued.record.id, "op").unwrap();
        assert_eq!(
            tokens::authenticate(&store, &issued.token, Timestamp::now()).unwrap(),
            Err(tokens::Rejected::Revoked)
        );
        assert!(revoke_token(&store, None, &issued.record.id, "op").is_err());
        let expiring = create_token(
            &store,
            TokenRequest {
                expires: Some("1h".into()),
                ..request("bot", Role::Admin)
            },
            "op",
        )
        .unwrap();
        assert_eq!(
            tokens::authenticate(
                &store,
                &expiring.token,
                Timestamp::now().plus(std::time::Duration::from_secs(3_601))
            )
            .unwrap(),
            Err(tokens::Rejected::Expired)
        );
        for bad in ["", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(
                matches!(
                    create_token(&store, request(bad, Role::Viewer), "op"),
                    Err(TenancyError::Invalid(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            create_token(
                &store,
                TokenRequest {
                    tenant: "nope".into(),
                    ..request("ci", Role::Viewer)
                },
                "op"
            ),
            Err(TenancyError::NotFound(_))
        ));
        let actions: Vec<String> = store
            .audit(Some("acme"), 0, 100)
            .unwrap()
            .into_iter()
            .map(|a| a.entry.action)
            .collect();
        assert_eq!(
            actions,
            [
                "tenant.create",
                "token.create",
                "token.create",
                "token.revoke",
                "token.create"
            ]
        );
        // Neither a token nor its hash is in the log.
        let log = serde_json::to_string(
            &store
                .audit(None, 0, 100)
                .unwrap()
                .iter()
                .map(audit_json)
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert!(!log.contains(&issued.token) && !log.contains(&issued.record.hash));
    }
}
