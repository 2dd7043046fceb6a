-- Hardening after the outside review:
-- - sessions remember a recent proof of the password apart from a second-factor step-up: it
--   unlocks enrolling a first factor only, never what needs a second factor;
-- - accounts remember when their email address was proven (a mailed link or invitation);
--   accounts created without proof stay unverified.
ALTER TABLE sessions ADD COLUMN password_proof_at INTEGER;
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;
