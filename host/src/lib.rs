//! wasmscaler: Kubernetes autoscaling where the scaling logic is a sandboxed WebAssembly
//! component.
//!
//! Layers, inner to outer (an inner layer never reaches outward):
//! - [`runtime`]: wasmtime engine, sandbox, registry, hot reload. No kube, no simulator.
//! - [`core`]: the evaluation path shared by every adapter: build contexts, call the
//!   policies, compose their answers, apply the host's guardrails.
//! - adapters: `cli` (policy authors), `sim` (simulator), `kube` (the controller).

pub mod cli;
pub mod core;
pub mod kube;
pub mod runtime;
pub mod signals;
pub mod sim;
