//! Outgoing OIDC back-channel logout: POST `logout_token=<jwt>` to a client's
//! back-channel logout URL (plain `http://` only), as Keycloak does on logout.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one back-channel POST may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// POST `logout_token=<token>` to `url`; returns the HTTP status code.
pub(crate) async fn send_logout_token(url: &str, logout_token: &str) -> Result<u16, String> {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", logout_token)
        .finish();
    match tokio::time::timeout(TIMEOUT, post_form(url, body)).await {
        Ok(result) => result,
        Err(_) => Err(format!("back-channel logout to {url} timed out")),
    }
}

async fn post_form(url: &str, body: String) -> Result<u16, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("bad back-channel URL {url:?}: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!("back-channel URL must be http://, got {url:?}"));
    }
    let host = parsed
        .host_str()
        .ok_or("back-channel URL has no host")?
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut target = parsed.path().to_owned();
    if let Some(q) = parsed.query() {
        target.push('?');
        target.push_str(q);
    }
    let request = Request::post(target)
        .header(HOST, format!("{host}:{port}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    Ok(response.status().as_u16())
}
