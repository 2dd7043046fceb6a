-- Recipients a tenant sent to, counted per minute and per hour: the quota check reads at
-- most 60 + 24 rows instead of summing every message of the day.
CREATE TABLE email_usage (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    span        text NOT NULL CHECK (span IN ('minute', 'hour')),
    start       bigint NOT NULL,
    recipients  bigint NOT NULL,
    PRIMARY KEY (tenant_id, span, start)
);
ALTER TABLE email_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON email_usage
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());
-- What was sent before this migration, counted too.
ALTER TABLE email_messages NO FORCE ROW LEVEL SECURITY;
INSERT INTO email_usage (tenant_id, span, start, recipients)
    SELECT tenant_id, 'minute', created_at - created_at % 60000, sum(recipients)
    FROM email_messages WHERE domain_id IS NOT NULL GROUP BY 1, 2, 3;
INSERT INTO email_usage (tenant_id, span, start, recipients)
    SELECT tenant_id, 'hour', created_at - created_at % 3600000, sum(recipients)
    FROM email_messages WHERE domain_id IS NOT NULL GROUP BY 1, 2, 3;
ALTER TABLE email_messages FORCE ROW LEVEL SECURITY;
