//! The only module that talks to the identity provider over the network. It is the HTTP
//! transport openidconnect calls (`AsyncHttpClient`): discovery (OIDC Discovery §4), the
//! token endpoint (RFC 6749 §4.1.3 code exchange, §6 refresh) go through openidconnect and
//! arrive here; the JWKS is fetched here directly (src/token/jwks_cache.rs keeps it). Every call
//! has a timeout; redirects are never followed; bodies are size-capped; errors carry no
//! response bodies; each call is counted and tells whether the IdP is up.

use crate::app::StartupError;
use crate::config::OidcConfig;
use crate::metrics::{IdpCall, Metrics};
use openidconnect::core::CoreErrorResponseType;
use openidconnect::{DiscoveryError, HttpRequest, HttpResponse, RequestTokenError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
use tracing::field::Empty;

/// The discovery document, with the RP-initiated logout endpoint (OIDC RP-Initiated Logout
/// 1.0 §2.1).
pub type ProviderMetadata = openidconnect::ProviderMetadataWithLogout;

/// A fetched JWKS document and how long the IdP says it may be cached.
pub struct JwksDocument {
    pub body: bytes::Bytes,
    pub max_age: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdpError {
    /// Connection refused, timed out, TLS failure: the IdP is down or unreachable.
    #[error("identity provider unreachable")]
    Unreachable,
    /// The IdP answered 5xx: it is up but failing, which for us is the same as down.
    #[error("identity provider failed (status {0})")]
    ServerError(u16),
    /// The IdP answered with an OAuth error (RFC 6749 §5.2), e.g. `invalid_grant`.
    #[error("identity provider refused: {0}")]
    Refused(String),
    /// The IdP answered something we can't use: wrong status, content type or body, or a
    /// discovery document for another issuer.
    #[error("identity provider answered something unusable")]
    BadResponse,
}

impl IdpError {
    /// A stable reason code for audit events (the IdP's own error text is not one).
    pub fn code(&self) -> &'static str {
        match self {
            IdpError::Unreachable => "idp_unreachable",
            IdpError::ServerError(_) => "idp_server_error",
            IdpError::Refused(_) => "idp_refused",
            IdpError::BadResponse => "idp_bad_response",
        }
    }

    /// Whether the IdP looked down (as opposed to answering, even with a refusal).
    pub fn means_down(&self) -> bool {
        matches!(self, IdpError::Unreachable | IdpError::ServerError(_))
    }
}

/// Why the transport gave openidconnect no response (its `AsyncHttpClient::Error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("identity provider unreachable")]
    Unreachable,
    #[error("identity provider failed (status {0})")]
    ServerError(u16),
    #[error("identity provider response too large or malformed")]
    Unusable,
}

impl TransportError {
    /// A stable code, for the IdP call's span.
    pub fn code(&self) -> &'static str {
        match self {
            TransportError::Unreachable => "unreachable",
            TransportError::ServerError(_) => "server_error",
            TransportError::Unusable => "unusable",
        }
    }
}

impl From<TransportError> for IdpError {
    fn from(e: TransportError) -> IdpError {
        match e {
            TransportError::Unreachable => IdpError::Unreachable,
            TransportError::ServerError(s) => IdpError::ServerError(s),
            TransportError::Unusable => IdpError::BadResponse,
        }
    }
}

/// What openidconnect's token requests fail with, on our transport.
pub type TokenRequestError =
    RequestTokenError<TransportError, openidconnect::StandardErrorResponse<CoreErrorResponseType>>;

impl From<TokenRequestError> for IdpError {
    fn from(e: TokenRequestError) -> IdpError {
        match e {
            RequestTokenError::ServerResponse(r) => IdpError::Refused(sanitize(r.error().as_ref())),
            RequestTokenError::Request(t) => t.into(),
            RequestTokenError::Parse(..) | RequestTokenError::Other(_) => IdpError::BadResponse,
        }
    }
}

