//! Every state a set of objects goes through, from a watch: polling with kubectl misses
//! states on a loaded machine (a sample that takes 4 s sees a 5 -> 1 "jump" that was four
//! steps), so assertions about the path a controller took read the API server's own
//! ordered event stream instead.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::Api;
use kube::Resource;
use kube::runtime::watcher::{self, Event};

/// The distinct projections of the watched objects (by name), oldest first, each with the
/// wall-clock time its event arrived.
pub struct Recorder<T> {
    states: Arc<Mutex<Vec<(SystemTime, T)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl<T: Clone + PartialEq + Debug + Send + 'static> Recorder<T> {
    /// Watch `api` (narrowed by `cfg`) and record `project(objects by name)` after the
    /// initial list and after every change that alters it. Returns once the initial list
    /// is in, so nothing written after this call is missed.
    pub async fn start<K>(
        api: Api<K>,
        cfg: watcher::Config,
        project: impl Fn(&BTreeMap<String, K>) -> T + Send + 'static,
    ) -> Self
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        let states = Arc::new(Mutex::new(Vec::new()));
        let (listed_tx, listed_rx) = tokio::sync::oneshot::channel();
        let task = {
            let states = states.clone();
            tokio::spawn(async move {
                let mut listed_tx = Some(listed_tx);
                let mut objects: BTreeMap<String, K> = BTreeMap::new();
                let mut stream = watcher::watcher(api, cfg).boxed();
                while let Some(ev) = stream.next().await {
                    let changed = match ev {
                        Ok(Event::Init) => {
                            objects.clear();
                            false
                        }
                        Ok(Event::InitApply(o)) => {
                            objects.insert(o.meta().name.clone().unwrap_or_default(), o);
                            false
                        }
                        Ok(Event::InitDone) => true,
                        Ok(Event::Apply(o)) => {
                            objects.insert(o.meta().name.clone().unwrap_or_default(), o);
                            true
                        }
                        Ok(Event::Delete(o)) => {
                            objects.remove(&o.meta().name.clone().unwrap_or_default());
                            true
                        }
                        Err(_) => false, // the watcher re-lists by itself
                    };
                    if changed {
                        let s = project(&objects);
                        let mut v = states.lock().unwrap_or_else(|p| p.into_inner());
                        if v.last().map(|(_, last)| last) != Some(&s) {
                            v.push((SystemTime::now(), s));
                        }
                        if let Some(tx) = listed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                }
            })
        };
        let _ = tokio::time::timeout(Duration::from_secs(30), listed_rx).await;
        Recorder { states, task }
    }

    /// Every state recorded so far.
    pub fn states(&self) -> Vec<T> {
        self.timed_states().into_iter().map(|(_, s)| s).collect()
    }

    /// Every state recorded so far, with when it was seen.
    pub fn timed_states(&self) -> Vec<(SystemTime, T)> {
        self.states.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// When the latest state began, once it satisfies `until` (panics after `limit`).
    pub async fn reached(&self, limit: Duration, until: impl Fn(&T) -> bool) -> SystemTime {
        let start = Instant::now();
        loop {
            if let Some((at, s)) = self.timed_states().pop()
                && until(&s)
            {
                return at;
            }
            assert!(
                start.elapsed() < limit,
                "not reached after {limit:?}: {:?}",
                self.states()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The states recorded until the latest one satisfies `until` (panics after `limit`).
    pub async fn until(&self, limit: Duration, until: impl Fn(&T) -> bool) -> Vec<T> {
        let start = Instant::now();
        loop {
            let seen = self.states();
            if seen.last().is_some_and(&until) {
                return seen;
            }
            assert!(start.elapsed() < limit, "not reached after {limit:?}: {seen:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Forget what was recorded, keeping the current state as the first one.
    pub fn restart_from_now(&self) {
        let mut v = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = v.pop() {
            v.clear();
            v.push(last);
        }
    }
}

impl<T> Drop for Recorder<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
