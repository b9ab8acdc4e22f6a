//! `weft tenants`, `weft tokens` and `weft audit`: the operator at the store (whoever can
//! open it may administer every tenant; the audit log names them `cli:<OS user>`).

use weft_store::{Role, TenantStore, Timestamp};

use super::{TenancyError, TokenRequest};
use crate::cli::{
    AuditArgs, OutputFormat, SecretsCommand, SecretsKeyArgs, StoreArgs, TenantsCommand,
    TokensCommand,
};
use crate::{EXIT_CONFLICT, Failure};

/// Who the audit log says acted from the command line.
fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

fn failure(err: TenancyError) -> Failure {
    match err {
        TenancyError::Invalid(m) | TenancyError::NotFound(m) => Failure::invalid(m),
        TenancyError::Exists(m) | TenancyError::Quota(m) => Failure {
            code: EXIT_CONFLICT,
            message: m,
        },
        TenancyError::Store(m) => Failure::environment(m),
    }
}

fn open(store: &StoreArgs) -> Result<std::sync::Arc<weft_store::BatchingStore>, Failure> {
    let location = crate::store::store_location(store.db.as_deref(), store.data_dir.as_deref())?;
    crate::store::open_store(&location)
}

fn time(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "never".to_string(), when)
}

fn when(at: Timestamp) -> String {
    weft_engine::runs::describe_time(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(at.millis().max(0) as u64),
    )
}

/// Carries out `weft tenants ...`.
pub fn tenants(command: TenantsCommand) -> Result<u8, Failure> {
    match command {
        TenantsCommand::Create { name, store } => {
            let opened = open(&store)?;
            let tenant = super::create_tenant(opened.as_ref(), &name, &actor()).map_err(failure)?;
            match store.output.plain() {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::json!({"name": tenant.name, "createdAt": tenant.created_at.millis()})
                ),
                _ => println!("tenant {} created", tenant.name),
            }
            Ok(0)
        }
        TenantsCommand::List { store } => {
            let opened = crate::store::open_for(&store)?;
            let tenants = opened
                .tenants()
                .map_err(|e| Failure::environment(e.to_string()))?;
            match store.output.plain() {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::Value::Array(
                        tenants
                            .iter()
                            .map(|t| serde_json::json!({"name": t.name, "createdAt": t.created_at.millis()}))
                            .collect()
                    )
                ),
                _ => {
                    for tenant in &tenants {
                        println!("{}", tenant.name);
                    }
                }
            }
            Ok(0)
        }
    }
}

/// Carries out `weft tokens ...`.
pub fn tokens(command: TokensCommand) -> Result<u8, Failure> {
    match command {
        TokensCommand::Create(args) => {
            let role: Role = args.role.parse().map_err(Failure::invalid)?;
            let opened = open(&args.store)?;
            let issued = super::create_token(
                opened.as_ref(),
                TokenRequest {
                    tenant: args.tenant.clone(),
                    identity: args.identity.clone(),
                    role,
                    groups: args.groups.clone(),
                    expires: args.expires.clone(),
                },
                &actor(),
            )
            .map_err(failure)?;
            match args.store.output.plain() {
                OutputFormat::Json => {
                    let mut document = super::token_json(&issued.record);
                    document["token"] = serde_json::json!(issued.token);
                    document["role"] = serde_json::json!(issued.member.role.as_str());
                    println!("{document}");
                }
                _ => {
                    // The token alone on standard output, for scripts; the rest for people.
                    println!("{}", issued.token);
                    eprintln!(
                        "weft: token {} for {} ({}) in tenant {}, expires {}; it is shown only now",
                        issued.record.id,
                        issued.record.identity,
                        issued.member.role,
                        issued.record.tenant,
                        time(issued.record.expires_at)
                    );
                }
            }
            Ok(0)
        }
        TokensCommand::List { tenant, store } => {
            let opened = crate::store::open_for(&store)?;
            let tokens = opened
                .tokens(tenant.as_deref())
                .map_err(|e| Failure::environment(e.to_string()))?;
            match store.output.plain() {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::Value::Array(tokens.iter().map(super::token_json).collect())
                ),
                _ => {
                    println!(
                        "{:<16}  {:<16}  {:<20}  {:<8}  EXPIRES",
                        "ID", "TENANT", "IDENTITY", "STATE"
                    );
                    for token in &tokens {
                        let listed = super::token_json(token);
                        println!(
                            "{:<16}  {:<16}  {:<20}  {:<8}  {}",
                            token.id,
                            token.tenant,
                            token.identity,
                            listed["state"].as_str().unwrap_or(""),
                            time(token.expires_at)
                        );
                    }
                }
            }
            Ok(0)
        }
        TokensCommand::Revoke { id, tenant, store } => {
            let opened = crate::store::open_for(&store)?;
            let token = super::revoke_token(opened.as_ref(), tenant.as_deref(), &id, &actor())
                .map_err(failure)?;
            match store.output.plain() {
                OutputFormat::Json => println!("{}", serde_json::json!({"revoked": token.id})),
                _ => println!(
                    "token {} of {} in tenant {} revoked",
                    token.id, token.identity, token.tenant
                ),
            }
            Ok(0)
        }
    }
}

