//! `wasmscaler run`: the controller as a command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::Failure;
use crate::kube::Settings;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Kubeconfig file (default: in-cluster service account, then $KUBECONFIG / ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WASMSCALER_NAMESPACE")]
    pub namespace: Option<String>,
    /// Directory of `file:NAME.wasm` policies, watched for hot reload.
    #[arg(long, env = "WASMSCALER_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Cache of precompiled policies (default: $XDG_CACHE_HOME/wasmscaler).
    #[arg(long, env = "WASMSCALER_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// max-replicas of workloads that do not set wasmscaler.io/max-replicas.
    #[arg(long, default_value_t = 100)]
    pub default_max_replicas: u32,
    /// Also watch this kind, as apiVersion/Kind (repeatable), e.g.
    /// batch.volcano.sh/v1alpha1/Job (scaled through /scale) or batch/v1/CronJob.
    #[arg(long = "watch", value_name = "APIVERSION/KIND")]
    pub extra_kinds: Vec<String>,
    /// Address of /metrics, /healthz, /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Disable leader election (only when running a single replica).
    #[arg(long)]
    pub no_leader_election: bool,
    /// Namespace of the leader Lease (default: the pod's namespace, else wasmscaler-system).
    #[arg(long, env = "POD_NAMESPACE", default_value = "wasmscaler-system")]
    pub lease_namespace: String,
    #[arg(long, default_value = "wasmscaler-leader")]
    pub lease_name: String,
    /// Identity in the Lease (default: $POD_NAME, else the hostname).
    #[arg(long)]
    pub identity: Option<String>,
    /// Lease duration in seconds.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Workloads reconciled in parallel.
    #[arg(long, default_value_t = 8)]
    pub concurrency: u16,
    /// Prometheus server for `prometheus` signal sources that name no `server`
    /// (e.g. http://prometheus.monitoring:9090).
    #[arg(long, env = "WASMSCALER_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// Servers a workload's annotation may name for a signal: `host` (any port),
    /// `host:port`, or `unix` (Redis over a socket); repeatable or comma-separated.
    /// Default: any server. `--prometheus-url` is always allowed.
    #[arg(long, value_name = "HOST[:PORT]", value_delimiter = ',')]
    pub allowed_signal_servers: Option<Vec<String>>,
    /// The shortest wasmscaler.io/interval a workload may set (shorter ones are refused).
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub min_interval: Duration,
    /// Accept passwords written into signal URLs in annotations (`redis://:PASSWORD@host`).
    /// Default: refused; a signal names a Secret instead (`passwordFrom: {secret, key}`).
    #[arg(long)]
    pub allow_inline_credentials: bool,
    /// Write one JSON line per evaluation (every policy's exact context, its answer, the
    /// outcome) into gzip files in this directory, for `wasmscaler replay`. Off by default.
    #[arg(long, env = "WASMSCALER_DECISION_LOG", value_name = "DIR")]
    pub decision_log: Option<PathBuf>,
    /// Start a new decision-log file past this size (compressed).
    #[arg(long, default_value_t = 64, value_name = "MiB")]
    pub decision_log_file_mib: u64,
    /// Delete the oldest decision-log files past this total size.
    #[arg(long, default_value_t = 1024, value_name = "MiB")]
    pub decision_log_total_mib: u64,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    crate::core::spec::parse_duration_ms(s).map(Duration::from_millis)
}

pub fn run(args: RunArgs) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::runtime)?;
    rt.block_on(run_async(args))
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client, Failure> {
    let cfg = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))
                .map_err(Failure::Usage)?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))
                .map_err(Failure::Usage)?
        }
        None => kube::Config::infer()
            .await
            .context("no in-cluster config and no kubeconfig")
            .map_err(Failure::Usage)?,
    };
    kube::Client::try_from(cfg)
        .context("cannot build a Kubernetes client")
        .map_err(Failure::Runtime)
}

async fn run_async(args: RunArgs) -> Result<(), Failure> {
    if args.lease_duration_seconds < 2 {
        return Err(Failure::usage(anyhow::anyhow!(
            "--lease-duration-seconds must be at least 2"
        )));
    }
    let client = client(args.kubeconfig.as_ref()).await?;
    let defaults = Settings::default();
    let lease_duration = Duration::from_secs(args.lease_duration_seconds);
    let decision_log = args
        .decision_log
        .map(|dir| crate::core::decision_log::WriterSettings {
            max_file_bytes: args.decision_log_file_mib.max(1) << 20,
            max_total_bytes: args.decision_log_total_mib.max(1) << 20,
            ..crate::core::decision_log::WriterSettings::new(dir)
        });
    let settings = Settings {
        namespace: args.namespace,
        policy_dir: args.policy_dir,
        cache_dir: args.cache_dir.or_else(crate::runtime::default_cache_dir),
        default_max_replicas: args.default_max_replicas,
        extra_kinds: args.extra_kinds,
        leader_election: !args.no_leader_election,
        lease_namespace: args.lease_namespace,
        lease_name: args.lease_name,
        identity: args.identity.unwrap_or(defaults.identity),
        lease_duration,
        lease_retry: (lease_duration / 5).max(Duration::from_millis(500)),
        metrics_addr: Some(args.metrics_addr),
        concurrency: args.concurrency,
        tenancy: crate::kube::tenancy::TenancyRules {
            allowed_signal_servers: args.allowed_signal_servers,
            min_interval: args.min_interval,
            allow_inline_credentials: args.allow_inline_credentials,
        },
        decision_log,
    };
    tracing::info!(?settings, "starting controller");
    // Signal sources (prometheus, redis, kubernetes) and the Job / pool actuator, on the
    // controller's fenced client.
    let prometheus_url = args.prometheus_url.clone();
    let extensions = move |client| crate::kube::extensions::extensions(client, prometheus_url);
    let running = crate::kube::start(client, settings, extensions)
        .await
        .map_err(|e| match e {
            crate::kube::StartError::Kind(..)
            | crate::kube::StartError::PolicyWatch(..)
            | crate::kube::StartError::DecisionLog(..) => Failure::usage(e),
            other => Failure::runtime(other),
        })?;
    if let Some(a) = running.metrics_addr {
        tracing::info!(addr = %a, "serving /metrics, /healthz, /readyz");
    }
    running.run_until_signal().await;
    Ok(())
}
