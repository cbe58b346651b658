//! Shared helpers for the end-to-end tests.

pub mod browser_like;
pub mod chromium;
pub mod env;
pub mod html;
pub mod keycloak;
pub mod load;

/// Error type of every helper and test: anything displayable.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result of every helper and test.
pub type R<T = ()> = Result<T, Error>;

/// Builds an error from a message.
pub fn err(msg: impl Into<String>) -> Error {
    msg.into().into()
}

/// GETs `path` through every front end with `headers` and requires `status` from each.
pub async fn expect_status_everywhere(
    env: &env::Env,
    b: &browser_like::BrowserLike,
    path: &str,
    headers: &[(&str, &str)],
    status: u16,
) -> R {
    for (name, base) in env.front_ends() {
        let resp = b.get_with(&format!("{base}{path}"), headers).await?;
        assert_eq!(resp.status, status, "{name}: {}", resp.describe());
    }
    Ok(())
}

/// The JSON the echo app answers with (`scripts/lib/echo_app.py`).
#[derive(Debug, serde::Deserialize)]
pub struct Echo {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: std::collections::BTreeMap<String, String>,
}

impl Echo {
    /// Parses an echo-app body.
    pub fn parse(body: &str) -> R<Self> {
        serde_json::from_str(body)
            .map_err(|e| err(format!("not an echo-app answer ({e}): {}", snippet(body))))
    }

    /// A request header as the app saw it (names are lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Asserts the identity headers the app received are alice's (`sub` = `alice_id`).
    pub fn assert_alice(&self, alice_id: &str) {
        assert_eq!(
            self.header("x-auth-request-user"),
            Some(alice_id),
            "User is the sub claim"
        );
        assert_eq!(
            self.header("x-auth-request-email"),
            Some("alice@example.com")
        );
        assert_eq!(
            self.header("x-auth-request-preferred-username"),
            Some("alice")
        );
    }
}

/// The first 600 characters of a body, for error messages.
pub fn snippet(body: &str) -> String {
    body.chars().take(600).collect()
}
