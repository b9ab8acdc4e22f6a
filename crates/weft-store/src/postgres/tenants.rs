//! [`TenantStore`] on PostgreSQL.

use tokio_postgres::Row;

use super::{PgStore, Shared, pg_err, pool_err};
use crate::error::StoreError;
use crate::tenants::{
    AuditRecord, MemberRecord, NewAudit, Role, SecretRecord, TenantPluginRecord, TenantRecord,
    TenantStore, TokenRecord,
};
use crate::types::{Result, Timestamp};

const TOKEN_COLUMNS: &str =
    "SELECT id, tenant, identity, hash, created_at, expires_at, revoked_at FROM tokens";

fn token_row(r: &Row) -> TokenRecord {
    TokenRecord {
        id: r.get(0),
        tenant: r.get(1),
        identity: r.get(2),
        hash: r.get(3),
        created_at: Timestamp(r.get(4)),
        expires_at: r.get::<_, Option<i64>>(5).map(Timestamp),
        revoked_at: r.get::<_, Option<i64>>(6).map(Timestamp),
    }
}

fn bad(detail: String) -> StoreError {
    StoreError::BadRow {
        table: "members",
        detail,
    }
}

fn missing_tenant(tenant: &str) -> StoreError {
    StoreError::NotFound {
        what: format!("tenant `{tenant}`"),
    }
}

async fn create_tenant(s: &Shared, tenant: TenantRecord) -> Result<()> {
    let client = s.pool.get().await.map_err(pool_err)?;
    let n = client
        .execute(
            "INSERT INTO tenants (name, created_at, settings_json) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
            &[&tenant.name, &tenant.created_at.0, &tenant.settings_json],
        )
        .await
        .map_err(pg_err)?;
    if n == 0 {
        return Err(StoreError::AlreadyExists {
            what: format!("tenant `{}`", tenant.name),
        });
    }
    Ok(())
}

async fn tenants(s: &Shared) -> Result<Vec<TenantRecord>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .query(
            "SELECT name, created_at, settings_json FROM tenants ORDER BY name",
            &[],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| TenantRecord {
            name: r.get(0),
            created_at: Timestamp(r.get(1)),
            settings_json: r.get(2),
        })
        .collect())
}

async fn set_settings(s: &Shared, tenant: String, settings: String) -> Result<()> {
    let client = s.pool.get().await.map_err(pool_err)?;
    let n = client
        .execute(
            "UPDATE tenants SET settings_json = $2 WHERE name = $1",
            &[&tenant, &settings],
        )
        .await
        .map_err(pg_err)?;
    if n == 0 {
        return Err(missing_tenant(&tenant));
    }
    Ok(())
}

async fn put_member(s: &Shared, member: MemberRecord) -> Result<()> {
    let client = s.pool.get().await.map_err(pool_err)?;
    let groups = serde_json::to_string(&member.groups).unwrap_or_else(|_| "[]".into());
    // Only for an existing tenant: the insert selects it.
    let n = client
        .execute(
            "INSERT INTO members (tenant, identity, role, groups_json)
             SELECT name, $2, $3, $4 FROM tenants WHERE name = $1
             ON CONFLICT (tenant, identity) DO UPDATE SET role = $3, groups_json = $4",
            &[
                &member.tenant,
                &member.identity,
                &member.role.as_str(),
                &groups,
            ],
        )
        .await
        .map_err(pg_err)?;
    if n == 0 {
        return Err(missing_tenant(&member.tenant));
    }
    Ok(())
}

async fn member(s: &Shared, tenant: String, identity: String) -> Result<Option<MemberRecord>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    let row = client
        .query_opt(
            "SELECT role, groups_json FROM members WHERE tenant = $1 AND identity = $2",
            &[&tenant, &identity],
        )
        .await
        .map_err(pg_err)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let role: Role = row.get::<_, String>(0).parse().map_err(bad)?;
    let groups: Vec<String> =
        serde_json::from_str(&row.get::<_, String>(1)).map_err(|e| bad(e.to_string()))?;
    Ok(Some(MemberRecord {
        tenant,
        identity,
        role,
        groups,
    }))
}

async fn add_token(s: &Shared, token: TokenRecord) -> Result<()> {
    let client = s.pool.get().await.map_err(pool_err)?;
    client
        .execute(
            "INSERT INTO tokens (id, tenant, identity, hash, created_at, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &token.id,
                &token.tenant,
                &token.identity,
                &token.hash,
                &token.created_at.0,
                &token.expires_at.map(|t| t.0),
                &token.revoked_at.map(|t| t.0),
            ],
        )
        .await
        .map_err(pg_err)?;
    Ok(())
}

