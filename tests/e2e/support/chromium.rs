//! A fresh headless Chromium session (its own profile directory) driven through chromedriver.

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

use super::env::Env;
use super::{R, err};

/// Starts Chromium with a `width`×`height` window and a profile under the run directory.
pub async fn chromium(env: &Env, label: &str, (width, height): (u32, u32)) -> R<Client> {
    let webdriver = env.webdriver_url.clone().ok_or_else(|| {
        err("E2E_WEBDRIVER_URL is not set: chromedriver was not started (E2E_SKIP_BROWSER?)")
    })?;
    let profile = format!("{}/chromium-{label}", env.run_dir);
    std::fs::create_dir_all(&profile)?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": env.chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", format!("--window-size={width},{height}"),
                format!("--user-data-dir={profile}"),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    Ok(ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&webdriver)
        .await?)
}
