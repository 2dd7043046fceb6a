-- Documents: contents encrypted in the object store (file:// or s3://), metadata here. Each
-- document has its own data key, sealed under the tenant's key in key_enc: deleting the row
-- crypto-shreds the content at once. A trigger queues the object's removal for the worker,
-- whatever deleted the row (the route, a cascade from its contact, company or deal, a
-- privacy erasure, tenant deletion, retention), so no object outlives its row.
CREATE TABLE documents (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    contact_id    uuid,
    company_id    uuid,
    deal_id       uuid,
    key_version   integer NOT NULL,
    key_enc       bytea NOT NULL,
    nonce_prefix  bytea NOT NULL,
    title_enc     bytea,
    filename_enc  bytea NOT NULL,
    content_type  text NOT NULL,
    size          bigint NOT NULL,
    sha256        bytea NOT NULL,
    scan          text NOT NULL CHECK (scan IN ('clean', 'unscanned')),
    created_by    uuid,
    created_at    bigint NOT NULL,
    UNIQUE (tenant_id, id),
    CHECK ((contact_id IS NOT NULL)::int + (company_id IS NOT NULL)::int + (deal_id IS NOT NULL)::int = 1),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id)
);
CREATE INDEX documents_contact ON documents (tenant_id, contact_id, created_at, id);
CREATE INDEX documents_company ON documents (tenant_id, company_id, created_at, id);
CREATE INDEX documents_deal ON documents (tenant_id, deal_id, created_at, id);
CREATE INDEX documents_age ON documents (tenant_id, created_at);

-- Objects whose row is gone, for the worker to delete (ids only: no personal data).
CREATE TABLE document_deletions (
    document_id  uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    queued_at    bigint NOT NULL
);

CREATE FUNCTION bulwark_queue_document_deletion() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.document_deletions (document_id, tenant_id, queued_at)
    VALUES (OLD.id, OLD.tenant_id, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
    ON CONFLICT DO NOTHING;
    RETURN OLD;
END;
$$;
CREATE TRIGGER documents_queue_deletion AFTER DELETE ON documents
    FOR EACH ROW EXECUTE FUNCTION bulwark_queue_document_deletion();

ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
-- A business table: the current tenant's transactions only.
CREATE POLICY tenant_isolation ON documents
    USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant());
ALTER TABLE document_deletions ENABLE ROW LEVEL SECURITY;
ALTER TABLE document_deletions FORCE ROW LEVEL SECURITY;
-- Queued by the tenant's own deletions; emptied by the platform worker.
CREATE POLICY tenant_isolation ON document_deletions
    USING (tenant_id = bulwark_tenant() OR bulwark_system())
    WITH CHECK (tenant_id = bulwark_tenant() OR bulwark_system());
