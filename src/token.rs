//! The JWTs Portcullis validates itself: `Authorization: Bearer` access tokens ([`bearer`])
//! and back-channel logout tokens (`crate::login::backchannel_logout`). [`jwt`] holds the
//! rules (header, algorithm from the key, claims, Keycloak's token types) with signatures
//! checked by jsonwebtoken; [`jwks`] parses a published key set; [`jwks_cache`] keeps each
//! trusted issuer's keys fresh (refresh, rate-limited refetch on an unknown `kid`);
//! [`verified_cache`] remembers tokens already verified. ID tokens are openidconnect's
//! (`crate::login::oidc`), checked against the same [`jwks_cache`].

pub mod bearer;
pub mod jwks;
pub mod jwks_cache;
pub mod jwt;
pub mod verified_cache;
