"""Test-support server for Bulwark's third-party integrations: `python server.py PORT DIR`.

One threaded HTTP process on 127.0.0.1:PORT (started by `start_integrations` in
scripts/services.sh) that plays:

* an OAuth 2.0 authorization server for two providers, under /google and /zoom, built on
  authlib's Flask AuthorizationServer (AuthorizationCodeGrant with PKCE S256 required,
  RefreshTokenGrant, RevocationEndpoint). Consent is automatic, as the user named by
  `login_hint` (default ada@example.com). Zoom rotates refresh tokens; Google keeps them.
  POST /zoom/oauth/data/compliance records Zoom's data-compliance calls.
* fake provider APIs (/zoom-api/v2/..., /google-api/...), Bearer tokens checked against the
  tokens issued above;
* control endpoints for the tests (/control/log, /control/tokens, /control/fail,
  /control/expires_in), all
  keyed by user (login), since tests run in parallel against this one process;
* a webhook receiver, POST /hooks/<name>, whose state lives in files under DIR/hooks
  (<name>.secret, <name>.status, <name>.delay read; <name>.jsonl appended).

Webhook signatures are verified with the PyPI package `standardwebhooks` (pinned in
requirements.txt): Webhook(secret).verify(body, headers), 5 minutes' tolerance.
"""

import json
import os
import re
import secrets
import sys
import threading
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, Response, jsonify, request
from standardwebhooks.webhooks import Webhook
from werkzeug.serving import make_server

DEFAULT_LOGIN = "ada@example.com"
DEFAULT_EXPIRES_IN = 3600
CODE_LIFETIME = 600

PROVIDERS = {
    "google": {
        "client_id": "google-test-client",
        "client_secret": "google-test-secret",
        "scopes": ["openid", "email", "https://www.googleapis.com/auth/calendar.events"],
        "rotate_refresh": False,
    },
    "zoom": {
        "client_id": "zoom-test-client",
        "client_secret": "zoom-test-secret",
        "scopes": ["meeting:write", "user:read"],
        "rotate_refresh": True,
    },
}

LOCK = threading.RLock()  # guards every in-memory store below
HOOK_LOCK = threading.Lock()  # guards the files under DIR/hooks
HOOKS_DIR = None

CODES = {}  # code -> CodeRec
ACCESS = {}  # access token -> TokenRec
REFRESH = {}  # refresh token -> TokenRec (the record that first issued it)
EXPIRES = {}  # login -> expires_in for tokens issued from now on
FAILS = {}  # (login, what) -> remaining count
LOGS = {}  # login -> {"token": [...], "revoke": [...], "api": [...]}
COMPLIANCE = {}  # zoom user_id -> [entries]


def slug(login):
    return re.sub(r"[^A-Za-z0-9]", "-", login)


def zoom_user_id(login):
    return "zu-" + slug(login)


def user_log(login, kind, entry):
    with LOCK:
        LOGS.setdefault(login, {"token": [], "revoke": [], "api": []})[kind].append(entry)


def take_failure(login, what):
    """True (and one fewer left) when a failure of this kind is pending for this user."""
    with LOCK:
        left = FAILS.get((login, what), 0)
        if left > 0:
            FAILS[(login, what)] = left - 1
            return True
    return False


# --- models ----------------------------------------------------------------------------


class User:
    def __init__(self, login):
        self.login = login

    def get_user_id(self):
        return self.login


class Client:
    def __init__(self, provider):
        conf = PROVIDERS[provider]
        self.provider = provider
        self.client_id = conf["client_id"]
        self.client_secret = conf["client_secret"]
        self.scopes = conf["scopes"]
        self.redirect_re = re.compile(
            r"^http://(127\.0\.0\.1|localhost):[0-9]{1,5}/integrations/%s/callback$" % provider
        )

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri):
        return bool(redirect_uri and self.redirect_re.match(redirect_uri))

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        if endpoint == "revocation":
            return method in ("client_secret_basic", "client_secret_post", "anonymous")
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token")


class CodeRec:
    def __init__(self, code, client_id, redirect_uri, scope, login, challenge, method):
        self.code = code
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.login = login
        self.code_challenge = challenge
        self.code_challenge_method = method
        self.created = time.time()

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


class GrantRec:
    """One authorization (one code exchange); every token refreshed from it shares it."""

    def __init__(self, provider, login, scope):
        self.provider = provider
        self.login = login
        self.scope = scope
        self.revoked = False


class TokenRec:
    def __init__(self, grant, client_id, access_token, refresh_token, scope, expires_in):
        self.grant = grant
        self.client_id = client_id
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.scope = scope
        self.expires_in = expires_in
        self.issued_at = time.time()
        self.refresh_revoked = False

    def check_client(self, client):
        return client.client_id == self.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self):
        return self.grant.revoked

    def get_user(self):
        return User(self.grant.login)

    def get_client(self):
        return CLIENTS[self.grant.provider]


