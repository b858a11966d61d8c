//! Prometheus HTTP API client: instant queries (`/api/v1/query`) for latest-only signals,
//! range queries (`/api/v1/query_range`) for windowed signals and `history` prefetch.
//! Queries are POSTed form-encoded (no URL length limit); every call has a timeout; the
//! answer must be one series (aggregate with `sum(...)` etc.). Credentials (a bearer token
//! or basic auth from a Secret) go in the `Authorization` header, marked sensitive.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use wasmscaler_sdk::Sample;

/// Most bytes of one answer (a 11,000-point range is ~400 KiB).
const MAX_BODY_BYTES: usize = 8 << 20;
/// Prometheus refuses range queries above 11,000 points per series.
pub const MAX_RANGE_POINTS: u64 = 11_000;

#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("bad Prometheus URL '{url}': {message}")]
    Url { url: String, message: String },
    #[error("no Prometheus server: set --prometheus-url or 'server' in the signal's source")]
    NoServer,
    #[error("{url}: no answer within {timeout_ms} ms")]
    Timeout { url: String, timeout_ms: u64 },
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: StatusCode,
        body: String,
    },
    #[error("Prometheus refused the query ({error_type}): {error}")]
    Api { error_type: String, error: String },
    #[error("unreadable answer: {0}")]
    Decode(String),
    #[error("the query returned {0} series; aggregate it to one, e.g. sum(...)")]
    ManySeries(usize),
    #[error("the query returned no data (set ignoreNullValues: true to read it as 0)")]
    Empty,
    #[error("the query returned '{0}', not a finite number")]
    NotFinite(String),
    #[error("TLS setup: {0}")]
    Tls(String),
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A Prometheus API client (cheap to clone; connections are pooled).
#[derive(Clone)]
pub struct Prometheus {
    client: Arc<HttpClient>,
    default_url: Option<String>,
}

#[derive(Deserialize)]
struct ApiAnswer {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum ApiData {
    Vector(Vec<VectorItem>),
    Matrix(Vec<MatrixItem>),
    Scalar((f64, String)),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorItem {
    value: (f64, String),
}

#[derive(Deserialize)]
struct MatrixItem {
    values: Vec<(f64, String)>,
}

impl Prometheus {
    /// `default_url`: the controller's `--prometheus-url` (a signal may override it).
    pub fn new(default_url: Option<String>) -> Result<Self, PromError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| PromError::Tls(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(Self {
            client: Arc::new(client),
            default_url: default_url.map(|u| u.trim_end_matches('/').to_string()),
        })
    }

    pub fn default_url(&self) -> Option<&str> {
        self.default_url.as_deref()
    }

    fn server<'a>(&'a self, server: Option<&'a str>) -> Result<&'a str, PromError> {
        server
            .map(|s| s.trim_end_matches('/'))
            .or(self.default_url.as_deref())
            .ok_or(PromError::NoServer)
    }

    /// The value of `query` at `at_ms`, as one sample. No series: `Ok(None)`.
    /// `auth`: the `Authorization` header's value, if any.
    pub async fn instant(
        &self,
        server: Option<&str>,
        auth: Option<&str>,
        query: &str,
        at_ms: i64,
        timeout: Duration,
    ) -> Result<Option<Sample>, PromError> {
        let base = self.server(server)?;
        let form = form_encode(&[("query", query), ("time", &secs(at_ms))]);
        match self.call(base, auth, "/api/v1/query", form, timeout).await? {
            ApiData::Vector(v) => match v.as_slice() {
                [] => Ok(None),
                [one] => point(&one.value).map(Some),
                many => Err(PromError::ManySeries(many.len())),
            },
            ApiData::Scalar(p) => point(&p).map(Some),
            ApiData::Matrix(_) | ApiData::String(_) => Err(PromError::Decode(
                "an instant query must return a vector or a scalar".into(),
            )),
        }
    }

    /// `query` over `[start_ms, end_ms]` every `step_ms` (widened so the answer stays
    /// within Prometheus's 11,000 points), on the grid of whole steps inside that span.
    /// Non-finite points are dropped. No series: empty.
    #[allow(clippy::too_many_arguments)]
    pub async fn range(
        &self,
        server: Option<&str>,
        auth: Option<&str>,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: u64,
        timeout: Duration,
    ) -> Result<Vec<Sample>, PromError> {
        let base = self.server(server)?;
        let span = u64::try_from(end_ms.saturating_sub(start_ms)).unwrap_or(0);
        let step_ms = step_ms.max(1000).max(span.div_ceil(MAX_RANGE_POINTS - 1));
        let (start_ms, end_ms) = on_grid(start_ms, end_ms, step_ms);
        let form = form_encode(&[
            ("query", query),
            ("start", &secs(start_ms)),
            ("end", &secs(end_ms)),
            ("step", &secs(i64::try_from(step_ms).unwrap_or(i64::MAX))),
        ]);
        match self
            .call(base, auth, "/api/v1/query_range", form, timeout)
            .await?
        {
            ApiData::Matrix(m) => match m.as_slice() {
                [] => Ok(Vec::new()),
                [one] => Ok(one.values.iter().filter_map(|p| point(p).ok()).collect()),
                many => Err(PromError::ManySeries(many.len())),
            },
            _ => Err(PromError::Decode("a range query must return a matrix".into())),
        }
    }

