//! OAuth 2.0 with the providers: the authorization-code flow with PKCE (S256, the verifier
//! kept on the server, sealed), a `state` that carries who asked and is MACed, refresh and
//! revocation. Calls to the provider go through one client: 10 s deadline, no redirects, and
//! errors reduced to a status and the OAuth `error` code (never a body that might echo a
//! token).

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::Provider;
use crate::app::AppState;
use crate::clock::Timestamp;
use crate::config::OAuthProvider;
use crate::error::{DomainError, DomainResult};
use crate::ids::UserId;

/// How long a connect may take from `connect` to the callback.
pub const STATE_LIFETIME: Duration = Duration::from_secs(600);

/// The one HTTP client for providers.
pub fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Bulwark/", env!("CARGO_PKG_VERSION")))
            .build()
            // Invariant: a builder with only these options fails only when no TLS backend
            // can initialise, which the application's start-up already proved it can.
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

/// What the `state` parameter carries (base64url JSON, then `.` and a base64url MAC).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StateClaims {
    pub user_id: UserId,
    pub provider: String,
    /// Unix seconds when the connect started.
    pub ts: i64,
    /// 32 random bytes, base64url: the key of the stored connect.
    pub nonce: String,
}

fn state_mac(app: &AppState, payload: &str) -> [u8; 32] {
    app.keys().derive_mac("oauth-state", payload.as_bytes())
}

pub fn sign_state(app: &AppState, claims: &StateClaims) -> DomainResult<String> {
    let json = serde_json::to_vec(claims).map_err(|err| DomainError::Internal(err.to_string()))?;
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mac = URL_SAFE_NO_PAD.encode(state_mac(app, &payload));
    Ok(format!("{payload}.{mac}"))
}

/// The claims of a `state` whose MAC holds; which check failed otherwise.
pub fn open_state(app: &AppState, state: &str) -> Result<StateClaims, &'static str> {
    let (payload, mac) = state.split_once('.').ok_or("malformed")?;
    let offered = URL_SAFE_NO_PAD.decode(mac).map_err(|_| "malformed")?;
    if !bool::from(offered.as_slice().ct_eq(&state_mac(app, payload))) {
        return Err("altered");
    }
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| "malformed")?;
    serde_json::from_slice(&json).map_err(|_| "malformed")
}

/// The stored form of a nonce (only its hash is kept).
pub fn nonce_hash(nonce: &str) -> Vec<u8> {
    Sha256::digest(nonce.as_bytes()).to_vec()
}

/// A new PKCE verifier (32 random bytes, base64url: 43 characters) and its S256 challenge.
pub fn pkce() -> (Zeroizing<String>, String) {
    let verifier = Zeroizing::new(URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<32>()));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<32>())
}

/// Where the provider sends the browser back: the console's page, which hands `code` and
/// `state` on to the session that started the connect (`console::integrations`). API
/// clients pass them to `GET /api/v1/integrations/{provider}/callback` themselves.
pub fn redirect_uri(app: &AppState, provider: Provider) -> String {
    let base = app.config().public_url.as_str().trim_end_matches('/');
    format!("{base}/integrations/{}/callback", provider.as_str())
}

/// The provider's authorization URL for one connect.
pub fn authorize_url(
    app: &AppState,
    provider: Provider,
    settings: &OAuthProvider,
    state: &str,
    challenge: &str,
) -> String {
    let mut url = settings.auth_url.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &settings.client_id)
            .append_pair("redirect_uri", &redirect_uri(app, provider))
            .append_pair("scope", provider.scopes())
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        if provider == Provider::Google {
            // A refresh token, and asked for again on a reconnect.
            query.append_pair("access_type", "offline").append_pair("prompt", "consent");
        }
    }
    url.to_string()
}

/// A token endpoint's answer.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<i64>,
    #[zeroize(skip)]
    pub scope: Option<String>,
}

impl Tokens {
    pub fn expires_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.expires_in
            .filter(|s| *s > 0)
            .map(|s| now.plus(Duration::from_secs(u64::try_from(s).unwrap_or(0))))
    }
}

