//! A passkey on a software authenticator, speaking to the server's WebAuthn endpoints as a
//! browser would.
//!
//! webauthn-authenticator-rs's `SoftToken` does the cryptography (P-256 keys, attestation and
//! assertion signatures) but cannot store discoverable ("resident") credentials. [`Passkey`]
//! adds the part a platform authenticator keeps for itself: which credential belongs to which
//! user handle. When the server asks for a discoverable credential (empty `allowCredentials`),
//! it offers its own credentials and returns the stored user handle beside the assertion, which
//! is exactly what a real passkey does; the user handle is not part of the signed data.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use super::{Account, TestApp};

/// The public URL passkey tests run Bulwark with (WebAuthn needs a domain name).
pub const PUBLIC_URL: &str = "http://localhost:8080";

pub fn origin() -> Url {
    Url::parse(PUBLIC_URL).expect("url")
}

pub struct Passkey {
    token: SoftToken,
    /// credential id (base64url) -> user handle (base64url), the authenticator's resident store.
    resident: BTreeMap<String, String>,
}

fn split(mut value: Value) -> (String, Value) {
    let id = value["challenge_id"].as_str().expect("challenge_id").to_owned();
    if let Some(object) = value.as_object_mut() {
        object.remove("challenge_id");
    }
    (id, value)
}

impl Passkey {
    pub fn new() -> Self {
        // No user-verification hardware in a soft token: it claims UV, as platform authenticators do.
        Self { token: SoftToken::new(true).expect("soft token").0, resident: BTreeMap::new() }
    }

    /// Registers this passkey for `who`; returns the server's id for it.
    /// Registers a passkey for `who`. A first factor needs a password proof, which this does;
    /// a further one needs a step-up, which the test does first.
    pub async fn register(&mut self, app: &TestApp, who: &Account) -> String {
        let proof = app
            .post_as(&who.token, "/api/v1/auth/step-up", &json!({"password": super::PASSWORD}))
            .await;
        assert_eq!(proof.status(), 204, "password proof");
        let start =
            app.post_as(&who.token, "/api/v1/auth/webauthn/register/start", &json!({})).await;
        assert_eq!(start.status(), 200, "register/start");
        let (challenge_id, mut options) = split(start.json().await.expect("json"));
        assert!(options["publicKey"]["challenge"].is_string(), "{options}");
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        assert_eq!(
            selection["residentKey"], "required",
            "the server asks for a discoverable credential"
        );
        // SoftToken refuses resident-key requests; this wrapper is the resident store instead.
        selection["requireResidentKey"] = json!(false);
        let user_handle =
            options["publicKey"]["user"]["id"].as_str().expect("user handle").to_owned();
        let options: CreationChallengeResponse =
            serde_json::from_value(options).expect("creation options");
        let credential =
            self.token.do_registration(origin(), options).expect("the authenticator registers");
        let credential_id = credential.id.clone();
        let finish = app
            .post_as(
                &who.token,
                "/api/v1/auth/webauthn/register/finish",
                &json!({"challenge_id": challenge_id, "credential": credential, "name": "soft token"}),
            )
            .await;
        let status = finish.status();
        let body: Value = finish.json().await.expect("json");
        assert_eq!(status, 201, "register/finish: {body}");
        self.resident.insert(credential_id, user_handle);
        body["id"].as_str().expect("id").to_owned()
    }

    /// A second authenticator holding the same keys and counter: a cloned device.
    pub fn clone_authenticator(&self) -> Passkey {
        let cbor = self.token.to_cbor().expect("the soft token serialises");
        Passkey {
            token: SoftToken::from_cbor(&cbor).expect("the soft token deserialises"),
            resident: self.resident.clone(),
        }
    }

    /// Answers a `{challenge_id, publicKey}` challenge at `origin`; returns (challenge_id, assertion).
    pub fn assert(&mut self, challenge: Value, origin: &Url) -> (String, Value) {
        let (challenge_id, mut options) = split(challenge);
        let discoverable =
            options["publicKey"]["allowCredentials"].as_array().is_none_or(Vec::is_empty);
        if discoverable {
            let own: Vec<Value> =
                self.resident.keys().map(|id| json!({"type": "public-key", "id": id})).collect();
            options["publicKey"]["allowCredentials"] = Value::Array(own);
        }
        let options: RequestChallengeResponse =
            serde_json::from_value(options).expect("request options");
        let credential =
            self.token.do_authentication(origin.clone(), options).expect("the authenticator signs");
        let mut assertion = serde_json::to_value(&credential).expect("json");
        if let Some(handle) = self.resident.get(&credential.id) {
            assertion["response"]["userHandle"] = json!(handle);
        }
        (challenge_id, assertion)
    }
}
