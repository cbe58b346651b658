//! A test OTLP/HTTP trace receiver on a free 127.0.0.1 port: it takes `POST /v1/traces` with
//! `Content-Type: application/x-protobuf`, decodes the body with the protocol's own message
//! types (opentelemetry-proto, `ExportTraceServiceRequest`) and keeps every span, as a
//! collector would store it. Anything else is answered 404 or 415 and counted as refused.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One span as received.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// `SPAN_KIND_SERVER`, `SPAN_KIND_CLIENT`, `SPAN_KIND_INTERNAL`…
    pub kind: String,
    pub attributes: BTreeMap<String, String>,
    /// Each event's attributes, `name` included under `event.name`.
    pub events: Vec<BTreeMap<String, String>>,
    /// `STATUS_CODE_UNSET`, `STATUS_CODE_ERROR`…
    pub status: String,
}

#[derive(Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    refused: usize,
}

pub struct OtlpReceiver {
    /// What `otlp_endpoint` should be (the collector's base URL).
    pub base: String,
    received: Arc<Mutex<Received>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl OtlpReceiver {
    pub async fn start() -> OtlpReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Received::default()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let store = received.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                    _ = &mut stopped => return,
                };
                let store = store.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let store = store.clone();
                        async move { Ok::<_, std::convert::Infallible>(accept(req, &store).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        OtlpReceiver {
            base,
            received,
            _stop: stop,
        }
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received.lock().unwrap().spans.clone()
    }

    /// Requests that were not an OTLP/HTTP protobuf trace export.
    pub fn refused(&self) -> usize {
        self.received.lock().unwrap().refused
    }
}

async fn accept(
    req: http::Request<hyper::body::Incoming>,
    store: &Mutex<Received>,
) -> http::Response<Full<Bytes>> {
    let answer = |status: u16| {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let protobuf = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/x-protobuf");
    if req.method() != http::Method::POST || req.uri().path() != "/v1/traces" || !protobuf {
        store.lock().unwrap().refused += 1;
        return answer(if protobuf { 404 } else { 415 });
    }
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let Ok(export) = ExportTraceServiceRequest::decode(body) else {
        store.lock().unwrap().refused += 1;
        return answer(400);
    };
    let mut spans = Vec::new();
    for resource_spans in export.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for s in scope.spans {
                spans.push(ReceivedSpan {
                    service: service.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    kind: opentelemetry_proto::tonic::trace::v1::span::SpanKind::try_from(s.kind)
                        .map(|k| k.as_str_name().to_string())
                        .unwrap_or_default(),
                    name: s.name,
                    attributes: attributes(&s.attributes),
                    events: s
                        .events
                        .iter()
                        .map(|e| {
                            let mut a = attributes(&e.attributes);
                            a.insert("event.name".into(), e.name.clone());
                            a
                        })
                        .collect(),
                    status: s
                        .status
                        .map(|st| {
                            opentelemetry_proto::tonic::trace::v1::status::StatusCode::try_from(
                                st.code,
                            )
                            .map(|c| c.as_str_name().to_string())
                            .unwrap_or_default()
                        })
                        .unwrap_or_default(),
                });
            }
        }
    }
    store.lock().unwrap().spans.extend(spans);
    answer(200)
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect()
}

fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
