# Sourced by scripts/test.sh and bench/run.sh: installs what is missing from Debian, then
# starts a throwaway PostgreSQL 15 cluster and Redis on loopback as an unprivileged user.
#
#   WORK=$(mktemp -d); PIDS=(); source scripts/services.sh
#   services_install; start_postgres; start_redis; ...; stop_services
#
# start_postgres exports BULWARK_TEST_PG_{OWNER,APP,SUPERUSER}_URL and BULWARK_TEST_PG_BIN
# (roles bulwark_owner, which may create databases, and bulwark_app); start_redis exports
# BULWARK_TEST_REDIS_URL and BULWARK_TEST_REDIS_SERVER; start_s3 BULWARK_TEST_S3_ENDPOINT;
# start_pgbouncer BULWARK_TEST_PGBOUNCER_APP_URL; start_mail (an SMTP server with STARTTLS
# and a DNS server, real processes) BULWARK_TEST_SMTP_*, BULWARK_TEST_DNS_*.
# All listen on free ports.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

services_install() {
    local sudo="" missing=()
    [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ] || missing+=(postgresql-15 postgresql-client-15)
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    # A tool is its command, or COMMAND:PACKAGE when the Debian package is named otherwise.
    for tool in "$@"; do command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}"); done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    PG_BIN=$(pg_config --bindir)
    # Services never run as root: PostgreSQL refuses to, and neither needs it.
    if [ "$(id -u)" -eq 0 ]; then
        SERVICE_USER=postgres
        id -u "$SERVICE_USER" >/dev/null 2>&1 || useradd --system --no-create-home "$SERVICE_USER"
        chown "$SERVICE_USER" "$WORK"
    fi
}

as_service() {
    if [ -n "${SERVICE_USER:-}" ]; then runuser -u "$SERVICE_USER" -- "$@"; else "$@"; fi
}

start_postgres() {
    PG_PORT=$(free_port)
    PG_DATA=$WORK/pg
    echo "postgres-ci-superuser" > "$WORK/pgpass"; chmod 0644 "$WORK/pgpass"
    as_service "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$WORK/pgpass" \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    as_service "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pg.log" -w \
        -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$WORK -c fsync=off -c max_connections=300" \
        start >/dev/null
    as_service "$PG_BIN/psql" -v ON_ERROR_STOP=1 -q -h "$WORK" -p "$PG_PORT" -U postgres -d postgres \
        -c "CREATE ROLE bulwark_owner LOGIN CREATEDB PASSWORD 'owner-ci-password'" \
        -c "CREATE ROLE bulwark_app LOGIN PASSWORD 'app-ci-password'"
    export BULWARK_TEST_PG_OWNER_URL="postgres://bulwark_owner:owner-ci-password@127.0.0.1:$PG_PORT/postgres"
    export BULWARK_TEST_PG_APP_URL="postgres://bulwark_app:app-ci-password@127.0.0.1:$PG_PORT"
    export BULWARK_TEST_PG_SUPERUSER_URL="postgres://postgres:postgres-ci-superuser@127.0.0.1:$PG_PORT/postgres"
    export BULWARK_TEST_PG_BIN="$PG_BIN"
}

# create_database NAME: a database owned by bulwark_owner.
create_database() {
    as_service "$PG_BIN/psql" -v ON_ERROR_STOP=1 -q -h "$WORK" -p "$PG_PORT" -U postgres -d postgres \
        -c "CREATE DATABASE \"$1\" OWNER bulwark_owner"
}

start_redis() {
    REDIS_PORT=$(free_port)
    as_service redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$WORK" --logfile "$WORK/redis.log" &
    PIDS+=($!)
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    export BULWARK_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
    export BULWARK_TEST_REDIS_SERVER="$(command -v redis-server)"
}

# start_s3: an S3-compatible server on loopback (moto's server mode, pinned, in its own venv
# under target/) with the bucket `bulwark-test`; exports BULWARK_TEST_S3_ENDPOINT.
start_s3() {
    local venv=${ROOT:-$PWD}/target/s3-venv
    if ! "$venv/bin/pip" freeze 2>/dev/null | grep -qx "moto==5.2.5"; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.5"
    fi
    S3_PORT=$(free_port)
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" > "$WORK/moto.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$S3_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -sf -X PUT "http://127.0.0.1:$S3_PORT/bulwark-test" >/dev/null
    export BULWARK_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
}

