//! SQL of the mail side, by what it owns; here the re-sealing every mail table shares.

use crate::store::sealed::{SealedColumn, sealed_column};

mod domains;
mod messages;
mod suppressions;
mod templates;

pub use domains::*;
pub use messages::*;
pub use suppressions::*;
pub use templates::*;

/// The mail tables with values sealed under a tenant data key.
#[derive(Debug, Clone, Copy)]
pub enum Sealed {
    Domains,
    /// A domain's next DKIM key, while a rotation waits for its record.
    NextDkim,
    Messages,
    Suppressions,
    Templates,
}

impl Sealed {
    pub const ALL: [Sealed; 5] = [
        Sealed::Domains,
        Sealed::NextDkim,
        Sealed::Messages,
        Sealed::Suppressions,
        Sealed::Templates,
    ];

    /// This table's sealed column and its key version.
    pub const fn column(self) -> SealedColumn {
        match self {
            Sealed::Domains => sealed_column!("email_domains", "key_version", "dkim_private"),
            Sealed::NextDkim => {
                sealed_column!("email_domains", "next_key_version", "next_dkim_private")
            }
            Sealed::Messages => sealed_column!("email_messages", "key_version", "payload"),
            Sealed::Suppressions => {
                sealed_column!("email_suppressions", "key_version", "email_enc")
            }
            Sealed::Templates => sealed_column!("email_templates", "key_version", "content"),
        }
    }
}
