//! A policy that sleeps for 10 s in `describe()`, which the host calls while loading it
//! (and the hot-reload thread calls on every new version). It must not hold the loader
//! for 10 s.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "policy", path: "../../../wit" });

struct Sleepy;

impl Guest for Sleepy {
    fn describe() -> PolicyInfo {
        std::thread::sleep(std::time::Duration::from_secs(10));
        PolicyInfo {
            name: "sleepy-describe".into(),
            version: "0.0.0".into(),
            summary: "sleeps in describe()".into(),
            signals: vec![],
        }
    }

    fn validate_config(_config: String) -> Result<(), PolicyError> {
        Ok(())
    }

    fn evaluate(ctx: Context) -> Result<Decision, PolicyError> {
        Ok(Decision {
            replicas: ctx.workload.replicas,
            jobs: None,
            placement: vec![],
            reason: "awake".into(),
            recheck_after_ms: None,
            state: None,
            metrics: vec![],
        })
    }
}

export!(Sleepy);
