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
