#!/usr/bin/env python3
"""Checks deploy/compose offline: the rules the stack promises (docs/RUNBOOK.md, "Compose"),
then that Bulwark accepts the configuration its services get, in the production profile, with
secrets made by the stack's own gen-secrets.sh. No container engine is needed (none is on the
CI machines); what only a running engine can show is out of reach and said so in the README.

    scripts/compose-check.py BULWARK_BINARY
"""
import configparser
import os
import re
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPOSE = os.path.join(ROOT, "deploy", "compose")
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|MASTER_KEYS|DATABASE_URL|MIGRATE_URL|REDIS_URL")
# user:password@ or :password@ in a URL.
CREDENTIALS = re.compile(r"://[^/@\s]*:[^/@\s]+@")
# Who reads a service's secret files (the user compose runs it as, or its image's).
BULWARK_UID, RUNS_AS_ROOT = 65532, {"traefik", "minio", "minio-setup"}
problems = []


def check(ok, message):
    if not ok:
        problems.append(message)


def main(binary):
    with open(os.path.join(COMPOSE, "compose.yaml")) as f:
        stack = yaml.safe_load(f)
    services, networks = stack["services"], stack["networks"]
    declared = set(stack["secrets"])

    for name, service in services.items():
        image = service.get("image", "")
        check(":" in image and not image.endswith(":latest"), f"{name}: image {image!r} is not pinned")
        check("no-new-privileges:true" in service.get("security_opt", []), f"{name}: no-new-privileges is off")
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
        for key, value in environment.items():
            # A secret setting appears only as its *_FILE form (or a file name under /run/secrets).
            if SECRET_WORDS.search(key) and not key.endswith("_FILE"):
                problems.append(f"{name}: {key} is given inline; use {key}_FILE")
            check(not CREDENTIALS.search(str(value)), f"{name}: {key} carries credentials")
        # Nor anywhere else a value could hide: command lines, health checks, labels.
        for part in ("command", "entrypoint", "healthcheck", "labels"):
            text = yaml.safe_dump(service.get(part)) if part in service else ""
            check(not CREDENTIALS.search(text), f"{name}: its {part} carries credentials")
        check(str(service.get("user", "")).split(":")[0] not in ("0", "root"), f"{name}: runs as root by choice")
        for secret in service.get("secrets", []):
            check(secret in declared, f"{name}: secret {secret} is not declared")

    bulwarks = {n: s for n, s in services.items() if re.fullmatch(r"bulwark-[0-9]+", n)}
    check(len(bulwarks) == 2, f"two Bulwark instances expected, found {sorted(bulwarks)}")
    for name, service in bulwarks.items():
        check(service.get("read_only") is True, f"{name}: root filesystem is writable")
        check(service.get("cap_drop") == ["ALL"], f"{name}: capabilities are not all dropped")
        check(not str(service.get("user", "0")).startswith("0"), f"{name}: runs as root")
        env = service["environment"]
        check(env.get("BULWARK_ENV") == "production", f"{name}: not the production profile")
        check(env.get("BULWARK_DATABASE_POOLER") == "transaction", f"{name}: pooler mode not set")
        # The owner role's URL stays with the one-shot migration service.
        check(not any("MIGRATE_URL" in k for k in env), f"{name}: holds the owner role's URL")
        check("database_migrate_url" not in service.get("secrets", []), f"{name}: mounts the owner role's URL")
    migrate = services.get("bulwark-migrate", {})
    check(migrate.get("command") == ["migrate"], "no one-shot migration service")
    for name in bulwarks:
        after = services[name].get("depends_on", {}).get("bulwark-migrate", {})
        check(after.get("condition") == "service_completed_successfully", f"{name}: starts before the migrations")

    internal = {n for n, v in networks.items() if (v or {}).get("internal")}
    for store in ("postgres", "pgbouncer", "redis", "minio"):
        attached = set(services[store].get("networks", []))
        check(attached and attached <= internal, f"{store}: reachable outside an internal network ({attached})")
        check("ports" not in services[store], f"{store}: publishes a port")

    ini = configparser.ConfigParser()
    ini.read(os.path.join(COMPOSE, "pgbouncer", "pgbouncer.ini"))
    check(ini["pgbouncer"]["pool_mode"] == "transaction", "PgBouncer is not in transaction mode")
    check(int(ini["pgbouncer"]["max_prepared_statements"]) > 0, "PgBouncer does not track prepared statements")

    with open(os.path.join(COMPOSE, "traefik", "dynamic.yml")) as f:
        dynamic = yaml.safe_load(f)
    # The default options: a router without a Host rule gets them, whatever options it names.
    options = dynamic["tls"]["options"]
    check(options.get("default", {}).get("minVersion") == "VersionTLS13", "Traefik's default TLS options allow TLS below 1.3")
    check(all(o.get("minVersion") == "VersionTLS13" for o in options.values()), "a Traefik TLS option allows TLS below 1.3")
    servers = [s["url"] for s in dynamic["http"]["services"]["bulwark"]["loadBalancer"]["servers"]]
    check(sorted(servers) == sorted(f"http://{n}:8080" for n in bulwarks), f"Traefik routes to {servers}")
    with open(os.path.join(COMPOSE, "traefik", "traefik.yml")) as f:
        static = yaml.safe_load(f)
    redirect = static["entryPoints"]["web"]["http"]["redirections"]["entryPoint"]
    check(redirect["to"] == "websecure" and redirect["scheme"] == "https", "HTTP does not redirect to HTTPS")

    # Every secret file the stack declares is one gen-secrets.sh writes; Bulwark accepts the
    # configuration its instances get (production profile: TLS to every store, verify-full,
    # a metrics token, strong secrets).
    with tempfile.TemporaryDirectory() as tmp:
        secrets = os.path.join(tmp, "secrets")
        subprocess.run([os.path.join(COMPOSE, "gen-secrets.sh"), secrets], check=True, stdout=subprocess.DEVNULL)
        for name, spec in stack["secrets"].items():
            path = os.path.join(secrets, os.path.relpath(spec["file"], "./secrets"))
            check(os.path.exists(path), f"gen-secrets.sh does not write {spec['file']}")
        # Run as root (as CI does), gen-secrets.sh hands every file a Bulwark container reads
        # to Bulwark's user, or it could not start with its capabilities dropped.
        if os.geteuid() == 0:
            for name, service in services.items():
                if not (name.startswith("bulwark") and str(service.get("user", "")).startswith(str(BULWARK_UID))):
                    continue
                for secret in service.get("secrets", []):
                    path = os.path.join(secrets, os.path.relpath(stack["secrets"][secret]["file"], "./secrets"))
                    st = os.stat(path)
                    readable = st.st_mode & 0o004 or (st.st_uid == BULWARK_UID and st.st_mode & 0o400)
                    check(readable, f"{name}: cannot read its secret {secret} (owner {st.st_uid}, mode {oct(st.st_mode & 0o777)})")
        for name, service in list(bulwarks.items()) + [("bulwark-migrate", migrate)]:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp}
            for key, value in service["environment"].items():
                value = str(value).replace("/run/secrets", secrets)
                value = value.replace("${BULWARK_DOMAIN:-localhost}", "localhost")
                env[key] = os.path.join(tmp, name) if key == "BULWARK_DATA_DIR" else value
            result = subprocess.run([binary, "check-config"], env=env, capture_output=True, text=True)
            check(result.returncode == 0, f"{name}: bulwark check-config refuses the stack's configuration:\n{result.stdout}{result.stderr}")

    if problems:
        print("deploy/compose:\n  " + "\n  ".join(problems), file=sys.stderr)
        sys.exit(1)
    print(f"deploy/compose: {len(services)} services, {len(declared)} secrets as files; Bulwark accepts its configuration")


if __name__ == "__main__":
    main(sys.argv[1])
