-- Tenants (multi-tenant `weft serve`): who owns runs, who may do what, and what happened.
-- A tenant's runs and schedules are stored under qualified names (`<tenant>_<name>`; `_`
-- is in no run or tenant name), so one tenant's names never collide with, or reveal,
-- another's. The `default` tenant's names are unqualified, as before tenants.
CREATE TABLE tenants (
    name          TEXT PRIMARY KEY,
    created_at    BIGINT NOT NULL,
    settings_json TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO tenants (name, created_at, settings_json) VALUES ('default', 0, '{}');

-- An identity's role (and groups, for approvals) in one tenant.
CREATE TABLE members (
    tenant      TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    identity    TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'submitter', 'approver', 'admin')),
    groups_json TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (tenant, identity)
);

-- API tokens: only a hash of the token is kept; `id` is the token's public part.
CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    identity   TEXT NOT NULL,
    hash       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    FOREIGN KEY (tenant, identity) REFERENCES members (tenant, identity) ON DELETE CASCADE
);
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
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, name, key)
);

-- Plugins tenants uploaded: each component once, by its SHA-256 (`plugin_blobs`), and
-- the names it has in each tenant that uploaded it (`tenant_plugins`).
CREATE TABLE plugin_blobs (
    digest     TEXT PRIMARY KEY,
    bytes      BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE tenant_plugins (
    tenant      TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    digest      TEXT NOT NULL REFERENCES plugin_blobs (digest),
    kind        TEXT NOT NULL,
    size        BIGINT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- Guest CPU time tenants' tasks used, per minute (their `cpu-seconds-per-hour` quota
-- looks at the last 60).
CREATE TABLE tenant_cpu (
    tenant TEXT NOT NULL,
    minute BIGINT NOT NULL,
    cpu_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, minute)
);

-- The audit log: append-only (the trigger refuses changes).
CREATE TABLE audit (
    seq         BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    tenant      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_tenant ON audit (tenant, seq);
CREATE FUNCTION weft_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'weft: the audit log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION weft_audit_append_only();
