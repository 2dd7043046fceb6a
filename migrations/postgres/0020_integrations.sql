-- Connected provider accounts (Google, Zoom): one per user, provider and scope; `scope`
-- 'tenant' marks an account connected for the whole tenant (integrations:manage). Tokens, the
-- account's email and the provider's user id are sealed together under the tenant's key.
CREATE TABLE integrations (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    user_id       uuid NOT NULL REFERENCES users (id),
    provider      text NOT NULL CHECK (provider IN ('google', 'zoom')),
    scope         text NOT NULL CHECK (scope IN ('user', 'tenant')),
    status        text NOT NULL CHECK (status IN ('connected', 'error')),
    scopes        text NOT NULL,
    key_version   integer NOT NULL,
    sealed        bytea NOT NULL,
    expires_at    bigint,
    connected_at  bigint NOT NULL,
    updated_at    bigint NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, user_id, provider, scope)
);
ALTER TABLE integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE integrations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON integrations
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());

-- What platform code needs to find a connection without reading it: the background refresh
-- (by expiry) and Zoom's deauthorization (by the provider's user id, which Zoom sends).
CREATE TABLE integration_directory (
    integration_id  uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    provider        text NOT NULL,
    external_id     text,
    expires_at      bigint,
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX integration_directory_external ON integration_directory (provider, external_id);
CREATE INDEX integration_directory_expiry ON integration_directory (expires_at);
ALTER TABLE integration_directory ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_directory FORCE ROW LEVEL SECURITY;
-- A tenant keeps its own entries in step with its connections; platform code reads them all.
CREATE POLICY directory ON integration_directory
    USING (tenant_id = bulwark_tenant() OR bulwark_system())
    WITH CHECK (tenant_id = bulwark_tenant() OR bulwark_system());

-- What a connection wrote into the tenant's activities (a meeting's join link): the SHA-256
-- of each line, so Zoom's deauthorization can take out the data fetched through it.
CREATE TABLE integration_notes (
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    integration_id  uuid NOT NULL,
    activity_id     uuid NOT NULL,
    line_hash       bytea NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, activity_id, line_hash),
    FOREIGN KEY (tenant_id, activity_id) REFERENCES activities (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE integration_notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_notes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON integration_notes
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());

-- A connect in progress: the state's nonce (hashed), whose it is, and the PKCE verifier
-- (sealed). Single use: the callback deletes it; it is void after 10 minutes.
CREATE TABLE oauth_states (
    nonce_hash  bytea PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    user_id     uuid NOT NULL,
    session_id  text NOT NULL,
    provider    text NOT NULL,
    scope       text NOT NULL,
    verifier    bytea NOT NULL,
    expires_at  bigint NOT NULL
);
ALTER TABLE oauth_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_states FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON oauth_states
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());

-- Zoom's data-compliance confirmations, retried until Zoom accepts them (a queue like the
-- outboxes; the tenant is the one whose data was deleted, or the nil id when none was).
CREATE TABLE zoom_compliance (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    body         text NOT NULL,
    due_at       bigint NOT NULL,
    lease_until  bigint,
    attempts     integer NOT NULL DEFAULT 0
);
CREATE INDEX zoom_compliance_due ON zoom_compliance (due_at);
ALTER TABLE zoom_compliance ENABLE ROW LEVEL SECURITY;
ALTER TABLE zoom_compliance FORCE ROW LEVEL SECURITY;
CREATE POLICY queue ON zoom_compliance USING (bulwark_system()) WITH CHECK (bulwark_system());
