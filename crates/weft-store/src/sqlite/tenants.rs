//! [`TenantStore`] on SQLite.

use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, bad, lock};
use crate::error::StoreError;
use crate::tenants::{
    AuditRecord, MemberRecord, NewAudit, Role, SecretRecord, TenantPluginRecord, TenantRecord,
    TenantStore, TokenRecord,
};
use crate::types::{Result, Timestamp};

fn tenant_row(r: &Row<'_>) -> rusqlite::Result<TenantRecord> {
    Ok(TenantRecord {
        name: r.get(0)?,
        created_at: Timestamp(r.get(1)?),
        settings_json: r.get(2)?,
    })
}

fn token_row(r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.get(0)?,
        tenant: r.get(1)?,
        identity: r.get(2)?,
        hash: r.get(3)?,
        created_at: Timestamp(r.get(4)?),
        expires_at: r.get::<_, Option<i64>>(5)?.map(Timestamp),
        revoked_at: r.get::<_, Option<i64>>(6)?.map(Timestamp),
    })
}

const TOKEN_COLUMNS: &str =
    "SELECT id, tenant, identity, hash, created_at, expires_at, revoked_at FROM tokens";

fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.get::<_, i64>(0)?.max(0) as u64,
        entry: NewAudit {
            at: Timestamp(r.get(1)?),
            tenant: r.get(2)?,
            actor: r.get(3)?,
            action: r.get(4)?,
            target: r.get(5)?,
            detail_json: r.get(6)?,
        },
    })
}

fn groups_json(groups: &[String]) -> String {
    serde_json::to_string(groups).unwrap_or_else(|_| "[]".into())
}

fn decode_member(
    tenant: String,
    identity: String,
    role: String,
    groups: String,
) -> Result<MemberRecord> {
    let role: Role = role.parse().map_err(|e| bad("members", e))?;
    let groups: Vec<String> =
        serde_json::from_str(&groups).map_err(|e| bad("members", e.to_string()))?;
    Ok(MemberRecord {
        tenant,
        identity,
        role,
        groups,
    })
}

fn missing_tenant(tenant: &str) -> StoreError {
    StoreError::NotFound {
        what: format!("tenant `{tenant}`"),
    }
}

