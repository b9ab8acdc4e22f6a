//! `github-set-status`: the Tekton catalog task (0.5) with the same params, plus bounded
//! retries honouring `Retry-After` / `x-ratelimit-reset` and local truncation (140
//! chars). The token (secret `NAME.KEY`) never appears in logs or results.

use forge_common::request::Auth;
use forge_common::{Forge, StatusUpdate};
use forge_glue::task::{self, SetStatus};
use weft_sdk::{Context, Outcome, Param, PluginInfo, Task};

struct GitHubSetStatus;

impl Task for GitHubSetStatus {
    fn describe() -> PluginInfo {
        PluginInfo::new("github-set-status", env!("CARGO_PKG_VERSION"))
            .description("Sets the status of a GitHub commit (Tekton catalog compatible)")
            .param(
                Param::string("GITHUB_HOST_URL")
                    .description("GitHub API host, scheme optional (https by default)")
                    .default("api.github.com"),
            )
            .param(
                Param::string("API_PATH_PREFIX")
                    .description("The API path prefix (GitHub Enterprise: /api/v3)")
                    .default(""),
            )
            .param(Param::string("REPO_FULL_NAME").description("The repository: owner/repo"))
            .param(
                Param::string("GITHUB_TOKEN_SECRET_NAME")
                    .description("The secret holding the token")
                    .default("github"),
            )
            .param(
                Param::string("GITHUB_TOKEN_SECRET_KEY")
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
                    .description("A short description (truncated to 140 chars)"),
            )
            .param(
                Param::string("CONTEXT")
                    .description("The status context")
                    .default("continuous-integration/tekton"),
            )
            .param(
                Param::string("STATE")
                    .description("error, failure, pending, success (or a weft status)"),
            )
            .param(
                Param::string("AUTH_TYPE")
                    .description("The Authorization scheme")
                    .default("Bearer"),
            )
            .results_fixed(true)
            .secret("github.token")
            .http_host("api.github.com")
    }

    fn run(ctx: Context) -> Outcome {
        run(&ctx).unwrap_or_else(|failure| failure)
    }
}

fn run(ctx: &Context) -> Result<Outcome, Outcome> {
    let state =
        task::state(Forge::GitHub, ctx.required("STATE")?).map_err(|e| Outcome::failure(e, 2))?;
    let update = StatusUpdate {
        project: ctx.required("REPO_FULL_NAME")?.to_string(),
        sha: ctx.required("SHA")?.to_string(),
        state,
        context: ctx
            .param_or("CONTEXT", "continuous-integration/tekton")
            .to_string(),
        description: ctx.required("DESCRIPTION")?.to_string(),
        target_url: Some(ctx.required("TARGET_URL")?.to_string()),
        ..StatusUpdate::default()
    };
    let secret = format!(
        "{}.{}",
        ctx.param_or("GITHUB_TOKEN_SECRET_NAME", "github"),
        ctx.param_or("GITHUB_TOKEN_SECRET_KEY", "token")
    );
    let scheme = ctx.param_or("AUTH_TYPE", "Bearer").to_string();
    let auth = move |token: String| Auth::Scheme(scheme.clone(), token);
    Ok(task::run(
        ctx,
        SetStatus {
            forge: Forge::GitHub,
            host: ctx.param_or("GITHUB_HOST_URL", "api.github.com"),
            update,
            api_prefix: ctx.param_or("API_PATH_PREFIX", ""),
            secret,
            auth: &auth,
        },
    ))
}

weft_sdk::export_task!(GitHubSetStatus);
