//! `git-clone`: the Tekton catalogue task's params and results (`url`, `revision`,
//! `refspec`, `subdirectory`, `deleteExisting`, `depth`; results `commit`, `url`,
//! `committer-date`), cloning over HTTP(S) through `wasi:http` only: git's protocol v2
//! (`ls-refs`, `fetch`) on smart HTTP, the pack decoded here (`pack.rs`), the commit's
//! tree written into the `output` workspace. A token from the secret `tokenSecret`
//! (when granted) authenticates as HTTP basic auth, for private repositories; it never
//! appears in logs or results.
//!
//! The checkout has a `.git` directory (the pack as fetched, its index, `HEAD` detached at
//! the commit, `shallow`, the origin remote, an index of the files). Differences from the
//! catalogue task: symlinks and submodules are left out (and listed in the log), and the
//! server must speak protocol v2 (git 2.18 or later, GitHub, GitLab).

pub mod checkout;
pub mod gitdir;
pub mod pack;
pub mod pktline;
pub mod protocol;

#[cfg(target_arch = "wasm32")]
mod task {
    use base64::Engine as _;
    use weft_sdk::http::{self, Response};
    use weft_sdk::{Context, Outcome, Param, PluginInfo, Task, Workspace};

    use crate::{checkout, pack, protocol};

    struct GitClone;

    /// Exit code: the parameters are wrong.
    const EXIT_PARAMS: i32 = 2;
    /// Exit code: the remote or the network failed.
    const EXIT_REMOTE: i32 = 128;

    impl Task for GitClone {
        fn describe() -> PluginInfo {
            PluginInfo::new("git-clone", env!("CARGO_PKG_VERSION"))
                .description("Clones a git repository over HTTP(S) into the output workspace (Tekton catalogue git-clone)")
                .param(Param::string("url").description("Repository URL (http:// or https://)"))
                .param(Param::string("revision").description("Branch, tag, ref or commit SHA (default: the remote's HEAD)").default(""))
                .param(Param::string("refspec").description("Refs to fetch as well, space-separated (`+refs/pull/1/head:...`)").default(""))
                .param(Param::string("subdirectory").description("Directory inside the workspace to clone into").default(""))
                .param(Param::string("deleteExisting").description("Empty the target directory first").default("true"))
                .param(Param::string("depth").description("Commits of history to fetch; 0 for all").default("1"))
                .param(Param::string("tokenSecret").description("Secret holding an access token for private repositories (used when granted)").default("git.token"))
                .param(Param::string("username").description("User name sent with the token").default("x-access-token"))
                // Accepted as the catalogue task takes them; what cannot apply in the
                // sandbox is said in the log.
                .param(Param::string("submodules").description("Submodules are not fetched (they are left out, and logged)").default("true"))
                .param(Param::string("sslVerify").description("TLS is always verified by the host; `false` is refused").default("true"))
                .param(Param::string("sparseCheckoutDirectories").description("Not supported: the whole tree is checked out").default(""))
                .param(Param::string("verbose").description("Log each step").default("true"))
                .param(Param::string("crtFileName").description("Ignored: the host's trust store applies").default("ca-bundle.crt"))
                .param(Param::string("httpProxy").description("Ignored: the host's egress applies").default(""))
                .param(Param::string("httpsProxy").description("Ignored: the host's egress applies").default(""))
                .param(Param::string("noProxy").description("Ignored: the host's egress applies").default(""))
                .param(Param::string("gitInitImage").description("Ignored (no images)").default(""))
                .param(Param::string("userHome").description("Ignored (no home directory)").default(""))
                .result("commit", "The SHA of the commit checked out")
                .result("url", "The URL cloned")
                .result("committer-date", "The commit's committer date, seconds since the epoch")
                .results_fixed(true)
                .workspace(Workspace::new("output").description("Where the repository is checked out"))
                .secret("git.token")
        }

        fn run(ctx: Context) -> Outcome {
            match clone(&ctx) {
                Ok(outcome) => outcome,
                Err((message, code)) => Outcome::failure(message, code),
            }
        }
    }

    type Failed = (String, i32);

    fn params(message: impl Into<String>) -> Failed {
        (message.into(), EXIT_PARAMS)
    }

    fn remote(message: impl Into<String>) -> Failed {
        (message.into(), EXIT_REMOTE)
    }