#[derive(Deserialize)]
struct OAuthError {
    error: Option<String>,
}

/// What went wrong with a provider call, without its body.
async fn failure(what: &str, response: reqwest::Response) -> DomainError {
    let status = response.status().as_u16();
    let code = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<OAuthError>(&b).ok())
        .and_then(|e| e.error)
        .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or_default();
    DomainError::Upstream(format!("{what}: {status} {code}"))
}

fn transport(what: &str, err: &reqwest::Error) -> DomainError {
    let kind = if err.is_timeout() { "timed out" } else { "failed" };
    DomainError::Upstream(format!("{what}: {kind}"))
}

/// POSTs a form to the token endpoint with the client's credentials (HTTP Basic, the
/// method both providers document).
async fn token_request(settings: &OAuthProvider, form: &[(&str, &str)]) -> DomainResult<Tokens> {
    let body =
        serde_urlencoded::to_string(form).map_err(|e| DomainError::Internal(e.to_string()))?;
    let response = client()
        .post(settings.token_url.clone())
        .basic_auth(&settings.client_id, Some(settings.client_secret.expose()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|err| transport("token", &err))?;
    if !response.status().is_success() {
        return Err(failure("token", response).await);
    }
    let bytes = response.bytes().await.map_err(|err| transport("token", &err))?;
    serde_json::from_slice(&bytes).map_err(|_| DomainError::Upstream("token: not JSON".into()))
}

pub async fn exchange(
    app: &AppState,
    provider: Provider,
    settings: &OAuthProvider,
    code: &str,
    verifier: &str,
) -> DomainResult<Tokens> {
    let redirect = redirect_uri(app, provider);
    token_request(
        settings,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect),
            ("code_verifier", verifier),
        ],
    )
    .await
}

pub async fn refresh(settings: &OAuthProvider, refresh_token: &str) -> DomainResult<Tokens> {
    token_request(settings, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
        .await
}

/// RFC 7009 revocation of `token` (a refresh token revokes the whole grant at both
/// providers).
pub async fn revoke(settings: &OAuthProvider, token: &str) -> DomainResult<()> {
    revoke_with(&settings.revoke_url, &settings.client_id, settings.client_secret.expose(), token)
        .await
}

/// `revoke` with the settings copied out (for a task that outlives the request).
pub async fn revoke_with(
    url: &url::Url,
    client_id: &str,
    client_secret: &str,
    token: &str,
) -> DomainResult<()> {
    let body = serde_urlencoded::to_string([("token", token)])
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    let response = client()
        .post(url.clone())
        .basic_auth(client_id, Some(client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|err| transport("revoke", &err))?;
    if response.status().is_success() { Ok(()) } else { Err(failure("revoke", response).await) }
}

/// Calls the provider's API with a bearer token: `GET` without a body, `POST` with JSON.
pub async fn api(
    settings: &OAuthProvider,
    access_token: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> DomainResult<serde_json::Value> {
    let base = settings.api_url.as_str().trim_end_matches('/');
    let url = format!("{base}{path}");
    let request = match body {
        None => client().get(url),
        Some(body) => client()
            .post(url)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).map_err(|e| DomainError::Internal(e.to_string()))?),
    };
    let response = request
        .bearer_auth(access_token)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|err| transport(path, &err))?;
    if !response.status().is_success() {
        return Err(failure(path, response).await);
    }
    let bytes = response.bytes().await.map_err(|err| transport(path, &err))?;
    serde_json::from_slice(&bytes).map_err(|_| DomainError::Upstream(format!("{path}: not JSON")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenges_are_the_s256_of_their_verifier() {
        let (verifier, challenge) = pkce();
        assert_eq!(verifier.len(), 43);
        assert_eq!(challenge, URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())));
        // RFC 7636 appendix B's example.
        let rfc =
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert_eq!(rfc, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_ne!(pkce().0, verifier);
    }
}
