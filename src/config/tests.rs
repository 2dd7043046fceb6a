use super::*;

const JWT: &str = "0123456789abcdef0123456789abcdef-jwt";
const MASTER: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn load_pairs(pairs: &[(&str, &str)]) -> Result<Loaded, ConfigProblems> {
    load(&ConfigInput::from_pairs(pairs.iter().copied()), DevSecrets::Inspect)
}

fn production(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut pairs = vec![
        ("BULWARK_ENV", "production"),
        ("BULWARK_JWT_SECRET", JWT),
        ("BULWARK_MASTER_KEYS", MASTER),
        ("BULWARK_PUBLIC_URL", "https://crm.example.com"),
    ];
    pairs.extend_from_slice(extra);
    pairs
}

fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
    match load_pairs(pairs) {
        Ok(_) => vec![],
        Err(ConfigProblems(list)) => list,
    }
}

#[test]
fn defaults_describe_a_local_development_instance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let loaded = load(&ConfigInput::from_pairs([("BULWARK_DATA_DIR", data)]), DevSecrets::Generate)
        .expect("development defaults load");
    let config = loaded.config;
    assert_eq!(config.env, Profile::Development);
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.metrics_listen.map(|a| a.to_string()).as_deref(), Some("127.0.0.1:9464"));
    assert!(matches!(&config.database.url, DatabaseUrl::Sqlite(p) if p.ends_with("bulwark.db")));
    assert_eq!(config.http.body_limit, 1 << 20);
    assert_eq!(config.http.hsts_max_age, Some(63_072_000));
    assert!(config.secrets.jwt_secret.expose().len() >= MIN_SECRET_BYTES);
    assert_eq!(config.secrets.master_keys.len(), 1);
}

#[test]
fn development_secrets_are_generated_once_with_mode_0600_and_reused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let input = ConfigInput::from_pairs([("BULWARK_DATA_DIR", data)]);
    let first = load(&input, DevSecrets::Generate).expect("first load");
    assert!(first.warnings.iter().any(|w| w.contains("GENERATED")), "{:?}", first.warnings);
    for file in ["jwt_secret", "master_keys"] {
        let meta = std::fs::metadata(dir.path().join("secrets").join(file)).expect("written");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
    }
    let second = load(&input, DevSecrets::Generate).expect("second load");
    assert_eq!(first.config.secrets.jwt_secret.expose(), second.config.secrets.jwt_secret.expose());
    assert_eq!(
        first.config.secrets.master_keys[0].key.expose(),
        second.config.secrets.master_keys[0].key.expose()
    );
    assert!(!second.warnings.iter().any(|w| w.contains("GENERATED")));
}

#[test]
fn inspecting_development_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let loaded = load_pairs(&[("BULWARK_DATA_DIR", data)]).expect("loads");
    assert!(loaded.warnings.iter().any(|w| w.contains("will generate")));
    assert!(!dir.path().join("secrets").exists());
}

#[test]
fn production_without_secrets_names_every_missing_item() {
    let list = problems(&[("BULWARK_ENV", "production")]);
    let all = list.join("\n");
    for needle in ["BULWARK_JWT_SECRET", "BULWARK_MASTER_KEYS", "BULWARK_PUBLIC_URL"] {
        assert!(all.contains(needle), "missing {needle} in:\n{all}");
    }
    assert_eq!(list.len(), 3, "{all}");
}

#[test]
fn a_complete_production_configuration_has_no_problems() {
    assert_eq!(problems(&production(&[])), Vec::<String>::new());
}

#[test]
fn staging_follows_the_production_rules() {
    let list = problems(&[("BULWARK_ENV", "staging")]);
    assert_eq!(list.len(), 3, "{list:?}");
}

