//! The last filter of integration responses (`Endpoint::secret_filter`): every answer gets
//! `Cache-Control: no-store`, and a JSON body loses any key that names a credential —
//! `access_token`, `refresh_token`, `id_token`, `client_secret`, `code_verifier` — at any
//! depth. Views never carry one (they are typed without them); this is the second wall, in
//! case a future view does. A key found here is a bug: it is counted and logged (its name,
//! never its value).

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

pub const DROPPED: [&str; 5] =
    ["access_token", "refresh_token", "id_token", "client_secret", "code_verifier"];

/// Bodies larger than this are not JSON views of an integration; they pass unread.
const MAX_FILTERED: usize = 1024 * 1024;

/// Removes credential keys anywhere in `value`; how many.
pub fn strip(value: &mut Value) -> usize {
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|key, _| !DROPPED.contains(&key.to_ascii_lowercase().as_str()));
            let removed = before - map.len();
            removed + map.values_mut().map(strip).sum::<usize>()
        }
        Value::Array(items) => items.iter_mut().map(strip).sum(),
        _ => 0,
    }
}

pub async fn filter(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let (mut parts, body) = response.into_parts();
    parts.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let json =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
            v.starts_with("application/json") || v.starts_with("application/problem+json")
        });
    if !json {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = to_bytes(body, MAX_FILTERED).await else {
        // Over the bound or unreadable: nothing of it is sent.
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let removed = strip(&mut value);
    if removed == 0 {
        return Response::from_parts(parts, Body::from(bytes));
    }
    metrics::counter!("secret_filter_removed_total").increment(removed as u64);
    tracing::error!(removed, "a response carried credential keys; they were removed");
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&value).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    /// A view that (wrongly) carries tokens, at the top and nested.
    #[derive(Serialize)]
    struct Leaky {
        provider: &'static str,
        access_token: &'static str,
        nested: Vec<Inner>,
    }

    #[derive(Serialize)]
    struct Inner {
        refresh_token: &'static str,
        #[serde(rename = "Client_Secret")]
        client_secret: &'static str,
        id_token: &'static str,
        code_verifier: &'static str,
        kept: u8,
    }

    #[test]
    fn credential_keys_go_at_any_depth_and_nothing_else_does() {
        let leaky = Leaky {
            provider: "zoom",
            access_token: "at-secret",
            nested: vec![Inner {
                refresh_token: "rt-secret",
                client_secret: "cs-secret",
                id_token: "it-secret",
                code_verifier: "cv-secret",
                kept: 7,
            }],
        };
        let mut value = serde_json::to_value(&leaky).unwrap_or_default();
        assert_eq!(strip(&mut value), 5);
        let text = value.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(value, serde_json::json!({"provider": "zoom", "nested": [{"kept": 7}]}));
        let mut clean = serde_json::json!({"items": [{"provider": "google"}]});
        assert_eq!(strip(&mut clean), 0);
    }

    #[tokio::test]
    async fn the_middleware_filters_a_leaky_handler_and_forbids_caching() {
        use axum::Router;
        use axum::routing::get;
        use tower::ServiceExt as _;
        let app = Router::new()
            .route(
                "/leak",
                get(|| async {
                    axum::Json(serde_json::json!({"refresh_token": "rt", "ok": true}))
                }),
            )
            .layer(axum::middleware::from_fn(filter));
        let response = app
            .oneshot(Request::builder().uri("/leak").body(Body::empty()).unwrap_or_default())
            .await;
        let response = response.unwrap_or_else(|never| match never {});
        assert_eq!(
            response.headers().get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
        let bytes = to_bytes(response.into_body(), 1024).await.unwrap_or_default();
        assert_eq!(&bytes[..], br#"{"ok":true}"#);
    }
}
