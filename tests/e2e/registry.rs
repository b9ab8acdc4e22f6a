//! Plugins in an OCI registry, end to end against a real registry: Debian's
//! `docker-registry` (the CNCF distribution server) started on 127.0.0.1 with its storage in
//! a temporary directory. `weft plugin push` / `pull`, pipelines naming a plugin by
//! digest-pinned reference or through `weft.lock`, a tampered blob refused (exit 4), and
//! `weft serve` pulling only from registries its operator allows.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::serve::Served;
use crate::support::{self, Ran, Run};

/// A `docker-registry` on a free loopback port, killed on drop.
struct LocalRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    address: String,
    /// Its storage root (blobs under `docker/registry/v2/blobs/sha256/`).
    storage: PathBuf,
    _dir: tempfile::TempDir,
}

/// The password of user `weft` on a registry started with [`LocalRegistry::with_login`].
const PASSWORD: &str = "weft-registry-pw";
/// Its bcrypt hash (`perl -e 'print crypt("weft-registry-pw", q($2b$05$wEfTsAlTwEfTsAlTwEfTsO))'`).
const PASSWORD_BCRYPT: &str = "$2b$05$wEfTsAlTwEfTsAlTwEfTsOnMjVfA0cKVPMWaMhHS6WqUzZJgjG3T.";

impl LocalRegistry {
    fn start() -> LocalRegistry {
        LocalRegistry::spawn(false)
    }

    /// A registry that wants HTTP basic auth as `weft` / [`PASSWORD`].
    fn with_login() -> LocalRegistry {
        LocalRegistry::spawn(true)
    }

    fn spawn(login: bool) -> LocalRegistry {
        let binary = std::env::var_os("WEFT_DOCKER_REGISTRY")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"));
        assert!(
            binary.is_file(),
            "{} is missing: `cargo xtask test` installs Debian's docker-registry (apt-get install docker-registry), or set WEFT_DOCKER_REGISTRY",
            binary.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = dir.path().join("storage");
        // A free port: bound and released (the registry binds it right after).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
            storage.display()
        );
        if login {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("weft:{PASSWORD_BCRYPT}\n")).expect("htpasswd");
            text.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: weft-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&config, text).expect("config");
        let child = Command::new(&binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        let registry = LocalRegistry {
            child,
            address,
            storage,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.address).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// The blob file holding `digest`.
    fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn echo_wasm() -> PathBuf {
    support::plugin_dir().join("echo.wasm")
}

/// `weft` with its own pull cache under `dir` (so every test pulls for itself).
fn weft(dir: &Path, args: &[&str]) -> Ran {
    support::run_in(
        &dir.join("data"),
        args,
        &[
            ("WEFT_REGISTRY_CACHE", &dir.join("oci").to_string_lossy()),
            ("DOCKER_CONFIG", &dir.join("docker").to_string_lossy()),
        ],
    )
}

/// Pushes echo as `weft/echo:0.1.0`; the pinned reference `weft plugin push` printed.
fn push_echo(dir: &Path, registry: &LocalRegistry) -> String {
    let target = format!("oci://{}/weft/echo:0.1.0", registry.address);
    let echo = echo_wasm();
    let pushed = weft(dir, &["plugin", "push", &echo.to_string_lossy(), &target]);
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    let pinned = pushed.stdout.trim().to_string();
    assert!(
        pinned.starts_with(&format!("oci://{}/weft/echo@sha256:", registry.address)),
        "{pinned}"
    );
    pinned
}

/// A pipeline with a task `hello` naming `plugin`.
fn pipeline(dir: &Path, plugin: &str) -> PathBuf {
    let path = dir.join("pipeline.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: registry\nspec:\n  tasks:\n    - name: hello\n      taskRef: {{name: \"{plugin}\"}}\n      params:\n        - {{name: message, value: from the registry}}\n"
        ),
    )
    .expect("pipeline");
    path
}

fn run_json(dir: &Path, path: &Path, extra: &[&str]) -> (Ran, Option<Run>) {
    let path = path.to_string_lossy();
    let mut args = vec!["run", path.as_ref(), "--output", "json"];
    args.extend_from_slice(extra);
    let ran = weft(dir, &args);
    let run = serde_json::from_str(&ran.stdout).ok().map(Run);
    (ran, run)
}

#[test]
fn a_component_pushed_to_a_registry_is_pulled_back_and_run_by_digest() {
    let registry = LocalRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pinned = push_echo(dir.path(), &registry);

    // The artifact is the Wasm OCI layout: wasm config, one application/wasm layer.
    let out = dir.path().join("pulled.wasm");
    let tag = format!("oci://{}/weft/echo:0.1.0", registry.address);
    let pulled = weft(
        dir.path(),
        &["plugin", "pull", &tag, "-o", &out.to_string_lossy()],
    );
    assert_eq!(pulled.code, 0, "{}", pulled.stderr);
    assert_eq!(
        pulled.stdout.trim(),
        pinned,
        "a tag pull names the same digest"
    );
    assert_eq!(
        std::fs::read(&out).expect("pulled"),
        std::fs::read(echo_wasm()).expect("echo"),
        "the pulled component is byte for byte the pushed one"
    );
    let manifest = manifest(&registry, &pinned);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(1));

