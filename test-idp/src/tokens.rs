//! JWT minting: Keycloak-shaped claim sets for access, ID, refresh and back-channel
//! logout tokens, override merging, and raw signing with any named key.

use std::str::FromStr as _;

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value, json};

use crate::TestUser;
use crate::keys::KeyRing;
use crate::support::{b64url, random_uuid};

/// Event key of an OIDC back-channel logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Builds and signs tokens for one IdP instance.
pub(crate) struct TokenFactory {
    pub keys: KeyRing,
    pub issuer: String,
    pub client_id: String,
}

/// Times and session data shared by the tokens of one issuance.
pub(crate) struct Issue<'a> {
    pub now: u64,
    pub ttl: u64,
    pub sid: &'a str,
    pub scope: &'a str,
}

/// Merge `overrides` (a JSON object) into `claims`; a `null` value removes the claim.
/// Non-object overrides are ignored.
pub(crate) fn merge(claims: &mut Value, overrides: &Value) {
    let (Some(target), Some(over)) = (claims.as_object_mut(), overrides.as_object()) else {
        return;
    };
    for (k, v) in over {
        if v.is_null() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}

fn resource_access(user: &TestUser) -> Value {
    let mut map = Map::new();
    for (client, role) in &user.client_roles {
        let entry = map
            .entry(client.clone())
            .or_insert_with(|| json!({ "roles": [] }));
        if let Some(roles) = entry.get_mut("roles").and_then(Value::as_array_mut) {
            roles.push(json!(role));
        }
    }
    Value::Object(map)
}

impl TokenFactory {
    /// Keycloak 26 style access token claims.
    pub(crate) fn access_claims(&self, user: &TestUser, issue: &Issue<'_>) -> Value {
        let mut claims = json!({
            "exp": issue.now + issue.ttl,
            "iat": issue.now,
            "auth_time": issue.now,
            "jti": random_uuid(),
            "iss": self.issuer,
            "aud": [self.client_id, "account"],
            "sub": user.sub,
            "typ": "Bearer",
            "azp": self.client_id,
            "sid": issue.sid,
            "acr": "1",
            "realm_access": { "roles": user.realm_roles },
            "scope": issue.scope,
            "email_verified": true,
            "preferred_username": user.preferred_username,
            "email": user.email,
            "groups": user.groups,
        });
        let ra = resource_access(user);
        if ra.as_object().is_some_and(|m| !m.is_empty())
            && let Some(obj) = claims.as_object_mut()
        {
            obj.insert("resource_access".into(), ra);
        }
        merge(&mut claims, &user.extra_claims);
        claims
    }

    /// Keycloak style ID token claims.
    pub(crate) fn id_claims(
        &self,
        user: &TestUser,
        issue: &Issue<'_>,
        auth_time: u64,
        nonce: Option<&str>,
    ) -> Value {
        let mut claims = json!({
            "exp": issue.now + issue.ttl,
            "iat": issue.now,
            "auth_time": auth_time,
            "jti": random_uuid(),
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": user.sub,
            "typ": "ID",
            "azp": self.client_id,
            "sid": issue.sid,
            "acr": "1",
            "email_verified": true,
            "preferred_username": user.preferred_username,
            "email": user.email,
            "groups": user.groups,
        });
        if let (Some(n), Some(obj)) = (nonce, claims.as_object_mut()) {
            obj.insert("nonce".into(), json!(n));
        }
        merge(&mut claims, &user.extra_claims);
        claims
    }

    /// Keycloak style refresh token claims (the token itself is treated as opaque by clients).
    pub(crate) fn refresh_claims(&self, user: &TestUser, issue: &Issue<'_>) -> Value {
        json!({
            "exp": issue.now + issue.ttl,
            "iat": issue.now,
            "jti": random_uuid(),
            "iss": self.issuer,
            "aud": self.issuer,
            "sub": user.sub,
            "typ": "Refresh",
            "azp": self.client_id,
            "sid": issue.sid,
            "scope": issue.scope,
        })
    }

    /// OIDC back-channel logout token claims.
    pub(crate) fn logout_claims(&self, sub: &str, sid: &str, now: u64) -> Value {
        json!({
            "iat": now,
            "exp": now + 120,
            "jti": random_uuid(),
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": sub,
            "typ": "Logout",
            "sid": sid,
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        })
    }

    /// Sign `claims` with key `kid` using the key's own algorithm and header
    /// `{alg, typ, kid}`.
    pub(crate) fn sign(&self, claims: &Value, kid: &str, typ: &str) -> String {
        let key = self.keys.must(kid);
        let header = json!({ "alg": alg_name(key.alg), "typ": typ, "kid": kid });
        self.sign_raw(&header, claims, kid)
    }

    /// Like [`TokenFactory::sign`] but the signature is made by `rsa-rogue` while the
    /// header names `kid` (an invalid signature for a known key id).
    pub(crate) fn sign_with_rogue_key(&self, claims: &Value, kid: &str, typ: &str) -> String {
        let header = json!({ "alg": "RS256", "typ": typ, "kid": kid });
        self.sign_raw(&header, claims, "rsa-rogue")
    }

    /// Serialize `header` and `claims` exactly as given and sign with key `kid`:
    /// - `alg` "none" (any case): no signature (`header.claims.`);
    /// - `alg` HS256/HS384/HS512: HMAC keyed with the key's public PEM text
    ///   (the classic RSA→HMAC algorithm-confusion attack);
    /// - an algorithm of the key's family (e.g. PS256 with an RSA key): that algorithm;
    /// - anything else (missing, unknown, or another family): the key's own algorithm,
    ///   leaving the (lying) header as it is.
    pub(crate) fn sign_raw(&self, header: &Value, claims: &Value, kid: &str) -> String {
        let key = self.keys.must(kid);
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let alg_text = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if alg_text.eq_ignore_ascii_case("none") {
            return format!("{signing_input}.");
        }
        let (alg, signing_key) = match Algorithm::from_str(alg_text) {
            Ok(a @ (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)) => {
                (a, EncodingKey::from_secret(key.public_pem.as_bytes()))
            }
            Ok(a) if key.encoding.family().algorithms().contains(&a) => (a, key.encoding.clone()),
            _ => (key.alg, key.encoding.clone()),
        };
        match jsonwebtoken::crypto::sign(signing_input.as_bytes(), &signing_key, alg) {
            Ok(sig) => format!("{signing_input}.{sig}"),
            Err(e) => panic!("test-idp: signing with {kid} as {alg:?} failed: {e}"),
        }
    }
}

/// HMAC-sign `header.claims` with `secret` (HS256/384/512 per the header, else HS256).
pub(crate) fn sign_hmac(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("HS384") => Algorithm::HS384,
        Some("HS512") => Algorithm::HS512,
        _ => Algorithm::HS256,
    };
    match jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(secret),
        alg,
    ) {
        Ok(sig) => format!("{signing_input}.{sig}"),
        Err(e) => panic!("test-idp: HMAC signing failed: {e}"),
    }
}

/// JOSE name of an algorithm.
pub(crate) fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_overrides_and_removes() {
        let mut c = json!({"a": 1, "b": 2});
        merge(&mut c, &json!({"a": 5, "b": null, "c": "x"}));
        assert_eq!(c, json!({"a": 5, "c": "x"}));
    }

    #[test]
    fn resource_access_groups_roles_by_client() {
        let mut u = TestUser::alice();
        u.client_roles.push(("portcullis".into(), "writer".into()));
        u.client_roles.push(("grafana".into(), "viewer".into()));
        assert_eq!(
            resource_access(&u),
            json!({"portcullis": {"roles": ["reader", "writer"]}, "grafana": {"roles": ["viewer"]}})
        );
    }
}
