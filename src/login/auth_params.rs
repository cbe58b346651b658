//! The extra parameters of an authorization request a platform asks for: `prompt`,
//! `login_hint`, `acr_values` (OIDC Core §3.1.2.1) and Keycloak's `kc_idp_hint` (which
//! brokered IdP to use). Set in `[oidc]` for every login, or asked for on `/oauth2/start`
//! (`/oauth2/start?kc_idp_hint=github&rd=…`) when the configuration leaves them unset: a
//! configured value is never overridden by a link. Nothing else is ever passed through; every
//! value is checked. These shape the request the IdP sees, which the browser carries: a
//! user can edit it, so a required `acr` or a forced re-login is enforced at the IdP
//! (Keycloak's authentication flows and client policies), not by this request alone.

/// The names accepted, in `[oidc]` and on `/oauth2/start`.
pub const NAMES: [&str; 4] = ["prompt", "login_hint", "acr_values", "kc_idp_hint"];

/// The values of [`NAMES`], each checked by [`AuthParams::set`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthParams {
    /// Space-separated: `none`, `login`, `consent`, `select_account` (`none` alone).
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    /// Space-separated authentication context class references.
    pub acr_values: Option<String>,
    pub kc_idp_hint: Option<String>,
}

impl AuthParams {
    /// Sets `name` to `value` after checking it; `Err` says what is wrong (no echo of the value).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), &'static str> {
        let slot = match name {
            "prompt" => {
                let words: Vec<&str> = value.split(' ').collect();
                let known = ["none", "login", "consent", "select_account"];
                if words.iter().any(|w| !known.contains(w)) {
                    return Err("must be none, login, consent or select_account (space-separated)");
                }
                if words.len() > 1 && words.contains(&"none") {
                    return Err("none can't be combined with another prompt (OIDC Core §3.1.2.1)");
                }
                &mut self.prompt
            }
            "login_hint" => {
                if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
                    return Err("must be 1 to 256 characters, without control characters");
                }
                &mut self.login_hint
            }
            "acr_values" => {
                let ok = |w: &str| {
                    !w.is_empty()
                        && w.len() <= 128
                        && w.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b":._/-".contains(&b))
                };
                if value.split(' ').count() > 8 || !value.split(' ').all(ok) {
                    return Err(
                        "must be up to 8 space-separated values of letters, digits and :._/-",
                    );
                }
                &mut self.acr_values
            }
            "kc_idp_hint" => {
                let ok = !value.is_empty()
                    && value.len() <= 64
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                if !ok {
                    return Err("must be an IdP alias: 1 to 64 letters, digits, ., _ or -");
                }
                &mut self.kc_idp_hint
            }
            _ => {
                return Err(
                    "is not a login parameter (prompt, login_hint, acr_values, kc_idp_hint)",
                );
            }
        };
        *slot = Some(value.to_string());
        Ok(())
    }

    /// The parameters a `/oauth2/start` query asks for, among [`NAMES`] (others, such as
    /// `rd`, are not login parameters and are ignored here); `Err` names the first bad one.
    pub fn from_query<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<AuthParams, (&'static str, &'static str)> {
        let mut asked = AuthParams::default();
        for (name, value) in pairs {
            if let Some(known) = NAMES.iter().find(|n| **n == name) {
                asked.set(known, value).map_err(|why| (*known, why))?;
            }
        }
        Ok(asked)
    }

    /// These (configured) values, with what `asked` adds where none is configured.
    pub fn with_asked(&self, asked: AuthParams) -> AuthParams {
        AuthParams {
            prompt: self.prompt.clone().or(asked.prompt),
            login_hint: self.login_hint.clone().or(asked.login_hint),
            acr_values: self.acr_values.clone().or(asked.acr_values),
            kc_idp_hint: self.kc_idp_hint.clone().or(asked.kc_idp_hint),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked() {
        let mut p = AuthParams::default();
        for (name, good) in [
            ("prompt", "login"),
            ("prompt", "consent select_account"),
            ("login_hint", "alice@example.com"),
            ("acr_values", "urn:mace:incommon:iap:silver gold"),
            ("kc_idp_hint", "github-corp"),
        ] {
            assert_eq!(p.set(name, good), Ok(()), "{name}={good}");
        }
        for (name, bad) in [
            ("prompt", "none login"),
            ("prompt", "always"),
            ("prompt", ""),
            ("login_hint", "a\r\nb"),
            ("login_hint", ""),
            ("acr_values", "a&b=c"),
            ("acr_values", "  "),
            ("kc_idp_hint", "../x"),
            ("kc_idp_hint", "github&client_id=evil"),
            ("redirect_uri", "https://evil.example"),
            ("scope", "openid admin"),
        ] {
            assert!(p.set(name, bad).is_err(), "{name}={bad:?}");
        }
        let long = "a".repeat(257);
        assert!(p.set("login_hint", &long).is_err());
    }

    #[test]
    fn the_query_adds_only_what_the_configuration_leaves_unset() {
        let configured = AuthParams {
            prompt: Some("login".into()),
            acr_values: Some("mfa".into()),
            ..Default::default()
        };
        let query = [
            ("rd", "https://app.example.com/"),
            ("prompt", "none"),
            ("acr_values", "1"),
            ("kc_idp_hint", "github"),
            ("login_hint", "bob"),
            ("redirect_uri", "https://evil.example/"),
        ];
        let asked = AuthParams::from_query(query.into_iter()).unwrap();
        let used = configured.with_asked(asked);
        assert_eq!(used.prompt.as_deref(), Some("login"));
        assert_eq!(used.acr_values.as_deref(), Some("mfa"));
        assert_eq!(used.kc_idp_hint.as_deref(), Some("github"));
        assert_eq!(used.login_hint.as_deref(), Some("bob"));
        assert_eq!(
            AuthParams::from_query([("kc_idp_hint", "a b")].into_iter()).map_err(|e| e.0),
            Err("kc_idp_hint")
        );
    }
}
