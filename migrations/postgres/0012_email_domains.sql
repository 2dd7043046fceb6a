-- Sending domains: the DKIM private key sealed under the tenant's key (never returned), the
-- public half as published. Domain names are not personal data.
CREATE TABLE email_domains (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    domain        text NOT NULL,
    selector      text NOT NULL,
    key_version   integer NOT NULL,
    dkim_private  bytea NOT NULL,
    dkim_public   text NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'verified')),
    created_at    bigint NOT NULL,
    verified_at   bigint,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, domain)
);
ALTER TABLE email_domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_domains FORCE ROW LEVEL SECURITY;
-- A business table: the current tenant's transactions only.
CREATE POLICY tenant_isolation ON email_domains
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());
