//! Which claims mean what (`oidc.email_claim`, `oidc.groups_claim`, `oidc.user_id_claim`) and
//! which claims are sent upstream as headers of their own (`[headers.claims]`), read from a
//! verified token's payload.
//!
//! A claim is named by a path: `tenant`, or `realm_access.roles` for a nested one (each `.`
//! steps into an object, so a claim whose own name holds a `.` can't be named). The standard
//! mapping (`email`, `groups`, `sub`, no claim headers) never needs the payload as a JSON
//! value: the typed claims already hold everything ([`ClaimMapping::is_standard`]).

use super::{IdentityClaims, push_list_entry};
use serde_json::Value;

/// The longest claim header value sent, in bytes. A longer one is not sent (the header goes
/// out empty), never cut: a shortened list of groups or tenants would read as a different one.
pub const MAX_CLAIM_HEADER_LEN: usize = 1024;

/// A claim's path in the token payload, e.g. `realm_access.roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    text: String,
}

impl ClaimPath {
    /// `None` for an empty path or one with an empty step (`a..b`, `.a`, `a.`).
    pub fn parse(text: &str) -> Option<ClaimPath> {
        if text.is_empty() || text.split('.').any(str::is_empty) {
            return None;
        }
        Some(ClaimPath {
            text: text.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn is(&self, name: &str) -> bool {
        self.text == name
    }

    /// The value at this path, if every step is an object holding the next one.
    pub fn find<'v>(&self, payload: &'v Value) -> Option<&'v Value> {
        self.text
            .split('.')
            .try_fold(payload, |v, step| v.as_object()?.get(step))
    }
}

/// How claims become the identity, and which become headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    /// `oidc.email_claim` (default `email`).
    pub email: ClaimPath,
    /// `oidc.groups_claim` (default `groups`): a list of strings, or one string.
    pub groups: ClaimPath,
    /// `oidc.user_id_claim` (default `sub`): what `X-Auth-Request-User` carries. Sessions
    /// and back-channel logout still key on `sub`.
    pub user_id: ClaimPath,
    /// `[headers.claims]`: header name (lowercase, a valid HTTP token: [`is_header_name`])
    /// → claim, by header name.
    pub headers: Vec<(String, ClaimPath)>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        let path = |p: &str| ClaimPath {
            text: p.to_string(),
        };
        ClaimMapping {
            email: path("email"),
            groups: path("groups"),
            user_id: path("sub"),
            headers: Vec::new(),
        }
    }
}

impl ClaimMapping {
    /// True when the typed claims hold everything this mapping reads.
    pub fn is_standard(&self) -> bool {
        self.email.is("email")
            && self.groups.is("groups")
            && self.user_id.is("sub")
            && self.headers.is_empty()
    }

    /// Applies the non-standard parts of the mapping to claims read the standard way from the
    /// same verified `payload`: another email, groups or user id claim, and the claim header
    /// values (kept by claim path, so renaming a header needs no new login).
    pub fn apply(&self, payload: &Value, claims: &mut IdentityClaims) {
        if !self.email.is("email") {
            let standard = claims.email.take();
            claims.email = self.email.find(payload).and_then(scalar_text);
            // `email_verified` is about the `email` claim: it vouches for another claim only
            // when that holds the same address.
            if claims.email != standard {
                claims.email_verified = Some(false);
            }
        }
        if !self.groups.is("groups") {
            claims.groups = match self.groups.find(payload) {
                Some(Value::Array(items)) => items.iter().filter_map(scalar_text).collect(),
                Some(v) => scalar_text(v).into_iter().collect(),
                None => Vec::new(),
            };
        }
        if !self.user_id.is("sub") {
            claims.user = self
                .user_id
                .find(payload)
                .and_then(scalar_text)
                .filter(|v| !v.is_empty())
                .map(|v| (self.user_id.as_str().to_string(), v));
        }
        for (header, path) in &self.headers {
            let Some(value) = path.find(payload) else {
                continue;
            };
            match header_value(value) {
                Some(v) => {
                    claims.headers.insert(path.as_str().to_string(), v);
                }
                None => tracing::warn!(
                    code = "identity.claim_not_sent",
                    %header,
                    claim = path.as_str(),
                    "a claim header is sent empty: the claim is an object, or longer than {MAX_CLAIM_HEADER_LEN} bytes"
                ),
            }
        }
    }
}

