-- Messages a tenant sends: everything personal sealed under the tenant's key in `payload`.
CREATE TABLE email_messages (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    message_id   TEXT NOT NULL,
    domain_id    BLOB,
    stream       TEXT NOT NULL CHECK (stream IN ('transactional', 'broadcast')),
    key_version  INTEGER NOT NULL,
    payload      BLOB NOT NULL,
    recipients   INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'deferred', 'failed', 'bounced', 'suppressed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, id)
) STRICT;
CREATE INDEX email_messages_list ON email_messages (tenant_id, created_at, id);

CREATE TABLE email_events (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL,
    message_id  BLOB NOT NULL,
    kind        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    detail      TEXT,
    FOREIGN KEY (tenant_id, message_id) REFERENCES email_messages (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX email_events_message ON email_events (tenant_id, message_id, at);

-- The delivery queue (ids and times only).
CREATE TABLE email_outbox (
    message_id   BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL,
    due_at       INTEGER NOT NULL,
    lease_until  INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (tenant_id, message_id) REFERENCES email_messages (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX email_outbox_due ON email_outbox (due_at);
