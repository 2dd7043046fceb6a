//! The integrations tests' server (tests/integrations/server.py, started by
//! scripts/services.sh `start_integrations`): an OAuth authorization server for "google" and
//! "zoom" that checks PKCE itself, fakes of their APIs, and a webhook receiver that verifies
//! Standard Webhooks signatures with the `standardwebhooks` package (an implementation
//! independent of Bulwark's).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is unset: run the suite through scripts/test.sh (start_integrations)")
    })
}

/// The server's base URL.
pub fn base() -> String {
    env("BULWARK_TEST_INTEGRATIONS_URL")
}

/// The port the server listens on.
pub fn port() -> u16 {
    base().rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port")
}

/// A webhook receiver of its own: `POST /hooks/<name>`.
pub struct Hook {
    pub name: String,
}

impl Hook {
    pub fn new(tag: &str) -> Hook {
        Hook { name: format!("{tag}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]) }
    }

    fn file(&self, suffix: &str) -> PathBuf {
        PathBuf::from(env("BULWARK_TEST_INTEGRATIONS_DIR"))
            .join("hooks")
            .join(format!("{}{suffix}", self.name))
    }

    /// The URL of this receiver through `host` (an IP literal or a name the test DNS
    /// server answers for).
    pub fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/hooks/{}", port(), self.name)
    }

    /// The secret the receiver verifies with.
    pub fn set_secret(&self, secret: &str) {
        std::fs::write(self.file(".secret"), secret).expect("write the secret");
    }

    /// Its answers, one per request, the last repeating.
    pub fn answer(&self, statuses: &[u16]) {
        let text: Vec<String> = statuses.iter().map(u16::to_string).collect();
        std::fs::write(self.file(".status"), text.join("\n") + "\n").expect("write statuses");
    }

    /// Every request it received: `{at, id, timestamp, signature, body, verified, status}`.
    pub fn received(&self) -> Vec<Value> {
        let Ok(text) = std::fs::read_to_string(self.file(".jsonl")) else { return vec![] };
        text.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect()
    }

    /// Waits until it received `n` requests (at most `seconds`), and returns them all.
    pub async fn wait_for(&self, n: usize, seconds: u64) -> Vec<Value> {
        for _ in 0..seconds * 10 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} received {} of {n} requests in {seconds} s", self.name, self.received().len());
    }
}

