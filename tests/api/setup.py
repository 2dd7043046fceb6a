"""Prepares a running Bulwark for the API fuzzer and prints the credentials as JSON.

Signs up two tenants, one for each fuzzing run, so that the runs are independent (what one
run does to its tenant, a security policy or a revoked key, cannot change what the other
sees, and they can run at once). In each: proves the password, enrols TOTP and steps up with
a backup code (so sensitive routes are reachable too), and seeds one record of each kind so
generated requests meet real ids; in the second, creates a scoped API key. Standard library
only: the codes are computed here per RFC 6238, not by Bulwark.
"""

import base64
import hashlib
import hmac
import json
import struct
import sys
import time
import urllib.error
import urllib.request

BASE = sys.argv[1].rstrip("/")
PASSWORD = "correct horse battery staple 7"


def call(method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{method} {path}: {error.code} {error.read()[:500]!r}")


def totp(secret_b32, at):
    secret = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(secret, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def main():
    for _ in range(200):
        try:
            urllib.request.urlopen(BASE + "/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    token = tenant("Fuzz", "owner@fuzz.example")
    other = tenant("Fuzz keys", "owner@keys.fuzz.example")
    scopes = ["contacts:read", "contacts:write", "companies:read", "companies:write",
              "leads:read", "deals:read", "notes:read", "notes:write", "tasks:read"]
    _, key = call("POST", "/api/v1/api-keys", {"name": "fuzz", "scopes": scopes}, other)
    print(json.dumps({"token": token, "api_key": key["key"]}))


def tenant(name, email):
    """A new tenant whose owner is enrolled in TOTP and stepped up, with one record of each
    kind; the owner's access token."""
    call("POST", "/api/v1/auth/signup",
         {"tenant_name": name, "email": email, "password": PASSWORD, "display_name": "Fuzz Owner"})
    _, login = call("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
    token = login["access_token"]
    # Enrolling needs a fresh password proof and grants no step-up; a backup code steps up.
    call("POST", "/api/v1/auth/step-up", {"password": PASSWORD}, token)
    _, setup = call("POST", "/api/v1/auth/mfa/totp/setup", {}, token)
    _, confirmed = call("POST", "/api/v1/auth/mfa/totp/confirm",
                        {"code": totp(setup["secret"], time.time())}, token)
    call("POST", "/api/v1/auth/step-up", {"backup_code": confirmed["backup_codes"][0]}, token)

    _, company = call("POST", "/api/v1/companies", {"name": "Initech"}, token)
    _, contact = call("POST", "/api/v1/contacts",
                      {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@fuzz.example",
                       "company_id": company["id"]}, token)
    call("POST", "/api/v1/leads", {"title": "Big lead", "contact_id": contact["id"]}, token)
    call("POST", "/api/v1/tasks", {"title": "Call Ada", "contact_id": contact["id"]}, token)
    return token


main()
