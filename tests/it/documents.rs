//! Documents: encrypted round trips on the local disk (SQLite pass) and in a real
//! S3-compatible server (PostgreSQL pass), tampering detected, types sniffed from content,
//! names made safe, size and rate caps, the virus-scanner hook, isolation between tenants,
//! and erasure that reaches the stored objects.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::{Account, TestApp, app_state, expect_problem};

const CHUNK: usize = 64 * 1024;
const MARKER: &[u8] = b"PLAINTEXT-MARKER-7f3a";

async fn contact(app: &TestApp, by: &Account) -> String {
    let created: Value = app
        .post_as(&by.token, "/api/v1/contacts", &json!({"first_name": "Ada"}))
        .await
        .json()
        .await
        .expect("json");
    created["id"].as_str().expect("id").to_owned()
}

async fn upload(
    app: &TestApp,
    by: &Account,
    contact: &str,
    name: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    app.upload_as(&by.token, &[("contact_id", contact)], name, bytes).await
}

async fn upload_ok(
    app: &TestApp,
    by: &Account,
    contact: &str,
    name: &str,
    bytes: Vec<u8>,
) -> Value {
    let response = upload(app, by, contact, name, bytes).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 201, "{body}");
    body
}

/// The first page of a contact's documents, as `by` sees it.
async fn documents_of(app: &TestApp, by: &Account, contact: &str) -> Value {
    let response = app.get_as(&by.token, &format!("/api/v1/documents?contact_id={contact}")).await;
    response.json().await.expect("json")
}

/// Text content of `len` bytes with the marker at the start and end of each chunk.
fn content(len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 23) as u8).collect();
    for start in (0..len).step_by(CHUNK) {
        let end = (start + MARKER.len()).min(len);
        bytes[start..end].copy_from_slice(&MARKER[..end - start]);
    }
    bytes
}

/// The stored object, read and written through the store itself (the local directory, or
/// the S3 server's own API with the bucket's credentials): what someone with access to the
/// storage, but not to Bulwark's keys, can do.
struct Stored {
    path: String,
    s3: Option<object_store::aws::AmazonS3>,
    dir: std::path::PathBuf,
}

impl Stored {
    fn of(app: &TestApp, tenant: &str, document: &str) -> Stored {
        let setting = |k: &str| app.settings.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let mut path = format!("{tenant}/{document}");
        let s3 = setting("BULWARK_STORAGE_URL").and_then(|url| {
            let (bucket, prefix) = url.strip_prefix("s3://")?.split_once('/')?;
            path = format!("{prefix}/{path}");
            object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region("us-east-1")
                .with_endpoint(setting("BULWARK_S3_ENDPOINT")?)
                .with_access_key_id("test")
                .with_secret_access_key("test-secret")
                .with_allow_http(true)
                .build()
                .ok()
        });
        Stored { path, s3, dir: app.db.dir.path().join("documents") }
    }

    async fn read(&self) -> Option<Vec<u8>> {
        use object_store::ObjectStoreExt as _;
        match &self.s3 {
            None => std::fs::read(self.dir.join(&self.path)).ok(),
            Some(s3) => match s3.get(&self.path.as_str().into()).await {
                Ok(got) => Some(got.bytes().await.expect("s3 body").to_vec()),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(err) => panic!("s3: {err}"),
            },
        }
    }

    async fn write(&self, bytes: Vec<u8>) {
        use object_store::ObjectStoreExt as _;
        match &self.s3 {
            None => std::fs::write(self.dir.join(&self.path), bytes).expect("write"),
            Some(s3) => {
                s3.put(&self.path.as_str().into(), bytes.into()).await.expect("s3 put");
            }
        }
    }
}

/// A client that never reuses a connection: a download the server cuts short (a damaged
/// chunk) ends its connection, and a pooled client could pick that one for the next request.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client")
}

async fn download(
    app: &TestApp,
    by: &Account,
    id: &str,
) -> Result<(reqwest::header::HeaderMap, Vec<u8>), u16> {
    // A damaged second chunk ends the stream right after the first: the server may abort the
    // connection before its head is flushed, so a dropped connection is a failed download too.
    let Ok(response) = fresh_client()
        .get(app.url(&format!("/api/v1/documents/{id}/content")))
        .bearer_auth(&by.token)
        .send()
        .await
    else {
        return Err(0);
    };
    let status = response.status().as_u16();
    if status != 200 {
        return Err(status);
    }
    let headers = response.headers().clone();
    // A stream cut by the server (a damaged later chunk) is an error here, never a body.
    response.bytes().await.map(|b| (headers, b.to_vec())).map_err(|_| 0)
}

