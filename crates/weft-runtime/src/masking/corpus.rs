//! A deterministic log corpus with secrets embedded, for the masking tests and the B12
//! benchmark (one generator, so both measure and check the same thing).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Log lines with secrets in them, raw or encoded.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The secrets (16 to 48 characters each).
    pub secrets: Vec<String>,
    /// The lines; one in 200 carries a secret.
    pub lines: Vec<String>,
    /// How many secret forms are embedded (each should be masked once).
    pub embedded: usize,
    /// Bytes of text, newlines included.
    pub bytes: usize,
}

/// `secrets` random secrets and at least `bytes` of log lines built from common log
/// words; one line in 200 carries one secret, raw, base64, URL-safe base64 or after
/// `Bearer `. The same `seed` gives the same corpus.
pub fn corpus(seed: u64, secrets: usize, bytes: usize) -> Corpus {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const WORDS: &[&str] = &[
        "build",
        "step",
        "compiling",
        "crate",
        "warning:",
        "error",
        "ok",
        "test",
        "running",
        "finished",
        "in",
        "0.42s",
        "src/lib.rs:12:5",
        "=>",
        "cache",
        "hit",
        "the",
        "of",
        "download",
        "GET",
        "/api/v4/projects",
        "200",
        "{\"id\":",
        "42}",
    ];
    let mut rng = Rng(seed | 1);
    let secrets: Vec<String> = (0..secrets)
        .map(|_| {
            let len = 16 + rng.below(33);
            (0..len)
                .map(|_| char::from(ALPHABET[rng.below(ALPHABET.len())]))
                .collect()
        })
        .collect();
    let mut lines: Vec<String> = Vec::new();
    let mut total = 0;
    let mut embedded = 0;
    while total < bytes {
        let mut line = String::new();
        let words = 6 + rng.below(14);
        for _ in 0..words {
            line.push_str(WORDS[rng.below(WORDS.len())]);
            line.push(' ');
        }
        if lines.len().is_multiple_of(200) && !secrets.is_empty() {
            let secret = &secrets[rng.below(secrets.len())];
            let form = match rng.below(4) {
                0 => secret.clone(),
                1 => STANDARD.encode(secret),
                2 => URL_SAFE_NO_PAD.encode(secret),
                _ => format!("Bearer {secret}"),
            };
            line.push_str(&form);
            line.push_str(" trailing words");
            embedded += 1;
        }
        total += line.len() + 1;
        lines.push(line);
    }
    Corpus {
        secrets,
        lines,
        embedded,
        bytes: total,
    }
}

/// A small deterministic PRNG (xorshift), so no extra crate is needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
