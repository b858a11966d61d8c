//! The KEDA anchor: an external scaler (`externalscaler.ExternalScaler/GetMetrics`, KEDA's
//! `pkg/scalers/externalscaler/externalscaler.proto`) in another process, over loopback TCP,
//! with tonic. The server runs the same HPA computation as the `hpa` built-in (the
//! hpa-target example, natively) and answers with the desired replicas as the metric value,
//! so a `GetMetrics` round trip does the work of one `evaluate`.
//!
//! The messages are written by hand with prost's derive (no protoc, no build script); the
//! field numbers and names are the proto's.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::task::{Context as TaskContext, Poll};

use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;
use wasmscaler_sdk::testing::ContextBuilder;

/// `message ScaledObjectRef`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScaledObjectRef {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(map = "string, string", tag = "3")]
    pub scaler_metadata: HashMap<String, String>,
}

/// `message GetMetricsRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMetricsRequest {
    #[prost(message, optional, tag = "1")]
    pub scaled_object_ref: Option<ScaledObjectRef>,
    #[prost(string, tag = "2")]
    pub metric_name: String,
}

/// `message MetricValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricValue {
    #[prost(string, tag = "1")]
    pub metric_name: String,
    #[prost(int64, tag = "2")]
    pub metric_value: i64,
    #[prost(double, tag = "3")]
    pub metric_value_float: f64,
}

/// `message GetMetricsResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMetricsResponse {
    #[prost(message, repeated, tag = "1")]
    pub metric_values: Vec<MetricValue>,
}

const GET_METRICS: &str = "/externalscaler.ExternalScaler/GetMetrics";

/// The environment variable that turns the bench binary into the scaler process.
pub const SERVER_ENV: &str = "WASMSCALER_BENCH_KEDA_SERVER";

fn metadata_number(meta: &HashMap<String, String>, key: &str) -> Result<f64, Status> {
    let text = meta
        .get(key)
        .ok_or_else(|| Status::invalid_argument(format!("scalerMetadata.{key} is missing")))?;
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| Status::invalid_argument(format!("scalerMetadata.{key}: not a number: {text:?}")))
}

fn replica_count(meta: &HashMap<String, String>, key: &str) -> Result<u32, Status> {
    let v = metadata_number(meta, key)?;
    if v < 0.0 || v > f64::from(u32::MAX) || v.fract() != 0.0 {
        return Err(Status::invalid_argument(format!(
            "scalerMetadata.{key}: not a replica count: {v}"
        )));
    }
    Ok(v as u32)
}

/// The HPA computation behind `GetMetrics`: the workload and the load come in the scaled
/// object's metadata, the answer is the hpa-target policy's desired replicas.
fn get_metrics(req: GetMetricsRequest) -> Result<GetMetricsResponse, Status> {
    let object = req
        .scaled_object_ref
        .ok_or_else(|| Status::invalid_argument("scaledObjectRef is missing"))?;
    let meta = &object.scaler_metadata;
    let replicas = replica_count(meta, "replicas")?;
    let ctx = ContextBuilder::new()
        .replicas(replicas, replicas)
        .bounds(
            replica_count(meta, "minReplicas")?,
            replica_count(meta, "maxReplicas")?,
        )
        .latest(&req.metric_name, metadata_number(meta, "load")?)
        .build();
    let d = wasmscaler_sdk::testing::evaluate::<hpa_target::HpaTarget>(&ctx)
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(GetMetricsResponse {
        metric_values: vec![MetricValue {
            metric_name: req.metric_name,
            metric_value: i64::from(d.replicas),
            metric_value_float: f64::from(d.replicas),
        }],
    })
}

/// The `externalscaler.ExternalScaler` service with only `GetMetrics` (what tonic's codegen
/// would write for it; other methods answer `Unimplemented`).
#[derive(Clone)]
struct ExternalScaler;

impl NamedService for ExternalScaler {
    const NAME: &'static str = "externalscaler.ExternalScaler";
}

struct GetMetricsSvc;

impl tonic::server::UnaryService<GetMetricsRequest> for GetMetricsSvc {
    type Response = GetMetricsResponse;
    type Future = std::future::Ready<Result<Response<GetMetricsResponse>, Status>>;
    fn call(&mut self, request: Request<GetMetricsRequest>) -> Self::Future {
        std::future::ready(get_metrics(request.into_inner()).map(Response::new))
    }
}

