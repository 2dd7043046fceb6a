"""Schemathesis hooks: Bulwark's own checks on every response the fuzzer sees."""

import json

import schemathesis

# Keys that carry credentials. Only the endpoints that issue credentials may answer with them.
SECRET_KEYS = {"access_token", "refresh_token", "client_secret", "password", "password_hash",
               "secret", "key", "mfa_token", "backup_codes", "token"}
ISSUERS = {
    ("POST", "/api/v1/auth/login"): {"access_token", "refresh_token", "mfa_token"},
    ("POST", "/api/v1/auth/refresh"): {"access_token", "refresh_token"},
    ("POST", "/api/v1/auth/mfa/verify"): {"access_token", "refresh_token"},
    ("POST", "/api/v1/auth/webauthn/login/finish"): {"access_token", "refresh_token"},
    ("POST", "/api/v1/auth/mfa/totp/setup"): {"secret"},
    ("POST", "/api/v1/auth/mfa/totp/confirm"): {"backup_codes"},
    ("POST", "/api/v1/auth/mfa/backup-codes"): {"backup_codes"},
    ("POST", "/api/v1/api-keys"): {"key"},
    ("POST", "/api/v1/invitations"): {"token"},
    ("POST", "/api/v1/webhooks"): {"secret"},
}


def _keys(value, path=""):
    if isinstance(value, dict):
        for name, inner in value.items():
            yield name, f"{path}.{name}"
            yield from _keys(inner, f"{path}.{name}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _keys(inner, f"{path}[{index}]")


@schemathesis.check
def no_credentials_in_responses(ctx, response, case):
    """No response outside the credential-issuing endpoints carries a credential-named key."""
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if "json" not in content_type or not response.content:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    allowed = ISSUERS.get((case.method.upper(), case.operation.path), set())
    for name, where in _keys(body):
        if name in SECRET_KEYS and name not in allowed:
            raise AssertionError(f"credential-named key `{where}` in the response")
    return None
