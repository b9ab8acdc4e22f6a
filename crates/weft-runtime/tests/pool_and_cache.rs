//! The fast paths: the instance pool (exhaustion queues, slots never leak data, fallback
//! when the address space cannot be reserved) and the compiled-component cache (hits,
//! corrupt entries rebuilt, eviction).

use std::path::PathBuf;

use weft_core::contract::{ParamValue, TaskEnding};
use weft_runtime::{Allocator, ComponentCache, HttpRule, Runtime, RuntimeConfig, TaskRequest};

fn plugin_path(name: &str) -> PathBuf {
    let dir = match std::env::var_os("WEFT_PLUGIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../plugins/target/wasm32-wasip2/release"),
    };
    dir.join(format!("{name}.wasm"))
}

fn pooled(instances: u32) -> Runtime {
    let runtime = Runtime::new(RuntimeConfig {
        allocator: Allocator::Pooling {
            instances,
            max_memory_bytes: 256 << 20,
        },
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    assert!(
        matches!(runtime.allocator(), Allocator::Pooling { .. }),
        "this machine could not reserve a small pool"
    );
    runtime
}

/// Runs `tasks` invocations of `exit` through a pool of `slots` at once, each with
/// `params`, and asserts every one succeeds.
async fn all_succeed(slots: u32, tasks: usize, params: &[(&str, &str)]) {
    let runtime = pooled(slots);
    let exit = runtime.load_file(plugin_path("exit")).expect("exit loads");
    let mut running = Vec::new();
    for i in 0..tasks {
        let exit = exit.clone();
        let mut request = TaskRequest::new(format!("t{i}"));
        for (name, value) in params {
            request
                .params
                .insert((*name).into(), ParamValue::Str((*value).into()));
        }
        running.push(tokio::spawn(async move { exit.run(request).await }));
    }
    for task in running {
        let report = task.await.expect("joined");
        assert_eq!(report.ending, TaskEnding::Success, "{:?}", report.ending);
    }
}

#[tokio::test]
async fn pool_exhaustion_queues_instead_of_failing() {
    // Without the gate the third concurrent instantiation fails on the pool's limit.
    all_succeed(2, 8, &[("sleepMs", "50")]).await;
}

/// Many short tasks through a small pool, from several threads: slots come back in
/// batches, and an instantiation that meets a batch being flushed waits for it rather
/// than failing (every task succeeds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_pool_under_churn_never_fails_an_instantiation() {
    all_succeed(2, 400, &[]).await;
}

#[tokio::test]
async fn a_reused_slot_never_shows_the_previous_tasks_data() {
    // One slot: task B necessarily runs in the slot task A just left.
    let runtime = pooled(1);
    let hostile = runtime
        .load_file(plugin_path("hostile"))
        .expect("hostile loads");
    let canary = "weft-pool-canary-91d2";
    for (mode, expected) in [
        ("canary-write", TaskEnding::Success),
        ("canary-read", TaskEnding::Success),
    ] {
        let mut request = TaskRequest::new(mode);
        request.grants.http = vec![HttpRule::parse("allowed.invalid").expect("rule")];
        request
            .params
            .insert("mode".into(), ParamValue::Str(mode.into()));
        request
            .params
            .insert("canary".into(), ParamValue::Str(canary.into()));
        let report = hostile.run(request).await;
        assert_eq!(report.ending, expected, "{mode}: {:?}", report.ending);
    }
}

#[test]
fn an_unreservable_pool_falls_back_to_on_demand() {
    let runtime = Runtime::new(RuntimeConfig {
        allocator: Allocator::Pooling {
            instances: 4_000_000,
            max_memory_bytes: 1 << 32,
        },
        ..RuntimeConfig::default()
    })
    .expect("falls back rather than failing");
    assert_eq!(runtime.allocator(), Allocator::OnDemand);
}

#[test]
fn the_cache_hits_rebuilds_corrupt_entries_and_evicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let cache = ComponentCache::new(dir.path()).expect("cache");
    let wasm = std::fs::read(plugin_path("echo")).expect("echo.wasm");

    let (_, hit) = cache
        .load_or_compile(runtime.engine(), &wasm)
        .expect("compiles");
    assert!(!hit, "first use compiles");
    let (_, hit) = cache
        .load_or_compile(runtime.engine(), &wasm)
        .expect("loads");
    assert!(hit, "second use is a cache hit");

    let entry = cache.path_for(runtime.engine(), &wasm);
    for corruption in [b"not a compiled component".to_vec(), Vec::new()] {
        std::fs::write(&entry, &corruption).expect("corrupt the entry");
        let (component, hit) = cache
            .load_or_compile(runtime.engine(), &wasm)
            .expect("rebuilt");
        assert!(!hit, "a corrupt entry is a miss");
        assert!(component.component_type().exports(runtime.engine()).len() > 0);
        let (_, hit) = cache
            .load_or_compile(runtime.engine(), &wasm)
            .expect("loads");
        assert!(hit, "the rebuilt entry is used");
    }

    // A bound smaller than two entries keeps only the most recently written one.
    let size = std::fs::metadata(&entry).expect("entry").len();
    let exit = std::fs::read(plugin_path("exit")).expect("exit.wasm");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let measure = ComponentCache::new(elsewhere.path()).expect("cache");
    measure
        .load_or_compile(runtime.engine(), &exit)
        .expect("compiles");
    let exit_size = std::fs::metadata(measure.path_for(runtime.engine(), &exit))
        .expect("entry")
        .len();
    // Room for the newer entry and half the older one.
    let small = ComponentCache::new(dir.path())
        .expect("cache")
        .with_max_bytes(exit_size + size / 2);
    small
        .load_or_compile(runtime.engine(), &exit)
        .expect("compiles");
    let entries = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .count();
    assert_eq!(entries, 1, "the older entry was evicted");
    assert!(small.path_for(runtime.engine(), &exit).exists());
}

