//! Who calls, in which tenant, with which role. The bearer token decides all three:
//!
//! - a token issued by `weft tokens create` (kept in the store as a hash): its identity,
//!   tenant and the identity's role and groups there;
//! - `--api-token`: the `operator`, admin of the `default` tenant and of the server (its
//!   tenants);
//! - an identities file's token: that identity, of `default`, with the file's role
//!   (default `approver`).
//!
//! Tokens are compared in constant time. Without any token configured or issued the server
//! listens only on loopback (or behind a proxy that authenticates, `--insecure-no-auth`),
//! and callers are `anonymous` operators, as before tenants.
//!
//! A tenant's names are its own: [`Caller::qualify`] turns the run or schedule a request
//! names into the stored name within the caller's tenant, so another tenant's run is never
//! reached (it answers 404, as a run that does not exist); [`Caller::public`] turns stored
//! names back.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use weft_store::{DEFAULT_TENANT, Role, TenantStore, Timestamp};

use super::{Refusal, Server, error};
use crate::identities::constant_time_eq;
use crate::tenancy::tokens;

/// The identity of `--api-token` callers.
pub const OPERATOR: &str = "operator";
/// The identity of callers when the server requires no token.
pub const ANONYMOUS: &str = "anonymous";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The identity.
    pub identity: String,
    /// Its groups (in its tenant).
    pub groups: Vec<String>,
    /// The tenant the token is of: every name the caller uses is within it.
    pub tenant: String,
    /// The identity's role there.
    pub role: Role,
    /// Whether it administers the server itself (its tenants).
    pub operator: bool,
    /// The id of the issued token it showed (a dashboard session checks it is still live).
    pub token: Option<String>,
}

impl Caller {
    /// Whether its role is `role` or above.
    pub fn may(&self, role: Role) -> bool {
        self.role >= role
    }

    /// The stored name of the caller's run or schedule `name` (`None`: it names none).
    /// The operator names any tenant's by its stored name (`TENANT_NAME`).
    pub fn qualify(&self, name: &str) -> Option<String> {
        if self.operator {
            return Some(name.to_string());
        }
        weft_store::tenants::qualify(&self.tenant, name)
    }

    /// `stored` as the caller knows it, if it is the caller's tenant's (the operator
    /// knows every one by its stored name).
    pub fn public<'a>(&self, stored: &'a str) -> Option<&'a str> {
        if self.operator {
            return Some(stored);
        }
        let (tenant, name) = weft_store::tenants::unqualify(stored);
        (tenant == self.tenant).then_some(name)
    }

    /// Which tenant's runs a list shows: the caller's own; the operator's choice
    /// (`?tenant=`; all when none). Another tenant asked for by anyone else: the `403`.
    pub fn listing(&self, asked: Option<&str>) -> Result<Option<String>, Refusal> {
        match asked.filter(|t| !t.is_empty()) {
            _ if self.operator => Ok(asked.filter(|t| !t.is_empty()).map(str::to_string)),
            None => Ok(Some(self.tenant.clone())),
            Some(tenant) if tenant == self.tenant => Ok(Some(self.tenant.clone())),
            Some(_) => Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only the operator lists another tenant's runs",
            )),
        }
    }

    /// `stored` as the caller knows it (its own names; anything else unchanged).
    pub fn show(&self, stored: &str) -> String {
        self.public(stored).unwrap_or(stored).to_string()
    }

    /// The `403` for a role below `needed`.
    pub fn forbidden(&self, needed: Role, to: &str) -> Refusal {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} is a {} of tenant {}; to {to} takes the {needed} role",
                self.identity, self.role, self.tenant
            ),
        )
    }
}

/// Whether callers must show a token: `--api-token`, an identities file with tokens, or
/// any live token issued in the store (a store that cannot say is taken as yes).
pub fn requires_token(server: &Server) -> bool {
    server.args.api_token.is_some()
        || server.identities.has_tokens()
        || server.store.has_tokens().unwrap_or(true)
}

