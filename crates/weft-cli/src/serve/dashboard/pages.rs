//! The dashboard's HTML, rendered on the server. Every string that comes from a run, a
//! user or the store goes through [`escape`] (text and attribute values alike, always
//! quoted); names in links through [`segment`] (both in `html.rs`). No inline script or style: the
//! Content-Security-Policy forbids them, the behaviour is in `assets/dashboard.js`.

use std::fmt::Write;

use weft_store::RunListItem;

pub use super::html::{escape, segment};
use super::session::Session;
use super::view::{RunView, WaitView};
use crate::serve::auth::Caller;

/// The frame of every page: head, the header with who is logged in, `main`.
/// `live` is the URL of the page's server-sent events, if it follows a run.
fn layout(title: &str, session: Option<&Session>, live: Option<&str>, main: &str) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    );
    let _ = write!(
        out,
        "<title>{} · weft</title><link rel=\"stylesheet\" href=\"/assets/dashboard.css\"><script src=\"/assets/dashboard.js\" defer></script></head>",
        escape(title)
    );
    match live {
        Some(url) => {
            let _ = write!(out, "<body data-events=\"{}\">", escape(url));
        }
        None => out.push_str("<body>"),
    }
    out.push_str("<header><a class=\"brand\" href=\"/\">weft</a><nav><a href=\"/\">Runs</a>");
    if session.is_none_or(|s| s.caller.may(weft_store::Role::Submitter)) {
        out.push_str(" <a href=\"/new\">New run</a>");
    }
    out.push_str("</nav>");
    if let Some(session) = session {
        let _ = write!(
            out,
            "<span class=\"who\">{} <span class=\"muted\">({} of {})</span>",
            escape(&session.caller.identity),
            session.caller.role,
            escape(&session.caller.tenant)
        );
        if session.logged_in {
            let _ = write!(
                out,
                " <form class=\"inline\" method=\"post\" action=\"/logout\">{}<button type=\"submit\">Log out</button></form>",
                csrf_field(session)
            );
        }
        out.push_str("</span>");
    }
    let _ = writeln!(out, "</header><main>{main}</main></body></html>");
    out
}

/// The hidden field every state-changing form carries.
fn csrf_field(session: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(&session.csrf)
    )
}

/// The login form (`failed`: the last attempt's token was refused).
pub fn login(failed: bool) -> String {
    let mut main = String::from("<section class=\"login\"><h1>Log in</h1>");
    if failed {
        main.push_str("<p class=\"error\">That token was not accepted.</p>");
    }
    main.push_str(
        "<form method=\"post\" action=\"/login\"><label for=\"token\">API token</label> <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus> <button type=\"submit\">Log in</button></form><p class=\"muted\">The token of <code>--api-token</code> or of your identity in the identities file.</p></section>",
    );
    layout("Log in", None, None, &main)
}

/// A refusal as a page.
pub fn error(session: Option<&Session>, status: u16, message: &str) -> String {
    let main = format!(
        "<section class=\"refusal\"><h1>{status}</h1><p class=\"error\">{}</p><p><a href=\"/\">Back to the runs</a></p></section>",
        escape(message)
    );
    layout("Refused", session, None, &main)
}

/// The runs list's filters and page.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only runs of this tenant (the operator's choice; empty: every tenant's).
    pub tenant: String,
    /// Only runs of this pipeline.
    pub pipeline: String,
    /// Only runs with this status (or phase, while unfinished).
    pub status: String,
    /// Which page, from 0.
    pub page: usize,
}

impl ListFilter {
    /// The query of this filter on page `page`.
    fn query(&self, page: usize) -> String {
        format!(
            "/?tenant={}&pipeline={}&status={}&page={page}",
            segment(&self.tenant),
            segment(&self.pipeline),
            segment(&self.status)
        )
    }
}

