//! `weft plugin push` / `weft plugin pull`, the registry client every command that loads
//! plugins gets (`--registry-*` flags), and `weft.lock` files.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use weft_core::plugin_ref::{LOCK_FILE, OciRef, PluginLock, RegistryPolicy};
use weft_oci::{Credentials, OciError, Registry, RegistryOptions};

use crate::cli::{OutputFormat, RegistryArgs};
use crate::{EXIT_INTEGRITY, Failure};

/// The registry client `args` describe.
pub(crate) fn registry(args: &RegistryArgs) -> Result<Registry, Failure> {
    // A file named on the command line must be right; the default one (another tool's)
    // only costs its credentials when it cannot be read, so an unrelated broken Docker
    // config never stops a run that pulls nothing.
    let credentials = match (&args.config, Credentials::default_path()) {
        (Some(path), _) => Credentials::load(path).map_err(Failure::invalid)?,
        (None, Some(path)) => Credentials::load(&path).unwrap_or_else(|message| {
            tracing::warn!("registry credentials not read: {message}");
            Credentials::none()
        }),
        (None, None) => Credentials::none(),
    };
    let plain_http = args
        .plain_http
        .iter()
        .map(|host| host.trim().to_string())
        .filter(|host| !host.is_empty())
        .collect();
    let policy = RegistryPolicy {
        allowed: args.allowed.clone(),
        plain_http,
    };
    let cache_dir = args
        .cache
        .clone()
        .or_else(|| crate::home_dir("XDG_CACHE_HOME", ".cache").map(|dir| dir.join("weft/oci")));
    Ok(Registry::new(RegistryOptions {
        policy,
        credentials,
        cache_dir,
    }))
}

fn reference(text: &str) -> Result<OciRef, Failure> {
    OciRef::parse(text).map_err(|e| Failure::invalid(e.to_string()))
}

fn failure(err: OciError) -> Failure {
    match err {
        OciError::Integrity { .. } => Failure {
            code: EXIT_INTEGRITY,
            message: err.to_string(),
        },
        OciError::Refused(_) | OciError::Invalid(_) | OciError::NotWasm { .. } => {
            Failure::invalid(err.to_string())
        }
        OciError::Registry { .. } | OciError::Io(_) => Failure::environment(err.to_string()),
    }
}

/// `weft plugin push FILE REF`: prints the pinned reference on stdout.
pub(crate) async fn push(file: &Path, text: &str, args: &RegistryArgs) -> Result<u8, Failure> {
    let target = reference(text)?;
    if target.tag.is_none() && target.digest.is_none() {
        return Err(Failure::invalid(format!(
            "`{text}` names no tag: push to `{target}:TAG` (a version, e.g. `:0.1.0`)"
        )));
    }
    let component = std::fs::read(file)
        .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", file.display())))?;
    let pushed = registry(args)?
        .push(component, &target)
        .await
        .map_err(failure)?;
    eprintln!(
        "pushed {} to {target} (component {})",
        file.display(),
        pushed.layer_digest
    );
    println!("{}", pushed.pinned);
    Ok(0)
}

/// `weft plugin pull REF [-o FILE]`: writes the verified component; prints the pinned
/// reference on stdout.
pub(crate) async fn pull(
    text: &str,
    output: Option<&Path>,
    args: &RegistryArgs,
) -> Result<u8, Failure> {
    let source = reference(text)?;
    let pulled = registry(args)?.pull(&source).await.map_err(failure)?;
    let out = match output {
        Some(path) => path.to_path_buf(),
        None => {
            let name = source
                .repository
                .rsplit('/')
                .next()
                .unwrap_or(&source.repository);
            PathBuf::from(format!("{name}.wasm"))
        }
    };
    std::fs::write(&out, &pulled.component)
        .map_err(|e| Failure::environment(format!("cannot write {}: {e}", out.display())))?;
    eprintln!(
        "pulled {source} into {} (component {})",
        out.display(),
        pulled.layer_digest
    );
    println!("{}", pulled.pinned);
    Ok(0)
}

/// The pins of the lock file `--lock` names, or of `weft.lock` beside `pipeline` when
/// there is one. `Err` holds the command's result (a bad lock file is reported like a bad
/// pipeline: file:line:column, exit 2).
pub(crate) fn lock_pins(
    lock: Option<&Path>,
    pipeline: &Path,
    output: OutputFormat,
) -> Result<BTreeMap<String, String>, Result<u8, Failure>> {
    let path = match lock {
        Some(path) => path.to_path_buf(),
        None => {
            let beside = pipeline
                .parent()
                .map(|dir| dir.join(LOCK_FILE))
                .unwrap_or_else(|| PathBuf::from(LOCK_FILE));
            if !beside.is_file() {
                return Ok(BTreeMap::new());
            }
            beside
        }
    };
    let source = std::fs::read_to_string(&path).map_err(|e| {
        Err(Failure::invalid(format!(
            "cannot read lock file {}: {e}",
            path.display()
        )))
    })?;
    match PluginLock::parse(&source, &path.display().to_string()) {
        Ok(lock) => Ok(lock.to_texts()),
        Err(diagnostics) => {
            match output {
                OutputFormat::Json | OutputFormat::Tekton | OutputFormat::Dot => {
                    println!("{}", weft_cli::diagnostics::to_json_text(&diagnostics))
                }
                OutputFormat::Text => eprint!(
                    "{}",
                    weft_cli::diagnostics::render(
                        &diagnostics,
                        &source,
                        std::io::stderr().is_terminal()
                    )
                ),
            }
            Err(Ok(crate::EXIT_INVALID))
        }
    }
}