CLIENTS = {p: Client(p) for p in PROVIDERS}


# --- authlib grants --------------------------------------------------------------------


class S256Required(CodeChallenge):
    """PKCE for every client, confidential ones too, and S256 only."""

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge'")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        return super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code, req):
        data = req.payload.data
        rec = CodeRec(
            code,
            req.client.client_id,
            req.payload.redirect_uri,
            req.scope if hasattr(req, "scope") else req.payload.scope,
            req.user.login,
            data.get("code_challenge"),
            data.get("code_challenge_method"),
        )
        with LOCK:
            CODES[code] = rec
        return rec

    def query_authorization_code(self, code, client):
        with LOCK:
            rec = CODES.get(code)
        if rec and rec.client_id == client.client_id and time.time() - rec.created < CODE_LIFETIME:
            return rec
        return None

    def delete_authorization_code(self, authorization_code):
        with LOCK:
            CODES.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code):
        return User(authorization_code.login)


def make_refresh_grant(rotate):
    class RefreshTokenGrant(grants.RefreshTokenGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
        INCLUDE_NEW_REFRESH_TOKEN = rotate

        def authenticate_refresh_token(self, refresh_token):
            with LOCK:
                rec = REFRESH.get(refresh_token)
            if rec and not rec.refresh_revoked and not rec.grant.revoked:
                return rec
            return None

        def authenticate_user(self, refresh_token):
            return User(refresh_token.grant.login)

        def revoke_old_credential(self, refresh_token):
            if rotate:
                with LOCK:
                    refresh_token.refresh_revoked = True

    return RefreshTokenGrant


def make_revocation(provider):
    class Revocation(RevocationEndpoint):
        CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "anonymous"]

        def query_token(self, token_string, token_type_hint):
            rec, _ = find_token(provider, token_string, token_type_hint)
            return rec

        def revoke_token(self, token, req):
            with LOCK:
                token.grant.revoked = True

    return Revocation


def find_token(provider, token_string, hint=None):
    """(TokenRec, "access"|"refresh") for a token issued under this provider, else (None, "unknown")."""
    with LOCK:
        order = [("refresh", REFRESH), ("access", ACCESS)]
        if hint != "refresh_token":
            order.reverse()
        for kind, store in order:
            rec = store.get(token_string)
            if rec and rec.grant.provider == provider:
                return rec, kind
    return None, "unknown"


def make_server_for(app, provider):
    client = CLIENTS[provider]

    def query_client(client_id):
        return client if client_id == client.client_id else None

    def save_token(token, req):
        grant_type = req.payload.grant_type
        with LOCK:
            if grant_type == "refresh_token":
                old = req.refresh_token
                grant = old.grant
                refresh = token.get("refresh_token") or old.refresh_token
            else:
                grant = GrantRec(provider, req.user.login, token.get("scope", ""))
                refresh = token.get("refresh_token")
            rec = TokenRec(
                grant, client.client_id, token["access_token"], refresh,
                token.get("scope", grant.scope), token["expires_in"],
            )
            ACCESS[rec.access_token] = rec
            if token.get("refresh_token"):
                REFRESH[token["refresh_token"]] = rec

    def generate(grant_type, client, user=None, scope=None, expires_in=None,
                 include_refresh_token=True):
        with LOCK:
            seconds = EXPIRES.get(user.login if user else None, DEFAULT_EXPIRES_IN)
        token = {
            "access_token": secrets.token_urlsafe(48),
            "token_type": "Bearer",
            "expires_in": seconds,
            "scope": scope or "",
        }
        if include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(48)
        return token

    def anonymous(query_client_, req):
        # Revocation without any client credentials: accepted (RFC 7009 leaves it open).
        if req.headers.get("Authorization") or req.form.get("client_secret"):
            return None
        cid = req.form.get("client_id")
        if cid and cid != client.client_id:
            return None
        return client

    server = AuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", generate)
    server.scopes_supported = list(client.scopes)
    server.register_grant(AuthorizationCodeGrant, [S256Required(required=True)])
    server.register_grant(make_refresh_grant(PROVIDERS[provider]["rotate_refresh"]))
    server.register_client_auth_method("anonymous", anonymous)
    server.register_endpoint(make_revocation(provider))
    return server


# --- the app ---------------------------------------------------------------------------

app = Flask(__name__)
SERVERS = {p: make_server_for(app, p) for p in PROVIDERS}


def json_error(status, error):
    return Response(json.dumps({"error": error}), status=status, mimetype="application/json")


