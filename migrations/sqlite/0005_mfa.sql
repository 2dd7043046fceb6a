-- Multi-factor authentication: TOTP (seed sealed under a key derived from the master key),
-- single-use backup codes (stored as SHA-256), WebAuthn passkeys, the short-lived challenges
-- and MFA tickets of the login and step-up flows, and the tenant's MFA policy.

ALTER TABLE tenants ADD COLUMN mfa_policy TEXT NOT NULL DEFAULT 'none'
    CHECK (mfa_policy IN ('none', 'admins', 'all'));

CREATE TABLE mfa_totp (
    user_id          BLOB PRIMARY KEY NOT NULL REFERENCES users (id),
    tenant_id        BLOB,
    secret_sealed    BLOB NOT NULL,
    master_key_id    TEXT NOT NULL,
    confirmed_at     INTEGER,
    last_used_step   INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE mfa_backup_codes (
    id          BLOB PRIMARY KEY NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id),
    tenant_id   BLOB,
    code_hash   BLOB NOT NULL,
    used_at     INTEGER,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX mfa_backup_codes_user ON mfa_backup_codes (user_id);

CREATE TABLE webauthn_credentials (
    id             BLOB PRIMARY KEY NOT NULL,
    user_id        BLOB NOT NULL REFERENCES users (id),
    tenant_id      BLOB,
    credential_id  BLOB NOT NULL UNIQUE,
    passkey        TEXT NOT NULL,
    name           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER
) STRICT;
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- MFA tickets (token_hash set) and WebAuthn ceremonies (state set); single use, short-lived.
CREATE TABLE auth_challenges (
    id          BLOB PRIMARY KEY NOT NULL,
    purpose     TEXT NOT NULL,
    user_id     BLOB,
    tenant_id   BLOB,
    token_hash  BLOB UNIQUE,
    session_id  BLOB,
    state       TEXT,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;
CREATE INDEX auth_challenges_expiry ON auth_challenges (expires_at);
