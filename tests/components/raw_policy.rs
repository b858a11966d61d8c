//! Policy components that no Rust guest can be: a hand-written core module (wasm-encoder)
//! wrapped into a component of the project's `policy` world (wit-component), optionally
//! with a second core module that defines a linear memory of its own, or a start function
//! that faults. Rust gives a guest exactly one memory and no start function; the sandbox
//! must still hold components that have more. (The engine allows one memory per core
//! module and four per component, so a second memory means a second core module.)
//!
//! The core module answers `describe()` and `validate-config` from static data and traps
//! in `evaluate` (nothing here needs it). Built by `tests/build.rs` (a build dependency, so
//! wit-component's features never reach the host's dependencies).

use wasm_encoder::{
    CodeSection, Component, ConstExpr, DataSection, ExportKind, ExportSection, Function, FunctionSection,
    GlobalSection, GlobalType, InstanceSection, MemArg, MemorySection, MemoryType, Module, ModuleArg,
    ModuleSection, StartSection, TypeSection, ValType,
};

/// What the component is made of.
#[derive(Debug, Clone)]
pub struct RawPolicy {
    /// Initial size of the policy module's memory (the one the canonical ABI uses), in
    /// 64 KiB pages; it holds the static answers, so at least one.
    pub memory_pages: u64,
    /// A second core module, instantiated with the component, that defines a memory of
    /// this many pages and does nothing else.
    pub second_memory_pages: Option<u64>,
    /// Give the policy module a start function that loads from outside its memory: the
    /// guest faults while being instantiated, before any export is called.
    pub fault_in_start: bool,
}

/// `describe()`'s name for these components.
pub const RAW_POLICY_NAME: &str = "raw-policy";

const NAME_AT: u32 = 16;
const VERSION: &str = "0.0.0";
const VERSION_AT: u32 = 32;
const SUMMARY: &str = "hand-written core module";
const SUMMARY_AT: u32 = 48;
/// Where `describe()`'s `policy-info` record lives (3 strings + an empty list).
const DESCRIBE_AT: u32 = 128;
/// Where `validate-config`'s `result` lives (discriminant 0: ok).
const VALIDATE_AT: u32 = 192;
/// The bump allocator behind `cabi_realloc` starts here.
const HEAP_AT: i32 = 1024;

impl RawPolicy {
    /// The component's bytes.
    pub fn build(&self, wit_dir: &std::path::Path) -> Vec<u8> {
        let mut core = self.core_module();
        let mut resolve = wit_parser::Resolve::default();
        let (package, _) = resolve.push_dir(wit_dir).expect("the project's WIT parses");
        let world = resolve
            .select_world(&[package], Some("policy"))
            .expect("the WIT has a `policy` world");
        wit_component::embed_component_metadata(
            &mut core,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
            false,
        )
        .expect("embed the world");
        let mut component = wit_component::ComponentEncoder::default()
            .validate(true)
            .module(&core)
            .expect("the core module fits the world")
            .encode()
            .expect("encode the component");
        if let Some(pages) = self.second_memory_pages {
            append_memory_module(&mut component, pages);
        }
        wasmparser::Validator::new()
            .validate_all(&component)
            .expect("the component validates");
        component
    }