/// How many questions the test DNS server answered for `name`'s `kind` records.
pub fn dns_queries(name: &str, kind: &str) -> usize {
    let path = PathBuf::from(env("BULWARK_TEST_DNS_DIR")).join(format!("{name}.{kind}.queries"));
    std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

/// The `Stripe-Signature` of `body` under `secret` at `timestamp`, computed here from
/// Stripe's documentation (HMAC-SHA256 of `{t}.{body}`, hex), not with Bulwark's code.
pub fn stripe_signature(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// A Stripe event of `kind` for `company` of `tenant` (amount 4200 EUR cents).
pub fn stripe_event(id: &str, kind: &str, tenant: &str, company: &str) -> String {
    let (object, amount) = match kind {
        "charge.refunded" => ("charge", "amount_refunded"),
        "invoice.paid" => ("invoice", "amount_paid"),
        _ => ("payment_intent", "amount_received"),
    };
    serde_json::json!({
        "id": id,
        "object": "event",
        "type": kind,
        "created": 1_765_000_000,
        "livemode": false,
        "data": {"object": {
            "id": format!("{}_{}", &object[..2], &id[4..]),
            "object": object,
            amount: 4200,
            "currency": "eur",
            "metadata": {"tenant_id": tenant, "company_id": company},
        }},
    })
    .to_string()
}

/// Posts a Stripe event signed with `secret` now.
pub async fn post_stripe(app: &super::TestApp, secret: &str, body: &str) -> reqwest::Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    app.client
        .post(app.url("/hooks/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", stripe_signature(secret, now, body))
        .body(body.to_owned())
        .send()
        .await
        .expect("request")
}

/// The settings that point both providers at the test server, with a Zoom webhook secret.
pub fn provider_settings() -> Vec<(String, String)> {
    let base = base();
    let mut all = vec![
        ("BULWARK_PUBLIC_URL".to_owned(), "http://127.0.0.1:8080".to_owned()),
        ("BULWARK_ZOOM_WEBHOOK_SECRET".to_owned(), ZOOM_SECRET.to_owned()),
        ("BULWARK_ZOOM_COMPLIANCE_URL".to_owned(), format!("{base}/zoom/oauth/data/compliance")),
        ("BULWARK_WEBHOOK_RETRY_SCHEDULE".to_owned(), "1s".to_owned()),
    ];
    for (name, path) in [("GOOGLE", "google"), ("ZOOM", "zoom")] {
        all.extend([
            (format!("BULWARK_{name}_CLIENT_ID"), format!("{path}-test-client")),
            (format!("BULWARK_{name}_CLIENT_SECRET"), format!("{path}-test-secret")),
            (format!("BULWARK_{name}_AUTH_URL"), format!("{base}/{path}/authorize")),
            (format!("BULWARK_{name}_TOKEN_URL"), format!("{base}/{path}/token")),
            (format!("BULWARK_{name}_REVOKE_URL"), format!("{base}/{path}/revoke")),
            (format!("BULWARK_{name}_API_URL"), format!("{base}/{path}-api")),
        ]);
    }
    all
}

pub const ZOOM_SECRET: &str = "zoom-webhook-secret-token";

/// A login at the provider no other test uses.
pub fn unique_login(tag: &str) -> String {
    format!("{tag}-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// The server's record of what `login` did: token requests, revocations, API calls,
/// compliance confirmations.
pub async fn log(login: &str) -> Value {
    let url = format!("{}/control/log?user={}", base(), urlencode(login));
    reqwest::get(url).await.expect("control").json().await.expect("json")
}

/// Every token the provider issued to `login`.
pub async fn tokens(login: &str) -> Vec<String> {
    let url = format!("{}/control/tokens?user={}", base(), urlencode(login));
    reqwest::get(url).await.expect("control").json().await.expect("json")
}

pub async fn control(path: &str, body: Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", base()))
        .json(&body)
        .send()
        .await
        .expect("control");
    assert!(response.status().is_success(), "{path}");
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Follows `authorize_url` as `login` (the provider consents at once) and returns the
/// callback's `code` and `state`.
pub async fn authorize(authorize_url: &str, login: &str) -> (String, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let url = format!("{authorize_url}&login_hint={}", urlencode(login));
    let response = client.get(url).send().await.expect("authorize");
    assert_eq!(response.status(), 302, "the provider redirects back");
    let location = response.headers()["location"].to_str().expect("location").to_owned();
    let location = url::Url::parse(&location).expect("a URL");
    let get =
        |key: &str| location.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
    (get("code").unwrap_or_else(|| panic!("no code in {location}")), get("state").expect("state"))
}

/// Connects `provider` for `token`'s user as `login`: the connection's view.
pub async fn connect(app: &super::TestApp, token: &str, provider: &str, login: &str) -> Value {
    let path = format!("/api/v1/integrations/{provider}/connect");
    let started = app.post_as(token, &path, &serde_json::json!({})).await;
    assert_eq!(started.status(), 200, "connect");
    let started: Value = started.json().await.expect("json");
    let (code, state) = authorize(started["authorize_url"].as_str().expect("url"), login).await;
    let callback = format!(
        "/api/v1/integrations/{provider}/callback?code={}&state={}",
        urlencode(&code),
        urlencode(&state)
    );
    let connected = app.get_as(token, &callback).await;
    assert_eq!(connected.status(), 200, "callback");
    connected.json().await.expect("json")
}
