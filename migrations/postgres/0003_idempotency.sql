-- Idempotency keys: one row per (scope, key) for 24 hours. The stored response body is
-- encrypted (AES-256-GCM under a key derived from the master key named in master_key_id):
-- it may hold a secret shown once, such as a new API key. Platform code only (SystemTx).
CREATE TABLE idempotency_keys (
    scope          text NOT NULL,
    key            text NOT NULL,
    fingerprint    bytea NOT NULL,
    state          text NOT NULL CHECK (state IN ('in_flight', 'done')),
    locked_until   bigint NOT NULL,
    status         integer,
    content_type   text,
    body           bytea,
    master_key_id  text,
    created_at     bigint NOT NULL,
    expires_at     bigint NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON idempotency_keys USING (bulwark_system()) WITH CHECK (bulwark_system());
