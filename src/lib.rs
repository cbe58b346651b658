//! Portcullis: a forward-auth single-sign-on proxy for Traefik, nginx, Caddy and Envoy.
//!
//! The pure core (`config`, `jwt`, `jwks`, `session`, `login/state_cookies`,
//! `login/redirect_policy`, `authz`, `rules`, `gate`) never sees HTTP types; `http` adapts
//! requests and responses; `idp` is the only module that talks to the identity provider;
//! `login` is the browser sign-in; `app` wires it all together and `reload` replaces it when
//! the configuration changes.

pub mod app;
pub mod authz;
pub mod backchannel;
pub mod bearer;
pub mod clock;
pub mod config;
pub mod gate;
pub mod http;
pub mod identity;
pub mod idp;
pub mod issuer_keys;
pub mod jwks;
pub mod jwt;
pub mod login;
pub mod metrics;
pub mod principal;
pub mod reload;
pub mod rules;
pub mod seal;
pub mod secret;
pub mod session;
pub mod tls;
pub mod verified_cache;

pub use http::layer::{ForwardAuth, ForwardAuthLayer, SignedIn};
