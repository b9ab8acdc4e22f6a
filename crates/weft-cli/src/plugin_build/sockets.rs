//! Leaves `wasi:sockets` out of a built component.
//!
//! weft never grants `wasi:sockets`, and refuses to instantiate a component that imports
//! it. The C library under CPython (componentize-py) imports every `wasi:sockets`
//! interface whether the plugin opens a socket or not, and componentize-py has no option
//! to leave them out (`--stub-wasi` stubs every WASI interface, the filesystem and clocks
//! included). So after componentize-py, `weft plugin build` plugs a generated stub
//! component into the plugin's `wasi:sockets` imports: each function traps when called
//! (as `socket()` would fail on weft anyway), and the result imports no socket interface,
//! so the host's check stays as strict as it is.

use std::collections::BTreeSet;

use wac_graph::{CompositionGraph, EncodeOptions, types::Package};
use wit_component::{ComponentEncoder, DecodedWasm, StringEncoding};
use wit_parser::{InterfaceId, ManglingAndAbi, Resolve, World, WorldItem};

/// The package prefix of the interfaces that are stubbed out.
const SOCKETS: &str = "wasi:sockets/";

/// What stripping did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stripped {
    /// The component imported no `wasi:sockets` interface; it is returned unchanged.
    Nothing,
    /// These imports were replaced by trapping stubs.
    Imports(Vec<String>),
}

/// Replaces every `wasi:sockets` import of `component` by a stub that traps, returning
/// the new component bytes (or the input when there was nothing to strip).
pub fn strip_sockets(component: &[u8]) -> Result<(Vec<u8>, Stripped), String> {
    let decoded = wit_component::decode(component)
        .map_err(|e| format!("cannot read the component's interfaces: {e:#}"))?;
    let (mut resolve, world) = match decoded {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => {
            return Err("the file is a WIT package, not a component".to_string());
        }
    };
    let sockets = socket_imports(&resolve, &resolve.worlds[world]);
    if sockets.is_empty() {
        return Ok((component.to_vec(), Stripped::Nothing));
    }
    let names = sockets
        .iter()
        .filter_map(|id| resolve.id_of(*id))
        .collect::<Vec<_>>();
    let stub = stub_component(&mut resolve, world, &sockets)?;
    let composed = plug(&stub, component)?;
    Ok((composed, Stripped::Imports(names)))
}

/// The `wasi:sockets` interfaces `world` imports, in import order.
fn socket_imports(resolve: &Resolve, world: &World) -> Vec<InterfaceId> {
    world
        .imports
        .values()
        .filter_map(|item| match item {
            WorldItem::Interface { id, .. } => Some(*id),
            _ => None,
        })
        .filter(|id| {
            resolve
                .id_of(*id)
                .is_some_and(|name| name.starts_with(SOCKETS))
        })
        .collect()
}

/// A component that exports `sockets` (every function trapping) and imports only what
/// their types need (`wasi:io/poll`, `wasi:clocks/monotonic-clock`, ...), taken from the
/// plugin's own world so every name and version matches the plugin's imports.
fn stub_component(
    resolve: &mut Resolve,
    plugin_world: wit_parser::WorldId,
    sockets: &[InterfaceId],
) -> Result<Vec<u8>, String> {
    // The interfaces the stub needs to import: every dependency of a socket interface
    // that is not itself a socket interface, closed transitively.
    let exported: BTreeSet<InterfaceId> = sockets.iter().copied().collect();
    let mut needed = BTreeSet::new();
    let mut stack: Vec<InterfaceId> = sockets.to_vec();
    while let Some(id) = stack.pop() {
        for dep in resolve.interface_direct_deps(id) {
            if !exported.contains(&dep) && needed.insert(dep) {
                stack.push(dep);
            }
        }
    }
    let original = &resolve.worlds[plugin_world];
    // Keep the plugin's import order: it is topological, which the encoder requires.
    let imports = original
        .imports
        .iter()
        .filter(|(_, item)| matches!(item, WorldItem::Interface { id, .. } if needed.contains(id)))
        .map(|(key, item)| (key.clone(), item.clone()))
        .collect();
    let exports = original
        .imports
        .iter()
        .filter(
            |(_, item)| matches!(item, WorldItem::Interface { id, .. } if exported.contains(id)),
        )
        .map(|(key, item)| (key.clone(), item.clone()))
        .collect();
    let stub_world = World {
        name: "weft-sockets-stub".to_string(),
        imports,
        exports,
        package: original.package,
        docs: Default::default(),
        stability: Default::default(),
        includes: Vec::new(),
        span: Default::default(),
    };
    let stub_world = resolve.worlds.alloc(stub_world);
    let mut module = wit_component::dummy_module(resolve, stub_world, ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(&mut module, resolve, stub_world, StringEncoding::UTF8)
        .map_err(|e| format!("cannot describe the sockets stub: {e:#}"))?;
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|encoder| encoder.encode())
        .map_err(|e| format!("cannot build the sockets stub: {e:#}"))
}

