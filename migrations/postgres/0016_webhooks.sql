-- A tenant's outbound webhook subscriptions. The URL (receivers often put a secret in it) and
-- the signing secret are sealed together under the tenant's key; the events are not secret.
CREATE TABLE webhook_subscriptions (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    key_version  integer NOT NULL,
    sealed       bytea NOT NULL,
    events       text NOT NULL,
    status       text NOT NULL CHECK (status IN ('active', 'disabled')),
    failures     integer NOT NULL DEFAULT 0,
    created_by   uuid,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    UNIQUE (tenant_id, id)
);
ALTER TABLE webhook_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_subscriptions
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());
