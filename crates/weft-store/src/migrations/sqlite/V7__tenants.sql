-- Tenants (multi-tenant `weft serve`): who owns runs, who may do what, and what happened.
-- A tenant's runs and schedules are stored under qualified names (`<tenant>_<name>`; `_`
-- is in no run or tenant name), so one tenant's names never collide with, or reveal,
-- another's. The `default` tenant's names are unqualified, as before tenants.
CREATE TABLE tenants (
    name          TEXT PRIMARY KEY,
    created_at    INTEGER NOT NULL,
    settings_json TEXT NOT NULL DEFAULT '{}'
) STRICT;
INSERT INTO tenants (name, created_at, settings_json) VALUES ('default', 0, '{}');

-- An identity's role (and groups, for approvals) in one tenant.
CREATE TABLE members (
    tenant      TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    identity    TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'submitter', 'approver', 'admin')),
    groups_json TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (tenant, identity)
) STRICT;

-- API tokens: only a hash of the token is kept; `id` is the token's public part.
CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    identity   TEXT NOT NULL,
    hash       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    FOREIGN KEY (tenant, identity) REFERENCES members (tenant, identity) ON DELETE CASCADE
) STRICT;
CREATE INDEX tokens_by_tenant ON tokens (tenant, created_at);

-- A tenant's secrets, encrypted by the server (an AEAD under the operator's key, named by
-- `key_id`; the row's tenant, name and key are its associated data): never plaintext here.
CREATE TABLE tenant_secrets (
    tenant     TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    key        TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, name, key)
) STRICT;

-- Plugins tenants uploaded: each component once, by its SHA-256 (`plugin_blobs`), and
-- the names it has in each tenant that uploaded it (`tenant_plugins`).
CREATE TABLE plugin_blobs (
    digest     TEXT PRIMARY KEY,
    bytes      BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE tenant_plugins (
    tenant      TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    digest      TEXT NOT NULL REFERENCES plugin_blobs (digest),
    kind        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
) STRICT;

-- Guest CPU time tenants' tasks used, per minute (their `cpu-seconds-per-hour` quota
-- looks at the last 60).
CREATE TABLE tenant_cpu (
    tenant TEXT NOT NULL,
    minute INTEGER NOT NULL,
    cpu_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, minute)
) STRICT;

-- The audit log: append-only (the triggers refuse changes).
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    tenant      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail_json TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX audit_by_tenant ON audit (tenant, seq);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'weft: the audit log is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'weft: the audit log is append-only');
END;