#[test]
fn short_or_malformed_secrets_are_refused() {
    let list = problems(&[
        ("BULWARK_ENV", "production"),
        ("BULWARK_JWT_SECRET", "too-short"),
        ("BULWARK_MASTER_KEYS", "k1:c2hvcnQ="),
        ("BULWARK_JWT_PREVIOUS_SECRETS", "short"),
        ("BULWARK_PUBLIC_URL", "https://crm.example.com"),
    ]);
    assert_eq!(list.len(), 3, "{list:?}");
    let all = list.join("\n");
    assert!(!all.contains("too-short") && !all.contains("c2hvcnQ"), "secret echoed: {all}");
}

#[test]
fn development_only_switches_and_unsafe_http_are_refused_in_production() {
    let list = problems(&production(&[
        ("BULWARK_RATE_LIMITS", "off"),
        ("BULWARK_COOKIE_SECURE", "off"),
        ("BULWARK_HSTS", "off"),
    ]));
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(problems(&production(&[("BULWARK_HSTS_MAX_AGE", "0")])).len() == 1);
    // The same switches are fine in development.
    assert!(
        problems(&[("BULWARK_RATE_LIMITS", "off"), ("BULWARK_COOKIE_SECURE", "off")]).is_empty()
    );
}

#[test]
fn a_cors_wildcard_is_refused_in_every_profile() {
    assert_eq!(problems(&[("BULWARK_CORS_ORIGINS", "*")]).len(), 1);
    assert_eq!(problems(&production(&[("BULWARK_CORS_ORIGINS", "https://a.example,*")])).len(), 1);
    assert_eq!(problems(&[("BULWARK_CORS_ORIGINS", "https://a.example/path")]).len(), 1);
    let loaded =
        load_pairs(&[("BULWARK_CORS_ORIGINS", "https://a.example, http://localhost:3000")])
            .expect("valid origins");
    assert_eq!(loaded.config.http.cors_origins, ["https://a.example", "http://localhost:3000"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let list = problems(&[
        ("BULWARK_ENV", "production"),
        ("BULWARK_LISTEN", "nowhere"),
        ("BULWARK_BODY_LIMIT", "huge"),
        ("BULWARK_REQUEST_TIMEOUT", "10 parsecs"),
        ("BULWARK_DATABASE_URL", "mysql://x"),
    ]);
    // 4 parse problems + 3 missing production items.
    assert_eq!(list.len(), 7, "{list:?}");
}

#[test]
fn durations_take_units() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert!(parse_duration("0s").is_err());
    assert!(parse_duration("5 days").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn master_keys_need_unique_ids_and_32_bytes() {
    assert_eq!(parse_master_keys(MASTER).map(|k| k.len()), Ok(1));
    let two = format!("{MASTER},k0:{}", MASTER.trim_start_matches("k1:"));
    let keys = parse_master_keys(&two).expect("two keys");
    assert_eq!(keys[0].id, "k1");
    assert!(parse_master_keys(&format!("{MASTER},{MASTER}")).is_err());
    assert!(parse_master_keys("bad id:AAAA").is_err());
    assert!(parse_master_keys("k1").is_err());
}

#[test]
fn database_urls_choose_the_backend() {
    let pg = load_pairs(&[("BULWARK_DATABASE_URL", "postgres://app:pw@db/bulwark")]).expect("pg");
    assert!(matches!(pg.config.database.url, DatabaseUrl::Postgres(_)));
    assert!(!format!("{:?}", pg.config).contains("pw@"), "the password leaks through Debug");
    let lite = load_pairs(&[("BULWARK_DATABASE_URL", "sqlite:///tmp/x.db")]).expect("sqlite");
    assert!(
        matches!(&lite.config.database.url, DatabaseUrl::Sqlite(p) if p == Path::new("/tmp/x.db"))
    );
    assert_eq!(problems(&[("BULWARK_DATABASE_URL", "sqlite::memory:")]).len(), 1);
}

#[test]
fn outside_development_the_jwt_secret_must_not_be_repetitive() {
    let repeated = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let list = problems(&production(&[("BULWARK_JWT_SECRET", repeated)]));
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(list[0].contains("low entropy") && !list[0].contains("aaaa"), "{list:?}");
    let phrase = "dev-secret-dev-secret-dev-secret";
    assert_eq!(problems(&production(&[("BULWARK_JWT_SECRET", phrase)])).len(), 1);
    // Development keeps the two-command start with any secret of the right length.
    assert!(problems(&[("BULWARK_JWT_SECRET", repeated)]).is_empty());
    // Length is counted in bytes: 16 two-byte characters are 32 bytes.
    let wide = "äöüßéèêëàâîïôûçñ";
    assert_eq!(wide.chars().count(), 16);
    assert!(
        problems(&production(&[("BULWARK_JWT_SECRET", wide)]))
            .iter()
            .all(|p| !p.contains("shorter"))
    );
}

#[test]
fn outside_development_plain_transport_is_refused() {
    let refused = [
        ("BULWARK_CORS_ORIGINS", "http://app.example.com"),
        ("BULWARK_DATABASE_URL", "postgres://app:pw@db.internal/bulwark"),
        ("BULWARK_DATABASE_URL", "postgres://app:pw@db.internal/bulwark?sslmode=require"),
        ("BULWARK_REDIS_URL", "redis://cache.internal:6379"),
        ("BULWARK_METRICS_LISTEN", "0.0.0.0:9464"),
    ];
    for (name, value) in refused {
        let list = problems(&production(&[(name, value)]));
        assert_eq!(list.len(), 1, "{name}={value}: {list:?}");
        assert!(
            list[0].contains(name.trim_start_matches("BULWARK_")) || list[0].contains(name),
            "{list:?}"
        );
        assert!(!list[0].contains("pw@"), "the URL's password is echoed: {list:?}");
        // Development allows all of them.
        assert!(problems(&[(name, value)]).is_empty(), "{name}={value} in development");
    }
    let token = "m0123456789abcdefghijklmnopqrstuvwxyz";
    for accepted in [
        vec![("BULWARK_CORS_ORIGINS", "https://app.example.com")],
        vec![("BULWARK_DATABASE_URL", "postgres://app:pw@db.internal/bulwark?sslmode=verify-full")],
        vec![("BULWARK_DATABASE_URL", "postgres://app:pw@127.0.0.1:5432/bulwark")],
        vec![("BULWARK_DATABASE_URL", "postgres:///bulwark?host=/run/postgresql")],
        vec![("BULWARK_REDIS_URL", "rediss://cache.internal:6380")],
        vec![("BULWARK_REDIS_URL", "redis://localhost:6379")],
        vec![("BULWARK_METRICS_LISTEN", "0.0.0.0:9464"), ("BULWARK_METRICS_TOKEN", token)],
    ] {
        assert_eq!(problems(&production(&accepted)), Vec::<String>::new(), "{accepted:?}");
    }
    let short = problems(&[("BULWARK_METRICS_TOKEN", "short")]);
    assert_eq!(short.len(), 1, "{short:?}");
}

#[test]
fn outside_development_the_idle_timeout_lies_between_the_token_and_the_session_lifetimes() {
    for (idle, absolute) in [("10m", "30d"), ("40d", "30d")] {
        let list = problems(&production(&[
            ("BULWARK_SESSION_IDLE_TIMEOUT", idle),
            ("BULWARK_SESSION_ABSOLUTE_TIMEOUT", absolute),
        ]));
        assert_eq!(list.len(), 1, "{idle}/{absolute}: {list:?}");
    }
    assert!(problems(&production(&[("BULWARK_SESSION_IDLE_TIMEOUT", "20m")])).is_empty());
    // Tests in development may shorten it freely.
    assert!(problems(&[("BULWARK_SESSION_IDLE_TIMEOUT", "2s")]).is_empty());
}

#[test]
fn the_pooler_setting_is_read_checked_and_postgres_only() {
    let pg = production(&[
        ("BULWARK_DATABASE_URL", "postgres://app:pw@127.0.0.1:6432/bulwark"),
        ("BULWARK_DATABASE_POOLER", "transaction"),
    ]);
    let loaded = load_pairs(&pg).expect("a pooled PostgreSQL configuration loads");
    assert_eq!(loaded.config.database.pooler, Pooler::Transaction);
    let plain = load_pairs(&production(&[])).expect("loads");
    assert_eq!(plain.config.database.pooler, Pooler::None, "no pooler unless one is named");
    let session = problems(&production(&[("BULWARK_DATABASE_POOLER", "session")]));
    assert!(session.iter().any(|p| p.contains("BULWARK_DATABASE_POOLER")), "{session:?}");
    let sqlite = problems(&production(&[("BULWARK_DATABASE_POOLER", "transaction")]));
    assert!(sqlite.iter().any(|p| p.contains("PostgreSQL only")), "{sqlite:?}");
}

#[test]
fn an_s3_authority_file_must_hold_a_pem_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (good, bad) = (dir.path().join("ca.pem"), dir.path().join("ca.txt"));
    let cert = rcgen::generate_simple_self_signed(vec!["minio".to_owned()]).expect("a certificate");
    std::fs::write(&good, cert.cert.pem()).expect("write");
    // The marker without a certificate inside it is refused too.
    std::fs::write(&bad, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        .expect("write");
    let with = |path: &std::path::Path| {
        let path = path.to_str().expect("utf-8").to_owned();
        load(
            &ConfigInput::from_pairs([
                ("BULWARK_DATA_DIR", dir.path().to_str().expect("utf-8")),
                ("BULWARK_S3_CA_FILE", path.as_str()),
            ]),
            DevSecrets::Generate,
        )
    };
    let loaded = with(&good).expect("a PEM file loads");
    assert!(loaded.config.storage.s3_ca_pem.is_some());
    let Err(ConfigProblems(problems)) = with(&bad) else { panic!("a non-PEM file loaded") };
    assert!(problems.iter().any(|p| p.contains("BULWARK_S3_CA_FILE")), "{problems:?}");
    let Err(ConfigProblems(problems)) = with(&dir.path().join("missing.pem")) else {
        panic!("a missing file loaded")
    };
    assert!(problems.iter().any(|p| p.contains("cannot be read")), "{problems:?}");
}

#[test]
fn a_provider_needs_its_secret_outside_development_and_is_off_without_a_client_id() {
    let half = production(&[("BULWARK_ZOOM_CLIENT_ID", "zoom-client")]);
    let found = problems(&half);
    assert!(
        found
            .iter()
            .any(|p| p.contains("BULWARK_ZOOM_CLIENT_SECRET") && !p.contains("zoom-client")),
        "{found:?}"
    );
    let whole = production(&[
        ("BULWARK_ZOOM_CLIENT_ID", "zoom-client"),
        ("BULWARK_ZOOM_CLIENT_SECRET", "zoom-secret-value"),
        ("BULWARK_ZOOM_API_URL", "ftp://nowhere"),
    ]);
    let found = problems(&whole);
    assert!(found.iter().any(|p| p.starts_with("BULWARK_ZOOM_API_URL")), "{found:?}");
    assert!(!found.iter().any(|p| p.contains("zoom-secret-value")), "{found:?}");
    let loaded = load_pairs(&production(&[
        ("BULWARK_GOOGLE_CLIENT_ID", "g"),
        ("BULWARK_GOOGLE_CLIENT_SECRET", "g-secret"),
    ]));
    let config = loaded.map(|l| l.config).ok();
    assert!(config.as_ref().is_some_and(|c| c.integrations.google.is_some()));
    assert!(config.as_ref().is_some_and(|c| c.integrations.zoom.is_none()), "no client id: off");
}
