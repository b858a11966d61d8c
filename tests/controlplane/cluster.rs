//! A real cluster for end-to-end tests: the control plane of [`ControlPlane`] plus the real
//! kube-controller-manager (Deployments get ReplicaSets and Pods, Jobs get Pods and
//! complete, StatefulSets roll out in order, garbage collection, node lifecycle), the real
//! kube-scheduler (resources, nodeSelector, taints) and kwok, which plays the kubelet of
//! fake nodes: bound pods go through the stages of `kwok-stages.yaml` (Running, Ready after
//! the pod's `pod-ready.stage.kwok.x-k8s.io/delay`, a Job's pod Succeeded after
//! `pod-complete.stage.kwok.x-k8s.io/delay`, deleted pods finalized).
//!
//! Use it from a test file (next to `controlplane/mod.rs`, which it builds on):
//!
//! ```ignore
//! #[path = "controlplane/mod.rs"]
//! mod controlplane;
//! #[path = "controlplane/cluster.rs"]
//! mod cluster;
//!
//! let c = cluster::Cluster::shared();           // one per test binary
//! c.node_pool(&NodePool::new("spot-x", "spot", 2).cpu("2").tainted());
//! // pods of the pool: nodeSelector + toleration from NodePool::scheduling()
//! ```
//!
//! Nodes: the shared cluster starts with the pool [`GENERAL_POOL`] (3 on-demand nodes, 16
//! CPUs and 110 pods each, untainted) for workloads that do not care where they run. A test
//! that needs limited capacity makes its own *tainted* pool, so the pods of other tests
//! (which run in parallel threads) never land on it.
//!
//! Teardown: the processes are children of the test process and their pid files sit in
//! the control plane's directory, so the watchdog of [`ControlPlane::start`] kills them
//! when the test process ends, also after a panic; an owned [`Cluster`] kills them on drop.

#![allow(dead_code)]

use std::net::TcpListener;
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::controlplane::{ADMIN_TOKEN, ControlPlane, bin_dir};

/// The untainted on-demand pool every shared cluster starts with.
pub const GENERAL_POOL: &str = "general";
/// The label of every node naming its pool.
pub const POOL_LABEL: &str = "wasmscaler.test/pool";
/// Karpenter's capacity-type label, read by the spot-fallback signals.
pub const CAPACITY_LABEL: &str = "karpenter.sh/capacity-type";

const STAGES: &str = include_str!("kwok-stages.yaml");

pub struct Cluster {
    cp: ControlPlane,
    procs: Mutex<Vec<(String, Child)>>,
}

impl Deref for Cluster {
    type Target = ControlPlane;
    fn deref(&self) -> &ControlPlane {
        &self.cp
    }
}

/// A group of identical fake nodes `<name>-0..n`.
#[derive(Clone, Debug)]
pub struct NodePool {
    pub name: String,
    pub capacity_type: String,
    pub nodes: u32,
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    /// `wasmscaler.test/pool=<name>:NoSchedule`: only pods tolerating it land here.
    pub tainted: bool,
}

impl NodePool {
    pub fn new(name: &str, capacity_type: &str, nodes: u32) -> Self {
        NodePool {
            name: name.to_string(),
            capacity_type: capacity_type.to_string(),
            nodes,
            cpu: "16".into(),
            memory: "64Gi".into(),
            pods: 110,
            tainted: false,
        }
    }
    pub fn cpu(mut self, cpu: &str) -> Self {
        self.cpu = cpu.to_string();
        self
    }
    pub fn pods(mut self, pods: u32) -> Self {
        self.pods = pods;
        self
    }
    pub fn tainted(mut self) -> Self {
        self.tainted = true;
        self
    }
    pub fn node_names(&self) -> Vec<String> {
        (0..self.nodes).map(|i| format!("{}-{i}", self.name)).collect()
    }

    /// Pod-spec YAML lines (indented by `indent` spaces) that put a pod on this pool:
    /// a nodeSelector on the pool label and, for a tainted pool, the toleration.
    pub fn scheduling(&self, indent: usize) -> String {
        let p = " ".repeat(indent);
        let mut s = format!("{p}nodeSelector: {{{POOL_LABEL}: {}}}\n", self.name);
        if self.tainted {
            s.push_str(&format!(
                "{p}tolerations: [{{key: {POOL_LABEL}, operator: Equal, value: {}, effect: NoSchedule}}]\n",
                self.name
            ));
        }
        s
    }

