//! Portcullis: a forward-auth single-sign-on proxy for Traefik, nginx, Caddy and Envoy.
//!
//! The pure core (`config`, `token/jwt`, `token/jwks`, `session`, `login/state_cookies`,
//! `login/redirect_policy`, `login/auth_params`, `authz`, `rules`, `gate`, `pages`) never sees
//! HTTP types; a test (`tests/it/pure_core.rs`) reads this list and fails when one of them
//! names `hyper`, `http` or `http_body`. `http` adapts requests and responses; `idp` is the only module that talks
//! to the identity provider; `login` is the browser sign-in, `token` the JWTs verified here,
//! `session` where sessions live; `app` wires it all together and `reload` replaces it when
//! the configuration changes; `cli` reads the binary's command line; `telemetry` sets up logs
//! and OpenTelemetry traces.

pub mod app;
pub mod audit;
pub mod authz;
pub mod cli;
pub mod clock;
pub mod config;
pub mod gate;
pub mod http;
pub mod identity;
pub mod idp;
pub mod login;
pub mod metrics;
pub mod pages;
pub mod principal;
pub mod reload;
pub mod request_context;
pub mod rules;
pub mod seal;
pub mod secret;
pub mod session;
pub mod telemetry;
pub mod tls;
pub mod token;

pub use http::layer::{ForwardAuth, ForwardAuthLayer, SignedIn};
