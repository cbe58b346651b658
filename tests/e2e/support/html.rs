//! Just enough HTML handling to drive Keycloak's login page.

use super::{R, err, snippet};

/// Decodes the character references Keycloak's templates emit in attributes.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "lt" => Some('<'),
            "gt" => Some('>'),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of attribute `name` in the tag text `tag` (`<form ...>`).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + len]))
}

/// The `action` URL of the form whose opening tag contains `marker`
/// (for Keycloak's login page: `id="kc-form-login"`).
pub fn form_action(page: &str, marker: &str) -> R<String> {
    let mut rest = page;
    while let Some(i) = rest.find("<form") {
        let tail = &rest[i..];
        let end = tail
            .find('>')
            .ok_or_else(|| err("unterminated <form> tag"))?;
        let tag = &tail[..end];
        if tag.contains(marker) {
            return attribute(tag, "action").ok_or_else(|| err("form without action"));
        }
        rest = &tail[end..];
    }
    Err(err(format!(
        "no <form> with {marker} in page: {}",
        snippet(page)
    )))
}

/// True when `page` is Keycloak's username/password form.
pub fn is_keycloak_login(page: &str) -> bool {
    page.contains("id=\"kc-form-login\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_keycloak_attributes() {
        assert_eq!(
            unescape("a?x=1&amp;y=2&#x3d;&#61;&bogus"),
            "a?x=1&y=2==&bogus"
        );
    }

    #[test]
    fn finds_the_login_form() -> R {
        let page = r#"<form id="other" action="/no"></form>
            <form id="kc-form-login" class="c" action="http://kc/auth?a=1&amp;b=2" method="post">"#;
        assert_eq!(
            form_action(page, "id=\"kc-form-login\"")?,
            "http://kc/auth?a=1&b=2"
        );
        Ok(())
    }
}
