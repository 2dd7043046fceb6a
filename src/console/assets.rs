//! The console's stylesheet and script, built into the binary and served under names that
//! carry a hash of their content, so a browser may keep them for a year and a new release is
//! fetched at once. No build step, no CDN.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

pub struct Asset {
    content_type: &'static str,
    body: &'static str,
    href: LazyLock<String>,
}

impl Asset {
    /// `/assets/<stem>.<first 16 hex digits of SHA-256>.<extension>`.
    pub fn href(&self) -> &str {
        &self.href
    }
}

fn href(stem: &str, extension: &str, body: &str) -> String {
    let digest = crate::crypto::hex(&Sha256::digest(body.as_bytes()));
    format!("/assets/{stem}.{}.{extension}", &digest[..16])
}

pub static CSS: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    body: include_str!("assets/console.css"),
    href: LazyLock::new(|| href("console", "css", include_str!("assets/console.css"))),
};

pub static JS: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("assets/console.js"),
    href: LazyLock::new(|| href("console", "js", include_str!("assets/console.js"))),
};

/// `GET /assets/{name}`: only the current names; anything else is 404.
pub async fn serve(Path(name): Path<String>) -> Response {
    for asset in [&CSS, &JS] {
        if asset.href().strip_prefix("/assets/") == Some(name.as_str()) {
            return (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
                    (
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=31536000, immutable"),
                    ),
                ],
                asset.body,
            )
                .into_response();
        }
    }
    StatusCode::NOT_FOUND.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_content() {
        assert!(CSS.href().starts_with("/assets/console.") && CSS.href().ends_with(".css"));
        assert_ne!(href("console", "css", "a"), href("console", "css", "b"));
    }

    /// The budget: all script and style under 60 KB compressed; uncompressed is a
    /// stricter bound that needs no compressor.
    #[test]
    fn script_and_style_stay_small() {
        assert!(CSS.body.len() + JS.body.len() < 60 * 1024);
    }
}
