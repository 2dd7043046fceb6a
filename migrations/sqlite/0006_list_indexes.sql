-- The default sort of every CRM list is (created_at, id) within a tenant; without these
-- indexes each page sorted the tenant's whole table (bench/run.sh: 99 contact pages/s).
CREATE INDEX companies_created ON companies (tenant_id, created_at, id);
CREATE INDEX contacts_created ON contacts (tenant_id, created_at, id);
CREATE INDEX leads_created ON leads (tenant_id, created_at, id);
CREATE INDEX deals_created ON deals (tenant_id, created_at, id);
CREATE INDEX notes_created ON notes (tenant_id, created_at, id);
CREATE INDEX activities_created ON activities (tenant_id, created_at, id);
CREATE INDEX tasks_created ON tasks (tenant_id, created_at, id);
