-- Identity: users, sessions with rotating refresh tokens, API keys, invitations, and the
-- login-failure counters behind account and IP lockout.
-- Row-level security: tenant rows are visible to their tenant's transactions and to
-- SystemTx (login and token lookups happen before a tenant is known).

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    tenant_id      uuid REFERENCES tenants (id),
    email          text NOT NULL UNIQUE,
    display_name   text NOT NULL,
    password_hash  text NOT NULL,
    role           text CHECK (role IN ('owner', 'admin', 'manager', 'agent', 'readonly')),
    is_superadmin  boolean NOT NULL DEFAULT false,
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deactivated')),
    created_at     bigint NOT NULL,
    updated_at     bigint NOT NULL,
    CHECK ((tenant_id IS NOT NULL AND role IS NOT NULL AND NOT is_superadmin)
        OR (tenant_id IS NULL AND role IS NULL AND is_superadmin))
);
CREATE INDEX users_tenant ON users (tenant_id, id);

CREATE TABLE sessions (
    id              uuid PRIMARY KEY,
    tenant_id       uuid,
    user_id         uuid NOT NULL REFERENCES users (id),
    created_at      bigint NOT NULL,
    last_used_at    bigint NOT NULL,
    expires_at      bigint NOT NULL,
    ip              text,
    user_agent      text,
    revoked_at      bigint,
    revoked_reason  text,
    step_up_at      bigint
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id),
    tenant_id   uuid,
    issued_at   bigint NOT NULL,
    spent_at    bigint
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    created_by    uuid NOT NULL REFERENCES users (id),
    name          text NOT NULL,
    prefix        text NOT NULL UNIQUE,
    secret_hash   bytea NOT NULL,
    scopes        text NOT NULL,
    created_at    bigint NOT NULL,
    expires_at    bigint,
    last_used_at  bigint,
    revoked_at    bigint
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE invitations (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    email             text NOT NULL,
    role              text NOT NULL,
    token_hash        bytea NOT NULL UNIQUE,
    invited_by        uuid NOT NULL REFERENCES users (id),
    created_at        bigint NOT NULL,
    expires_at        bigint NOT NULL,
    accepted_at       bigint,
    accepted_user_id  uuid
);
CREATE INDEX invitations_tenant ON invitations (tenant_id, id);

CREATE TABLE login_throttle (
    key                text PRIMARY KEY,
    failures           integer NOT NULL,
    window_started_at  bigint NOT NULL,
    locked_until       bigint NOT NULL,
    lock_count         integer NOT NULL
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'sessions', 'refresh_tokens', 'api_keys', 'invitations'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = bulwark_tenant() OR bulwark_system())
            WITH CHECK (tenant_id = bulwark_tenant() OR bulwark_system())', t);
    END LOOP;
END $$;

-- Counters belong to no tenant: platform transactions only.
ALTER TABLE login_throttle ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_throttle FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON login_throttle USING (bulwark_system()) WITH CHECK (bulwark_system());
