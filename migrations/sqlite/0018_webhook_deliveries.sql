-- Each event a subscription receives; see the PostgreSQL migration.
CREATE TABLE webhook_deliveries (
    id               BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id),
    subscription_id  BLOB NOT NULL,
    event            TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    response_status  INTEGER,
    last_error       TEXT,
    duration_ms      INTEGER,
    next_attempt_at  INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, subscription_id)
        REFERENCES webhook_subscriptions (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (tenant_id, subscription_id, id);

CREATE TABLE webhook_outbox (
    delivery_id  BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL,
    due_at       INTEGER NOT NULL,
    lease_until  INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (tenant_id, delivery_id)
        REFERENCES webhook_deliveries (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX webhook_outbox_due ON webhook_outbox (due_at);
