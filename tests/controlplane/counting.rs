//! A `kube::Client` that records every request it sends, to tell how many LISTs, GETs and
//! watches a piece of code makes (the API server's own counters are shared by every test
//! of the binary; these are the client's alone).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper::{Method, Request, Response};
use kube::client::Body;

/// One request: its method, path and whether it was a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub method: Method,
    pub path: String,
    pub watch: bool,
}

/// The requests a counting client sent, shared with the test.
#[derive(Clone, Default)]
pub struct Requests(Arc<Mutex<Vec<Sent>>>);

impl Requests {
    pub fn all(&self) -> Vec<Sent> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// LISTs of `resource` (plural, `pods`): GETs of the collection that are not watches.
    pub fn lists(&self, resource: &str) -> usize {
        self.all()
            .iter()
            .filter(|s| s.method == Method::GET && !s.watch && s.path.rsplit('/').next() == Some(resource))
            .count()
    }

    /// GETs of one object of `resource` (`/.../deployments/web`).
    pub fn gets(&self, resource: &str) -> usize {
        self.all()
            .iter()
            .filter(|s| {
                let mut segs = s.path.rsplit('/');
                s.method == Method::GET && !s.watch && segs.nth(1) == Some(resource)
            })
            .count()
    }

    /// Watches of `resource` started.
    pub fn watches(&self, resource: &str) -> usize {
        self.all()
            .iter()
            .filter(|s| s.watch && s.path.rsplit('/').next() == Some(resource))
            .count()
    }
}

/// `client`, recording every request into the returned [`Requests`].
pub fn counting(client: kube::Client) -> (kube::Client, Requests) {
    let requests = Requests::default();
    let ns = client.default_namespace().to_string();
    let svc = Counting {
        inner: client,
        requests: requests.clone(),
    };
    (kube::Client::new(svc, ns), requests)
}

#[derive(Clone)]
struct Counting {
    inner: kube::Client,
    requests: Requests,
}

impl tower::Service<Request<Body>> for Counting {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, kube::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let watch = req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
        self.requests
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Sent {
                method: req.method().clone(),
                path: req.uri().path().to_string(),
                watch,
            });
        let client = self.inner.clone();
        Box::pin(async move { client.send(req).await })
    }
}
