//! End-to-end tests: real pipelines through the real `weft` binary with the real plugins.
//! Built as the `e2e` test of weft-cli so Cargo provides the binary's path.

mod catalogue;
mod cluster;
mod dashboard;
mod decorators;
mod fake_forge;
mod git_clone;
mod graph;
mod malformed;
mod queues;
mod recovery;
mod registry;
mod release;
mod release_api;
mod release_crash;
mod reporting;
mod runs;
mod sdk;
mod security;
mod serve;
mod snapshots;
mod support;
mod tekton;
mod tenants;
mod traces;
