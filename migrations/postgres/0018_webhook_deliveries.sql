-- Each event a subscription receives: one delivery, retried under the same id (the
-- `webhook-id` a receiver deduplicates on). The payload is thin (ids and stage names, never
-- personal data: a receiver fetches the record through the API), so it is not sealed.
CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    subscription_id  uuid NOT NULL,
    event            text NOT NULL,
    payload          text NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    response_status  integer,
    last_error       text,
    duration_ms      integer,
    next_attempt_at  bigint,
    created_at       bigint NOT NULL,
    updated_at       bigint NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, subscription_id)
        REFERENCES webhook_subscriptions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (tenant_id, subscription_id, id);

-- The delivery queue, like email_outbox: workers claim due rows with a lease.
CREATE TABLE webhook_outbox (
    delivery_id  uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    due_at       bigint NOT NULL,
    lease_until  bigint,
    attempts     integer NOT NULL DEFAULT 0,
    FOREIGN KEY (tenant_id, delivery_id)
        REFERENCES webhook_deliveries (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (due_at);

ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_deliveries
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());
ALTER TABLE webhook_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_outbox FORCE ROW LEVEL SECURITY;
-- A tenant adds its own rows and reads none; the platform's workers read and change them.
CREATE POLICY queue ON webhook_outbox
    USING (bulwark_system()) WITH CHECK (tenant_id = bulwark_tenant() OR bulwark_system());
