//! The controller's Kubernetes client: every request it makes passes here.
//!
//! - **Writes are fenced by leadership.** A write (any verb but GET/HEAD) other than the
//!   Lease's own leaves only while this replica's leadership is valid, checked at the last
//!   moment before the request is sent. The reconciler checks leadership too, but a
//!   reconcile that started as leader can reach its write after a black-holed renewal
//!   made the Lease expire; this check is the one no code path can skip (scale, Jobs,
//!   pools, state and status annotations, Events).
//! - **Requests have a deadline.** kube-client sets no read timeout (a watch is a long
//!   read), so a black-holed connection would hang a reconcile, or the Lease renewal,
//!   forever. Every request gets its response within [`REQUEST_TIMEOUT`]; for a non-watch
//!   request that includes its whole body, for a watch only the response head (its body is
//!   a stream the API server ends by itself).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::{Method, Request, Response};
use kube::client::Body;

use super::leader::Leadership;

/// How long one Kubernetes request may take: client-go's leader election gives a renewal
/// 10 s (its RenewDeadline); a read or a write of one object never needs more.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the fence stopped a request (the reconciler sees it as an API error and retries).
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    #[error("not the leader: {method} {path} not sent (leadership expired or lost)")]
    NotLeader { method: Method, path: String },
    #[error("Kubernetes API request {method} {path} timed out after {after:?}")]
    Timeout {
        method: Method,
        path: String,
        after: Duration,
    },
}

/// `client`, with writes fenced by `leadership` and every request under `timeout`.
pub fn fenced(client: kube::Client, leadership: Leadership, timeout: Duration) -> kube::Client {
    let ns = client.default_namespace().to_string();
    kube::Client::new(
        Fence {
            inner: client,
            leadership,
            timeout,
        },
        ns,
    )
}

#[derive(Clone)]
struct Fence {
    inner: kube::Client,
    leadership: Leadership,
    timeout: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The Lease is how leadership is won and kept: its writes are never fenced.
fn is_lease(path: &str) -> bool {
    path.starts_with("/apis/coordination.k8s.io/")
}

fn is_watch(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

impl tower::Service<Request<Body>> for Fence {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let watch = is_watch(req.uri().query());
        if is_write(&method) && !is_lease(&path) && !self.leadership.is_leader() {
            return Box::pin(std::future::ready(Err(
                FenceError::NotLeader { method, path }.into()
            )));
        }
        let (client, after) = (self.inner.clone(), self.timeout);
        Box::pin(async move {
            let exchange = async {
                let res = client.send(req).await?;
                if watch {
                    return Ok::<_, kube::Error>(res);
                }
                let (parts, body) = res.into_parts();
                let bytes = body.collect().await?.to_bytes();
                Ok(Response::from_parts(parts, Body::from(bytes)))
            };
            match tokio::time::timeout(after, exchange).await {
                Ok(Ok(res)) => Ok(res),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(FenceError::Timeout { method, path, after }.into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writes_outside_the_lease_are_fenced() {
        assert!(is_write(&Method::PUT) && is_write(&Method::PATCH) && is_write(&Method::POST));
        assert!(is_write(&Method::DELETE) && !is_write(&Method::GET));
        assert!(is_lease(
            "/apis/coordination.k8s.io/v1/namespaces/x/leases/wasmscaler-leader"
        ));
        assert!(!is_lease("/apis/apps/v1/namespaces/x/deployments/web/scale"));
    }

    #[test]
    fn watches_are_told_by_their_query() {
        assert!(is_watch(Some("labelSelector=a&watch=true&timeoutSeconds=290")));
        assert!(is_watch(Some("watch=1")));
        assert!(!is_watch(Some("watch=false")));
        assert!(!is_watch(Some("fieldSelector=metadata.name%3Dwatch%3Dtrue")));
        assert!(!is_watch(None));
    }
}
