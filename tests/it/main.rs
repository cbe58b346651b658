//! Integration tests: Portcullis served on 127.0.0.1:0 in-process, against the in-process
//! Keycloak-shaped test IdP (real RSA/EC/Ed25519 keys, discovery, JWKS, token endpoint, and a
//! switch for each misbehaviour). One binary, several modules (STYLE.md: ring 3).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod support;

mod bearer;
mod config_cli;
mod connections;
mod endpoints;
mod envoy;
mod layer;
mod login;
mod logout;
mod observability;
mod otlp_receiver;
mod pages;
mod pure_core;
mod redis_ha;
mod redis_sessions;
mod reload;
mod router;
mod rules;
mod session;
mod telemetry;
mod tls;
mod traefik;
