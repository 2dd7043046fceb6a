-- Multi-factor authentication: TOTP (seed sealed under a key derived from the master key),
-- single-use backup codes (stored as SHA-256), WebAuthn passkeys, the short-lived challenges
-- and MFA tickets of the login and step-up flows, and the tenant's MFA policy.

ALTER TABLE tenants ADD COLUMN mfa_policy text NOT NULL DEFAULT 'none'
    CHECK (mfa_policy IN ('none', 'admins', 'all'));

CREATE TABLE mfa_totp (
    user_id          uuid PRIMARY KEY REFERENCES users (id),
    tenant_id        uuid,
    secret_sealed    bytea NOT NULL,
    master_key_id    text NOT NULL,
    confirmed_at     bigint,
    last_used_step   bigint NOT NULL DEFAULT 0,
    created_at       bigint NOT NULL
);

CREATE TABLE mfa_backup_codes (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    tenant_id   uuid,
    code_hash   bytea NOT NULL,
    used_at     bigint,
    created_at  bigint NOT NULL
);
CREATE INDEX mfa_backup_codes_user ON mfa_backup_codes (user_id);

CREATE TABLE webauthn_credentials (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id),
    tenant_id      uuid,
    credential_id  bytea NOT NULL UNIQUE,
    passkey        text NOT NULL,
    name           text NOT NULL,
    created_at     bigint NOT NULL,
    last_used_at   bigint
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

CREATE TABLE auth_challenges (
    id          uuid PRIMARY KEY,
    purpose     text NOT NULL,
    user_id     uuid,
    tenant_id   uuid,
    token_hash  bytea UNIQUE,
    session_id  uuid,
    state       text,
    expires_at  bigint NOT NULL,
    used_at     bigint
);
CREATE INDEX auth_challenges_expiry ON auth_challenges (expires_at);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['mfa_totp', 'mfa_backup_codes', 'webauthn_credentials', 'auth_challenges'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        -- Only identity code (system transactions) reads second factors; a tenant-scoped
        -- transaction sees none, not even its own tenant's.
        EXECUTE format('CREATE POLICY system_only ON %I
            USING (bulwark_system()) WITH CHECK (bulwark_system())', t);
    END LOOP;
END $$;
