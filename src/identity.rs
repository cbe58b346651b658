//! Who the user is, as Portcullis hands it on: built from Keycloak-shaped claims, whether they
//! came from a session or a bearer token, so `[authz]` rules and identity headers treat both
//! alike.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The parts of an ID/access token's claims that describe the user (Keycloak layout).
#[derive(Debug, Default, Deserialize)]
pub struct IdentityClaims {
    pub sub: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub realm_access: Option<RoleList>,
    #[serde(default)]
    pub resource_access: Option<BTreeMap<String, RoleList>>,
    pub sid: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RoleList {
    #[serde(default)]
    pub roles: Vec<String>,
}

/// An authenticated user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Subject (`sub`): stable user id, sent as `X-Auth-Request-User`.
    #[serde(rename = "s")]
    pub sub: String,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The IdP's `email_verified`: only a verified address counts for `authz.email_domains`.
    #[serde(rename = "v", default, skip_serializing_if = "std::ops::Not::not")]
    pub email_verified: bool,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Group names, without Keycloak's leading `/` when full paths are mapped.
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(rename = "r", default, skip_serializing_if = "Vec::is_empty")]
    pub realm_roles: Vec<String>,
    /// `(client, role)` pairs from `resource_access`.
    #[serde(rename = "c", default, skip_serializing_if = "Vec::is_empty")]
    pub client_roles: Vec<(String, String)>,
    /// The IdP session id (`sid`), used by back-channel logout.
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Identity {
    /// `None` when there is no `sub` (RFC 7519 §4.1.2 makes it the user's identifier).
    pub fn from_claims(c: IdentityClaims) -> Option<Identity> {
        let sub = c.sub.filter(|s| !s.is_empty())?;
        let mut client_roles = Vec::new();
        for (client, list) in c.resource_access.unwrap_or_default() {
            for role in list.roles {
                client_roles.push((client.clone(), role));
            }
        }
        Some(Identity {
            sub,
            email: c.email,
            email_verified: c.email_verified == Some(true),
            preferred_username: c.preferred_username,
            // `X-Auth-Request-Groups` is comma-joined and marks roles with `role:`: a group
            // name with a comma or that prefix could pass for another group or a role.
            groups: c
                .groups
                .into_iter()
                .map(|g| g.trim_start_matches('/').to_string())
                .filter(|g| !g.is_empty() && !g.contains(',') && !g.starts_with("role:"))
                .collect(),
            realm_roles: c
                .realm_access
                .map(|r| r.roles)
                .unwrap_or_default()
                .into_iter()
                .filter(|r| !r.contains(','))
                .collect(),
            client_roles: client_roles
                .into_iter()
                .filter(|(c, r)| !c.contains([',', ':']) && !r.contains(','))
                .collect(),
            sid: c.sid,
        })
    }

    /// Adds the roles of an access token to an identity built from an ID token (Keycloak puts
    /// roles only in the access token).
    pub fn merge_roles(&mut self, other: Identity) {
        for r in other.realm_roles {
            if !self.realm_roles.contains(&r) {
                self.realm_roles.push(r);
            }
        }
        for r in other.client_roles {
            if !self.client_roles.contains(&r) {
                self.client_roles.push(r);
            }
        }
        for g in other.groups {
            if !self.groups.contains(&g) {
                self.groups.push(g);
            }
        }
        if self.email.is_none() {
            self.email = other.email;
            self.email_verified = other.email_verified;
        } else if self.email == other.email {
            self.email_verified |= other.email_verified;
        }
        if self.preferred_username.is_none() {
            self.preferred_username = other.preferred_username;
        }
        if self.sid.is_none() {
            self.sid = other.sid;
        }
    }

    /// The `X-Auth-Request-Groups` value: groups, then `role:NAME` and `role:CLIENT:NAME`.
    pub fn groups_header(&self) -> String {
        let mut out = String::new();
        let mut push = |s: &str| {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(s);
        };
        for g in &self.groups {
            push(g);
        }
        for r in &self.realm_roles {
            push(&format!("role:{r}"));
        }
        for (c, r) in &self.client_roles {
            push(&format!("role:{c}:{r}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keycloak_claims_become_identity_and_groups_header() {
        let claims: IdentityClaims = serde_json::from_value(serde_json::json!({
            "sub": "u1", "email": "a@example.com", "preferred_username": "alice",
            "groups": ["/admins", "dev", "role:admin", "a,b"],
            "realm_access": {"roles": ["platform-user"]},
            "resource_access": {"portcullis": {"roles": ["reader"]}, "account": {"roles": ["view-profile"]}},
            "sid": "s-1"
        }))
        .unwrap();
        let id = Identity::from_claims(claims).unwrap();
        assert_eq!(id.groups, vec!["admins", "dev"]);
        assert_eq!(
            id.groups_header(),
            "admins,dev,role:platform-user,role:account:view-profile,role:portcullis:reader"
        );
        assert_eq!(id.sid.as_deref(), Some("s-1"));
    }

    #[test]
    fn no_sub_no_identity() {
        assert!(Identity::from_claims(IdentityClaims::default()).is_none());
    }
}
