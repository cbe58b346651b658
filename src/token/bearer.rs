//! `Authorization: Bearer <JWT>` validation: the hot path of the product.
//!
//! A token seen before is answered from the verified-token cache (keyed by the **whole**
//! token's SHA-256, so a re-signed or altered token is a miss) with no signature check and no
//! allocation beyond an `Arc` clone. A new token is parsed, matched to a trusted issuer,
//! verified with that issuer's cached keys and checked against RFC 9068 rules; an unknown
//! `kid` (or a kid-less token none of its algorithm's keys verifies) triggers one
//! rate-limited JWKS refetch, never more, waiting for the rate limit rather than failing.

use crate::clock::UnixTime;
use crate::config::{BearerConfig, IssuerConfig};
use crate::identity::{ClaimMapping, Identity};
use crate::idp::IdpClient;
use crate::metrics::Metrics;
use crate::principal::{PassedTokens, Principal};
use crate::token::jwks_cache::JwksCache;
use crate::token::jwt::{AccessTokenRules, TokenError, UnverifiedToken};
use crate::token::verified_cache::{CacheKey, VerifiedCache};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

pub struct TrustedIssuer {
    pub config: IssuerConfig,
    pub keys: Arc<JwksCache>,
    /// The client its keys are refetched with (extra issuers don't drive `portcullis_idp_up`).
    pub idp: IdpClient,
}

pub struct BearerVerifier {
    issuers: Vec<TrustedIssuer>,
    cache: VerifiedCache<Principal>,
    leeway: u64,
    pass_token: bool,
    /// Which claims are the email, groups and user id, and which become headers.
    claims: ClaimMapping,
    metrics: Arc<Metrics>,
    /// Sum of the issuers' key withdrawals when the cache was last known good.
    key_epoch: std::sync::atomic::AtomicU64,
}

impl BearerVerifier {
    pub fn new(
        cfg: &BearerConfig,
        issuers: Vec<TrustedIssuer>,
        pass_token: bool,
        claims: ClaimMapping,
        metrics: Arc<Metrics>,
        clock: crate::clock::SharedClock,
    ) -> Self {
        let cache = VerifiedCache::new(cfg.cache_capacity, cfg.cache_max_ttl, clock);
        Self {
            key_epoch: std::sync::atomic::AtomicU64::new(
                issuers.iter().map(|i| i.keys.removals()).sum(),
            ),
            issuers,
            cache,
            leeway: cfg.leeway.as_secs(),
            pass_token,
            claims,
            metrics,
        }
    }

    pub fn issuers(&self) -> &[TrustedIssuer] {
        &self.issuers
    }

    /// Tokens in the verified-token cache (after its pending maintenance has run).
    pub fn cached_tokens(&self) -> u64 {
        self.cache.len()
    }

    /// Cache lookup only: the synchronous, lock-free part of the hot path.
    #[inline]
    pub fn cached(&self, key: &CacheKey, now: UnixTime) -> Option<Arc<Principal>> {
        // A key withdrawn from an issuer's JWKS must stop validating at once, cached tokens
        // included (one or two atomic loads per request).
        let epoch = self.issuers.iter().map(|i| i.keys.removals()).sum::<u64>();
        if epoch != self.key_epoch.load(Relaxed) {
            self.cache.invalidate_all();
            self.key_epoch.store(epoch, Relaxed);
        }
        let hit = self.cache.get(key, now);
        if hit.is_some() {
            self.metrics.token_cache_hits.fetch_add(1, Relaxed);
        }
        hit
    }

    pub async fn verify(&self, token: &str, now: UnixTime) -> Result<Arc<Principal>, TokenError> {
        let key = CacheKey::of(token);
        if let Some(p) = self.cached(&key, now) {
            return Ok(p);
        }
        self.metrics.token_cache_misses.fetch_add(1, Relaxed);
        let parsed = UnverifiedToken::parse(token)?;
        let issuer = parsed
            .claims
            .iss
            .as_deref()
            .and_then(|iss| self.issuers.iter().find(|i| i.config.issuer_url == iss))
            .ok_or(TokenError::Issuer)?;
        // Claims first: an expired or foreign-audience token never causes a JWKS fetch.
        let rules = AccessTokenRules {
            issuer: &issuer.config.issuer_url,
            audiences: &issuer.config.audiences,
            allowed_clients: &issuer.config.allowed_clients,
            leeway: self.leeway,
        };
        rules.check(&parsed, now)?;
        issuer
            .keys
            .verify_signature(&parsed, &issuer.idp, &self.metrics)
            .await?;
        self.admit(token, key, parsed)
    }

    fn admit(
        &self,
        token: &str,
        key: CacheKey,
        mut parsed: UnverifiedToken<'_>,
    ) -> Result<Arc<Principal>, TokenError> {
        let exp = parsed.claims.exp.ok_or(TokenError::MissingClaim)?;
        let claims = parsed.identity_claims(&self.claims)?;
        let identity = Identity::from_claims(claims).ok_or(TokenError::MissingClaim)?;
        // A bearer request's own token is both the access token and what `Authorization`
        // carries (oauth2-proxy treats a verified JWT as the session's ID token too).
        let passed = self.pass_token.then(|| token.to_string());
        let principal = Arc::new(Principal::new(
            identity,
            PassedTokens {
                access: passed.clone(),
                authorization: passed,
            },
            exp.saturating_add(self.leeway),
            &self.claims,
        ));
        self.cache.insert(key, principal.clone());
        Ok(principal)
    }
}
