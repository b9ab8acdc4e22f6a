//! The `git-clone` plugin against a repository served on 127.0.0.1 by git's own
//! `git http-backend` (run as a CGI by a small HTTP server here): a branch, an annotated
//! tag, a commit SHA, depth 1 and the whole history, a subdirectory emptied first, a bad
//! revision, and a private repository that needs a token from a granted secret.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::fake_forge::FakeForge;
use crate::support::{self, Ran, Run};

const HTTP_BACKEND: &str = "/usr/lib/git-core/git-http-backend";
const TOKEN: &str = "s3cret-token";

/// `git http-backend` behind a tiny HTTP/1.1 server; with `token`, every request must
/// carry `Authorization: Basic base64(x-access-token:TOKEN)`.
struct GitServer {
    port: u16,
}

impl GitServer {
    fn start(root: &Path, token: Option<&str>) -> GitServer {
        assert!(
            Path::new(HTTP_BACKEND).is_file(),
            "{HTTP_BACKEND} is missing (Debian's git package has it)"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let root = root.to_path_buf();
        let expected =
            token.map(|token| format!("Basic {}", base64(&format!("x-access-token:{token}"))));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let root = root.clone();
                let expected = expected.clone();
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &root, expected.as_deref());
                });
            }
        });
        GitServer { port }
    }

    fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }

    fn rule(&self) -> String {
        format!("!private:127.0.0.1:{}", self.port)
    }
}

