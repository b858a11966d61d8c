//! A deliberately hostile policy, written against the raw bindings (no SDK guard rails).
//! `config` is the name of the misbehaviour (or `{"mode": NAME}`): ok, loop, alloc, panic, stack (shadow stack
//! in linear memory), deep (the wasm call stack), entropy (clock + random), huge,
//! nan-metric, bad-placement, huge-state, log-spam, slow (busy for ~30 ms, then ok),
//! stderr-flood (1 MiB to stderr, then ok), sleep (`thread::sleep` for 10 s, then ok),
//! sleep-until (sleeps 10 ms at a time until the monotonic clock says 10 s have passed),
//! history (asks the host for a signal's history, then ok).
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "policy", path: "../../../wit" });

use wasmscaler::policy::host;
use wasmscaler::policy::types::{LogLevel, Metric, PoolReplicas};

struct Hostile;

fn ok(ctx: &Context, reason: &str) -> Decision {
    Decision {
        replicas: ctx.workload.replicas,
        jobs: None,
        placement: vec![],
        reason: reason.into(),
        recheck_after_ms: None,
        state: None,
        metrics: vec![],
    }
}

#[inline(never)]
fn recurse(depth: u64, buf: &mut [u8; 1024]) -> u64 {
    buf[(depth % 1024) as usize] = depth as u8;
    let mut next = [0u8; 1024];
    next[0] = buf[0];
    recurse(depth + 1, std::hint::black_box(&mut next)) + u64::from(buf[1])
}

#[inline(never)]
fn deep(n: u64) -> u64 {
    // Small frames, nothing in linear memory: exhausts the wasm call stack itself.
    if std::hint::black_box(n) == u64::MAX {
        0
    } else {
        deep(n + 1).wrapping_add(1)
    }
}

/// The string value of a top-level `"mode"` key in a flat JSON object (no JSON parser in
/// this raw component).
fn mode_key(config: &str) -> Option<&str> {
    let rest = &config[config.find("\"mode\"")? + 6..];
    let rest = rest
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    rest.split('"').next()
}

impl Guest for Hostile {
    fn describe() -> PolicyInfo {
        PolicyInfo {
            name: "hostile".into(),
            version: "0.0.0".into(),
            summary: "misbehaves on demand".into(),
            signals: vec![],
        }
    }

    fn validate_config(_config: String) -> Result<(), PolicyError> {
        Ok(())
    }

    fn evaluate(ctx: Context) -> Result<Decision, PolicyError> {
        // A JSON object (any ordinary policy config) behaves like "ok", so the same
        // context works for this component and a well-behaved one in reload tests;
        // `{"mode": "slow"}` names a misbehaviour where a config must be a mapping (a
        // simulator scenario).
        let mode = if ctx.config.trim_start().starts_with('{') {
            mode_key(&ctx.config).unwrap_or("ok").to_string()
        } else {
            ctx.config.trim().trim_matches('"').to_string()
        };
        match mode.as_str() {
            "ok" => Ok(ok(&ctx, "ok")),
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc" => {
                let v = vec![1u8; 1 << 30];
                Ok(ok(&ctx, &format!("allocated {}", std::hint::black_box(v).len())))
            }
            "panic" => panic!("hostile policy panics on purpose"),
            "stack" => {
                let mut b = [0u8; 1024];
                let n = recurse(0, &mut b);
                Ok(ok(&ctx, &format!("{n}")))
            }
            "deep" => Ok(ok(&ctx, &format!("{}", deep(0)))),
            "entropy" => {
                // What a guest sees of the wall clock and of WASI randomness (std seeds
                // HashMap keys from it): the host must make both reproducible.
                use std::hash::BuildHasher;
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                let hash = std::collections::hash_map::RandomState::new().hash_one(42u64);
                Ok(ok(&ctx, &format!("{ms} {hash}")))
            }
            "huge" => {
                // What `f64::INFINITY as u32` gives: u32::MAX.
                let wanted = std::hint::black_box(f64::INFINITY);
                let mut d = ok(&ctx, "infinite load");
                d.replicas = wanted as u32;
                Ok(d)
            }
            "nan-metric" => {
                let mut d = ok(&ctx, "nan");
                d.metrics.push(Metric {
                    name: "cost".into(),
                    value: std::hint::black_box(f64::NAN),
                });
                Ok(d)
            }
            "bad-placement" => {
                let mut d = ok(&ctx, "placement does not add up");
                d.placement.push(PoolReplicas {
                    pool: "spot".into(),
                    replicas: d.replicas + 5,
                });
                Ok(d)
            }
            "huge-state" => {
                let mut d = ok(&ctx, "state too big");
                d.state = Some(vec![7u8; 100 << 10]);
                Ok(d)
            }
            "log-spam" => {
                for i in 0..10_000 {
                    host::log(LogLevel::Info, &format!("line {i}"));
                }
                Ok(ok(&ctx, "logged"))
            }
            "slow" => {
                let mut x: u64 = 0;
                for i in 0..std::hint::black_box(60_000_000u64) {
                    x = std::hint::black_box(x ^ i);
                }
                Ok(ok(&ctx, &format!("slow {}", x & 1)))
            }
            "stderr-flood" => {
                let line = "x".repeat(1023);
                for _ in 0..1024 {
                    eprintln!("{line}");
                }
                Ok(ok(&ctx, "printed"))
            }
            "history" => {
                // The host answers; what the answer holds does not matter here.
                let n = host::history("load", 60_000, 1_000).map(|v| v.len()).unwrap_or(0);
                Ok(ok(&ctx, &format!("history {n}")))
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(10));
                Ok(ok(&ctx, "slept"))
            }
            "sleep-until" => {
                let start = std::time::Instant::now();
                let mut naps = 0u32;
                while start.elapsed() < std::time::Duration::from_secs(10) {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    naps += 1;
                }
                Ok(ok(&ctx, &format!("slept {naps} times")))
            }
            other => Err(PolicyError::InvalidConfig(format!("unknown mode '{other}'"))),
        }
    }
}

export!(Hostile);
