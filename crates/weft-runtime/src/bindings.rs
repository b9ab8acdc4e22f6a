//! Host bindings generated from `wit/` (world `task`), shared by the capability modules.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "task",
    imports: { default: trappable },
    exports: { default: async },
    with: {
        "weft:plugin/secrets.secret": crate::capabilities::secrets::SecretHandle,
    },
});

/// The `reporter` world, sharing the task world's `log`, `secrets` and `types` so one
/// linker serves every kind of plugin.
pub(crate) mod reporter {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "reporter",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "weft:plugin/types": crate::bindings::weft::plugin::types,
            "weft:plugin/log": crate::bindings::weft::plugin::log,
            "weft:plugin/secrets": crate::bindings::weft::plugin::secrets,
        },
    });
}

/// The `form-decorator` world, sharing interfaces like [`reporter`].
pub(crate) mod decorator {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "form-decorator",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "weft:plugin/types": crate::bindings::weft::plugin::types,
            "weft:plugin/log": crate::bindings::weft::plugin::log,
            "weft:plugin/secrets": crate::bindings::weft::plugin::secrets,
        },
    });
}