    fn core_module(&self) -> Vec<u8> {
        assert!(self.memory_pages >= 1, "the memory holds the static answers");
        let mut types = TypeSection::new();
        types.ty().function([], [ValType::I32]); // 0: describe
        types.ty().function([ValType::I32, ValType::I32], [ValType::I32]); // 1: validate-config
        types.ty().function([ValType::I32], [ValType::I32]); // 2: evaluate (context by pointer)
        types.ty().function(
            [ValType::I32, ValType::I32, ValType::I32, ValType::I32],
            [ValType::I32],
        ); // 3: cabi_realloc
        types.ty().function([], []); // 4: start

        let mut functions = FunctionSection::new();
        for ty in [0, 1, 2, 3, 4] {
            functions.function(ty);
        }

        let mut memories = MemorySection::new();
        memories.memory(memory_of(self.memory_pages));

        let mut globals = GlobalSection::new();
        globals.global(
            GlobalType {
                val_type: ValType::I32,
                mutable: true,
                shared: false,
            },
            &ConstExpr::i32_const(HEAP_AT),
        );

        let mut exports = ExportSection::new();
        exports.export("describe", ExportKind::Func, 0);
        exports.export("validate-config", ExportKind::Func, 1);
        exports.export("evaluate", ExportKind::Func, 2);
        exports.export("cabi_realloc", ExportKind::Func, 3);
        exports.export("memory", ExportKind::Memory, 0);

        let mut code = CodeSection::new();
        code.function(&returns(DESCRIBE_AT));
        code.function(&returns(VALIDATE_AT));
        let mut evaluate = Function::new([]);
        evaluate.instructions().unreachable().end();
        code.function(&evaluate);
        code.function(&bump_allocator());
        let mut start = Function::new([]);
        start
            .instructions()
            .i32_const(-4)
            .i32_load(MemArg {
                offset: 0,
                align: 2,
                memory_index: 0,
            })
            .drop()
            .end();
        code.function(&start);

        let mut data = DataSection::new();
        for (at, text) in [
            (NAME_AT, RAW_POLICY_NAME),
            (VERSION_AT, VERSION),
            (SUMMARY_AT, SUMMARY),
        ] {
            data.active(0, &ConstExpr::i32_const(at as i32), text.bytes());
        }
        let info: Vec<u8> = [
            NAME_AT,
            RAW_POLICY_NAME.len() as u32,
            VERSION_AT,
            VERSION.len() as u32,
            SUMMARY_AT,
            SUMMARY.len() as u32,
            0,
            0,
        ]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
        data.active(0, &ConstExpr::i32_const(DESCRIBE_AT as i32), info);
        data.active(0, &ConstExpr::i32_const(VALIDATE_AT as i32), [0u8; 16]);

        let mut module = Module::new();
        module.section(&types);
        module.section(&functions);
        module.section(&memories);
        module.section(&globals);
        module.section(&exports);
        if self.fault_in_start {
            module.section(&StartSection { function_index: 4 });
        }
        module.section(&code);
        module.section(&data);
        module.finish()
    }
}

fn memory_of(pages: u64) -> MemoryType {
    MemoryType {
        minimum: pages,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    }
}

/// Append to `component` a core module that defines a memory of `pages` and an instance
/// of it. Sections may follow the ones wit-component wrote: nothing refers to the new
/// ones, and the instance is created when the component is instantiated.
fn append_memory_module(component: &mut Vec<u8>, pages: u64) {
    let mut modules_before = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload.expect("wit-component wrote a valid component") {
            wasmparser::Payload::ModuleSection { .. } => modules_before += 1,
            wasmparser::Payload::ComponentSection { .. } => {
                panic!("nested components are not expected from wit-component here")
            }
            _ => {}
        }
    }
    let mut memories = MemorySection::new();
    memories.memory(memory_of(pages));
    let mut module = Module::new();
    module.section(&memories);
    let mut instances = InstanceSection::new();
    instances.instantiate(modules_before, Vec::<(&str, ModuleArg)>::new());
    let mut extra = Component::new();
    extra.section(&ModuleSection(&module));
    extra.section(&instances);
    // Drop the new component's 8-byte preamble (magic + version): only its sections are
    // appended.
    component.extend_from_slice(&extra.finish()[8..]);
}

/// A function that returns the constant `at` (a pointer to its static answer).
fn returns(at: u32) -> Function {
    let mut f = Function::new([]);
    f.instructions().i32_const(at as i32).end();
    f
}

/// `cabi_realloc(old, old_size, align, size)`: bump allocation in the first memory, never
/// freed (a component lives for one call).
fn bump_allocator() -> Function {
    let mut f = Function::new([(1, ValType::I32)]);
    f.instructions()
        // ptr = (heap + align - 1) & -align
        .global_get(0)
        .local_get(2)
        .i32_add()
        .i32_const(1)
        .i32_sub()
        .i32_const(0)
        .local_get(2)
        .i32_sub()
        .i32_and()
        .local_tee(4)
        // heap = ptr + size
        .local_get(3)
        .i32_add()
        .global_set(0)
        .local_get(4)
        .end();
    f
}