#[derive(Clone)]
pub struct IdpClient {
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    /// Whether this client's calls say if *the* IdP (the OIDC issuer) is up; extra bearer
    /// issuers use a copy that doesn't, so one of them being down never blocks logins.
    tracks_health: bool,
}

impl std::fmt::Debug for IdpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdpClient")
    }
}

/// Responses larger than this are refused (a hostile IdP can't exhaust memory).
const MAX_BODY: usize = 1024 * 1024;

/// openidconnect's HTTP client is this one: a request becomes a reqwest call with our
/// timeouts, CA bundle and no redirects; a 5xx is an error (the IdP is failing), any other
/// status goes back to openidconnect, which reads OAuth errors from it.
impl<'c> openidconnect::AsyncHttpClient<'c> for IdpClient {
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        // The client span: method, server and URL without its query (a code is sent in the
        // body, but a misconfigured endpoint URL could carry anything in a query).
        let span = tracing::debug_span!(
            "idp.http",
            otel.name = %parts.method,
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = %parts.method,
            server.address = parts.uri.host(),
            url.full = format!("{}://{}{}", parts.uri.scheme_str().unwrap_or("https"), parts.uri.authority().map_or("", |a| a.as_str()), parts.uri.path()),
            http.response.status_code = Empty,
            error.type = Empty,
        );
        if !span.is_disabled() {
            crate::telemetry::propagate(&span, &mut parts.headers);
        }
        Box::pin(async move {
            let result = self.send(parts, body).instrument(span.clone()).await;
            let status = match &result {
                Ok(resp) => Some(resp.status().as_u16()),
                Err(TransportError::ServerError(status)) => Some(*status),
                Err(_) => None,
            };
            if let Some(status) = status {
                span.record("http.response.status_code", status);
            }
            if let Err(e) = &result {
                span.record("error.type", e.code());
                span.record("otel.status_code", "error");
            }
            result
        })
    }
}

