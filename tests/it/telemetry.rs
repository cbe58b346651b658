//! OpenTelemetry traces as a collector receives them from the binary ([`OtlpReceiver`]
//! decodes the OTLP/HTTP protobuf): a login's spans with their IdP calls, decisions that join
//! the proxy's `traceparent` and carry the deciding rule, the session store's Redis commands,
//! parent-based sampling, everything flushed at shutdown, and no token, cookie, code or
//! secret in any attribute.

use crate::otlp_receiver::{OtlpReceiver, ReceivedSpan};
use crate::support::{Running, start_binary};
use portcullis_test_idp::TestIdp;

use crate::redis_sessions::RedisServer;

/// The trace and parent the proxy's span has (W3C Trace Context, sampled).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PROXY_SPAN: &str = "00f067aa0ba902b7";

async fn traced(extra_session: &str) -> (OtlpReceiver, Running) {
    let receiver = OtlpReceiver::start().await;
    let idp = TestIdp::start(Default::default()).await;
    let endpoint = receiver.base.clone();
    let running = start_binary(idp, |toml| {
        toml.replace(
            "refresh = \"1s\"",
            &format!("refresh = \"1s\"\n{extra_session}"),
        ) + &format!(
            "[telemetry]\notlp_endpoint = \"{endpoint}\"\nservice_name = \"portcullis-it\"\n"
        )
    })
    .await;
    (receiver, running)
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn children<'a>(spans: &'a [ReceivedSpan], parent: &ReceivedSpan) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id && s.trace_id == parent.trace_id)
        .collect()
}