/// Base64 without a crate (the e2e tests keep their dependencies few).
pub fn base64(text: &str) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn serve_one(stream: TcpStream, root: &Path, expected: Option<&str>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("GET").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let mut stream = stream;
    if let Some(expected) = expected
        && header("authorization").as_deref() != Some(expected)
    {
        return write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut child = Command::new(HTTP_BACKEND)
        .env_clear()
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env(
            "HTTP_GIT_PROTOCOL",
            header("git-protocol").unwrap_or_default(),
        )
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&body)?;
    }
    let output = child.wait_with_output()?;
    let split = output
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (at, 4))
        .or_else(|| {
            output
                .stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|at| (at, 2))
        });
    let Some((at, skip)) = split else {
        return write!(
            stream,
            "HTTP/1.1 500 CGI\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    };
    let cgi_headers = String::from_utf8_lossy(&output.stdout[..at]).into_owned();
    let content = &output.stdout[at + skip..];
    let mut status = "200 OK".to_string();
    let mut out = Vec::new();
    for line in cgi_headers.lines() {
        if let Some(value) = line.strip_prefix("Status:") {
            status = value.trim().to_string();
        } else if !line.trim().is_empty() {
            out.push(line.trim().to_string());
        }
    }
    write!(stream, "HTTP/1.1 {status}\r\n")?;
    for line in out {
        write!(stream, "{line}\r\n")?;
    }
    write!(
        stream,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    )?;
    stream.write_all(content)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "weft")
        .env("GIT_AUTHOR_EMAIL", "weft@example.invalid")
        .env("GIT_COMMITTER_NAME", "weft")
        .env("GIT_COMMITTER_EMAIL", "weft@example.invalid")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A repository: main (two commits, the first tagged `v1`, annotated), `dev` (one more),
/// served bare as `repo.git` under the returned root.
struct Fixture {
    root: tempfile::TempDir,
    first: String,
    main: String,
    dev: String,
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().expect("tempdir");
    let work = root.path().join("work");
    std::fs::create_dir_all(work.join("docs")).expect("dir");
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README.md"), "first\n").expect("write");
    std::fs::write(work.join("docs/guide.txt"), "guide v1\n").expect("write");
    std::fs::write(work.join("build.sh"), "#!/bin/sh\necho build\n").expect("write");
    git(&work, &["add", "."]);
    git(&work, &["update-index", "--chmod=+x", "build.sh"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    git(&work, &["tag", "-a", "v1", "-m", "release 1"]);
    let first = git(&work, &["rev-parse", "HEAD"]);
    std::fs::write(work.join("README.md"), "second\n").expect("write");
    // Enough text for git to store deltas.
    let big: String = (0..400)
        .map(|i| format!("line {i} of the guide\n"))
        .collect();
    std::fs::write(work.join("docs/guide.txt"), &big).expect("write");
    git(&work, &["commit", "-q", "-am", "second"]);
    let main = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-q", "-b", "dev"]);
    std::fs::write(work.join("dev.txt"), "dev only\n").expect("write");
    std::fs::write(work.join("Dockerfile"), "FROM scratch\n").expect("write");
    std::fs::write(work.join("docs/guide.txt"), format!("{big}one more\n")).expect("write");
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "dev"]);
    let dev = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-q", "main"]);
    git(root.path(), &["clone", "-q", "--bare", "work", "repo.git"]);
    // A change under review, outside branches and tags (as forges keep pull requests).
    git(
        &root.path().join("repo.git"),
        &["update-ref", "refs/pull/7/head", &dev],
    );
    git(&root.path().join("repo.git"), &["repack", "-adq"]);
    Fixture {
        root,
        first,
        main,
        dev,
    }
}

const PIPELINE: &str = "apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: clone
spec:
  params:
    - {name: url}
    - {name: revision, default: \"\"}
    - {name: depth, default: \"1\"}
    - {name: subdirectory, default: \"\"}
    - {name: refspec, default: \"\"}
  workspaces:
    - name: src
  tasks:
    - name: fetch
      taskRef: {name: git-clone}
      secrets: [git.token]
      workspaces:
        - {name: output, workspace: src}
      params:
        - {name: url, value: $(params.url)}
        - {name: revision, value: $(params.revision)}
        - {name: depth, value: $(params.depth)}
        - {name: subdirectory, value: $(params.subdirectory)}
        - {name: refspec, value: $(params.refspec)}
";

fn clone(
    dir: &Path,
    server: &GitServer,
    params: &[&str],
    token: Option<&str>,
) -> (Ran, Run, PathBuf) {
    let pipeline = dir.join("clone.yaml");
    std::fs::write(&pipeline, PIPELINE).expect("pipeline");
    let out = dir.join("checkout");
    std::fs::create_dir_all(&out).expect("out");
    let url = format!("url={}", server.url("repo.git"));
    let workspace = format!("src={}", out.display());
    let plugins = support::plugin_dir().to_string_lossy().into_owned();
    let rule = server.rule();
    let pipeline = pipeline.to_string_lossy().into_owned();
    let mut args = vec![
        "run",
        &pipeline,
        "--output",
        "json",
        "--plugins",
        &plugins,
        "--allow-http",
        &rule,
        "--workspace",
        &workspace,
        "-p",
        &url,
        "--secret",
        "git.token=env:WEFT_TEST_GIT_TOKEN",
    ];
    let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
    for param in &params {
        args.extend(["-p", param.as_str()]);
    }
    let ran = support::run_in(
        &dir.join("data"),
        &args,
        &[("WEFT_TEST_GIT_TOKEN", token.unwrap_or(""))],
    );
    let run = Run(ran.json());
    (ran, run, out)
}

/// How many objects the clone in `dir` fetched (from the task's log).
fn fetched_objects(dir: &Path) -> usize {
    let runs = std::fs::read_dir(dir.join("data/runs")).expect("runs");
    for run in runs.flatten() {
        if let Ok(log) = std::fs::read_to_string(run.path().join("logs/fetch.log"))
            && let Some(count) = log
                .lines()
                .find_map(|line| line.split(" files, ").nth(1))
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
        {
            return count;
        }
    }
    panic!("no fetch log under {}", dir.display());
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn git_clone_checks_out_branches_tags_and_commits_over_http_backend() {
    let repo = fixture();
    let server = GitServer::start(repo.root.path(), None);

    // The default branch, whole history.
    let dir = tempfile::tempdir().expect("tempdir");
    let (ran, run, out) = clone(dir.path(), &server, &["depth=0"], None);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stderr, ran.stdout);
    assert_eq!(run.task("fetch")["results"]["commit"], repo.main.as_str());
    assert_eq!(
        run.task("fetch")["results"]["url"],
        server.url("repo.git").as_str()
    );
    assert_eq!(read(&out.join("README.md")), "second\n");
    assert!(read(&out.join("docs/guide.txt")).starts_with("line 0 of the guide\n"));
    assert!(!out.join("dev.txt").exists());
    let whole = fetched_objects(dir.path());
    // A real repository: git reads its HEAD, history, objects and index.
    assert_eq!(git(&out, &["rev-parse", "HEAD"]), repo.main);
    assert_eq!(git(&out, &["rev-list", "--count", "HEAD"]), "2");
    git(&out, &["fsck", "--full", "--strict"]);
    assert_eq!(
        git(&out, &["status", "--porcelain"]),
        "",
        "the index matches the files"
    );
    assert_eq!(
        git(&out, &["remote", "get-url", "origin"]),
        server.url("repo.git")
    );

    // The same at depth 1: only the last commit's objects.
    let dir = tempfile::tempdir().expect("tempdir");
    let (ran, run, _) = clone(dir.path(), &server, &[], None);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(run.task("fetch")["results"]["commit"], repo.main.as_str());
    let shallow = fetched_objects(dir.path());
    let out = dir.path().join("checkout");
    assert_eq!(
        git(&out, &["rev-list", "--count", "HEAD"]),
        "1",
        "a shallow clone"
    );
    git(&out, &["fsck", "--strict"]);
    assert_eq!(git(&out, &["status", "--porcelain"]), "");
    // main: 2 commits, 2 root trees, 2 docs trees, 5 blobs; its tip alone: 1, 1, 1, 3.
    assert_eq!((whole, shallow), (11, 6), "depth 1 fetches the tip only");

    // A branch, depth 1.
    let dir = tempfile::tempdir().expect("tempdir");
    let (ran, run, out) = clone(dir.path(), &server, &["revision=dev"], None);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(run.task("fetch")["results"]["commit"], repo.dev.as_str());
    assert_eq!(read(&out.join("dev.txt")), "dev only\n");
    assert!(read(&out.join("docs/guide.txt")).ends_with("one more\n"));

    // An annotated tag: the commit it points at.
    let dir = tempfile::tempdir().expect("tempdir");
    let (ran, run, out) = clone(dir.path(), &server, &["revision=v1"], None);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(run.task("fetch")["results"]["commit"], repo.first.as_str());
    assert_eq!(read(&out.join("README.md")), "first\n");
    assert_eq!(read(&out.join("docs/guide.txt")), "guide v1\n");

    // A commit SHA, depth 1, into a subdirectory emptied first.
    let dir = tempfile::tempdir().expect("tempdir");
    let stale = dir.path().join("checkout/sub/stale.txt");
    std::fs::create_dir_all(stale.parent().expect("parent")).expect("dir");
    std::fs::write(&stale, "old").expect("write");
    let revision = format!("revision={}", repo.first);
    let (ran, run, out) = clone(dir.path(), &server, &[&revision, "subdirectory=sub"], None);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(run.task("fetch")["results"]["commit"], repo.first.as_str());
    assert_eq!(read(&out.join("sub/README.md")), "first\n");
    assert!(!stale.exists(), "deleteExisting empties the target");

    // A refspec outside branches and tags (a pull request's head), no revision.
    let dir = tempfile::tempdir().expect("tempdir");
    let (ran, run, out) = clone(
        dir.path(),
        &server,
        &["refspec=+refs/pull/7/head:refs/heads/pr"],
        None,
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(run.task("fetch")["results"]["commit"], repo.dev.as_str());
    assert_eq!(read(&out.join("dev.txt")), "dev only\n");

    // A revision the repository does not have.
    let dir = tempfile::tempdir().expect("tempdir");
    let (ran, run, _) = clone(dir.path(), &server, &["revision=no-such-branch"], None);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let task = run.task("fetch");
    assert_eq!(task["status"], "Failed", "{task:#}");
    assert!(
        task["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-branch")),
        "{task:#}"
    );
}

#[test]
fn git_clone_uses_a_granted_token_for_a_private_repository() {
    let repo = fixture();
    let server = GitServer::start(repo.root.path(), Some(TOKEN));
    let dir = tempfile::tempdir().expect("tempdir");
    let (ran, run, _) = clone(dir.path(), &server, &[], None);
    assert_eq!(ran.code, 1, "no token: {}", ran.stderr);
    let task = run.task("fetch");
    assert!(
        task["message"].as_str().is_some_and(|m| m.contains("401")),
        "{task:#}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let (ran, run, out) = clone(dir.path(), &server, &[], Some(TOKEN));
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(run.task("fetch")["results"]["commit"], repo.main.as_str());
    assert_eq!(read(&out.join("README.md")), "second\n");
    assert!(!ran.stdout.contains(TOKEN), "the token never shows");
}

/// The seed's Tekton pipeline, whole (`examples/tekton-seed-git-clone.yaml`): git-clone
/// from http-backend, the build stand-in, and the two `finally` GitLab reports naming the
/// commit git-clone checked out.
#[test]
fn the_seed_pipeline_clones_builds_and_reports_to_gitlab() {
    let repo = fixture();
    let server = GitServer::start(repo.root.path(), None);
    let example = support::root().join("examples/tekton-seed-git-clone.yaml");
    let example = example.to_string_lossy().into_owned();
    // `dev` has a Dockerfile (the build passes), `main` none (it fails).
    for (revision, sha, code, state) in [
        ("dev", &repo.dev, 0, "success"),
        ("main", &repo.main, 1, "failed"),
    ] {
        let forge = FakeForge::start();
        let data = tempfile::tempdir().expect("tempdir");
        let url = format!("repo-url={}", server.url("repo.git"));
        let rev = format!("revision={revision}");
        let host = format!("gitlab-host={}", forge.url());
        let ran = support::run_in(
            data.path(),
            &[
                "run",
                &example,
                "--output",
                "json",
                "-p",
                &url,
                "-p",
                &rev,
                "-p",
                &host,
                "--secret",
                "gitlab-api-secret.token=env:WEFT_TEST_TOKEN",
                "--grant",
                "report-failure=gitlab-api-secret.token",
                "--grant",
                "report-success=gitlab-api-secret.token",
                "--allow-http",
                &server.rule(),
                "--allow-http",
                &forge.rule(),
            ],
            &[("WEFT_TEST_TOKEN", "glpat-seed")],
        );
        assert_eq!(ran.code, code, "{revision}: {}\n{}", ran.stderr, ran.stdout);
        let run = Run(ran.json());
        assert_eq!(
            run.task("fetch-repository")["results"]["commit"],
            sha.as_str()
        );
        let requests = forge.requests();
        let last = requests
            .last()
            .unwrap_or_else(|| panic!("{revision}: GitLab was told nothing"));
        assert!(last.path.ends_with(sha.as_str()), "{revision}: {last:?}");
        assert_eq!(last.field("state"), state, "{revision}: {last:?}");
    }
}