#[tokio::test]
async fn documents_round_trip_encrypted_at_every_size_and_survive_key_rotation() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let ada = contact(&app, &owner).await;
    let mut ids = vec![];
    for len in [0, 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
        let bytes = content(len);
        let view = upload_ok(&app, &owner, &ada, "notes.txt", bytes.clone()).await;
        assert_eq!(view["size"], len, "{view}");
        assert_eq!(view["sha256"], bulwark::crypto::hex(&Sha256::digest(&bytes)));
        assert_eq!(
            view["content_type"], "text/plain",
            "decided from the content, not the part's header"
        );
        assert_eq!(view["linked_to"], json!({"kind": "contact", "id": ada}));
        assert_eq!(view["scan"], "unscanned");
        let id = view["id"].as_str().expect("id").to_owned();
        let (headers, body) = download(&app, &owner, &id).await.expect("download");
        assert_eq!(body, bytes, "{len} bytes come back identical");
        assert_eq!(headers["content-type"], "text/plain");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["content-security-policy"], "sandbox; default-src 'none'");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(headers["content-disposition"].to_str().expect("ascii").starts_with("attachment;"));
        let stored =
            Stored::of(&app, &owner.tenant_id, &id).read().await.expect("the object exists");
        assert!(
            !stored.windows(MARKER.len()).any(|w| w == MARKER),
            "the store sees ciphertext only"
        );
        assert_eq!(
            stored.len(),
            len + len.div_ceil(CHUNK).max(1) * 16,
            "chunked, one tag per chunk"
        );
        ids.push((id, bytes));
    }
    let listed: Value = app
        .get_as(&owner.token, &format!("/api/v1/documents?contact_id={ada}&limit=2"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(2));
    assert!(listed["next_cursor"].is_string());
    let events = app.audit_events(&owner).await;
    for action in ["document.upload", "document.download", "document.list"] {
        assert!(events.iter().any(|e| e["action"] == action), "{action} is audited");
    }
    // The list's event names the record and every document the page showed.
    let list_event = events.iter().find(|e| e["action"] == "document.list").expect("listed");
    let shown: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| d["id"].as_str().expect("id"))
        .collect();
    let text = list_event.to_string();
    assert!(shown.iter().all(|id| text.contains(id)), "{list_event}");
    assert!(text.contains(&ada), "the record is named: {list_event}");

    // A new tenant data key re-wraps the documents' keys; contents are not re-encrypted.
    let before = Stored::of(&app, &owner.tenant_id, &ids[2].0).read().await;
    let state = app_state(&app).await;
    let tenant = owner.tenant_id.parse().expect("tenant id");
    let report =
        bulwark::maintenance::rotation::rotate_tenant(&state, tenant).await.expect("rotate");
    assert_eq!(report.documents, ids.len() as u64);
    assert_eq!(Stored::of(&app, &owner.tenant_id, &ids[2].0).read().await, before);
    for (id, bytes) in &ids {
        assert_eq!(&download(&app, &owner, id).await.expect("after rotation").1, bytes);
    }
}

/// GET content with `Range: range`: the status, the Content-Range and the body; `Err` when
/// the download failed (an error status other than 416, or a body cut short).
async fn ranged(
    app: &TestApp,
    by: &Account,
    id: &str,
    range: &str,
) -> Result<(u16, Option<String>, Vec<u8>), u16> {
    let response = fresh_client()
        .get(app.url(&format!("/api/v1/documents/{id}/content")))
        .bearer_auth(&by.token)
        .header("range", range)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    if status >= 400 && status != 416 {
        return Err(status);
    }
    let content_range =
        response.headers().get("content-range").map(|v| v.to_str().expect("ascii").to_owned());
    let body = response.bytes().await.map_err(|_| 0u16)?;
    Ok((status, content_range, body.to_vec()))
}