impl TenantStore for SqliteStore {
    fn create_tenant(&self, tenant: &TenantRecord) -> Result<()> {
        let conn = lock(&self.writer);
        let n = conn
            .execute(
                "INSERT INTO tenants (name, created_at, settings_json) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO NOTHING",
                params![tenant.name, tenant.created_at.0, tenant.settings_json],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StoreError::AlreadyExists {
                what: format!("tenant `{}`", tenant.name),
            });
        }
        Ok(())
    }

    fn tenants(&self) -> Result<Vec<TenantRecord>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT name, created_at, settings_json FROM tenants ORDER BY name")
                .and_then(|mut s| s.query_map([], tenant_row)?.collect())
                .map_err(|e| self.err(e))
        })
    }

    fn set_tenant_settings(&self, tenant: &str, settings_json: &str) -> Result<()> {
        let conn = lock(&self.writer);
        let n = conn
            .execute(
                "UPDATE tenants SET settings_json = ?2 WHERE name = ?1",
                params![tenant, settings_json],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(missing_tenant(tenant));
        }
        Ok(())
    }

    fn put_member(&self, member: &MemberRecord) -> Result<()> {
        let conn = lock(&self.writer);
        let exists = conn
            .query_row(
                "SELECT 1 FROM tenants WHERE name = ?1",
                [&member.tenant],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if exists.is_none() {
            return Err(missing_tenant(&member.tenant));
        }
        conn.execute(
            "INSERT INTO members (tenant, identity, role, groups_json) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant, identity) DO UPDATE SET role = ?3, groups_json = ?4",
            params![
                member.tenant,
                member.identity,
                member.role.as_str(),
                groups_json(&member.groups)
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn member(&self, tenant: &str, identity: &str) -> Result<Option<MemberRecord>> {
        let row = self.read(|conn| {
            conn.query_row(
                "SELECT role, groups_json FROM members WHERE tenant = ?1 AND identity = ?2",
                [tenant, identity],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
        })?;
        row.map(|(role, groups)| decode_member(tenant.into(), identity.into(), role, groups))
            .transpose()
    }

    fn add_token(&self, token: &TokenRecord) -> Result<()> {
        let conn = lock(&self.writer);
        conn.execute(
            "INSERT INTO tokens (id, tenant, identity, hash, created_at, expires_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                token.id,
                token.tenant,
                token.identity,
                token.hash,
                token.created_at.0,
                token.expires_at.map(|t| t.0),
                token.revoked_at.map(|t| t.0)
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        self.read(|conn| {
            conn.query_row(&format!("{TOKEN_COLUMNS} WHERE id = ?1"), [id], token_row)
                .optional()
                .map_err(|e| self.err(e))
        })
    }

    fn tokens(&self, tenant: Option<&str>) -> Result<Vec<TokenRecord>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "{TOKEN_COLUMNS} WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_at, id"
            ))
            .and_then(|mut s| s.query_map([tenant], token_row)?.collect())
            .map_err(|e| self.err(e))
        })
    }

    fn revoke_token(&self, tenant: Option<&str>, id: &str, at: Timestamp) -> Result<bool> {
        let conn = lock(&self.writer);
        conn.execute(
            "UPDATE tokens SET revoked_at = ?3
             WHERE id = ?2 AND (?1 IS NULL OR tenant = ?1) AND revoked_at IS NULL",
            params![tenant, id, at.0],
        )
        .map(|n| n > 0)
        .map_err(|e| self.err(e))
    }

    fn has_tokens(&self) -> Result<bool> {
        self.read(|conn| {
            conn.query_row("SELECT EXISTS (SELECT 1 FROM tokens)", [], |r| {
                r.get::<_, bool>(0)
            })
            .map_err(|e| self.err(e))
        })
    }

    fn put_secret(&self, secret: &SecretRecord) -> Result<()> {
        let conn = lock(&self.writer);
        conn.execute(
            "INSERT INTO tenant_secrets
                 (tenant, name, key, key_id, nonce, ciphertext, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (tenant, name, key) DO UPDATE SET
                 key_id = ?4, nonce = ?5, ciphertext = ?6, updated_at = ?7",
            params![
                secret.tenant,
                secret.name,
                secret.key,
                secret.key_id,
                secret.nonce,
                secret.ciphertext,
                secret.updated_at.0
            ],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                missing_tenant(&secret.tenant)
            }
            e => self.err(e),
        })?;
        Ok(())
    }

    fn secrets(&self, tenant: Option<&str>) -> Result<Vec<SecretRecord>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT tenant, name, key, key_id, nonce, ciphertext, updated_at
                 FROM tenant_secrets WHERE ?1 IS NULL OR tenant = ?1
                 ORDER BY tenant, name, key",
            )
            .and_then(|mut s| {
                s.query_map([tenant], |r| {
                    Ok(SecretRecord {
                        tenant: r.get(0)?,
                        name: r.get(1)?,
                        key: r.get(2)?,
                        key_id: r.get(3)?,
                        nonce: r.get(4)?,
                        ciphertext: r.get(5)?,
                        updated_at: Timestamp(r.get(6)?),
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
        })
    }

    fn delete_secret(&self, tenant: &str, name: &str) -> Result<usize> {
        let conn = lock(&self.writer);
        conn.execute(
            "DELETE FROM tenant_secrets WHERE tenant = ?1 AND name = ?2",
            [tenant, name],
        )
        .map_err(|e| self.err(e))
    }

    fn put_plugin(&self, plugin: &TenantPluginRecord, bytes: &[u8]) -> Result<()> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let exists = tx
            .query_row(
                "SELECT 1 FROM tenants WHERE name = ?1",
                [&plugin.tenant],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if exists.is_none() {
            return Err(missing_tenant(&plugin.tenant));
        }
        tx.execute(
            "INSERT INTO plugin_blobs (digest, bytes, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (digest) DO NOTHING",
            params![plugin.digest, bytes, plugin.uploaded_at.0],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO tenant_plugins (tenant, name, digest, kind, size, uploaded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant, name) DO UPDATE SET
                 digest = ?3, kind = ?4, size = ?5, uploaded_at = ?6",
            params![
                plugin.tenant,
                plugin.name,
                plugin.digest,
                plugin.kind,
                plugin.size as i64,
                plugin.uploaded_at.0
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn tenant_plugins(&self, tenant: Option<&str>) -> Result<Vec<TenantPluginRecord>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT tenant, name, digest, kind, size, uploaded_at FROM tenant_plugins
                 WHERE ?1 IS NULL OR tenant = ?1 ORDER BY tenant, name",
            )
            .and_then(|mut s| {
                s.query_map([tenant], |r| {
                    Ok(TenantPluginRecord {
                        tenant: r.get(0)?,
                        name: r.get(1)?,
                        digest: r.get(2)?,
                        kind: r.get(3)?,
                        size: r.get::<_, i64>(4)?.max(0) as u64,
                        uploaded_at: Timestamp(r.get(5)?),
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
        })
    }

    fn plugin_bytes(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        self.read(|conn| {
            conn.query_row(
                "SELECT bytes FROM plugin_blobs WHERE digest = ?1",
                [digest],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()
            .map_err(|e| self.err(e))
        })
    }

    fn delete_plugin(&self, tenant: &str, name: &str) -> Result<bool> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let n = tx
            .execute(
                "DELETE FROM tenant_plugins WHERE tenant = ?1 AND name = ?2",
                [tenant, name],
            )
            .map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM plugin_blobs WHERE digest NOT IN (SELECT digest FROM tenant_plugins)",
            [],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    fn add_cpu(&self, tenant: &str, minute: i64, cpu_ms: u64) -> Result<()> {
        let conn = lock(&self.writer);
        conn.execute(
            "INSERT INTO tenant_cpu (tenant, minute, cpu_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant, minute) DO UPDATE SET cpu_ms = cpu_ms + ?3",
            params![tenant, minute, i64::try_from(cpu_ms).unwrap_or(i64::MAX)],
        )
        .map_err(|e| self.err(e))?;
        // Nothing older than a day is ever asked for.
        conn.execute(
            "DELETE FROM tenant_cpu WHERE tenant = ?1 AND minute < ?2",
            params![tenant, minute - 24 * 60],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn cpu_since(&self, tenant: &str, since: i64) -> Result<u64> {
        self.read(|conn| {
            conn.query_row(
                "SELECT COALESCE(SUM(cpu_ms), 0) FROM tenant_cpu WHERE tenant = ?1 AND minute >= ?2",
                params![tenant, since],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
        })
    }

    fn stored_bytes(&self, tenant: &str) -> Result<u64> {
        let prefix = crate::tenants::stored_prefix(tenant);
        self.read(|conn| {
            conn.query_row(
                "SELECT
                   COALESCE((SELECT SUM(size) FROM tenant_plugins WHERE tenant = ?1), 0)
                 + COALESCE((SELECT SUM(l.bytes) FROM log_usage l JOIN runs r ON r.id = l.run
                     WHERE (?2 = '' AND instr(r.name, '_') = 0)
                        OR (?2 <> '' AND substr(r.name, 1, length(?2)) = ?2)), 0)
                 + COALESCE((SELECT SUM(s.size) FROM snapshots s JOIN runs r ON r.id = s.run
                     WHERE (?2 = '' AND instr(r.name, '_') = 0)
                        OR (?2 <> '' AND substr(r.name, 1, length(?2)) = ?2)), 0)",
                params![tenant, prefix],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
        })
    }

    fn append_audit(&self, entry: &NewAudit) -> Result<u64> {
        let conn = lock(&self.writer);
        conn.execute(
            "INSERT INTO audit (at, tenant, actor, action, target, detail_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                entry.at.0,
                entry.tenant,
                entry.actor,
                entry.action,
                entry.target,
                entry.detail_json
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid().max(0) as u64)
    }

    fn audit(&self, tenant: Option<&str>, after: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT seq, at, tenant, actor, action, target, detail_json FROM audit
                 WHERE seq > ?2 AND (?1 IS NULL OR tenant = ?1) ORDER BY seq LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map(params![tenant, after as i64, limit as i64], audit_row)?
                    .collect()
            })
            .map_err(|e| self.err(e))
        })
    }
}
