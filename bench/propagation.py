#!/usr/bin/env python3
"""Propagation of containment across instances (bench/scale-out.sh): how long after the
answer to a change every instance applies it. Prints RESULT lines with p50/p99/max in ms.

    bench/propagation.py ROOT_EMAIL ROOT_PASSWORD USER_EMAIL USER_PASSWORD URL1 URL2 URL3 ...

Kill switch: PATCH /api/v1/platform/features on instance i, then every instance's /readyz
polled until it lists (or stops listing) the feature. Revocation: the user signs in and is
seen live on every instance, POST /api/v1/platform/sessions/revoke on instance i, then every
instance polled until it refuses the session.
"""
import json
import statistics
import sys
import time
import urllib.error
import urllib.request

ROUNDS = 30


def call(method, url, token=None, body=None, xff=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    if xff:
        request.add_header("x-forwarded-for", xff)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as err:
        return err.code, None


def login(url, email, password, n):
    status, body = call("POST", f"{url}/api/v1/auth/login", body={"email": email, "password": password},
                        xff=f"10.9.{n // 250}.{n % 250 + 1}")
    assert status == 200, f"login {status}"
    return body["access_token"]


def until_all(urls, check, started):
    pending = list(urls)
    while pending:
        pending = [u for u in pending if not check(u)]
        if time.monotonic() - started > 5:
            raise SystemExit("a change did not reach every instance within 5 s")
    return (time.monotonic() - started) * 1000


def report(name, samples):
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(round(0.99 * (len(samples) - 1))))]
    print(f"RESULT name={name} rounds={len(samples)} p50_ms={statistics.median(samples):.1f} "
          f"p99_ms={p99:.1f} max_ms={samples[-1]:.1f}", flush=True)


def main():
    root_email, root_password, user_email, user_password, *urls = sys.argv[1:]
    root = login(urls[0], root_email, root_password, 0)
    # The super-admin enrols TOTP and steps up with one of its backup codes.
    assert call("POST", f"{urls[0]}/api/v1/auth/step-up", root, {"password": root_password})[0] == 204
    status, setup = call("POST", f"{urls[0]}/api/v1/auth/mfa/totp/setup", root, {})
    assert status == 200, status
    import base64, hashlib, hmac, struct
    secret = base64.b32decode(setup["secret"] + "=" * (-len(setup["secret"]) % 8))
    counter = struct.pack(">Q", int(time.time()) // 30)
    digest = hmac.new(secret, counter, hashlib.sha1).digest()
    offset = digest[-1] & 15
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    status, confirmed = call("POST", f"{urls[0]}/api/v1/auth/mfa/totp/confirm", root, {"code": f"{code:06d}"})
    assert status == 200, status
    backup = confirmed["backup_codes"][0]
    assert call("POST", f"{urls[0]}/api/v1/auth/step-up", root, {"backup_code": backup})[0] == 204
    status, me = call("GET", f"{urls[0]}/api/v1/me", login(urls[0], user_email, user_password, 1))
    user_id = me["user_id"]

    switches = []
    for n in range(ROUNDS):
        off = n % 2 == 0
        url = urls[n % len(urls)]
        status, _ = call("PATCH", f"{url}/api/v1/platform/features", root, {"exports": not off})
        assert status == 200, status
        started = time.monotonic()
        switches.append(until_all(urls, lambda u: ("exports" in call("GET", f"{u}/readyz")[1]["features_disabled"]) == off, started))
    report("kill_switch_propagation", switches)

    revocations = []
    for n in range(ROUNDS):
        token = login(urls[n % len(urls)], user_email, user_password, n + 2)
        for u in urls:
            assert call("GET", f"{u}/api/v1/me", token)[0] == 200
        url = urls[(n + 1) % len(urls)]
        status, _ = call("POST", f"{url}/api/v1/platform/sessions/revoke", root, {"user_id": user_id})
        assert status == 200, status
        started = time.monotonic()
        revocations.append(until_all(urls, lambda u: call("GET", f"{u}/api/v1/me", token)[0] == 401, started))
    report("session_revocation_propagation", revocations)


if __name__ == "__main__":
    main()
