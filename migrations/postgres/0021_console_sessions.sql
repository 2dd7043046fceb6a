-- The browser console's cookie: SHA-256 of its secret, on the session it belongs to. A
-- session with a cookie hash is a console session and has no refresh token (see
-- identity::cookie); NULL for API sessions.
ALTER TABLE sessions ADD COLUMN cookie_hash bytea;