impl IdpClient {
    /// One HTTP exchange with the IdP (see the `AsyncHttpClient` impl).
    async fn send(
        &self,
        parts: http::request::Parts,
        body: Vec<u8>,
    ) -> Result<HttpResponse, TransportError> {
        let resp = self
            .http
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|_| TransportError::Unreachable)?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(TransportError::ServerError(status.as_u16()));
        }
        let headers = resp.headers().clone();
        let body = read_limited(resp).await?;
        let mut out = http::Response::new(body.to_vec());
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }

    pub fn new(cfg: &OidcConfig, metrics: Arc<Metrics>) -> Result<IdpClient, StartupError> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(3)))
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).map_err(|reason| StartupError::Unreadable {
                key: "oidc.ca_file",
                path: ca.clone(),
                reason,
            })?;
            // A file with no certificate at all (plain text) parses as an empty bundle: as much
            // a mistake as a broken one.
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|certs| !certs.is_empty())
                .ok_or(StartupError::NotPem {
                    key: "oidc.ca_file",
                })?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b
            .build()
            .map_err(|e| StartupError::HttpClient(e.to_string()))?;
        Ok(IdpClient {
            http,
            metrics,
            tracks_health: true,
        })
    }

    /// The same client for an extra bearer issuer: its failures don't mark the IdP down.
    pub fn for_extra_issuer(&self) -> IdpClient {
        IdpClient {
            tracks_health: false,
            ..self.clone()
        }
    }

    /// openidconnect's discovery: the document at `{issuer}/.well-known/openid-configuration`,
    /// whose `issuer` must be exactly ours (OIDC Discovery §4.3, or tokens could be swapped),
    /// and the JWKS it names (openidconnect fetches both).
    pub async fn discover(&self, issuer: &str) -> Result<ProviderMetadata, IdpError> {
        self.observed(IdpCall::Discovery, async {
            let url = openidconnect::IssuerUrl::new(issuer.to_string())
                .map_err(|_| IdpError::BadResponse)?;
            ProviderMetadata::discover_async(url, self)
                .await
                .map_err(|e| match e {
                    DiscoveryError::Request(t) => t.into(),
                    DiscoveryError::Validation(why) => {
                        tracing::error!(code = "idp.issuer_mismatch", configured = issuer, error = %why, "discovery issuer does not match oidc.issuer_url");
                        IdpError::BadResponse
                    }
                    _ => IdpError::BadResponse,
                })
        })
        .await
    }

    /// [`Self::discover`] until it succeeds, waiting `first`, then twice as long each time up
    /// to `max`, between attempts (the proxy starts and keeps retrying while the IdP is down).
    pub async fn discover_until_ok(
        &self,
        issuer: &str,
        first: Duration,
        max: Duration,
    ) -> ProviderMetadata {
        let mut backoff = first;
        loop {
            match self.discover(issuer).await {
                Ok(meta) => return meta,
                Err(e) => {
                    tracing::warn!(code = "idp.discovery_failed", issuer, error = %e, "discovery failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(max);
                }
            }
        }
    }

    pub async fn fetch_jwks(&self, url: &str) -> Result<JwksDocument, IdpError> {
        self.observed(IdpCall::Jwks, async {
            // The same transport as openidconnect's calls (timeouts, size cap, 5xx = down).
            let request = http::Request::get(url)
                .body(Vec::new())
                .map_err(|_| IdpError::BadResponse)?;
            let resp = openidconnect::AsyncHttpClient::call(self, request).await?;
            if resp.status() != http::StatusCode::OK {
                return Err(IdpError::BadResponse);
            }
            let max_age = resp
                .headers()
                .get(http::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_max_age);
            Ok(JwksDocument {
                body: resp.into_body().into(),
                max_age,
            })
        })
        .await
    }

    /// Runs one IdP operation in its span (`idp.` and its metric label: `idp.code`…, with the error's code when it fails),
    /// then [`Self::record`]s it.
    pub async fn observed<T>(
        &self,
        call: IdpCall,
        operation: impl Future<Output = Result<T, IdpError>>,
    ) -> Result<T, IdpError> {
        let span = tracing::debug_span!(
            "idp",
            otel.name = format!("idp.{}", call.as_str()),
            error.type = Empty,
            otel.status_code = Empty,
        );
        let result = operation.instrument(span.clone()).await;
        if let Err(e) = &result {
            span.record("error.type", e.code());
            span.record("otel.status_code", "error");
        }
        self.record(call, &result);
        result
    }

    /// Counts the call, and tracks whether the IdP is reachable at all: an OAuth error
    /// (`invalid_grant`…) means it answered; a connection failure or a 5xx means it is down.
    fn record<T>(&self, call: IdpCall, result: &Result<T, IdpError>) {
        self.metrics.idp_call(call, result.is_ok());
        if !self.tracks_health {
            return;
        }
        let reachable = !result.as_ref().is_err_and(IdpError::means_down);
        if reachable == self.metrics.idp_is_down() {
            if reachable {
                tracing::info!(code = "idp.up", "identity provider reachable again");
            } else {
                tracing::warn!(code = "idp.down", "identity provider unreachable");
            }
        }
        self.metrics.idp_reachable(reachable);
    }
}

async fn read_limited(mut resp: reqwest::Response) -> Result<bytes::Bytes, TransportError> {
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| TransportError::Unreachable)?
    {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(TransportError::Unusable);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// OAuth error codes are `%x20-21 / %x23-5B / %x5D-7E` (RFC 6749 §5.2); keep only that, short.
fn sanitize(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect()
}

/// `max-age` from a `Cache-Control` header (RFC 9111 §5.2.2.1).
pub fn parse_max_age(v: &str) -> Option<Duration> {
    v.split(',').find_map(|d| {
        let (k, n) = d.trim().split_once('=')?;
        k.eq_ignore_ascii_case("max-age")
            .then(|| n.trim().parse::<u64>().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_parsing() {
        assert_eq!(
            parse_max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse_max_age("no-cache"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }

    #[test]
    fn oauth_error_codes_are_sanitized() {
        assert_eq!(sanitize("invalid_grant<script>"), "invalid_grantscript");
    }
}
