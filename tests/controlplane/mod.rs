//! A real Kubernetes control plane for tests: etcd + kube-apiserver on loopback, no
//! mocks. Binaries come from `$WASMSCALER_CP_BIN` (default `<root>/target/controlplane/bin`,
//! built by `scripts/build-control-plane.sh`).
//!
//! Use it from a test file of the `wasmscaler-tests` crate:
//!
//! ```ignore
//! #[path = "controlplane/mod.rs"]
//! mod controlplane;
//! use controlplane::ControlPlane;
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn my_test() {
//!     let cp = ControlPlane::shared();            // one per test binary, started on first use
//!     let ns = cp.namespace("my-test").await;       // a fresh namespace per test
//!     let admin = cp.admin_client().await;          // system:masters
//!     // The controller, in-process, as the RBAC-restricted service account of deploy/rbac.yaml:
//!     let ctl = cp.start_controller(controlplane::settings(&ns)).await;
//!     // ... create/annotate objects with `admin` or `cp.kubectl(&[...])`, then wait:
//!     controlplane::eventually("scaled", || async { /* Some(()) when done */ None::<()> }).await;
//!     ctl.shutdown().await;
//! }
//! ```
//!
//! Notes: there is no kube-controller-manager, so Deployments get no Pods and no status;
//! set `status` yourself through the `/status` subresource ([`ControlPlane::set_ready`]).
//! Namespaces are never deleted (deletion hangs without the namespace controller).
//! Child processes are killed by a watchdog when the test process exits, however it exits.

#![allow(dead_code)]

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub mod counting;
pub mod fault_proxy;
pub mod fixtures;
pub mod recorder;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

pub const ADMIN_TOKEN: &str = "wasmscaler-admin-token";
pub const CONTROLLER_TOKEN: &str = "wasmscaler-controller-token";
/// An authenticated user no RBAC rule names: every read of an object is forbidden.
pub const NOBODY_TOKEN: &str = "wasmscaler-nobody-token";
/// The static token of the controller authenticates as this service account, so the
/// bindings in deploy/rbac.yaml apply to it unchanged.
pub const CONTROLLER_USER: &str = "system:serviceaccount:wasmscaler-system:wasmscaler";
pub const SYSTEM_NAMESPACE: &str = "wasmscaler-system";

pub struct ControlPlane {
    dir: tempfile::TempDir,
    bin: PathBuf,
    etcd_url: String,
    pub port: u16,
    pub url: String,
    etcd: Mutex<Option<Child>>,
    apiserver: Mutex<Option<Child>>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

pub fn bin_dir() -> PathBuf {
    std::env::var_os("WASMSCALER_CP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/controlplane/bin"))
}

impl ControlPlane {
    /// One control plane per test binary, started on first use.
    pub fn shared() -> &'static ControlPlane {
        static CP: OnceLock<ControlPlane> = OnceLock::new();
        CP.get_or_init(ControlPlane::start)
    }

    /// Start etcd and kube-apiserver (blocking, ~5-10 s), apply deploy/rbac.yaml.
    pub fn start() -> ControlPlane {
        let bin = bin_dir();
        for b in ["etcd", "kube-apiserver"] {
            assert!(
                bin.join(b).is_file(),
                "{} missing: run scripts/build-control-plane.sh or set WASMSCALER_CP_BIN",
                bin.join(b).display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("wasmscaler-cp-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("certs")).expect("cert dir");
        std::fs::write(
            d.join("tokens.csv"),
            format!(
                "{ADMIN_TOKEN},admin,admin-uid,\"system:masters\"\n\
                 {CONTROLLER_TOKEN},{CONTROLLER_USER},sa-uid,\"system:serviceaccounts,system:serviceaccounts:{SYSTEM_NAMESPACE}\"\n\
                 {NOBODY_TOKEN},nobody,nobody-uid\n"
            ),
        )
        .expect("token file");
        let st = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(d.join("certs/sa.key"))
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(st.success(), "openssl genrsa failed");

        // Watchdog: when this process goes away, kill the children and remove the dir.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(
                "while kill -0 \"$0\" 2>/dev/null; do sleep 1; done; \
                 for f in \"$1\"/*.pid; do kill -9 $(cat \"$f\") 2>/dev/null; done; rm -rf \"$1\"",
            )
            .arg(std::process::id().to_string())
            .arg(d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();

        let etcd_port = free_port();
        let port = free_port();
        let mut cp = ControlPlane {
            bin,
            etcd_url: format!("http://127.0.0.1:{etcd_port}"),
            port,
            url: format!("https://127.0.0.1:{port}"),
            etcd: Mutex::new(None),
            apiserver: Mutex::new(None),
            dir,
        };
        cp.start_etcd(etcd_port);
        cp.start_apiserver();
        cp.write_kubeconfigs();
        cp.kubectl_ok(&["create", "namespace", SYSTEM_NAMESPACE]);
        let rbac = root().join("deploy/rbac.yaml");
        cp.kubectl_ok(&["apply", "-f", &rbac.display().to_string()]);
        cp
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn_logged(&self, name: &str, cmd: &mut Command) -> Child {
        let log = std::fs::File::create(self.dir().join(format!("{name}.log"))).expect("log file");
        let err = log.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let _ = std::fs::write(self.dir().join(format!("{name}.pid")), child.id().to_string());
        child
    }

    fn start_etcd(&mut self, port: u16) {
        let peer = free_port();
        let data = self.dir().join("etcd-data");
        let child = self.spawn_logged(
            "etcd",
            Command::new(self.bin.join("etcd"))
                .arg(format!("--data-dir={}", data.display()))
                .arg(format!("--listen-client-urls=http://127.0.0.1:{port}"))
                .arg(format!("--advertise-client-urls=http://127.0.0.1:{port}"))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
                .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"))
                .arg(format!("--initial-cluster=default=http://127.0.0.1:{peer}"))
                .arg("--unsafe-no-fsync=true")
                .arg("--log-level=warn"),
        );
        *self.etcd.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
    }

    /// Start (or restart) kube-apiserver and wait until /readyz answers.
    pub fn start_apiserver(&self) {
        let d = self.dir();
        let certs = d.join("certs");
        let child = self.spawn_logged(
            "kube-apiserver",
            Command::new(self.bin.join("kube-apiserver"))
                .arg(format!("--etcd-servers={}", self.etcd_url))
                .arg(format!("--cert-dir={}", certs.display()))
                .arg(format!("--secure-port={}", self.port))
                .arg("--bind-address=127.0.0.1")
                .arg("--advertise-address=127.0.0.1")
                .arg("--service-cluster-ip-range=10.0.0.0/24")
                .arg("--allow-privileged=true")
                .arg("--disable-admission-plugins=ServiceAccount")
                .arg("--authorization-mode=RBAC")
                .arg(format!("--token-auth-file={}", d.join("tokens.csv").display()))
                .arg(format!(
                    "--service-account-issuer=https://127.0.0.1:{}/",
                    self.port
                ))
                .arg(format!(
                    "--service-account-key-file={}",
                    certs.join("sa.key").display()
                ))
                .arg(format!(
                    "--service-account-signing-key-file={}",
                    certs.join("sa.key").display()
                ))
                .arg("--event-ttl=10m")
                .arg("-v=0"),
        );
        *self.apiserver.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        self.wait_ready(Duration::from_secs(90));
    }

    /// Kill kube-apiserver (etcd keeps the data); [`Self::start_apiserver`] brings it back.
    pub fn stop_apiserver(&self) {
        if let Some(mut c) = self.apiserver.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        let crt = self.dir().join("certs/apiserver.crt");
        loop {
            if crt.is_file() {
                if !self.dir().join("admin.kubeconfig").is_file() {
                    self.write_kubeconfigs();
                }
                let out = Command::new("kubectl")
                    .arg(format!("--kubeconfig={}", self.admin_kubeconfig().display()))
                    .args(["get", "--raw", "/readyz"])
                    .output();
                if let Ok(o) = out
                    && o.status.success()
                {
                    return;
                }
            }
            if start.elapsed() > limit {
                let log = std::fs::read_to_string(self.dir().join("kube-apiserver.log")).unwrap_or_default();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                panic!("kube-apiserver not ready after {limit:?}; log tail:\n{tail}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn kubeconfig_text(&self, user: &str, token: &str) -> String {
        self.kubeconfig_text_at(self.port, user, token)
    }

    fn kubeconfig_text_at(&self, port: u16, user: &str, token: &str) -> String {
        let crt = self.dir().join("certs/apiserver.crt");
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {crt}\n\
             users:\n- name: {user}\n  user:\n    token: {token}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: {user}\n    namespace: default\n\
             current-context: test\n",
            crt = crt.display(),
        )
    }

    fn write_kubeconfigs(&self) {
        let _ = std::fs::write(
            self.admin_kubeconfig(),
            self.kubeconfig_text("admin", ADMIN_TOKEN),
        );
        let _ = std::fs::write(
            self.controller_kubeconfig(),
            self.kubeconfig_text("wasmscaler", CONTROLLER_TOKEN),
        );
        let _ = std::fs::write(
            self.dir().join("nobody.kubeconfig"),
            self.kubeconfig_text("nobody", NOBODY_TOKEN),
        );
    }

    /// Kubeconfig of the admin (system:masters).
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir().join("admin.kubeconfig")
    }

    /// Kubeconfig of the controller's service account (bound by deploy/rbac.yaml).
    pub fn controller_kubeconfig(&self) -> PathBuf {
        self.dir().join("controller.kubeconfig")
    }

    pub async fn client_from(path: &Path) -> Client {
        let kc = Kubeconfig::read_from(path).expect("kubeconfig readable");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig valid");
        Client::try_from(cfg).expect("client")
    }

    pub async fn admin_client(&self) -> Client {
        Self::client_from(&self.admin_kubeconfig()).await
    }

    pub async fn controller_client(&self) -> Client {
        Self::client_from(&self.controller_kubeconfig()).await
    }

    /// A client of a user no RBAC rule names ([`NOBODY_TOKEN`]).
    pub async fn unprivileged_client(&self) -> Client {
        Self::client_from(&self.dir().join("nobody.kubeconfig")).await
    }

    /// The controller's client, connecting to the API server through 127.0.0.1:`port`
    /// (a [`fault_proxy::FaultProxy`]).
    pub async fn controller_client_via(&self, port: u16) -> Client {
        let path = self.dir().join(format!("controller-via-{port}.kubeconfig"));
        std::fs::write(
            &path,
            self.kubeconfig_text_at(port, "wasmscaler", CONTROLLER_TOKEN),
        )
        .expect("write the kubeconfig");
        Self::client_from(&path).await
    }

    /// Run kubectl as the admin, exactly as a user would.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg(format!("--kubeconfig={}", self.admin_kubeconfig().display()))
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let o = self.kubectl(args);
        assert!(
            o.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `kubectl -n NS annotate --overwrite OBJECT KEY=VALUE`, as a user changes an annotation.
    pub fn annotate(&self, ns: &str, object: &str, key_value: &str) {
        self.kubectl_ok(&["-n", ns, "annotate", "--overwrite", object, key_value]);
    }

    /// kubectl apply of a YAML document given as text.
    pub fn apply(&self, yaml: &str) -> String {
        let path = self.dir().join(format!("apply-{}.yaml", unique()));
        std::fs::write(&path, yaml).expect("write manifest");
        self.kubectl_ok(&["apply", "-f", &path.display().to_string()])
    }

    /// A fresh namespace `<prefix>-<n>`.
    pub async fn namespace(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{}", unique());
        self.kubectl_ok(&["create", "namespace", &name]);
        name
    }

    /// Set `status.replicas`/`readyReplicas` of a Deployment or StatefulSet through its
    /// `/status` subresource (there is no controller-manager to do it).
    pub fn set_ready(&self, ns: &str, kind: &str, name: &str, replicas: u32, ready: u32) {
        let patch = format!(
            "{{\"status\":{{\"replicas\":{replicas},\"readyReplicas\":{ready},\"availableReplicas\":{ready},\"updatedReplicas\":{replicas},\"currentReplicas\":{replicas}}}}}"
        );
        self.kubectl_ok(&[
            "-n",
            ns,
            "patch",
            kind,
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ]);
    }

    /// `spec.replicas` of a workload, read with kubectl.
    pub fn replicas(&self, ns: &str, kind: &str, name: &str) -> Option<u32> {
        let o = self.kubectl(&["-n", ns, "get", kind, name, "-o", "jsonpath={.spec.replicas}"]);
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    }

    /// Wait until `spec.replicas` of a workload is `want`.
    pub async fn replicas_become(&self, ns: &str, kind: &str, name: &str, want: u32) {
        eventually(&format!("{kind}/{name} has {want} replicas"), || async {
            (self.replicas(ns, kind, name) == Some(want)).then_some(())
        })
        .await;
    }

    /// A Deployment's `wasmscaler.io/status` annotation as JSON (None until written).
    pub fn status(&self, ns: &str, name: &str) -> Option<serde_json::Value> {
        self.annotation(ns, "deployment", name, "wasmscaler.io/status")
            .and_then(|s| serde_json::from_str(&s).ok())
    }

    /// One annotation of a workload.
    pub fn annotation(&self, ns: &str, kind: &str, name: &str, key: &str) -> Option<String> {
        let path = format!(
            "jsonpath={{.metadata.annotations.{}}}",
            key.replace('.', "\\.").replace('/', "\\/")
        );
        let o = self.kubectl(&["-n", ns, "get", kind, name, "-o", &path]);
        let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
        (o.status.success() && !s.is_empty()).then_some(s)
    }

    /// Event notes (events.k8s.io/v1) about one object, oldest first.
    pub fn events(&self, ns: &str, name: &str) -> Vec<(String, String)> {
        let o = self.kubectl(&["-n", ns, "get", "events.events.k8s.io", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let mut out = Vec::new();
        for e in v["items"].as_array().cloned().unwrap_or_default() {
            if e["regarding"]["name"].as_str() == Some(name) {
                out.push((
                    e["reason"].as_str().unwrap_or_default().to_string(),
                    e["note"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        out
    }

    /// Start the controller in-process as the RBAC-restricted service account.
    pub async fn start_controller(&self, settings: wasmscaler::kube::Settings) -> wasmscaler::kube::Running {
        let client = self.controller_client().await;
        wasmscaler::kube::start(client, settings, |_| {
            Ok::<_, std::convert::Infallible>(Default::default())
        })
        .await
        .expect("controller starts")
    }
}

impl Drop for ControlPlane {
    /// A control plane owned by a test (not [`ControlPlane::shared`]) stops with it.
    fn drop(&mut self) {
        self.stop_apiserver();
        if let Some(mut c) = self.etcd.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Controller settings for a test: only `ns` is watched, a fast tick, the leader Lease
/// in the system namespace, no HTTP server unless asked.
pub fn settings(ns: &str) -> wasmscaler::kube::Settings {
    wasmscaler::kube::Settings {
        namespace: Some(ns.to_string()),
        lease_namespace: SYSTEM_NAMESPACE.to_string(),
        lease_name: format!("wasmscaler-{ns}"),
        identity: format!("test-{}", unique()),
        // Tests evaluate every second (or faster) to stay short.
        tenancy: wasmscaler::kube::tenancy::TenancyRules {
            min_interval: Duration::from_millis(100),
            ..Default::default()
        },
        ..wasmscaler::kube::Settings::default()
    }
}

fn unique() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    (std::process::id() % 10_000) * 1000 + n
}

/// Poll `f` until it yields `Some`, or panic after `limit` naming `what`.
pub async fn eventually_within<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `wasmscaler_errors_total{kind="..."}` in a /metrics text (0 when absent).
pub fn error_count(metrics: &str, kind: &str) -> u64 {
    let prefix = format!("wasmscaler_errors_total{{kind=\"{kind}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// [`eventually_within`] with a 30 s limit.
pub async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, Duration::from_secs(30), f).await
}
