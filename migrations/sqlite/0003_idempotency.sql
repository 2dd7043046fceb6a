-- Idempotency keys: one row per (scope, key) for 24 hours. The stored response body is
-- encrypted (AES-256-GCM under a key derived from the master key named in master_key_id):
-- it may hold a secret shown once, such as a new API key.
CREATE TABLE idempotency_keys (
    scope          TEXT NOT NULL,
    key            TEXT NOT NULL,
    fingerprint    BLOB NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    locked_until   INTEGER NOT NULL,
    status         INTEGER,
    content_type   TEXT,
    body           BLOB,
    master_key_id  TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
