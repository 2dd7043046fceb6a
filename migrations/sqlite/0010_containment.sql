-- Containment: client networks blocked at the edge by the platform super-admin.
CREATE TABLE blocked_ips (
    id          BLOB PRIMARY KEY NOT NULL,
    cidr        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    expires_at  INTEGER,
    created_by  BLOB REFERENCES users(id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX blocked_ips_expiry ON blocked_ips (expires_at);
