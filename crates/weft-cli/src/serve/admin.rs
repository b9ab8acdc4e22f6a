//! The admin routes: tenants (the operator's), tokens and the audit log (a tenant's
//! admins', within their tenant: the tenant is always the token's, never the body's).
//!
//! | method and path | who | does |
//! |---|---|---|
//! | `GET /api/v1/tenants` | operator | the tenants |
//! | `POST /api/v1/tenants` | operator | `{name}`: `201`, `400`, `409` |
//! | `POST /api/v1/tenants/{tenant}/tokens` | operator | a token in that tenant (to hand its first admin) |
//! | `GET /api/v1/tokens` | admin | the tenant's tokens (never a token or its hash) |
//! | `POST /api/v1/tokens` | admin | `{identity, role, groups?, expires?}`: `201` with the token, shown once |
//! | `DELETE /api/v1/tokens/{id}` | admin | revokes it: `204`, `404` |
//! | `GET /api/v1/audit?after=SEQ&limit=N` | admin | the tenant's audit log (the operator: every tenant's) |
//! | `GET /api/v1/plugins` | viewer | the tenant's uploaded plugins: name, digest, kind, size |
//! | `POST /api/v1/plugins?name=NAME` | admin | the component as the body: checked, kept by digest, `201`; `400` (not a plugin, a capability the tenant cannot have), `409` (a first-party name), `413` |
//! | `DELETE /api/v1/plugins/{name}` | admin | `204`, `404` |
//! | `GET /api/v1/secrets` | admin | the tenant's secrets: names, keys, times (never values) |
//! | `PUT /api/v1/secrets/{name}` | admin | `{value, key?}`: sealed and stored, `204`; never readable back |
//! | `DELETE /api/v1/secrets/{name}` | admin | every key of it: `204`, `404` |

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use weft_store::{Role, TenantStore};

use super::auth::{self, Caller};
use super::{Server, body_as, error};
use crate::tenancy::{self, TenancyError, TokenRequest};

/// A tenancy refusal as an API error.
fn refused(err: TenancyError) -> Response {
    match err {
        TenancyError::Invalid(m) => error(StatusCode::BAD_REQUEST, "bad-request", m),
        TenancyError::NotFound(m) => error(StatusCode::NOT_FOUND, "not-found", m),
        TenancyError::Exists(m) => error(StatusCode::CONFLICT, "exists", m),
        TenancyError::Quota(m) => error(StatusCode::TOO_MANY_REQUESTS, "quota", m),
        TenancyError::Store(m) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", m),
    }
}

/// The caller, if it administers the server.
fn operator(server: &Server, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
    let caller = auth::caller(server, headers)?;
    if caller.operator {
        Ok(caller)
    } else {
        Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} of tenant {} does not administer the server: tenants are the operator's (--api-token)",
                caller.identity, caller.tenant
            ),
        )))
    }
}

