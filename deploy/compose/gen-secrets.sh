#!/usr/bin/env bash
# Writes every secret the compose stack reads into DIR (default ./secrets), once: passwords,
# Bulwark's JWT secret and master key, the metrics token, a private CA and the TLS
# certificates it signs for PgBouncer, PostgreSQL, Redis and MinIO, and a self-signed edge
# certificate for Traefik (replace edge_cert.pem/edge_key.pem with your own). Files are mode
# 0600 (certificates 0644); existing files are kept, so a rerun never rotates anything by
# accident. Needs openssl.
#
#   ./gen-secrets.sh [DIR]
#
# Run as root, it hands the keys read by non-root containers to their users (Redis and
# PgBouncer); otherwise do that yourself (docs/RUNBOOK.md, "Compose").
set -euo pipefail
DIR=${1:-$(dirname "$0")/secrets}
DOMAIN=${BULWARK_DOMAIN:-localhost}
umask 077
mkdir -p "$DIR"
cd "$DIR"

keep() { [ -s "$1" ]; }
# openssl's chatter only when it fails.
quiet() { local out; out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }; }
random() { openssl rand -base64 48 | tr -d '\n/+=' | cut -c1-"${1:-40}"; }
secret() { keep "$1" || printf '%s' "$2" > "$1"; }

secret postgres_superuser_password "$(random)"
secret postgres_owner_password "$(random)"
secret postgres_app_password "$(random)"
secret redis_password "$(random)"
secret minio_root_user "minio-root"
secret minio_root_password "$(random)"
secret s3_secret_access_key "$(random)"
secret grafana_admin_password "$(random)"
secret metrics_token "$(random 48)"
secret jwt_secret "$(openssl rand -base64 48 | tr -d '\n')"
secret master_keys "k1:$(openssl rand -base64 32 | tr -d '\n')"

# Derived files are written again on every run, so they follow their passwords. URLs with
# credentials: PgBouncer for the application, PostgreSQL itself for the migrations (both
# verify the server against the private CA). Generated passwords are letters and digits only,
# so they need no escaping in a URL or the user list.
app=$(cat postgres_app_password)
owner=$(cat postgres_owner_password)
derive() { printf '%s' "$2" > "$1"; }
derive database_url "postgres://bulwark_app:$app@pgbouncer:6432/bulwark?sslmode=verify-full&sslrootcert=/run/secrets/ca.pem"
derive database_direct_url "postgres://bulwark_app:$app@postgres:5432/bulwark?sslmode=verify-full&sslrootcert=/run/secrets/ca.pem"
derive database_migrate_url "postgres://bulwark_owner:$owner@postgres:5432/bulwark?sslmode=verify-full&sslrootcert=/run/secrets/ca.pem"
derive redis_url "rediss://:$(cat redis_password)@redis:6379"
# PgBouncer's user list: it accepts the plain password and runs SCRAM itself.
derive pgbouncer_userlist "\"bulwark_app\" \"$app\""
derive redis.conf "port 0
tls-port 6379
tls-cert-file /run/secrets/redis_cert.pem
tls-key-file /run/secrets/redis_key.pem
tls-auth-clients no
tls-protocols TLSv1.3
requirepass $(cat redis_password)
dir /data
appendonly yes
"

# The private CA and the certificates it signs (ECDSA P-256, 825 days).
if ! keep ca.pem; then
    quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=Bulwark compose CA" -keyout ca_key.pem -out ca.pem
fi
issue() { # issue NAME HOST...
    local name=$1; shift
    keep "${name}_cert.pem" && return 0
    local san
    san=$(printf 'DNS:%s,' "$@"); san=${san%,}
    quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "${name}_key.pem" -out "$name.csr"
    quiet openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca_key.pem -CAcreateserial -days 825 \
        -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san") \
        -out "${name}_cert.pem"
    rm -f "$name.csr"
}
issue postgres postgres
issue pgbouncer pgbouncer
issue redis redis
issue minio minio
mkdir -p minio-certs/CAs
cp minio_cert.pem minio-certs/public.crt
cp minio_key.pem minio-certs/private.key
cp ca.pem minio-certs/CAs/ca.pem
if ! keep edge_cert.pem; then
    quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \
        -subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" \
        -keyout edge_key.pem -out edge_cert.pem
fi
chmod 0644 ./*_cert.pem ca.pem minio-certs/public.crt minio-certs/CAs/ca.pem
chmod 0755 minio-certs minio-certs/CAs
# Each secret belongs to the user of the container that reads it (compose mounts the files as
# they are, and the containers run without capabilities): Bulwark 65532 (the metrics token
# also readable by its group, which Prometheus joins), PostgreSQL 999, Redis 999, PgBouncer
# 70, Grafana 472; Traefik, MinIO and the setup job run as root and read root's files.
if [ "$(id -u)" = 0 ]; then
    chown 65532:65532 database_url database_direct_url database_migrate_url redis_url \
        s3_secret_access_key jwt_secret master_keys metrics_token
    chmod 0640 metrics_token
    chown 999:999 postgres_superuser_password postgres_owner_password postgres_app_password
    chown 999:1000 redis_key.pem redis.conf
    chown 70:70 pgbouncer_key.pem pgbouncer_userlist
    chown 472:472 grafana_admin_password
else
    echo "not root: hand each secret to its container's user yourself (docs/RUNBOOK.md, \"Compose\")" >&2
fi
echo "secrets in $(pwd)"
