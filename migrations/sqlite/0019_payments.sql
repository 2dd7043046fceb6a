-- Payments recorded from Stripe's signed events; see the PostgreSQL migration.
CREATE TABLE payments (
    id                BLOB PRIMARY KEY NOT NULL,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id),
    company_id        BLOB NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('payment', 'refund', 'invoice')),
    amount_minor      INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    stripe_object_id  TEXT NOT NULL,
    stripe_event_id   TEXT NOT NULL,
    occurred_at       INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, stripe_event_id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX payments_company ON payments (tenant_id, company_id, id);

ALTER TABLE companies ADD COLUMN credit_limit_minor INTEGER;
ALTER TABLE companies ADD COLUMN credit_limit_currency TEXT;
