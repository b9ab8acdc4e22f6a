//! One small module per host capability, all of the same shape: a view over the task's
//! state, the generated `Host` trait implemented on it (for `weft:plugin` interfaces, the
//! traits of every served version, `wit::since_v0_1_0` and `wit::since_v0_2_0`, each
//! delegating to one implementation), and an `add_to_linker` adding them all.

pub mod checkpoint;
pub mod http;
pub mod links;
pub mod log;
pub mod secrets;
pub mod wasi;