async fn token(s: &Shared, id: String) -> Result<Option<TokenRecord>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .query_opt(&format!("{TOKEN_COLUMNS} WHERE id = $1"), &[&id])
        .await
        .map_err(pg_err)?
        .as_ref()
        .map(token_row))
}

async fn tokens(s: &Shared, tenant: Option<String>) -> Result<Vec<TokenRecord>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .query(
            &format!(
                "{TOKEN_COLUMNS} WHERE $1::TEXT IS NULL OR tenant = $1 ORDER BY created_at, id"
            ),
            &[&tenant],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(token_row)
        .collect())
}

async fn revoke_token(s: &Shared, tenant: Option<String>, id: String, at: i64) -> Result<bool> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .execute(
            "UPDATE tokens SET revoked_at = $3
             WHERE id = $2 AND ($1::TEXT IS NULL OR tenant = $1) AND revoked_at IS NULL",
            &[&tenant, &id, &at],
        )
        .await
        .map_err(pg_err)?
        > 0)
}

async fn has_tokens(s: &Shared) -> Result<bool> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .query_one("SELECT EXISTS (SELECT 1 FROM tokens)", &[])
        .await
        .map_err(pg_err)?
        .get(0))
}

async fn put_secret(s: &Shared, secret: SecretRecord) -> Result<()> {
    let client = s.pool.get().await.map_err(pool_err)?;
    // Only for an existing tenant: the insert selects it.
    let n = client
        .execute(
            "INSERT INTO tenant_secrets
                 (tenant, name, key, key_id, nonce, ciphertext, updated_at)
             SELECT name, $2, $3, $4, $5, $6, $7 FROM tenants WHERE name = $1
             ON CONFLICT (tenant, name, key) DO UPDATE SET
                 key_id = $4, nonce = $5, ciphertext = $6, updated_at = $7",
            &[
                &secret.tenant,
                &secret.name,
                &secret.key,
                &secret.key_id,
                &secret.nonce,
                &secret.ciphertext,
                &secret.updated_at.0,
            ],
        )
        .await
        .map_err(pg_err)?;
    if n == 0 {
        return Err(missing_tenant(&secret.tenant));
    }
    Ok(())
}

async fn secrets(s: &Shared, tenant: Option<String>) -> Result<Vec<SecretRecord>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .query(
            "SELECT tenant, name, key, key_id, nonce, ciphertext, updated_at
             FROM tenant_secrets WHERE $1::TEXT IS NULL OR tenant = $1
             ORDER BY tenant, name, key",
            &[&tenant],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| SecretRecord {
            tenant: r.get(0),
            name: r.get(1),
            key: r.get(2),
            key_id: r.get(3),
            nonce: r.get(4),
            ciphertext: r.get(5),
            updated_at: Timestamp(r.get(6)),
        })
        .collect())
}

async fn delete_secret(s: &Shared, tenant: String, name: String) -> Result<usize> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .execute(
            "DELETE FROM tenant_secrets WHERE tenant = $1 AND name = $2",
            &[&tenant, &name],
        )
        .await
        .map_err(pg_err)? as usize)
}

async fn put_plugin(s: &Shared, plugin: TenantPluginRecord, bytes: Vec<u8>) -> Result<()> {
    let mut client = s.pool.get().await.map_err(pool_err)?;
    let tx = client.transaction().await.map_err(pg_err)?;
    let exists = tx
        .query_opt("SELECT 1 FROM tenants WHERE name = $1", &[&plugin.tenant])
        .await
        .map_err(pg_err)?;
    if exists.is_none() {
        return Err(missing_tenant(&plugin.tenant));
    }
    tx.execute(
        "INSERT INTO plugin_blobs (digest, bytes, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (digest) DO NOTHING",
        &[&plugin.digest, &bytes, &plugin.uploaded_at.0],
    )
    .await
    .map_err(pg_err)?;
    tx.execute(
        "INSERT INTO tenant_plugins (tenant, name, digest, kind, size, uploaded_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant, name) DO UPDATE SET
             digest = $3, kind = $4, size = $5, uploaded_at = $6",
        &[
            &plugin.tenant,
            &plugin.name,
            &plugin.digest,
            &plugin.kind,
            &(plugin.size as i64),
            &plugin.uploaded_at.0,
        ],
    )
    .await
    .map_err(pg_err)?;
    tx.commit().await.map_err(pg_err)
}

async fn tenant_plugins(s: &Shared, tenant: Option<String>) -> Result<Vec<TenantPluginRecord>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .query(
            "SELECT tenant, name, digest, kind, size, uploaded_at FROM tenant_plugins
             WHERE $1::TEXT IS NULL OR tenant = $1 ORDER BY tenant, name",
            &[&tenant],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| TenantPluginRecord {
            tenant: r.get(0),
            name: r.get(1),
            digest: r.get(2),
            kind: r.get(3),
            size: r.get::<_, i64>(4).max(0) as u64,
            uploaded_at: Timestamp(r.get(5)),
        })
        .collect())
}

