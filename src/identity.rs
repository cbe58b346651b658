//! Who the user is, as Portcullis hands it on: built from Keycloak-shaped claims, whether they
//! came from a session or a bearer token, so `[authz]` rules and identity headers treat both
//! alike.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod claim_mapping;
pub use claim_mapping::{ClaimMapping, ClaimPath};

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
    /// The `oidc.user_id_claim` value and that claim's path, when it is not `sub`
    /// ([`ClaimMapping::apply`]).
    #[serde(skip)]
    pub user: Option<(String, String)>,
    /// `[headers.claims]` values by claim path ([`ClaimMapping::apply`]).
    #[serde(skip)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, Deserialize, serde::Serialize)]
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
    /// The user id from `oidc.user_id_claim` when that is not `sub`, with that claim's path:
    /// sent as `X-Auth-Request-User` instead of `sub` while the configuration still names that
    /// claim ([`Identity::user_id`]).
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<(String, String)>,
    /// `[headers.claims]` values, by claim path, ready to send ([`claim_mapping::header_value`]).
    #[serde(rename = "x", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
}

impl Identity {
    /// `None` when there is no `sub` (RFC 7519 §4.1.2 makes it the user's identifier), or when
    /// `sub`, `email` or `preferred_username` can't be sent upstream exactly as it is (see
    /// [`Identity::unsendable_claim`]; logged with code `identity.unsendable`).
    pub fn from_claims(c: IdentityClaims) -> Option<Identity> {
        let sub = c.sub.filter(|s| !s.is_empty())?;
        let mut client_roles = Vec::new();
        for (client, list) in c.resource_access.unwrap_or_default() {
            for role in list.roles {
                client_roles.push((client.clone(), role));
            }
        }
        let identity = Identity {
            sub,
            email: c.email,
            email_verified: c.email_verified == Some(true),
            preferred_username: c.preferred_username,
            // Names with a comma, groups named `role:…` and client ids with `:` have always
            // been left out here, for `[authz]` as well as the headers; that stays, so no
            // `allowed_*` decision changes. The headers no longer rely on it:
            // `groups_header` encodes every name so that it can't be misread.
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
            user: c.user,
            claims: c.headers,
        };
        if let Some(claim) = identity.unsendable_claim() {
            tracing::warn!(code = "identity.unsendable", claim, sub = ?identity.sub, "identity refused: a claim holds characters an identity header can't carry exactly");
            return None;
        }
        Some(identity)
    }

    /// What `X-Auth-Request-User` carries: the value of the claim `mapping` names as the user
    /// id (kept at sign-in), or `sub` when that is the claim, the user has no such claim, or
    /// the session was made under another `oidc.user_id_claim`.
    pub fn user_id(&self, mapping: &ClaimMapping) -> &str {
        match &self.user {
            Some((path, value)) if path == mapping.user_id.as_str() && !value.is_empty() => value,
            _ => &self.sub,
        }
    }

    /// Which of `sub`, the user id, `email` and `preferred_username` (if any) can't be an identity header
    /// value exactly as it is: it holds a control character (CR, LF, NUL, DEL, tab…, invalid
    /// in a header value or a way to smuggle one), or starts or ends with a space (HTTP parsers
    /// strip it, so ` admin` would reach the app as `admin`).
    ///
    /// Such an identity is refused rather than sent with the header left out (a client's own
    /// copy could then reach the app) or sanitised (two users could then look alike). Keycloak
    /// never issues such values for its own users; a mapper or a brokered IdP might.
    pub fn unsendable_claim(&self) -> Option<&'static str> {
        let unsendable = |v: &str| {
            v.starts_with(' ') || v.ends_with(' ') || v.chars().any(|c| c.is_ascii_control())
        };
        [
            ("sub", Some(self.sub.as_str())),
            ("user_id_claim", self.user.as_ref().map(|(_, v)| v.as_str())),
            ("email", self.email.as_deref()),
            ("preferred_username", self.preferred_username.as_deref()),
        ]
        .into_iter()
        .find_map(|(claim, v)| v.is_some_and(unsendable).then_some(claim))
    }

    /// Adds the roles of an access token to an identity built from an ID token (Keycloak puts
    /// roles only in the access token), and its user id and claim header values (which win:
    /// on a refresh without an ID token they are the fresh ones).
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
        // The access token's values are as fresh as the ID token's at sign-in, and fresher on
        // a refresh that brings no ID token: they win.
        if other.user.is_some() {
            self.user = other.user;
        }
        self.claims.extend(other.claims);
    }

    /// The `X-Auth-Request-Groups` value: groups, then `role:NAME` for realm roles and
    /// `role:CLIENT:NAME` for client roles, comma-joined. Each name is written with
    /// [`push_header_name`], so the value reads the same to every app however it parses it:
    ///
    /// * a `:` is never part of a group entry, so no group (`role:x`, ` ROLE:x`,
    ///   `parent/role:x`) can read as a role, whatever an app trims or lowercases;
    /// * a realm role entry has exactly one `:` and a client role entry exactly two, so the
    ///   realm role `portcullis:admin` (sent as `role:portcullis%3Aadmin`) can't read as the
    ///   client role `admin` of client `portcullis` (`role:portcullis:admin`);
    /// * no entry starts or ends with whitespace, so trimming never turns ` admins` into the
    ///   group `admins`; a `,` inside a name can't split it into two entries.
    ///
    /// Empty names are left out (they would read as nothing, or as a bare `role:`).
    pub fn groups_header(&self) -> String {
        let mut out = String::new();
        let mut entry = |role: bool, parts: &[&str]| {
            if parts.iter().any(|p| p.is_empty()) {
                return;
            }
            if !out.is_empty() {
                out.push(',');
            }
            if role {
                out.push_str("role:");
            }
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    out.push(':');
                }
                push_header_name(&mut out, part);
            }
        };
        for g in &self.groups {
            entry(false, &[g]);
        }
        for r in &self.realm_roles {
            entry(true, &[r]);
        }
        for (c, r) in &self.client_roles {
            entry(true, &[c, r]);
        }
        out
    }
}

