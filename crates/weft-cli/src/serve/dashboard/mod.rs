//! The web dashboard of `weft serve`, under `/`: server-rendered pages over the same run
//! documents as the API (`view.rs`), the DAG as inline SVG (`svg.rs`), live updates by
//! server-sent events (`live.rs`), login by API token with a server-side session and a
//! CSRF token per session (`session.rs`), and forms that act through the API's own
//! functions (`run_api::cancel_run`, `reruns::rerun_run`, `waits::decide_for`).
//!
//! | method and path | does |
//! |---|---|
//! | `GET /` | runs (`?pipeline=&status=&page=`) |
//! | `GET/POST /login`, `POST /logout` | the session |
//! | `GET /runs/{run}` | a run (`?attempt=N`) |
//! | `GET /runs/{run}/tasks/{task}` | a task's log |
//! | `GET /runs/{run}/events` | its live updates (`?task=T&after=CURSOR` adds the log) |
//! | `GET/POST /new` | a new run of a pasted pipeline: its params' form, then the run |
//! | `GET/POST /runs/{run}/new` | a new run of that run's pipeline, with params from a form |
//! | `POST /runs/{run}/cancel`, `/rerun`, `/approvals/{task}`, `/interventions/{task}` | actions |
//! | `GET /assets/dashboard.{css,js}` | embedded assets |
//!
//! Every response carries a strict Content-Security-Policy (no inline script or style,
//! no framing), `nosniff` and no referrer; every POST must carry the session's CSRF
//! token (403 otherwise) and, when the browser says where it comes from, come from here.

mod html;
mod live;
mod pages;
mod session;
mod submit;
mod svg;
mod view;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use weft_engine::runs::DecisionKind;
use weft_store::RunStore;

use super::auth::{self, Caller};
use super::{Refusal, Server};
use session::{Session, Sessions};

pub use live::Hub;

/// What the dashboard keeps: sessions and the live wake-ups.
#[derive(Debug, Default)]
pub struct Dashboard {
    sessions: Sessions,
    /// Wakes the live streams of runs executing here.
    pub hub: Arc<Hub>,
}

/// The Content-Security-Policy of every dashboard response.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

const CSS: &str = include_str!("assets/dashboard.css");
const JS: &str = include_str!("assets/dashboard.js");

/// How long the answer to a refused login waits.
const FAILED_LOGIN_DELAY: std::time::Duration = std::time::Duration::from_millis(300);

/// Runs per page of the list.
const PAGE: usize = 25;
/// How many recent runs the list filters.
const LIST_WINDOW: usize = 1000;
/// Log lines a log page shows at first (the rest follows live).
const LOG_LINES: usize = 10_000;

/// The dashboard's routes, with their security headers.
pub fn routes() -> Router<Arc<Server>> {
    Router::new()
        .route("/", get(runs_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/runs/{run}", get(run_page))
        .route("/runs/{run}/tasks/{task}", get(log_page))
        .route("/runs/{run}/events", get(events))
        .route("/new", get(paste_page).post(paste))
        .route("/runs/{run}/new", get(new_run_page).post(new_run))
        .route("/runs/{run}/cancel", post(cancel))
        .route("/runs/{run}/rerun", post(rerun))
        .route("/runs/{run}/approvals/{task}", post(approve))
        .route("/runs/{run}/interventions/{task}", post(intervene))
        .route("/assets/dashboard.css", get(css))
        .route("/assets/dashboard.js", get(js))
        .layer(axum::middleware::map_response(secure))
}

/// The headers every dashboard response carries.
async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        JS,
    )
        .into_response()
}

/// Who looks: the session the cookie names; when the server requires no token, a new
/// anonymous session (its cookie to set); else `None` (log in first).
fn visitor(server: &Server, headers: &HeaderMap) -> Result<Option<(Session, bool)>, Refusal> {
    if let Some(session) = session_of(server, headers) {
        return Ok(Some((session, false)));
    }
    if auth::requires_token(server) {
        return Ok(None);
    }
    let session = server
        .dashboard
        .sessions
        .open(auth::anonymous(), false)
        .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    Ok(Some((session, true)))
}

/// The request's session, its caller as it stands now: a session whose token was revoked
/// or expired is closed.
fn session_of(server: &Server, headers: &HeaderMap) -> Option<Session> {
    let mut session = server.dashboard.sessions.of(headers)?;
    match auth::refresh(server, &session.caller) {
        Some(caller) => {
            session.caller = caller;
            Some(session)
        }
        None => {
            server.dashboard.sessions.close(&session.id);
            None
        }
    }
}