#[tokio::test]
async fn ranges_read_only_their_chunks_and_are_still_authenticated() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let ada = contact(&app, &owner).await;
    let len = 3 * CHUNK + 100;
    let bytes = content(len);
    let id = upload_ok(&app, &owner, &ada, "a.txt", bytes.clone()).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let part =
        |a: usize, b: usize| (206, Some(format!("bytes {a}-{b}/{len}")), bytes[a..=b].to_vec());
    for (range, expected) in [
        ("bytes=0-9", part(0, 9)),
        // Across a chunk boundary, and across three chunks.
        (&*format!("bytes={}-{}", CHUNK - 5, CHUNK + 5), part(CHUNK - 5, CHUNK + 5)),
        (&*format!("bytes=10-{}", 2 * CHUNK + 50), part(10, 2 * CHUNK + 50)),
        ("bytes=-50", part(len - 50, len - 1)),
        (&*format!("bytes={}-", len - 1), part(len - 1, len - 1)),
        // An end past the content is clamped.
        (&*format!("bytes={}-{}", len - 10, len + 1000), part(len - 10, len - 1)),
        // Several ranges, or another unit: the whole content.
        ("bytes=0-1,5-6", (200, None, bytes.clone())),
        ("items=0-1", (200, None, bytes.clone())),
    ] {
        assert_eq!(ranged(&app, &owner, &id, range).await, Ok(expected), "{range}");
    }
    let (status, content_range, body) =
        ranged(&app, &owner, &id, &format!("bytes={len}-")).await.expect("416");
    assert_eq!((status, content_range), (416, Some(format!("bytes */{len}"))));
    let problem: Value = serde_json::from_slice(&body).expect("problem+json");
    assert_eq!(problem["code"], "range_not_satisfiable");

    // Each chunk read is authenticated at its own position: a damaged chunk fails the
    // ranges that read it and no other; chunks moved or an object cut fail every range.
    let stored = Stored::of(&app, &owner.tenant_id, &id);
    let original = stored.read().await.expect("object");
    let sealed = CHUNK + 16;
    let mut flipped = original.clone();
    flipped[2 * sealed + 5] ^= 1;
    stored.write(flipped).await;
    assert_eq!(ranged(&app, &owner, &id, "bytes=0-9").await, Ok(part(0, 9)));
    let third = format!("bytes={}-{}", 2 * CHUNK, 2 * CHUNK + 9);
    assert!(ranged(&app, &owner, &id, &third).await.is_err(), "a damaged chunk");
    let mut swapped = original.clone();
    swapped[..sealed].copy_from_slice(&original[sealed..2 * sealed]);
    swapped[sealed..2 * sealed].copy_from_slice(&original[..sealed]);
    stored.write(swapped).await;
    assert!(ranged(&app, &owner, &id, "bytes=0-9").await.is_err(), "a chunk out of place");
    stored.write(original[..3 * sealed].to_vec()).await;
    assert!(ranged(&app, &owner, &id, "bytes=0-9").await.is_err(), "an object cut short");
    stored.write(original).await;
    assert_eq!(ranged(&app, &owner, &id, "bytes=-50").await, Ok(part(len - 50, len - 1)));
}

#[tokio::test]
async fn a_changed_swapped_cut_or_moved_object_fails_to_download() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let ada = contact(&app, &owner).await;
    let bytes = content(3 * CHUNK + 100);
    let one = upload_ok(&app, &owner, &ada, "a.txt", bytes.clone()).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let two = upload_ok(&app, &owner, &ada, "b.txt", bytes.clone()).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let stored = Stored::of(&app, &owner.tenant_id, &one);
    let original = stored.read().await.expect("object");
    let sealed = CHUNK + 16;

    let mut flipped = original.clone();
    flipped[10] ^= 1;
    let mut swapped = original.clone();
    swapped[..sealed].copy_from_slice(&original[sealed..2 * sealed]);
    swapped[sealed..2 * sealed].copy_from_slice(&original[..sealed]);
    let cut_last = original[..3 * sealed].to_vec();
    let mut flipped_late = original.clone();
    let late = 2 * sealed + 5;
    flipped_late[late] ^= 1;
    let mut longer = original.clone();
    longer.extend_from_slice(&[0; 16]);
    for (what, tampered) in [
        ("a flipped byte", flipped),
        ("two chunks swapped", swapped),
        ("the last chunk cut", cut_last),
        ("a byte of the third chunk flipped", flipped_late),
        ("bytes appended", longer),
    ] {
        stored.write(tampered).await;
        assert!(download(&app, &owner, &one).await.is_err(), "{what}: the download must fail");
    }
    // Another document's (intact) object put under this id: a different key and name.
    let other = Stored::of(&app, &owner.tenant_id, &two).read().await.expect("object");
    stored.write(other).await;
    assert!(download(&app, &owner, &one).await.is_err(), "a moved object must not decrypt");
    stored.write(original).await;
    assert_eq!(download(&app, &owner, &one).await.expect("restored").1, bytes);
}

