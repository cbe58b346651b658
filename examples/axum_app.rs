//! An axum app protected by Portcullis in process, with no proxy in front and no extra hop:
//! the same configuration file as the server, the same decision, the same sign-in.
//!
//! ```sh
//! cargo run --example axum_app -- config/example.toml
//! ```
//!
//! It listens on the configuration's `listen` address. `/` greets the signed-in user (a
//! browser without a session is sent to the IdP first); `/api/me` answers JSON (an API client
//! without credentials gets 401, with a bearer token its identity). The sign-in endpoints
//! (`/oauth2/start`, `/oauth2/callback`, `/oauth2/sign_out`) are served by the layer, so the
//! IdP's redirect URI is `{public_url}/oauth2/callback` as usual. Tested by
//! `tests/it/layer.rs`.

use axum::routing::get;
use axum::{Extension, Json, Router};
use portcullis::config::Config;
use portcullis::{ForwardAuthLayer, SignedIn};
use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: axum_app CONFIG.toml")?;
    // PORTCULLIS_* variables override the file's keys, as for the server.
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = Config::load(&path, &env).map_err(|problems| problems.join("\n"))?;
    let listen = config.listen;
    let auth = ForwardAuthLayer::from_config(config)?;

    let app = Router::new()
        .route("/", get(home))
        .route("/api/me", get(me))
        .layer(auth);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Only reached by signed-in users (or on a `public` route, without the extension).
async fn home(user: Option<Extension<SignedIn>>) -> String {
    match user {
        Some(Extension(user)) => {
            let id = user.identity();
            format!(
                "Hello, {}!\n",
                id.preferred_username.as_deref().unwrap_or(&id.sub)
            )
        }
        None => "Hello, visitor!\n".to_owned(),
    }
}

async fn me(Extension(user): Extension<SignedIn>) -> Json<serde_json::Value> {
    let id = user.identity();
    Json(serde_json::json!({
        "sub": id.sub,
        "email": id.email,
        "preferred_username": id.preferred_username,
    }))
}
