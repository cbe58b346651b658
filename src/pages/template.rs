//! `Template`: the placeholder syntax of the HTML pages. `{{name}}` is a variable, always
//! HTML-escaped (there is no way to output raw markup); `{{#name}}…{{/name}}` is a section,
//! shown only when the variable is set. Anything else between `{{` and `}}` — an unknown
//! name, oauth2-proxy's Go syntax (`{{.Title}}`), an unclosed section — is refused when the
//! template is read, never at the first request that shows it.

/// A value a page template may use ([`VARIABLES`] lists their names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variable {
    /// The HTTP status code, e.g. `403`.
    Status,
    /// The page's heading, e.g. "Access denied".
    Title,
    /// What happened and what to do, one or two sentences.
    Message,
    /// On a 403 for a signed-in user: signs out, then returns to the page that was refused,
    /// which starts a fresh sign-in. Empty on every other page.
    SignInAgainUrl,
    /// `pages.logo_url`, or empty.
    LogoUrl,
    /// `pages.footer`, or empty.
    Footer,
    /// The request's id ([`crate::request_context`]), for the user to quote; empty outside a
    /// request.
    RequestId,
}

/// Every variable, as written in a template.
pub const VARIABLES: &[(&str, Variable)] = &[
    ("status", Variable::Status),
    ("title", Variable::Title),
    ("message", Variable::Message),
    ("sign_in_again_url", Variable::SignInAgainUrl),
    ("logo_url", Variable::LogoUrl),
    ("footer", Variable::Footer),
    ("request_id", Variable::RequestId),
];

impl Variable {
    fn named(name: &str) -> Option<Self> {
        VARIABLES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    pub fn name(self) -> &'static str {
        VARIABLES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }
}

/// A parsed template, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Value(Variable),
    Section(Variable, Vec<Node>),
}

/// Why a template was refused, and on which line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct TemplateError {
    pub line: usize,
    pub why: String,
}

/// An open `{{#name}}`: its variable, the line it opened on, and the nodes before it.
struct Open {
    variable: Variable,
    line: usize,
    outer: Vec<Node>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut nodes = Vec::new();
        let mut open: Vec<Open> = Vec::new();
        let mut rest = text;
        let mut line = 1;
        while let Some(start) = rest.find("{{") {
            let (before, after) = rest.split_at(start);
            if !before.is_empty() {
                nodes.push(Node::Text(before.to_string()));
            }
            line += before.matches('\n').count();
            let after = &after[2..];
            let refuse = |why: String| Err(TemplateError { line, why });
            let Some(end) = after.find("}}") else {
                return refuse("\"{{\" without a closing \"}}\"".into());
            };
            let tag = &after[..end];
            rest = &after[end + 2..];
            let inner = tag.trim();
            let (sigil, name) = match inner.chars().next() {
                Some(c @ ('#' | '/')) => (Some(c), inner[1..].trim()),
                _ => (None, inner),
            };
            let Some(variable) = Variable::named(name) else {
                return refuse(unknown(tag));
            };
            match sigil {
                None => nodes.push(Node::Value(variable)),
                Some('#') => open.push(Open {
                    variable,
                    line,
                    outer: std::mem::take(&mut nodes),
                }),
                Some(_) => match open.pop() {
                    Some(o) if o.variable == variable => {
                        let inside = std::mem::replace(&mut nodes, o.outer);
                        nodes.push(Node::Section(variable, inside));
                    }
                    Some(o) => {
                        return refuse(format!(
                            "{{{{/{name}}}}} closes {{{{#{}}}}} (line {}); close that one first",
                            o.variable.name(),
                            o.line
                        ));
                    }
                    None => return refuse(format!("{{{{/{name}}}}} without a {{{{#{name}}}}}")),
                },
            }
            line += tag.matches('\n').count();
        }
        if let Some(o) = open.pop() {
            return Err(TemplateError {
                line: o.line,
                why: format!(
                    "{{{{#{name}}}}} is never closed (add {{{{/{name}}}}})",
                    name = o.variable.name()
                ),
            });
        }
        if !rest.is_empty() {
            nodes.push(Node::Text(rest.to_string()));
        }
        Ok(Self { nodes })
    }

    /// The page, with every variable's value (from `value`; empty = not set) HTML-escaped.
    pub fn render<'a>(&self, value: &dyn Fn(Variable) -> &'a str) -> String {
        let mut out = String::with_capacity(4096);
        render_into(&self.nodes, value, &mut out);
        out
    }

    /// Whether the template uses this variable anywhere (as a value or a section).
    pub fn uses(&self, variable: Variable) -> bool {
        fn walk(nodes: &[Node], variable: Variable) -> bool {
            nodes.iter().any(|n| match n {
                Node::Text(_) => false,
                Node::Value(v) => *v == variable,
                Node::Section(v, inside) => *v == variable || walk(inside, variable),
            })
        }
        walk(&self.nodes, variable)
    }
}

fn render_into<'a>(nodes: &[Node], value: &dyn Fn(Variable) -> &'a str, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Value(v) => escape_into(value(*v), out),
            Node::Section(v, inside) => {
                if !value(*v).is_empty() {
                    render_into(inside, value, out);
                }
            }
        }
    }
}

/// What to say about `{{tag}}` when it names no variable.
fn unknown(tag: &str) -> String {
    let known = VARIABLES
        .iter()
        .map(|(n, _)| format!("{{{{{n}}}}}"))
        .collect::<Vec<_>>()
        .join(", ");
    let inner = tag.trim();
    if inner.starts_with('.') || inner.starts_with("define") || inner.starts_with("template") {
        format!(
            "{{{{{inner}}}}} is oauth2-proxy's Go template syntax, which Portcullis does not read; its variables are {known} (docs/pages.md)"
        )
    } else if inner.starts_with('{') {
        format!(
            "{{{{{inner}}}}}: unescaped output is not supported (every value is HTML-escaped); the variables are {known}"
        )
    } else {
        format!("unknown placeholder {{{{{inner}}}}}; the variables are {known}")
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(s, &mut out);
    out
}

fn escape_into(s: &str, out: &mut String) {
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
}
