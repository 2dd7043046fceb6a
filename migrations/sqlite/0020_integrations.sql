-- Connected provider accounts; see the PostgreSQL migration.
CREATE TABLE integrations (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    user_id       BLOB NOT NULL REFERENCES users (id),
    provider      TEXT NOT NULL CHECK (provider IN ('google', 'zoom')),
    scope         TEXT NOT NULL CHECK (scope IN ('user', 'tenant')),
    status        TEXT NOT NULL CHECK (status IN ('connected', 'error')),
    scopes        TEXT NOT NULL,
    key_version   INTEGER NOT NULL,
    sealed        BLOB NOT NULL,
    expires_at    INTEGER,
    connected_at  INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, user_id, provider, scope)
) STRICT;

CREATE TABLE integration_directory (
    integration_id  BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL,
    provider        TEXT NOT NULL,
    external_id     TEXT,
    expires_at      INTEGER,
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX integration_directory_external ON integration_directory (provider, external_id);
CREATE INDEX integration_directory_expiry ON integration_directory (expires_at);

CREATE TABLE integration_notes (
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    integration_id  BLOB NOT NULL,
    activity_id     BLOB NOT NULL,
    line_hash       BLOB NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, activity_id, line_hash),
    FOREIGN KEY (tenant_id, activity_id) REFERENCES activities (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE TABLE oauth_states (
    nonce_hash  BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    user_id     BLOB NOT NULL,
    session_id  TEXT NOT NULL,
    provider    TEXT NOT NULL,
    scope       TEXT NOT NULL,
    verifier    BLOB NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE zoom_compliance (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL,
    body         TEXT NOT NULL,
    due_at       INTEGER NOT NULL,
    lease_until  INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX zoom_compliance_due ON zoom_compliance (due_at);