/// The colour of a run's status (`None`: it has not ended): as its tasks', with
/// `Completed` a success and a superseded run cancelled.
pub fn run_tone(status: Option<&str>) -> &'static str {
    match status {
        None => "run",
        Some("Completed") => "ok",
        Some(s) if s.contains("Cancel") || s == "Superseded" => "cancel",
        Some(s) => match crate::graph_output::tone(s) {
            "pending" => "fail",
            tone => tone,
        },
    }
}

/// What a run in the list says about itself: its final status, else its phase (and why
/// it is held).
pub fn list_status(run: &RunListItem) -> String {
    run.status
        .clone()
        .unwrap_or_else(|| format!("{:?}", run.phase))
}

fn options(values: &[String], chosen: &str) -> String {
    let mut out = String::from("<option value=\"\">all</option>");
    for value in values {
        let _ = write!(
            out,
            "<option value=\"{v}\"{sel}>{v}</option>",
            v = escape(value),
            sel = if value == chosen { " selected" } else { "" }
        );
    }
    out
}

/// One row of the runs list: the run, why it is held (if it is), its
/// `<status, operationStatus>`.
pub type ListRow = (RunListItem, Option<String>, Option<String>);

/// The runs list: `rows` is this page, `pipelines` and `statuses` what the filters
/// offer, `more` whether a next page exists.
/// What the runs list's filters offer.
pub struct Choices<'a> {
    /// Tenants (the operator's list only; empty for anyone else, who sees their own).
    pub tenants: &'a [String],
    /// Pipelines of the runs listed.
    pub pipelines: &'a [String],
    /// Their statuses.
    pub statuses: &'a [String],
}

pub fn runs(
    session: Option<&Session>,
    filter: &ListFilter,
    rows: &[ListRow],
    choices: &Choices<'_>,
    more: bool,
) -> String {
    let mut main = String::from("<h1>Runs</h1>");
    let tenant = if choices.tenants.is_empty() {
        String::new()
    } else {
        format!(
            "<label>Tenant <select name=\"tenant\">{}</select></label> ",
            options(choices.tenants, &filter.tenant)
        )
    };
    let _ = write!(
        main,
        "<form class=\"filters\" method=\"get\" action=\"/\">{tenant}<label>Pipeline <select name=\"pipeline\">{}</select></label> <label>Status <select name=\"status\">{}</select></label> <button type=\"submit\">Filter</button></form>",
        options(choices.pipelines, &filter.pipeline),
        options(choices.statuses, &filter.status)
    );
    main.push_str("<table class=\"runs\"><thead><tr><th>Run</th><th>Pipeline</th><th>Status</th><th>Operation</th><th>Started</th><th>Duration</th></tr></thead><tbody>");
    for (run, held, operation) in rows {
        let status = list_status(run);
        let tone = run_tone(run.status.as_deref());
        let _ = write!(
            main,
            "<tr class=\"run\" data-run=\"{id}\"><td><a href=\"/runs/{seg}\">{id}</a></td><td>{pipeline}</td><td><span class=\"badge tone-{tone}\">{status}</span>{held}</td><td>{operation}</td><td>{started}</td><td>{duration}</td></tr>",
            id = escape(&run.id),
            seg = escape(&segment(&run.id)),
            pipeline = escape(&run.pipeline_name),
            status = escape(&status),
            held = held
                .as_deref()
                .map(|h| format!(" <span class=\"muted\">{}</span>", escape(h)))
                .unwrap_or_default(),
            operation = escape(operation.as_deref().unwrap_or("-")),
            started = escape(&time(run.created_at.millis())),
            duration = run
                .duration()
                .map(crate::view::human_duration)
                .unwrap_or_else(|| "-".into()),
        );
    }
    if rows.is_empty() {
        main.push_str("<tr><td colspan=\"6\" class=\"muted\">No run matches.</td></tr>");
    }
    main.push_str("</tbody></table><nav class=\"pages\">");
    if filter.page > 0 {
        let _ = write!(
            main,
            "<a rel=\"prev\" href=\"{}\">Newer</a> ",
            escape(&filter.query(filter.page - 1))
        );
    }
    let _ = write!(main, "<span>page {}</span>", filter.page + 1);
    if more {
        let _ = write!(
            main,
            " <a rel=\"next\" href=\"{}\">Older</a>",
            escape(&filter.query(filter.page + 1))
        );
    }
    main.push_str("</nav>");
    layout("Runs", session, None, &main)
}

