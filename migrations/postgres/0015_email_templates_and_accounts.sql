-- Templates: a tenant's reusable messages; subject and bodies sealed under the tenant's key,
-- the name (unique per tenant) in the clear.
CREATE TABLE email_templates (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    name         text NOT NULL,
    key_version  integer NOT NULL,
    content      bytea NOT NULL,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);
ALTER TABLE email_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_templates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON email_templates
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());

-- A tenant's own recipient limits, set by the platform super-admin (NULL: the defaults).
ALTER TABLE tenants ADD COLUMN email_hourly_limit bigint;
ALTER TABLE tenants ADD COLUMN email_daily_limit bigint;

-- DKIM rotation: the next key, published beside the current one until it verifies.
ALTER TABLE email_domains ADD COLUMN next_selector text;
ALTER TABLE email_domains ADD COLUMN next_key_version integer;
ALTER TABLE email_domains ADD COLUMN next_dkim_private bytea;
ALTER TABLE email_domains ADD COLUMN next_dkim_public text;

-- Signed webhooks already processed: each delivery id once (a replay is acknowledged and
-- ignored). Recorded in the transaction that acts on the delivery, a tenant's one included;
-- read by platform code only. Pruned after the signature tolerance has long passed.
CREATE TABLE webhook_receipts (
    source       text NOT NULL,
    webhook_id   text NOT NULL,
    received_at  bigint NOT NULL,
    PRIMARY KEY (source, webhook_id)
);
ALTER TABLE webhook_receipts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_receipts FORCE ROW LEVEL SECURITY;
CREATE POLICY receipts ON webhook_receipts USING (bulwark_system()) WITH CHECK (true);

-- Single-use account tokens mailed to a user (email verification, password reset), kept as
-- a SHA-256 of the token. Looked up before a tenant is known: platform transactions.
CREATE TABLE account_tokens (
    token_hash  bytea PRIMARY KEY,
    purpose     text NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    user_id     uuid NOT NULL REFERENCES users (id),
    tenant_id   uuid REFERENCES tenants (id),
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL,
    used_at     bigint
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
ALTER TABLE account_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON account_tokens USING (bulwark_system()) WITH CHECK (bulwark_system());

-- Which tenant a message belongs to, for events that name only the message (a relay's late
-- bounce): the messages themselves are invisible outside their tenant. A tenant adds its own
-- rows and reads none; platform code reads them.
CREATE TABLE email_message_directory (
    message_id  uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    FOREIGN KEY (tenant_id, message_id) REFERENCES email_messages (tenant_id, id) ON DELETE CASCADE
);
-- The messages sent before this migration, listed too (the owner reads past the forced
-- row-level security for this one statement).
ALTER TABLE email_messages NO FORCE ROW LEVEL SECURITY;
INSERT INTO email_message_directory (message_id, tenant_id) SELECT id, tenant_id FROM email_messages;
ALTER TABLE email_messages FORCE ROW LEVEL SECURITY;
ALTER TABLE email_message_directory ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_message_directory FORCE ROW LEVEL SECURITY;
CREATE POLICY directory ON email_message_directory
    USING (bulwark_system()) WITH CHECK (tenant_id = bulwark_tenant() OR bulwark_system());

-- Content retention: bodies purged after BULWARK_RETENTION_EMAIL_CONTENT, metadata kept.
ALTER TABLE email_messages ADD COLUMN content_purged_at bigint;

-- Whom an event concerns (a bounce, a complaint, an unsubscribe): the recipient's position in
-- the message's sealed to, cc and bcc, so no address is kept in the clear.
ALTER TABLE email_events ADD COLUMN recipient_index integer;