def provider_or_404(provider):
    if provider not in PROVIDERS:
        return None
    return SERVERS[provider]


@app.get("/<provider>/authorize")
def authorize(provider):
    server = provider_or_404(provider)
    if server is None:
        return json_error(404, "not_found")
    user = User(request.args.get("login_hint") or DEFAULT_LOGIN)
    try:
        grant = server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return server.handle_error_response(None, error)
    return server.create_authorization_response(grant_user=user, grant=grant)


def client_auth_kind():
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        return "basic"
    if request.form.get("client_secret"):
        return "post"
    return "none"


@app.post("/<provider>/token")
def token(provider):
    server = provider_or_404(provider)
    if server is None:
        return json_error(404, "not_found")
    grant_type = request.form.get("grant_type")
    login = None
    with LOCK:
        if grant_type == "authorization_code":
            rec = CODES.get(request.form.get("code", ""))
            login = rec.login if rec else None
        elif grant_type == "refresh_token":
            rec, _ = find_token(provider, request.form.get("refresh_token", ""), "refresh_token")
            login = rec.grant.login if rec else None
    entry = {
        "provider": provider,
        "grant_type": grant_type,
        "client_auth": client_auth_kind(),
        "pkce_verifier_sent": bool(request.form.get("code_verifier")),
    }
    if login and grant_type == "refresh_token" and take_failure(login, "refresh"):
        response = json_error(400, "invalid_grant")
    else:
        response = server.create_token_response()
    if login:
        user_log(login, "token", dict(entry, ok=response.status_code == 200, at=time.time()))
    return response


@app.post("/<provider>/revoke")
def revoke(provider):
    server = provider_or_404(provider)
    if server is None:
        return json_error(404, "not_found")
    rec, kind = find_token(provider, request.form.get("token", ""), request.form.get("token_type_hint"))
    login = rec.grant.login if rec else None
    if login and take_failure(login, "revoke"):
        user_log(login, "revoke", {"provider": provider, "token_kind": kind, "ok": False, "at": time.time()})
        return json_error(503, "temporarily_unavailable")
    response = server.create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)
    if login:
        user_log(login, "revoke", {"provider": provider, "token_kind": kind,
                                   "ok": response.status_code == 200, "at": time.time()})
    return response


@app.post("/zoom/oauth/data/compliance")
def zoom_compliance():
    auth = request.authorization
    conf = PROVIDERS["zoom"]
    if not (auth and auth.type == "basic" and auth.username == conf["client_id"]
            and secrets.compare_digest(auth.password or "", conf["client_secret"])):
        return Response(json.dumps({"error": "unauthorized"}), status=401, mimetype="application/json",
                        headers={"WWW-Authenticate": 'Basic realm="zoom"'})
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_error(400, "invalid_request")
    user_id = str(body.get("user_id", ""))
    failed = take_failure(user_id, "compliance")  # compliance failures are keyed by Zoom user id
    status = 500 if failed else 200
    with LOCK:
        COMPLIANCE.setdefault(user_id, []).append(
            {"body": body, "ok": not failed, "status": status, "at": time.time()})
    if failed:
        return json_error(500, "server_error")
    return jsonify({})


# --- fake provider APIs ----------------------------------------------------------------


def bearer(provider):
    """The TokenRec behind the request's Bearer token when it is valid for this provider."""
    auth = request.headers.get("Authorization", "")
    if not auth.lower().startswith("bearer "):
        return None
    with LOCK:
        rec = ACCESS.get(auth[7:].strip())
        if rec and rec.grant.provider == provider and not rec.grant.revoked and not rec.is_expired():
            return rec
    return None


def api_call(provider, handler):
    rec = bearer(provider)
    body = request.get_json(silent=True) if request.method == "POST" else None
    if rec is None:
        response = json_error(401, "invalid_token")
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        # An unknown token has no user to log it under.
        auth = request.headers.get("Authorization", "")
        with LOCK:
            known = ACCESS.get(auth[7:].strip()) if auth.lower().startswith("bearer ") else None
        login = known.grant.login if known else None
    else:
        login = rec.grant.login
        response = handler(login, body)
    if login:
        user_log(login, "api", {"provider": provider, "method": request.method, "path": request.path,
                                "ok": 200 <= response.status_code < 300,
                                "status": response.status_code, "body": body, "at": time.time()})
    return response


@app.get("/zoom-api/v2/users/me")
def zoom_me():
    def handler(login, _body):
        return jsonify({"id": zoom_user_id(login), "email": login, "account_id": "za-" + slug(login)})
    return api_call("zoom", handler)


