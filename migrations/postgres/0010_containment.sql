-- Containment: client networks blocked at the edge by the platform super-admin.
CREATE TABLE blocked_ips (
    id          uuid PRIMARY KEY,
    cidr        text NOT NULL,
    reason      text NOT NULL,
    expires_at  bigint,
    created_by  uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at  bigint NOT NULL
);
CREATE INDEX blocked_ips_expiry ON blocked_ips (expires_at);
-- Belongs to no tenant: platform transactions only.
ALTER TABLE blocked_ips ENABLE ROW LEVEL SECURITY;
ALTER TABLE blocked_ips FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON blocked_ips USING (bulwark_system()) WITH CHECK (bulwark_system());
