-- An appended audit event advances its chain's head in the same statement: one statement
-- (one hand-off to SQLite's worker thread) less per audited change. The head still lives
-- beside the chain; signed checkpoints (audit::checkpoint) are what a database owner cannot
-- rewrite. An event that does not follow its chain's head fails the insert instead of
-- leaving the head behind.
CREATE TRIGGER audit_events_follow_head BEFORE INSERT ON audit_events
WHEN NOT EXISTS (SELECT 1 FROM audit_heads WHERE chain_id = NEW.chain_id AND seq = NEW.seq - 1)
BEGIN
    SELECT RAISE(ABORT, 'audit event does not follow the head of its chain');
END;

CREATE TRIGGER audit_events_advance_head AFTER INSERT ON audit_events
BEGIN
    UPDATE audit_heads SET seq = NEW.seq, hash = NEW.hash WHERE chain_id = NEW.chain_id;
END;
