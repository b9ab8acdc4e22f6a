//! Pipeline generators shared by the benchmarks (and the scaling test's shape).

use std::fmt::Write;

/// A layered DAG of `n` no-op `exit` tasks: layers of `width`, each task after up to
/// `fan_in` tasks of the previous layer (in-degree about `fan_in`).
pub fn layered(n: usize, width: usize, fan_in: usize) -> String {
    let mut yaml = String::with_capacity(n * 96);
    yaml.push_str(
        "apiVersion: weft.dev/v1\nkind: Pipeline\nmetadata:\n  name: layered\nspec:\n  tasks:\n",
    );
    for i in 0..n {
        let _ = write!(yaml, "    - name: t{i}\n      taskRef: {{name: exit}}\n");
        let layer = i / width;
        if layer > 0 {
            let prev_start = (layer - 1) * width;
            let parents: Vec<String> = (0..fan_in)
                .map(|k| format!("t{}", prev_start + (i * 7 + k * 13) % width))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let _ = writeln!(yaml, "      runAfter: [{}]", parents.join(", "));
        }
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
        let layer = i / width;
        let parents: Vec<String> = if layer > 0 {
            let prev_start = (layer - 1) * width;
            (0..fan_in)
                .map(|k| format!("t{}", prev_start + (i * 7 + k * 13) % width))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        let _ = write!(make, ".PHONY: t{i}\nt{i}: {}\n\t@true\n", parents.join(" "));
    }
    make
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
