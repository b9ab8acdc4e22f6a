//! weft-cli: the `weft` binary lives in `main.rs`; this library holds what is shared
//! beyond it: rendering validation problems (the benchmarks time it on hostile input).

pub mod diagnostics;
