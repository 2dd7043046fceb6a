-- Kill switches: a feature with no row is on.
CREATE TABLE feature_switches (
    feature     TEXT PRIMARY KEY NOT NULL,
    enabled     INTEGER NOT NULL,
    changed_by  BLOB REFERENCES users(id) ON DELETE SET NULL,
    changed_at  INTEGER NOT NULL
) STRICT;

-- Break-glass: a super-admin's time-boxed access to one tenant's data.
CREATE TABLE access_grants (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason      TEXT NOT NULL,
    can_write   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    CHECK (expires_at > created_at)
) STRICT;
CREATE INDEX access_grants_holder ON access_grants (user_id, tenant_id, expires_at);
