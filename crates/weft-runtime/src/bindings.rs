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
