-- Kill switches: a feature with no row is on. Platform-wide, platform transactions only.
CREATE TABLE feature_switches (
    feature     text PRIMARY KEY,
    enabled     boolean NOT NULL,
    changed_by  uuid REFERENCES users(id) ON DELETE SET NULL,
    changed_at  bigint NOT NULL
);
ALTER TABLE feature_switches ENABLE ROW LEVEL SECURITY;
ALTER TABLE feature_switches FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON feature_switches
    USING (bulwark_system()) WITH CHECK (bulwark_system());

-- Break-glass: a super-admin's time-boxed access to one tenant's data. Read by the gate
-- in a platform transaction; the tenant sees each grant in its own audit chain.
CREATE TABLE access_grants (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason      text NOT NULL,
    can_write   boolean NOT NULL,
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX access_grants_holder ON access_grants (user_id, tenant_id, expires_at);
ALTER TABLE access_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE access_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON access_grants USING (bulwark_system()) WITH CHECK (bulwark_system());
