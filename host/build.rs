//! Compiles the standard policies (and the hpa-target example, served as the `hpa`
//! built-in) to wasm32-wasip2 components and embeds them. A nested cargo build with its
//! own target directory (`target/guests`) so it never waits on the outer build's lock.
//! Set WASMSCALER_GUEST_DIR to a directory of prebuilt `<crate>.wasm` files to skip it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (built-in name, package, wasm file stem)
const GUESTS: &[(&str, &str, &str)] = &[
    ("hpa", "hpa-target", "hpa_target"),
    (
        "knative-concurrency",
        "policy-knative-concurrency",
        "policy_knative_concurrency",
    ),
    ("queue-job", "policy-queue-job", "policy_queue_job"),
    ("cron", "policy-cron", "policy_cron"),
    ("stateful", "policy-stateful", "policy_stateful"),
    ("spot-fallback", "policy-spot-fallback", "policy_spot_fallback"),
    ("ml-predictive", "policy-ml-predictive", "policy_ml_predictive"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("host/ lives in the workspace root")
        .to_path_buf();
    for dir in [
        "wit",
        "sdk/src",
        "sdk/Cargo.toml",
        "policies",
        "examples/hpa-target",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=WASMSCALER_GUEST_DIR");

    let wasm_dir = match std::env::var_os("WASMSCALER_GUEST_DIR") {
        Some(d) => PathBuf::from(d),
        None => build_guests(&root),
    };
    let mut out = String::from("/// (name, component bytes)\npub static BUILTINS: &[(&str, &[u8])] = &[\n");
    for (name, _, stem) in GUESTS {
        let path = wasm_dir.join(format!("{stem}.wasm"));
        assert!(
            path.exists(),
            "built-in policy {name}: {} is missing",
            path.display()
        );
        out.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("builtins.rs"), out).expect("write builtins.rs");
}

fn build_guests(root: &Path) -> PathBuf {
    let target_dir = root.join("target").join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "guest",
        ])
        .env("CARGO_TARGET_DIR", &target_dir);
    for (_, package, _) in GUESTS {
        cmd.args(["-p", package]);
    }
    // The outer build's flags and wrappers (clippy, coverage) are for the host, not guests.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo to build the guest policies");
    assert!(
        status.success(),
        "building the guest policies failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );
    target_dir.join("wasm32-wasip2").join("guest")
}
