-- Payments recorded from Stripe's signed events, against a tenant's company. Amounts in
-- minor units; never a card number (Stripe's objects carry none, and nothing else is kept).
CREATE TABLE payments (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    company_id        uuid NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('payment', 'refund', 'invoice')),
    amount_minor      bigint NOT NULL,
    currency          text NOT NULL,
    stripe_object_id  text NOT NULL,
    stripe_event_id   text NOT NULL,
    occurred_at       bigint NOT NULL,
    created_at        bigint NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, stripe_event_id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX payments_company ON payments (tenant_id, company_id, id);
ALTER TABLE payments ENABLE ROW LEVEL SECURITY;
ALTER TABLE payments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON payments
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());

-- A company's credit limit: changed only through its own audited, step-up route.
ALTER TABLE companies ADD COLUMN credit_limit_minor bigint;
ALTER TABLE companies ADD COLUMN credit_limit_currency text;
