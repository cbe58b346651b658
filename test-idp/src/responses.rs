//! HTTP response builders (JSON, text, HTML, redirects, OAuth errors).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION, PRAGMA};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

/// Response type of every handler.
pub(crate) type Resp = Response<Full<Bytes>>;

fn with_body(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// JSON body.
pub(crate) fn json_resp(status: StatusCode, value: &Value) -> Resp {
    with_body(status, "application/json", value.to_string())
}

/// JSON body with `Cache-Control: no-store` (token responses).
pub(crate) fn json_no_store(status: StatusCode, value: &Value) -> Resp {
    let mut resp = json_resp(status, value);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// Plain text body.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    with_body(status, "text/plain; charset=utf-8", body.into())
}

/// Small HTML page.
pub(crate) fn html(status: StatusCode, title: &str, message: &str) -> Resp {
    let page = format!(
        "<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1><p>{message}</p></body></html>"
    );
    with_body(status, "text/html; charset=utf-8", page)
}

/// 302 redirect.
pub(crate) fn redirect(location: &str) -> Resp {
    let mut resp = with_body(StatusCode::FOUND, "text/plain; charset=utf-8", "");
    match HeaderValue::from_str(location) {
        Ok(v) => {
            resp.headers_mut().insert(LOCATION, v);
            resp
        }
        Err(_) => text(StatusCode::BAD_REQUEST, "invalid redirect location"),
    }
}

/// OAuth 2 error body `{"error": .., "error_description": ..}`.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Resp {
    json_no_store(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}

/// 503 while the `down` switch is on.
pub(crate) fn unavailable() -> Resp {
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        "Service Unavailable",
        "The identity provider is down (test switch).",
    )
}

/// 404.
pub(crate) fn not_found() -> Resp {
    json_resp(
        StatusCode::NOT_FOUND,
        &json!({ "error": "Unable to find matching target resource method" }),
    )
}

/// 405.
pub(crate) fn method_not_allowed() -> Resp {
    json_resp(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({ "error": "RESTEASY003650: No resource method found" }),
    )
}
