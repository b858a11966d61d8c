//! The controller end to end with a real Prometheus: a Deployment whose `load` comes from
//! a PromQL query is scaled by the `hpa` policy on a real kube-apiserver.

#[path = "controlplane/mod.rs"]
mod controlplane;
#[path = "servers/mod.rs"]
mod servers;

use controlplane::{ControlPlane, eventually, settings};
use servers::{Exporter, PrometheusServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_is_scaled_from_a_promql_signal() {
    let exporter = Exporter::start();
    exporter.set("shop_requests_per_second{pod=\"a\"}", 300.0);
    exporter.set("shop_requests_per_second{pod=\"b\"}", 200.0);
    let prom = PrometheusServer::start(&[exporter.addr]);
    prom.wait_for("sum(shop_requests_per_second)", 500.0);

    let cp = ControlPlane::shared();
    let ns = cp.namespace("prom").await;
    cp.apply(&format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: {ns}
  annotations:
    wasmscaler.io/policy: hpa
    wasmscaler.io/interval: 1s
    wasmscaler.io/max-replicas: "10"
    wasmscaler.io/config: |
      targets: [{{signal: load, averageValue: 100}}]
      signals:
        load: {{prometheus: 'sum(shop_requests_per_second)'}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: shop}}}}
  template:
    metadata: {{labels: {{app: shop}}}}
    spec:
      containers: [{{name: shop, image: registry.invalid/shop:1}}]
"#
    ));
    // The Prometheus URL is the controller's default (--prometheus-url).
    let client = cp.controller_client().await;
    let url = Some(prom.url.clone());
    let ctl = wasmscaler::kube::start(client, settings(&ns), |c| {
        wasmscaler::kube::extensions::extensions(c, url)
    })
    .await
    .expect("controller starts");

    eventually("shop scaled to 5 for 500 rps", || async {
        (cp.replicas(&ns, "deployment", "shop") == Some(5)).then_some(())
    })
    .await;
    exporter.set("shop_requests_per_second{pod=\"b\"}", 500.0);
    eventually("shop scaled to 8 for 800 rps", || async {
        (cp.replicas(&ns, "deployment", "shop") == Some(8)).then_some(())
    })
    .await;
    ctl.shutdown().await;
}
