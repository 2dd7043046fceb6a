//! What verifying one webhook signature costs: Stripe's (`t=…,v1=…` under two configured
//! secrets, the second one matching: the rotation case, the most work a valid event takes)
//! and Zoom's, each timed call by call so the percentiles are of single verifications.
//! `cargo bench --bench provider_signatures` (release profile); bench/webhooks.sh prints it.

use std::hint::black_box;
use std::time::Instant;

use bulwark::crypto::provider_signatures::{sign_stripe, sign_zoom, verify_stripe, verify_zoom};

const CALLS: usize = 100_000;

fn percentiles(mut nanos: Vec<u128>) -> (f64, f64) {
    nanos.sort_unstable();
    let at = |p: f64| nanos[((nanos.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
    (at(0.50), at(0.99))
}

fn main() {
    // A Stripe event of a realistic size (~1.5 KiB).
    let body = format!(
        r#"{{"id":"evt_1","object":"event","type":"payment_intent.succeeded","data":{{"object":{{"id":"pi_1","amount_received":4200,"currency":"eur","metadata":{{"tenant_id":"t","company_id":"c"}},"padding":"{}"}}}}}}"#,
        "x".repeat(1200)
    );
    let now = 1_765_000_000;
    let header = sign_stripe("whsec_current", now, body.as_bytes());
    let secrets = ["whsec_next", "whsec_current"];
    let mut stripe = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let start = Instant::now();
        let ok =
            verify_stripe(black_box(&secrets), black_box(&header), black_box(body.as_bytes()), now);
        stripe.push(start.elapsed().as_nanos());
        assert!(ok.is_ok());
    }
    let signature = sign_zoom("zoom-secret", "1765000000", body.as_bytes());
    let mut zoom = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let start = Instant::now();
        let ok = verify_zoom(
            "zoom-secret",
            black_box(&signature),
            "1765000000",
            black_box(body.as_bytes()),
            now,
        );
        zoom.push(start.elapsed().as_nanos());
        assert!(ok.is_ok());
    }
    let (s50, s99) = percentiles(stripe);
    let (z50, z99) = percentiles(zoom);
    println!("verify stripe (2 secrets, {} B body): p50_us={s50:.2} p99_us={s99:.2}", body.len());
    println!("verify zoom ({} B body): p50_us={z50:.2} p99_us={z99:.2}", body.len());
}