/// Plugs `stub`'s exports into `plugin`'s matching imports.
fn plug(stub: &[u8], plugin: &[u8]) -> Result<Vec<u8>, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("cannot {what}: {e}");
    let mut graph = CompositionGraph::new();
    let plugin = Package::from_bytes(
        "weft:plugin-guest",
        None,
        plugin.to_vec(),
        graph.types_mut(),
    )
    .map_err(|e| fail("read the plugin", &format!("{e:#}")))?;
    let plugin = graph
        .register_package(plugin)
        .map_err(|e| fail("register the plugin", &e))?;
    let stub = Package::from_bytes("weft:sockets-stub", None, stub.to_vec(), graph.types_mut())
        .map_err(|e| fail("read the sockets stub", &format!("{e:#}")))?;
    let stub = graph
        .register_package(stub)
        .map_err(|e| fail("register the sockets stub", &e))?;
    wac_graph::plug(&mut graph, vec![stub], plugin)
        .map_err(|e| fail("plug the sockets stub in", &e))?;
    graph
        .encode(EncodeOptions::default())
        .map_err(|e| fail("encode the plugin", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component of a world importing `imports` (WIT `import` lines), made with
    /// wit-component's dummy module, over the WASI WIT the SDKs ship.
    fn component(imports: &str) -> Vec<u8> {
        let mut resolve = Resolve::default();
        for (name, text) in [
            ("io.wit", include_str!("../../../../sdk/wasi-wit/io.wit")),
            (
                "clocks.wit",
                include_str!("../../../../sdk/wasi-wit/clocks.wit"),
            ),
            (
                "sockets.wit",
                include_str!("../../../../sdk/wasi-wit/sockets.wit"),
            ),
        ] {
            resolve.push_str(name, text).expect("WASI WIT parses");
        }
        let app =
            format!("package test:app;\nworld app {{\n{imports}\n  export run: func();\n}}\n");
        let package = resolve.push_str("app.wit", &app).expect("test WIT parses");
        let world = resolve
            .select_world(&[package], Some("app"))
            .expect("the world");
        let mut module = wit_component::dummy_module(&resolve, world, ManglingAndAbi::Standard32);
        wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
            .expect("metadata");
        ComponentEncoder::default()
            .module(&module)
            .and_then(|encoder| encoder.encode())
            .expect("a component")
    }

    fn imports(component: &[u8]) -> Vec<String> {
        let DecodedWasm::Component(resolve, world) =
            wit_component::decode(component).expect("decodes")
        else {
            panic!("not a component");
        };
        resolve.worlds[world]
            .imports
            .values()
            .filter_map(|item| match item {
                WorldItem::Interface { id, .. } => resolve.id_of(*id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn socket_imports_are_plugged_and_the_rest_kept() {
        let original = component(
            "  import wasi:clocks/wall-clock@0.2.12;\n  import wasi:sockets/tcp-create-socket@0.2.12;",
        );
        assert!(imports(&original).iter().any(|i| i.starts_with(SOCKETS)));
        let (stripped, what) = strip_sockets(&original).expect("stripped");
        let Stripped::Imports(names) = what else {
            panic!("nothing stripped");
        };
        assert!(names.contains(&"wasi:sockets/tcp-create-socket@0.2.12".to_string()));
        let left = imports(&stripped);
        assert!(!left.iter().any(|i| i.starts_with(SOCKETS)), "{left:?}");
        assert!(
            left.contains(&"wasi:clocks/wall-clock@0.2.12".to_string()),
            "{left:?}"
        );
    }

    #[test]
    fn a_component_without_sockets_is_left_alone() {
        let original = component("  import wasi:clocks/wall-clock@0.2.12;");
        let (same, what) = strip_sockets(&original).expect("read");
        assert_eq!(what, Stripped::Nothing);
        assert_eq!(same, original);
    }
}
