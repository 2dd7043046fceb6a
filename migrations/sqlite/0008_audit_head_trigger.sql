-- An appended audit event advances its chain's head in the same statement: one statement
-- (one hand-off to SQLite's worker thread) less per audited change. The head still lives
-- beside the chain; signed checkpoints (audit::checkpoint) are what a database owner cannot
-- rewrite.
CREATE TRIGGER audit_events_advance_head AFTER INSERT ON audit_events
BEGIN
    UPDATE audit_heads SET seq = NEW.seq, hash = NEW.hash WHERE chain_id = NEW.chain_id;
END;
