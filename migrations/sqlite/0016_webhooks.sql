-- A tenant's outbound webhook subscriptions; URL and signing secret sealed together.
CREATE TABLE webhook_subscriptions (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    key_version  INTEGER NOT NULL,
    sealed       BLOB NOT NULL,
    events       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    failures     INTEGER NOT NULL DEFAULT 0,
    created_by   BLOB,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, id)
) STRICT;
