//! The HTTP service: every endpoint as one `tower::Service`, and the one place its layers are
//! stacked ([`service`]). hyper serves it through hyper-util's `TowerToHyperService`
//! (`super::server`); router tests call it with `oneshot`, without a socket.

use super::connections::{Busy, Tracked};
use super::problem::Problem;
use super::{Body, handle, handle_operations};
use crate::app::CurrentApp;
use bytes::Bytes;
use http::{Request, Response, header};
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;

/// Headers that carry credentials, in requests and responses.
const SENSITIVE: [header::HeaderName; 4] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    header::SET_COOKIE,
];

/// The service for one connection from `peer`, with its layers, outermost first. Each layer
/// says why it is there. What the whole stack costs (the boxed endpoint future, the boxed
/// response body of panic catching, the header marking) was measured with
/// `scripts/bench --quick` against bare hyper in the same run: server CPU per request,
/// hyper ÷ Portcullis 0.72 for a session cookie and 0.73 for a cached bearer token, against
/// 0.62 and 0.67 in the last full run before the change (`benches/results/latest.md`), so
/// no loss beyond run-to-run noise. The layers were not measured one by one.
///
/// Left out, on purpose:
/// * a body limit layer: one endpoint reads a body (back-channel logout), and it bounds the
///   read itself (size and time, `super::backchannel`);
/// * a timeout layer: every call a request makes (IdP, Redis) has its own, shorter bound,
///   and a slow client is bounded by the connection's read timeouts;
/// * a concurrency limit or load shedding: the connection limit (`super::connections`)
///   already bounds what is in flight, and a decision is microseconds of CPU, so a second
///   limit would only add a contended semaphore to every request;
/// * tower-http's request-id layers: the id is chosen by [`super::handle`] together with the
///   rest of the request's context (it must be checked before it is logged, and falls back
///   to the trace id), and pages and audit events read it from there.
pub fn service(
    app: Arc<CurrentApp>,
    peer: Option<IpAddr>,
    tracked: Option<Arc<Tracked>>,
    listener: Listener,
) -> impl Service<
    Request<hyper::body::Incoming>,
    Response = Response<impl hyper::body::Body<Data = Bytes, Error = tower::BoxError> + Send>,
    Error = Infallible,
    Future = impl Future + Send,
> + Clone
+ Send
+ 'static {
    ServiceBuilder::new()
        // Outermost, so that a panic anywhere inside (a bug) answers 500 with the usual page
        // and is logged, instead of resetting the connection without an answer.
        .layer(CatchPanicLayer::custom(panicked))
        // Marks Cookie, Authorization and Set-Cookie sensitive: never indexed by HTTP/2's
        // HPACK, and shown as "Sensitive" by anything that logs headers.
        .layer(SetSensitiveHeadersLayer::new(SENSITIVE))
        // The request is in flight until its answer is ready: at the connection limit only
        // idle connections are closed.
        .layer(InFlightLayer(tracked))
        .service(Endpoints {
            app,
            peer,
            listener,
        })
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// `listen`: every endpoint.
    Main,
    /// `metrics_listen`: `/metrics`, `/ping` and `/ready` ([`super::handle_operations`]).
    Operations,
}

fn panicked(_: Box<dyn std::any::Any + Send>) -> Response<Body> {
    tracing::error!(
        code = "server.panic",
        "a handler panicked; answered 500 (this is a bug: please report it)"
    );
    Problem::Internal.response(None)
}

/// The innermost service: routes to the endpoints (`super::handle`) with the configuration
/// current when the request arrives.
#[derive(Clone)]
pub struct Endpoints {
    app: Arc<CurrentApp>,
    peer: Option<IpAddr>,
    listener: Listener,
}

impl Endpoints {
    /// The main listener's endpoints, without a socket (router tests, an embedding).
    pub fn new(app: Arc<CurrentApp>, peer: Option<IpAddr>) -> Self {
        Self {
            app,
            peer,
            listener: Listener::Main,
        }
    }
}

impl<B> Service<Request<B>> for Endpoints
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let app = self.app.load();
        let peer = self.peer;
        match self.listener {
            Listener::Main => Box::pin(async move { Ok(handle(&app, peer, req).await) }),
            Listener::Operations => {
                let response = handle_operations(&app, &req);
                Box::pin(std::future::ready(Ok(response)))
            }
        }
    }
}

/// Counts each request in flight on its connection ([`Tracked::busy`]).
#[derive(Clone)]
pub struct InFlightLayer(Option<Arc<Tracked>>);

impl<S> Layer<S> for InFlightLayer {
    type Service = InFlight<S>;

    fn layer(&self, inner: S) -> InFlight<S> {
        InFlight {
            inner,
            tracked: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct InFlight<S> {
    inner: S,
    tracked: Option<Arc<Tracked>>,
}

impl<S, R> Service<R> for InFlight<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = InFlightFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        InFlightFuture {
            busy: self.tracked.as_ref().map(Tracked::busy),
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner future, with the request counted in flight until it completes.
    pub struct InFlightFuture<F> {
        #[pin]
        inner: F,
        busy: Option<Busy>,
    }
}

impl<F: Future> Future for InFlightFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        this.busy.take();
        Poll::Ready(out)
    }
}
