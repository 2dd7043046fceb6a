-- The suppression list: addresses of a tenant that get no mail. Looked up by a keyed blind
-- index of the normalised address; the address itself sealed under the tenant's key.
CREATE TABLE email_suppressions (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    email_index  bytea NOT NULL,
    key_version  integer NOT NULL,
    email_enc    bytea NOT NULL,
    reason       text NOT NULL CHECK (reason IN ('hard_bounce', 'complaint', 'unsubscribe', 'manual')),
    created_at   bigint NOT NULL,
    expires_at   bigint,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, email_index)
);
ALTER TABLE email_suppressions ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_suppressions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON email_suppressions
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());
