-- Messages a tenant sends (and the platform's own notices to its users: no sending domain,
-- from BULWARK_EMAIL_FROM): everything personal (addresses, subject, bodies, headers) sealed
-- under the tenant's key in `payload`; status and counts in the clear.
CREATE TABLE email_messages (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    message_id   text NOT NULL,
    domain_id    uuid,
    stream       text NOT NULL CHECK (stream IN ('transactional', 'broadcast')),
    key_version  integer NOT NULL,
    payload      bytea NOT NULL,
    recipients   integer NOT NULL,
    status       text NOT NULL CHECK (status IN ('queued', 'sent', 'deferred', 'failed', 'bounced', 'suppressed')),
    attempts     integer NOT NULL DEFAULT 0,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX email_messages_list ON email_messages (tenant_id, created_at, id);

-- What happened to each message; `detail` is the relay's reply (no addresses).
CREATE TABLE email_events (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    message_id  uuid NOT NULL,
    kind        text NOT NULL,
    at          bigint NOT NULL,
    detail      text,
    FOREIGN KEY (tenant_id, message_id) REFERENCES email_messages (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX email_events_message ON email_events (tenant_id, message_id, at);

-- The delivery queue (ids and times only): a tenant's transaction adds a message in the
-- same commit as the message itself; the platform's workers claim due rows with a lease.
CREATE TABLE email_outbox (
    message_id   uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    due_at       bigint NOT NULL,
    lease_until  bigint,
    attempts     integer NOT NULL DEFAULT 0,
    FOREIGN KEY (tenant_id, message_id) REFERENCES email_messages (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX email_outbox_due ON email_outbox (due_at);

ALTER TABLE email_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON email_messages
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());
ALTER TABLE email_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON email_events
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());
ALTER TABLE email_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_outbox FORCE ROW LEVEL SECURITY;
-- A tenant adds its own rows and reads none; the platform's workers read and change them.
CREATE POLICY queue ON email_outbox
    USING (bulwark_system()) WITH CHECK (tenant_id = bulwark_tenant() OR bulwark_system());
