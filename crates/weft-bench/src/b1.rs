//! B1 (weft's per-task cycle vs the bare wasmtime pooled loop) and B9 (compile vs cache hit).

use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use weft_runtime::{Allocator, ComponentCache, Runtime, RuntimeConfig, TaskRequest};

use crate::{Figure, Inputs, median_us};

mod task {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "task",
        exports: { default: async },
        with: { "weft:plugin/secrets.secret": super::NoSecret },
    });
}

/// The bare loop grants no secrets; the type only fills the resource slot.
pub struct NoSecret;

// The bare loop's host functions do nothing: they exist so the same component links.
impl task::weft::plugin::log::Host for Bare {
    fn write(&mut self, _level: task::weft::plugin::log::Level, _message: String) {}
}

impl task::weft::plugin::checkpoint::Host for Bare {
    fn get(&mut self, _key: String) -> Option<Vec<u8>> {
        None
    }

    fn put(&mut self, _key: String, _value: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}

impl task::weft::plugin::secrets::Host for Bare {
    fn get(
        &mut self,
        _name: String,
    ) -> Result<wasmtime::component::Resource<NoSecret>, task::weft::plugin::secrets::SecretError>
    {
        Err(task::weft::plugin::secrets::SecretError::NotGranted)
    }
}

impl task::weft::plugin::secrets::HostSecret for Bare {
    fn name(&mut self, _secret: wasmtime::component::Resource<NoSecret>) -> String {
        String::new()
    }

    fn reveal(&mut self, _secret: wasmtime::component::Resource<NoSecret>) -> String {
        String::new()
    }

