//! The registered and Keycloak claims Portcullis reads from a JWT payload.

use crate::identity::{IdentityClaims, RoleList};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
pub struct TokenClaims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    #[serde(default)]
    pub aud: Audience,
    pub azp: Option<String>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub nbf: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub iat: Option<u64>,
    pub jti: Option<String>,
    /// Keycloak's token type claim: "Bearer", "ID", "Logout", "Refresh".
    pub typ: Option<String>,
    pub nonce: Option<String>,
    pub sid: Option<String>,
    /// Present on logout tokens (OIDC Back-Channel Logout §2.4).
    pub events: Option<serde_json::Map<String, serde_json::Value>>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub realm_access: Option<RoleList>,
    pub resource_access: Option<BTreeMap<String, RoleList>>,
}

impl TokenClaims {
    /// Moves the user-describing claims out.
    pub fn take_identity(&mut self) -> IdentityClaims {
        IdentityClaims {
            sub: self.sub.clone(),
            email: self.email.take(),
            email_verified: self.email_verified,
            preferred_username: self.preferred_username.take(),
            groups: std::mem::take(&mut self.groups),
            realm_access: self.realm_access.take(),
            resource_access: self.resource_access.take(),
            sid: self.sid.clone(),
            ..IdentityClaims::default()
        }
    }
}

/// `aud`: a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Audience(pub Vec<String>);

impl Audience {
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => Audience(vec![s]),
            OneOrMany::Many(v) => Audience(v),
        })
    }
}

/// NumericDate: integer or (rarely) fractional seconds; negative or absurd values refused.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<serde_json::Number>::deserialize(d)?;
    match v {
        None => Ok(None),
        Some(n) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else if let Some(f) = n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e12)
            {
                Ok(Some(f as u64))
            } else {
                Err(serde::de::Error::custom("bad NumericDate"))
            }
        }
    }
}
