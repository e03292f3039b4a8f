//! `GET /metrics`: the node's Prometheus metrics, and `GET /ready`: 200 once the node has
//! caught up with its peers, 503 while it syncs (for load balancers and orchestration), both
//! served beside JSON-RPC on the same port.

use std::sync::Arc;
use std::task::{Context, Poll};

use aether_node::node::NodeMetrics;
use futures::future::{ready, Either, Ready};
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};

/// A tower layer answering `GET /metrics` and passing every other request through.
#[derive(Clone)]
pub struct MetricsLayer(pub Arc<NodeMetrics>);

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner, metrics: self.0.clone() }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<NodeMetrics>,
}

impl<S, B> tower::Service<HttpRequest<B>> for MetricsService<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Either<Ready<Result<HttpResponse, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        if req.method().as_str() == "GET" && req.uri().path() == "/metrics" {
            #[allow(clippy::expect_used)] // status and header are constants that the builder accepts
            let response = HttpResponse::builder()
                .status(200)
                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                .body(HttpBody::from(self.metrics.encode()))
                .expect("a static status and header make a valid response");
            Either::Left(ready(Ok(response)))
        } else if req.method().as_str() == "GET" && req.uri().path() == "/ready" {
            let ready_now = self.metrics.is_ready();
            let (status, body) =
                if ready_now { (200, "{\"ready\":true}") } else { (503, "{\"ready\":false,\"reason\":\"catching up with peers\"}") };
            #[allow(clippy::expect_used)] // status and header are constants that the builder accepts
            let response = HttpResponse::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(HttpBody::from(body))
                .expect("a static status and header make a valid response");
            Either::Left(ready(Ok(response)))
        } else {
            Either::Right(self.inner.call(req))
        }
    }
}