    fn drop(&mut self, _secret: wasmtime::component::Resource<NoSecret>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl task::weft::plugin::types::Host for Bare {}

struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

const CYCLES: usize = 3000;
const WARMUP: usize = 200;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The bare loop: a pooled engine, a linker with WASI only, instantiate, call `run` (unless
/// `call` is false: instantiation alone), drop.
async fn bare_loop(wasm: &[u8], call: bool) -> Result<Vec<Duration>, String> {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(100)
        .total_core_instances(800)
        .total_memories(200)
        .total_tables(800)
        .total_stacks(100)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_memory_size(1 << 30);
    let mut config = Config::new();
    config.wasm_component_model(true).allocation_strategy(pool);
    let engine = Engine::new(&config).map_err(err)?;
    let component = Component::new(&engine, wasm).map_err(err)?;
    let mut linker: Linker<Bare> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(err)?;
    task::Task::add_to_linker::<Bare, wasmtime::component::HasSelf<Bare>>(&mut linker, |state| {
        state
    })
    .map_err(err)?;
    let pre = task::TaskPre::new(linker.instantiate_pre(&component).map_err(err)?).map_err(err)?;
    let ctx = task::weft::plugin::types::TaskContext {
        run_name: "bench".into(),
        run_uid: "bench".into(),
        pipeline_name: "bench".into(),
        task_name: "noop".into(),
        retry_count: 0,
        retries: 0,
        params: Vec::new(),
        workspaces: Vec::new(),
    };
    let mut samples = Vec::with_capacity(CYCLES);
    for i in 0..CYCLES + WARMUP {
        let started = Instant::now();
        let mut store = Store::new(
            &engine,
            Bare {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        let instance = pre.instantiate_async(&mut store).await.map_err(err)?;
        if call {
            instance
                .weft_plugin_task_plugin()
                .call_run(&mut store, &ctx)
                .await
                .map_err(err)?;
        }
        drop(store);
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
    }
    Ok(samples)
}

/// weft's cycle: the same component through `Plugin::run` (limits, grants, fresh store).
async fn weft_loop(wasm: &[u8]) -> Result<Vec<Duration>, String> {
    let runtime = Runtime::new(RuntimeConfig::default()).map_err(err)?;
    if !matches!(runtime.allocator(), Allocator::Pooling { .. }) {
        return Err("the pool could not be reserved on this machine".into());
    }
    let plugin = runtime.load_bytes("exit", wasm).map_err(err)?;
    let mut samples = Vec::with_capacity(CYCLES);
    for i in 0..CYCLES + WARMUP {
        let started = Instant::now();
        let report = plugin.run(TaskRequest::new("noop")).await;
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
        if report.ending != weft_core::contract::TaskEnding::Success {
            return Err(format!(
                "the no-op task did not succeed: {:?}",
                report.ending
            ));
        }
    }
    Ok(samples)
}

/// B1.
pub async fn run(inputs: &Inputs) -> Result<Vec<Figure>, String> {
    let wasm = std::fs::read(inputs.plugins.join("exit.wasm")).map_err(err)?;
    // The floor: the smallest task component (no_std, no WASI; `plugins/noop`).
    let minimal = std::fs::read(inputs.plugins.join("noop.wasm")).map_err(err)?;
    // Interleave to share the machine's state fairly between the loops.
    let mut bare = bare_loop(&wasm, true).await?;
    let mut floor = bare_loop(&minimal, true).await?;
    let mut weft = weft_loop(&wasm).await?;
    let mut instantiate = bare_loop(&wasm, false).await?;
    let mut floor_instantiate = bare_loop(&minimal, false).await?;
    let mut bare2 = bare_loop(&wasm, true).await?;
    let mut floor2 = bare_loop(&minimal, true).await?;
    bare.append(&mut bare2);
    floor.append(&mut floor2);
    let bare_us = median_us(&mut bare);
    let floor_us = median_us(&mut floor);
    let instantiate_us = median_us(&mut instantiate);
    let floor_instantiate_us = median_us(&mut floor_instantiate);
    let weft_us = median_us(&mut weft);
    let ratio = weft_us / bare_us;
    let over_floor = bare_us / floor_us;
    Ok(vec![
        Figure {
            id: "B1",
            what: "bare pooled cycle of a minimal component (no_std `noop`, no WASI), p50".into(),
            value: floor_us,
            unit: "µs",
            ratio: None,
            ratio_of: String::new(),
            target: "baseline".into(),
            met: true,
        },
        Figure {
            id: "B1",
            what: "bare pooled instantiation alone: exit (no call)".into(),
            value: instantiate_us,
            unit: "µs",
            ratio: Some(instantiate_us / floor_instantiate_us),
            ratio_of: format!("exit / noop ({floor_instantiate_us:.1} µs)"),
            target: "measured".into(),
            met: true,
        },
        Figure {
            id: "B1",
            what: "bare pooled cycle of exit against the minimal component's".into(),
            value: bare_us,
            unit: "µs",
            ratio: Some(over_floor),
            ratio_of: "exit / noop".into(),
            target: "<= 3x minimal".into(),
            met: over_floor <= 3.0,
        },
        Figure {
            id: "B1",
            what: "bare wasmtime pooled cycle (instantiate+call+drop), p50".into(),
            value: bare_us,
            unit: "µs",
            ratio: None,
            ratio_of: String::new(),
            target: "baseline".into(),
            met: true,
        },
        Figure {
            id: "B1",
            what: "weft per-task cycle (Plugin::run, no-op exit), p50".into(),
            value: weft_us,
            unit: "µs",
            ratio: Some(ratio),
            ratio_of: "weft / bare".into(),
            target: "<= 2x bare".into(),
            met: ratio <= 2.0,
        },
    ])
}

/// B9: first use (compile) vs a cache hit, for every built plugin.
pub fn cache(inputs: &Inputs) -> Result<Vec<Figure>, String> {
    let runtime = Runtime::new(RuntimeConfig::default()).map_err(err)?;
    let dir = tempfile::tempdir().map_err(err)?;
    let cache = ComponentCache::new(dir.path()).map_err(err)?;
    let mut compile = Vec::new();
    let mut hit = Vec::new();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&inputs.plugins).map_err(err)?.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "wasm") {
            continue;
        }
        let wasm = std::fs::read(&path).map_err(err)?;
        let started = Instant::now();
        let (_, was_hit) = cache
            .load_or_compile(runtime.engine(), &wasm)
            .map_err(err)?;
        compile.push(started.elapsed());
        if was_hit {
            return Err("a fresh cache hit".into());
        }
        for _ in 0..20 {
            let started = Instant::now();
            let (_, was_hit) = cache
                .load_or_compile(runtime.engine(), &wasm)
                .map_err(err)?;
            hit.push(started.elapsed());
            if !was_hit {
                return Err("a warm cache missed".into());
            }
        }
        names.push(
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    let compile_ms = median_us(&mut compile) / 1000.0;
    let hit_ms = median_us(&mut hit) / 1000.0;
    Ok(vec![
        Figure {
            id: "B9",
            what: format!("compile a plugin, p50 over {} plugins", names.len()),
            value: compile_ms,
            unit: "ms",
            ratio: None,
            ratio_of: String::new(),
            target: "baseline".into(),
            met: true,
        },
        Figure {
            id: "B9",
            what: "load a plugin from the compiled cache, p50".into(),
            value: hit_ms,
            unit: "ms",
            ratio: Some(compile_ms / hit_ms),
            ratio_of: "compile / cache hit".into(),
            target: "cache hit < 1 ms".into(),
            met: hit_ms < 1.0,
        },
    ])
}
