-- Platform tables: tenants and the tamper-evident audit log.
-- Times are bigint milliseconds since the Unix epoch (UTC), as on SQLite, so one query text
-- serves both backends.

-- Row-level security reads the tenant of the current transaction from a setting that
-- TenantTx sets with set_config(..., true) (transaction-local). Unset means no tenant rows.
CREATE FUNCTION bulwark_tenant() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT NULLIF(current_setting('bulwark.tenant_id', true), '')::uuid
$$;

-- Platform work (login lookups by email or token hash, workers, verification) runs in a
-- SystemTx, which sets this flag; identity and platform tables admit it, business tables never.
CREATE FUNCTION bulwark_system() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('bulwark.system', true), '') = 'on'
$$;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
    created_at  bigint NOT NULL
);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = bulwark_tenant() OR bulwark_system())
    WITH CHECK (id = bulwark_tenant() OR bulwark_system());

CREATE TABLE audit_events (
    id           uuid PRIMARY KEY,
    chain_id     uuid NOT NULL,
    tenant_id    uuid,
    seq          bigint NOT NULL,
    occurred_at  bigint NOT NULL,
    actor_type   text NOT NULL,
    actor_id     text,
    action       text NOT NULL,
    target_type  text,
    target_id    text,
    outcome      text NOT NULL,
    ip           text,
    user_agent   text,
    request_id   text,
    details      text NOT NULL,
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL,
    UNIQUE (chain_id, seq)
);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at);
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events
    USING (tenant_id = bulwark_tenant() OR bulwark_system())
    WITH CHECK (tenant_id = bulwark_tenant() OR bulwark_system());

CREATE TABLE audit_heads (
    chain_id  uuid PRIMARY KEY,
    tenant_id uuid,
    seq       bigint NOT NULL,
    hash      bytea NOT NULL
);
ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_heads
    USING (tenant_id = bulwark_tenant() OR bulwark_system())
    WITH CHECK (tenant_id = bulwark_tenant() OR bulwark_system());
