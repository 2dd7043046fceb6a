//! The security headers of spec §5, on every response: errors, 404 and 405 included.
//!
//! A handler that serves HTML sets its own nonce-based `Content-Security-Policy`, which is
//! kept; every other response gets the API policy. HSTS is sent in production or when this
//! process terminates TLS itself.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::config::Config;

pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
pub const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), payment=()";

#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    fixed: Vec<(HeaderName, HeaderValue)>,
    /// Set only where absent: handlers may choose their own.
    defaults: Vec<(HeaderName, HeaderValue)>,
}

impl SecurityHeaders {
    pub fn from_config(config: &Config) -> Self {
        let mut fixed = vec![
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin")),
            (
                HeaderName::from_static("permissions-policy"),
                HeaderValue::from_static(PERMISSIONS_POLICY),
            ),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
            (header::X_XSS_PROTECTION, HeaderValue::from_static(config.http.x_xss_protection)),
        ];
        let tls = config.http.tls.is_some();
        if let Some(max_age) = config.http.hsts_max_age
            && (!config.env.is_development() || tls)
            && let Ok(value) =
                HeaderValue::from_str(&format!("max-age={max_age}; includeSubDomains; preload"))
        {
            fixed.push((header::STRICT_TRANSPORT_SECURITY, value));
        }
        let defaults = vec![
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(API_CSP)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ];
        SecurityHeaders { fixed, defaults }
    }

    pub fn apply_to(&self, headers: &mut HeaderMap) {
        // One growth of the map instead of one per power of two crossed.
        headers.reserve(self.fixed.len() + self.defaults.len() + 1);
        for (name, value) in &self.fixed {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.defaults {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
}