/// A page for `session`, with its cookie when it is new.
fn page(html: String, session: &Session, new: bool) -> Response {
    let mut response = Html(html).into_response();
    if new {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, session::set_cookie(session));
    }
    response
}

/// A refusal as a page, with its status (and the diagnostics of an invalid pipeline).
fn refused(session: Option<&Session>, refusal: Refusal) -> Response {
    let mut message = refusal.message;
    let diagnostics = refusal
        .document
        .as_ref()
        .and_then(|d| d["diagnostics"].as_array().cloned())
        .unwrap_or_default();
    for diagnostic in diagnostics.iter().take(20) {
        let _ = std::fmt::Write::write_fmt(
            &mut message,
            format_args!(
                "; {}:{}: {}",
                diagnostic["line"],
                diagnostic["column"],
                diagnostic["message"].as_str().unwrap_or_default()
            ),
        );
    }
    (
        refusal.status,
        Html(pages::error(session, refusal.status.as_u16(), &message)),
    )
        .into_response()
}

/// Runs a page handler for whoever looks, sending anyone not logged in to the login form.
fn for_visitor(
    server: &Server,
    headers: &HeaderMap,
    render: impl FnOnce(&Session) -> Result<String, Refusal>,
) -> Response {
    match visitor(server, headers) {
        Ok(Some((session, new))) => match render(&session) {
            Ok(html) => page(html, &session, new),
            Err(refusal) => {
                let mut response = refused(Some(&session), refusal);
                if new {
                    response
                        .headers_mut()
                        .insert(header::SET_COOKIE, session::set_cookie(&session));
                }
                response
            }
        },
        Ok(None) => Redirect::to("/login").into_response(),
        Err(refusal) => refused(None, refusal),
    }
}

fn store_refusal(err: impl std::fmt::Display) -> Refusal {
    Refusal::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "store",
        format!("run store: {err}"),
    )
}

/// `?pipeline=&status=&page=` of the runs list.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    pipeline: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: Option<usize>,
}

async fn runs_page(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    for_visitor(&server, &headers, |session| {
        let caller = &session.caller;
        let tenant = caller.listing(Some(&query.tenant))?;
        let all = server
            .store
            .list_runs_of(tenant.as_deref(), LIST_WINDOW)
            .map_err(store_refusal)?;
        // The operator picks a tenant (or sees them all); anyone else sees their own.
        let tenants: Vec<String> = if caller.operator {
            weft_store::TenantStore::tenants(server.store.as_ref())
                .map_err(store_refusal)?
                .into_iter()
                .map(|t| t.name)
                .collect()
        } else {
            Vec::new()
        };
        let pipelines: Vec<String> = all
            .iter()
            .map(|r| r.pipeline_name.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let statuses: Vec<String> = all
            .iter()
            .map(pages::list_status)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let filter = pages::ListFilter {
            tenant: query.tenant,
            pipeline: query.pipeline,
            status: query.status,
            page: query.page.unwrap_or(0).min(LIST_WINDOW),
        };
        let matching: Vec<_> = all
            .into_iter()
            .filter(|r| filter.pipeline.is_empty() || r.pipeline_name == filter.pipeline)
            .filter(|r| filter.status.is_empty() || pages::list_status(r) == filter.status)
            .collect();
        let start = filter.page * PAGE;
        let more = matching.len() > start + PAGE;
        let rows: Vec<pages::ListRow> = matching
            .into_iter()
            .skip(start)
            .take(PAGE)
            .map(|r| {
                let held = crate::runs::held(server.store.as_ref(), &r);
                let operation = view::operation(server.store.as_ref(), &r.id);
                (super::run_api::as_seen_by(caller, &r), held, operation)
            })
            .collect();
        Ok(pages::runs(
            Some(session),
            &filter,
            &rows,
            &pages::Choices {
                tenants: &tenants,
                pipelines: &pipelines,
                statuses: &statuses,
            },
            more,
        ))
    })
}

async fn login_page(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    if session_of(&server, &headers).is_some() || !auth::requires_token(&server) {
        return Redirect::to("/").into_response();
    }
    Html(pages::login(false)).into_response()
}

/// The fields of a posted form (unknown ones ignored; the last of a repeated one wins).
fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Whether the browser says the request comes from elsewhere: `Sec-Fetch-Site` other
/// than `same-origin` or `none` (typed by the user), or an `Origin` naming another host
/// than the one asked. `Origin: null` (what a browser sends under `no-referrer`) and no
/// header at all say nothing: then the CSRF token decides.
fn cross_site(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    let Some(origin) = value("origin").filter(|o| *o != "null") else {
        return false;
    };
    let host = value("host").unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin_host != host
}

async fn login(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if cross_site(&headers) {
        return refused(None, forbidden("a login from another site is refused"));
    }
    let fields = form(&body);
    let token = fields.get("token").map(String::as_str).unwrap_or("");
    let Some(caller) = auth::identify(&server, token) else {
        // A refused token costs its sender a moment: guessing one by one is slow.
        tokio::time::sleep(FAILED_LOGIN_DELAY).await;
        return (StatusCode::UNAUTHORIZED, Html(pages::login(true))).into_response();
    };
    // A session the browser already had is dropped: a login always gets a fresh id.
    if let Some(old) = server.dashboard.sessions.of(&headers) {
        server.dashboard.sessions.close(&old.id);
    }
    match server.dashboard.sessions.open(caller, true) {
        Ok(session) => {
            let mut response = Redirect::to("/").into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, session::set_cookie(&session));
            response
        }
        Err(message) => refused(
            None,
            Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message),
        ),
    }
}

