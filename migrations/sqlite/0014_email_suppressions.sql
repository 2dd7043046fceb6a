-- The suppression list: addresses of a tenant that get no mail (blind index + sealed address).
CREATE TABLE email_suppressions (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    email_index  BLOB NOT NULL,
    key_version  INTEGER NOT NULL,
    email_enc    BLOB NOT NULL,
    reason       TEXT NOT NULL CHECK (reason IN ('hard_bounce', 'complaint', 'unsubscribe', 'manual')),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, email_index)
) STRICT;
