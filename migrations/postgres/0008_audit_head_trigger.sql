-- An appended audit event advances its chain's head in the same statement: one round trip
-- less per audited change. The head still lives beside the chain; signed checkpoints
-- (audit::checkpoint) are what a database owner cannot rewrite. Runs with the inserting
-- role's rights and row-level security, like the UPDATE it replaces. An event that does not
-- follow the head it names (a missing or hidden head, a skipped sequence number) fails the
-- insert instead of leaving the head behind.
CREATE FUNCTION bulwark_advance_audit_head() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE public.audit_heads SET seq = NEW.seq, hash = NEW.hash
     WHERE chain_id = NEW.chain_id AND seq = NEW.seq - 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit event % does not follow the head of chain %', NEW.seq, NEW.chain_id;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_events_advance_head AFTER INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION bulwark_advance_audit_head();