# start_pgbouncer: Debian's PgBouncer in transaction pooling mode in front of the test cluster
# (every database, the application role only); exports BULWARK_TEST_PGBOUNCER_APP_URL (no
# database name, like BULWARK_TEST_PG_APP_URL).
start_pgbouncer() {
    PGB_PORT=$(free_port)
    printf '"bulwark_app" "app-ci-password"\n' > "$WORK/pgbouncer-users.txt"
    cat > "$WORK/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
pool_mode = transaction
auth_type = scram-sha-256
auth_file = $WORK/pgbouncer-users.txt
max_client_conn = 1000
; Every test has its own database, hence its own pool: a few connections each, closed when
; idle, and a cap across them all that leaves PostgreSQL room for direct connections.
default_pool_size = ${PGB_POOL_SIZE:-4}
server_idle_timeout = 1
max_user_connections = 120
ignore_startup_parameters = extra_float_digits,options
logfile = $WORK/pgbouncer.log
stats_period = 3600
EOF
    chmod 0644 "$WORK/pgbouncer.ini" "$WORK/pgbouncer-users.txt"
    as_service "$(command -v pgbouncer || echo /usr/sbin/pgbouncer)" "$WORK/pgbouncer.ini" \
        > /dev/null 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $PGB_PORT), 1)" 2>/dev/null && break
        sleep 0.1
    done
    export BULWARK_TEST_PGBOUNCER_APP_URL="postgres://bulwark_app:app-ci-password@127.0.0.1:$PGB_PORT"
}

# start_mail: the mail tests' servers, from PyPI (pinned, tests/email/requirements.txt) in
# their own venv under target/: aiosmtpd on loopback with STARTTLS required, its certificate
# issued by a throwaway CA (BULWARK_TEST_SMTP_PORT, _CA, _DIR: one JSON file per message
# received), and a DNS server answering from the files tests write (BULWARK_TEST_DNS,
# BULWARK_TEST_DNS_DIR). BULWARK_TEST_MAIL_PYTHON runs tests/email/dkim_verify.py.
start_mail() {
    local venv=${ROOT:-$PWD}/target/email-venv
    local want=${ROOT:-$PWD}/tests/email/requirements.txt
    if ! cmp -s "$want" "$venv/requirements.txt" 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$want"
        cp "$want" "$venv/requirements.txt"
    fi
    mkdir -p "$WORK/mail/inbox" "$WORK/mail/dns"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Bulwark test CA" \
        -keyout "$WORK/mail/ca.key" -out "$WORK/mail/ca.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$WORK/mail/smtp.key" -out "$WORK/mail/smtp.csr" >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$WORK/mail/ext.cnf"
    openssl x509 -req -in "$WORK/mail/smtp.csr" -CA "$WORK/mail/ca.pem" -CAkey "$WORK/mail/ca.key" \
        -CAcreateserial -days 2 -extfile "$WORK/mail/ext.cnf" -out "$WORK/mail/smtp.pem" >/dev/null 2>&1
    SMTP_PORT=$(free_port)
    "$venv/bin/python" "${ROOT:-$PWD}/tests/email/smtp_sink.py" "$SMTP_PORT" "$WORK/mail/smtp.pem" \
        "$WORK/mail/smtp.key" "$WORK/mail/inbox" > "$WORK/smtp.log" 2>&1 &
    PIDS+=($!)
    DNS_PORT=$(free_port)
    "$venv/bin/python" "${ROOT:-$PWD}/tests/email/dns_server.py" "$DNS_PORT" "$WORK/mail/dns" \
        > "$WORK/dns.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $SMTP_PORT), 1)" 2>/dev/null && break
        sleep 0.1
    done
    export BULWARK_TEST_SMTP_PORT=$SMTP_PORT BULWARK_TEST_SMTP_CA="$WORK/mail/ca.pem"
    export BULWARK_TEST_SMTP_DIR="$WORK/mail/inbox"
    export BULWARK_TEST_DNS="127.0.0.1:$DNS_PORT" BULWARK_TEST_DNS_DIR="$WORK/mail/dns"
    export BULWARK_TEST_MAIL_PYTHON="$venv/bin/python"
}

# start_integrations: the integrations tests' server (tests/integrations/server.py; Flask and
# authlib from PyPI, pinned in tests/integrations/requirements.txt, in their own venv under
# target/): an OAuth authorization server and fake APIs for Google and Zoom, control endpoints,
# and a Standard Webhooks receiver whose state is files under $BULWARK_TEST_INTEGRATIONS_DIR/hooks.
# Exports BULWARK_TEST_INTEGRATIONS_URL and BULWARK_TEST_INTEGRATIONS_DIR.
start_integrations() {
    local venv=${ROOT:-$PWD}/target/integrations-venv
    local want=${ROOT:-$PWD}/tests/integrations/requirements.txt
    if ! cmp -s "$want" "$venv/requirements.txt" 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$want"
        cp "$want" "$venv/requirements.txt"
    fi
    local dir=$WORK/integrations
    mkdir -p "$dir/hooks"
    INTEGRATIONS_PORT=$(free_port)
    "$venv/bin/python" "${ROOT:-$PWD}/tests/integrations/server.py" "$INTEGRATIONS_PORT" "$dir" \
        > "$WORK/integrations.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $INTEGRATIONS_PORT), 1)" 2>/dev/null && break
        sleep 0.1
    done
    export BULWARK_TEST_INTEGRATIONS_URL="http://127.0.0.1:$INTEGRATIONS_PORT"
    export BULWARK_TEST_INTEGRATIONS_DIR="$dir"
}

stop_services() {
    # A PID here is the subshell that ran `as_service … &`; the service is its child
    # (through runuser, which passes the signal on). Killing only the subshell left the
    # service running as an orphan, so its children go first.
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
    if [ -n "${PG_DATA:-}" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
        as_service "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    fi
}
