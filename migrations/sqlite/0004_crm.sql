-- Tenant data keys (wrapped by a master key) and the CRM.
-- Personal data is stored encrypted (*_enc: see docs/ARCHITECTURE.md for the format) with a
-- keyed blind index (*_bidx) where equality search is needed; key_version names the data
-- key that encrypted the row's values.

-- Every reference between tenant rows is a composite foreign key on (tenant_id, id), so the
-- database itself refuses a link to another tenant's row.
CREATE UNIQUE INDEX users_tenant_id ON users (tenant_id, id);

CREATE TABLE tenant_keys (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    purpose        TEXT NOT NULL CHECK (purpose IN ('data', 'index')),
    version        INTEGER NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('active', 'retiring', 'destroyed')),
    wrapped        BLOB,
    master_key_id  TEXT,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, purpose, version)
) STRICT;

CREATE TABLE companies (
    id             BLOB PRIMARY KEY NOT NULL,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    name           TEXT NOT NULL,
    domain         TEXT,
    industry       TEXT,
    owner_id       BLOB,
    tags           TEXT NOT NULL,
    custom_fields  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
) STRICT;
CREATE INDEX companies_tenant ON companies (tenant_id, id);

CREATE TABLE contacts (
    id                BLOB PRIMARY KEY NOT NULL,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id),
    key_version       INTEGER NOT NULL,
    first_name_enc    BLOB,
    last_name_enc     BLOB,
    email_enc         BLOB,
    phone_enc         BLOB,
    date_of_birth_enc BLOB,
    ssn_enc           BLOB,
    address_enc       BLOB,
    bank_account_enc  BLOB,
    email_bidx        BLOB,
    phone_bidx        BLOB,
    company_id        BLOB,
    owner_id          BLOB,
    tags              TEXT NOT NULL,
    custom_fields     TEXT NOT NULL,
    erased_at         INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
) STRICT;
CREATE INDEX contacts_tenant ON contacts (tenant_id, id);
CREATE INDEX contacts_email ON contacts (tenant_id, email_bidx);
CREATE INDEX contacts_phone ON contacts (tenant_id, phone_bidx);
CREATE INDEX contacts_updated ON contacts (tenant_id, updated_at, id);

CREATE TABLE pipelines (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, id)
) STRICT;
CREATE INDEX pipelines_tenant ON pipelines (tenant_id, id);

CREATE TABLE pipeline_stages (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    pipeline_id  BLOB NOT NULL,
    name         TEXT NOT NULL,
    position     INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('open', 'won', 'lost')),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (pipeline_id, id)
) STRICT;
CREATE INDEX pipeline_stages_pipeline ON pipeline_stages (pipeline_id, position);

CREATE TABLE leads (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    title       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('new', 'contacted', 'qualified', 'unqualified', 'converted')),
    source      TEXT,
    contact_id  BLOB,
    company_id  BLOB,
    owner_id    BLOB,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
) STRICT;
CREATE INDEX leads_tenant ON leads (tenant_id, id);

CREATE TABLE deals (
    id                   BLOB PRIMARY KEY NOT NULL,
    tenant_id            BLOB NOT NULL REFERENCES tenants (id),
    title                TEXT NOT NULL,
    pipeline_id          BLOB NOT NULL,
    stage_id             BLOB NOT NULL,
    amount_minor         INTEGER NOT NULL,
    currency             TEXT NOT NULL,
    expected_close_date  TEXT,
    contact_id           BLOB,
    company_id           BLOB,
    owner_id             BLOB,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id),
    FOREIGN KEY (pipeline_id, stage_id) REFERENCES pipeline_stages (pipeline_id, id)
) STRICT;
CREATE INDEX deals_tenant ON deals (tenant_id, id);

CREATE TABLE notes (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    key_version  INTEGER NOT NULL,
    body_enc     BLOB NOT NULL,
    contact_id   BLOB,
    company_id   BLOB,
    deal_id      BLOB,
    lead_id      BLOB,
    author_id    BLOB,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, author_id) REFERENCES users (tenant_id, id)
) STRICT;
CREATE INDEX notes_tenant ON notes (tenant_id, id);

CREATE TABLE activities (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    key_version  INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('call', 'email', 'meeting', 'sms')),
    subject      TEXT NOT NULL,
    details_enc  BLOB,
    occurred_at  INTEGER NOT NULL,
    contact_id   BLOB,
    deal_id      BLOB,
    owner_id     BLOB,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
) STRICT;
CREATE INDEX activities_tenant ON activities (tenant_id, id);

CREATE TABLE tasks (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    title        TEXT NOT NULL,
    due_date     TEXT,
    assignee_id  BLOB,
    done         INTEGER NOT NULL,
    contact_id   BLOB,
    deal_id      BLOB,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, assignee_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id)
) STRICT;
CREATE INDEX tasks_tenant ON tasks (tenant_id, id);

-- Retention purges keep the chain verifiable: the newest purged event's hash anchors it.
CREATE TABLE audit_anchors (
    chain_id  BLOB PRIMARY KEY NOT NULL,
    seq       INTEGER NOT NULL,
    hash      BLOB NOT NULL
) STRICT;
