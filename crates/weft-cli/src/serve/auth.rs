//! Who calls: the bearer token names the caller. `--api-token` callers are `operator`; an
//! identities file gives each identity its own token (and groups, for approvals). Tokens
//! are compared in constant time. Without any token the server listens only on loopback
//! (or behind a proxy that authenticates, `--insecure-no-auth`), and callers are
//! `anonymous`.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{Server, error};
use crate::identities::constant_time_eq;

/// The identity of `--api-token` callers.
pub const OPERATOR: &str = "operator";
/// The identity of callers when the server requires no token.
pub const ANONYMOUS: &str = "anonymous";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The identity.
    pub identity: String,
    /// Its groups.
    pub groups: Vec<String>,
}

/// Whether callers must show a token (`--api-token` or an identities file with tokens).
pub fn requires_token(server: &Server) -> bool {
    server.args.api_token.is_some() || server.identities.has_tokens()
}

/// The caller of a request, or the refusal to send (boxed: it is large).
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

/// The caller when the server requires no token.
pub fn anonymous() -> Caller {
    Caller {
        identity: ANONYMOUS.to_string(),
        groups: Vec::new(),
    }
}

/// Whom `given` authenticates (the API's bearer token, the dashboard's login form).
pub fn identify(server: &Server, given: &str) -> Option<Caller> {
    // Every token is compared, in constant time: timing says nothing about which matched.
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
        }),
        (None, true) => Some(Caller {
            identity: OPERATOR.to_string(),
            groups: server.identities.groups(OPERATOR),
        }),
        (None, false) => None,
    }
}
