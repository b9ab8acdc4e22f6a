//! `gitlab-set-status`: the Tekton catalog task (0.4) with the same params, plus bounded
//! retries honouring `Retry-After`, "Cannot transition" treated as success and local
//! truncation. The token (secret `NAME.KEY`) never appears in logs or results.

use forge_common::request::Auth;
use forge_common::{Forge, StatusUpdate};
use forge_glue::task::{self, SetStatus};
use weft_sdk::{Context, Outcome, Param, PluginInfo, Task};

struct GitLabSetStatus;

impl Task for GitLabSetStatus {
    fn describe() -> PluginInfo {
        PluginInfo::new("gitlab-set-status", env!("CARGO_PKG_VERSION"))
            .description("Sets the status of a GitLab commit (Tekton catalog compatible)")
            .param(
                Param::string("GITLAB_HOST_URL")
                    .description("GitLab host, scheme optional (https by default)")
                    .default("gitlab.com"),
            )
            .param(
                Param::string("API_PATH_PREFIX")
                    .description("The API path prefix")
                    .default("/api/v4"),
            )
            .param(
                Param::string("REPO_FULL_NAME")
                    .description("The project: group/project or numeric id"),
            )
            .param(
                Param::string("GITLAB_TOKEN_SECRET_NAME")
                    .description("The secret holding the token")
                    .default("gitlab-api-secret"),
            )
            .param(
                Param::string("GITLAB_TOKEN_SECRET_KEY")
                    .description("The key of the token in that secret")
                    .default("token"),
            )
            .param(Param::string("SHA").description("The commit SHA"))
            .param(
                Param::string("TARGET_URL")
                    .description("The link shown with the status (http/https)"),
            )
            .param(
                Param::string("DESCRIPTION")
                    .description("A short description (truncated to 255 chars)"),
            )
            .param(
                Param::string("CONTEXT")
                    .description("The status name")
                    .default("continuous-integration/tekton"),
            )
            .param(Param::string("STATE").description(
                "pending, running, success, failed, canceled (or skipped, or a weft status)",
            ))
            .param(
                Param::string("COVERAGE")
                    .description("Code coverage (a float); empty for none")
                    .default(""),
            )
            .results_fixed(true)
            .secret("gitlab-api-secret.token")
            .http_host("gitlab.com")
    }

    fn run(ctx: Context) -> Outcome {
        run(&ctx).unwrap_or_else(|failure| failure)
    }
}

fn run(ctx: &Context) -> Result<Outcome, Outcome> {
    let state =
        task::state(Forge::GitLab, ctx.required("STATE")?).map_err(|e| Outcome::failure(e, 2))?;
    let coverage = match ctx.param_or("COVERAGE", "").trim() {
        "" => None,
        c => Some(
            c.parse::<f64>()
                .map_err(|e| Outcome::failure(format!("COVERAGE {c:?}: {e}"), 2))?,
        ),
    };
    let update = StatusUpdate {
        project: ctx.required("REPO_FULL_NAME")?.to_string(),
        sha: ctx.required("SHA")?.to_string(),
        state,
        context: ctx
            .param_or("CONTEXT", "continuous-integration/tekton")
            .to_string(),
        description: ctx.required("DESCRIPTION")?.to_string(),
        target_url: Some(ctx.required("TARGET_URL")?.to_string()),
        coverage,
        ..StatusUpdate::default()
    };
    let secret = format!(
        "{}.{}",
        ctx.param_or("GITLAB_TOKEN_SECRET_NAME", "gitlab-api-secret"),
        ctx.param_or("GITLAB_TOKEN_SECRET_KEY", "token")
    );
    Ok(task::run(
        ctx,
        SetStatus {
            forge: Forge::GitLab,
            host: ctx.param_or("GITLAB_HOST_URL", "gitlab.com"),
            update,
            api_prefix: ctx.param_or("API_PATH_PREFIX", "/api/v4"),
            secret,
            auth: &Auth::bearer,
        },
    ))
}

weft_sdk::export_task!(GitLabSetStatus);
