//! What encrypting a document costs: sealing and opening 200 MiB in 64 KiB STREAM chunks
//! (AES-256-GCM), as uploads and downloads do, on one core. bench/documents.sh sets the
//! figures beside the measured upload and download rates, which gives the encryption's share
//! of them. `cargo bench --bench document_stream` (release profile).

use std::hint::black_box;
use std::time::Instant;

use bulwark::crypto::stream::{CHUNK, ContentKey};

fn main() {
    const MIB: usize = 200;
    let (key, _raw) = ContentKey::generate();
    let aad = b"tenant/document";
    let chunk = vec![0x5au8; CHUNK];
    let chunks = MIB * 1024 * 1024 / CHUNK;

    let started = Instant::now();
    let mut sealed = Vec::new();
    for position in 0..chunks {
        sealed = key.seal(position as u32, position + 1 == chunks, aad, &chunk).expect("seal");
        black_box(&sealed);
    }
    let seal_s = started.elapsed().as_secs_f64();

    // Opening needs each chunk sealed at its position: open the same (last) one repeatedly.
    let last = (chunks - 1) as u32;
    let started = Instant::now();
    for _ in 0..chunks {
        black_box(key.open(last, true, aad, &sealed).expect("open"));
    }
    let open_s = started.elapsed().as_secs_f64();
    println!("RESULT seal_mib_s={:.0} open_mib_s={:.0}", MIB as f64 / seal_s, MIB as f64 / open_s);
}
