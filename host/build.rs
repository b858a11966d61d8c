//! Compiles the standard policies (and the hpa-target example, served as the `hpa`
//! built-in) to wasm32-wasip2 components and embeds them (`build-support/guests.rs`: a
//! nested cargo build with its own target directory, `target/guests`).
//! Set WASMSCALER_GUEST_DIR to a directory of prebuilt `<crate>.wasm` files to skip it.

use std::path::{Path, PathBuf};

#[path = "../build-support/guests.rs"]
mod guests;

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
        "build-support",
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
    let packages: Vec<&str> = GUESTS.iter().map(|(_, package, _)| *package).collect();
    guests::build(root, &packages)
}