/// Milliseconds since the epoch as UTC, to the second.
fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// A run's page: its state, the actions the caller may take, its DAG, its tasks.
pub fn run(session: Option<&Session>, caller: &Caller, run: &RunView) -> String {
    let seg = escape(&segment(&run.id));
    let mut main = format!(
        "<h1>{} <span class=\"muted\">attempt {} of {}</span></h1>",
        escape(&run.name),
        run.attempt,
        run.attempts.len().max(1)
    );
    if run.attempts.len() > 1 {
        main.push_str("<nav class=\"attempts\">Attempts:");
        for id in &run.attempts {
            let n = crate::runs::attempt_number(id);
            if id == &run.id {
                let _ = write!(main, " <strong>{n}</strong>");
            } else {
                let _ = write!(
                    main,
                    " <a href=\"/runs/{}?attempt={n}\">{n}</a>",
                    escape(&segment(&run.name))
                );
            }
        }
        main.push_str("</nav>");
    }
    let tone = run_tone(run.finished.then_some(run.status.as_str()));
    let _ = write!(
        main,
        "<dl class=\"facts\"><dt>Pipeline</dt><dd>{}</dd><dt>Status</dt><dd><span id=\"run-status\" class=\"badge tone-{tone}\">{}</span></dd><dt>Reason</dt><dd id=\"run-reason\">{}</dd><dt>Operation</dt><dd id=\"run-operation\">{}</dd><dt>Waiting for</dt><dd id=\"run-waiting\">{}</dd></dl>",
        escape(&run.pipeline),
        escape(&run.status),
        escape(&run.reason),
        escape(run.operation.as_deref().unwrap_or("-")),
        escape(run.waiting_for.as_deref().unwrap_or("-")),
    );
    if let Some(session) = session {
        // A viewer sees no button it may not press (the server refuses it anyway).
        if caller.may(weft_store::Role::Submitter) {
            main.push_str(&actions(session, run));
        }
        main.push_str(&waits(session, caller, run));
    }
    let _ = write!(
        main,
        "<section class=\"graph\"><h2>Graph</h2>{}<p class=\"legend\"><span class=\"badge tone-ok\">succeeded</span> <span class=\"badge tone-warn\">with warnings</span> <span class=\"badge tone-fail\">failed</span> <span class=\"badge tone-skip\">skipped</span> <span class=\"badge tone-run\">running</span> <span class=\"badge tone-wait\">waiting</span> <span class=\"badge tone-cancel\">cancelled</span> <span class=\"badge tone-pending\">pending</span></p></section>",
        super::svg::graph(&run.id, &run.nodes, &run.tasks)
    );
    main.push_str("<section><h2>Tasks</h2><table class=\"tasks\"><thead><tr><th>Task</th><th>Status</th><th>Reason</th><th>Attempts</th><th>Exit</th><th>Log</th></tr></thead><tbody>");
    for task in &run.tasks {
        let _ = write!(
            main,
            "<tr data-task=\"{task}\"{class}><td>{task}{fin}</td><td class=\"status\"><span class=\"badge tone-{tone}\">{status}</span></td><td class=\"reason\">{reason}</td><td class=\"attempts\">{attempts}</td><td class=\"exit\">{exit}</td><td><a href=\"/runs/{seg}/tasks/{task_seg}\">log</a></td></tr>",
            task = escape(&task.task),
            class = if task.finally {
                " class=\"finally\""
            } else {
                ""
            },
            fin = if task.finally {
                " <span class=\"muted\">(finally)</span>"
            } else {
                ""
            },
            tone = task.tone,
            status = escape(&super::svg::status_line(task)),
            reason = escape(&task.reason),
            attempts = task.attempts,
            exit = task.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            task_seg = escape(&segment(&task.task)),
        );
    }
    main.push_str("</tbody></table></section>");
    let live = (!run.finished).then(|| format!("/runs/{}/events", segment(&run.id)));
    layout(&run.name, session, live.as_deref(), &main)
}

