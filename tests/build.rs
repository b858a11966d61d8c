//! Builds the hostile test components to wasm32-wasip2 (nested cargo, own target dir) and
//! tells the tests where they are.

use std::path::PathBuf;
use std::process::Command;

const FIXTURES: &[(&str, &str)] = &[("hostile", "hostile"), ("wrong-world", "wrong_world")];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf();
    println!("cargo:rerun-if-changed={}", manifest.join("components").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    let target_dir = root.join("target").join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "guest",
        ])
        .env("CARGO_TARGET_DIR", &target_dir);
    for (package, _) in FIXTURES {
        cmd.args(["-p", package]);
    }
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo to build the test components");
    assert!(
        status.success(),
        "building the test components failed (`rustup target add wasm32-wasip2`?)"
    );
    let out = target_dir.join("wasm32-wasip2").join("guest");
    for (_, stem) in FIXTURES {
        let key = stem.to_uppercase();
        println!(
            "cargo:rustc-env=WASM_{key}={}",
            out.join(format!("{stem}.wasm")).display()
        );
    }
    println!("cargo:rustc-env=WASMSCALER_ROOT={}", root.display());
}
