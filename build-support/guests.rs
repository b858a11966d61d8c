//! Shared by `host/build.rs` and `tests/build.rs`: build guest packages to
//! wasm32-wasip2 components with a nested cargo and its own target directory
//! (`target/guests`), so it never waits on the outer build's lock.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Build `packages` with the `guest` profile; returns the directory holding the `.wasm`s.
pub fn build(root: &Path, packages: &[&str]) -> PathBuf {
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
    for package in packages {
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
    let status = cmd.status().expect("run cargo to build the guest components");
    assert!(
        status.success(),
        "building the guest components failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );
    target_dir.join("wasm32-wasip2").join("guest")
}
