//! Credentials of signal sources, from Secrets in the workload's own namespace.
//!
//! A signal names `{secret: NAME, key: KEY}` (`redis.passwordFrom`,
//! `prometheus.bearerTokenFrom`, `prometheus.basicAuth.passwordFrom`). Only Secrets that
//! carry the label [`CREDENTIALS_LABEL`]`: "true"` can be named: whoever can annotate a
//! Deployment cannot make the controller read (and send to a server of their choosing) a
//! Secret of their namespace that its owner did not mark for this use. The Secrets are
//! read from a watch cache of the labelled Secrets of that namespace (`signals/watch_cache.rs`:
//! started on the first reference, stopped when unused), never with a GET per
//! evaluation; a rotated value is used from the next evaluation on. RBAC: `list` and
//! `watch` on secrets.

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::watch_cache::{SharedCaches, strip_metadata};
use crate::core::adapter::{Credentials, SecretRef};

/// The label a Secret needs before a signal may name it.
pub const CREDENTIALS_LABEL: &str = "wasmscaler.io/credentials";

/// Labelled Secrets, per namespace, from shared watch caches.
pub struct SecretCache {
    caches: SharedCaches<Secret>,
}

fn api(client: kube::Client, namespace: Option<&str>) -> Api<Secret> {
    match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

fn strip(s: &mut Secret) {
    strip_metadata(&mut s.metadata);
    s.string_data = None;
}

impl SecretCache {
    pub fn new(client: kube::Client) -> Self {
        Self {
            caches: SharedCaches::new(
                client,
                "Secrets labelled wasmscaler.io/credentials=true",
                api,
                watcher::Config::default().labels(&format!("{CREDENTIALS_LABEL}=true")),
                strip,
            ),
        }
    }
}

/// `r.key` of `secret` (None: no such Secret in the cache), as an error message naming
/// the Secret and the key, never a value.
pub fn value_of(namespace: &str, r: &SecretRef, secret: Option<&Secret>) -> Result<String, String> {
    let name = format!("Secret {namespace}/{}", r.secret);
    let Some(secret) = secret else {
        return Err(format!(
            "{name} not found (it must exist in the workload's namespace and carry the label {CREDENTIALS_LABEL}: \"true\")"
        ));
    };
    let data = secret.data.as_ref();
    let Some(bytes) = data.and_then(|d| d.get(&r.key)) else {
        let mut keys: Vec<&str> = data.into_iter().flatten().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        return Err(format!(
            "{name} has no key '{}' (keys: {})",
            r.key,
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        ));
    };
    String::from_utf8(bytes.0.clone()).map_err(|_| format!("{name}: key '{}' is not UTF-8 text", r.key))
}

impl Credentials for SecretCache {
    fn resolve<'a>(
        &'a self,
        namespace: &'a str,
        secret: &'a SecretRef,
        wait: Duration,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let store = self
                .caches
                .store(Some(namespace), wait)
                .await
                .map_err(|e| format!("Secret {namespace}/{}: {e}", secret.secret))?;
            let found = store.get(&ObjectRef::new(&secret.secret).within(namespace));
            value_of(namespace, secret, found.as_deref())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_secret_and_key_never_a_value() {
        let r = SecretRef {
            secret: "redis-auth".into(),
            key: "password".into(),
        };
        let e = value_of("shop", &r, None).unwrap_err();
        assert!(
            e.starts_with("Secret shop/redis-auth not found") && e.contains(CREDENTIALS_LABEL),
            "{e}"
        );
        let s: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "redis-auth"},
            "data": {"pass": "czNjcmV0", "user": "dQ=="}
        }))
        .unwrap();
        let e = value_of("shop", &r, Some(&s)).unwrap_err();
        assert_eq!(
            e,
            "Secret shop/redis-auth has no key 'password' (keys: pass, user)"
        );
        assert!(!e.contains("s3cret"));
        let ok = SecretRef {
            secret: "redis-auth".into(),
            key: "pass".into(),
        };
        assert_eq!(value_of("shop", &ok, Some(&s)).unwrap(), "s3cret");
    }
}
