//! B10: validation of hostile input. Each shape grows a kind of input that once cost
//! super-linear time (long names with unknown `runAfter` names, unknown names among many
//! tasks, thousands of merge keys, wide and deep maps); parsing, validating and rendering
//! every problem for people and as JSON must grow no faster than N^1.2 (the fit of B6).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::scaling::exponent;
use crate::{Figure, shapes};

/// Parses and validates `yaml` (which must be refused), then renders every problem as
/// `weft validate` does, in both formats; returns the time and the number of problems.
fn validate_and_render(yaml: &str) -> Result<(Duration, usize), String> {
    let started = Instant::now();
    let diagnostics = match weft_core::load(yaml, "hostile.yaml", &BTreeMap::new(), None) {
        Ok(_) => return Err("a hostile pipeline was accepted".into()),
        Err(diagnostics) => diagnostics,
    };
    let text = weft_cli::diagnostics::render(&diagnostics, yaml, false);
    let json = weft_cli::diagnostics::to_json_text(&diagnostics);
    std::hint::black_box((text, json));
    Ok((started.elapsed(), diagnostics.len()))
}

/// A shape: its name, what N counts, the generator, and the sizes (8x from first to last).
type Shape = (&'static str, &'static str, fn(usize) -> String, [usize; 4]);

const SHAPES: [Shape; 5] = [
    (
        "long task name + long unknown runAfter",
        "characters",
        shapes::long_names,
        [250_000, 500_000, 1_000_000, 2_000_000],
    ),
    (
        "unknown runAfter names among N tasks",
        "tasks",
        shapes::unknown_run_after,
        [2_000, 4_000, 8_000, 16_000],
    ),
    (
        "YAML merge keys",
        "keys",
        shapes::merge_keys,
        // Under the alias bound (yaml.rs): more is refused at once, which proves nothing.
        [2_000, 4_000, 8_000, 16_000],
    ),
    (
        "unknown fields in one map",
        "fields",
        shapes::wide_map,
        [5_000, 10_000, 20_000, 40_000],
    ),
    (
        "fields with 100-deep values",
        "fields",
        shapes::deep_maps,
        [500, 1_000, 2_000, 4_000],
    ),
];

/// B10.
pub fn run() -> Result<Vec<Figure>, String> {
    let mut figures = Vec::new();
    for (name, unit, generate, sizes) in SHAPES {
        let mut points = Vec::new();
        let mut last = (Duration::ZERO, 0, 0);
        for n in sizes {
            let yaml = generate(n);
            let mut best: Option<(Duration, usize)> = None;
            for _ in 0..3 {
                let (took, problems) = validate_and_render(&yaml)?;
                if best.is_none_or(|(fastest, _)| took < fastest) {
                    best = Some((took, problems));
                }
            }
            let (took, problems) = best.unwrap_or_default();
            points.push((n as f64, took.as_secs_f64().max(1e-9)));
            last = (took, problems, n);
        }
        let k = exponent(&points);
        let (took, problems, n) = last;
        figures.push(Figure {
            id: "B10",
            what: format!("{name}: exponent ({}..{} {unit})", sizes[0], n),
            value: k,
            unit: "",
            ratio: Some(took.as_secs_f64() * 1e3),
            ratio_of: format!("ms at N = {n} ({problems} problems)"),
            target: "<= 1.2".into(),
            met: k <= 1.2,
        });
    }
    Ok(figures)
}