fn forbidden(message: &str) -> Refusal {
    Refusal::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// The session of a state-changing request and its form, once its CSRF token matched;
/// else the 403 to answer.
fn checked(
    server: &Server,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Session, HashMap<String, String>), Box<Response>> {
    if cross_site(headers) {
        return Err(Box::new(refused(
            None,
            forbidden("a request from another site is refused"),
        )));
    }
    let Some(session) = session_of(server, headers) else {
        return Err(Box::new(refused(
            None,
            forbidden("no session: log in (or reload the page) first"),
        )));
    };
    let fields = form(body);
    let given = fields.get("csrf").map(String::as_str).unwrap_or("");
    if !session.csrf_matches(given) {
        return Err(Box::new(refused(
            Some(&session),
            forbidden("the form's CSRF token is missing or wrong: reload the page"),
        )));
    }
    Ok((session, fields))
}

async fn logout(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let session = match checked(&server, &headers, &body) {
        Ok((session, _)) => session,
        Err(answer) => return *answer,
    };
    server.dashboard.sessions.close(&session.id);
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    response
}

/// `?attempt=N` of a run page.
#[derive(Debug, Default, Deserialize)]
struct AttemptQuery {
    attempt: Option<u32>,
}

/// The stored id of `caller`'s run `run`'s attempt (default: its latest), and its view as
/// the caller knows it.
fn run_view(
    server: &Server,
    caller: &Caller,
    run: &str,
    attempt: Option<u32>,
) -> Result<(String, view::RunView), Refusal> {
    let id = super::run_api::resolve_attempt(server, caller, run, attempt)?;
    let view = view::run_view(server.store.as_ref(), &id)
        .map_err(store_refusal)?
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no run named `{run}`"),
            )
        })?;
    Ok((id, view.seen_by(caller)))
}

async fn run_page(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
    Query(query): Query<AttemptQuery>,
) -> Response {
    for_visitor(&server, &headers, |session| {
        let (_, view) = run_view(&server, &session.caller, &run, query.attempt)?;
        Ok(pages::run(Some(session), &session.caller, &view))
    })
}

async fn log_page(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path((run, task)): Path<(String, String)>,
    Query(query): Query<AttemptQuery>,
) -> Response {
    for_visitor(&server, &headers, |session| {
        let (id, view) = run_view(&server, &session.caller, &run, query.attempt)?;
        if !view.tasks.iter().any(|t| t.task == task) {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("run `{}` has no task `{task}`", view.id),
            ));
        }
        let lines = server
            .store
            .logs(&id, Some(&task), 0, LOG_LINES)
            .map_err(store_refusal)?;
        let after = lines.iter().map(|l| l.cursor).max().unwrap_or(0);
        let text: String = lines
            .iter()
            .map(|l| pages::log_line(&l.line.stream, &l.line.text))
            .collect();
        Ok(pages::log(Some(session), &view, &task, &text, after))
    })
}

/// `?task=T&after=CURSOR&attempt=N` of the live updates.
#[derive(Debug, Default, Deserialize)]
struct EventsQuery {
    task: Option<String>,
    after: Option<u64>,
    attempt: Option<u32>,
}

