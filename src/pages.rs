//! `Pages`: the HTML pages a browser may see (sign-in failed, access denied, …) and their
//! look, set in `[pages]`: one template ([`template`]), a logo and a footer. The template is
//! read once, when the configuration is loaded; showing a page reads no file. Every value is
//! HTML-escaped, and the page loads nothing but the logo (the Content-Security-Policy of
//! [`Pages::content_security_policy`]). The variables are documented in docs/pages.md.

pub mod template;

pub use template::{Template, TemplateError, VARIABLES, Variable, escape};

use std::io::Read;
use std::path::Path;
use url::Url;

/// The file read from `pages.templates_dir` (oauth2-proxy's name for its error page).
pub const TEMPLATE_FILE: &str = "error.html";

/// The page built into the binary, used without `pages.templates_dir`.
pub const BUILTIN_TEMPLATE: &str = include_str!("pages/error.html");

/// The largest template read: a page is sent with every refusal a browser sees.
pub const MAX_TEMPLATE_BYTES: u64 = 64 * 1024;

/// The longest `pages.footer`.
pub const MAX_FOOTER_CHARS: usize = 500;

/// The pages' look: the template, the logo and the footer.
#[derive(Debug, Clone)]
pub struct Pages {
    template: Template,
    logo: Option<Logo>,
    footer: Option<String>,
    content_security_policy: String,
}

/// What one page says.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub status: u16,
    pub title: &'a str,
    pub message: &'a str,
    /// See [`Variable::SignInAgainUrl`].
    pub sign_in_again_url: Option<&'a str>,
    /// See [`Variable::RequestId`].
    pub request_id: Option<&'a str>,
}

/// `pages.logo_url`: an https URL, or a path on the host that shows the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    url: String,
    /// Its CSP `img-src` source: the URL's origin, or `'self'` for a path.
    source: String,
}

impl Logo {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        const WHY: &str = "must be an https:// URL or a path such as /static/logo.svg";
        let s = s.trim();
        if s.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return Err(WHY);
        }
        if let Some(rest) = s.strip_prefix('/') {
            // "//host/x" is another host to a browser.
            if rest.starts_with('/') {
                return Err(WHY);
            }
            return Ok(Self {
                url: s.to_string(),
                source: "'self'".to_string(),
            });
        }
        let url = Url::parse(s).map_err(|_| WHY)?;
        if url.scheme() != "https" || url.host_str().is_none() {
            return Err(WHY);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not hold a user name or password");
        }
        Ok(Self {
            source: url.origin().ascii_serialization(),
            url: url.into(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }
}

impl Pages {
    /// `footer`: shown as plain text; `None` or blank shows none.
    pub fn new(template: Template, logo: Option<Logo>, footer: Option<String>) -> Self {
        let footer = footer.filter(|f| !f.trim().is_empty());
        // The page is static: inline styles, the logo, and nothing else. No script, no form,
        // no <base>, no frames, no fonts or stylesheets from elsewhere.
        let img = logo.as_ref().map_or("", |l| l.source.as_str());
        let content_security_policy = if img.is_empty() {
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
                .to_string()
        } else {
            format!(
                "default-src 'none'; style-src 'unsafe-inline'; img-src {img}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            )
        };
        Self {
            template,
            logo,
            footer,
            content_security_policy,
        }
    }

    /// The template, logo and footer of a `[pages]` section, each checked: `Err` names every
    /// problem as (key, why).
    pub fn load(
        templates_dir: Option<&Path>,
        logo_url: Option<&str>,
        footer: Option<String>,
    ) -> Result<Self, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let footer = footer.filter(|f| !f.trim().is_empty());
        let template = match templates_dir {
            Some(dir) => read_template(dir).map_err(|why| problems.push(("templates_dir", why))),
            None => Template::parse(BUILTIN_TEMPLATE)
                .map_err(|e| problems.push(("templates_dir", format!("built-in page: {e}")))),
        };
        let logo = match logo_url.map(Logo::parse) {
            None => None,
            Some(Ok(l)) => Some(l),
            Some(Err(why)) => {
                problems.push(("logo_url", why.to_string()));
                None
            }
        };
        if let Some(f) = &footer {
            if f.chars().count() > MAX_FOOTER_CHARS {
                problems.push((
                    "footer",
                    format!("is longer than {MAX_FOOTER_CHARS} characters"),
                ));
            }
        }
        if let (Ok(t), Some(dir)) = (&template, templates_dir) {
            let file = dir.join(TEMPLATE_FILE);
            for (key, set, variable) in [
                ("logo_url", logo.is_some(), Variable::LogoUrl),
                ("footer", footer.is_some(), Variable::Footer),
            ] {
                if set && !t.uses(variable) {
                    problems.push((
                        key,
                        format!(
                            "is set, but {} never shows it (add {{{{{}}}}})",
                            file.display(),
                            variable.name()
                        ),
                    ));
                }
            }
        }
        match template {
            Ok(t) if problems.is_empty() => Ok(Self::new(t, logo, footer)),
            _ => Err(problems),
        }
    }

    /// The whole page, every value HTML-escaped.
    pub fn render(&self, page: &Page<'_>) -> String {
        let status = page.status.to_string();
        let logo = self.logo.as_ref().map_or("", Logo::as_str);
        let footer = self.footer.as_deref().unwrap_or("");
        self.template.render(&|v| match v {
            Variable::Status => &status,
            Variable::Title => page.title,
            Variable::Message => page.message,
            Variable::SignInAgainUrl => page.sign_in_again_url.unwrap_or(""),
            Variable::LogoUrl => logo,
            Variable::Footer => footer,
            Variable::RequestId => page.request_id.unwrap_or(""),
        })
    }

    /// The `Content-Security-Policy` every page is sent with.
    pub fn content_security_policy(&self) -> &str {
        &self.content_security_policy
    }
}

/// Where "Sign in as someone else" leads: `/oauth2/sign_out` on `public_url`, returning to
/// `return_to`, the refused address (one the redirect policy passed; sign-out checks it again,
/// so the link can't be made into an open redirect).
pub fn sign_in_again_url(public_url: &Url, return_to: &str) -> String {
    let rd: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
    format!(
        "{}{}?rd={rd}",
        public_url.as_str().trim_end_matches('/'),
        crate::config::SIGN_OUT_PATH
    )
}

/// `DIR/error.html`, parsed. `Err` says what is wrong, naming the file.
pub fn read_template(dir: &Path) -> Result<Template, String> {
    let path = dir.join(TEMPLATE_FILE);
    let file =
        std::fs::File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_TEMPLATE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.len() as u64 > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "{} is larger than {} KiB",
            path.display(),
            MAX_TEMPLATE_BYTES / 1024
        ));
    }
    Template::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