/// `GET /api/v1/tenants`.
pub async fn tenants(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    if let Err(denied) = operator(&server, &headers) {
        return *denied;
    }
    match server.store.tenants() {
        Ok(all) => Json(Value::Array(
            all.iter()
                .map(|t| json!({"name": t.name, "createdAt": t.created_at.millis()}))
                .collect(),
        ))
        .into_response(),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

/// `POST /api/v1/tenants`.
pub async fn create_tenant(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let caller = match operator(&server, &headers) {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let request: NewTenant = match body_as(&body, "tenant") {
        Ok(request) => request,
        Err(answer) => return *answer,
    };
    match tenancy::create_tenant(server.store.as_ref(), &request.name, &caller.identity) {
        Ok(tenant) => (
            StatusCode::CREATED,
            Json(json!({"name": tenant.name, "createdAt": tenant.created_at.millis()})),
        )
            .into_response(),
        Err(err) => refused(err),
    }
}

/// The body of a token request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    identity: String,
    role: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    expires: Option<String>,
}

/// Issues a token in `tenant` as `caller`: `201` with the token (shown this once).
fn issue(server: &Server, caller: &Caller, tenant: &str, body: &[u8]) -> Response {
    let request: NewToken = match body_as(body, "token request") {
        Ok(request) => request,
        Err(answer) => return *answer,
    };
    let role: Role = match request.role.parse() {
        Ok(role) => role,
        Err(message) => return error(StatusCode::BAD_REQUEST, "bad-request", message),
    };
    let issued = tenancy::create_token(
        server.store.as_ref(),
        TokenRequest {
            tenant: tenant.to_string(),
            identity: request.identity,
            role,
            groups: request.groups,
            expires: request.expires,
        },
        &caller.identity,
    );
    match issued {
        Ok(issued) => {
            let mut document = tenancy::token_json(&issued.record);
            document["token"] = json!(issued.token);
            document["role"] = json!(issued.member.role.as_str());
            document["groups"] = json!(issued.member.groups);
            (StatusCode::CREATED, Json(document)).into_response()
        }
        Err(err) => refused(err),
    }
}

/// `POST /api/v1/tenants/{tenant}/tokens`.
pub async fn create_tenant_token(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    match operator(&server, &headers) {
        Ok(caller) => issue(&server, &caller, &tenant, &body),
        Err(denied) => *denied,
    }
}

/// `POST /api/v1/tokens`.
pub async fn create_token(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match auth::require(&server, &headers, Role::Admin, "manage tokens") {
        Ok(caller) => issue(&server, &caller, &caller.tenant.clone(), &body),
        Err(denied) => *denied,
    }
}

/// `GET /api/v1/tokens`.
pub async fn tokens(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    let caller = match auth::require(&server, &headers, Role::Admin, "manage tokens") {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    match server.store.tokens(Some(&caller.tenant)) {
        Ok(all) => {
            Json(Value::Array(all.iter().map(tenancy::token_json).collect())).into_response()
        }
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}

/// `DELETE /api/v1/tokens/{id}`.
pub async fn revoke_token(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match auth::require(&server, &headers, Role::Admin, "manage tokens") {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    match tenancy::revoke_token(
        server.store.as_ref(),
        Some(&caller.tenant),
        &id,
        &caller.identity,
    ) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => refused(err),
    }
}

/// `?after=SEQ&limit=N` of the audit log.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// `GET /api/v1/audit`.
pub async fn audit(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> Response {
    let caller = match auth::require(&server, &headers, Role::Admin, "read the audit log") {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let tenant = (!caller.operator).then_some(caller.tenant.as_str());
    let limit = query.limit.unwrap_or(100).min(1000);
    match server.store.audit(tenant, query.after.unwrap_or(0), limit) {
        Ok(entries) => {
            let next = entries.last().map(|e| e.seq).or(query.after).unwrap_or(0);
            Json(json!({
                "entries": entries.iter().map(tenancy::audit_json).collect::<Vec<_>>(),
                "next": next,
            }))
            .into_response()
        }
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}

/// `GET /api/v1/secrets`.
pub async fn secrets(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    let caller = match auth::require(&server, &headers, Role::Admin, "manage secrets") {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    match server.store.secrets(Some(&caller.tenant)) {
        Ok(all) => Json(Value::Array(
            all.iter().map(tenancy::secrets::listed).collect(),
        ))
        .into_response(),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}

/// The body of a secret's write.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretValue {
    value: String,
    #[serde(default)]
    key: Option<String>,
}

/// `PUT /api/v1/secrets/{name}`.
pub async fn put_secret(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let caller = match auth::require(&server, &headers, Role::Admin, "manage secrets") {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let Some(keys) = &server.secrets_keys else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "secrets-off",
            "this server keeps no tenants' secrets: its operator gave it no key (--secrets-key-file)",
        );
    };
    if body.len() > tenancy::secrets::MAX_VALUE_BYTES + 1024 {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!(
                "a secret's value is at most {} bytes",
                tenancy::secrets::MAX_VALUE_BYTES
            ),
        );
    }
    // Never echo the parser's message: it may quote the value.
    let Ok(request) = serde_json::from_slice::<SecretValue>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "the request body is not {\"value\": \"...\", \"key\"?: \"...\"}",
        );
    };
    let key = request
        .key
        .as_deref()
        .unwrap_or(weft_engine::runs::DEFAULT_SECRET_KEY);
    match tenancy::secrets::write(
        server.store.as_ref(),
        keys,
        &caller.tenant,
        &name,
        key,
        &request.value,
        &caller.identity,
    ) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => refused(err),
    }
}

/// `DELETE /api/v1/secrets/{name}`.
pub async fn delete_secret(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let caller = match auth::require(&server, &headers, Role::Admin, "manage secrets") {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    match tenancy::secrets::delete(
        server.store.as_ref(),
        &caller.tenant,
        &name,
        &caller.identity,
    ) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => refused(err),
    }
}

/// `GET /api/v1/plugins`.
pub async fn plugins(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    let caller = match auth::caller(&server, &headers) {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    match server.store.tenant_plugins(Some(&caller.tenant)) {
        Ok(all) => Json(Value::Array(
            all.iter().map(tenancy::plugins::listed).collect(),
        ))
        .into_response(),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", err.to_string()),
    }
}

/// `?name=NAME` of an upload.
#[derive(Debug, Default, Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
}

/// `POST /api/v1/plugins?name=NAME`.
pub async fn upload_plugin(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: axum::body::Bytes,
) -> Response {
    let caller = match auth::require(&server, &headers, Role::Admin, "upload plugins") {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    let Some(name) = query.name.filter(|n| !n.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "name the plugin: POST /api/v1/plugins?name=NAME with the component as the body",
        );
    };
    // Compiling a component is work for a blocking thread, not the async runtime's.
    let shared = server.clone();
    let uploaded = tokio::task::spawn_blocking(move || {
        tenancy::plugins::upload(
            shared.store.as_ref(),
            shared.service.registry(),
            &caller.tenant,
            &name,
            &body,
            &caller.identity,
        )
    })
    .await;
    match uploaded {
        Ok(Ok(record)) => {
            (StatusCode::CREATED, Json(tenancy::plugins::listed(&record))).into_response()
        }
        Ok(Err(err)) => refused(err),
        Err(err) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        ),
    }
}

/// `DELETE /api/v1/plugins/{name}`.
pub async fn delete_plugin(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let caller = match auth::require(&server, &headers, Role::Admin, "delete plugins") {
        Ok(caller) => caller,
        Err(denied) => return *denied,
    };
    match tenancy::plugins::delete(
        server.store.as_ref(),
        &caller.tenant,
        &name,
        &caller.identity,
    ) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => refused(err),
    }
}