async fn events(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Response {
    // A stream opens no session: the page that opens it already has one.
    let caller = match session_of(&server, &headers) {
        Some(session) => session.caller,
        None if !auth::requires_token(&server) => auth::anonymous(),
        None => {
            return refused(
                None,
                Refusal::new(StatusCode::UNAUTHORIZED, "unauthorized", "log in first"),
            );
        }
    };
    let id = match super::run_api::resolve_attempt(&server, &caller, &run, query.attempt) {
        Ok(id) => id,
        Err(refusal) => return refused(None, refusal),
    };
    live::stream(server.clone(), id, query.task, query.after.unwrap_or(0)).into_response()
}

async fn paste_page(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    for_visitor(&server, &headers, |session| {
        Ok(pages::paste(session, "", None))
    })
}

/// `POST /new`: without `start`, the pasted pipeline's params form; with it, the run.
async fn paste(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (session, fields) = match checked(&server, &headers, &body) {
        Ok(checked) => checked,
        Err(answer) => return *answer,
    };
    let text = fields
        .get("pipeline")
        .map(String::as_str)
        .unwrap_or_default();
    // Browsers send a textarea's line breaks as CR LF.
    let text = text.replace("\r\n", "\n");
    let source = match submit::pasted(&text, "pasted.yaml") {
        Ok(source) => source,
        Err(refusal) => return refused(Some(&session), refusal),
    };
    if !fields.contains_key("start") {
        let form = submit::fields(&source.params);
        let pipeline = source.pipeline.clone();
        return Html(pages::paste(&session, &text, Some((&pipeline, &form)))).into_response();
    }
    match super::run_api::submit_request(&server, &session.caller, submit::request(source, &fields))
        .await
    {
        Ok(name) => to_run(&name),
        Err(refusal) => refused(Some(&session), refusal),
    }
}

async fn new_run_page(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
) -> Response {
    for_visitor(&server, &headers, |session| {
        let id = super::run_api::resolve_attempt(&server, &session.caller, &run, None)?;
        let source = submit::source(server.store.as_ref(), &id)?;
        let shown = session.caller.show(&id);
        Ok(pages::new_run(
            session,
            &shown,
            &source.pipeline,
            &submit::fields(&source.params),
            &submit::action(&shown),
        ))
    })
}

async fn new_run(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (session, fields) = match checked(&server, &headers, &body) {
        Ok(checked) => checked,
        Err(answer) => return *answer,
    };
    let submitted = async {
        let id = super::run_api::resolve_attempt(&server, &session.caller, &run, None)?;
        let source = submit::source(server.store.as_ref(), &id)?;
        super::run_api::submit_request(&server, &session.caller, submit::request(source, &fields))
            .await
    };
    match submitted.await {
        Ok(name) => to_run(&name),
        Err(refusal) => refused(Some(&session), refusal),
    }
}

/// After an action, back to the run's page (its latest attempt: a re-run's new one).
fn to_run(run: &str) -> Response {
    Redirect::to(&format!("/runs/{}", pages::segment(run))).into_response()
}

async fn cancel(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (session, fields) = match checked(&server, &headers, &body) {
        Ok(checked) => checked,
        Err(answer) => return *answer,
    };
    let mode = fields
        .get("mode")
        .map(String::as_str)
        .filter(|m| !m.is_empty());
    match super::run_api::cancel_run(&server, &session.caller, &run, mode) {
        Ok(cancelled) => to_run(&cancelled.run),
        Err(refusal) => refused(Some(&session), refusal),
    }
}

async fn rerun(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(run): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (session, fields) = match checked(&server, &headers, &body) {
        Ok(checked) => checked,
        Err(answer) => return *answer,
    };
    let failed_only = match fields.get("scope").map(String::as_str) {
        None | Some("all") => false,
        Some("failed") => true,
        Some(other) => {
            return refused(
                Some(&session),
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    format!("re-run scope `{other}` is not `all` or `failed`"),
                ),
            );
        }
    };
    match super::reruns::rerun_run(&server, &session.caller, &run, failed_only).await {
        Ok(name) => to_run(&name),
        Err(refusal) => refused(Some(&session), refusal),
    }
}

async fn approve(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path((run, task)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    decide(
        &server,
        &headers,
        &run,
        &task,
        &body,
        DecisionKind::Approval,
    )
}

async fn intervene(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path((run, task)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    decide(
        &server,
        &headers,
        &run,
        &task,
        &body,
        DecisionKind::Intervention,
    )
}

/// A decision from the page, as the session's identity, through the API's `decide_for`.
fn decide(
    server: &Server,
    headers: &HeaderMap,
    run: &str,
    task: &str,
    body: &[u8],
    kind: DecisionKind,
) -> Response {
    let (session, mut fields) = match checked(server, headers, body) {
        Ok(checked) => checked,
        Err(answer) => return *answer,
    };
    let request = super::waits::DecisionRequest {
        decision: fields.remove("decision").unwrap_or_default(),
        message: fields.remove("message").unwrap_or_default(),
        defer_until: None,
    };
    let caller: Caller = session.caller.clone();
    match super::waits::decide_for(server, caller, run, task, kind, request) {
        Ok(decided) => to_run(&decided.run),
        Err(refusal) => refused(Some(&session), refusal),
    }
}
