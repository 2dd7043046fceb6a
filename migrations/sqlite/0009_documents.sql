-- Documents: contents encrypted in the object store (file:// or s3://), metadata here. Each
-- document has its own data key, sealed under the tenant's key in key_enc: deleting the row
-- crypto-shreds the content at once. A trigger queues the object's removal for the worker,
-- whatever deleted the row (the route, a cascade from its contact, company or deal, a
-- privacy erasure, tenant deletion, retention), so no object outlives its row.
CREATE TABLE documents (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    contact_id    BLOB,
    company_id    BLOB,
    deal_id       BLOB,
    key_version   INTEGER NOT NULL,
    key_enc       BLOB NOT NULL,
    nonce_prefix  BLOB NOT NULL,
    title_enc     BLOB,
    filename_enc  BLOB NOT NULL,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    sha256        BLOB NOT NULL,
    scan          TEXT NOT NULL CHECK (scan IN ('clean', 'unscanned')),
    created_by    BLOB,
    created_at    INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    CHECK ((contact_id IS NOT NULL) + (company_id IS NOT NULL) + (deal_id IS NOT NULL) = 1),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id)
) STRICT;
CREATE INDEX documents_contact ON documents (tenant_id, contact_id, created_at, id);
CREATE INDEX documents_company ON documents (tenant_id, company_id, created_at, id);
CREATE INDEX documents_deal ON documents (tenant_id, deal_id, created_at, id);
CREATE INDEX documents_age ON documents (tenant_id, created_at);

-- Objects whose row is gone, for the worker to delete (ids only: no personal data).
CREATE TABLE document_deletions (
    document_id  BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL,
    queued_at    INTEGER NOT NULL
) STRICT;

CREATE TRIGGER documents_queue_deletion AFTER DELETE ON documents
BEGIN
    INSERT OR IGNORE INTO document_deletions (document_id, tenant_id, queued_at)
    VALUES (OLD.id, OLD.tenant_id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
