//! B12: log masking throughput with 50 secrets, against a plain scan of the same text in
//! the same run (the ratio says what masking costs over reading the bytes once).

use std::time::Instant;

use weft_runtime::Masker;
use weft_runtime::masking::MASK;
use weft_runtime::masking::corpus::corpus;

use crate::Figure;

/// 64 MiB of log lines with 50 secrets embedded (raw and encoded), masked line by line.
pub fn run() -> Result<Vec<Figure>, String> {
    let corpus = corpus(0x9E37_79B9_7F4A_7C15, 50, 64 << 20);
    let masker = Masker::with_secrets(corpus.secrets.iter().map(String::as_str))
        .map_err(|e| e.to_string())?;
    let mib = corpus.bytes as f64 / f64::from(1 << 20);

    // Baseline: read every byte once (count newlines-to-be: spaces), no allocation.
    let started = Instant::now();
    let mut spaces = 0usize;
    for line in &corpus.lines {
        spaces += line.bytes().filter(|b| *b == b' ').count();
    }
    let scan = started.elapsed().as_secs_f64();
    std::hint::black_box(spaces);

    let started = Instant::now();
    let mut masks = 0;
    for line in &corpus.lines {
        masks += masker.mask(line).matches(MASK).count();
    }
    let masking = started.elapsed().as_secs_f64();
    if masks != corpus.embedded {
        return Err(format!(
            "masked {masks} forms, {} were embedded",
            corpus.embedded
        ));
    }
    let per_s = mib / masking;
    Ok(vec![Figure {
        id: "B12",
        what: format!(
            "log masking, 50 secrets ({} patterns), MiB/s per core",
            masker.pattern_count()
        ),
        value: per_s,
        unit: "MiB/s",
        ratio: Some(masking / scan),
        ratio_of: "masking time / plain scan".into(),
        target: ">= 200 MB/s per core, no miss".into(),
        met: per_s * 1.048_576 >= 200.0,
    }])
}