impl<B> tonic::codegen::Service<http::Request<B>> for ExternalScaler
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == GET_METRICS {
            Box::pin(async move {
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<GetMetricsResponse, GetMetricsRequest>::default());
                Ok(grpc.unary(GetMetricsSvc, req).await)
            })
        } else {
            Box::pin(async move { Ok(Status::unimplemented(req.uri().path().to_string()).into_http()) })
        }
    }
}

/// The scaler process: bind 127.0.0.1 on a free port, print it, serve until stdin closes
/// (the bench ended or died), then exit.
pub fn serve() -> ! {
    let code = match serve_until_stdin_closes() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("keda scaler process: {e}");
            1
        }
    };
    std::process::exit(code)
}

fn serve_until_stdin_closes() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?.port());
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            let _ = closed_tx.send(());
        });
        tonic::transport::Server::builder()
            .add_service(ExternalScaler)
            .serve_with_incoming_shutdown(tokio_stream_of(listener), async {
                let _ = closed_rx.await;
            })
            .await?;
        Ok(())
    })
}

/// The listener as the stream of connections tonic serves (TCP_NODELAY, as KEDA's Go
/// client and server have it by default).
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let next = l
            .accept()
            .await
            .and_then(|(s, _)| s.set_nodelay(true).map(|()| s));
        Some((next, l))
    })
}

/// The scaler process seen from the bench; killed and reaped on drop.
pub struct Scaler {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
}

impl Scaler {
    pub fn start() -> Result<Scaler, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new(exe)
            .env(SERVER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the scaler process: {e}"))?;
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(i), Some(o)) => (i, o),
            _ => return Err("the scaler process has no pipes".into()),
        };
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading the scaler's port: {e}"))?;
        let port = line
            .trim()
            .parse()
            .map_err(|_| format!("the scaler process printed {line:?}, not a port"))?;
        Ok(Scaler {
            child,
            _stdin: stdin,
            port,
        })
    }
}

impl Drop for Scaler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A KEDA-side client: one HTTP/2 connection, one `GetMetrics` per call.
pub struct Client {
    rt: tokio::runtime::Runtime,
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
    request: GetMetricsRequest,
}

impl Client {
    /// Connect, asking for `load` at `replicas` (bounds `min..=max`).
    pub fn connect(port: u16, load: f64, replicas: u32, min: u32, max: u32) -> Result<Client, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: {e}"))?;
        let channel = rt
            .block_on(
                tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
                    .map_err(|e| format!("endpoint: {e}"))?
                    .tcp_nodelay(true)
                    .connect(),
            )
            .map_err(|e| format!("connect to the scaler: {e}"))?;
        let meta = HashMap::from([
            ("load".to_string(), load.to_string()),
            ("replicas".to_string(), replicas.to_string()),
            ("minReplicas".to_string(), min.to_string()),
            ("maxReplicas".to_string(), max.to_string()),
        ]);
        Ok(Client {
            rt,
            grpc: tonic::client::Grpc::new(channel),
            request: GetMetricsRequest {
                scaled_object_ref: Some(ScaledObjectRef {
                    name: "web".into(),
                    namespace: "default".into(),
                    scaler_metadata: meta,
                }),
                metric_name: "load".into(),
            },
        })
    }

    /// One `GetMetrics` round trip: the desired replicas the scaler answered.
    pub fn get_metrics(&mut self) -> Result<i64, String> {
        let grpc = &mut self.grpc;
        let request = self.request.clone();
        self.rt.block_on(async move {
            grpc.ready().await.map_err(|e| format!("not ready: {e}"))?;
            let codec = ProstCodec::<GetMetricsRequest, GetMetricsResponse>::default();
            let path = http::uri::PathAndQuery::from_static(GET_METRICS);
            let answer = grpc
                .unary(Request::new(request), path, codec)
                .await
                .map_err(|e| format!("GetMetrics: {e}"))?
                .into_inner();
            answer
                .metric_values
                .first()
                .map(|m| m.metric_value)
                .ok_or_else(|| "GetMetrics answered no metric value".to_string())
        })
    }
}
