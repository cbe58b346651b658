//! The environment `scripts/e2e` exports.

use super::{R, err};

/// URLs of the running components.
#[derive(Debug, Clone)]
pub struct Env {
    pub run_dir: String,
    pub keycloak_url: String,
    pub keycloak_issuer: String,
    pub keycloak_admin_user: String,
    pub keycloak_admin_password: String,
    /// The echo app, directly (no authentication).
    pub app_url: String,
    /// The app through Caddy + Portcullis A (`http://app.localhost:PORT`).
    pub caddy_url: String,
    /// The app through nginx + Portcullis B (`http://nginx.localhost:PORT`).
    pub nginx_url: String,
    /// Portcullis A, directly.
    pub portcullis_caddy_url: String,
    /// Portcullis B, directly.
    pub portcullis_nginx_url: String,
    /// chromedriver, if it was started.
    pub webdriver_url: Option<String>,
    pub chromium: String,
    /// The OpenTelemetry Collector (tools/otel-collector): its OTLP/HTTP base URL, what
    /// `[telemetry] otlp_endpoint` takes.
    pub otel_collector_url: String,
    /// The file its exporter writes what it receives to: OTLP JSON, one line per batch.
    pub otel_collector_file: String,
}

fn var(name: &str) -> R<String> {
    std::env::var(name).map_err(|_| err(format!("{name} is not set")))
}

impl Env {
    /// Reads the environment, or fails with instructions when the suite
    /// was not started through `scripts/e2e`.
    pub fn load() -> R<Self> {
        if std::env::var_os("E2E_ENV").is_none() {
            return Err(err(
                "E2E_ENV is not set: the end-to-end tests need real Keycloak, Caddy, nginx and \
                 Chromium started by scripts/e2e. Run `scripts/e2e` instead of cargo test.",
            ));
        }
        Ok(Self {
            run_dir: var("E2E_RUN_DIR")?,
            keycloak_url: var("E2E_KEYCLOAK_URL")?,
            keycloak_issuer: var("E2E_KEYCLOAK_ISSUER")?,
            keycloak_admin_user: var("E2E_KEYCLOAK_ADMIN_USER")?,
            keycloak_admin_password: var("E2E_KEYCLOAK_ADMIN_PASSWORD")?,
            app_url: var("E2E_APP_URL")?,
            caddy_url: var("E2E_CADDY_URL")?,
            nginx_url: var("E2E_NGINX_URL")?,
            portcullis_caddy_url: var("E2E_PORTCULLIS_CADDY_URL")?,
            portcullis_nginx_url: var("E2E_PORTCULLIS_NGINX_URL")?,
            webdriver_url: std::env::var("E2E_WEBDRIVER_URL").ok(),
            chromium: std::env::var("E2E_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            otel_collector_url: var("E2E_OTEL_COLLECTOR_URL")?,
            otel_collector_file: var("E2E_OTEL_COLLECTOR_FILE")?,
        })
    }

    /// The two front ends: (name, public URL of the app behind it).
    pub fn front_ends(&self) -> [(&'static str, &str); 2] {
        [
            ("caddy", self.caddy_url.as_str()),
            ("nginx", self.nginx_url.as_str()),
        ]
    }
}