    fn clone(ctx: &Context) -> Result<Outcome, Failed> {
        let url = ctx
            .required("url")
            .map_err(|e| params(e.to_string()))?
            .trim()
            .trim_end_matches('/')
            .to_string();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(params(format!(
                "url `{url}` must start with https:// or http:// (the plugin clones over HTTP only)"
            )));
        }
        let revision = ctx.param_or("revision", "").trim().to_string();
        let depth: u32 = ctx
            .param_or("depth", "1")
            .trim()
            .parse()
            .map_err(|_| params("depth must be a whole number (0: the whole history)"))?;
        let delete_existing = match ctx.param_or("deleteExisting", "true").trim() {
            "true" => true,
            "false" => false,
            other => {
                return Err(params(format!(
                    "deleteExisting must be `true` or `false`, not `{other}`"
                )));
            }
        };
        let subdirectory = ctx
            .param_or("subdirectory", "")
            .trim()
            .trim_matches('/')
            .to_string();
        if subdirectory
            .split('/')
            .any(|part| part == ".." || part == ".git")
        {
            return Err(params("subdirectory must stay inside the workspace"));
        }
        if ctx.param_or("sslVerify", "true").trim() == "false" {
            return Err(params(
                "sslVerify=false is not supported: the host always verifies TLS (use http:// for a plain-HTTP server the run is allowed to reach)",
            ));
        }
        if !ctx
            .param_or("sparseCheckoutDirectories", "")
            .trim()
            .is_empty()
        {
            return Err(params(
                "sparseCheckoutDirectories is not supported: leave it empty to check out the whole tree",
            ));
        }
        let refspecs: Vec<String> = ctx
            .param_or("refspec", "")
            .split_whitespace()
            .filter_map(|spec| {
                let src = spec.trim_start_matches('+').split(':').next().unwrap_or("");
                (!src.is_empty()).then(|| src.to_string())
            })
            .collect();
        let Some(workspace) = ctx.workspace("output") else {
            return Err(params("the task needs the workspace `output`"));
        };
        let target = if subdirectory.is_empty() {
            workspace
        } else {
            workspace.join(&subdirectory)
        };

        // A token, when the task was granted one.
        let authorization = weft_sdk::secrets::reveal(ctx.param_or("tokenSecret", "git.token"))
            .ok()
            .filter(|token| !token.is_empty())
            .map(|token| {
                let user = ctx.param_or("username", "x-access-token");
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"))
                )
            });
        let mut headers: Vec<(&str, &str)> = vec![
            ("git-protocol", "version=2"),
            ("user-agent", "git/weft-git-clone"),
        ];
        if let Some(auth) = &authorization {
            headers.push(("authorization", auth));
        }

        let advertised = call(
            "GET",
            &format!("{url}/info/refs?service=git-upload-pack"),
            &headers,
            None,
        )?;
        protocol::check_advertisement(&advertised.body).map_err(remote)?;
        let mut post_headers = headers.clone();
        post_headers.push(("content-type", "application/x-git-upload-pack-request"));
        post_headers.push(("accept", "application/x-git-upload-pack-result"));
        let listed = call(
            "POST",
            &format!("{url}/git-upload-pack"),
            &post_headers,
            Some(&protocol::ls_refs_request(&refspecs)),
        )?;
        let refs = protocol::parse_refs(&listed.body).map_err(remote)?;
        let wanted_revision = if revision.is_empty() {
            refspecs.first().cloned().unwrap_or_default()
        } else {
            revision.clone()
        };
        let want = protocol::resolve(&wanted_revision, &refs).map_err(params)?;
        weft_sdk::log::info(&format!(
            "fetching {} ({}) from {url}",
            pack::hex(&want),
            if wanted_revision.is_empty() {
                "HEAD"
            } else {
                &wanted_revision
            }
        ));
        let fetched = call(
            "POST",
            &format!("{url}/git-upload-pack"),
            &post_headers,
            Some(&protocol::fetch_request(&want, depth)),
        )?;
        let fetched = protocol::pack_of(&fetched.body).map_err(|e| {
            if e.contains("not our ref") || e.contains("upload-pack") {
                params(format!("revision `{wanted_revision}`: {e}"))
            } else {
                remote(e)
            }
        })?;
        let parsed = pack::parse(&fetched.pack).map_err(remote)?;
        let objects = &parsed.objects;
        let commit = checkout::commit(objects, &want).map_err(remote)?;
        if delete_existing {
            checkout::empty_dir(&target).map_err(remote)?;
        }
        std::fs::create_dir_all(&target)
            .map_err(|e| remote(format!("cannot create {}: {e}", target.display())))?;
        let mut written = checkout::Written::default();
        checkout::write_tree(objects, &commit.tree, &target, "", &mut written).map_err(remote)?;
        crate::gitdir::write(
            &target,
            &fetched.pack,
            &parsed,
            &want,
            &fetched.shallow,
            &url,
            &written.entries,
        )
        .map_err(remote)?;
        for skipped in &written.skipped {
            weft_sdk::log::warn(&format!("left out {skipped}"));
        }
        let sha = pack::hex(&want);
        weft_sdk::log::info(&format!(
            "checked out {sha}: {} files, {} objects fetched",
            written.files,
            objects.len()
        ));
        Ok(Outcome::success()
            .result("commit", sha)
            .result("url", url)
            .result(
                "committer-date",
                commit
                    .committer_time
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
            ))
    }

    fn call(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, Failed> {
        let response = http::request(method, url, headers, body)
            .map_err(|e| remote(format!("{method} {url}: {e}")))?;
        match response.status {
            200..=299 => Ok(response),
            401 | 403 => Err(remote(format!(
                "{url}: HTTP {} (a private repository needs a token: grant the secret `tokenSecret` names)",
                response.status
            ))),
            404 => Err(params(format!("{url}: HTTP 404: no repository there"))),
            status => Err(remote(format!("{url}: HTTP {status}"))),
        }
    }

    weft_sdk::export_task!(GitClone);
}