fn png() -> Vec<u8> {
    let mut bytes =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    bytes.extend_from_slice(&[0; 64]);
    bytes
}

/// A DOCX-shaped zip whose one entry inflates to 100 MiB of zeros.
fn zip_bomb() -> Vec<u8> {
    use std::io::Write as _;
    let mut deflated = deflated_zeros(100 * 1024 * 1024);
    let mut out = vec![];
    let mut entry = |name: &str, data: &mut Vec<u8>, size: u32, method: u16| {
        out.write_all(b"PK\x03\x04\x14\0\0\0").expect("w");
        out.write_all(&method.to_le_bytes()).expect("w");
        out.write_all(&[0; 8]).expect("w"); // time, date, crc (not checked by sniffers)
        out.write_all(&(data.len() as u32).to_le_bytes()).expect("w");
        out.write_all(&size.to_le_bytes()).expect("w");
        out.write_all(&(name.len() as u16).to_le_bytes()).expect("w");
        out.write_all(&0u16.to_le_bytes()).expect("w");
        out.write_all(name.as_bytes()).expect("w");
        out.append(data);
    };
    entry("word/document.xml", &mut deflated, 100 * 1024 * 1024, 8);
    let mut types = b"<Types/>".to_vec();
    let len = types.len() as u32;
    entry("[Content_Types].xml", &mut types, len, 0);
    out
}

/// Raw DEFLATE (RFC 1951) of about `len` zeros in one fixed-Huffman block: a literal zero,
/// then back-references of 258 bytes at distance 1 (13 bits each): a small bomb.
fn deflated_zeros(len: usize) -> Vec<u8> {
    // Final block, fixed Huffman: a literal 0, then matches of length 258 at distance 1.
    // Bits are emitted LSB first; fixed codes: literal 0 = 00110000 (8 bits, MSB first),
    // length 258 = code 285 = 11000101 (8 bits), distance 1 = 00000 (5 bits), end = 0000000.
    let mut bits: Vec<bool> = vec![true, true, false]; // BFINAL=1, BTYPE=01 (LSB first: 1, then 1,0)
    let push_code = |bits: &mut Vec<bool>, code: u32, n: u32| {
        for i in (0..n).rev() {
            bits.push(code >> i & 1 == 1);
        }
    };
    push_code(&mut bits, 0b0011_0000, 8);
    let mut written = 1;
    while written + 258 <= len {
        push_code(&mut bits, 0b1100_0101, 8);
        push_code(&mut bits, 0, 5);
        written += 258;
    }
    push_code(&mut bits, 0, 7);
    bits.chunks(8)
        .map(|b| b.iter().enumerate().fold(0u8, |acc, (i, &bit)| acc | (u8::from(bit) << i)))
        .collect()
}

#[tokio::test]
async fn types_come_from_the_content_and_names_stay_harmless() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let ada = contact(&app, &owner).await;
    let view = upload_ok(&app, &owner, &ada, "report.pdf", png()).await;
    assert_eq!(view["content_type"], "image/png", "a PNG named report.pdf is a PNG");
    for (name, bytes) in [
        ("invoice.pdf", b"<!DOCTYPE html><html><script>alert(1)</script>".to_vec()),
        (
            "invoice.pdf",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec(),
        ),
        ("tool.pdf", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec()),
    ] {
        let refused = upload(&app, &owner, &ada, name, bytes).await;
        assert_eq!(expect_problem(refused, 415).await["code"], "unsupported_type");
    }
    // A zip bomb shaped as a DOCX is stored as the opaque file it is: never inflated.
    let bomb = zip_bomb();
    assert!(bomb.len() < 1024 * 1024);
    let view = upload_ok(&app, &owner, &ada, "bomb.docx", bomb.clone()).await;
    assert_eq!(view["size"], bomb.len());
    assert_eq!(download(&app, &owner, view["id"].as_str().expect("id")).await.expect("ok").1, bomb);

    // CR/LF cannot even travel inside a part's header: the body is refused as malformed.
    let crlf = upload(&app, &owner, &ada, "a\r\nSet-Cookie: evil=1.txt", b"x".to_vec()).await;
    assert!(crlf.status() == 201 || crlf.status() == 422, "{}", crlf.status());
    assert!(crlf.headers().get("set-cookie").is_none());
    let long = "x".repeat(10_000) + ".txt";
    for (name, kept) in [
        ("../../etc/passwd", "passwd".to_owned()),
        ("..\\..\\boot.ini", "boot.ini".to_owned()),
        ("tab\tand\u{202e}txt.exe", "tabandtxt.exe".to_owned()),
        (long.as_str(), "x".repeat(200)),
    ] {
        let view = upload_ok(&app, &owner, &ada, name, b"hello".to_vec()).await;
        assert_eq!(view["filename"], kept.as_str());
        let id = view["id"].as_str().expect("id");
        let (headers, _) = download(&app, &owner, id).await.expect("download");
        let disposition = headers["content-disposition"].to_str().expect("visible ASCII");
        assert!(
            !disposition.contains('\r') && !disposition.contains('\n') && disposition.len() < 1000
        );
        assert!(headers.get("set-cookie").is_none());
        // The object is named by ids only.
        assert!(Stored::of(&app, &owner.tenant_id, id).read().await.is_some());
    }
}