/// Cancel (while the run goes) and re-run (once it ended, from its latest attempt); a
/// new run of the pipeline with other params.
fn actions(session: &Session, run: &RunView) -> String {
    let seg = escape(&segment(&run.id));
    let csrf = csrf_field(session);
    let mut out = format!(
        "<section class=\"actions\"><p><a href=\"/runs/{seg}/new\">New run of {} with params…</a></p>",
        escape(&run.pipeline)
    );
    if !run.finished {
        let _ = write!(
            out,
            "<form class=\"cancel\" method=\"post\" action=\"/runs/{seg}/cancel\">{csrf}<label>Cancel <select name=\"mode\"><option value=\"CancelledRunFinally\">CancelledRunFinally (run finally tasks)</option><option value=\"StoppedRunFinally\">StoppedRunFinally (let running tasks end, run finally)</option><option value=\"Cancelled\">Cancelled (stop everything)</option></select></label> <button type=\"submit\" class=\"danger\">Cancel run</button></form>"
        );
    } else if run.attempts.last() == Some(&run.id) {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/runs/{seg}/rerun\">{csrf}<button type=\"submit\" name=\"scope\" value=\"all\">Re-run all</button> <button type=\"submit\" name=\"scope\" value=\"failed\">Re-run failed only</button></form>"
        );
    }
    out.push_str("</section>");
    out
}

/// The run's waits: who decided what, and the forms of those the caller may decide.
fn waits(session: &Session, caller: &Caller, run: &RunView) -> String {
    if run.waits.is_empty() {
        return String::new();
    }
    let seg = escape(&segment(&run.id));
    let mut out = String::from("<section class=\"waits\"><h2>Waits</h2>");
    for wait in &run.waits {
        let state = if wait.open {
            "waiting".to_string()
        } else {
            wait.outcome.clone().unwrap_or_else(|| "closed".into())
        };
        let _ = write!(
            out,
            "<div class=\"wait\" data-wait=\"{task}\"><h3>{task} <span class=\"muted\">{kind}, {state}</span></h3>",
            task = escape(&wait.task),
            kind = escape(&wait.kind),
            state = escape(&state)
        );
        if !wait.approvers.is_empty() {
            let _ = write!(
                out,
                "<p>Approvers: {}</p>",
                escape(&wait.approvers.join(", "))
            );
        }
        if !wait.votes.is_empty() {
            out.push_str("<ul class=\"votes\">");
            for vote in &wait.votes {
                let _ = write!(
                    out,
                    "<li>{} {}{}</li>",
                    escape(&vote.identity),
                    escape(&vote.decision),
                    if vote.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", escape(&vote.message))
                    }
                );
            }
            out.push_str("</ul>");
        }
        if wait.may_decide(caller) {
            out.push_str(&decision_form(session, &seg, wait));
        }
        out.push_str("</div>");
    }
    out.push_str("</section>");
    out
}

fn decision_form(session: &Session, run_seg: &str, wait: &WaitView) -> String {
    let (path, yes, yes_label) = match wait.kind.as_str() {
        "intervention" => ("interventions", "resume", "Resume"),
        _ => ("approvals", "approve", "Approve"),
    };
    format!(
        "<form class=\"decide\" method=\"post\" action=\"/runs/{run_seg}/{path}/{task}\">{csrf}<label>Comment <input name=\"message\" maxlength=\"2000\"></label> <button type=\"submit\" name=\"decision\" value=\"{yes}\" class=\"approve\">{yes_label}</button> <button type=\"submit\" name=\"decision\" value=\"reject\" class=\"danger\">Reject</button></form>",
        csrf = csrf_field(session),
        task = escape(&segment(&wait.task)),
    )
}

