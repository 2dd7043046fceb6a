-- Sending domains: the DKIM private key sealed under the tenant's key (never returned).
CREATE TABLE email_domains (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    domain        TEXT NOT NULL,
    selector      TEXT NOT NULL,
    key_version   INTEGER NOT NULL,
    dkim_private  BLOB NOT NULL,
    dkim_public   TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'verified')),
    created_at    INTEGER NOT NULL,
    verified_at   INTEGER,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, domain)
) STRICT;
