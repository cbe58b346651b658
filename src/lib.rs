//! Portcullis: a forward-auth single-sign-on proxy for Traefik, nginx, Caddy and Envoy.
//!
//! The pure core (`config`, `jwt`, `jwks`, `session`, `login`, `authz`, `redirect`, `access`)
//! never sees HTTP types; `http` adapts requests and responses; `idp` is the only module that
//! talks to the identity provider.

pub mod authz;
pub mod clock;
pub mod config;
pub mod identity;
pub mod jwks;
pub mod jwt;
pub mod redirect;
pub mod seal;
pub mod secret;