    // A pipeline names it by digest, and runs it.
    let path = pipeline(dir.path(), &pinned);
    let (ran, run) = run_json(dir.path(), &path, &[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let run = run.expect("a run document");
    run.expect_tasks(&[("hello", "Succeeded", "")]);
    assert_eq!(run.task("hello")["results"]["message"], "from the registry");

    // Cached by digest: it runs with the registry gone.
    drop(registry);
    let (ran, _) = run_json(dir.path(), &path, &[]);
    assert_eq!(ran.code, 0, "the cached component serves: {}", ran.stderr);
}

fn manifest(registry: &LocalRegistry, pinned: &str) -> serde_json::Value {
    let digest = pinned.rsplit('@').next().expect("digest");
    let output = Command::new("curl")
        .args([
            "-sf",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!(
            "http://{}/v2/weft/echo/manifests/{digest}",
            registry.address
        ))
        .output()
        .expect("curl runs");
    serde_json::from_slice(&output.stdout).expect("a manifest")
}

#[test]
fn a_lock_file_pins_plain_names_to_digests() {
    let registry = LocalRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pinned = push_echo(dir.path(), &registry);
    // `greet` is no plugin weft knows: only the lock beside the pipeline makes it one.
    let path = pipeline(dir.path(), "greet");
    let (ran, _) = run_json(dir.path(), &path, &[]);
    assert_eq!(ran.code, 2, "unknown without the lock: {}", ran.stdout);
    std::fs::write(
        dir.path().join("weft.lock"),
        format!("plugins:\n  greet: {pinned}\n"),
    )
    .expect("lock");
    let (ran, run) = run_json(dir.path(), &path, &[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    run.expect("a run document")
        .expect_tasks(&[("hello", "Succeeded", "")]);

    // A lock entry that is not pinned by digest is refused where it is written.
    let tag = format!("oci://{}/weft/echo:0.1.0", registry.address);
    let bad = dir.path().join("bad.lock");
    std::fs::write(&bad, format!("plugins:\n  greet: {tag}\n")).expect("lock");
    let validated = weft(
        dir.path(),
        &[
            "validate",
            &path.to_string_lossy(),
            "--lock",
            &bad.to_string_lossy(),
        ],
    );
    assert_eq!(validated.code, 2, "{}", validated.stderr);
    assert!(
        validated.stderr.contains("bad.lock:2:10")
            && validated.stderr.contains("not pinned by digest"),
        "{}",
        validated.stderr
    );
    // So is a reference in a pipeline.
    let unpinned = pipeline(dir.path(), &tag);
    let (ran, _) = run_json(
        dir.path(),
        &unpinned,
        &["--lock", &dir.path().join("weft.lock").to_string_lossy()],
    );
    assert_eq!(ran.code, 2, "{}", ran.stdout);
    assert!(
        ran.stdout.contains("not pinned by digest"),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_tampered_blob_is_refused_before_it_is_compiled() {
    let registry = LocalRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pinned = push_echo(dir.path(), &registry);
    let layer = manifest(&registry, &pinned)["layers"][0]["digest"]
        .as_str()
        .expect("layer digest")
        .to_string();
    // Someone with the registry's disk changes one byte of the component.
    let blob = registry.blob(&layer);
    let mut bytes = std::fs::read(&blob).expect("blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes).expect("tamper");

    let path = pipeline(dir.path(), &pinned);
    let (ran, _) = run_json(dir.path(), &path, &[]);
    assert_eq!(
        ran.code, 4,
        "a digest mismatch has its own exit code: {}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("plugin-digest-mismatch") && ran.stdout.contains(&layer),
        "{}",
        ran.stdout
    );
    let out = dir.path().join("tampered.wasm");
    let pulled = weft(
        dir.path(),
        &["plugin", "pull", &pinned, "-o", &out.to_string_lossy()],
    );
    assert_eq!(pulled.code, 4, "{}", pulled.stderr);
    assert!(
        pulled.stderr.contains("does not match its digest"),
        "{}",
        pulled.stderr
    );
    assert!(!out.exists(), "nothing is written");
    // Nothing of it was cached either: a later pull of the intact blob works.
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes).expect("restore");
    let (ran, _) = run_json(dir.path(), &path, &[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

#[test]
fn a_server_pulls_only_from_registries_its_operator_allows() {
    let registry = LocalRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pinned = push_echo(dir.path(), &registry);
    let source = std::fs::read_to_string(pipeline(dir.path(), &pinned)).expect("pipeline");
    let cache = dir.path().join("oci").to_string_lossy().into_owned();
    let env = [("WEFT_REGISTRY_CACHE", cache.as_str())];

    // No --allow-registry: the submission is refused and no request reaches the registry.
    let data = tempfile::tempdir().expect("tempdir");
    let served = Served::start_with_env(data.path(), &[], &env);
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({ "pipeline": source, "file": "p.yaml", "name": "refused" })),
    );
    assert_eq!(code, 400, "{body:#}");
    assert!(body.to_string().contains("--allow-registry"), "{body:#}");
    // Nor through `plugins` pins.
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({
            "pipeline": source.replace(&pinned, "greet"),
            "plugins": { "greet": pinned },
            "name": "refused-pin",
        })),
    );
    assert_eq!(code, 400, "{body:#}");
    drop(served);

    let data = tempfile::tempdir().expect("tempdir");
    let served =
        Served::start_with_env(data.path(), &["--allow-registry", &registry.address], &env);
    // A tampered blob is refused; once the registry serves the right bytes again, the
    // same server uses it (a failed pull is not remembered).
    let layer = manifest(&registry, &pinned)["layers"][0]["digest"]
        .as_str()
        .expect("layer digest")
        .to_string();
    let blob = registry.blob(&layer);
    let intact = std::fs::read(&blob).expect("blob");
    let mut tampered = intact.clone();
    tampered[0] ^= 0xff;
    std::fs::write(&blob, &tampered).expect("tamper");
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({ "pipeline": source, "file": "p.yaml", "name": "tampered" })),
    );
    assert_eq!(code, 400, "{body:#}");
    assert!(
        body.to_string().contains("plugin-digest-mismatch"),
        "{body:#}"
    );
    std::fs::write(&blob, &intact).expect("restore");
    let (code, body) = served.call(
        "POST",
        "/api/v1/runs",
        Some(&json!({
            "pipeline": source.replace(&pinned, "greet"),
            "plugins": { "greet": pinned },
            "name": "allowed",
        })),
    );
    assert_eq!(code, 201, "{body:#}");
    let done = served.wait_for("allowed", |r| {
        r["status"].as_str().is_some_and(|s| !s.is_empty())
    });
    assert_eq!(done["status"], "Succeeded", "{done:#}");
}

#[test]
fn credentials_come_from_the_docker_config_and_never_show() {
    let registry = LocalRegistry::with_login();
    let dir = tempfile::tempdir().expect("tempdir");
    let target = format!("oci://{}/weft/echo:0.1.0", registry.address);
    let echo = echo_wasm().to_string_lossy().into_owned();
    let traced = |dir: &Path, args: &[&str]| {
        support::run_in(
            &dir.join("data"),
            args,
            &[
                ("WEFT_REGISTRY_CACHE", &dir.join("oci").to_string_lossy()),
                ("DOCKER_CONFIG", &dir.join("docker").to_string_lossy()),
                ("WEFT_LOG", "trace"),
            ],
        )
    };
    // No credentials: the registry says no.
    let refused = traced(dir.path(), &["plugin", "push", &echo, &target]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&registry.address),
        "{}",
        refused.stderr
    );

    // A broken Docker config of another tool does not stop a run that pulls nothing; one
    // named with --registry-config must be right.
    std::fs::create_dir_all(dir.path().join("docker")).expect("dir");
    let config = dir.path().join("docker/config.json");
    std::fs::write(&config, "{broken").expect("broken config");
    let plain = support::pipelines().join("all-succeed.yaml");
    let plain = plain.to_string_lossy();
    assert_eq!(traced(dir.path(), &["validate", &plain]).code, 0);
    let named = traced(
        dir.path(),
        &[
            "validate",
            &plain,
            "--registry-config",
            &config.to_string_lossy(),
        ],
    );
    assert_eq!(named.code, 2, "{}", named.stderr);

    // `docker login`'s file: `auths` with base64 `user:password`.
    let auth = crate::git_clone::base64(&format!("weft:{PASSWORD}"));
    std::fs::create_dir_all(dir.path().join("docker")).expect("dir");
    std::fs::write(
        dir.path().join("docker/config.json"),
        json!({ "auths": { registry.address.clone(): { "auth": auth } } }).to_string(),
    )
    .expect("docker config");
    let pushed = traced(dir.path(), &["plugin", "push", &echo, &target]);
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    let pinned = pushed.stdout.trim().to_string();
    let out = dir.path().join("pulled.wasm");
    let pulled = traced(
        dir.path(),
        &["plugin", "pull", &pinned, "-o", &out.to_string_lossy()],
    );
    assert_eq!(pulled.code, 0, "{}", pulled.stderr);
    for ran in [&refused, &pushed, &pulled] {
        for text in [&ran.stdout, &ran.stderr] {
            assert!(
                !text.contains(PASSWORD) && !text.contains(&auth),
                "a credential was logged:\n{text}"
            );
        }
    }
}
