//! What field-level encryption costs one contact: sealing its eleven encrypted fields plus
//! two blind indexes (a create), and opening them (a read), with the prepared cipher a
//! tenant's key set keeps (and, for comparison, preparing the key for every field). bench/run.sh sets the figures
//! beside the measured request rates, which gives the throughput with encryption off without
//! a second build. `cargo bench --bench field_crypto` (release profile).

use std::hint::black_box;
use std::time::Instant;

use bulwark::crypto::Secret;
use bulwark::crypto::aead::Cipher;
use bulwark::crypto::field::{self, Place};
use bulwark::ids::TenantId;

const FIELDS: [(&str, &str); 11] = [
    ("first_name", "Ada"),
    ("last_name", "Lovelace"),
    ("email", "ada.lovelace@analytical-engines.example"),
    ("phone", "+44 20 7946 0958"),
    ("date_of_birth", "1815-12-10"),
    ("ssn", "078-05-1120"),
    (
        "address",
        r#"{"line1":"12 St James's Square","city":"London","postal_code":"SW1Y 4JH","country":"GB"}"#,
    ),
    ("bank_holder", "Augusta Ada King"),
    ("bank_iban", "GB29NWBK60161331926819"),
    ("bank_account_number", "31926819"),
    ("bank_routing_number", "601613"),
];

fn main() {
    let cipher = Cipher::new(&[7u8; 32]);
    let index_key = Secret::new([9u8; 32]);
    let key_for = |version: u32| (version == 1).then(|| Secret::new([7u8; 32]));
    let tenant = TenantId::new();
    let rounds = 20_000u32;

    let started = Instant::now();
    let mut sealed = Vec::new();
    for _ in 0..rounds {
        let row = uuid::Uuid::now_v7();
        sealed = FIELDS
            .iter()
            .map(|(column, value)| {
                let place = Place { tenant, table: "contacts", column, row };
                (row, *column, field::encrypt_with(&cipher, 1, &place, value.as_bytes()))
            })
            .collect::<Vec<_>>();
        black_box(field::blind_index(&index_key, "contacts", "email", FIELDS[2].1));
        black_box(field::blind_index(&index_key, "contacts", "phone", "442079460958"));
    }
    let seal_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);

    let started = Instant::now();
    for _ in 0..rounds {
        for (row, column, stored) in &sealed {
            let place = Place { tenant, table: "contacts", column, row: *row };
            black_box(field::decrypt_with(|_| Some(&cipher), &place, stored).ok());
        }
    }
    let open_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);

    let started = Instant::now();
    for _ in 0..rounds {
        for (row, column, stored) in &sealed {
            let place = Place { tenant, table: "contacts", column, row: *row };
            black_box(field::decrypt(key_for, &place, stored).ok());
        }
    }
    let unprepared_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    println!(
        "RESULT seal_us_per_contact={seal_us:.2} open_us_per_contact={open_us:.2} \
         open_us_per_contact_unprepared={unprepared_us:.2}"
    );
}