async fn plugin_bytes(s: &Shared, digest: String) -> Result<Option<Vec<u8>>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .query_opt(
            "SELECT bytes FROM plugin_blobs WHERE digest = $1",
            &[&digest],
        )
        .await
        .map_err(pg_err)?
        .map(|r| r.get::<_, Vec<u8>>(0)))
}

async fn delete_plugin(s: &Shared, tenant: String, name: String) -> Result<bool> {
    let mut client = s.pool.get().await.map_err(pool_err)?;
    let tx = client.transaction().await.map_err(pg_err)?;
    let n = tx
        .execute(
            "DELETE FROM tenant_plugins WHERE tenant = $1 AND name = $2",
            &[&tenant, &name],
        )
        .await
        .map_err(pg_err)?;
    tx.execute(
        "DELETE FROM plugin_blobs WHERE digest NOT IN (SELECT digest FROM tenant_plugins)",
        &[],
    )
    .await
    .map_err(pg_err)?;
    tx.commit().await.map_err(pg_err)?;
    Ok(n > 0)
}

async fn add_cpu(s: &Shared, tenant: String, minute: i64, cpu_ms: i64) -> Result<()> {
    let client = s.pool.get().await.map_err(pool_err)?;
    client
        .execute(
            "INSERT INTO tenant_cpu (tenant, minute, cpu_ms) VALUES ($1, $2, $3)
             ON CONFLICT (tenant, minute) DO UPDATE SET cpu_ms = tenant_cpu.cpu_ms + $3",
            &[&tenant, &minute, &cpu_ms],
        )
        .await
        .map_err(pg_err)?;
    // Nothing older than a day is ever asked for.
    client
        .execute(
            "DELETE FROM tenant_cpu WHERE tenant = $1 AND minute < $2",
            &[&tenant, &(minute - 24 * 60)],
        )
        .await
        .map_err(pg_err)?;
    Ok(())
}

async fn cpu_since(s: &Shared, tenant: String, since: i64) -> Result<u64> {
    let client = s.pool.get().await.map_err(pool_err)?;
    let total: i64 = client
        .query_one(
            "SELECT COALESCE(SUM(cpu_ms), 0)::BIGINT FROM tenant_cpu WHERE tenant = $1 AND minute >= $2",
            &[&tenant, &since],
        )
        .await
        .map_err(pg_err)?
        .get(0);
    Ok(total.max(0) as u64)
}

async fn stored_bytes(s: &Shared, tenant: String) -> Result<u64> {
    let prefix = crate::tenants::stored_prefix(&tenant);
    let client = s.pool.get().await.map_err(pool_err)?;
    let total: i64 = client
        .query_one(
            "SELECT (
               COALESCE((SELECT SUM(size) FROM tenant_plugins WHERE tenant = $1), 0)
             + COALESCE((SELECT SUM(l.bytes) FROM log_usage l JOIN runs r ON r.id = l.run
                 WHERE ($2 = '' AND strpos(r.name, '_') = 0)
                    OR ($2 <> '' AND left(r.name, length($2)) = $2)), 0)
             + COALESCE((SELECT SUM(sn.size) FROM snapshots sn JOIN runs r ON r.id = sn.run
                 WHERE ($2 = '' AND strpos(r.name, '_') = 0)
                    OR ($2 <> '' AND left(r.name, length($2)) = $2)), 0)
             )::BIGINT",
            &[&tenant, &prefix],
        )
        .await
        .map_err(pg_err)?
        .get(0);
    Ok(total.max(0) as u64)
}

async fn append_audit(s: &Shared, entry: NewAudit) -> Result<u64> {
    let client = s.pool.get().await.map_err(pool_err)?;
    let seq: i64 = client
        .query_one(
            "INSERT INTO audit (at, tenant, actor, action, target, detail_json)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
            &[
                &entry.at.0,
                &entry.tenant,
                &entry.actor,
                &entry.action,
                &entry.target,
                &entry.detail_json,
            ],
        )
        .await
        .map_err(pg_err)?
        .get(0);
    Ok(seq.max(0) as u64)
}