/// Carries out `weft audit`.
pub fn audit(args: &AuditArgs) -> Result<u8, Failure> {
    let opened = crate::store::open_for(&args.store)?;
    let entries = opened
        .audit(args.tenant.as_deref(), args.after, args.limit.min(10_000))
        .map_err(|e| Failure::environment(e.to_string()))?;
    match args.store.output.plain() {
        OutputFormat::Json => println!(
            "{}",
            serde_json::Value::Array(entries.iter().map(super::audit_json).collect())
        ),
        _ => {
            for entry in &entries {
                let e = &entry.entry;
                println!(
                    "{:>6}  {}  {:<12}  {:<20}  {:<16}  {}  {}",
                    entry.seq,
                    when(e.at),
                    e.tenant,
                    e.actor,
                    e.action,
                    e.target,
                    e.detail_json
                );
            }
        }
    }
    Ok(0)
}

fn keys(args: &SecretsKeyArgs) -> Result<super::secrets::SecretsKeys, Failure> {
    super::secrets::SecretsKeys::load(args.key_file.as_deref(), &args.old_key_files)
        .map_err(Failure::invalid)?
        .ok_or_else(|| {
            Failure::invalid(format!(
                "no secrets key: pass --secrets-key-file FILE or set {}",
                super::secrets::KEY_ENV
            ))
        })
}

/// Carries out `weft secrets ...`.
pub fn secrets(command: SecretsCommand) -> Result<u8, Failure> {
    match command {
        SecretsCommand::Set {
            name,
            key,
            tenant,
            keys: key_args,
            store,
        } => {
            let keys = keys(&key_args)?;
            let mut value = String::new();
            std::io::Read::read_to_string(
                &mut std::io::Read::take(
                    std::io::stdin(),
                    super::secrets::MAX_VALUE_BYTES as u64 + 2,
                ),
                &mut value,
            )
            .map_err(|e| {
                Failure::invalid(format!("cannot read the value from standard input: {e}"))
            })?;
            // A value piped by `echo` ends with a line break that is not part of it.
            let value = value.strip_suffix('\n').unwrap_or(&value);
            let value = value.strip_suffix('\r').unwrap_or(value);
            let opened = open(&store)?;
            super::secrets::write(
                opened.as_ref(),
                &keys,
                &tenant,
                &name,
                &key,
                value,
                &actor(),
            )
            .map_err(failure)?;
            eprintln!("weft: secret {name}.{key} of tenant {tenant} written");
            Ok(0)
        }
        SecretsCommand::List { tenant, store } => {
            let opened = crate::store::open_for(&store)?;
            let all = opened
                .secrets(Some(&tenant))
                .map_err(|e| Failure::environment(e.to_string()))?;
            match store.output.plain() {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::Value::Array(all.iter().map(super::secrets::listed).collect())
                ),
                _ => {
                    for secret in &all {
                        println!(
                            "{}.{}  {}",
                            secret.name,
                            secret.key,
                            when(secret.updated_at)
                        );
                    }
                }
            }
            Ok(0)
        }
        SecretsCommand::Delete {
            name,
            tenant,
            store,
        } => {
            let opened = crate::store::open_for(&store)?;
            super::secrets::delete(opened.as_ref(), &tenant, &name, &actor()).map_err(failure)?;
            println!("secret {name} of tenant {tenant} deleted");
            Ok(0)
        }
        SecretsCommand::Rotate {
            keys: key_args,
            store,
        } => {
            let keys = keys(&key_args)?;
            let opened = crate::store::open_for(&store)?;
            let rotated =
                super::secrets::rotate(opened.as_ref(), &keys, &actor()).map_err(failure)?;
            println!("{rotated} secret value(s) sealed again under the current key");
            Ok(0)
        }
    }
}

/// `weft plugin push FILE --tenant T`: the operator uploads a tenant's plugin.
pub fn upload_plugin(
    file: &std::path::Path,
    tenant: &str,
    name: Option<&str>,
    plugins: &crate::cli::PluginArgs,
    store: &StoreArgs,
) -> Result<u8, Failure> {
    let name = match name {
        Some(name) => name.to_string(),
        None => file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let size = std::fs::metadata(file)
        .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", file.display())))?
        .len();
    if size > super::plugins::MAX_PLUGIN_BYTES as u64 {
        return Err(Failure::invalid(format!(
            "{}: {size} bytes, more than a plugin's {} MiB",
            file.display(),
            super::plugins::MAX_PLUGIN_BYTES >> 20
        )));
    }
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", file.display())))?;
    let registry = crate::registry(plugins, crate::one_run_pool(None))?;
    let opened = open(store)?;
    let record =
        super::plugins::upload(opened.as_ref(), &registry, tenant, &name, &bytes, &actor())
            .map_err(failure)?;
    match store.output.plain() {
        OutputFormat::Json => println!("{}", super::plugins::listed(&record)),
        _ => println!(
            "plugin {} ({}, {} bytes) uploaded to tenant {tenant}: {}",
            record.name, record.kind, record.size, record.digest
        ),
    }
    Ok(0)
}