/// A contact erased while a file for it is still streaming gets no document: the link is
/// checked again where the row is written (under a row lock on PostgreSQL).
#[tokio::test]
async fn a_contact_erased_during_an_upload_gets_no_document() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    app.step_up(&owner).await; // erasure needs a recent second factor
    let ada = contact(&app, &owner).await;
    let (more, pieces) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let body = futures_util::stream::unfold(pieces, |mut pieces| async move {
        pieces.recv().await.map(|piece| (Ok::<_, std::io::Error>(piece), pieces))
    });
    let part =
        reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(body)).file_name("a.txt");
    let form = reqwest::multipart::Form::new().text("contact_id", ada.clone()).part("file", part);
    let request =
        app.client.post(app.url("/api/v1/documents")).bearer_auth(&owner.token).multipart(form);
    let upload = tokio::spawn(request.send());
    // The server has the head of the file (the link was checked then); erase meanwhile.
    more.send(content(2 * CHUNK)).await.expect("stream");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let erased =
        app.post_as(&owner.token, &format!("/api/v1/contacts/{ada}/erase"), &json!({})).await;
    assert_eq!(erased.status(), 200);
    more.send(content(100)).await.expect("stream");
    drop(more);
    let response = upload.await.expect("join").expect("response");
    assert_eq!(expect_problem(response, 422).await["code"], "validation_failed");
    let listed: Value = documents_of(&app, &owner, &ada).await;
    assert_eq!(listed["items"], json!([]), "no document of an erased contact");
}

/// Form fields are small: a title of 10 kB is refused without reading it whole into a
/// document.
#[tokio::test]
async fn upload_form_fields_are_capped() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let ada = contact(&app, &owner).await;
    let long = "t".repeat(10_000);
    let response = app
        .upload_as(&owner.token, &[("title", &long), ("contact_id", &ada)], "a.txt", b"x".to_vec())
        .await;
    let problem = expect_problem(response, 422).await;
    assert_eq!(problem["errors"][0]["field"], "title", "{problem}");
}

