//! Builds the hostile test components to wasm32-wasip2 (nested cargo, own target dir) and
//! tells the tests where they are.

use std::path::PathBuf;

#[path = "../build-support/guests.rs"]
mod guests;
#[path = "components/raw_policy.rs"]
mod raw_policy;

const FIXTURES: &[(&str, &str)] = &[
    ("hostile", "hostile"),
    ("wrong-world", "wrong_world"),
    ("sleepy-describe", "sleepy_describe"),
];

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
    build_raw_policies(&root);
    println!("cargo:rustc-env=WASMSCALER_ROOT={}", root.display());
}

/// 640 pages = 40 MiB: under the default 64 MiB memory cap alone, over it twice.
const FORTY_MIB_IN_PAGES: u64 = 640;

fn build_raw_policies(root: &std::path::Path) {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let raw = [
        (
            "RAW_TWO_MEMORIES",
            FORTY_MIB_IN_PAGES,
            Some(FORTY_MIB_IN_PAGES),
            false,
        ),
        ("RAW_ONE_MEMORY", FORTY_MIB_IN_PAGES, None, false),
        ("RAW_FAULTS_IN_START", 1, None, true),
    ];
    for (key, memory_pages, second_memory_pages, fault_in_start) in raw {
        let wasm = raw_policy::RawPolicy {
            memory_pages,
            second_memory_pages,
            fault_in_start,
        }
        .build(&root.join("wit"));
        let path = out.join(format!("{}.wasm", key.to_lowercase()));
        std::fs::write(&path, wasm).expect("write a raw policy component");
        println!("cargo:rustc-env=WASM_{key}={}", path.display());
    }
}
