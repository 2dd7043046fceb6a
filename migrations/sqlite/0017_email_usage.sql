-- Recipients a tenant sent to, counted per minute and per hour (the quota check's counters).
CREATE TABLE email_usage (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    span        TEXT NOT NULL CHECK (span IN ('minute', 'hour')),
    start       INTEGER NOT NULL,
    recipients  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, span, start)
) STRICT;
INSERT INTO email_usage (tenant_id, span, start, recipients)
    SELECT tenant_id, 'minute', created_at - created_at % 60000, sum(recipients)
    FROM email_messages WHERE domain_id IS NOT NULL GROUP BY 1, 2, 3;
INSERT INTO email_usage (tenant_id, span, start, recipients)
    SELECT tenant_id, 'hour', created_at - created_at % 3600000, sum(recipients)
    FROM email_messages WHERE domain_id IS NOT NULL GROUP BY 1, 2, 3;