#[tokio::test]
async fn uploads_are_capped_in_size_and_in_rate() {
    // The default rules, but for a per-minute write budget the uploads cannot reach: the
    // 429 below is the hourly `uploads` family's alone.
    let rules = include_str!("../../src/ratelimit/default_rules.toml").replace(
        "name = \"write-per-minute\"\nmatch = { category = \"write\" }\nlimit = 50",
        "name = \"write-per-minute\"\nmatch = { category = \"write\" }\nlimit = 1000",
    );
    assert!(rules.contains("limit = 1000"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rules.toml");
    std::fs::write(&file, rules).expect("write");
    let app = TestApp::spawn_with(&[
        ("BULWARK_RATE_LIMITS", ""),
        ("BULWARK_RATE_LIMITS_FILE", file.to_str().expect("utf-8")),
    ])
    .await;
    let owner = app.signup("Acme").await;
    let ada = contact(&app, &owner).await;
    // A file streamed without a length: refused at the first byte over the 25 MiB cap,
    // while the client is still sending.
    // (Four times the cap: more than the loopback's socket buffers can swallow.)
    let total = 100 * 1024 * 1024;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    let pieces = futures_util::stream::iter((0..total / CHUNK).map(move |_| {
        counter.fetch_add(CHUNK, std::sync::atomic::Ordering::Relaxed);
        Ok::<_, std::io::Error>(vec![b'a'; CHUNK])
    }));
    let part =
        reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(pieces)).file_name("big.txt");
    let form = reqwest::multipart::Form::new().text("contact_id", ada.clone()).part("file", part);
    let response = app
        .client
        .post(app.url("/api/v1/documents"))
        .bearer_auth(&owner.token)
        .multipart(form)
        .send()
        .await;
    match response {
        Ok(response) => assert_eq!(expect_problem(response, 413).await["code"], "too_large"),
        // The server may close before the client finishes sending: refused either way.
        Err(err) => assert!(err.is_request() || err.is_body(), "{err}"),
    }
    assert!(
        sent.load(std::sync::atomic::Ordering::Relaxed) < total,
        "the server stopped reading early"
    );
    // A declared length over the cap is refused before any byte of the body is read.
    let declared = app
        .client
        .post(app.url("/api/v1/documents"))
        .bearer_auth(&owner.token)
        .header("content-type", "multipart/form-data; boundary=x")
        .header("content-length", (27 * 1024 * 1024).to_string())
        .body(vec![0u8; 16])
        .send()
        .await;
    if let Ok(response) = declared {
        assert_eq!(response.status(), 413);
    }

    // The `uploads` family: 50 an hour per user.
    let mut statuses = vec![];
    for n in 0..51 {
        statuses.push(
            upload(&app, &owner, &ada, &format!("{n}.txt"), b"x".to_vec()).await.status().as_u16(),
        );
    }
    // The refused oversize attempts above counted too (a request is counted, not a file).
    assert!(statuses[..48].iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(statuses[50], 429, "the 51st upload within the hour");
}

#[tokio::test]
async fn other_tenants_documents_do_not_exist() {
    let app = TestApp::spawn().await;
    let a = app.signup("A").await;
    let b = app.signup("B").await;
    let a_contact = contact(&app, &a).await;
    let id = upload_ok(&app, &a, &a_contact, "a.txt", b"secret".to_vec()).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for path in [format!("/api/v1/documents/{id}"), format!("/api/v1/documents/{id}/content")] {
        assert_eq!(
            expect_problem(app.get_as(&b.token, &path).await, 404).await["code"],
            "not_found"
        );
    }
    let deleted = app.delete_as(&b.token, &format!("/api/v1/documents/{id}")).await;
    assert_eq!(deleted.status(), 404);
    let listed = app.get_as(&b.token, &format!("/api/v1/documents?contact_id={a_contact}")).await;
    let listed: Value = listed.json().await.expect("json");
    assert_eq!(listed["items"], json!([]));
    // An upload naming another tenant's contact is refused, and stores nothing.
    let refused = upload(&app, &b, &a_contact, "b.txt", b"x".to_vec()).await;
    assert_eq!(expect_problem(refused, 422).await["code"], "validation_failed");
    assert_eq!(download(&app, &a, &id).await.expect("still there").1, b"secret");
    // Exactly one link.
    let both = app
        .upload_as(
            &a.token,
            &[("contact_id", &a_contact), ("deal_id", &a_contact)],
            "x.txt",
            b"x".to_vec(),
        )
        .await;
    assert_eq!(both.status(), 422);
}

#[tokio::test]
async fn erasing_a_contact_or_deleting_a_document_removes_the_stored_objects() {
    let app = TestApp::spawn().await;
    let owner = app.signup("Acme").await;
    let ada = contact(&app, &owner).await;
    let kept_contact = contact(&app, &owner).await;
    let erased = upload_ok(&app, &owner, &ada, "a.txt", b"about ada".to_vec()).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let deleted = upload_ok(&app, &owner, &kept_contact, "b.txt", b"b".to_vec()).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let kept = upload_ok(&app, &owner, &kept_contact, "c.txt", b"c".to_vec()).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.step_up(&owner).await;
    let erase =
        app.post_as(&owner.token, &format!("/api/v1/contacts/{ada}/erase"), &json!({})).await;
    assert_eq!(erase.status(), 200);
    let gone = app.delete_as(&owner.token, &format!("/api/v1/documents/{deleted}")).await;
    assert_eq!(gone.status(), 204);
    for id in [&erased, &deleted] {
        let response = app.get_as(&owner.token, &format!("/api/v1/documents/{id}/content")).await;
        assert_eq!(response.status(), 404, "unreadable at once");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = [
            Stored::of(&app, &owner.tenant_id, &erased).read().await.is_some(),
            Stored::of(&app, &owner.tenant_id, &deleted).read().await.is_some(),
        ];
        if left == [false, false] {
            break;
        }
        assert!(Instant::now() < deadline, "objects still stored after 30 s: {left:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(Stored::of(&app, &owner.tenant_id, &kept).read().await.is_some(), "others stay");
    let events = app.audit_events(&owner).await;
    assert!(events.iter().any(|e| e["action"] == "document.delete"));
    let state = app_state(&app).await;
    let report = bulwark::audit::verify(state.store(), None).await.expect("verify");
    assert!(report.broken.is_empty(), "{:?}", report.broken);
}

/// A stand-in for clamd on loopback: reads one INSTREAM and answers `verdict`.
async fn fake_clamd(verdict: &'static str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut command = [0u8; 10];
                if socket.read_exact(&mut command).await.is_err() || &command != b"zINSTREAM\0" {
                    return;
                }
                loop {
                    let mut len = [0u8; 4];
                    if socket.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes(len) as usize;
                    if len == 0 {
                        break;
                    }
                    let mut data = vec![0u8; len];
                    if socket.read_exact(&mut data).await.is_err() {
                        return;
                    }
                }
                let _ = socket.write_all(format!("stream: {verdict}\0").as_bytes()).await;
            });
        }
    });
    address
}