/// Writes `name` into an identity-header list, percent-encoded (RFC 3986 §2.1, `%XX` of each
/// UTF-8 byte, uppercase hex) where it could be misread:
///
/// * `%` (so decoding gives back exactly the name), `,` (the list separator) and `:` (the
///   role separator);
/// * every control character (C0, DEL, C1): they can't be sent in a header value, or are
///   stripped by some parsers;
/// * whitespace (Unicode `White_Space`, and U+FEFF) as the first or last character: HTTP
///   parsers strip it from the header value, apps trim list entries.
///
/// Any other character, non-ASCII included, is written as it is: a plain group name reads
/// exactly as before.
pub fn push_header_name(out: &mut String, name: &str) {
    push_list_entry(out, name, true);
}

/// [`push_header_name`]'s encoding, with `:` encoded only when `colon` is set (it separates
/// roles in the groups header; a claim header's entries have no such meaning).
pub fn push_list_entry(out: &mut String, name: &str, colon: bool) {
    let last = name.char_indices().last().map_or(0, |(i, _)| i);
    for (i, c) in name.char_indices() {
        let at_edge = i == 0 || i == last;
        let escape = matches!(c, '%' | ',')
            || (colon && c == ':')
            || c.is_control()
            || (at_edge && (c.is_whitespace() || c == '\u{feff}'));
        if escape {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        } else {
            out.push(c);
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

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

    /// How upstream apps read the groups header: split on `,`, trim, lowercase; `role:X` is a
    /// realm role, `role:C:X` a client role. Returns (groups, realm roles, client roles).
    fn as_apps_read(header: &str) -> (Vec<String>, Vec<String>, Vec<(String, String)>) {
        let (mut groups, mut realm, mut client) = (Vec::new(), Vec::new(), Vec::new());
        for entry in header.split(',').map(|e| e.trim().to_lowercase()) {
            match entry.strip_prefix("role:") {
                Some(role) => match role.split_once(':') {
                    Some((c, r)) => client.push((c.to_string(), r.to_string())),
                    None => realm.push(role.to_string()),
                },
                None if !entry.is_empty() => groups.push(entry),
                None => {}
            }
        }
        (groups, realm, client)
    }

    fn percent_decoded(s: &str) -> String {
        let mut out = Vec::new();
        let mut rest = s.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            let hex = tail.get(..2).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) if b == b'%' => {
                    out.push(v);
                    rest = &tail[2..];
                }
                _ => {
                    out.push(b);
                    rest = tail;
                }
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn identity(groups: &[&str], realm: &[&str], client: &[(&str, &str)]) -> Identity {
        Identity {
            sub: "u".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            realm_roles: realm.iter().map(|r| r.to_string()).collect(),
            client_roles: client
                .iter()
                .map(|(c, r)| (c.to_string(), r.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn group_names_never_read_as_roles_and_realm_roles_never_as_client_roles() {
        let id = identity(
            &[
                " role:admin",
                "ROLE:admin",
                "parent/role:x",
                "\u{a0}role:admin",
                "\u{feff}role:admin",
                "role%3Aadmin",
                " admins",
                "dev\t",
                "a,b",
                "line\r\nbreak",
                "nul\0del\u{7f}",
                "Équipe Δ",
            ],
            &["portcullis:admin", "platform-user", ""],
            &[("portcullis", "reader"), ("a:b", "c"), ("c", "d:e")],
        );
        let h = id.groups_header();
        assert_eq!(
            h,
            "%20role%3Aadmin,ROLE%3Aadmin,parent/role%3Ax,%C2%A0role%3Aadmin,%EF%BB%BFrole%3Aadmin,\
             role%253Aadmin,%20admins,dev%09,a%2Cb,line%0D%0Abreak,nul%00del%7F,Équipe Δ,\
             role:portcullis%3Aadmin,role:platform-user,role:portcullis:reader,role:a%3Ab:c,\
             role:c:d%3Ae"
        );
        let (groups, realm, client) = as_apps_read(&h);
        assert_eq!(groups.len(), 12);
        assert!(groups.iter().all(|g| !g.contains(':')));
        assert_eq!(realm, ["portcullis%3aadmin", "platform-user"]);
        assert_eq!(
            client,
            [
                ("portcullis".to_string(), "reader".to_string()),
                ("a%3ab".to_string(), "c".to_string()),
                ("c".to_string(), "d%3ae".to_string())
            ]
        );
        // Decoding each entry gives back exactly the names.
        let decoded: Vec<String> = h.split(',').take(12).map(percent_decoded).collect();
        assert_eq!(decoded, id.groups);
        // And the value is always a valid header value (nothing is ever left out for it).
        assert!(http::HeaderValue::from_str(&h).is_ok());
    }

    #[test]
    fn plain_names_are_unchanged() {
        let id = identity(
            &["admins", "team leads", "grafana-users"],
            &["platform-user"],
            &[("portcullis", "reader")],
        );
        assert_eq!(
            id.groups_header(),
            "admins,team leads,grafana-users,role:platform-user,role:portcullis:reader"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            /// Whatever the names, apps that split, trim and lowercase read exactly as many
            /// groups, realm roles and client roles as there are, no group contains `:`, and
            /// decoding gives back every name.
            #[test]
            fn every_name_reads_as_what_it_is(
                groups in proptest::collection::vec("\\PC{1,12}|[ \t,:%rRoOlLeE\u{a0}\r\n\0]{1,8}", 0..6),
                realm in proptest::collection::vec("\\PC{1,12}|[ :,%a\u{85}]{1,6}", 0..4),
                client in proptest::collection::vec(("[a-z:, ]{1,6}", "\\PC{1,8}"), 0..4),
            ) {
                let id = Identity {
                    sub: "u".into(),
                    groups: groups.clone(),
                    realm_roles: realm.clone(),
                    client_roles: client.clone(),
                    ..Default::default()
                };
                let h = id.groups_header();
                prop_assert!(http::HeaderValue::from_str(&h).is_ok(), "{h:?}");
                let (g, r, c) = as_apps_read(&h);
                prop_assert_eq!(g.len(), groups.len(), "{:?}", h);
                prop_assert!(g.iter().all(|g| !g.contains(':')));
                prop_assert_eq!(r.len(), realm.len(), "{:?}", h);
                prop_assert_eq!(c.len(), client.len(), "{:?}", h);
                let entries: Vec<&str> = h.split(',').collect();
                for (entry, name) in entries.iter().zip(&groups) {
                    prop_assert_eq!(&percent_decoded(entry), name);
                }
                for (entry, name) in entries[groups.len()..].iter().zip(&realm) {
                    prop_assert_eq!(&percent_decoded(&entry["role:".len()..]), name);
                }
                for (entry, (cl, role)) in entries[groups.len() + realm.len()..].iter().zip(&client) {
                    let (ec, er) = entry["role:".len()..].split_once(':').unwrap();
                    prop_assert_eq!(&percent_decoded(ec), cl);
                    prop_assert_eq!(&percent_decoded(er), role);
                }
            }
        }
    }

    #[test]
    fn an_identity_whose_claims_cannot_be_sent_exactly_is_refused() {
        let with = |claim: &str, value: &str| {
            let mut c = serde_json::json!({"sub": "u1", "email": "a@example.com", "preferred_username": "alice"});
            c[claim] = serde_json::json!(value);
            Identity::from_claims(serde_json::from_value(c).unwrap())
        };
        assert!(with("email", "a@example.com").is_some());
        assert!(
            with("preferred_username", "Ålice Δ").is_some(),
            "non-ASCII is fine"
        );
        assert!(with("preferred_username", "alice smith").is_some());
        for claim in ["sub", "email", "preferred_username"] {
            for bad in [
                "a\rb", "a\nb", "a\0b", "a\u{7f}b", "a\tb", " a", "a ", "\r\n",
            ] {
                assert!(with(claim, bad).is_none(), "{claim} = {bad:?}");
            }
        }
        // Groups never make an identity unsendable: they are encoded.
        let c = serde_json::json!({"sub": "u1", "groups": ["a\nb"]});
        let id = Identity::from_claims(serde_json::from_value(c).unwrap()).unwrap();
        assert_eq!(id.groups_header(), "a%0Ab");
    }

    #[test]
    fn no_sub_no_identity() {
        assert!(Identity::from_claims(IdentityClaims::default()).is_none());
    }
}
