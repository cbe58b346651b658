//! The only module that talks to the identity provider over the network: discovery (OIDC
//! Discovery §4), JWKS, and the token endpoint (RFC 6749 §4.1.3 code exchange, §6 refresh).
//! Every call has a timeout; redirects are never followed; errors carry no response bodies.

use crate::config::OidcConfig;
use crate::metrics::{IdpCall, Metrics};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The subset of the discovery document Portcullis uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
}

/// A token endpoint response (RFC 6749 §5.1).
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

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
    /// The IdP answered with an OAuth error (RFC 6749 §5.2), e.g. `invalid_grant`.
    #[error("identity provider refused: {0}")]
    Refused(String),
    /// The IdP answered something we can't use (wrong status or body).
    #[error("identity provider answered badly (status {0})")]
    BadResponse(u16),
}

#[derive(Clone)]
pub struct IdpClient {
    http: reqwest::Client,
    client_id: String,
    client_secret: crate::secret::Secret<String>,
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

impl IdpClient {
    pub fn new(cfg: &OidcConfig, metrics: Arc<Metrics>) -> Result<IdpClient, String> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(3)))
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("oidc.ca_file: cannot read {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|_| "oidc.ca_file: not a PEM bundle".to_string())?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(IdpClient {
            http,
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone(),
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

    pub async fn discover(&self, issuer: &str) -> Result<ProviderMetadata, IdpError> {
        let url = format!("{issuer}/.well-known/openid-configuration");
        let result = self.get_json::<ProviderMetadata>(&url).await;
        self.record(IdpCall::Discovery, &result);
        let meta = result?;
        // OIDC Discovery §4.3: the issuer must match exactly, or tokens could be swapped.
        if meta.issuer != issuer {
            tracing::error!(code = "idp.issuer_mismatch", configured = issuer, discovered = %meta.issuer, "discovery issuer does not match oidc.issuer_url");
            return Err(IdpError::BadResponse(200));
        }
        Ok(meta)
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
        let result = async {
            let resp = self.get_ok(url).await?;
            let max_age = resp
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_max_age);
            let body = read_limited(resp).await?;
            Ok(JwksDocument { body, max_age })
        }
        .await;
        self.record(IdpCall::Jwks, &result);
        result
    }

    /// Authorization code grant with the PKCE verifier (RFC 7636 §4.5).
    pub async fn exchange_code(
        &self,
        token_endpoint: &str,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenResponse, IdpError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
        ];
        let result = self.token_call(token_endpoint, &form).await;
        self.record(IdpCall::Code, &result);
        result
    }

    pub async fn refresh(
        &self,
        token_endpoint: &str,
        refresh_token: &str,
    ) -> Result<TokenResponse, IdpError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let result = self.token_call(token_endpoint, &form).await;
        self.record(IdpCall::Refresh, &result);
        result
    }

    /// Counts the call, and tracks whether the IdP is reachable at all: an OAuth error
    /// (`invalid_grant`…) means it answered; a connection failure or a 5xx means it is down.
    fn record<T>(&self, call: IdpCall, result: &Result<T, IdpError>) {
        self.metrics.idp_call(call, result.is_ok());
        if !self.tracks_health {
            return;
        }
        let reachable = !matches!(
            result,
            Err(IdpError::Unreachable) | Err(IdpError::BadResponse(500..))
        );
        if reachable == self.metrics.idp_is_down() {
            if reachable {
                tracing::info!(code = "idp.up", "identity provider reachable again");
            } else {
                tracing::warn!(code = "idp.down", "identity provider unreachable");
            }
        }
        self.metrics.idp_reachable(reachable);
    }

    async fn token_call(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, IdpError> {
        // client_secret_basic: id and secret are form-urlencoded first (RFC 6749 §2.3.1).
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let resp = self
            .http
            .post(endpoint)
            .basic_auth(enc(&self.client_id), Some(enc(self.client_secret.expose())))
            .form(form)
            .send()
            .await
            .map_err(|_| IdpError::Unreachable)?;
        let status = resp.status().as_u16();
        let body = read_limited(resp).await?;
        if status == 200 {
            return serde_json::from_slice(&body).map_err(|_| IdpError::BadResponse(status));
        }
        #[derive(Deserialize)]
        struct OAuthError {
            error: String,
        }
        match serde_json::from_slice::<OAuthError>(&body) {
            Ok(e) if (400..500).contains(&status) => Err(IdpError::Refused(sanitize(&e.error))),
            _ => Err(IdpError::BadResponse(status)),
        }
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<T, IdpError> {
        let body = read_limited(self.get_ok(url).await?).await?;
        serde_json::from_slice(&body).map_err(|_| IdpError::BadResponse(200))
    }

    /// GET `url`; anything but a 200 is an error.
    async fn get_ok(&self, url: &str) -> Result<reqwest::Response, IdpError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|_| IdpError::Unreachable)?;
        match resp.status().as_u16() {
            200 => Ok(resp),
            status => Err(IdpError::BadResponse(status)),
        }
    }
}

async fn read_limited(mut resp: reqwest::Response) -> Result<bytes::Bytes, IdpError> {
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|_| IdpError::Unreachable)? {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(IdpError::BadResponse(resp.status().as_u16()));
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
