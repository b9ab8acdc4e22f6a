//! Inputs found by fuzzing (`fuzz/regressions/`): each must be refused with a diagnostic,
//! quickly and without exhausting the stack or memory.

use std::collections::BTreeMap;

fn refused(file: &str, fragment: &str) {
    let path = format!("{}/fuzz/regressions/{file}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).expect("regression input");
    let diagnostics = weft_core::load(&source, file, &BTreeMap::new(), None).expect_err("refused");
    assert!(
        diagnostics
            .iter()
            .any(|d| d.code == "yaml-syntax" && d.message.contains(fragment)),
        "{diagnostics:?}"
    );
}

#[test]
fn aliases_cannot_nest_past_the_depth_limit() {
    refused(
        "yaml-alias-depth-stack-overflow.yaml",
        "nested too deeply (through aliases)",
    );
}

#[test]
fn aliases_cannot_expand_without_bound() {
    refused(
        "yaml-alias-expansion-billion-laughs.yaml",
        "aliases expand the document",
    );
}

#[test]
fn modest_aliases_still_work() {
    let source = "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata: {name: a}\nspec:\n  tasks:\n    - name: one\n      taskRef: &ref {name: exit}\n    - name: two\n      taskRef: *ref\n";
    weft_core::load(source, "aliases.yaml", &BTreeMap::new(), None).expect("valid");
}
