//! A component of a future contract version: imports `wasmscaler:policy/host@0.2.0` and
//! exports a different `evaluate`. The host must refuse it by name.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "policy", path: "wit" });

struct Wrong;

impl Guest for Wrong {
    fn evaluate(config: String) -> u32 {
        wasmscaler::policy::host::log(&config);
        1
    }
}

export!(Wrong);
