//! The few HTML pages a browser may see (sign-in errors, access denied). Everything dynamic is
//! HTML-escaped; the pages load nothing external (CSP `default-src 'none'`).

use http::StatusCode;

pub fn page(status: StatusCode, title: &str, message: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · Portcullis</title><style>\
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1f2933;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}}\
main{{background:#fff;max-width:32rem;padding:2rem 2.5rem;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08)}}\
h1{{font-size:1.4rem;margin:0 0 .75rem}}p{{line-height:1.5;margin:.5rem 0}}.code{{color:#7b8794;font-size:.85rem}}\
</style></head><body><main><h1>{title}</h1><p>{message}</p><p class=\"code\">HTTP {code}</p></main></body></html>\n",
        title = escape(title),
        message = escape(message),
        code = status.as_u16(),
    )
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_dynamic() {
        let p = page(
            StatusCode::FORBIDDEN,
            "<t>",
            "you are <script>alert('x')</script> & \"q\"",
        );
        assert!(!p.contains("<script>"));
        assert!(p.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"));
        assert!(p.contains("HTTP 403"));
    }
}
