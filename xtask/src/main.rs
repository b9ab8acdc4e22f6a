//! Project automation, so a fresh machine with only the Rust toolchain needs two commands:
//!
//! - `cargo xtask demo`: builds the plugins and the `weft` binary, runs the demo pipeline.
//! - `cargo xtask test`: builds the plugins, runs every test, then fmt and clippy
//!   (installing Debian's `docker-registry` for the OCI tests when it is missing).
//!
//! Also: `cargo xtask build-plugins` (installs the `wasm32-wasip2` target when missing and
//! builds `plugins/` into `target/plugins/`) and `cargo xtask build-sdk-plugins` (installs
//! componentize-py and jco under `target/sdk-tools/` when missing and builds the Python
//! and JavaScript examples in `examples/plugins/` into `target/sdk-plugins/`).

mod sdk;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const WASM_TARGET: &str = "wasm32-wasip2";
const DEMO_PIPELINE: &str = "examples/early-exit.yaml";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build-plugins") => build_plugins().map(|_| ()),
        Some("build-sdk-plugins") => build_plugins()
            .and_then(|plugins| build_weft(&plugins))
            .and_then(|weft| sdk::build_examples(&weft))
            .map(|_| ()),
        Some("sdk-types") => sdk::write_js_types(),
        Some("demo") => demo(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("lint") => lint(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 demo            build everything and run the demo pipeline\n  \
                 test            build the plugins, run all tests, then fmt and clippy\n  \
                 build-plugins   build plugins/ for {WASM_TARGET} into target/plugins/\n  \
                 build-sdk-plugins  build the Python and JavaScript examples into target/sdk-plugins/\n  \
                 sdk-types       regenerate the JavaScript SDK's raw WIT types (jco types)\n  \
                 lint            cargo fmt --check and cargo clippy --all-targets\n  \
                 bench           release-build weft and run the benchmarks (B1 B2 B4 B5 B6 B9 B10 B11 B12\n  \
                                 B13 B14, memory); --output json for tracking, --only B1,B13 to pick\n  \
                                 (the SDK examples are built only when B14 runs; B2L and B3L, the\n  \
                                 100,000-task runs, only when named)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()));
    cmd.current_dir(root());
    cmd
}

pub(crate) fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

/// Installs the wasm target through rustup when it is missing.
fn ensure_wasm_target() -> Result<(), String> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    let installed = Path::new(&sysroot)
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .exists();
    if installed {
        return Ok(());
    }
    eprintln!("xtask: the {WASM_TARGET} target is missing; installing it with rustup");
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
        .map_err(|e| format!("{e}\n  the plugins need the {WASM_TARGET} target: run `rustup target add {WASM_TARGET}`"))
}

/// Builds `plugins/` and copies the components to `target/plugins/`.
fn build_plugins() -> Result<PathBuf, String> {
    ensure_wasm_target()?;
    let root = root();
    run(cargo().args([
        "build",
        "--release",
        "--target",
        WASM_TARGET,
        "--manifest-path",
        "plugins/Cargo.toml",
    ]))?;
    // B1's floor, no_std: a workspace of its own, built into the same target directory.
    run(cargo().args([
        "build",
        "--release",
        "--target",
        WASM_TARGET,
        "--manifest-path",
        "plugins/noop/Cargo.toml",
        "--target-dir",
        "plugins/target",
    ]))?;
    let built = root
        .join("plugins/target")
        .join(WASM_TARGET)
        .join("release");
    let out = root.join("target/plugins");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let entries =
        std::fs::read_dir(&built).map_err(|e| format!("cannot read {}: {e}", built.display()))?;
    let mut copied = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "wasm")
            && let Some(stem) = path.file_stem()
        {
            // Cargo names a cdylib after the crate with `-` turned into `_`; plugins are
            // known by their crate names (`gitlab-set-status`, as Tekton's catalog says).
            let name = format!("{}.wasm", stem.to_string_lossy().replace('_', "-"));
            let stale = out.join(stem).with_extension("wasm");
            if stale.file_name() != Some(std::ffi::OsStr::new(&name)) {
                let _ = std::fs::remove_file(&stale);
            }
            let dest = out.join(&name);
            let unchanged = std::fs::read(&dest).ok() == std::fs::read(&path).ok();
            if !unchanged {
                std::fs::copy(&path, &dest).map_err(|e| {
                    format!("cannot copy {} to {}: {e}", path.display(), dest.display())
                })?;
            }
            copied.push(name);
        }
    }
    copied.sort();
    eprintln!("xtask: plugins in {}: {}", out.display(), copied.join(", "));
    Ok(out)
}

/// Builds the debug `weft` with the first-party plugins built in; returns its path.
fn build_weft(plugins: &Path) -> Result<PathBuf, String> {
    run(cargo()
        .args(["build", "-p", "weft-cli"])
        .env("WEFT_EMBED_PLUGINS", plugins))?;
    Ok(root().join("target/debug/weft"))
}

fn demo(extra: &[String]) -> Result<(), String> {
    let plugins = build_plugins()?;
    let weft = build_weft(&plugins)?;
    let mut cmd = Command::new(&weft);
    cmd.current_dir(root())
        .arg("run")
        .arg(DEMO_PIPELINE)
        .args(extra);
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {}: {e}", weft.display()))?;
    // The demo pipeline succeeds; any other status is worth failing loudly.
    if status.success() {
        Ok(())
    } else {
        Err(format!("the demo run ended with {status}"))
    }
}