#[test]
fn concurrent_writers_of_one_entry_leave_a_whole_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let wasm = std::fs::read(plugin_path("echo")).expect("echo.wasm");
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let cache = ComponentCache::new(dir.path()).expect("cache");
                cache
                    .load_or_compile(runtime.engine(), &wasm)
                    .expect("compiles");
            });
        }
    });
    let cache = ComponentCache::new(dir.path()).expect("cache");
    let (_, hit) = cache
        .load_or_compile(runtime.engine(), &wasm)
        .expect("loads");
    assert!(hit, "the entry is whole and usable");
    let leftovers = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .count();
    assert_eq!(leftovers, 0, "no temporary files left behind");
}

/// `hostile` in `mode`, granted what its imports need, with a CPU budget that never ends it.
fn hostile(runtime: &Runtime, mode: &str) -> (weft_runtime::Plugin, TaskRequest) {
    let plugin = runtime
        .load_file(plugin_path("hostile"))
        .expect("hostile loads");
    let mut request = TaskRequest::new(format!("hostile-{mode}"));
    request
        .params
        .insert("mode".into(), ParamValue::Str(mode.into()));
    request.grants.http = vec![HttpRule::parse("allowed.invalid").expect("rule")];
    request.limits.cpu_budget = std::time::Duration::from_secs(600);
    (plugin, request)
}

#[tokio::test]
async fn dropping_a_running_guest_stops_it_and_frees_its_slot() {
    // One slot: the echo can only run once the looping guest, whose caller went away, stopped.
    let runtime = pooled(1);
    let (looping, request) = hostile(&runtime, "loop");
    let cut = tokio::time::timeout(std::time::Duration::from_millis(200), looping.run(request));
    assert!(cut.await.is_err(), "the loop ended by itself");
    let echo = runtime.load_file(plugin_path("echo")).expect("echo loads");
    let mut request = TaskRequest::new("after");
    request
        .params
        .insert("message".into(), ParamValue::Str("hi".into()));
    // A guard against a hang only: the loop would otherwise hold the slot for 600 s.
    let report = tokio::time::timeout(std::time::Duration::from_secs(60), echo.run(request))
        .await
        .expect("the dropped guest gave its slot back");
    assert_eq!(report.ending, TaskEnding::Success, "{:?}", report.ending);
}

#[tokio::test]
async fn the_wall_clock_stops_a_guest_waiting_in_a_host_call() {
    let runtime = pooled(2);
    let exit = runtime.load_file(plugin_path("exit")).expect("exit loads");
    let mut request = TaskRequest::new("sleeper");
    request
        .params
        .insert("sleepMs".into(), ParamValue::Str("600000".into()));
    request.limits.wall_clock = Some(std::time::Duration::from_millis(100));
    let report = exit.run(request).await;
    assert!(
        matches!(&report.ending, TaskEnding::Errored { reason, .. } if reason == "TimedOut"),
        "{:?}",
        report.ending
    );
}

/// Guests run on threads of their own: a timer of the caller's one-threaded runtime fires
/// while guests spin, and a guest's deadline is kept while others spin without one.
#[tokio::test]
async fn spinning_guests_hold_neither_the_callers_runtime_nor_each_others_deadlines() {
    let runtime = pooled(8);
    let mut spinners = Vec::new();
    for _ in 0..4 {
        let (looping, request) = hostile(&runtime, "loop");
        spinners.push(tokio::spawn(async move { looping.run(request).await }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (looping, mut request) = hostile(&runtime, "loop");
    request.limits.wall_clock = Some(std::time::Duration::from_millis(20));
    let report = looping.run(request).await;
    assert!(
        matches!(&report.ending, TaskEnding::Errored { reason, .. } if reason == "TimedOut"),
        "{:?}",
        report.ending
    );
    for spinner in &spinners {
        assert!(!spinner.is_finished(), "a spinner without a deadline ended");
    }
    // Aborting the spinners' tasks drops their calls, which stops them.
    for spinner in spinners {
        spinner.abort();
    }
}
