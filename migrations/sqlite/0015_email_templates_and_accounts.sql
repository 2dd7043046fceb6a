-- Templates: a tenant's reusable messages; subject and bodies sealed, the name in the clear.
CREATE TABLE email_templates (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    name         TEXT NOT NULL,
    key_version  INTEGER NOT NULL,
    content      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
) STRICT;

-- A tenant's own recipient limits, set by the platform super-admin (NULL: the defaults).
ALTER TABLE tenants ADD COLUMN email_hourly_limit INTEGER;
ALTER TABLE tenants ADD COLUMN email_daily_limit INTEGER;

-- DKIM rotation: the next key, published beside the current one until it verifies.
ALTER TABLE email_domains ADD COLUMN next_selector TEXT;
ALTER TABLE email_domains ADD COLUMN next_key_version INTEGER;
ALTER TABLE email_domains ADD COLUMN next_dkim_private BLOB;
ALTER TABLE email_domains ADD COLUMN next_dkim_public TEXT;

-- Signed webhooks already processed: each delivery id once.
CREATE TABLE webhook_receipts (
    source       TEXT NOT NULL,
    webhook_id   TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (source, webhook_id)
) STRICT;

-- Single-use account tokens mailed to a user (email verification, password reset), hashed.
CREATE TABLE account_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    user_id     BLOB NOT NULL REFERENCES users (id),
    tenant_id   BLOB REFERENCES tenants (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);

-- Which tenant a message belongs to, for events that name only the message.
CREATE TABLE email_message_directory (
    message_id  BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL,
    FOREIGN KEY (tenant_id, message_id) REFERENCES email_messages (tenant_id, id) ON DELETE CASCADE
) STRICT;
-- The messages sent before this migration, listed too.
INSERT INTO email_message_directory (message_id, tenant_id) SELECT id, tenant_id FROM email_messages;

-- Content retention: bodies purged after BULWARK_RETENTION_EMAIL_CONTENT, metadata kept.
ALTER TABLE email_messages ADD COLUMN content_purged_at INTEGER;

-- Whom an event concerns (a bounce, a complaint, an unsubscribe): the recipient's position in
-- the message's sealed to, cc and bcc, so no address is kept in the clear.
ALTER TABLE email_events ADD COLUMN recipient_index INTEGER;
