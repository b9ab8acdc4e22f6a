//! Pipeline generators shared by the benchmarks (and the scaling test's shape).

use std::fmt::Write;

/// The tasks task `i` of a layered DAG runs after: up to `fan_in` of the previous layer of
/// `width`, by name, sorted and distinct. Every writer of the shape (YAML, Makefile,
/// `build.ninja`) takes them from here, so all run the same DAG.
fn layered_parents(i: usize, width: usize, fan_in: usize) -> Vec<String> {
    let layer = i / width;
    if layer == 0 {
        return Vec::new();
    }
    let prev_start = (layer - 1) * width;
    (0..fan_in)
        .map(|k| format!("t{}", prev_start + (i * 7 + k * 13) % width))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A layered DAG of `n` no-op `exit` tasks: layers of `width`, each task after up to
/// `fan_in` tasks of the previous layer (in-degree about `fan_in`).
pub fn layered(n: usize, width: usize, fan_in: usize) -> String {
    let mut yaml = String::with_capacity(n * 96);
    yaml.push_str(
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata:\n  name: layered\nspec:\n  tasks:\n",
    );
    for i in 0..n {
        let _ = write!(yaml, "    - name: t{i}\n      taskRef: {{name: exit}}\n");
        let parents = layered_parents(i, width, fan_in);
        if !parents.is_empty() {
            let _ = writeln!(yaml, "      runAfter: [{}]", parents.join(", "));
        }
    }
    yaml
}

/// [`layered`] written one task per line in flow style (`- {name: .., runAfter: [..]}`),
/// so that 100,000 tasks fit under the 8 MiB limit on pipeline files.
pub fn layered_flow(n: usize, width: usize, fan_in: usize) -> String {
    let mut yaml = String::with_capacity(n * 64);
    yaml.push_str(
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata:\n  name: layered\nspec:\n  tasks:\n",
    );
    for i in 0..n {
        let _ = write!(yaml, "    - {{name: t{i}, taskRef: {{name: exit}}");
        let parents = layered_parents(i, width, fan_in);
        if !parents.is_empty() {
            let _ = write!(yaml, ", runAfter: [{}]", parents.join(", "));
        }
        yaml.push_str("}\n");
    }
    yaml
}

/// The same DAG as a Makefile of `true` commands.
pub fn layered_makefile(n: usize, width: usize, fan_in: usize) -> String {
    let mut make = String::from(".PHONY: all\nall:");
    for i in 0..n {
        let _ = write!(make, " t{i}");
    }
    make.push('\n');
    for i in 0..n {
        let parents = layered_parents(i, width, fan_in);
        let _ = write!(make, ".PHONY: t{i}\nt{i}: {}\n\t@true\n", parents.join(" "));
    }
    make
}

/// The same DAG as a `build.ninja` of `true` commands. The outputs are never written, so
/// every run builds every edge (as `make`'s phony targets do).
pub fn layered_ninja(n: usize, width: usize, fan_in: usize) -> String {
    let mut ninja = String::from("rule true\n  command = true\n");
    for i in 0..n {
        let parents = layered_parents(i, width, fan_in);
        let _ = writeln!(ninja, "build t{i}: true {}", parents.join(" "));
    }
    ninja.push_str("build all: phony");
    for i in 0..n {
        let _ = write!(ninja, " t{i}");
    }
    ninja.push_str("\ndefault all\n");
    ninja
}

/// A chain of `n` tasks, each after the previous one.
pub fn chain(n: usize) -> String {
    let mut yaml = String::with_capacity(n * 80);
    yaml.push_str(
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata:\n  name: chain\nspec:\n  tasks:\n",
    );
    for i in 0..n {
        let _ = write!(yaml, "    - name: t{i}\n      taskRef: {{name: exit}}\n");
        if i > 0 {
            let _ = writeln!(yaml, "      runAfter: [t{}]", i - 1);
        }
    }
    yaml
}

/// Fan-out/fan-in `1 -> n -> 1` written as a `matrix` over `n` values (`matrix: true`) or
/// as `n` explicit tasks, the sink after all of them.
pub fn fan(n: usize, matrix: bool) -> String {
    let mut yaml = String::with_capacity(n * 48);
    yaml.push_str("apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: fan\nspec:\n  tasks:\n    - name: root\n      taskRef: {name: exit}\n");
    if matrix {
        yaml.push_str("    - name: wide\n      taskRef: {name: exit}\n      runAfter: [root]\n      matrix:\n        params:\n          - name: message\n            value: [");
        for i in 0..n {
            let _ = write!(yaml, "{}v{i}", if i == 0 { "" } else { ", " });
        }
        yaml.push_str("]\n    - name: sink\n      taskRef: {name: exit}\n      runAfter: [wide]\n");
    } else {
        for i in 0..n {
            let _ = write!(
                yaml,
                "    - name: w{i}\n      taskRef: {{name: exit}}\n      runAfter: [root]\n"
            );
        }
        yaml.push_str("    - name: sink\n      taskRef: {name: exit}\n      runAfter: [");
        for i in 0..n {
            let _ = write!(yaml, "{}w{i}", if i == 0 { "" } else { ", " });
        }
        yaml.push_str("]\n");
    }
    yaml
}

/// The head of every adversarial pipeline, up to `spec:`.
const HEAD: &str = "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata:\n  name: hostile\nspec:\n";

/// One task with an `n`-character name and an `n`-character unknown `runAfter` name.
pub fn long_names(n: usize) -> String {
    format!(
        "{HEAD}  tasks:\n    - name: {}\n      taskRef: {{name: exit}}\n      runAfter: [{}]\n",
        "a".repeat(n),
        "b".repeat(n)
    )
}

/// `n` tasks with 50-character names, each after an unknown name one edit away from
/// every other: each hint could compare against all `n` tasks.
pub fn unknown_run_after(n: usize) -> String {
    let mut yaml = String::with_capacity(n * 160);
    yaml.push_str(HEAD);
    yaml.push_str("  tasks:\n");
    for i in 0..n {
        let _ = write!(
            yaml,
            "    - name: task-{i:045}\n      taskRef: {{name: exit}}\n      runAfter: [task-{i:045}x]\n"
        );
    }
    yaml
}

/// A task whose `taskRef` holds `n` YAML merge keys (`<<: *anchor`), each a problem.
pub fn merge_keys(n: usize) -> String {
    let mut yaml = String::with_capacity(n * 16);
    yaml.push_str(HEAD);
    yaml.push_str(
        "  tasks:\n    - name: a\n      taskRef: &r {name: exit}\n    - name: b\n      taskRef:\n",
    );
    for _ in 0..n {
        yaml.push_str("        <<: *r\n");
    }
    yaml
}

/// A task with `n` unknown fields, each a problem with a did-you-mean lookup.
pub fn wide_map(n: usize) -> String {
    let mut yaml = String::with_capacity(n * 24);
    yaml.push_str(HEAD);
    yaml.push_str("  tasks:\n    - name: a\n      taskRef: {name: exit}\n");
    for i in 0..n {
        let _ = writeln!(yaml, "      runafter{i}: x");
    }
    yaml
}

/// `n` unknown `spec` fields, each holding lists nested 100 deep.
pub fn deep_maps(n: usize) -> String {
    let deep = format!("{}x{}", "[".repeat(100), "]".repeat(100));
    let mut yaml = String::with_capacity(n * (deep.len() + 16));
    yaml.push_str(HEAD);
    for i in 0..n {
        let _ = writeln!(yaml, "  deep{i}: {deep}");
    }
    yaml
}