/// The trace of `root` as an indented tree: name, kind and the attributes that say what it was.
fn tree(spans: &[ReceivedSpan], root: &ReceivedSpan) -> String {
    fn walk(spans: &[ReceivedSpan], s: &ReceivedSpan, depth: usize, out: &mut String) {
        let shown: Vec<String> = s
            .attributes
            .iter()
            .filter(|(k, _)| {
                !k.starts_with("code.") && k.as_str() != "busy_ns" && k.as_str() != "idle_ns"
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!(
            "{:indent$}{} [{}] {}\n",
            "",
            s.name,
            s.kind.trim_start_matches("SPAN_KIND_").to_lowercase(),
            shown.join(" "),
            indent = depth * 2
        ));
        for e in &s.events {
            if let Some(event) = e.get("event") {
                out.push_str(&format!(
                    "{:indent$}  · event {event}\n",
                    "",
                    indent = depth * 2
                ));
            }
        }
        for c in children(spans, s) {
            walk(spans, c, depth + 1, out);
        }
    }
    let mut out = format!("trace {}\n", root.trace_id);
    walk(spans, root, 0, &mut out);
    out
}

/// What the receiver holds once the binary has stopped (the last batch is flushed then).
fn stop(receiver: &OtlpReceiver, running: Running) -> (Vec<ReceivedSpan>, String) {
    let logs = running.stop();
    assert_eq!(
        receiver.refused(),
        0,
        "every export was OTLP/HTTP protobuf to /v1/traces"
    );
    (receiver.spans(), logs)
}

// Multi-threaded: the receiver must answer while the test waits for the binary to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_and_its_decisions_are_traced_into_the_proxys_trace() {
    let (receiver, p) = traced("").await;
    let (session, code) = p.login("/inbox?token=query-secret").await;
    let sampled = format!("00-{TRACE_ID}-{PROXY_SPAN}-01");
    let r = p
        .forward_auth("/inbox", &[("cookie", &session), ("traceparent", &sampled)])
        .await;
    assert_eq!(r.status(), 200);
    let bob = p.refused_by_policy(&session).await;
    // The proxy decided not to sample this request: neither is it traced here.
    let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let r = p
        .forward_auth(
            "/not-sampled",
            &[("cookie", &session), ("traceparent", unsampled)],
        )
        .await;
    assert_eq!(r.status(), 200);
    // A refresh the IdP refuses: the failed call is an error span with its reason.
    p.idp.controls().revoke_all_refresh_tokens();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = p.forward_auth("/later", &[("cookie", &session)]).await;
    assert_eq!(r.status(), 401);
    let (spans, _) = stop(&receiver, p);
    assert!(spans.iter().all(|s| s.service == "portcullis-it"));
    let refresh = named(&spans, "idp.refresh");
    assert_eq!(refresh.len(), 1, "{spans:#?}");
    assert_eq!(refresh[0].status, "STATUS_CODE_ERROR");
    assert_eq!(refresh[0].attributes["error.type"], "idp_refused");

    // Start-up: discovery and the JWKS, each with its HTTP call.
    let discovery = named(&spans, "idp.discovery");
    assert!(!discovery.is_empty(), "{spans:#?}");
    let calls = children(&spans, discovery[0]);
    assert!(
        calls.iter().any(|c| c.kind == "SPAN_KIND_CLIENT"
            && c.attributes["url.full"].ends_with("/.well-known/openid-configuration")
            && c.attributes["http.response.status_code"] == "200"),
        "{}",
        tree(&spans, discovery[0])
    );

    // The login: the decision that sent the browser to the IdP, then the callback, whose
    // code exchange is a child span with the token endpoint's HTTP call under it.
    let decisions = named(&spans, "GET /oauth2/forward-auth");
    let redirected = decisions
        .iter()
        .find(|s| s.attributes.get("portcullis.decision").map(String::as_str) == Some("redirected"))
        .expect("the decision that started the login");
    assert_eq!(redirected.kind, "SPAN_KIND_SERVER");
    assert_eq!(
        redirected.attributes["portcullis.path"], "/inbox",
        "no query"
    );
    assert_eq!(redirected.attributes["portcullis.host"], "app.example.com");
    let callback = named(&spans, "GET /oauth2/callback");
    assert_eq!(callback.len(), 1, "{spans:#?}");
    let callback = callback[0];
    println!("{}", tree(&spans, redirected));
    println!("{}", tree(&spans, callback));
    assert_eq!(callback.attributes["http.response.status_code"], "302");
    assert!(
        callback
            .events
            .iter()
            .any(|e| e.get("event").map(String::as_str) == Some("login.succeeded")),
        "the audit event is an event of the callback's span: {callback:#?}"
    );
    let exchange = children(&spans, callback);
    let exchange = exchange
        .iter()
        .find(|s| s.name == "idp.code")
        .unwrap_or_else(|| panic!("{}", tree(&spans, callback)));
    let token_call = children(&spans, exchange);
    assert_eq!(token_call.len(), 1, "{}", tree(&spans, callback));
    assert_eq!(token_call[0].name, "POST");
    assert_eq!(token_call[0].kind, "SPAN_KIND_CLIENT");
    assert_eq!(token_call[0].attributes["http.response.status_code"], "200");
    assert_ne!(token_call[0].status, "STATUS_CODE_ERROR");

    // The decision with the proxy's traceparent is in the proxy's trace, under its span.
    let joined = decisions
        .iter()
        .find(|s| s.trace_id == TRACE_ID)
        .unwrap_or_else(|| panic!("no decision in the proxy's trace: {decisions:#?}"));
    println!("{}", tree(&spans, joined));
    assert_eq!(joined.parent_span_id, PROXY_SPAN);
    assert_eq!(joined.attributes["portcullis.rule"], "(default)");
    assert_eq!(joined.attributes["portcullis.decision"], "allowed");
    assert_eq!(joined.attributes["http.response.status_code"], "200");
    assert_eq!(
        joined.attributes["request_id"], TRACE_ID,
        "the request id is the trace id"
    );

    // Refusals name the rule that decided; the audit event rides along.
    let forbidden: Vec<_> = decisions
        .iter()
        .filter(|s| {
            s.attributes.get("portcullis.decision").map(String::as_str) == Some("forbidden")
        })
        .collect();
    let rules: Vec<&str> = forbidden
        .iter()
        .map(|s| s.attributes["portcullis.rule"].as_str())
        .collect();
    assert!(
        rules.contains(&"(default)") && rules.contains(&"closed"),
        "{rules:?}"
    );
    assert!(forbidden.iter().all(|s| {
        s.events
            .iter()
            .any(|e| e.get("event").map(String::as_str) == Some("request.denied"))
    }));

    // Parent-based sampling: the unsampled request left no span.
    assert!(
        spans.iter().all(
            |s| s.attributes.get("portcullis.path").map(String::as_str) != Some("/not-sampled")
        ),
        "an unsampled traceparent is not traced"
    );

    // Nothing that grants access or proves a login is in any attribute.
    let cookie_value = session.split_once('=').unwrap().1.to_string();
    let everything: Vec<&String> = spans
        .iter()
        .flat_map(|s| {
            s.attributes
                .values()
                .chain(s.events.iter().flat_map(|e| e.values()))
        })
        .collect();
    for (what, secret) in [
        ("session cookie", cookie_value.as_str()),
        ("authorization code", code.as_str()),
        ("bearer token", &bob[..40]),
        ("client secret", "test-secret"),
        ("query", "query-secret"),
    ] {
        assert!(
            everything.iter().all(|v| !v.contains(secret)),
            "the {what} is in a span"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_session_stores_commands_are_client_spans_of_the_request() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (receiver, p) = traced(&format!(
        "store = \"redis\"\nredis_url = \"redis://127.0.0.1:{}\"",
        redis.port
    ))
    .await;
    let (session, _) = p.login("/").await;
    let sampled = format!("00-{TRACE_ID}-{PROXY_SPAN}-01");
    let r = p
        .forward_auth("/x", &[("cookie", &session), ("traceparent", &sampled)])
        .await;
    assert_eq!(r.status(), 200);
    let (spans, _) = stop(&receiver, p);

    let callback = named(&spans, "GET /oauth2/callback");
    let written = children(&spans, callback[0]);
    assert!(
        written.iter().any(|s| s.name == "SET"
            && s.kind == "SPAN_KIND_CLIENT"
            && s.attributes["db.system.name"] == "redis"),
        "{}",
        tree(&spans, callback[0])
    );
    let decision = named(&spans, "GET /oauth2/forward-auth")
        .into_iter()
        .find(|s| s.trace_id == TRACE_ID)
        .expect("the decision in the proxy's trace");
    println!("{}", tree(&spans, decision));
    let loaded = children(&spans, decision);
    assert!(
        loaded
            .iter()
            .any(|s| s.name == "GET" && s.attributes["db.operation.name"] == "GET"),
        "{}",
        tree(&spans, decision)
    );
    let ticket = session.split_once('=').unwrap().1;
    assert!(
        spans
            .iter()
            .flat_map(|s| s.attributes.values())
            .all(|v| !v.contains(ticket) && !v.contains("portcullis:session:")),
        "no session ticket or key in a span"
    );
}

#[tokio::test]
async fn with_traces_off_log_lines_carry_no_trace_fields() {
    let idp = TestIdp::start(Default::default()).await;
    let p = start_binary(idp, |t| t).await;
    let (session, _) = p.login("/").await;
    let r = p.forward_auth("/x", &[("cookie", &session)]).await;
    assert_eq!(r.status(), 200);
    let logs = p.stop();
    let audit: serde_json::Value = logs
        .lines()
        .find(|l| l.contains("login.succeeded"))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{logs}"));
    let span = audit["span"].as_object().unwrap();
    let fields: Vec<&str> = span.keys().map(String::as_str).collect();
    assert_eq!(fields, ["name", "request_id"], "{audit}");
    for field in [
        "otel.",
        "portcullis.rule",
        "portcullis.decision",
        "http.response",
    ] {
        assert!(!logs.contains(field), "{field} in {logs}");
    }
}