async fn audit(
    s: &Shared,
    tenant: Option<String>,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditRecord>> {
    let client = s.pool.get().await.map_err(pool_err)?;
    Ok(client
        .query(
            "SELECT seq, at, tenant, actor, action, target, detail_json FROM audit
             WHERE seq > $2 AND ($1::TEXT IS NULL OR tenant = $1) ORDER BY seq LIMIT $3",
            &[&tenant, &after, &limit],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| AuditRecord {
            seq: r.get::<_, i64>(0).max(0) as u64,
            entry: NewAudit {
                at: Timestamp(r.get(1)),
                tenant: r.get(2),
                actor: r.get(3),
                action: r.get(4),
                target: r.get(5),
                detail_json: r.get(6),
            },
        })
        .collect())
}

impl TenantStore for PgStore {
    fn create_tenant(&self, tenant: &TenantRecord) -> Result<()> {
        let tenant = tenant.clone();
        self.block(|s| async move { create_tenant(&s, tenant).await })
    }

    fn tenants(&self) -> Result<Vec<TenantRecord>> {
        self.block(|s| async move { tenants(&s).await })
    }

    fn set_tenant_settings(&self, tenant: &str, settings_json: &str) -> Result<()> {
        let (tenant, settings) = (tenant.to_string(), settings_json.to_string());
        self.block(|s| async move { set_settings(&s, tenant, settings).await })
    }

    fn put_member(&self, member: &MemberRecord) -> Result<()> {
        let member = member.clone();
        self.block(|s| async move { put_member(&s, member).await })
    }

    fn member(&self, tenant: &str, identity: &str) -> Result<Option<MemberRecord>> {
        let (tenant, identity) = (tenant.to_string(), identity.to_string());
        self.block(|s| async move { member(&s, tenant, identity).await })
    }

    fn add_token(&self, token: &TokenRecord) -> Result<()> {
        let token = token.clone();
        self.block(|s| async move { add_token(&s, token).await })
    }

    fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        let id = id.to_string();
        self.block(|s| async move { token(&s, id).await })
    }

    fn tokens(&self, tenant: Option<&str>) -> Result<Vec<TokenRecord>> {
        let tenant = tenant.map(str::to_string);
        self.block(|s| async move { tokens(&s, tenant).await })
    }

    fn revoke_token(&self, tenant: Option<&str>, id: &str, at: Timestamp) -> Result<bool> {
        let (tenant, id) = (tenant.map(str::to_string), id.to_string());
        self.block(move |s| async move { revoke_token(&s, tenant, id, at.0).await })
    }

    fn has_tokens(&self) -> Result<bool> {
        self.block(|s| async move { has_tokens(&s).await })
    }

    fn put_secret(&self, secret: &SecretRecord) -> Result<()> {
        let secret = secret.clone();
        self.block(|s| async move { put_secret(&s, secret).await })
    }

    fn secrets(&self, tenant: Option<&str>) -> Result<Vec<SecretRecord>> {
        let tenant = tenant.map(str::to_string);
        self.block(|s| async move { secrets(&s, tenant).await })
    }

    fn delete_secret(&self, tenant: &str, name: &str) -> Result<usize> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.block(|s| async move { delete_secret(&s, tenant, name).await })
    }

    fn put_plugin(&self, plugin: &TenantPluginRecord, bytes: &[u8]) -> Result<()> {
        let (plugin, bytes) = (plugin.clone(), bytes.to_vec());
        self.block(|s| async move { put_plugin(&s, plugin, bytes).await })
    }

    fn tenant_plugins(&self, tenant: Option<&str>) -> Result<Vec<TenantPluginRecord>> {
        let tenant = tenant.map(str::to_string);
        self.block(|s| async move { tenant_plugins(&s, tenant).await })
    }

    fn plugin_bytes(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let digest = digest.to_string();
        self.block(|s| async move { plugin_bytes(&s, digest).await })
    }

    fn delete_plugin(&self, tenant: &str, name: &str) -> Result<bool> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.block(|s| async move { delete_plugin(&s, tenant, name).await })
    }

    fn add_cpu(&self, tenant: &str, minute: i64, cpu_ms: u64) -> Result<()> {
        let tenant = tenant.to_string();
        let cpu_ms = i64::try_from(cpu_ms).unwrap_or(i64::MAX);
        self.block(move |s| async move { add_cpu(&s, tenant, minute, cpu_ms).await })
    }

    fn cpu_since(&self, tenant: &str, since: i64) -> Result<u64> {
        let tenant = tenant.to_string();
        self.block(move |s| async move { cpu_since(&s, tenant, since).await })
    }

    fn stored_bytes(&self, tenant: &str) -> Result<u64> {
        let tenant = tenant.to_string();
        self.block(|s| async move { stored_bytes(&s, tenant).await })
    }

    fn append_audit(&self, entry: &NewAudit) -> Result<u64> {
        let entry = entry.clone();
        self.block(|s| async move { append_audit(&s, entry).await })
    }

    fn audit(&self, tenant: Option<&str>, after: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        let tenant = tenant.map(str::to_string);
        let (after, limit) = (after.min(i64::MAX as u64) as i64, limit.min(100_000) as i64);
        self.block(move |s| async move { audit(&s, tenant, after, limit).await })
    }
}
