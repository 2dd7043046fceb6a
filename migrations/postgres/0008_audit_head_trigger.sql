-- An appended audit event advances its chain's head in the same statement: one round trip
-- less per audited change. The head still lives beside the chain; signed checkpoints
-- (audit::checkpoint) are what a database owner cannot rewrite. Runs with the inserting
-- role's rights and row-level security, like the UPDATE it replaces.
CREATE FUNCTION bulwark_advance_audit_head() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE audit_heads SET seq = NEW.seq, hash = NEW.hash WHERE chain_id = NEW.chain_id;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_events_advance_head AFTER INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION bulwark_advance_audit_head();
