//! Logs and traces: the process's one `tracing` subscriber. Log lines (text or JSON, filtered
//! by `PORTCULLIS_LOG`) always; OpenTelemetry traces when `[telemetry] otlp_endpoint` is set:
//! tracing's spans become OTel spans (tracing-opentelemetry), sampled parent-based with
//! `sampling_ratio`, batched by the SDK on its own thread and exported as OTLP/HTTP protobuf.
//!
//! What is traced (never a token, cookie, code or secret: only names, ids, rules and outcomes):
//! - every request: the `request` span of [`crate::http::handle`], a server span named
//!   `GET /oauth2/forward-auth` (`/oauth2/start`, `/oauth2/callback`…) that joins the trace
//!   of the proxy's W3C `traceparent`, with the deciding rule and the decision;
//! - every IdP call: `idp.discovery`, `idp.jwks`, `idp.code`, `idp.refresh`, each with its
//!   HTTP client span, whose `traceparent` is sent on to the IdP;
//! - every Redis command of the session store (`GET`, `SET`, `PIPELINE`…);
//! - audit events ([`crate::audit`]) and warnings, as events of the span they happen in.
//!
//! With traces off the extra spans are disabled at their call site (one relaxed load each),
//! and the request span's extra fields are neither filled in nor written.

use crate::config::TelemetryConfig;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::time::Duration;
use tracing::Level;
use tracing::metadata::Kind;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How long one export to the collector may take; a slow collector costs spans, never requests.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The trace pipeline: the SDK's tracer provider, exporting to the collector. Flush it with
/// [`Traces::shutdown`] when the process stops, or the last batch is lost.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Spans sampled as `config` says, sent in batches to its collector. Blocking: call it
    /// outside the async runtime (the exporter's HTTP client runs on its own thread).
    pub fn new(config: &TelemetryConfig) -> Result<Traces, String> {
        use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
        let http = reqwest::blocking::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("telemetry: cannot build the OTLP client: {e}"))?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(http)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(config.traces_url.as_str())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("telemetry.otlp_endpoint: {e}"))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sampling_ratio,
            ))))
            .with_resource(resource)
            .build();
        Ok(Traces { provider })
    }

    /// The layer that turns Portcullis' spans (and its info-and-above events, as span
    /// events) into OTel spans. Nothing of other crates: the exporter's own HTTP client must
    /// not trace itself.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
    {
        let tracer = self.provider.tracer("portcullis");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_threads(false)
            .with_filter(FilterFn::new(|meta| {
                let ours = meta.target().starts_with("portcullis") || meta.target() == "audit";
                let most_verbose = if meta.is_span() {
                    Level::DEBUG
                } else {
                    Level::INFO
                };
                ours && *meta.level() <= most_verbose
            }))
    }

    /// Exports what is still queued, waiting for the collector at most [`EXPORT_TIMEOUT`].
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("portcullis: telemetry: the last spans were not exported: {e}");
        }
    }
}

/// The log filter: `PORTCULLIS_LOG` (e.g. `warn,audit=info`), else `info`.
pub fn log_filter(env: &[(String, String)]) -> EnvFilter {
    env.iter()
        .find(|(k, _)| k == "PORTCULLIS_LOG")
        .and_then(|(_, v)| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}

/// The subscriber the binary runs with, as a dispatcher to install: log lines to `writer` (JSON or text, `filter`), and
/// the trace layer when `traces` is given. Without traces the filter is global, as a plain
/// log subscriber's is: per-layer filtering (needed to give the trace layer spans the log
/// lines don't show) costs every span enter and exit a lookup, measurably on the hot path.
pub fn subscriber<W>(
    json: bool,
    filter: EnvFilter,
    writer: W,
    traces: Option<&Traces>,
) -> tracing::Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // A fmt layer of its own in each arm: its type names the subscriber under it.
    use tracing_subscriber::fmt::layer as log_lines;
    let registry = Registry::default();
    match (json, traces) {
        (true, None) => tracing::Dispatch::new(
            registry
                .with(filter)
                .with(log_lines().with_writer(writer).json().flatten_event(true)),
        ),
        (false, None) => {
            tracing::Dispatch::new(registry.with(filter).with(log_lines().with_writer(writer)))
        }
        (true, Some(traces)) => tracing::Dispatch::new(
            registry
                .with(
                    log_lines()
                        .with_writer(writer)
                        .json()
                        .flatten_event(true)
                        .with_filter(filter),
                )
                .with(traces.layer()),
        ),
        (false, Some(traces)) => tracing::Dispatch::new(
            registry
                .with(log_lines().with_writer(writer).with_filter(filter))
                .with(traces.layer()),
        ),
    }
}

/// Whether spans are being traced: a trace layer is installed (or debug logging is on). Off,
/// this is one relaxed load of the call site's cached interest.
#[inline]
pub fn tracing_spans() -> bool {
    tracing::enabled!(kind: Kind::SPAN, target: "portcullis::telemetry", Level::DEBUG)
}

/// Makes `span` a child of the trace the request's `traceparent` continues (W3C Trace
/// Context); without one, it starts a new trace.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent =
        TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

/// Adds the current span's `traceparent` to an outgoing request (to the IdP), so its trace
/// continues there.
pub fn propagate(span: &tracing::Span, headers: &mut http::HeaderMap) {
    TraceContextPropagator::new().inject_context(
        &span.context(),
        &mut opentelemetry_http::HeaderInjector(headers),
    );
}
