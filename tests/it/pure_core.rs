//! The pure core stays pure: no module that `src/lib.rs` calls pure names an HTTP type
//! (`hyper`, `http`, `http_body`) or the HTTP edge (`crate::http`). The list is read from
//! lib.rs's own documentation, so the documentation and this check can't drift apart.

use std::path::{Path, PathBuf};

fn pure_modules() -> Vec<String> {
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    let doc: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!"))
        .collect::<Vec<_>>()
        .join(" ");
    let start = doc
        .find("The pure core (")
        .expect("lib.rs names the pure core");
    let list = &doc[start + "The pure core (".len()..];
    let list = &list[..list.find(')').unwrap()];
    list.split(',')
        .map(|m| m.trim().trim_matches('`').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

fn sources_of(module: &str) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join(format!("{module}.rs"))];
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.retain(|f| f.exists());
    files
}

/// `word` used as a path root in `line` (`hyper::`, `http::`, `http_body`), outside comments.
fn names_http(line: &str) -> Option<&'static str> {
    let code = line.split("//").next().unwrap_or("");
    for word in ["hyper", "http_body_util", "http_body", "http"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(word) {
            let at = from + i;
            let before = code[..at].chars().next_back();
            let after = &code[at + word.len()..];
            let bounded = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            // `crate::http::…` and `super::…::http` are the edge; a path starting `http::` is
            // the crate.
            if bounded && after.starts_with("::") {
                return Some(word);
            }
            from = at + word.len();
        }
    }
    None
}

#[test]
fn no_pure_core_module_names_an_http_type() {
    let modules = pure_modules();
    assert!(modules.len() >= 5, "{modules:?}");
    let mut found = Vec::new();
    for m in &modules {
        let files = sources_of(m);
        assert!(
            !files.is_empty(),
            "lib.rs calls `{m}` pure, but src/{m}.rs does not exist"
        );
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                if let Some(word) = names_http(line) {
                    found.push(format!("{}:{}: `{word}::` in {line:?}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "HTTP types in the pure core:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_what_it_must() {
    assert_eq!(names_http("use http::HeaderMap;"), Some("http"));
    assert_eq!(names_http("fn f(r: hyper::Request<()>) {}"), Some("hyper"));
    assert_eq!(names_http("use crate::http::problem;"), Some("http"));
    assert_eq!(
        names_http("let b = http_body_util::Full::new(x);"),
        Some("http_body_util")
    );
    assert_eq!(names_http("let u = \"https://x\"; // http::Foo"), None);
    assert_eq!(names_http("let https_only = true;"), None);
    assert_eq!(names_http("fn http_date() {}"), None);
}