/// The registry the OCI end-to-end tests push to: Debian's `docker-registry` (the CNCF
/// distribution server), installed with apt-get when missing.
const DOCKER_REGISTRY: &str = "/usr/bin/docker-registry";

/// The browser the dashboard's end-to-end tests drive: Debian's `chromium` and
/// `chromium-driver` (`/usr/bin/chromium`, `/usr/bin/chromedriver`), installed with
/// apt-get when missing.
fn ensure_chromium() -> Result<(), String> {
    if Path::new("/usr/bin/chromium").is_file() && Path::new("/usr/bin/chromedriver").is_file() {
        return Ok(());
    }
    eprintln!(
        "xtask: chromium or chromedriver is missing; installing Debian's chromium and chromium-driver"
    );
    let install = || {
        let mut install = Command::new("apt-get");
        install
            .args(["install", "-y", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut install)
    };
    install()
        .or_else(|_| run(Command::new("apt-get").arg("update")).and_then(|()| install()))
        .map_err(|e| {
            format!("{e}\n  the dashboard's browser tests need `apt-get install chromium chromium-driver` (as root)")
        })
}

fn ensure_docker_registry() -> Result<PathBuf, String> {
    let path = PathBuf::from(DOCKER_REGISTRY);
    if path.is_file() {
        return Ok(path);
    }
    eprintln!("xtask: {DOCKER_REGISTRY} is missing; installing Debian's docker-registry");
    let install = || {
        let mut install = Command::new("apt-get");
        install
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "docker-registry",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut install)
    };
    // Stale package lists are the usual reason an install fails: update them once.
    install()
        .or_else(|_| run(Command::new("apt-get").arg("update")).and_then(|()| install()))
        .map_err(|e| {
            format!("{e}\n  the registry tests need a local registry: `apt-get install docker-registry` (as root), or set WEFT_DOCKER_REGISTRY to a distribution `registry` binary")
        })?;
    Ok(path)
}

fn test(extra: &[String]) -> Result<(), String> {
    let registry = match std::env::var_os("WEFT_DOCKER_REGISTRY") {
        Some(path) => PathBuf::from(path),
        None => ensure_docker_registry()?,
    };
    ensure_chromium()?;
    let plugins = build_plugins()?;
    let weft = build_weft(&plugins)?;
    // The SDK examples are built by that `weft` (`weft plugin build`), then their own
    // tests run natively (unittest, node --test); the e2e tests run them through weft.
    let sdk = sdk::build_examples(&weft)?;
    sdk::check_js_types(&sdk.tools.jco)?;
    sdk::test_examples()?;
    let tests = || {
        let mut cmd = cargo();
        cmd.env("WEFT_EMBED_PLUGINS", &plugins)
            .env("WEFT_PLUGIN_DIR", &plugins)
            .env("WEFT_DOCKER_REGISTRY", &registry)
            .env("WEFT_SDK_PLUGIN_DIR", &sdk.plugins)
            .env("WEFT_COMPONENTIZE_PY", &sdk.tools.componentize_py)
            .env("WEFT_JCO", &sdk.tools.jco);
        cmd
    };
    if !extra.is_empty() {
        return run(tests().args(["test", "--workspace"]).args(extra));
    }
    // The cluster tests measure leases of a 2 s TTL: they run after the rest, one at a
    // time, so that the other tests' load on the machine's cores does not make their
    // heartbeats late.
    run(tests().args(["test", "--workspace", "--", "--skip", "cluster::"]))?;
    run(tests().args([
        "test",
        "-p",
        "weft-cli",
        "--test",
        "e2e",
        "--",
        "cluster::",
        "--test-threads=1",
    ]))?;
    // The forges' mapping and classification, the first-party form decorators'
    // templates and patterns, the first-party gates' checks, and the catalogue tasks'
    // durations, statuses and backoff, are plain Rust, tested on the host.
    run(cargo().args([
        "test",
        "--manifest-path",
        "plugins/Cargo.toml",
        "-p",
        "forge-common",
        "-p",
        "decorator-common",
        "-p",
        "derive-params",
        "-p",
        "require-params",
        "-p",
        "http-token",
        "-p",
        "http-check",
        "-p",
        "time-window",
        "-p",
        "catalogue-common",
        "-p",
        "git-clone",
    ]))?;
    lint()
}

fn bench(extra: &[String]) -> Result<(), String> {
    let plugins = build_plugins()?;
    // B14 compares the SDK examples (built by the debug weft: building is not measured).
    let only = extra
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| extra.get(i + 1));
    let sdk_plugins = if only.is_none_or(|ids| ids.split(',').any(|id| id == "B14")) {
        sdk::build_examples(&build_weft(&plugins)?)?.plugins
    } else {
        root().join("target/sdk-plugins")
    };
    run(cargo()
        .args(["build", "--release", "-p", "weft-cli", "-p", "weft-bench"])
        .env("WEFT_EMBED_PLUGINS", &plugins))?;
    let root = root();
    run(Command::new(root.join("target/release/weft-bench"))
        .current_dir(&root)
        .arg("--weft")
        .arg(root.join("target/release/weft"))
        .arg("--plugins")
        .arg(&plugins)
        .arg("--sdk-plugins")
        .arg(&sdk_plugins)
        .args(extra))
}

fn lint() -> Result<(), String> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "fmt",
        "--manifest-path",
        "plugins/Cargo.toml",
        "--all",
        "--",
        "--check",
    ]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args([
        "clippy",
        "--manifest-path",
        "plugins/Cargo.toml",
        "--target",
        WASM_TARGET,
        "--",
        "-D",
        "warnings",
    ]))
}
