-- Identity: users, sessions with rotating refresh tokens, API keys, invitations, and the
-- login-failure counters behind account and IP lockout.

CREATE TABLE users (
    id             BLOB PRIMARY KEY NOT NULL,
    tenant_id      BLOB REFERENCES tenants (id),
    email          TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT CHECK (role IN ('owner', 'admin', 'manager', 'agent', 'readonly')),
    is_superadmin  INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deactivated')),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    -- A tenant user has a tenant and a role; the platform super-admin has neither.
    CHECK ((tenant_id IS NOT NULL AND role IS NOT NULL AND is_superadmin = 0)
        OR (tenant_id IS NULL AND role IS NULL AND is_superadmin = 1))
) STRICT;
CREATE INDEX users_tenant ON users (tenant_id, id);

CREATE TABLE sessions (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB,
    user_id         BLOB NOT NULL REFERENCES users (id),
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    revoked_at      INTEGER,
    revoked_reason  TEXT,
    step_up_at      INTEGER
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    session_id  BLOB NOT NULL REFERENCES sessions (id),
    tenant_id   BLOB,
    issued_at   INTEGER NOT NULL,
    spent_at    INTEGER
) STRICT;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE api_keys (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    created_by    BLOB NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL UNIQUE,
    secret_hash   BLOB NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    last_used_at  INTEGER,
    revoked_at    INTEGER
) STRICT;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE invitations (
    id                BLOB PRIMARY KEY NOT NULL,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id),
    email             TEXT NOT NULL,
    role              TEXT NOT NULL,
    token_hash        BLOB NOT NULL UNIQUE,
    invited_by        BLOB NOT NULL REFERENCES users (id),
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    accepted_at       INTEGER,
    accepted_user_id  BLOB
) STRICT;
CREATE INDEX invitations_tenant ON invitations (tenant_id, id);

-- Keys: 'user:<uuid>' (account lockout) and 'ip:<address>' (per-IP throttle).
CREATE TABLE login_throttle (
    key                TEXT PRIMARY KEY NOT NULL,
    failures           INTEGER NOT NULL,
    window_started_at  INTEGER NOT NULL,
    locked_until       INTEGER NOT NULL,
    lock_count         INTEGER NOT NULL
) STRICT;