/// An HTTP field name (RFC 9110 §5.1: a `token`).
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A string, number or boolean claim as text; `None` for anything else.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A claim as a header value: a scalar as text, an array of scalars comma-joined. Each string
/// is written with [`push_list_entry`] (`%`, `,`, control characters and whitespace at either
/// end percent-encoded), so CR/LF can never split a header and `a,b` can't read as two
/// entries. `None` for an object, a null, an array holding anything but scalars, or a value
/// over [`MAX_CLAIM_HEADER_LEN`].
pub fn header_value(v: &Value) -> Option<String> {
    let mut out = String::new();
    match v {
        Value::Array(items) => {
            // An entry that is not a scalar would be left out, and a shortened list can read
            // as another one: such a list is not sent at all.
            for item in items {
                if !out.is_empty() {
                    out.push(',');
                }
                push_list_entry(&mut out, &scalar_text(item)?, false);
            }
        }
        v => push_list_entry(&mut out, &scalar_text(v)?, false),
    }
    (out.len() <= MAX_CLAIM_HEADER_LEN).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(email: &str, groups: &str, user: &str, headers: &[(&str, &str)]) -> ClaimMapping {
        let p = |s: &str| ClaimPath::parse(s).unwrap();
        ClaimMapping {
            email: p(email),
            groups: p(groups),
            user_id: p(user),
            headers: headers.iter().map(|(h, c)| (h.to_string(), p(c))).collect(),
        }
    }

    #[test]
    fn paths_step_into_objects_and_refuse_empty_steps() {
        let payload = json!({"realm_access": {"roles": ["a", "b"]}, "t": "x"});
        let p = ClaimPath::parse("realm_access.roles").unwrap();
        assert_eq!(p.find(&payload), Some(&json!(["a", "b"])));
        assert_eq!(ClaimPath::parse("t.inner").unwrap().find(&payload), None);
        assert_eq!(ClaimPath::parse("missing").unwrap().find(&payload), None);
        for bad in ["", ".", "a..b", ".a", "a."] {
            assert_eq!(ClaimPath::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn header_names_are_tokens() {
        assert!(is_header_name("x-auth-request-tenant"));
        for bad in ["", "x tenant", "x:tenant", "x\r\ny", "é"] {
            assert!(!is_header_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn header_values_are_joined_encoded_and_bounded() {
        assert_eq!(header_value(&json!("acme")).as_deref(), Some("acme"));
        assert_eq!(header_value(&json!(42)).as_deref(), Some("42"));
        assert_eq!(header_value(&json!(true)).as_deref(), Some("true"));
        assert_eq!(
            header_value(&json!(["a", "b,c", 7, "d:e"])).as_deref(),
            Some("a,b%2Cc,7,d:e")
        );
        assert_eq!(
            header_value(&json!(["a", {"x": 1}])),
            None,
            "never a shortened list"
        );
        assert_eq!(header_value(&json!(["a", null])), None);
        assert_eq!(
            header_value(&json!("evil\r\nSet-Cookie: x=1")).as_deref(),
            Some("evil%0D%0ASet-Cookie: x=1")
        );
        assert_eq!(
            header_value(&json!(" padded ")).as_deref(),
            Some("%20padded%20")
        );
        assert_eq!(header_value(&json!({"an": "object"})), None);
        assert_eq!(header_value(&Value::Null), None);
        let long = "x".repeat(MAX_CLAIM_HEADER_LEN + 1);
        assert_eq!(header_value(&json!(long)), None);
        let fits = "x".repeat(MAX_CLAIM_HEADER_LEN);
        assert_eq!(
            header_value(&json!(fits)).map(|v| v.len()),
            Some(MAX_CLAIM_HEADER_LEN)
        );
        // Whatever the claim holds, the result is a valid header value.
        for v in [json!("\u{0}\u{7f}\u{85}é"), json!(["\t", "\n"])] {
            let text = header_value(&v).unwrap();
            assert!(http::HeaderValue::from_str(&text).is_ok(), "{text:?}");
        }
    }

    #[test]
    fn a_custom_mapping_replaces_email_groups_and_user_and_collects_headers() {
        let payload = json!({
            "sub": "u-1", "email": "std@example.com", "upn": "alice@corp.example",
            "roles": ["admin", "dev"], "employee": {"id": 1234},
            "tenant": "acme", "realm_access": {"roles": ["r1", "r2"]}, "obj": {"a": 1}
        });
        let m = mapping(
            "upn",
            "roles",
            "employee.id",
            &[
                ("x-tenant", "tenant"),
                ("x-realm-roles", "realm_access.roles"),
                ("x-obj", "obj"),
                ("x-absent", "nope"),
            ],
        );
        assert!(!m.is_standard());
        let mut claims = IdentityClaims {
            sub: Some("u-1".into()),
            email: Some("std@example.com".into()),
            groups: vec!["std".into()],
            ..Default::default()
        };
        m.apply(&payload, &mut claims);
        assert_eq!(claims.email.as_deref(), Some("alice@corp.example"));
        assert_eq!(claims.groups, ["admin", "dev"]);
        assert_eq!(
            claims.user,
            Some(("employee.id".to_string(), "1234".to_string()))
        );
        assert_eq!(
            claims.email_verified,
            Some(false),
            "email_verified was about another address"
        );
        assert_eq!(
            claims.headers.get("tenant").map(String::as_str),
            Some("acme")
        );
        assert_eq!(
            claims.headers.get("realm_access.roles").map(String::as_str),
            Some("r1,r2")
        );
        assert_eq!(
            claims.headers.len(),
            2,
            "objects and absent claims are not kept"
        );
        // A single string is a one-group list.
        let m = mapping("email", "team", "sub", &[]);
        let mut claims = IdentityClaims::default();
        m.apply(&json!({"team": "ops"}), &mut claims);
        assert_eq!(claims.groups, ["ops"]);
    }

    #[test]
    fn the_standard_mapping_changes_nothing() {
        let m = ClaimMapping::default();
        assert!(m.is_standard());
        let mut claims = IdentityClaims {
            email: Some("a@example.com".into()),
            groups: vec!["g".into()],
            ..Default::default()
        };
        m.apply(
            &json!({"email": "other@example.com", "groups": []}),
            &mut claims,
        );
        assert_eq!(claims.email.as_deref(), Some("a@example.com"));
        assert_eq!(claims.groups, ["g"]);
        assert_eq!(claims.user, None);
    }
}