/// The caller of a request, or the `401` to send (boxed: it is large).
pub fn caller(server: &Server, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
    if !requires_token(server) {
        return Ok(anonymous());
    }
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    identify(server, given).ok_or_else(|| {
        Box::new(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer` token is required",
        ))
    })
}

/// The caller of a request if its role is `role` or above; else the `401` or `403`.
pub fn require(
    server: &Server,
    headers: &HeaderMap,
    role: Role,
    to: &str,
) -> Result<Caller, Box<Response>> {
    let caller = caller(server, headers)?;
    if caller.may(role) {
        Ok(caller)
    } else {
        Err(Box::new(axum::response::IntoResponse::into_response(
            caller.forbidden(role, to),
        )))
    }
}

/// The caller when the server requires no token.
pub fn anonymous() -> Caller {
    Caller {
        identity: ANONYMOUS.to_string(),
        groups: Vec::new(),
        tenant: DEFAULT_TENANT.to_string(),
        role: Role::Admin,
        operator: true,
        token: None,
    }
}

/// `caller` as it stands now: a caller by an issued token loses access the moment the token
/// is revoked or expires, and its role follows its membership (dashboard sessions outlive
/// requests). `None`: no longer authenticated.
pub fn refresh(server: &Server, caller: &Caller) -> Option<Caller> {
    let Some(id) = &caller.token else {
        return Some(caller.clone());
    };
    let token = server.store.token(id).ok()??;
    if !token.is_live(Timestamp::now()) {
        return None;
    }
    let member = server.store.member(&token.tenant, &token.identity).ok()??;
    Some(Caller {
        role: member.role,
        groups: member.groups,
        ..caller.clone()
    })
}

/// Whom `given` authenticates (the API's bearer token, the dashboard's login form).
pub fn identify(server: &Server, given: &str) -> Option<Caller> {
    if tokens::id_of(given).is_some() {
        return match tokens::authenticate(server.store.as_ref(), given, Timestamp::now()) {
            Ok(Ok((token, member))) => Some(Caller {
                identity: token.identity,
                groups: member.groups,
                tenant: token.tenant,
                role: member.role,
                operator: false,
                token: Some(token.id),
            }),
            Ok(Err(why)) => {
                tracing::info!(token = tokens::id_of(given), ?why, "token refused");
                None
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot check a token");
                None
            }
        };
    }
    // Every static token is compared, in constant time: timing says nothing about which
    // matched.
    let operator = server
        .args
        .api_token
        .as_deref()
        .is_some_and(|expected| constant_time_eq(expected.as_bytes(), given.as_bytes()));
    let identity = server.identities.by_token(given);
    match (identity, operator) {
        (Some(name), _) => Some(Caller {
            identity: name.to_string(),
            groups: server.identities.groups(name),
            tenant: DEFAULT_TENANT.to_string(),
            role: server.identities.role(name),
            operator: false,
            token: None,
        }),
        (None, true) => Some(Caller {
            identity: OPERATOR.to_string(),
            groups: server.identities.groups(OPERATOR),
            tenant: DEFAULT_TENANT.to_string(),
            role: Role::Admin,
            operator: true,
            token: None,
        }),
        (None, false) => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn of(tenant: &str) -> Caller {
        Caller {
            tenant: tenant.into(),
            role: Role::Viewer,
            operator: false,
            ..anonymous()
        }
    }

    #[test]
    fn the_operator_names_every_run_by_its_stored_name() {
        let operator = anonymous();
        assert_eq!(
            operator.qualify("acme_deploy").as_deref(),
            Some("acme_deploy")
        );
        assert_eq!(operator.public("acme_deploy"), Some("acme_deploy"));
        assert_eq!(operator.listing(None).unwrap(), None);
        assert_eq!(
            operator.listing(Some("acme")).unwrap().as_deref(),
            Some("acme")
        );
        let acme = of("acme");
        assert_eq!(acme.listing(None).unwrap().as_deref(), Some("acme"));
        assert!(acme.listing(Some("beta")).is_err());
    }

    #[test]
    fn a_caller_reaches_only_its_tenants_names() {
        let acme = of("acme");
        assert_eq!(acme.qualify("deploy").as_deref(), Some("acme_deploy"));
        assert_eq!(acme.public("acme_deploy"), Some("deploy"));
        assert_eq!(acme.public("deploy"), None);
        assert_eq!(acme.public("beta_deploy"), None);
        let default = of("default");
        assert_eq!(default.qualify("acme_deploy"), None, "no way into acme");
        assert_eq!(default.public("acme_deploy"), None);
        assert_eq!(default.public("deploy~2"), Some("deploy~2"));
        assert!(!acme.may(Role::Submitter) && acme.may(Role::Viewer));
    }
}
