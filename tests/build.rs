//! Builds the hostile test components to wasm32-wasip2 (nested cargo, own target dir) and
//! tells the tests where they are.

use std::path::PathBuf;

#[path = "../build-support/guests.rs"]
mod guests;

const FIXTURES: &[(&str, &str)] = &[("hostile", "hostile"), ("wrong-world", "wrong_world")];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf();
    println!("cargo:rerun-if-changed={}", manifest.join("components").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-changed={}", root.join("build-support").display());
    let packages: Vec<&str> = FIXTURES.iter().map(|(package, _)| *package).collect();
    let out = guests::build(&root, &packages);
    for (_, stem) in FIXTURES {
        let key = stem.to_uppercase();
        println!(
            "cargo:rustc-env=WASM_{key}={}",
            out.join(format!("{stem}.wasm")).display()
        );
    }
    println!("cargo:rustc-env=WASMSCALER_ROOT={}", root.display());
}
