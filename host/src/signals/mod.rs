//! Signal sources: where the numbers the policies read come from.
//!
//! - [`source`]: the `signals:` mapping syntax (signal name -> source spec).
//! - [`prometheus`]: Prometheus HTTP API (instant and range queries).
//! - [`redis_queue`]: Redis list length as a queue.
//! - [`kube_objects`]: Kubernetes objects (pending pods, capacity types, interruptions).
//! - [`job_counts`]: running/pending Jobs of a queue-job CronJob.
//! - [`watch_cache`]: shared, lazily started watch caches of Pods, Nodes, Deployments,
//!   StatefulSets and Secrets; [`secrets`]: the Secret references of signal credentials;
//!   [`label_selector`]: selector strings matched against cached objects.
//! - [`gather`]: the gatherers an adapter registers per source kind
//!   (see [`crate::core::adapter`]), and the typed per-signal error.
//!
//! The controller plugs these in (`crate::kube::extensions`); nothing here depends on
//! the controller.

pub mod gather;
pub mod job_counts;
pub mod kube_objects;
pub mod label_selector;
pub mod prometheus;
pub mod redis_queue;
pub mod secrets;
pub mod source;
pub mod watch_cache;

pub use gather::{PrometheusGatherer, RedisGatherer, SignalError, SourceError};
pub use prometheus::{PromError, Prometheus};
pub use redis_queue::{RedisQueueError, RedisQueues};
pub use source::{KubeCount, KubeSource, PromSource, RedisSource, SourceSpec, range_step_ms};