#[tokio::test]
async fn the_virus_scanner_decides_before_anything_is_stored() {
    let infected = fake_clamd("Eicar-Signature FOUND").await;
    let app = TestApp::spawn_with(&[("BULWARK_CLAMD_ADDRESS", infected.as_str())]).await;
    let owner = app.signup("Acme").await;
    let ada = contact(&app, &owner).await;
    let refused =
        upload(&app, &owner, &ada, "eicar.txt", b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR".to_vec())
            .await;
    assert_eq!(expect_problem(refused, 422).await["code"], "infected");
    let listed: Value = documents_of(&app, &owner, &ada).await;
    assert_eq!(listed["items"], json!([]), "nothing stored");
    let events = app.audit_events(&owner).await;
    assert!(
        events.iter().any(|e| e["action"] == "document.upload" && e["outcome"] == "failure"),
        "the refusal is audited"
    );

    let clean = fake_clamd("OK").await;
    let app = TestApp::spawn_with(&[("BULWARK_CLAMD_ADDRESS", clean.as_str())]).await;
    let owner = app.signup("Acme").await;
    let ada = contact(&app, &owner).await;
    let view = upload_ok(&app, &owner, &ada, "fine.txt", b"fine".to_vec()).await;
    assert_eq!(view["scan"], "clean");
}

/// 1 MiB piece `n` of a large test file: text (an allowed type), deterministic, so the
/// test can hash it without keeping it.
fn piece(n: usize) -> Vec<u8> {
    static BASE: std::sync::LazyLock<Vec<u8>> =
        std::sync::LazyLock::new(|| (0..1024 * 1024).map(|i| b'a' + (i * 31 % 26) as u8).collect());
    let mut bytes = BASE.clone();
    bytes[..20].copy_from_slice(format!("{n:020}").as_bytes());
    bytes
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a /proc field in kB")
}

#[tokio::test]
async fn a_200_mib_document_streams_both_ways_in_bounded_memory() {
    const MIB: usize = 200;
    let app = TestApp::spawn_with(&[("BULWARK_DOCUMENT_MAX_BYTES", "268435456")]).await;
    let owner = app.signup("Acme").await;
    let ada = contact(&app, &owner).await;
    // The same database and settings, served by the real binary: its memory is its own.
    let settings = app.settings.clone();
    let db = app.stop().await;
    let env: Vec<(String, String)> = settings
        .into_iter()
        .filter(|(k, _)| !k.contains("LISTEN"))
        .chain([("BULWARK_LISTEN".to_owned(), "127.0.0.1:0".to_owned())])
        .chain([("BULWARK_METRICS_LISTEN".to_owned(), "127.0.0.1:0".to_owned())])
        .chain([("BULWARK_REQUEST_TIMEOUT".to_owned(), "300s".to_owned())])
        .collect();
    let dir = db.dir.path().to_owned();
    let server = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        crate::support::binary::Running::serve(&dir, &env)
    })
    .await
    .expect("join");
    let pid = server.child.id();
    let before = status_kib(pid, "VmRSS:");
    let expected = {
        let mut hash = Sha256::new();
        (0..MIB).for_each(|n| hash.update(piece(n)));
        hash.finalize().to_vec()
    };

    let client = reqwest::Client::new();
    let body = futures_util::stream::iter((0..MIB).map(|n| Ok::<_, std::io::Error>(piece(n))));
    let part =
        reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(body)).file_name("big.txt");
    let form = reqwest::multipart::Form::new().text("contact_id", ada).part("file", part);
    let started = Instant::now();
    let uploaded = client
        .post(format!("{}/api/v1/documents", server.url))
        .bearer_auth(&owner.token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let upload_secs = started.elapsed().as_secs_f64();
    let status = uploaded.status();
    let view: Value = uploaded.json().await.expect("json");
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["size"], MIB * 1024 * 1024);
    assert_eq!(view["sha256"], bulwark::crypto::hex(&expected));
    let after_upload = status_kib(pid, "VmHWM:");

    let started = Instant::now();
    let id = view["id"].as_str().expect("id");
    let mut download = client
        .get(format!("{}/api/v1/documents/{id}/content", server.url))
        .bearer_auth(&owner.token)
        .send()
        .await
        .expect("download");
    assert_eq!(download.status(), 200);
    let mut hash = Sha256::new();
    let mut received = 0usize;
    while let Some(chunk) = download.chunk().await.expect("a complete body") {
        received += chunk.len();
        hash.update(&chunk);
    }
    let download_secs = started.elapsed().as_secs_f64();
    assert_eq!(received, MIB * 1024 * 1024);
    assert_eq!(hash.finalize().to_vec(), expected, "the bytes come back identical");
    let peak = status_kib(pid, "VmHWM:");
    eprintln!(
        "200 MiB: upload {upload_secs:.1} s, download {download_secs:.1} s; RSS {} MiB before, \
         peak {} MiB after the upload, {} MiB after the download",
        before / 1024,
        after_upload / 1024,
        peak / 1024
    );
    let growth_mib = peak.saturating_sub(before) / 1024;
    assert!(growth_mib < 64, "the server's resident memory grew by {growth_mib} MiB");
    drop(server);
}

