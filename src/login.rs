//! The browser's sign-in, end to end: where a login may return to ([`redirect_policy`]), the
//! state cookie that binds a login attempt to its browser ([`state_cookies`]), the relying
//! party that starts and finishes logins and refreshes sessions on openidconnect ([`oidc`]),
//! and OIDC Back-Channel Logout ([`backchannel_logout`]); the extra parameters a login may
//! ask the IdP for ([`auth_params`]). The HTTP handlers are in
//! `src/http/login.rs` and `src/http/backchannel_logout.rs`.

pub mod auth_params;
pub mod backchannel_logout;
pub mod oidc;
pub mod redirect_policy;
pub mod state_cookies;
