-- Tenant data keys (wrapped by a master key) and the CRM.
-- Personal data is stored encrypted (*_enc: see docs/ARCHITECTURE.md for the format) with a
-- keyed blind index (*_bidx) where equality search is needed; key_version names the data
-- key that encrypted the row's values.

-- Every reference between tenant rows is a composite foreign key on (tenant_id, id), so the
-- database itself refuses a link to another tenant's row.
CREATE UNIQUE INDEX users_tenant_id ON users (tenant_id, id);

CREATE TABLE tenant_keys (
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    purpose        text NOT NULL CHECK (purpose IN ('data', 'index')),
    version        integer NOT NULL,
    state          text NOT NULL CHECK (state IN ('active', 'retiring', 'destroyed')),
    wrapped        bytea,
    master_key_id  text,
    created_at     bigint NOT NULL,
    PRIMARY KEY (tenant_id, purpose, version)
);

CREATE TABLE companies (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    name           text NOT NULL,
    domain         text,
    industry       text,
    owner_id       uuid,
    tags           text NOT NULL,
    custom_fields  text NOT NULL,
    created_at     bigint NOT NULL,
    updated_at     bigint NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX companies_tenant ON companies (tenant_id, id);

CREATE TABLE contacts (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    key_version       integer NOT NULL,
    first_name_enc    bytea,
    last_name_enc     bytea,
    email_enc         bytea,
    phone_enc         bytea,
    date_of_birth_enc bytea,
    ssn_enc           bytea,
    address_enc       bytea,
    bank_account_enc  bytea,
    email_bidx        bytea,
    phone_bidx        bytea,
    company_id        uuid,
    owner_id          uuid,
    tags              text NOT NULL,
    custom_fields     text NOT NULL,
    erased_at         bigint,
    created_at        bigint NOT NULL,
    updated_at        bigint NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX contacts_tenant ON contacts (tenant_id, id);
CREATE INDEX contacts_email ON contacts (tenant_id, email_bidx);
CREATE INDEX contacts_phone ON contacts (tenant_id, phone_bidx);
CREATE INDEX contacts_updated ON contacts (tenant_id, updated_at, id);

CREATE TABLE pipelines (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    name        text NOT NULL,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX pipelines_tenant ON pipelines (tenant_id, id);

CREATE TABLE pipeline_stages (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    pipeline_id  uuid NOT NULL,
    name         text NOT NULL,
    position     integer NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('open', 'won', 'lost')),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (pipeline_id, id)
);
CREATE INDEX pipeline_stages_pipeline ON pipeline_stages (pipeline_id, position);

CREATE TABLE leads (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    title       text NOT NULL,
    status      text NOT NULL CHECK (status IN ('new', 'contacted', 'qualified', 'unqualified', 'converted')),
    source      text,
    contact_id  uuid,
    company_id  uuid,
    owner_id    uuid,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX leads_tenant ON leads (tenant_id, id);

CREATE TABLE deals (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants (id),
    title                text NOT NULL,
    pipeline_id          uuid NOT NULL,
    stage_id             uuid NOT NULL,
    amount_minor         bigint NOT NULL,
    currency             text NOT NULL,
    expected_close_date  text,
    contact_id           uuid,
    company_id           uuid,
    owner_id             uuid,
    created_at           bigint NOT NULL,
    updated_at           bigint NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id),
    FOREIGN KEY (pipeline_id, stage_id) REFERENCES pipeline_stages (pipeline_id, id)
);
CREATE INDEX deals_tenant ON deals (tenant_id, id);

CREATE TABLE notes (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    key_version  integer NOT NULL,
    body_enc     bytea NOT NULL,
    contact_id   uuid,
    company_id   uuid,
    deal_id      uuid,
    lead_id      uuid,
    author_id    uuid,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, author_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX notes_tenant ON notes (tenant_id, id);

CREATE TABLE activities (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    key_version  integer NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('call', 'email', 'meeting', 'sms')),
    subject      text NOT NULL,
    details_enc  bytea,
    occurred_at  bigint NOT NULL,
    contact_id   uuid,
    deal_id      uuid,
    owner_id     uuid,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX activities_tenant ON activities (tenant_id, id);

CREATE TABLE tasks (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    title        text NOT NULL,
    due_date     text,
    assignee_id  uuid,
    done         boolean NOT NULL,
    contact_id   uuid,
    deal_id      uuid,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, assignee_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id)
);
CREATE INDEX tasks_tenant ON tasks (tenant_id, id);

-- Retention purges keep the chain verifiable: the newest purged event's hash anchors it.
CREATE TABLE audit_anchors (
    chain_id  uuid PRIMARY KEY,
    seq       bigint NOT NULL,
    hash      bytea NOT NULL
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_keys', 'companies', 'contacts', 'pipelines', 'pipeline_stages',
                             'leads', 'deals', 'notes', 'activities', 'tasks'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
    -- Business tables: the current tenant's transactions only; a SystemTx sees nothing here.
    FOREACH t IN ARRAY ARRAY['companies', 'contacts', 'pipelines', 'pipeline_stages', 'leads',
                             'deals', 'notes', 'activities', 'tasks'] LOOP
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = bulwark_tenant()) WITH CHECK (tenant_id = bulwark_tenant())', t);
    END LOOP;
END $$;

-- Keys: the tenant's own transactions, and platform work (master-key rotation, tenant deletion).
CREATE POLICY tenant_isolation ON tenant_keys
    USING (tenant_id = bulwark_tenant() OR bulwark_system())
    WITH CHECK (tenant_id = bulwark_tenant() OR bulwark_system());

ALTER TABLE audit_anchors ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_anchors FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON audit_anchors USING (bulwark_system()) WITH CHECK (bulwark_system());

-- Retention of the audit log. The application role may not DELETE audit rows; this function,
-- owned by the owner role, removes only a chain's prefix older than the cutoff, never events
-- younger than a year, and anchors the chain at the last removed event so verification of
-- the rest still holds. It runs inside the caller's SystemTx (row-level security applies).
CREATE FUNCTION bulwark_purge_audit(p_chain uuid, p_before bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    first_kept bigint;
    last_seq bigint;
    last_hash bytea;
    removed bigint;
BEGIN
    IF p_before > (extract(epoch FROM now()) * 1000)::bigint - 365::bigint * 86400000 THEN
        RAISE EXCEPTION 'audit events younger than a year are never purged';
    END IF;
    SELECT min(seq) INTO first_kept FROM audit_events WHERE chain_id = p_chain AND occurred_at >= p_before;
    IF first_kept IS NULL THEN
        SELECT max(seq) INTO last_seq FROM audit_events WHERE chain_id = p_chain;
    ELSE
        last_seq := first_kept - 1;
    END IF;
    IF last_seq IS NULL OR last_seq < 1 THEN
        RETURN 0;
    END IF;
    SELECT hash INTO last_hash FROM audit_events WHERE chain_id = p_chain AND seq = last_seq;
    IF last_hash IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM audit_events WHERE chain_id = p_chain AND seq <= last_seq;
    GET DIAGNOSTICS removed = ROW_COUNT;
    INSERT INTO audit_anchors (chain_id, seq, hash) VALUES (p_chain, last_seq, last_hash)
        ON CONFLICT (chain_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash;
    RETURN removed;
END $$;
REVOKE ALL ON FUNCTION bulwark_purge_audit(uuid, bigint) FROM PUBLIC;
