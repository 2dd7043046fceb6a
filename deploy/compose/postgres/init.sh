#!/bin/sh
# First start only (docker-entrypoint-initdb.d): the two roles of README "PostgreSQL" — the
# owner, which migrates, and the application role, which is not the owner, not a superuser
# and has no BYPASSRLS, so row-level security binds it — with passwords from the secrets.
set -eu
owner_password=$(cat /run/secrets/postgres_owner_password)
app_password=$(cat /run/secrets/postgres_app_password)
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v owner_password="$owner_password" -v app_password="$app_password" <<'SQL'
CREATE ROLE bulwark_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE bulwark_app LOGIN PASSWORD :'app_password' NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE bulwark OWNER bulwark_owner;
REVOKE ALL ON DATABASE bulwark FROM PUBLIC;
GRANT CONNECT ON DATABASE bulwark TO bulwark_owner, bulwark_app;
SQL
# Only TLS connections with SCRAM passwords, from the internal network.
cat >> "$PGDATA/pg_hba.conf" <<'HBA'
hostssl all all 0.0.0.0/0 scram-sha-256
HBA
sed -i '/^host all all all scram-sha-256$/d' "$PGDATA/pg_hba.conf"
