//! End-to-end suite: real Keycloak, real Caddy and nginx, real Chromium.
//!
//! Not part of the normal `cargo test`: the target needs the `e2e` feature
//! and the environment that `scripts/e2e` prepares (it starts every
//! component on free 127.0.0.1 ports and exports their URLs as `E2E_*`).
//! Run it with
//!
//! ```sh
//! scripts/e2e                 # everything
//! scripts/e2e http_login      # only tests whose name contains "http_login"
//! ```
//!
//! Run directly without that environment, every test fails with a message
//! saying so (rather than passing without having checked anything).

mod caddy;
mod instance;
#[path = "../common/redis_server.rs"]
mod redis_server;
mod support;

mod backchannel;
mod bearer;
mod browser;
mod error_pages;
mod faults;
mod health;
mod http_authz;
mod http_login;
mod http_rules;
mod oauth2_proxy;
mod refresh;
mod sign_out;
mod telemetry;
mod z1_key_rotation;
mod z2_keycloak_outage;
mod z3_keycloak_restart;
