//! Traces through a real OpenTelemetry Collector: a Portcullis of its own exports to the
//! collector `scripts/e2e` runs (tools/otel-collector: the upstream OTLP receiver and file
//! exporter), and the test reads what the collector wrote, OTLP JSON, one line per batch. It
//! proves what `tests/it/telemetry.rs` checks against the suite's own protobuf decoder: that a
//! real receiver accepts the binary's exports, with the login against real Keycloak, the
//! decision in the proxy's `traceparent` and nothing secret in the file.
//!
//! Run with `scripts/e2e telemetry --nocapture` to read the login's trace tree.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::instance::{Instance, Settings};
use crate::support::env::Env;
use crate::support::keycloak::ALICE;
use crate::support::{R, err, snippet};

/// service.name of this test's instance: the only spans of the file that are its own.
const SERVICE: &str = "portcullis-e2e-telemetry";
/// The trace and span of the proxy's request (W3C Trace Context, sampled).
const TRACE_ID: &str = "5e1fa1b2c3d4e5f60718293a4b5c6d7e";
const PROXY_SPAN: &str = "a1b2c3d4e5f60718";

/// One span as the collector wrote it, attribute values as text.
#[derive(Debug)]
struct Span {
    service: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: &'static str,
    attributes: BTreeMap<String, String>,
    /// (name, attributes) of each span event.
    events: Vec<(String, BTreeMap<String, String>)>,
}

impl Span {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// An OTLP JSON `AnyValue` as text (`intValue` is a string in OTLP JSON).
fn any_value(v: &Value) -> String {
    for key in ["stringValue", "intValue", "doubleValue", "boolValue"] {
        match v.get(key) {
            Some(Value::String(s)) => return s.clone(),
            Some(other) => return other.to_string(),
            None => {}
        }
    }
    v.to_string()
}

fn attributes(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            Some((
                kv.get("key")?.as_str()?.to_owned(),
                any_value(kv.get("value")?),
            ))
        })
        .collect()
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `SpanKind` (an integer in OTLP JSON) as the word the tree shows.
fn kind(v: &Value) -> &'static str {
    match v.get("kind").and_then(Value::as_u64) {
        Some(1) => "internal",
        Some(2) => "server",
        Some(3) => "client",
        Some(4) => "producer",
        Some(5) => "consumer",
        _ => "unspecified",
    }
}

/// Every span of the file: each line is one `ExportTraceServiceRequest` in OTLP JSON.
fn parse_spans(file: &str) -> R<Vec<Span>> {
    let mut spans = Vec::new();
    for line in file.lines().filter(|l| !l.trim().is_empty()) {
        let batch: Value = serde_json::from_str(line)
            .map_err(|e| err(format!("not OTLP JSON ({e}): {}", snippet(line))))?;
        for rs in batch["resourceSpans"].as_array().into_iter().flatten() {
            let resource = attributes(&rs["resource"]["attributes"]);
            let service = resource.get("service.name").cloned().unwrap_or_default();
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    spans.push(Span {
                        service: service.clone(),
                        trace_id: text(s, "traceId"),
                        span_id: text(s, "spanId"),
                        parent_span_id: text(s, "parentSpanId"),
                        name: text(s, "name"),
                        kind: kind(s),
                        attributes: attributes(&s["attributes"]),
                        events: s["events"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|e| (text(e, "name"), attributes(&e["attributes"])))
                            .collect(),
                    });
                }
            }
        }
    }
    Ok(spans)
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.trace_id == parent.trace_id && s.parent_span_id == parent.span_id)
        .collect()
}

