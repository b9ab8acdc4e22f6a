//! Fuzz target for weft-core's pipeline parser: bad input must never panic.
//!
//! Every input is tried three ways:
//! 1. as a whole pipeline file (lossy UTF-8), through `parse_pipeline` and `load`;
//! 2. as the body of `spec.tasks` under a fixed, valid header, so mutations spend their
//!    time on task fields rather than on `apiVersion`/`kind`;
//! 3. spliced into the middle of a valid template (at an offset taken from the input),
//!    so a small mutation lands inside otherwise well-formed structure.
//!
//! `load` runs with no params and with a fixed set of string, array and object params;
//! every diagnostic is rendered (as the CLI does), and a plan that loads is started, to
//! reach substitution and the first scheduling step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use weft_core::contract::ParamValue;
use weft_core::{RunContext, RunState, load, parse_pipeline};

/// Lines 1-6 of a pipeline whose tasks are the fuzz input (as in tests/malformed.rs).
const HEAD: &str =
    "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata:\n  name: fuzz\nspec:\n  tasks:\n";

/// A valid pipeline touching params, results, when, onStatus and finally.
const TEMPLATE: &str = include_str!("../seeds/parse/build-test-report.yaml");

fn params() -> &'static BTreeMap<String, ParamValue> {
    static PARAMS: OnceLock<BTreeMap<String, ParamValue>> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let mut params = BTreeMap::new();
        params.insert("commit".to_string(), ParamValue::Str("abc".to_string()));
        params.insert("testExit".to_string(), ParamValue::Str("1".to_string()));
        params.insert(
            "shardSleepMs".to_string(),
            ParamValue::Array(vec!["1".to_string(), "2".to_string()]),
        );
        params.insert(
            "checkExit".to_string(),
            ParamValue::Object(BTreeMap::from([("a".to_string(), "b".to_string())])),
        );
        params
    })
}

fn exercise(source: &str) {
    if let Err(diagnostics) = parse_pipeline(source, "fuzz.yaml") {
        for diagnostic in &diagnostics {
            let _ = diagnostic.to_string();
        }
    }
    for supplied in [&BTreeMap::new(), params()] {
        match load(source, "fuzz.yaml", supplied, None) {
            Ok(plan) => {
                let mut run = RunState::new(
                    Arc::new(plan),
                    RunContext {
                        run_name: "fuzz".to_string(),
                        run_uid: "00000000-0000-0000-0000-000000000000".to_string(),
                        bound_workspaces: BTreeSet::new(),
                    },
                );
                let _ = run.start();
            }
            Err(diagnostics) => {
                for diagnostic in &diagnostics {
                    let _ = diagnostic.to_string();
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    // 1. The whole file.
    exercise(&text);

    // 2. The body of spec.tasks.
    exercise(&format!("{HEAD}{text}"));

    // 3. Spliced into a valid pipeline at a char boundary chosen by the input.
    if let Some((&first, rest)) = data.split_first() {
        let rest = String::from_utf8_lossy(rest);
        let mut at = usize::from(first) * TEMPLATE.len() / 256;
        while !TEMPLATE.is_char_boundary(at) {
            at -= 1;
        }
        exercise(&format!("{}{rest}{}", &TEMPLATE[..at], &TEMPLATE[at..]));
    }
});
