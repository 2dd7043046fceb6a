//! The mail tests' servers, started by scripts/services.sh (`start_mail`) as real processes:
//! a DNS server answering from files a test writes, and an SMTP server with STARTTLS that
//! writes each message it accepts to a file.

use std::path::PathBuf;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is unset: run the suite through scripts/test.sh (start_mail)")
    })
}

/// `BULWARK_DNS_RESOLVER` for the test DNS server, when it runs.
pub fn settings() -> Vec<(String, String)> {
    match std::env::var("BULWARK_TEST_DNS") {
        Ok(dns) => vec![("BULWARK_DNS_RESOLVER".into(), dns)],
        Err(_) => vec![],
    }
}

/// A domain name no other test uses.
pub fn unique_domain(tag: &str) -> String {
    format!("{tag}-{}.bulwark.test", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Publishes `values` as the `kind` (`TXT`, `CNAME`) records of `name` (replacing any).
pub fn publish(name: &str, kind: &str, values: &[&str]) {
    let path = PathBuf::from(env("BULWARK_TEST_DNS_DIR")).join(format!("{name}.{kind}"));
    std::fs::write(&path, values.join("\n") + "\n").expect("write a DNS record");
}

/// A relay for the app: the test SMTP server over STARTTLS, trusted through its CA; deferred
/// messages retried after a second.
pub fn smtp_settings() -> Vec<(String, String)> {
    vec![
        ("BULWARK_SMTP_URL".into(), format!("smtp://localhost:{}", env("BULWARK_TEST_SMTP_PORT"))),
        ("BULWARK_SMTP_CA_FILE".into(), env("BULWARK_TEST_SMTP_CA")),
        ("BULWARK_EMAIL_RETRY_SCHEDULE".into(), "1s,1s".into()),
    ]
}

/// An app whose relay is the test SMTP server, with `extra` settings besides.
pub async fn mailing_app(extra: &[(&str, &str)]) -> super::TestApp {
    let settings = smtp_settings();
    let mut all: Vec<(&str, &str)> =
        settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(extra);
    super::TestApp::spawn_with(&all).await
}

/// Adds a sending domain as `token`, publishes its records and verifies it; its name.
pub async fn verified_domain(app: &super::TestApp, token: &str) -> String {
    use serde_json::{Value, json};
    let name = unique_domain("send");
    let created = app.post_as(token, "/api/v1/email/domains", &json!({"domain": name})).await;
    assert_eq!(created.status(), 201, "domain");
    let domain: Value = created.json().await.expect("json");
    for record in domain["dns_records"].as_array().expect("records") {
        let kind = record["type"].as_str().expect("type");
        publish(
            record["name"].as_str().expect("name"),
            kind,
            &[record["value"].as_str().expect("value")],
        );
    }
    let path = format!("/api/v1/email/domains/{}/verify", domain["id"].as_str().expect("id"));
    let verified: Value = app.post_as(token, &path, &json!({})).await.json().await.expect("json");
    assert_eq!(verified["status"], "verified", "{verified}");
    name
}

/// A message the SMTP server accepted: its envelope and raw text, and where it is kept.
pub struct Received {
    pub rcpt_tos: Vec<String>,
    pub data: String,
    pub path: PathBuf,
}

/// Every message the SMTP server accepted with this `Message-ID`.
pub fn received(message_id: &str) -> Vec<Received> {
    let header = format!("Message-ID: {message_id}");
    let mut found = vec![];
    let dir = PathBuf::from(env("BULWARK_TEST_SMTP_DIR"));
    let mut entries: Vec<_> = std::fs::read_dir(&dir).expect("inbox").flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        let data = record["data"].as_str().unwrap_or_default().to_owned();
        if data.lines().any(|line| line.eq_ignore_ascii_case(&header)) {
            let rcpt_tos = record["rcpt_tos"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            found.push(Received { rcpt_tos, data, path });
        }
    }
    found
}

/// Waits (at most `seconds`) until the SMTP server has a message with this `Message-ID`.
pub async fn wait_for(message_id: &str, seconds: u64) -> Received {
    let started = std::time::Instant::now();
    loop {
        if let Some(found) = received(message_id).into_iter().next() {
            return found;
        }
        assert!(started.elapsed().as_secs() < seconds, "{message_id} never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether `data` carries a valid DKIM signature, as dkimpy checks it against the records
/// the test published.
pub fn dkim_verifies(data: &str) -> bool {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), data.replace("\r\n", "\n").replace('\n', "\r\n")).expect("write");
    let output = std::process::Command::new(env("BULWARK_TEST_MAIL_PYTHON"))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/email/dkim_verify.py"))
        .arg(file.path())
        .arg(env("BULWARK_TEST_DNS_DIR"))
        .output()
        .expect("dkim_verify.py runs");
    String::from_utf8_lossy(&output.stdout).trim() == "pass"
}

/// Every message the SMTP server accepted for `recipient` (in its envelope).
pub fn received_by(recipient: &str) -> Vec<Received> {
    let dir = PathBuf::from(env("BULWARK_TEST_SMTP_DIR"));
    let mut found = vec![];
    for entry in std::fs::read_dir(&dir).expect("inbox").flatten() {
        let path = entry.path();
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        let rcpt_tos: Vec<String> = record["rcpt_tos"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        if rcpt_tos.iter().any(|r| r.eq_ignore_ascii_case(recipient)) {
            let data = record["data"].as_str().unwrap_or_default().to_owned();
            found.push(Received { rcpt_tos, data, path });
        }
    }
    found
}

/// How many times the SMTP server accepted each `Message-ID`, and when it first did (one
/// pass over the inbox: for tests with many messages).
pub fn message_id_counts() -> std::collections::HashMap<String, (usize, std::time::SystemTime)> {
    let mut counts = std::collections::HashMap::new();
    let dir = PathBuf::from(env("BULWARK_TEST_SMTP_DIR"));
    for entry in std::fs::read_dir(&dir).expect("inbox").flatten() {
        let path = entry.path();
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        let data = record["data"].as_str().unwrap_or_default();
        let Some(id) = data.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("Message-ID").then(|| value.trim().to_owned())
        }) else {
            continue;
        };
        let at =
            entry.metadata().and_then(|m| m.modified()).unwrap_or(std::time::SystemTime::now());
        let slot = counts.entry(id).or_insert((0, at));
        slot.0 += 1;
        slot.1 = slot.1.min(at);
    }
    counts
}