/// The form of a new run of `pipeline` (the pipeline run `id` ran): `fields` are its
/// params' inputs (`submit::fields`, escaped there).
pub fn new_run(session: &Session, id: &str, pipeline: &str, fields: &str, action: &str) -> String {
    let main = format!(
        "<h1>New run of {p}</h1><p class=\"muted\">The pipeline as <a href=\"/runs/{seg}\">{id}</a> ran it; empty fields take their default.</p><form class=\"new-run\" method=\"post\" action=\"{action}\">{csrf}{fields}<p><button type=\"submit\" class=\"approve\">Start the run</button></p></form>",
        p = escape(pipeline),
        seg = escape(&segment(id)),
        id = escape(id),
        action = escape(action),
        csrf = csrf_field(session),
    );
    layout(
        &format!("New run of {pipeline}"),
        Some(session),
        None,
        &main,
    )
}

/// `/new`: paste a pipeline (step 1), then fill in its params (step 2, `fields` and the
/// pipeline's name given) and start it.
pub fn paste(session: &Session, text: &str, params: Option<(&str, &str)>) -> String {
    let csrf = csrf_field(session);
    let main = match params {
        None => format!(
            "<h1>New run</h1><form class=\"new-run\" method=\"post\" action=\"/new\">{csrf}<label for=\"pipeline\">Pipeline (YAML: a Pipeline, or a PipelineRun with its pipelineSpec)</label><br><textarea id=\"pipeline\" name=\"pipeline\" rows=\"20\" cols=\"90\" required>{}</textarea><p><button type=\"submit\">Next: its params</button></p></form>",
            escape(text)
        ),
        Some((pipeline, fields)) => format!(
            "<h1>New run of {}</h1><form class=\"new-run\" method=\"post\" action=\"/new\">{csrf}<input type=\"hidden\" name=\"start\" value=\"1\">{fields}<details><summary>Pipeline</summary><textarea name=\"pipeline\" rows=\"20\" cols=\"90\" readonly>{}</textarea></details><p><button type=\"submit\" class=\"approve\">Start the run</button></p></form>",
            escape(pipeline),
            escape(text)
        ),
    };
    layout("New run", Some(session), None, &main)
}

/// One log line as the log view shows it.
pub fn log_line(stream: &str, text: &str) -> String {
    format!(
        "<span class=\"line\" data-stream=\"{}\">{}</span>\n",
        escape(stream),
        escape(text)
    )
}

/// A task's log, followed live while the run goes (`after`: the cursor of the last line
/// shown).
pub fn log(
    session: Option<&Session>,
    run: &RunView,
    task: &str,
    lines: &str,
    after: u64,
) -> String {
    let row = run.tasks.iter().find(|t| t.task == task);
    let mut main = format!(
        "<h1>{} <span class=\"muted\">of <a href=\"/runs/{}\">{}</a></span></h1>",
        escape(task),
        escape(&segment(&run.id)),
        escape(&run.id)
    );
    if let Some(row) = row {
        let _ = write!(
            main,
            "<p>Status: <span id=\"task-status\" class=\"badge tone-{}\">{}</span></p>",
            row.tone,
            escape(&super::svg::status_line(row))
        );
    }
    let _ = write!(
        main,
        "<pre id=\"log\" class=\"log\" data-task=\"{}\">{lines}</pre>",
        escape(task)
    );
    let live = (!run.finished).then(|| {
        format!(
            "/runs/{}/events?task={}&after={after}",
            segment(&run.id),
            segment(task)
        )
    });
    layout(task, session, live.as_deref(), &main)
}
