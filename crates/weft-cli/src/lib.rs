//! weft-cli: the `weft` binary lives in `main.rs`; this library holds what is shared
//! beyond it: rendering validation problems (the benchmarks time it on hostile input),
//! and the plugin tooling (`weft plugin new`, `weft plugin build`; the benchmarks build
//! SDK plugins with it).

pub mod diagnostics;
pub mod plugin_build;
pub mod plugin_new;
