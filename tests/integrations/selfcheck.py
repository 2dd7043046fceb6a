"""Self-check of server.py: `python selfcheck.py URL DIR` against a running server (stdlib only).

Exercises the OAuth flows (PKCE S256), refresh (Zoom rotates, Google keeps), revocation, the
Zoom compliance endpoint, the fake APIs, the control endpoints and the webhook receiver, whose
signatures it computes itself with hmac/hashlib/base64. Prints "N passed, 0 failed".
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

URL, DIR = sys.argv[1], sys.argv[2]
CLIENTS = {"google": ("google-test-client", "google-test-secret"),
           "zoom": ("zoom-test-client", "zoom-test-secret")}
SCOPES = {"google": "openid email https://www.googleapis.com/auth/calendar.events",
          "zoom": "meeting:write user:read"}
PASSED = 0


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def http(method, path, data=None, headers=None, form=None, basic=None, bearer=None, raw=None):
    headers = dict(headers or {})
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif data is not None:
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    elif raw is not None:
        body = raw
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    if bearer:
        headers["Authorization"] = "Bearer " + bearer
    req = urllib.request.Request(URL + path, data=body, method=method, headers=headers)
    try:
        resp = OPENER.open(req, timeout=10)
    except urllib.error.HTTPError as e:
        resp = e
    text = resp.read().decode()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return resp.status, parsed, resp.headers


def check(cond, what):
    global PASSED
    if not cond:
        print("FAILED:", what)
        print("0 passed, 1 failed")
        sys.exit(1)
    PASSED += 1


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(p, login, challenge, method="S256", scope=None, port=4321):
    params = {"response_type": "code", "client_id": CLIENTS[p][0], "state": "st-1",
              "redirect_uri": f"http://127.0.0.1:{port}/api/v1/integrations/{p}/callback",
              "scope": scope or SCOPES[p], "login_hint": login}
    if challenge is not None:
        params["code_challenge"] = challenge
    if method is not None:
        params["code_challenge_method"] = method
    status, body, headers = http("GET", f"/{p}/authorize?" + urllib.parse.urlencode(params))
    loc = headers.get("Location", "")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(loc).query))
    return status, q, params["redirect_uri"]


def exchange(p, code, redirect_uri, verifier, auth="basic"):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    if auth == "basic":
        return http("POST", f"/{p}/token", form=form, basic=CLIENTS[p])
    form.update(client_id=CLIENTS[p][0], client_secret=CLIENTS[p][1])
    return http("POST", f"/{p}/token", form=form)


def refresh(p, rt, auth="post"):
    form = {"grant_type": "refresh_token", "refresh_token": rt}
    if auth == "basic":
        return http("POST", f"/{p}/token", form=form, basic=CLIENTS[p])
    form.update(client_id=CLIENTS[p][0], client_secret=CLIENTS[p][1])
    return http("POST", f"/{p}/token", form=form)


def connect(p, login, auth="basic"):
    verifier, challenge = pkce()
    status, q, redirect_uri = authorize(p, login, challenge)
    check(status == 302 and q.get("code") and q.get("state") == "st-1", f"{p} authorize: {status} {q}")
    status, tok, _ = exchange(p, q["code"], redirect_uri, verifier, auth)
    check(status == 200 and tok["token_type"] == "Bearer" and len(tok["access_token"]) > 30
          and len(tok["refresh_token"]) > 30 and tok["expires_in"] == 3600 and tok["scope"],
          f"{p} exchange: {status} {tok}")
    return tok


def log(login):
    return http("GET", "/control/log?" + urllib.parse.urlencode({"user": login}))[1]


def main():
    run = secrets.token_hex(4)
    ada, bob = f"ada-{run}@example.com", f"bob.{run}@example.com"

    # Auth code + PKCE, both client auth styles.
    gtok = connect("google", ada, "basic")
    ztok = connect("zoom", ada, "post")
    entries = log(ada)["token"]
    check([(e["provider"], e["client_auth"], e["pkce_verifier_sent"], e["ok"]) for e in entries]
          == [("google", "basic", True, True), ("zoom", "post", True, True)], f"token log {entries}")

    # Wrong verifier; missing verifier; no challenge; plain; code reuse; bad scope; bad redirect.
    verifier, challenge = pkce()
    _, q, ru = authorize("google", bob, challenge)
    status, body, _ = exchange("google", q["code"], ru, verifier[:-2] + "xx")
    check(status == 400 and body["error"] == "invalid_grant", f"wrong verifier {status} {body}")
    _, q, ru = authorize("google", bob, challenge)
    status, body, _ = exchange("google", q["code"], ru, None)
    check(status == 400, f"missing verifier {status} {body}")
    status, q, _ = authorize("google", bob, None, None)
    check(q.get("error") == "invalid_request" and "code" not in q or status == 400, f"no challenge {status} {q}")
    status, q, _ = authorize("zoom", bob, challenge, "plain")
    check(q.get("error") == "invalid_request" and "code" not in q or status == 400, f"plain {status} {q}")
    status, q, _ = authorize("zoom", bob, challenge, "S256", scope="meeting:write admin")
    check(q.get("error") == "invalid_scope", f"scope {status} {q}")
    _, q, ru = authorize("zoom", bob, challenge, "S256", scope="user:read")
    check("code" in q, "subset scope")
    status, body, _ = exchange("google", q["code"], ru, verifier)
    check(status == 401 or status == 400, f"zoom code at google {status} {body}")
    status, tok, _ = exchange("zoom", q["code"], ru, verifier)
    check(status == 200 and tok["scope"] == "user:read", f"zoom subset exchange {status} {tok}")
    status, body, _ = exchange("zoom", q["code"], ru, verifier)
    check(status == 400 and body["error"] == "invalid_grant", "code reuse")
    params = {"response_type": "code", "client_id": "zoom-test-client", "scope": "user:read",
              "redirect_uri": "http://evil.example/api/v1/integrations/zoom/callback",
              "code_challenge": challenge, "code_challenge_method": "S256"}
    status, body, headers = http("GET", "/zoom/authorize?" + urllib.parse.urlencode(params))
    check(status == 400 and "Location" not in headers, f"bad redirect {status} {body}")
    status, body, _ = http("GET", "/google/authorize?" + urllib.parse.urlencode(
        dict(params, client_id="zoom-test-client",
             redirect_uri="http://127.0.0.1:1/api/v1/integrations/google/callback")))
    check(status == 400, "zoom client under /google")
    check(log(bob)["token"][0]["ok"] is False, "failed exchange logged")

    # Fake APIs.
    status, me, _ = http("GET", "/zoom-api/v2/users/me", bearer=ztok["access_token"])
    check(status == 200 and me == {"id": f"zu-ada-{run}-example-com", "email": ada,
                                   "account_id": f"za-ada-{run}-example-com"}, f"zoom me {me}")
    status, me, _ = http("GET", "/zoom-api/v2/users/me", bearer=gtok["access_token"])
    check(status == 401 and me == {"error": "invalid_token"}, "google token at zoom")
    status, m, _ = http("POST", "/zoom-api/v2/users/me/meetings", bearer=ztok["access_token"],
                        data={"topic": "T", "type": 2, "start_time": "2030-01-01T10:00:00Z", "duration": 30})
    check(status == 201 and isinstance(m["id"], int) and m["join_url"] == f"https://zoom.example/j/{m['id']}"
          and m["topic"] == "T" and m["duration"] == 30, f"meeting {status} {m}")
    status, ui, _ = http("GET", "/google-api/oauth2/v3/userinfo", bearer=gtok["access_token"])
    check(status == 200 and ui["email"] == ada and ui["email_verified"] is True and ui["sub"].startswith("gs-"), "userinfo")
    ev = {"summary": "S", "start": {"dateTime": "2030-01-01T10:00:00Z"}, "end": {"dateTime": "2030-01-01T11:00:00Z"},
          "attendees": [{"email": "x@example.com"}]}
    status, e, _ = http("POST", "/google-api/calendar/v3/calendars/primary/events", bearer=gtok["access_token"], data=ev)
    check(status == 200 and e["status"] == "confirmed" and e["htmlLink"].endswith(e["id"]) and e["summary"] == "S", f"event {e}")
    status, e, _ = http("POST", "/google-api/calendar/v3/calendars/primary/events", bearer=gtok["access_token"],
                        data={"summary": "S", "start": {"dateTime": "2030-01-01T10:00:00Z"}})
    check(status == 400, "event without end")
    api = log(ada)["api"]
    check([(a["provider"], a["method"], a["ok"]) for a in api] == [
        ("zoom", "GET", True), ("zoom", "GET", False), ("zoom", "POST", True), ("google", "GET", True),
        ("google", "POST", True), ("google", "POST", False)], f"api log {api}")

    # Refresh: zoom rotates, google keeps.
    status, z2, _ = refresh("zoom", ztok["refresh_token"], "basic")
    check(status == 200 and z2["refresh_token"] != ztok["refresh_token"], f"zoom refresh {z2}")
    status, body, _ = refresh("zoom", ztok["refresh_token"])
    check(status == 400 and body["error"] == "invalid_grant", "old zoom refresh token")
    status, g2, _ = refresh("google", gtok["refresh_token"])
    check(status == 200 and "refresh_token" not in g2 and g2["access_token"] != gtok["access_token"], f"google refresh {g2}")
    status, g3, _ = refresh("google", gtok["refresh_token"])
    check(status == 200, "google refresh token reusable")
    status, body, _ = refresh("google", z2["refresh_token"])
    check(status == 400, "zoom refresh token at google")

    # control/fail refresh.
    http("POST", "/control/fail", data={"user": ada, "what": "refresh", "count": 2})
    for _ in range(2):
        status, body, _ = refresh("google", gtok["refresh_token"])
        check(status == 400 and body["error"] == "invalid_grant", "injected refresh failure")
    status, g4, _ = refresh("google", gtok["refresh_token"])
    check(status == 200, "refresh after injected failures")
    rlog = [e for e in log(ada)["token"] if e["grant_type"] == "refresh_token"]
    check([e["ok"] for e in rlog][-3:] == [False, False, True], f"refresh log {rlog}")

    # expires_in.
    http("POST", "/control/expires_in", data={"user": bob, "seconds": 1})
    btok = connect_expiring("zoom", bob)
    check(btok["expires_in"] == 1, "expires_in")
    check(http("GET", "/zoom-api/v2/users/me", bearer=btok["access_token"])[0] == 200, "fresh token ok")
    time.sleep(1.2)
    check(http("GET", "/zoom-api/v2/users/me", bearer=btok["access_token"])[0] == 401, "expired token")
    http("POST", "/control/expires_in", data={"user": bob, "seconds": 3600})

    # Revocation: refresh token revokes the grant's access tokens; without client auth too.
    status, _, _ = http("POST", "/google/revoke", form={"token": gtok["refresh_token"], "token_type_hint": "refresh_token"},
                        basic=CLIENTS["google"])
    check(status == 200, "revoke")
    for t in (gtok, g2, g3, g4):
        check(http("GET", "/google-api/oauth2/v3/userinfo", bearer=t["access_token"])[0] == 401, "revoked access")
    check(refresh("google", gtok["refresh_token"])[0] == 400, "revoked refresh")
    http("POST", "/control/fail", data={"user": ada, "what": "revoke", "count": 1})
    status, _, _ = http("POST", "/zoom/revoke", form={"token": z2["access_token"]})
    check(status == 503, "injected revoke failure")
    status, _, _ = http("POST", "/zoom/revoke", form={"token": z2["access_token"]})
    check(status == 200, "revoke without client auth")
    check(http("GET", "/zoom-api/v2/users/me", bearer=z2["access_token"])[0] == 401, "zoom revoked")
    check(refresh("zoom", z2["refresh_token"])[0] == 400, "zoom refresh revoked")
    check(http("POST", "/zoom/revoke", form={"token": "unknown"})[0] == 200, "unknown token revoke")
    check(http("POST", "/zoom/revoke", form={"token": "x"}, basic=("zoom-test-client", "bad"))[0] == 401,
          "revoke with wrong secret")
    rv = log(ada)["revoke"]
    check([(r["provider"], r["token_kind"]) for r in rv] == [("google", "refresh"), ("zoom", "access"), ("zoom", "access")],
          f"revoke log {rv}")

    # Compliance.
    cbody = {"client_id": "zoom-test-client", "user_id": f"zu-ada-{run}-example-com", "account_id": "za-x",
             "deauthorization_event_received": {"user_id": "u"}, "compliance_completed": True}
    check(http("POST", "/zoom/oauth/data/compliance", data=cbody)[0] == 401, "compliance without auth")
    check(http("POST", "/zoom/oauth/data/compliance", data=cbody, basic=("zoom-test-client", "x"))[0] == 401, "bad auth")
    http("POST", "/control/fail", data={"user": ada, "what": "compliance", "count": 1})
    check(http("POST", "/zoom/oauth/data/compliance", data=cbody, basic=CLIENTS["zoom"])[0] == 500, "injected compliance")
    status, body, _ = http("POST", "/zoom/oauth/data/compliance", data=cbody, basic=CLIENTS["zoom"])
    check(status == 200 and body == {}, "compliance ok")
    comp = log(ada)["compliance"]
    check(len(comp) == 2 and comp[1]["body"] == cbody and comp[1]["ok"] and not comp[0]["ok"], f"compliance log {comp}")
    check(log(bob)["compliance"] == [], "compliance is per user")

    webhooks(run)
    print(f"{PASSED} passed, 0 failed")


def connect_expiring(p, login):
    verifier, challenge = pkce()
    _, q, ru = authorize(p, login, challenge)
    return exchange(p, q["code"], ru, verifier)[1]


def sign(secret, msg_id, ts, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def webhooks(run):
    hooks = os.path.join(DIR, "hooks")
    name = f"h-{run}"
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with open(os.path.join(hooks, name + ".secret"), "w") as f:
        f.write(secret + "\n")
    with open(os.path.join(hooks, name + ".status"), "w") as f:
        f.write("500\n307\n200\n")
    body = json.dumps({"type": "contact.created", "data": {"id": 1}}).encode()
    ts = str(int(time.time()))
    good = sign(secret, "msg_1", ts, body)
    hdr = {"webhook-id": "msg_1", "webhook-timestamp": ts, "Content-Type": "application/json"}
    statuses = []
    for sig in (good, "v1,AAAA " + good, "v1," + base64.b64encode(b"x" * 32).decode(), None):
        h = dict(hdr)
        if sig:
            h["webhook-signature"] = sig
        status, _, headers = http("POST", f"/hooks/{name}", raw=body, headers=h)
        statuses.append((status, headers.get("Location")))
    check(statuses == [(500, None), (307, f"/hooks/{name}-redirected"), (200, None), (200, None)], f"statuses {statuses}")
    old = str(int(time.time()) - 600)
    http("POST", f"/hooks/{name}", raw=body,
         headers=dict(hdr, **{"webhook-timestamp": old, "webhook-signature": sign(secret, "msg_1", old, body)}))
    with open(os.path.join(hooks, name + ".jsonl")) as f:
        lines = [json.loads(line) for line in f]
    check([x["verified"] for x in lines] == [True, True, False, False, False], f"verified {lines}")
    check(lines[0]["body"] == body.decode() and lines[0]["id"] == "msg_1" and lines[0]["timestamp"] == ts
          and lines[0]["signature"] == good and lines[0]["status"] == 500 and lines[2]["status"] == 200, f"line {lines[0]}")
    # No secret -> unverified, default 204; delay.
    with open(os.path.join(hooks, f"n-{run}.delay"), "w") as f:
        f.write("0.5")
    t0 = time.time()
    status, _, _ = http("POST", f"/hooks/n-{run}", raw=body, headers=dict(hdr, **{"webhook-signature": good}))
    check(status == 204 and time.time() - t0 >= 0.5, "no secret, delay")
    with open(os.path.join(hooks, f"n-{run}.jsonl")) as f:
        check(json.loads(f.readline())["verified"] is False, "no secret unverified")


if __name__ == "__main__":
    main()
