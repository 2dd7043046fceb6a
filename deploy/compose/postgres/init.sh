#!/bin/sh
# First start only (docker-entrypoint-initdb.d): the two roles of README "PostgreSQL" — the
# owner, which migrates, and the application role, which is not the owner, not a superuser
# and has no BYPASSRLS, so row-level security binds it — with passwords read from the secrets
# by psql itself (never on a command line).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\set owner_password `cat /run/secrets/postgres_owner_password`
\set app_password `cat /run/secrets/postgres_app_password`
CREATE ROLE bulwark_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE bulwark_app LOGIN PASSWORD :'app_password' NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE bulwark OWNER bulwark_owner;
REVOKE ALL ON DATABASE bulwark FROM PUBLIC;
GRANT CONNECT ON DATABASE bulwark TO bulwark_owner, bulwark_app;
SQL
# Over the network: TLS and SCRAM only, Bulwark's two roles only, their database only (the
# superuser stays on the local socket).
sed -i '/^host all all all scram-sha-256$/d' "$PGDATA/pg_hba.conf"
cat >> "$PGDATA/pg_hba.conf" <<'HBA'
hostssl bulwark bulwark_owner,bulwark_app samenet scram-sha-256
HBA
