-- Platform tables: tenants and the tamper-evident audit log.
-- Times are integer milliseconds since the Unix epoch (UTC); ids are UUIDs (16-byte BLOBs).

CREATE TABLE tenants (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
    created_at  INTEGER NOT NULL
) STRICT;

-- One hash chain per tenant; platform events (no tenant) chain under the nil UUID.
CREATE TABLE audit_events (
    id           BLOB PRIMARY KEY NOT NULL,
    chain_id     BLOB NOT NULL,
    tenant_id    BLOB,
    seq          INTEGER NOT NULL,
    occurred_at  INTEGER NOT NULL,
    actor_type   TEXT NOT NULL,
    actor_id     TEXT,
    action       TEXT NOT NULL,
    target_type  TEXT,
    target_id    TEXT,
    outcome      TEXT NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    request_id   TEXT,
    details      TEXT NOT NULL,
    prev_hash    BLOB NOT NULL,
    hash         BLOB NOT NULL,
    UNIQUE (chain_id, seq)
) STRICT;

CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at);

-- The newest event of each chain: appends serialize on this row, and verification compares
-- against it, so deleting the newest events is detected too.
CREATE TABLE audit_heads (
    chain_id  BLOB PRIMARY KEY NOT NULL,
    tenant_id BLOB,
    seq       INTEGER NOT NULL,
    hash      BLOB NOT NULL
) STRICT;