/// A TLS front for the plain-HTTP S3 server of the test run, with a certificate of its own
/// authority; returns its port.
async fn tls_front(cert: &rcgen::CertifiedKey<rcgen::KeyPair>, backend: String) -> u16 {
    use tokio_rustls::rustls;
    let chain = vec![cert.cert.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
        .expect("the key");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

/// A private S3-compatible server (MinIO with its own authority) is trusted through
/// BULWARK_S3_CA_FILE, and only through it: without the file the same server is refused.
#[tokio::test]
async fn a_private_s3_authority_is_trusted_only_when_configured_postgres_only() {
    let Ok(endpoint) = std::env::var("BULWARK_TEST_S3_ENDPOINT") else {
        eprintln!("needs the S3-compatible server of the PostgreSQL pass");
        return;
    };
    if crate::support::backend() != crate::support::Backend::Postgres {
        return;
    }
    crate::support::tls_provider();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("s3-ca.pem");
    std::fs::write(&ca, cert.cert.pem()).expect("write the CA");
    let port = tls_front(&cert, endpoint.trim_start_matches("http://").to_owned()).await;
    let https = format!("https://localhost:{port}");
    let ca = ca.to_str().expect("utf-8");

    let trusting =
        TestApp::spawn_with(&[("BULWARK_S3_ENDPOINT", &https), ("BULWARK_S3_CA_FILE", ca)]).await;
    let owner = trusting.signup("S3 TLS").await;
    let person = contact(&trusting, &owner).await;
    let bytes = content(100_000);
    let created = upload_ok(&trusting, &owner, &person, "report.pdf", bytes.clone()).await;
    let id = created["id"].as_str().expect("id");
    let (_, got) = download(&trusting, &owner, id).await.expect("downloads over TLS");
    assert_eq!(got, bytes);

    let untrusting = TestApp::spawn_with(&[("BULWARK_S3_ENDPOINT", &https)]).await;
    let owner = untrusting.signup("S3 TLS refused").await;
    let person = contact(&untrusting, &owner).await;
    let refused = upload(&untrusting, &owner, &person, "report.pdf", bytes).await;
    assert!(refused.status().is_server_error(), "an unknown authority was trusted");
    assert!(
        documents_of(&untrusting, &owner, &person).await["items"]
            .as_array()
            .is_some_and(|items| items.is_empty())
    );
}
