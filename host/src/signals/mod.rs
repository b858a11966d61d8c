//! Signal sources: where the numbers the policies read come from.
//!
//! - [`source`]: the `signals:` mapping syntax (signal name -> source spec).
//! - [`prometheus`]: Prometheus HTTP API (instant and range queries).
//! - [`redis_queue`]: Redis list length as a queue.
//! - [`kube_objects`]: Kubernetes objects (pending pods, capacity types, interruptions).
//! - [`wiring`]: the actuator (queue-job Jobs, spot pools) and [`wiring::extensions`].
//! - [`gather`]: the gatherers the controller registers per source kind
//!   (see [`crate::kube::signals_api`]), and the typed per-signal error.

pub mod gather;
pub mod kube_objects;
pub mod prometheus;
pub mod redis_queue;
pub mod source;
pub mod wiring;

pub use gather::{PrometheusGatherer, RedisGatherer, SignalError, SourceError};
pub use prometheus::{PromError, Prometheus};
pub use redis_queue::{RedisQueueError, RedisQueues};
pub use source::{KubeCount, KubeSource, PromSource, RedisSource, SourceSpec, range_step_ms};
pub use wiring::{SignalsActuator, extensions};