    fn manifest(&self) -> String {
        let mut out = String::new();
        for name in self.node_names() {
            let taints = if self.tainted {
                format!(
                    "  taints: [{{key: {POOL_LABEL}, value: {}, effect: NoSchedule}}]\n",
                    self.name
                )
            } else {
                String::new()
            };
            out.push_str(&format!(
                "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  annotations: {{kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: \"0\"}}\n  labels:\n    kubernetes.io/hostname: {name}\n    kubernetes.io/os: linux\n    kubernetes.io/arch: amd64\n    type: kwok\n    {POOL_LABEL}: {pool}\n    {CAPACITY_LABEL}: {cap}\nspec:\n{taints}status:\n  allocatable: {{cpu: \"{cpu}\", memory: {mem}, pods: \"{pods}\"}}\n  capacity: {{cpu: \"{cpu}\", memory: {mem}, pods: \"{pods}\"}}\n",
                pool = self.name,
                cap = self.capacity_type,
                cpu = self.cpu,
                mem = self.memory,
                pods = self.pods,
            ));
        }
        out
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Cluster {
    /// One cluster per test binary, started on first use, with the [`GENERAL_POOL`].
    pub fn shared() -> &'static Cluster {
        static C: OnceLock<Cluster> = OnceLock::new();
        C.get_or_init(|| {
            let c = Cluster::start();
            c.node_pool(&NodePool::new(GENERAL_POOL, "on-demand", 3));
            c
        })
    }

    /// Start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, and
    /// wait until each is serving (blocking, ~10-20 s). No nodes yet.
    pub fn start() -> Cluster {
        let started = Instant::now();
        let bin = bin_dir();
        for b in ["kube-controller-manager", "kube-scheduler", "kwok"] {
            assert!(
                bin.join(b).is_file(),
                "{} missing: run scripts/build-control-plane.sh or set WASMSCALER_CP_BIN",
                bin.join(b).display()
            );
        }
        let cp = ControlPlane::start();
        let c = Cluster {
            cp,
            procs: Mutex::new(Vec::new()),
        };
        let d = c.dir().to_path_buf();
        let kubeconfig = c.admin_kubeconfig().display().to_string();
        let certs = d.join("certs");
        std::fs::write(d.join("kwok-stages.yaml"), STAGES).expect("write kwok stages");

        let kcm_port = free_port();
        c.spawn(
            "kube-controller-manager",
            Command::new(bin.join("kube-controller-manager"))
                .arg(format!("--kubeconfig={kubeconfig}"))
                .arg(format!("--authentication-kubeconfig={kubeconfig}"))
                .arg(format!("--authorization-kubeconfig={kubeconfig}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--secure-port={kcm_port}"))
                .arg(format!("--cert-dir={}", d.join("kcm-certs").display()))
                .arg(format!(
                    "--service-account-private-key-file={}",
                    certs.join("sa.key").display()
                ))
                .arg(format!(
                    "--root-ca-file={}",
                    certs.join("apiserver.crt").display()
                ))
                // The leader Lease kube-system/kube-controller-manager tells it is running.
                .arg("--leader-elect=true")
                // The tests' workloads are scaled by wasmscaler, never by an HPA object;
                // everything else runs as in any cluster (the CronJob controller too).
                .arg("--controllers=*,-horizontal-pod-autoscaler-controller")
                .arg("--concurrent-deployment-syncs=10")
                .arg("--concurrent-replicaset-syncs=10")
                .arg("--concurrent-job-syncs=10")
                .arg("-v=1"),
        );
        let sched_port = free_port();
        c.spawn(
            "kube-scheduler",
            Command::new(bin.join("kube-scheduler"))
                .arg(format!("--kubeconfig={kubeconfig}"))
                .arg(format!("--authentication-kubeconfig={kubeconfig}"))
                .arg(format!("--authorization-kubeconfig={kubeconfig}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--secure-port={sched_port}"))
                .arg(format!("--cert-dir={}", d.join("scheduler-certs").display()))
                .arg("--leader-elect=true")
                .arg("-v=1"),
        );
        c.spawn(
            "kwok",
            Command::new(bin.join("kwok"))
                .arg(format!("--kubeconfig={kubeconfig}"))
                .arg(format!("--config={}", d.join("kwok-stages.yaml").display()))
                .arg("--manage-all-nodes=false")
                .arg("--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake")
                .arg("--cidr=10.64.0.0/12")
                .arg("--node-ip=10.32.0.1")
                .arg("--node-lease-duration-seconds=40"),
        );
        c.wait_healthy("kube-controller-manager", kcm_port);
        c.wait_healthy("kube-scheduler", sched_port);
        c.wait_lease("kube-controller-manager");
        c.wait_lease("kube-scheduler");
        eprintln!(
            "cluster up in {:?} (dir {})",
            started.elapsed(),
            c.dir().display()
        );
        c
    }

    fn spawn(&self, name: &str, cmd: &mut Command) {
        let log = std::fs::File::create(self.dir().join(format!("{name}.log"))).expect("log file");
        let err = log.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        // The control plane's watchdog kills every <dir>/*.pid when the test process ends.
        let _ = std::fs::write(self.dir().join(format!("{name}.pid")), child.id().to_string());
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_string(), child));
    }

    /// The last lines of a component's log, for failure messages.
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir().join(format!("{name}.log"))).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn exited(&self, name: &str) -> Option<String> {
        let mut procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        let (_, child) = procs.iter_mut().find(|(n, _)| n == name)?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    fn wait_until(&self, what: &str, component: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ok() {
            if let Some(status) = self.exited(component) {
                panic!(
                    "{component} exited ({status}) before {what}; log tail:\n{}",
                    self.log_tail(component, 30)
                );
            }
            assert!(
                start.elapsed() < limit,
                "{what}: not after {limit:?}; {component} log tail:\n{}",
                self.log_tail(component, 30)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `/healthz` of a component's secure port (authenticated through the API server's
    /// TokenReview, always authorized).
    fn wait_healthy(&self, name: &str, port: u16) {
        self.wait_until(
            &format!("{name} /healthz ok"),
            name,
            Duration::from_secs(60),
            || {
                Command::new("kubectl")
                    .arg("--kubeconfig=/dev/null")
                    .arg(format!("--server=https://127.0.0.1:{port}"))
                    .arg("--insecure-skip-tls-verify=true")
                    .arg(format!("--token={ADMIN_TOKEN}"))
                    .args(["get", "--raw", "/healthz"])
                    .stdin(Stdio::null())
                    .output()
                    .map(|o| o.status.success() && o.stdout.starts_with(b"ok"))
                    .unwrap_or(false)
            },
        );
    }

    /// The component holds its leader Lease, i.e. its controllers are running.
    fn wait_lease(&self, name: &str) {
        self.wait_until(
            &format!("{name} leader Lease held"),
            name,
            Duration::from_secs(60),
            || {
                let o = self.kubectl(&[
                    "-n",
                    "kube-system",
                    "get",
                    "lease",
                    name,
                    "-o",
                    "jsonpath={.spec.holderIdentity}",
                ]);
                o.status.success() && !o.stdout.is_empty()
            },
        );
    }

    /// Create the nodes of `pool` and wait until kwok has made every one Ready.
    pub fn node_pool(&self, pool: &NodePool) {
        self.apply(&pool.manifest());
        let names = pool.node_names();
        self.wait_until(
            &format!("nodes of pool {} Ready", pool.name),
            "kwok",
            Duration::from_secs(30),
            || names.iter().all(|n| self.node_ready(n)),
        );
    }

    pub fn node_ready(&self, node: &str) -> bool {
        let o = self.kubectl(&[
            "get",
            "node",
            node,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        o.status.success() && o.stdout == b"True"
    }

    /// Pods matching `selector` in `ns`, as `kubectl get pods -o json` shows them.
    pub fn pods(&self, ns: &str, selector: &str) -> Vec<PodView> {
        let o = self.kubectl(&["-n", ns, "get", "pods", "-l", selector, "-o", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v["items"]
            .as_array()
            .map(|items| items.iter().map(PodView::from_json).collect())
            .unwrap_or_default()
    }

    /// A workload's `status` field as a number (`readyReplicas`, `replicas`, ...); absent = 0.
    pub fn status_count(&self, ns: &str, kind: &str, name: &str, field: &str) -> u32 {
        let o = self.kubectl(&[
            "-n",
            ns,
            "get",
            kind,
            name,
            "-o",
            &format!("jsonpath={{.status.{field}}}"),
        ]);
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0)
    }

    /// `kubectl get <kind> <name> -o json`.
    pub fn get_json(&self, ns: &str, kind: &str, name: &str) -> serde_json::Value {
        let o = self.kubectl(&["-n", ns, "get", kind, name, "-o", "json"]);
        serde_json::from_slice(&o.stdout).unwrap_or_default()
    }

    /// The controller's last decision (`wasmscaler.io/status`), parsed.
    pub fn decision(&self, ns: &str, kind: &str, name: &str) -> serde_json::Value {
        self.annotation(ns, kind, name, "wasmscaler.io/status")
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir().to_path_buf()
    }
}

impl Drop for Cluster {
    /// An owned cluster stops its components (the control plane stops itself after).
    fn drop(&mut self) {
        let mut procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((_, mut child)) = procs.pop() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What `kubectl get pod` shows about one pod.
#[derive(Clone, Debug, Default)]
pub struct PodView {
    pub name: String,
    pub phase: String,
    pub ready: bool,
    pub node: Option<String>,
    pub deleting: bool,
    /// The PodScheduled condition's reason when it is False (`Unschedulable`).
    pub unschedulable: bool,
}

impl PodView {
    fn from_json(p: &serde_json::Value) -> PodView {
        let cond = |t: &str| {
            p["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == t).cloned())
        };
        PodView {
            name: p["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            phase: p["status"]["phase"].as_str().unwrap_or_default().to_string(),
            ready: cond("Ready").is_some_and(|c| c["status"] == "True"),
            node: p["spec"]["nodeName"].as_str().map(str::to_string),
            deleting: !p["metadata"]["deletionTimestamp"].is_null(),
            unschedulable: cond("PodScheduled")
                .is_some_and(|c| c["status"] == "False" && c["reason"] == "Unschedulable"),
        }
    }

    /// Running and Ready, not being deleted: what `kubectl get pods` shows as 1/1 Running.
    pub fn serving(&self) -> bool {
        self.phase == "Running" && self.ready && !self.deleting
    }
}