    async fn call(
        &self,
        base: &str,
        auth: Option<&str>,
        path: &str,
        form: String,
        timeout: Duration,
    ) -> Result<ApiData, PromError> {
        let url = format!("{base}{path}");
        let uri: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| PromError::Url {
                url: base.to_string(),
                message: e.to_string(),
            })?;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json");
        if let Some(a) = auth {
            let mut value = hyper::header::HeaderValue::from_str(a).map_err(|_| PromError::Url {
                url: base.to_string(),
                message: "the credential from the Secret is not a valid header value (a line break?)".into(),
            })?;
            value.set_sensitive(true);
            req = req.header(hyper::header::AUTHORIZATION, value);
        }
        let req = req
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| PromError::Url {
                url: base.to_string(),
                message: e.to_string(),
            })?;
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| PromError::Http {
                url: url.clone(),
                message: error_chain(&e),
            })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| PromError::Http {
                    url: url.clone(),
                    message: format!("reading the answer: {e}"),
                })?
                .to_bytes();
            Ok::<_, PromError>((status, body))
        };
        let (status, body) = tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| PromError::Timeout {
                url: url.clone(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            })??;
        // Prometheus answers errors with a JSON body and 400/422/503; read it when it is one.
        let parsed: Result<ApiAnswer, _> = serde_json::from_slice(&body);
        match parsed {
            Ok(a) if a.status == "success" => a
                .data
                .ok_or_else(|| PromError::Decode("'data' is missing".into())),
            Ok(a) => Err(PromError::Api {
                error_type: a.error_type.unwrap_or_else(|| "error".into()),
                error: a.error.unwrap_or_default(),
            }),
            Err(e) if status.is_success() => Err(PromError::Decode(e.to_string())),
            Err(_) => Err(PromError::Status {
                url,
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            }),
        }
    }
}

fn point((t, v): &(f64, String)) -> Result<Sample, PromError> {
    let value: f64 = v.parse().map_err(|_| PromError::NotFinite(v.clone()))?;
    if !value.is_finite() {
        return Err(PromError::NotFinite(v.clone()));
    }
    Ok(Sample::new((t * 1000.0).round() as i64, value))
}

/// Milliseconds as Prometheus's decimal seconds.
fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// `application/x-www-form-urlencoded`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(&mut out, k);
        out.push('=');
        encode_into(&mut out, v);
    }
    out
}

fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// `[start, end]` narrowed to multiples of `step`. Prometheus evaluates a range query at
/// `start + k * step`: on a grid that moves with `now`, two evaluations a few ms apart
/// read different instants, so a second's value flips around every change of the series
/// and a policy that keeps per-second totals (knative's windows) drifts.
fn on_grid(start_ms: i64, end_ms: i64, step_ms: u64) -> (i64, i64) {
    let step = i64::try_from(step_ms).unwrap_or(i64::MAX).max(1);
    let end = end_ms.div_euclid(step).saturating_mul(step);
    let start = start_ms
        .div_euclid(step)
        .saturating_add(i64::from(start_ms.rem_euclid(step) != 0))
        .saturating_mul(step);
    (start.min(end), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_spans_are_narrowed_to_the_step_grid() {
        assert_eq!(on_grid(10_155, 30_155, 1000), (11_000, 30_000));
        assert_eq!(on_grid(10_000, 30_000, 1000), (10_000, 30_000));
        assert_eq!(on_grid(1_234, 3_599_999, 30_000), (30_000, 3_570_000));
        // A span shorter than a step keeps one point.
        assert_eq!(on_grid(10_100, 10_900, 1000), (10_000, 10_000));
    }

    #[test]
    fn encodes_forms_and_times() {
        assert_eq!(
            form_encode(&[("query", "sum(rate(x{a=\"b c\"}[1m]))"), ("time", "1.5")]),
            "query=sum%28rate%28x%7Ba%3D%22b+c%22%7D%5B1m%5D%29%29&time=1.5"
        );
        assert_eq!(secs(1_700_000_000_123), "1700000000.123");
        assert_eq!(secs(5), "0.005");
    }

    #[test]
    fn decodes_answers() {
        let a: ApiAnswer = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.5,"42.5"]}]}}"#,
        )
        .unwrap();
        let Some(ApiData::Vector(v)) = a.data else {
            panic!()
        };
        assert_eq!(point(&v[0].value).unwrap(), Sample::new(1_700_000_000_500, 42.5));
        assert!(matches!(
            point(&(1.0, "NaN".into())),
            Err(PromError::NotFinite(_))
        ));
        assert!(matches!(
            point(&(1.0, "+Inf".into())),
            Err(PromError::NotFinite(_))
        ));
    }
}