/// The spans under `root` as an indented tree: name [kind] attributes, and span events.
fn tree(spans: &[Span], root: &Span) -> String {
    fn walk(spans: &[Span], s: &Span, depth: usize, out: &mut String) {
        let shown: Vec<String> = s
            .attributes
            .iter()
            .filter(|(k, _)| !k.starts_with("code.") && !k.ends_with("_ns") && *k != "thread.id")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let pad = "  ".repeat(depth);
        out.push_str(&format!(
            "{pad}{} [{}] {}\n",
            s.name,
            s.kind,
            shown.join(" ")
        ));
        for (name, attrs) in &s.events {
            let event = attrs.get("event").unwrap_or(name);
            out.push_str(&format!("{pad}  · event {event}\n"));
        }
        for c in children(spans, s) {
            walk(spans, c, depth + 1, out);
        }
    }
    let mut out = format!("trace {}\n", root.trace_id);
    walk(spans, root, 0, &mut out);
    out
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Waits until the collector's file holds this instance's callback and decision spans (the
/// exporter flushes every 100 ms) and returns the whole file.
async fn collected(env: &Env) -> R<String> {
    let started = Instant::now();
    loop {
        let file = std::fs::read_to_string(&env.otel_collector_file).unwrap_or_default();
        let spans = parse_spans(&file)?;
        let ours = |name: &str| spans.iter().any(|s| s.service == SERVICE && s.name == name);
        if ours("GET /oauth2/callback") && ours("GET /oauth2/forward-auth") {
            return Ok(file);
        }
        if started.elapsed() > Duration::from_secs(15) {
            let services: std::collections::BTreeSet<&str> =
                spans.iter().map(|s| s.service.as_str()).collect();
            return Err(err(format!(
                "the collector's file {} has no callback and decision spans of service.name \
                 {SERVICE} after 15 s ({} spans in all, of {services:?}); see \
                 $E2E_RUN_DIR/otel-collector.log",
                env.otel_collector_file,
                spans.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn telemetry_a_login_and_a_decision_reach_a_real_collector() -> R {
    let env = Env::load()?;
    let telemetry = format!(
        "\n[telemetry]\notlp_endpoint = \"{}\"\nservice_name = \"{SERVICE}\"\n",
        env.otel_collector_url
    );
    let mut p = Instance::start(
        &env,
        "portcullis-telemetry",
        &Settings {
            extra_toml: &telemetry,
            ..Settings::default()
        },
    )
    .await?;

    // A login at the HTTP level against Keycloak's real form, keeping the code it sent back.
    let b = p.browser()?;
    let callback_url = p.login_up_to_callback(&b, ALICE).await?;
    let code = url::Url::parse(&callback_url)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| err("no code"))?;
    let landed = b.navigate(&callback_url).await?;
    assert_eq!(
        landed.url.as_str(),
        format!("{}/signed-in", p.url),
        "{}",
        landed.describe()
    );
    let session: Vec<String> = b
        .cookies_for(&p.url)?
        .into_iter()
        .filter(|(n, _)| n.starts_with("_portcullis"))
        .map(|(_, v)| v)
        .collect();
    assert!(!session.is_empty(), "no session cookie after the login");

    // A decision as Traefik asks for it, in the trace the proxy sampled.
    let traceparent = format!("00-{TRACE_ID}-{PROXY_SPAN}-01");
    let decision = b
        .get_with(
            &format!("{}/oauth2/forward-auth", p.url),
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "app.localhost"),
                ("x-forwarded-uri", "/reports?year=2024"),
                ("traceparent", &traceparent),
            ],
        )
        .await?;
    assert_eq!(decision.status, 200, "{}", decision.describe());

    // SIGTERM: the last batch is exported at shutdown.
    let (took, clean) = p.terminate(Duration::from_secs(20))?;
    assert!(
        clean,
        "exit status not 0 after {took:?}; log:\n{}",
        p.log_tail()
    );
    let log = std::fs::read_to_string(&p.log)?;
    assert!(
        !log.contains("were not exported"),
        "the exporter gave up on spans; log:\n{}",
        p.log_tail()
    );

    let file = collected(&env).await?;
    let all = parse_spans(&file)?;
    let spans: Vec<Span> = all.into_iter().filter(|s| s.service == SERVICE).collect();
    assert!(
        spans
            .iter()
            .all(|s| is_hex(&s.trace_id, 32) && is_hex(&s.span_id, 16)),
        "ids are hex strings in OTLP JSON"
    );
    let named = |name: &str| spans.iter().filter(|s| s.name == name).collect::<Vec<_>>();

    // The login: /oauth2/start, then the callback, whose code exchange is an `idp.code` span
    // with the token endpoint's HTTP call under it.
    for start in named("GET /oauth2/start") {
        println!("{}", tree(&spans, start));
    }
    let callbacks = named("GET /oauth2/callback");
    let [callback] = callbacks.as_slice() else {
        return Err(err(format!("not one callback span: {callbacks:#?}")));
    };
    println!("{}", tree(&spans, callback));
    assert_eq!(callback.kind, "server");
    assert_eq!(callback.attr("http.response.status_code"), Some("302"));
    let exchange = children(&spans, callback)
        .into_iter()
        .find(|s| s.name == "idp.code")
        .ok_or_else(|| {
            err(format!(
                "no idp.code under the callback:\n{}",
                tree(&spans, callback)
            ))
        })?;
    let token_endpoint = format!("{}/protocol/openid-connect/token", env.keycloak_issuer);
    let calls = children(&spans, exchange);
    assert!(
        calls.iter().any(|c| c.name == "POST"
            && c.kind == "client"
            && c.attr("url.full") == Some(token_endpoint.as_str())
            && c.attr("http.response.status_code") == Some("200")),
        "no POST to {token_endpoint} under idp.code:\n{}",
        tree(&spans, callback)
    );

    // The decision joined the proxy's trace, under the proxy's span.
    let decisions = named("GET /oauth2/forward-auth");
    let joined = decisions
        .iter()
        .find(|s| s.trace_id == TRACE_ID)
        .ok_or_else(|| err(format!("no decision in the proxy's trace: {decisions:#?}")))?;
    println!("{}", tree(&spans, joined));
    assert_eq!(joined.kind, "server");
    assert_eq!(joined.parent_span_id, PROXY_SPAN);
    assert_eq!(joined.attr("portcullis.rule"), Some("(default)"));
    assert_eq!(joined.attr("portcullis.decision"), Some("allowed"));
    assert_eq!(joined.attr("portcullis.path"), Some("/reports"), "no query");
    assert_eq!(joined.attr("http.response.status_code"), Some("200"));

    // Nothing that grants access or proves a login is anywhere in what the collector wrote.
    for (what, secret) in session
        .iter()
        .map(|v| ("session cookie", v.as_str()))
        .chain([
            ("authorization code", code.as_str()),
            ("client secret", "portcullis-demo-secret"),
            ("user's password", ALICE.1),
        ])
    {
        assert!(
            !file.contains(secret),
            "the {what} is in the collector's file"
        );
    }
    Ok(())
}