@app.post("/zoom-api/v2/users/me/meetings")
def zoom_meeting():
    def handler(login, body):
        if not isinstance(body, dict):
            return json_error(400, "invalid_request")
        mid = secrets.randbelow(9 * 10**10) + 10**10
        out = {"id": mid, "join_url": f"https://zoom.example/j/{mid}", "topic": body.get("topic"),
               "start_time": body.get("start_time"), "duration": body.get("duration")}
        return Response(json.dumps(out), status=201, mimetype="application/json")
    return api_call("zoom", handler)


@app.get("/google-api/oauth2/v3/userinfo")
def google_userinfo():
    def handler(login, _body):
        return jsonify({"sub": "gs-" + slug(login), "email": login, "email_verified": True})
    return api_call("google", handler)


@app.post("/google-api/calendar/v3/calendars/primary/events")
def google_event():
    def handler(login, body):
        if not isinstance(body, dict):
            return json_error(400, "invalid_request")
        start, end = body.get("start"), body.get("end")
        if not (isinstance(start, dict) and start.get("dateTime")
                and isinstance(end, dict) and end.get("dateTime")):
            return json_error(400, "invalid_request")
        eid = secrets.token_hex(13)
        return jsonify({"id": eid, "htmlLink": f"https://calendar.example/event?eid={eid}",
                        "status": "confirmed", "summary": body.get("summary")})
    return api_call("google", handler)


# --- control ---------------------------------------------------------------------------


@app.get("/control/log")
def control_log():
    login = request.args.get("user", "")
    with LOCK:
        logs = LOGS.get(login, {"token": [], "revoke": [], "api": []})
        out = {k: list(v) for k, v in logs.items()}
        out["compliance"] = list(COMPLIANCE.get(zoom_user_id(login), []))
    return jsonify(out)


@app.get("/control/tokens")
def control_tokens():
    """Every access and refresh token issued to a user, so a test can look for them where
    they must never appear (responses, logs, the database file)."""
    login = request.args.get("user", "")
    with LOCK:
        found = set()
        for rec in ACCESS.values():
            if rec.grant.login == login:
                found.add(rec.access_token)
                if rec.refresh_token:
                    found.add(rec.refresh_token)
    return jsonify(sorted(found))


@app.post("/control/fail")
def control_fail():
    body = request.get_json(silent=True) or {}
    login, what, count = body.get("user"), body.get("what"), body.get("count", 1)
    if not login or what not in ("refresh", "compliance", "revoke") or not isinstance(count, int):
        return json_error(400, "invalid_request")
    key = (zoom_user_id(login), what) if what == "compliance" else (login, what)
    with LOCK:
        FAILS[key] = count
    return jsonify({})


@app.post("/control/expires_in")
def control_expires_in():
    body = request.get_json(silent=True) or {}
    login, seconds = body.get("user"), body.get("seconds")
    if not login or not isinstance(seconds, int):
        return json_error(400, "invalid_request")
    with LOCK:
        EXPIRES[login] = seconds
    return jsonify({})


# --- webhook receiver ------------------------------------------------------------------

HOOK_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def next_status(path):
    """The first line of the .status file; consumed unless it is the last one."""
    text = read_text(path)
    if text is None:
        return 204
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return 204
    if len(lines) > 1:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines[1:]) + "\n")
        os.replace(tmp, path)
    return int(lines[0])


@app.post("/hooks/<name>")
def hook(name):
    if not HOOK_NAME.match(name):
        return json_error(404, "not_found")
    base = os.path.join(HOOKS_DIR, name)
    raw = request.get_data(cache=True)
    headers = {k.lower(): v for k, v in request.headers.items()}
    secret = read_text(base + ".secret")
    verified = False
    if secret is not None and secret.strip():
        try:
            Webhook(secret.strip()).verify(raw, headers, json_parse=False)
            verified = True
        except Exception:
            verified = False
    with HOOK_LOCK:
        status = next_status(base + ".status")
        line = {
            "at": time.time(),
            "id": headers.get("webhook-id"),
            "timestamp": headers.get("webhook-timestamp"),
            "signature": headers.get("webhook-signature"),
            "body": raw.decode("utf-8", errors="replace"),
            "verified": verified,
            "status": status,
        }
        with open(base + ".jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()
    delay = read_text(base + ".delay")
    if delay is not None and delay.strip():
        time.sleep(float(delay.strip()))
    response = Response(b"" if status == 204 or 300 <= status < 400 else b"ok", status=status)
    if 300 <= status < 400:
        response.headers["Location"] = f"/hooks/{name}-redirected"
    return response


def main():
    global HOOKS_DIR
    port, directory = int(sys.argv[1]), sys.argv[2]
    HOOKS_DIR = os.path.join(directory, "hooks")
    os.makedirs(HOOKS_DIR, exist_ok=True)
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    print(f"listening on {port}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
