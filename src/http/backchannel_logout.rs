//! `POST /oauth2/backchannel-logout` (OIDC Back-Channel Logout 1.0 §2.5, §2.8): a form with
//! `logout_token`; 200 when sessions were ended, 400 with a JSON error otherwise.

use super::Body;
use super::problem::{LogoutRejection, Problem};
use crate::app::App;
use crate::login::backchannel_logout::LogoutError;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, header};
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;

const MAX_BODY: usize = 32 * 1024;
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn accept<B>(app: &Arc<App>, headers: &HeaderMap, body: B) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let form = super::header_str(headers, header::CONTENT_TYPE)
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return rejected(LogoutRejection::NotAForm);
    }
    // A slow body (1 byte a minute) must not hold a task forever.
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await;
    let Ok(Ok(collected)) = read else {
        return rejected(LogoutRejection::Unreadable);
    };
    let bytes = collected.to_bytes();
    let Some(token) = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
    else {
        return rejected(LogoutRejection::MissingToken);
    };
    match app.backchannel_logout(&token).await {
        Ok(()) => {
            app.metrics()
                .backchannel_logouts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut r = Response::new(Full::new(Bytes::new()));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::warn!(code = "logout.backchannel_rejected", reason = %e, "back-channel logout refused");
            rejected(match e {
                LogoutError::Replayed => LogoutRejection::Replayed,
                LogoutError::Invalid(_) => LogoutRejection::InvalidToken,
                LogoutError::StoreUnavailable => LogoutRejection::StoreUnavailable,
            })
        }
    }
}

fn rejected(why: LogoutRejection) -> Response<Body> {
    Problem::LogoutRejected(why).response(None)
}
